/**
 * QuicEndpoint over a clean in-memory link (test/sim/world.ts, 1 ms each way): handshake, bulk
 * and many-stream transfers checked by sha256 at both ends, half-close, reset and stop codes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FrameReader, FrameType, decodeOpen, encodeOpen } from '../../../daemon/carrier/flow-frames.js';
import { QuicEndpoint } from '../../../daemon/carrier/quic/endpoint.js';
import { loadQuicModule } from '../../../daemon/carrier/quic/wasm.js';
import { Rng } from '../../sim/world.js';
import { type Pair, QuicNode, SIDE_ACCEPTOR, SIDE_INITIATOR, type StreamState, connectedPair, payload, peerState, sha256 } from './harness.js';
import { socketAddrOf } from '../../../daemon/packet/flow-key.js';

const MAX_TIME = 10 * 60_000;

function assertDelivered(sender: StreamState, receiver: StreamState | undefined, what: string): void {
  assert.ok(receiver, `${what}: receiver never saw the stream`);
  assert.equal(receiver.in.fin, true, `${what}: FIN not received`);
  assert.equal(receiver.in.bytes, sender.out!.payload.length, `${what}: byte count`);
  assert.equal(receiver.in.digest, sender.out!.sha, `${what}: sha256`);
}


test('handshake: both sides see connected, with direction, peer ids and an RTT', async () => {
  const { a, b } = await connectedPair({ seed: 1 });
  const ea = a.events.find((e) => e.type === 'connected');
  const eb = b.events.find((e) => e.type === 'connected');
  assert.deepEqual(ea && { peer: ea.peerId, out: ea.outgoing }, { peer: b.peerId, out: true });
  assert.deepEqual(eb && { peer: eb.peerId, out: eb.outgoing }, { peer: a.peerId, out: false });
  assert.equal(a.ep.connectionTo(b.peerId), ea!.conn);
  assert.equal(a.ep.connect(b.peerId, 0), ea!.conn, 'connect reuses the open connection');
  const stats = a.ep.stats(ea!.conn);
  assert.ok(stats.rttMs >= 2 && stats.rttMs < 50, `rtt ${stats.rttMs} on a 2 ms round trip`);
  assert.equal(stats.mtu, 1200);
  assert.ok(stats.bytesOut > 0 && stats.bytesIn > 0);
});

test('one stream carries 16 MiB each way byte-exact', async () => {
  const rng = new Rng(2);
  const up = payload(rng, 16 << 20);
  const down = payload(rng, 16 << 20);
  const { world, a, b } = await connectedPair({ seed: 2 });
  b.replyFor = () => down;
  const s = a.send(b.node, up);
  assert.ok(s, 'stream opens once connected');
  const r = world.run({ until: () => s.in.fin && peerState(b, s.stream)?.in.fin === true, maxTime: MAX_TIME });
  assert.ok(r.done, 'transfer completed');
  assertDelivered(s, peerState(b, s.stream), 'a→b');
  assert.equal(s.in.digest, sha256(down), 'b→a sha256');
  assert.equal(s.in.bytes, down.length);
  assert.equal(a.ep.crashCount + b.ep.crashCount, 0);
});

test('200 concurrent streams each way, every one byte-exact', async () => {
  const rng = new Rng(3);
  const { world, a, b } = await connectedPair({ seed: 3 });
  const replies = new Map<number, Uint8Array>();
  b.replyFor = (s) => {
    const p = payload(rng, 1 + rng.int(40_000));
    replies.set(s.stream, p);
    return p;
  };
  const opened: StreamState[] = [];
  for (let i = 0; i < 200; i++) {
    const s = a.send(b.node, payload(rng, rng.int(40_000)));
    assert.ok(s, `stream ${i} opens (limit is 255)`);
    opened.push(s);
  }
  assert.equal(new Set(opened.map((s) => s.stream)).size, 200);
  const r = world.run({
    until: () => opened.every((s) => s.in.fin && peerState(b, s.stream)?.in.fin === true),
    maxTime: MAX_TIME,
  });
  assert.ok(r.done, 'all 200 streams completed');
  for (const s of opened) {
    assertDelivered(s, peerState(b, s.stream), `a→b stream ${s.stream}`);
    assert.equal(s.in.digest, sha256(replies.get(s.stream)!), `b→a stream ${s.stream}`);
  }
});

test('half-close each way: data keeps flowing towards the side that sent FIN', async () => {
  const rng = new Rng(4);
  const { world, a, b } = await connectedPair({ seed: 4 });
  b.autoFinish = false;
  const down = payload(rng, 300_000);
  b.replyFor = () => down;
  const s = a.send(b.node, payload(rng, 100_000));
  assert.ok(s);
  // a's FIN arrives while b has not finished: b can still send everything.
  let r = world.run({ until: () => peerState(b, s.stream)?.in.fin === true && s.in.bytes === down.length, maxTime: MAX_TIME });
  assert.ok(r.done, 'a→b finished and b→a data arrived');
  assertDelivered(s, peerState(b, s.stream), 'a→b');
  assert.equal(s.in.fin, false, 'no FIN from b yet');
  r = world.run({ until: () => s.out!.acked, maxTime: MAX_TIME });
  assert.ok(r.done, 'a sees its FIN acknowledged (finished event)');
  const bs = peerState(b, s.stream)!;
  b.ep.finish(bs.conn, bs.stream);
  bs.out!.finished = true;
  r = world.run({ until: () => s.in.fin && bs.out!.acked, maxTime: MAX_TIME });
  assert.ok(r.done, 'b→a FIN reaches a and is acknowledged');
  assert.equal(s.in.digest, sha256(down));
});

/** A connected pair with one open stream (no FIN) that has carried 10 bytes each way. */
async function openStreamBothWays(seed: number): Promise<Pair & { rng: Rng; s: StreamState; bs: StreamState }> {
  const rng = new Rng(seed);
  const pair = await connectedPair({ seed });
  const { world, a, b } = pair;
  a.autoFinish = false;
  b.autoFinish = false;
  b.replyFor = () => payload(rng, 10);
  const s = a.send(b.node, payload(rng, 10));
  assert.ok(s);
  assert.ok(world.run({ until: () => peerState(b, s.stream)?.in.bytes === 10 && s.in.bytes === 10, maxTime: MAX_TIME }).done);
  return { ...pair, rng, s, bs: peerState(b, s.stream)! };
}

for (const [who, code] of [
  ['opener', 7],
  ['acceptor', 1234567],
] as const) {
  test(`reset by the ${who} reaches the other side as a reset event with code ${code}`, async () => {
    const { rng, world, a, b, s, bs } = await openStreamBothWays(5);
    const [resetter, target, mine, theirs] = who === 'opener' ? [a, b, s, bs] : [b, a, bs, s];
    resetter.ep.reset(mine.conn, mine.stream, code);
    assert.ok(world.run({ until: () => theirs.resetCode !== undefined, maxTime: MAX_TIME }).done, 'reset event arrived');
    assert.equal(theirs.resetCode, code);
    const ev = target.events.find((e) => e.type === 'reset');
    assert.deepEqual(ev && { stream: ev.stream, peer: ev.peerId }, { stream: s.stream, peer: resetter.peerId });
    // The reset direction is gone; the other direction still works.
    const more = payload(rng, 5000);
    assert.equal(target.ep.write(theirs.conn, theirs.stream, more), more.length);
    target.ep.finish(theirs.conn, theirs.stream);
    assert.ok(world.run({ until: () => mine.in.fin, maxTime: MAX_TIME }).done);
    assert.equal(mine.in.bytes, 10 + more.length);
  });
}

test('stop on either side reaches the writer as a stopped event with the code', async () => {
  const { world, a, b, s, bs } = await openStreamBothWays(6);
  b.ep.stop(bs.conn, bs.stream, 42);
  a.ep.stop(s.conn, s.stream, 43);
  assert.ok(world.run({ until: () => s.stoppedCode !== undefined && bs.stoppedCode !== undefined, maxTime: MAX_TIME }).done);
  assert.equal(s.stoppedCode, 42);
  assert.equal(bs.stoppedCode, 43);
});

test('a connection close reaches the peer as connection-lost and frees openStream', async () => {
  const { world, a, b } = await connectedPair({ seed: 7 });
  const conn = a.ep.connectionTo(b.peerId)!;
  a.ep.close(conn, 9, world.now);
  assert.ok(world.run({ until: () => b.events.some((e) => e.type === 'connection-lost'), maxTime: MAX_TIME }).done);
  const lostB = b.events.find((e) => e.type === 'connection-lost');
  assert.equal(lostB?.type === 'connection-lost' && lostB.reason, 'application-closed');
  assert.equal(lostB?.type === 'connection-lost' && lostB.errorCode, 9, 'the close code reaches the peer');
  const lostA = a.events.find((e) => e.type === 'connection-lost');
  assert.equal(lostA?.type === 'connection-lost' && lostA.reason, 'locally-closed');
  assert.equal(a.ep.openStream(b.peerId), null);
  assert.equal(a.ep.connectionTo(b.peerId), undefined);
});

test("a flow's OPEN frame as the stream's first bytes reaches the acceptor intact", async () => {
  const { world, a, b } = await connectedPair({ seed: 8 });
  b.keepBytes = true;
  const open = { src: socketAddrOf('10.0.0.1', 40000)!, dst: socketAddrOf('fd00::2', 443)!, optimistic: true };
  const s = a.send(b.node, encodeOpen(open));
  assert.ok(s);
  assert.ok(world.run({ until: () => peerState(b, s.stream)?.in.fin === true, maxTime: MAX_TIME }).done);
  const reader = new FrameReader();
  const frames: { type: FrameType; payload: Uint8Array }[] = [];
  for (const chunk of peerState(b, s.stream)!.in.chunks) {
    reader.push(chunk);
    for (let f = reader.next(); f !== null; f = reader.next()) {
      assert.notEqual(f, 'error');
      if (f !== 'error') frames.push({ type: f.type, payload: f.payload.slice() });
    }
  }
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.type, FrameType.Open);
  assert.deepEqual(decodeOpen(frames[0]!.payload), open);
});

test('three peers: connections both ways between one pair and to a third, all streams byte-exact', async () => {
  const rng = new Rng(9);
  const { world, a, b } = await connectedPair({ seed: 9 });
  const c = new QuicNode(new QuicEndpoint(await loadQuicModule(), { seed: 99 }));
  c.world = world;
  c.node = world.addNode(c);
  world.linkBoth(a.node, c.node, { delayMs: 2 });
  world.linkBoth(b.node, c.node, { delayMs: 3 });
  a.ep.connect(c.peerId, world.now);
  c.ep.connect(a.peerId, world.now); // the reverse connection of the same pair
  b.ep.connect(c.peerId, world.now);
  const ready = (n: QuicNode, k: number): boolean => n.events.filter((e) => e.type === 'connected').length >= k;
  assert.ok(world.run({ until: () => ready(a, 3) && ready(b, 2) && ready(c, 3), maxTime: MAX_TIME }).done, 'five connections up');
  assert.equal(a.events.filter((e) => e.type === 'connected' && e.peerId === c.peerId).length, 2, 'a has one connection each way with c');
  const flows: [QuicNode, QuicNode, StreamState][] = [];
  // openStream uses the opener's own connection: b has none to a, so no b→a flow here.
  for (const [from, to] of [[a, b], [a, c], [c, a], [b, c]] as const) {
    for (let i = 0; i < 3; i++) flows.push([from, to, from.send(to.node, payload(rng, rng.int(60_000)))!]);
  }
  // The receiving side of a flow: the stream with this id on the connection from `from`.
  const received = (from: QuicNode, to: QuicNode, s: StreamState): StreamState | undefined => {
    const conns = new Set(to.events.filter((e) => e.peerId === from.peerId && e.type === 'stream-opened').map((e) => e.conn));
    for (const x of to.streams.values()) if (x.stream === s.stream && conns.has(x.conn) && x.out === undefined) return x;
    return undefined;
  };
  assert.ok(world.run({ until: () => flows.every(([f, t, s]) => received(f, t, s)?.in.fin === true), maxTime: MAX_TIME }).done);
  for (const [f, t, s] of flows) assert.equal(received(f, t, s)!.in.digest, s.out!.sha, `${f.node}→${t.node} stream ${s.stream}`);
});

test('a peer that goes silent is reported as timed-out after the idle timeout', async () => {
  const { world, a, b } = await connectedPair({ seed: 10, quic: { idleTimeoutMs: 8_000, keepAliveMs: 2_000 } });
  const start = world.now;
  // Keep-alives hold an idle connection open well past the idle timeout.
  world.run({ until: () => false, maxTime: start + 30_000 });
  assert.equal(a.events.filter((e) => e.type === 'connection-lost').length, 0, 'idle but alive');
  world.linkBoth(a.node, b.node, { loss: 1 });
  const cut = world.now;
  assert.ok(world.run({ until: () => a.events.some((e) => e.type === 'connection-lost'), maxTime: cut + 60_000 }).done);
  const lost = a.events.find((e) => e.type === 'connection-lost');
  assert.equal(lost?.type === 'connection-lost' && lost.reason, 'timed-out');
  // The idle timer restarts on the last keep-alive sent, which may follow the cut by one interval.
  assert.ok(world.now - cut <= 8_000 + 2_000 + 1, `noticed ${world.now - cut} ms after the cut`);
});

test('maxUdpPayload: every datagram fits the configured size, and bigger ones are used', async () => {
  const rng = new Rng(15);
  // The sim adds one byte (the side flag) to each datagram.
  const { world, a, b } = await connectedPair({ seed: 15, quic: { maxUdpPayload: 1452 }, link: { delayMs: 1, mtu: 1453 } });
  let largest = 0;
  const pollTransmit = a.pollTransmit.bind(a);
  a.pollTransmit = () => {
    const t = pollTransmit();
    if (t) largest = Math.max(largest, t.data.length - 1);
    return t;
  };
  const s = a.send(b.node, payload(rng, 500_000))!;
  assert.ok(world.run({ until: () => peerState(b, s.stream)?.in.fin === true, maxTime: MAX_TIME }).done);
  assert.equal(peerState(b, s.stream)!.in.digest, s.out!.sha);
  assert.equal(world.stats(a.node, b.node).oversize, 0, 'nothing above 1452 bytes');
  assert.equal(largest, 1452);
  assert.equal(a.ep.stats(s.conn).mtu, 1452);
});

test('bad options are config errors naming the key', async () => {
  const module = await loadQuicModule();
  for (const [options, key] of [
    [{ maxUdpPayload: 1000 }, 'quic.maxUdpPayload'],
    [{ congestion: 'vegas' as never }, 'quic.congestion'],
    [{ streamWindow: 1.5 }, 'quic.streamWindow'],
    // Above the window where one stream's gaps under loss could make quinn close the connection.
    [{ streamWindow: 8 << 20 }, 'quic.streamWindow'],
    [{ seed: -1 }, 'quic.seed'],
  ] as const) {
    assert.throws(() => new QuicEndpoint(module, options), (e: Error & { code?: string }) => e.code === 'TSTIER_E_BAD_CONFIG' && e.message.startsWith(key));
  }
  const ep = new QuicEndpoint(module, { seed: 1 });
  assert.throws(() => ep.connect(0, 0), (e: Error & { code?: string }) => e.code === 'TSTIER_E_BAD_CONFIG');
  assert.throws(() => ep.reset(1, 0, -1), (e: Error & { code?: string }) => e.code === 'TSTIER_E_BAD_CONFIG');
});

test('datagrams say which side sent them, and a wrong side flag is dropped', async () => {
  const { world, a, b } = await connectedPair({ seed: 16 });
  const sides = new Set<string>();
  for (const n of [a, b]) {
    const pollTransmit = n.pollTransmit.bind(n);
    n.pollTransmit = () => {
      const t = pollTransmit();
      if (t) sides.add(`${n === a ? 'a' : 'b'}:${t.data[0]}`);
      return t;
    };
  }
  b.replyFor = () => new Uint8Array(0);
  const s = a.send(b.node, payload(new Rng(16), 50_000))!;
  assert.ok(world.run({ until: () => s.out!.acked && s.in.fin, maxTime: MAX_TIME }).done);
  assert.deepEqual([...sides].sort(), [`a:${SIDE_INITIATOR}`, `b:${SIDE_ACCEPTOR}`], 'initiator sends QuicSrc, acceptor QuicDst');
  // The same bytes with the other flag belong to no connection on that side.
  const before = b.ep.stats(peerState(b, s.stream)!.conn).datagramsIn;
  const t = a.ep.openStream(b.peerId)!;
  a.ep.write(t.conn, t.stream, new Uint8Array(100));
  const d = a.ep.pollTransmit()!;
  b.ep.input(a.peerId, d.data.slice(), world.now, !d.fromInitiator);
  assert.equal(b.ep.stats(peerState(b, s.stream)!.conn).datagramsIn, before, 'mismatched side not accepted');
  assert.equal(b.ep.pollEvent(), null);
});
