import { test } from 'node:test';
import assert from 'node:assert/strict';
import { derivePsk, HandshakeResponder } from '../../../daemon/peer/handshake.js';
import { DEFAULT_TIMERS, PeerSession } from '../../../daemon/peer/session.js';
import { PacketType } from '../../../daemon/peer/wire.js';

const NOW = 1_700_000_000_000;
const HEADROOM = 4;
const psk = derivePsk('net', 'secret');
const strip = (b: Buffer): Buffer => b.subarray(HEADROOM);

function drain(s: PeerSession): Buffer[] {
  const out: Buffer[] = [];
  for (let p = s.pollTransmit(); p; p = s.pollTransmit()) out.push(strip(p));
  return out;
}

/** Runs the handshake to completion; returns [initiator, responder]. */
function pair(now = NOW): [PeerSession, PeerSession] {
  const a = PeerSession.initiate(psk, 1, HEADROOM, now);
  const [init] = drain(a);
  const b = PeerSession.accept(new HandshakeResponder(psk, 2), 2, HEADROOM, init!, now);
  assert.ok(b);
  for (const p of drain(b)) a.input(p, now);
  assert.equal(a.state, 'up');
  for (const p of drain(a)) b.input(p, now); // the key-confirming ping
  assert.equal(b.state, 'up');
  drain(b); // its pong
  return [a, b];
}

test('handshake happy path, then data both ways', () => {
  const [a, b] = pair();
  assert.equal(a.peerId, 2);
  assert.equal(b.peerId, 1);
  assert.deepEqual(a.pollEvent(), { type: 'up', peerId: 2 });
  assert.deepEqual(b.pollEvent(), { type: 'up', peerId: 1 });
  const msg = Buffer.from('hello over the overlay');
  const wire = strip(a.seal(1, 2, PacketType.Data, 0, 1, msg)!);
  assert.ok(!wire.includes(msg), 'payload travels encrypted');
  assert.deepEqual(b.input(wire, NOW), msg);
  assert.deepEqual(a.input(strip(b.seal(2, 1, PacketType.Data, 0, 1, Buffer.from('back'))!), NOW), Buffer.from('back'));
});

test('a wrong secret gets no session and no reply at all', () => {
  const a = PeerSession.initiate(derivePsk('net', 'wrong'), 1, HEADROOM, NOW);
  const responder = new HandshakeResponder(psk, 2);
  for (const init of drain(a)) assert.equal(PeerSession.accept(responder, 2, HEADROOM, init, NOW), null);
  assert.equal(responder.rejected.mac, 1);
});

test('a tampered packet is dropped and does not poison the window', () => {
  const [a, b] = pair();
  const wire = strip(a.seal(1, 2, PacketType.Data, 0, 1, Buffer.alloc(100, 7))!);
  for (const at of [0, 4, 8, 10, 16, 30, wire.length - 1]) {
    const bad = Buffer.from(wire);
    bad[at]! ^= 0x01;
    assert.equal(b.input(bad, NOW), null, `flipped byte ${at}`);
  }
  assert.deepEqual(b.input(wire, NOW), Buffer.alloc(100, 7));
  assert.equal(b.stats.dropped, 7);
});

test('a replayed packet is dropped; reordered ones inside the window are kept', () => {
  const [a, b] = pair();
  const sealed = Array.from({ length: 5 }, (_, i) => strip(a.seal(1, 2, PacketType.Data, 0, 1, Buffer.from([i]))!));
  for (const i of [4, 0, 2]) assert.deepEqual(b.input(sealed[i]!, NOW), Buffer.from([i]));
  assert.equal(b.input(sealed[2]!, NOW), null);
  assert.equal(b.input(sealed[4]!, NOW), null);
  assert.deepEqual(b.input(sealed[3]!, NOW), Buffer.from([3]));
});

test('the initiator repeats a lost init; the responder repeats its answer, and both come up', () => {
  const a = PeerSession.initiate(psk, 1, HEADROOM, NOW);
  const [lost] = drain(a);
  a.handleTimeout(NOW + DEFAULT_TIMERS.handshakeRetryMs);
  const [again] = drain(a);
  assert.deepEqual(again, lost);
  const b = PeerSession.accept(new HandshakeResponder(psk, 2), 2, HEADROOM, again!, NOW);
  assert.ok(b);
  drain(b); // answer lost
  b.input(again!, NOW + 2000);
  const answers = drain(b);
  assert.equal(answers.length, 1);
  a.input(answers[0]!, NOW + 2000);
  for (const p of drain(a)) b.input(p, NOW + 2000);
  assert.equal(a.state, 'up');
  assert.equal(b.state, 'up');
});

test('handshake gives up after its timeout; a silent peer goes down after deadMs', () => {
  const a = PeerSession.initiate(psk, 1, HEADROOM, NOW);
  let t = NOW;
  while (a.state !== 'closed' && t < NOW + 60_000) {
    t = a.pollTimeout();
    a.handleTimeout(t);
  }
  assert.equal(a.state, 'closed');
  assert.equal(t, NOW + DEFAULT_TIMERS.handshakeTimeoutMs);

  const [x] = pair();
  x.pollEvent();
  let sentPings = 0;
  t = NOW;
  while (x.state === 'up' && t < NOW + 60_000) {
    t = x.pollTimeout();
    x.handleTimeout(t);
    sentPings += drain(x).length;
  }
  assert.equal(x.state, 'closed');
  assert.equal(t, NOW + DEFAULT_TIMERS.deadMs);
  assert.ok(sentPings >= 4, 'kept pinging while waiting');
  assert.deepEqual(x.pollEvent(), { type: 'down', reason: 'peer silent' });
});

test('ping/pong measures RTT and keeps the session alive', () => {
  const [a, b] = pair();
  const t1 = NOW + DEFAULT_TIMERS.keepaliveMs;
  a.handleTimeout(t1);
  for (const p of drain(a)) b.input(p, t1 + 10);
  for (const p of drain(b)) a.input(p, t1 + 25);
  assert.equal(a.stats.rttMs, 25);
  a.handleTimeout(NOW + DEFAULT_TIMERS.deadMs);
  assert.equal(a.state, 'up', 'the pong counted as life');
});

test('garbage into every input of every state never throws and is counted', () => {
  const [a, b] = pair();
  const fresh = PeerSession.initiate(psk, 3, HEADROOM, NOW);
  const responder = new HandshakeResponder(psk, 2);
  let seed = 12345;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) & 0xff;
  for (let n = 0; n < 2000; n++) {
    const g = Buffer.alloc(n % 300, 0);
    for (let i = 0; i < g.length; i++) g[i] = rnd();
    if (g.length >= 16 && n % 2) { g.writeUInt32LE(g.length - 16, 12); g[9] = 1; g[8] = n % 4 ? 1 : 2; }
    for (const s of [a, b, fresh]) assert.equal(s.input(g, NOW), null);
    assert.equal(PeerSession.accept(responder, 2, HEADROOM, g, NOW), null);
  }
  assert.equal(a.state, 'up');
  assert.equal(fresh.state, 'handshake');
});
