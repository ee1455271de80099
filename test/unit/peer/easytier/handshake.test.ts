/** The handshake message on the captured bytes, and which peers tstier keeps. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HANDSHAKE_MAGIC, decodeHandshake, encodeHandshake, judgeHandshake, listenerVouches, ourHandshake } from '../../../../daemon/peer/easytier/handshake.js';
import { secretDigest } from '../../../../daemon/peer/easytier/identity.js';
import { EtPacketType, buildPm, splitPm } from '../../../../daemon/peer/easytier/pm.js';
import { etCipher } from '../../../../daemon/peer/easytier/cipher.js';
import { tcpFrame } from '../../../../daemon/peer/easytier/underlay.js';
import type { TstierError } from '../../../../daemon/errors.js';

const digest = secretDigest('wspec-net', 'wspec-secret');
const captured = Buffer.concat([
  Buffer.from('08e1cb868f0d10bbcdc7c60818012210', 'hex'),
  Buffer.from('liveness-echo-v1'),
  Buffer.from('2a09', 'hex'),
  Buffer.from('wspec-net'),
  Buffer.from('3220', 'hex'),
  digest,
]);

test('the captured 77-byte HandshakeRequest decodes and re-encodes byte for byte', () => {
  assert.equal(captured.length, 77);
  const hs = decodeHandshake(captured);
  assert.equal(hs.magic, HANDSHAKE_MAGIC);
  assert.equal(hs.magic, 3521226209);
  assert.equal(hs.version, 1);
  assert.deepEqual(hs.features, ['liveness-echo-v1']);
  assert.equal(hs.networkName, 'wspec-net');
  assert.deepEqual(Buffer.from(hs.digest), Buffer.from(digest));
  assert.deepEqual(Buffer.from(encodeHandshake(hs)), captured);

  // In its PM packet: to = 0, type 2, fwd 1, never sealed; on tcp:// the frame starts 5d000000 (93).
  const pm = buildPm({ from: hs.myPeerId, to: 0, type: EtPacketType.HandShake, flags: 0, forwardCounter: 1 }, captured, etCipher('aes-gcm', 'wspec-secret'));
  assert.deepEqual(splitPm(pm)!.header, { from: hs.myPeerId, to: 0, type: 2, flags: 0, forwardCounter: 1, len: 77 });
  assert.equal(Buffer.from(tcpFrame(pm).subarray(0, 4)).toString('hex'), '5d000000');
});

test('ours offers no features and vouches only when asked', () => {
  const me = { peerId: 42, networkName: 'wspec-net', digest };
  const hs = decodeHandshake(encodeHandshake(ourHandshake(me)));
  assert.deepEqual(hs.features, [], 'never liveness-echo-v1');
  assert.equal(hs.myPeerId, 42);
  assert.deepEqual(Buffer.from(hs.digest), Buffer.from(digest));
  assert.deepEqual(Buffer.from(decodeHandshake(encodeHandshake(ourHandshake(me, false))).digest), Buffer.alloc(32));
});

test('judging the other side: stricter than EasyTier on zero digests', () => {
  const me = { peerId: 42, networkName: 'wspec-net', digest };
  const them = (o: Partial<{ myPeerId: number; networkName: string; digest: Uint8Array }>) =>
    ({ ...ourHandshake({ peerId: 7, networkName: 'wspec-net', digest }), ...o });
  assert.deepEqual(judgeHandshake(me, them({})), { ok: true });
  assert.deepEqual(judgeHandshake(me, them({ digest: new Uint8Array(32) })), { ok: false, reason: 'zero-digest' });
  assert.deepEqual(judgeHandshake(me, them({ digest: secretDigest('wspec-net', 'nope') })), { ok: false, reason: 'wrong-digest' });
  assert.deepEqual(judgeHandshake(me, them({ networkName: 'other', digest: secretDigest('other', 'wspec-secret') })), { ok: false, reason: 'other-network' });
  assert.deepEqual(judgeHandshake(me, them({ myPeerId: 42 })), { ok: false, reason: 'peer-id-conflict' });
  assert.equal(listenerVouches(me, them({})), true);
  assert.equal(listenerVouches(me, them({ digest: new Uint8Array(32) })), false);
});

test('a digest that is not 32 bytes is malformed', () => {
  const short = encodeHandshake({ ...ourHandshake({ peerId: 1, networkName: 'n', digest }), digest: new Uint8Array(31) });
  assert.throws(() => decodeHandshake(short), (e: TstierError) => e.code === 'TSTIER_E_BAD_PACKET');
});
