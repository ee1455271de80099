/** Payload encryption: the tail layout, each algorithm, and what a receiver drops. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { etCipher, parseEtAlgorithm, type EtAlgorithm } from '../../../../daemon/peer/easytier/cipher.js';
import { peerAddon } from '../../../../daemon/peer/native.js';
import { EtPacketType, PmFlag, buildPm, buildPing, openPm, splitPm } from '../../../../daemon/peer/easytier/pm.js';

const SECRET = 'wspec-secret';
const KEY128 = Buffer.from('0d6f42bd47e60c0f278ba93c718c7237', 'hex');
const KEY256 = Buffer.from('8d43e92d7746c2cffa065683efcc969afaffbedf5ef897c490a6c35eb9047477', 'hex');
const hdr = { from: 1, to: 2, type: EtPacketType.Data, flags: 0, forwardCounter: 1 };

test('an 84-byte ICMP packet: len 84, 112 bytes on the wire, ENCRYPTED set, opens to the same bytes', () => {
  const icmp = randomBytes(84);
  for (const algo of ['aes-gcm', 'aes-256-gcm', 'chacha20'] as const) {
    const c = etCipher(algo, SECRET);
    const pkt = buildPm(hdr, icmp, c);
    const p = splitPm(pkt)!;
    assert.equal(p.header.len, 84);
    assert.equal(p.body.length, 112, algo);
    assert.equal(p.header.flags & PmFlag.Encrypted, PmFlag.Encrypted);
    assert.deepEqual(Buffer.from((openPm(p, c) as { payload: Uint8Array }).payload), icmp);
  }
});

test('AEAD layout is ciphertext ‖ tag ‖ nonce with empty AAD, under the spec keys', () => {
  const plain = randomBytes(300);
  const cases: [EtAlgorithm, string, Buffer][] = [
    ['aes-gcm', 'aes-128-gcm', KEY128],
    ['aes-256-gcm', 'aes-256-gcm', KEY256],
    ['chacha20', 'chacha20-poly1305', KEY256],
  ];
  for (const [algo, name, key] of cases) {
    const sealed = etCipher(algo, SECRET).seal(plain);
    const n = sealed.length;
    const d = createDecipheriv(name as 'aes-128-gcm', key, sealed.subarray(n - 12), { authTagLength: 16 });
    d.setAuthTag(sealed.subarray(n - 28, n - 12));
    assert.deepEqual(Buffer.concat([d.update(sealed.subarray(0, n - 28)), d.final()]), plain, algo);
  }
});

test('the addon and node:crypto give identical bytes, each opens the other\'s, and sealing in place gives the same', { skip: peerAddon() ? false : 'peer addon not built' }, () => {
  for (const algo of ['aes-gcm', 'aes-256-gcm', 'chacha20'] as const) {
    const native = etCipher(algo, SECRET, 'native');
    const node = etCipher(algo, SECRET, 'node');
    for (const size of [0, 1, 84, 1380]) {
      const plain = randomBytes(size);
      const nonce = randomBytes(12);
      const a = Buffer.alloc(5 + size + 28);
      const b = Buffer.alloc(5 + size + 28);
      native.sealInto(a, 5, plain, nonce);
      node.sealInto(b, 5, plain, nonce);
      assert.deepEqual(a, b, `${algo} ${size}`);
      // In place: the plaintext already sits where the ciphertext goes.
      const c = Buffer.alloc(5 + size + 28);
      plain.copy(c, 5);
      native.sealInto(c, 5, c.subarray(5, 5 + size), nonce);
      assert.deepEqual(c, a, `${algo} ${size} in place`);
      // Random nonces: each opens the other's, in place, and a flipped bit fails both.
      for (const [from, to] of [[native, node], [node, native]] as const) {
        const sealed = Buffer.alloc(size + 28);
        from.sealInto(sealed, 0, plain);
        const bad = Buffer.from(sealed);
        bad[bad.length - 20]! ^= 1;
        assert.equal(to.openInPlace(sealed, 0, sealed.length), size);
        assert.deepEqual(sealed.subarray(0, size), plain);
        assert.equal(to.openInPlace(bad, 0, bad.length), -1);
      }
    }
    assert.equal(native.openInPlace(Buffer.alloc(27), 0, 27), -1, 'shorter than the tail');
  }
});

test('the addon refuses bad arguments with one error, in seal and open alike: a wrong handle, a range past the buffer', { skip: peerAddon() ? false : 'peer addon not built' }, () => {
  const addon = peerAddon()!;
  const enc = addon.etAeadCreate(0, KEY128, true);
  const dec = addon.etAeadCreate(0, KEY128, false);
  const buf = new Uint8Array(64);
  const bad = (f: () => unknown): void => assert.throws(f, (e: unknown) => (e as { code?: string }).code === 'TSTIER_E_NATIVE');
  bad(() => addon.etAeadSeal(dec, buf, 0, buf.subarray(0, 8), false));
  bad(() => addon.etAeadOpen(enc, buf, 0, 40));
  bad(() => addon.etAeadSeal(enc, buf, 40, buf.subarray(0, 8), false));
  bad(() => addon.etAeadOpen(dec, buf, 40, 40));
  bad(() => (addon.etAeadOpen as (...a: unknown[]) => number)(dec, buf, 0));
  addon.etAeadSeal(enc, buf, 0, buf.subarray(0, 36), false);
  assert.equal(addon.etAeadOpen(dec, buf, 0, 64), 36, 'in range: seals and opens');
});

test('xor: the same length, each byte xored with key128 repeated', () => {
  const plain = randomBytes(40);
  const sealed = etCipher('xor', SECRET).seal(plain);
  assert.equal(sealed.length, 40);
  for (let i = 0; i < 40; i++) assert.equal(sealed[i], plain[i]! ^ KEY128[i % 16]!);
  const c = etCipher('xor', SECRET);
  const p = splitPm(buildPm(hdr, plain, c))!;
  assert.deepEqual(Buffer.from((openPm(p, c) as { payload: Uint8Array }).payload), plain);
});

test('the receiver drops: a forged tag, the wrong algorithm, plaintext when encryption is on, compression, sealed when off', () => {
  const aes = etCipher('aes-gcm', SECRET);
  const data = randomBytes(64);
  const pkt = buildPm(hdr, data, aes);
  pkt[20]! ^= 1;
  assert.deepEqual(openPm(splitPm(pkt)!, aes), { drop: 'decrypt-failed' });
  assert.deepEqual(openPm(splitPm(buildPm(hdr, data, aes))!, etCipher('chacha20', SECRET)), { drop: 'decrypt-failed' });
  assert.deepEqual(openPm(splitPm(buildPm(hdr, data, aes))!, etCipher('aes-gcm', 'other')), { drop: 'decrypt-failed' });

  const none = etCipher('none', SECRET);
  const plainPkt = buildPm(hdr, data, none);
  assert.equal(plainPkt[9]! & PmFlag.Encrypted, 0);
  assert.deepEqual(openPm(splitPm(plainPkt)!, aes), { drop: 'plaintext-refused' }, 'EasyTier would accept it');
  for (const type of [EtPacketType.RpcReq, EtPacketType.RpcResp, EtPacketType.KcpSrc, EtPacketType.KcpDst, EtPacketType.QuicSrc]) {
    assert.deepEqual(openPm(splitPm(buildPm({ ...hdr, type }, data, none))!, aes), { drop: 'plaintext-refused' });
  }
  // Ping and HandShake are never encrypted, by anyone.
  const ping = buildPing(1, 2, 3);
  assert.deepEqual(Buffer.from((openPm(splitPm(ping)!, aes) as { payload: Uint8Array }).payload), Buffer.from(ping.subarray(16)));
  assert.equal(buildPm({ ...hdr, type: EtPacketType.HandShake }, data, aes).length, 16 + 64, 'a handshake is not sealed');

  const compressed = buildPm({ ...hdr, flags: PmFlag.Compressed }, data, none);
  assert.deepEqual(openPm(splitPm(compressed)!, none), { drop: 'compressed' });
  assert.deepEqual(openPm(splitPm(buildPm(hdr, data, aes))!, none), { drop: 'encrypted-but-off' });
  const wrongLen = buildPm(hdr, data, none);
  wrongLen[12] = 63;
  assert.deepEqual(openPm(splitPm(wrongLen)!, none), { drop: 'bad-len' });
  assert.deepEqual(Buffer.from((openPm(splitPm(buildPm(hdr, data, none))!, none) as { payload: Uint8Array }).payload), data);
});

test('algorithm names as EasyTier 2.6.4 spells them', () => {
  assert.equal(parseEtAlgorithm(''), 'aes-gcm');
  for (const a of ['aes-gcm', 'aes-256-gcm', 'chacha20', 'xor']) assert.equal(parseEtAlgorithm(a), a);
  for (const a of ['aes-gcm-256', 'openssl-aes-gcm', 'none', 'AES-GCM']) assert.equal(parseEtAlgorithm(a), null);
});
