/**
 * QuicEndpoint against bad input and its own crashes: random datagrams (fresh endpoint, and
 * mid-transfer with the live connection's ids) never throw and never disturb a transfer; a trap
 * in the wasm core turns into connection-lost events and a working replacement instance.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { QUIC_GONE, QuicEndpoint } from '../../../daemon/carrier/quic/endpoint.js';
import { loadQuicModule } from '../../../daemon/carrier/quic/wasm.js';
import { Rng } from '../../sim/world.js';
import { type StreamState, connectedPair, payload, peerState, sha256 } from './harness.js';

const MAX_TIME = 10 * 60_000;


test('random datagrams into a fresh endpoint: no throw, no crash, no connection', async () => {
  const rng = new Rng(11);
  const ep = new QuicEndpoint(await loadQuicModule(), { seed: 11 });
  let now = 0;
  for (let i = 0; i < 3000; i++) {
    const len = rng.chance(0.3) ? 1200 + rng.int(100) : rng.int(1500);
    const d = rng.bytes(len);
    // Some look like QUIC v1 Initials (long header, version 1), to get past the first checks.
    if (len > 6 && rng.chance(0.5)) d.set([0xc0 | rng.int(4), 0, 0, 0, 1], 0);
    ep.input(rng.chance(0.1) ? 0 : 1 + rng.int(5), d, now, rng.chance(0.5));
    now += rng.int(3);
    while (ep.pollTransmit() !== null);
    if (ep.pollTimeout() <= now) ep.handleTimeout(now);
    while (ep.pollEvent() !== null);
  }
  ep.input(1, new Uint8Array(70_000), now, true);
  assert.equal(ep.crashCount, 0);
  assert.equal(ep.connectionCount, 0);
  assert.ok(ep.droppedInputs > 0, 'peer id 0 and oversized datagrams are counted');
});

test('garbage carrying the live connection ids is dropped; the transfer stays byte-exact', async () => {
  const rng = new Rng(12);
  const { world, a, b } = await connectedPair({ seed: 12 });
  // Learn real datagram headers by tapping what b receives.
  const seen: Uint8Array[] = [];
  const input = b.input.bind(b);
  b.input = (d, now, from) => {
    if (seen.length < 200) seen.push(d.slice());
    input(d, now, from);
  };
  const up = payload(rng, 2 << 20);
  const s = a.send(b.node, up);
  assert.ok(s);
  let injected = 0;
  const inject = (now: number): void => {
    for (let i = 0; i < 20 && seen.length > 0; i++) {
      const real = rng.pick(seen);
      // Keep the sim's side byte, the header byte and the connection id (1 + 1 + 8 bytes).
      const fake = rng.bytes(Math.max(real.length - rng.int(50), 10));
      fake.set(real.subarray(0, 10));
      b.input(fake, now, a.node);
      a.input(rng.bytes(rng.int(1300)), now, b.node);
      injected++;
    }
    if (!s.in.fin || peerState(b, s.stream)?.in.fin !== true) world.schedule(now + 5, inject);
  };
  world.schedule(world.now + 1, inject);
  b.replyFor = () => new Uint8Array(0);
  const r = world.run({ until: () => peerState(b, s.stream)?.in.fin === true && s.in.fin, maxTime: MAX_TIME });
  assert.ok(r.done, 'transfer completed under garbage');
  assert.ok(injected > 100, `injected ${injected}`);
  assert.equal(peerState(b, s.stream)!.in.digest, sha256(up));
  assert.equal(a.ep.crashCount + b.ep.crashCount, 0);
  assert.equal(a.events.filter((e) => e.type === 'connection-lost').length, 0, 'connection survived');
});

test('a trap in the core reports connection-lost (crashed) and a fresh instance works', async () => {
  const rng = new Rng(13);
  const { world, a, b } = await connectedPair({ seed: 13 });
  const oldConn = a.ep.connectionTo(b.peerId)!;
  const s = a.send(b.node, payload(rng, 1 << 20));
  assert.ok(s);
  world.run({ until: () => (peerState(b, s.stream)?.in.bytes ?? 0) > 100_000, maxTime: MAX_TIME });

  a.ep.debugPanic();
  assert.equal(a.ep.crashCount, 1);
  const lost = a.ep.pollEvent();
  assert.deepEqual(lost, { type: 'connection-lost', conn: oldConn, peerId: b.peerId, reason: 'crashed', errorCode: 0, detail: 'QUIC core trapped' });
  assert.equal(a.ep.connectionTo(b.peerId), undefined);
  assert.equal(a.ep.write(oldConn, s.stream, new Uint8Array(10)), QUIC_GONE, 'stale ids fail cleanly');
  assert.equal(a.ep.openStream(b.peerId), null);

  const newConn = a.ep.connect(b.peerId, world.now);
  assert.ok(newConn > oldConn, 'connection ids are not reused across instances');
  const up = payload(rng, 300_000);
  const upSha = sha256(up);
  assert.ok(world.run({ until: () => a.events.some((e) => e.type === 'connected' && e.conn === newConn), maxTime: MAX_TIME }).done, 'handshake again');
  const s2 = a.send(b.node, up);
  assert.ok(s2);
  const r = world.run({ until: () => [...b.streams.values()].some((x) => x.in.digest === upSha), maxTime: MAX_TIME });
  assert.ok(r.done, 'new connection carries a stream after the crash');
  assert.equal(b.ep.crashCount, 0);
});

test('3000 short flows, 100 at a time: all byte-exact, core memory flat after warm-up', async () => {
  const rng = new Rng(14);
  // Warm-up is a full cycle of the peer's stream slots (quinn fills each on first use); 255 of them
  // keep it to ten batches (the default 4096 plateaus too, ~4,000 streams in, ~200 bytes a slot).
  const { world, a, b } = await connectedPair({ seed: 14, quic: { maxStreams: 255 } });
  b.replyFor = () => payload(rng, 1 + rng.int(2000));
  const memory: number[] = [];
  for (let batch = 0; batch < 30; batch++) {
    const flows: StreamState[] = [];
    for (let i = 0; i < 100; i++) flows.push(a.send(b.node, payload(rng, 1 + rng.int(2000)))!);
    assert.ok(flows.every((s) => s !== null), `batch ${batch}: streams open`);
    const r = world.run({ until: () => flows.every((s) => s.in.fin && s.out!.acked && peerState(b, s.stream)?.out?.acked === true), maxTime: world.now + 600_000 });
    assert.ok(r.done, `batch ${batch} completed`);
    for (const s of flows) {
      assert.equal(peerState(b, s.stream)!.in.digest, s.out!.sha);
      a.streams.delete(`${s.conn}/${s.stream}`);
      b.streams.delete(`${peerState(b, s.stream)!.conn}/${s.stream}`);
    }
    memory.push(a.ep.memoryBytes + b.ep.memoryBytes);
  }
  assert.equal(memory[29], memory[9], `linear memory grew after warm-up: ${memory.join(' ')}`);
});

test('stream calls with arbitrary ids never trap and never throw for gone streams', async () => {
  const rng = new Rng(15);
  const { world, a, b } = await connectedPair({ seed: 15 });
  const s = a.send(b.node, payload(rng, 1000))!;
  world.run({ until: () => false, maxTime: world.now + 50 });
  const conns = [s.conn, s.conn + 1, 0, 0xffff_ffff];
  const buf = new Uint8Array(100);
  for (let i = 0; i < 2000; i++) {
    const ep = rng.chance(0.5) ? a.ep : b.ep;
    const conn = rng.pick(conns);
    const stream = rng.chance(0.5) ? rng.int(64) : rng.int(2 ** 40);
    const code = rng.int(1000);
    const op = rng.int(5);
    try {
      if (op === 0) ep.write(conn, stream, buf);
      else if (op === 1) ep.read(conn, stream, buf);
      else if (op === 2) ep.finish(conn, stream);
      else if (op === 3) ep.reset(conn, stream, code);
      else ep.stop(conn, stream, code);
    } catch (e) {
      // Only a refused operation on a stream in the wrong state may throw, never a trap.
      assert.equal((e as { code?: string }).code, 'TSTIER_E_CLOSED', String(e));
    }
    world.run({ until: () => false, maxTime: world.now + 1 });
  }
  assert.equal(a.ep.crashCount + b.ep.crashCount, 0, 'no trap');
});

for (const sameKey of [true, false]) {
  test(`a peer restarted with ${sameKey ? 'the same' : 'a new'} reset key: stale connection ends by ${sameKey ? 'stateless reset' : 'idle timeout'}`, async () => {
    const key = new Uint8Array(16).fill(7);
    const quic = { resetKey: key, idleTimeoutMs: 20_000 };
    const { world, a, b } = await connectedPair({ seed: 16, quic });
    const s = a.send(b.node, payload(new Rng(16), 10_000))!;
    assert.ok(world.run({ until: () => peerState(b, s.stream)?.in.bytes === 10_000, maxTime: MAX_TIME }).done);
    // b restarts: same node, a fresh endpoint that knows nothing of the connection.
    const fresh = new QuicEndpoint(await loadQuicModule(), { seed: 99, resetKey: sameKey ? key : new Uint8Array(16).fill(8) });
    b.ep = fresh;
    const cut = world.now;
    // A new flow to the restarted peer: its first packet meets the fresh endpoint.
    world.schedule(cut, () => {
      const t = a.ep.openStream(b.peerId)!;
      a.ep.write(t.conn, t.stream, payload(new Rng(17), 1000));
    });
    assert.ok(world.run({ until: () => a.events.some((e) => e.type === 'connection-lost'), maxTime: cut + 60_000 }).done);
    const lost = a.events.find((e) => e.type === 'connection-lost');
    assert.equal(lost?.type === 'connection-lost' && lost.reason, sameKey ? 'reset' : 'timed-out');
    if (sameKey) assert.equal(world.now - cut, 2, 'reset after one round trip (1 ms each way)');
    assert.equal(fresh.connectionCount, 0, 'the restarted peer kept no state for it');
  });
}
