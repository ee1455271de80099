/**
 * Secure datagrams on a virtual clock: the 28-byte tail with epoch ‖ seq as the nonce, out-of-order
 * delivery, replays and too-old packets refused (a forged nonce never moves the window), epoch
 * rotation by time and by packet count with the previous epoch still open, and an epoch too far
 * ahead refused. Keys are RFC 5869 HKDF-SHA256 over the root key, as checked here by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { MAX_EPOCH_AHEAD, ROTATE_AFTER_MS, SecureSession, trafficKey } from '../../../../daemon/peer/easytier/secure-datagram.js';
import { REPLAY_WINDOW } from '../../../../daemon/peer/replay-window.js';

const root = randomBytes(32);
const ROTATE_PACKETS = 100;
const pair = (alg: 'aes-gcm' | 'aes-256-gcm' | 'chacha20' = 'aes-gcm'): [SecureSession, SecureSession] => [
  new SecureSession({ rootKey: root, generation: 1, initialEpoch: 0, sendAlgorithm: alg, recvAlgorithm: alg, now: 0, rotateAfterPackets: ROTATE_PACKETS }),
  new SecureSession({ rootKey: root, generation: 1, initialEpoch: 0, sendAlgorithm: alg, recvAlgorithm: alg, now: 0 }),
];
const nonceOf = (sealed: Uint8Array): { epoch: number; seq: number } => {
  const v = Buffer.from(sealed.subarray(sealed.length - 12));
  return { epoch: v.readUInt32BE(0), seq: v.readUInt32BE(4) * 2 ** 32 + v.readUInt32BE(8) };
};

test('the traffic key is HKDF-SHA256(salt 0^32, root, "et-traffic" ‖ epoch BE ‖ dir), one block', () => {
  const prk = createHmac('sha256', Buffer.alloc(32)).update(root).digest();
  const info = Buffer.concat([Buffer.from('et-traffic'), Buffer.from([0, 0, 1, 2]), Buffer.from([1])]);
  const okm = createHmac('sha256', prk).update(info).update(Buffer.from([1])).digest();
  assert.deepEqual(Buffer.from(trafficKey(root, 0x102, 1)), okm);
});

test('each algorithm: a tail of 28 bytes, seq counting up from 0, out-of-order opens, a replay or a flipped bit does not', () => {
  for (const alg of ['aes-gcm', 'aes-256-gcm', 'chacha20'] as const) {
    const [tx, rx] = pair(alg);
    const sealed = [0, 1, 2, 3].map((i) => tx.seal(0, Buffer.from(`p${i}`), 0));
    assert.deepEqual(sealed.map((s) => s.length), [30, 30, 30, 30]);
    assert.deepEqual(sealed.map((s) => nonceOf(s)), [0, 1, 2, 3].map((seq) => ({ epoch: 0, seq })));
    for (const i of [2, 0, 3, 1]) assert.equal(Buffer.from(rx.open(0, sealed[i]!, 0) as Uint8Array).toString(), `p${i}`, alg);
    assert.equal(rx.open(0, sealed[2]!, 0), 'replayed');
    const bad = Uint8Array.from(tx.seal(0, Buffer.from('x'), 0));
    bad[0] ^= 1;
    assert.equal(rx.open(0, bad, 0), 'decrypt-failed');
    assert.equal(Buffer.from(rx.open(0, tx.seal(0, Buffer.from('y'), 0), 0) as Uint8Array).toString(), 'y', 'the forgery did not burn its seq');
    assert.equal(rx.open(1, tx.seal(0, Buffer.from('z'), 0), 0), 'decrypt-failed', 'the other direction has another key');
    assert.deepEqual(rx.drops, { replayed: 1, 'bad-epoch': 0, 'decrypt-failed': 2 });
  }
});

test('a packet older than the replay window is refused', () => {
  const [rx, tx] = pair(); // the second of a pair rotates by time only
  const first = tx.seal(0, Buffer.from('old'), 0);
  let last: Uint8Array = first;
  for (let i = 0; i <= REPLAY_WINDOW; i++) last = tx.seal(0, Buffer.from('n'), 0);
  assert.ok(rx.open(0, last, 0) instanceof Uint8Array);
  assert.equal(rx.open(0, first, 0), 'replayed');
});

test('epochs: rotation by time and by count, the previous epoch still opens, one too far ahead does not', () => {
  const [tx, rx] = pair();
  const e0 = tx.seal(0, Buffer.from('e0'), 0);
  // The receive epoch stays open while packets keep coming (an idle one is forgotten after 30 s).
  assert.ok(rx.open(0, tx.seal(0, Buffer.from('a'), 0), ROTATE_AFTER_MS - 1) instanceof Uint8Array);
  tx.rotateIfDue(ROTATE_AFTER_MS - 1);
  assert.equal(tx.sendEpoch, 0);
  tx.rotateIfDue(ROTATE_AFTER_MS);
  const e1 = tx.seal(0, Buffer.from('e1'), ROTATE_AFTER_MS);
  assert.equal(nonceOf(e1).epoch, 1);
  assert.equal(Buffer.from(rx.open(0, e1, ROTATE_AFTER_MS) as Uint8Array).toString(), 'e1');
  assert.equal(Buffer.from(rx.open(0, e0, ROTATE_AFTER_MS) as Uint8Array).toString(), 'e0', 'late packet of the previous epoch');

  let sealedInEpoch1 = 1;
  const epochNow = (): number => tx.sendEpoch; // not narrowed by the asserts above
  while (epochNow() === 1 && sealedInEpoch1 < 10 * ROTATE_PACKETS) {
    tx.seal(0, Buffer.from(''), ROTATE_AFTER_MS);
    sealedInEpoch1++;
  }
  assert.equal(tx.sendEpoch, 2);
  assert.equal(sealedInEpoch1, ROTATE_PACKETS, 'the packet budget of an epoch moves to the next one');
  assert.ok(rx.open(0, tx.seal(0, Buffer.from('e2'), ROTATE_AFTER_MS), ROTATE_AFTER_MS) instanceof Uint8Array);
  assert.equal(rx.open(0, e0, ROTATE_AFTER_MS), 'bad-epoch', 'two epochs back is gone');

  const ahead = new SecureSession({ rootKey: root, generation: 1, initialEpoch: 2 + MAX_EPOCH_AHEAD + 1, sendAlgorithm: 'aes-gcm', recvAlgorithm: 'aes-gcm', now: 0 });
  assert.equal(rx.open(0, ahead.seal(0, Buffer.from('far'), 0), ROTATE_AFTER_MS), 'bad-epoch');
});

test('sealInto writes the packet in place (payload already where the ciphertext goes), the same bytes as seal', () => {
  for (const alg of ['aes-gcm', 'aes-256-gcm', 'chacha20'] as const) {
    const [a, b] = [pair(alg)[1], pair(alg)[1]];
    const copy = a.seal(1, Buffer.from('in place, please'), 0);
    const buf = new Uint8Array(4 + 16 + 28);
    buf.set(Buffer.from('in place, please'), 4);
    b.sealInto(1, buf, 4, buf.subarray(4, 20), 0);
    assert.deepEqual(buf.subarray(4), copy, alg);
    const [, rx] = pair(alg);
    assert.equal(Buffer.from(rx.open(1, buf.subarray(4), 0) as Uint8Array).toString(), 'in place, please');
  }
});
