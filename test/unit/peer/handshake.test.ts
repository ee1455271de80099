import { test } from 'node:test';
import assert from 'node:assert/strict';
import { derivePsk, HandshakeInitiator, HandshakeResponder, INIT_LEN } from '../../../daemon/peer/handshake.js';

const NOW = 1_700_000_000_000;
const psk = derivePsk('net', 'secret');

test('both sides derive mirrored keys and learn each other\'s peer id', () => {
  const i = new HandshakeInitiator(psk, 111, NOW);
  const r = new HandshakeResponder(psk, 222);
  const acc = r.accept(i.message, NOW + 5);
  assert.ok(typeof acc !== 'string');
  assert.equal(acc.initiatorPeerId, 111);
  const done = i.complete(acc.response);
  assert.ok(done);
  assert.equal(done.peerId, 222);
  assert.deepEqual(done.keys.send, acc.keys.recv);
  assert.deepEqual(done.keys.recv, acc.keys.send);
  assert.notDeepEqual(done.keys.send, done.keys.recv);
});

test('a wrong secret or a wrong network name is rejected at the MAC and counted', () => {
  for (const other of [derivePsk('net', 'wrong'), derivePsk('other', 'secret')]) {
    const r = new HandshakeResponder(psk, 222);
    assert.equal(r.accept(new HandshakeInitiator(other, 1, NOW).message, NOW), 'mac');
    assert.equal(r.rejected.mac, 1);
  }
});

test('a replayed init is refused; a stale or future one too', () => {
  const r = new HandshakeResponder(psk, 222, { maxSkewMs: 60_000 });
  const init = new HandshakeInitiator(psk, 1, NOW).message;
  assert.ok(typeof r.accept(init, NOW) !== 'string');
  assert.equal(r.accept(init, NOW + 1000), 'replay');
  assert.equal(r.accept(init, NOW + 61_000), 'stale');
  assert.equal(r.accept(new HandshakeInitiator(psk, 1, NOW + 61_000).message, NOW), 'stale');
});

test('even a fresh responder (empty nonce cache) gives a replayer nothing it can use', () => {
  const orig = new HandshakeInitiator(psk, 1, NOW);
  const r1 = new HandshakeResponder(psk, 222);
  assert.ok(typeof r1.accept(orig.message, NOW) !== 'string');
  // Replay to a restarted responder: it answers, but the keys depend on the initiator's ephemeral
  // private key; another initiator (the attacker) cannot complete with that answer.
  const acc = new HandshakeResponder(psk, 222).accept(orig.message, NOW);
  assert.ok(typeof acc !== 'string');
  const attacker = new HandshakeInitiator(psk, 1, NOW);
  assert.equal(attacker.complete(acc.response), null);
});

test('a tampered answer does not complete; each byte of an init matters', () => {
  const i = new HandshakeInitiator(psk, 111, NOW);
  const acc = new HandshakeResponder(psk, 222).accept(i.message, NOW);
  assert.ok(typeof acc !== 'string');
  const bad = Buffer.from(acc.response);
  bad[20]! ^= 1;
  assert.equal(i.complete(bad), null);
  for (let k = 0; k < INIT_LEN; k += 7) {
    const m = Buffer.from(new HandshakeInitiator(psk, 3, NOW).message);
    m[k]! ^= 0x80;
    assert.equal(typeof new HandshakeResponder(psk, 222).accept(m, NOW), 'string', `byte ${k}`);
  }
});

test('garbage of every length is refused without throwing', () => {
  const r = new HandshakeResponder(psk, 222);
  const i = new HandshakeInitiator(psk, 1, NOW);
  for (let n = 0; n < 200; n++) {
    const g = Buffer.alloc(n, n * 37);
    if (n > 0) g[0] = n % 3;
    assert.equal(typeof r.accept(g, NOW), 'string');
    assert.equal(i.complete(g), null);
  }
});
