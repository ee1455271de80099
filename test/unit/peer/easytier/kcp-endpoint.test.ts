/**
 * EasyTier's kcp-sys connections between a src and a dst endpoint on a virtual clock: the
 * SYN / SYN|ACK / ACK|DATA opening, a transfer each way with half-close over a lossy path, the
 * refusals (unknown connections get RST), SYN retries and the connect timeout, pings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { CONFIRM_TIMEOUT_MS, CONNECT_TIMEOUT_MS, FIN_DRAIN_STALL_MS, MAX_OPENING_PER_PEER, EtKcpEndpoint, type KcpEndpointEvent, type KcpOut } from '../../../../daemon/peer/easytier/kcp-endpoint.js';
import { KcpFlag, decodeKcpEnvelope, encodeKcpEnvelope } from '../../../../daemon/peer/easytier/kcp-envelope.js';
import { EtPacketType } from '../../../../daemon/peer/easytier/pm.js';
import { Rng } from '../../../sim/world.js';

const SRC = 0x1111;
const DST = 0x2222;
const flow = { src: { addr: 0x0a000001, port: 40000 }, dst: { addr: 0x0a000002, port: 5201 } };

/** Moves packets between the two endpoints (dropping some), firing timers, until `until` or a time limit. */
class Pair {
  now = 0;
  readonly src = new EtKcpEndpoint('src', SRC);
  readonly dst = new EtKcpEndpoint('dst', DST);
  readonly events: { src: KcpEndpointEvent[]; dst: KcpEndpointEvent[] } = { src: [], dst: [] };
  readonly wire: KcpOut[] = [];
  /** Packets this returns true for are lost too (a kcp-sys acceptor that never took a connection). */
  drop: (o: KcpOut) => boolean = () => false;
  constructor(readonly rng = new Rng(1), public loss = 0) {}

  pump(onEvent: (side: 'src' | 'dst', e: KcpEndpointEvent) => void = () => {}): void {
    for (let moved = true; moved;) {
      moved = false;
      for (const [side, ep, other, otherId] of [['src', this.src, this.dst, SRC], ['dst', this.dst, this.src, DST]] as const) {
        for (let o = ep.pollTransmit(); o; o = ep.pollTransmit()) {
          moved = true;
          this.wire.push(o);
          if (!this.rng.chance(this.loss) && !this.drop(o)) other.input(otherId, o.payload, this.now);
        }
        for (let e = ep.pollEvent(); e; e = ep.pollEvent()) {
          moved = true;
          this.events[side].push(e);
          onEvent(side, e);
        }
      }
    }
  }

  run(until: () => boolean, limitMs: number, onEvent?: (side: 'src' | 'dst', e: KcpEndpointEvent) => void): boolean {
    const end = this.now + limitMs;
    this.pump(onEvent);
    while (!until() && this.now < end) {
      this.now = Math.min(end, Math.max(this.now + 1, Math.min(this.src.pollTimeout(), this.dst.pollTimeout())));
      this.src.handleTimeout(this.now);
      this.dst.handleTimeout(this.now);
      this.pump(onEvent);
    }
    return until();
  }
}

/** The ikcp command of a kcp-sys packet's first segment (83 WASK, 84 WINS), or -1 if it carries none. */
const ikcpCmd = (o: KcpOut): number => (o.payload.length >= 14 + 24 ? o.payload[14 + 4]! : -1);

test('opening: SYN with the connect message, SYN|ACK, empty ACK|DATA; accepted on the dst side; connected once its ikcp answers', () => {
  const p = new Pair();
  const id = p.src.connect(DST, flow, 0);
  p.pump();
  const [syn, synAck, ackData, wask] = p.wire.map((o) => ({ type: o.type, ...decodeKcpEnvelope(o.payload)! }));
  assert.deepEqual([syn!.type, syn!.env.flag, syn!.env.srcSessionId, syn!.env.dstSessionId, syn!.body.length], [EtPacketType.KcpSrc, KcpFlag.Syn, SRC, DST, 25]);
  assert.deepEqual([synAck!.type, synAck!.env.flag, synAck!.body.length], [EtPacketType.KcpDst, KcpFlag.Syn | KcpFlag.Ack, 0]);
  assert.deepEqual([ackData!.type, ackData!.env.flag, ackData!.body.length], [EtPacketType.KcpSrc, KcpFlag.Ack | KcpFlag.Data, 0]);
  assert.equal(syn!.env.conv, synAck!.env.conv);
  assert.deepEqual([wask!.type, wask!.env.flag, ikcpCmd(p.wire[3]!)], [EtPacketType.KcpSrc, KcpFlag.Ack | KcpFlag.Data, 83], 'a WASK asks whether the acceptor took it');
  assert.deepEqual(p.events.src, [], 'not connected before the acceptor\'s ikcp answers');
  assert.ok(p.run(() => p.events.src.length > 0, 100));
  assert.ok(p.wire.some((o) => o.type === EtPacketType.KcpDst && ikcpCmd(o) === 84), 'its WINS');
  assert.deepEqual(p.events.src, [{ type: 'connected', id }]);
  const acc = p.events.dst[0]!;
  assert.ok(acc.type === 'accepted');
  assert.equal(acc.peer, SRC);
  assert.deepEqual(acc.connData, flow);
});

test('a transfer each way with half-close over a path losing 10%: bytes intact, both sides done', () => {
  for (const seed of [1, 2, 3]) {
    const p = new Pair(new Rng(seed), 0.1);
    const rng = new Rng(seed + 100);
    const up = rng.bytes(300_000);
    const down = rng.bytes(200_000);
    const got = { src: [] as Buffer[], dst: [] as Buffer[] };
    const sent = { src: 0, dst: 0 };
    const ids = { src: p.src.connect(DST, flow, 0), dst: '' };
    const buf = new Uint8Array(65536);
    const pushMore = (side: 'src' | 'dst'): void => {
      const ep = side === 'src' ? p.src : p.dst;
      const data = side === 'src' ? up : down;
      while (sent[side] < data.length) {
        const n = ep.write(ids[side], data.subarray(sent[side], sent[side] + 8192), p.now);
        if (n === 0) return;
        sent[side] += n;
      }
      ep.closeWrite(ids[side]);
    };
    const closed = new Set<string>();
    const done = p.run(() => closed.size === 2, 120_000, (side, e) => {
      const ep = side === 'src' ? p.src : p.dst;
      if (e.type === 'accepted') (ids.dst = e.id), pushMore('dst');
      else if (e.type === 'connected' || e.type === 'writable') pushMore(side);
      else if (e.type === 'readable') for (let n = ep.read(e.id, buf); n > 0; n = ep.read(e.id, buf)) got[side].push(Buffer.from(buf.subarray(0, n)));
      else if (e.type === 'closed') {
        assert.equal(e.reason, 'done', `seed ${seed} ${side}`);
        closed.add(side);
      }
    });
    assert.ok(done, `seed ${seed}: not both done; src events ${JSON.stringify(p.events.src.slice(-3))}`);
    const h = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
    assert.equal(h(Buffer.concat(got.dst)), h(up), `seed ${seed}: upstream`);
    assert.equal(h(Buffer.concat(got.src)), h(down), `seed ${seed}: downstream`);
    p.run(() => p.src.size + p.dst.size === 0, 10_000);
    assert.equal(p.src.size + p.dst.size, 0, 'no state left once the linger is over');
  }
});

test('refusals: data for an unknown connection gets RST, a bare RST gets nothing, a SYN to a src endpoint is refused', () => {
  const p = new Pair();
  p.dst.input(SRC, encodeKcpEnvelope({ conv: 9, srcSessionId: SRC, dstSessionId: DST, flag: KcpFlag.Ack | KcpFlag.Data }, new Uint8Array(30)), 0);
  p.dst.input(SRC, encodeKcpEnvelope({ conv: 9, srcSessionId: SRC, dstSessionId: DST, flag: KcpFlag.Rst }), 0);
  p.src.input(DST, encodeKcpEnvelope({ conv: 9, srcSessionId: DST, dstSessionId: SRC, flag: KcpFlag.Syn }), 0);
  p.dst.input(SRC, encodeKcpEnvelope({ conv: 9, srcSessionId: SRC, dstSessionId: DST, flag: KcpFlag.Syn }, Uint8Array.of(1, 2, 3)), 0);
  const out = [p.dst.pollTransmit(), p.dst.pollTransmit(), p.src.pollTransmit(), p.dst.pollTransmit()];
  assert.equal(decodeKcpEnvelope(out[0]!.payload)!.env.flag, KcpFlag.Rst, 'stray data');
  assert.equal(decodeKcpEnvelope(out[1]!.payload)!.env.flag, KcpFlag.Rst, 'a SYN with a garbled connect message');
  assert.equal(decodeKcpEnvelope(out[2]!.payload)!.env.flag, KcpFlag.Rst, 'a SYN to the src endpoint');
  assert.equal(out[3], undefined, 'nothing answers the bare RST');
  assert.equal(p.dst.size + p.src.size, 0);
});

test('an unanswered connect retries with a new conv each second, then times out; a late SYN|ACK meets RST', () => {
  const p = new Pair(new Rng(1), 1); // everything is lost
  const id = p.src.connect(DST, flow, 0);
  assert.equal(p.run(() => p.events.src.length > 0, CONNECT_TIMEOUT_MS + 10), true);
  assert.deepEqual(p.events.src, [{ type: 'closed', id, reason: 'connect-timeout' }]);
  const syns = p.wire.filter((o) => decodeKcpEnvelope(o.payload)!.env.flag === KcpFlag.Syn);
  assert.equal(syns.length, 10);
  assert.equal(new Set(syns.map((o) => decodeKcpEnvelope(o.payload)!.env.conv)).size, 10, 'each attempt its own conv');
  p.src.input(DST, encodeKcpEnvelope({ ...decodeKcpEnvelope(syns[0]!.payload)!.env, flag: KcpFlag.Syn | KcpFlag.Ack }), p.now);
  assert.equal(decodeKcpEnvelope(p.src.pollTransmit()!.payload)!.env.flag, KcpFlag.Rst);
});

test('a live connection pings every 10 s and answers pings; one whose peer falls silent is dropped after 60 s', () => {
  const p = new Pair();
  const id = p.src.connect(DST, flow, 0);
  p.pump();
  p.run(() => false, 25_000);
  const flags = p.wire.map((o) => decodeKcpEnvelope(o.payload)!.env.flag);
  const pings = flags.filter((f) => f === KcpFlag.Ping).length;
  assert.ok(pings >= 4, `${pings} pings`);
  assert.equal(flags.filter((f) => f === (KcpFlag.Ping | KcpFlag.Pong)).length, pings, 'every ping answered');
  assert.equal(p.src.size, 1, 'kept alive by pongs');
  p.loss = 1;
  assert.ok(p.run(() => p.events.src.some((e) => e.type === 'closed'), 70_000));
  assert.deepEqual(p.events.src.at(-1), { type: 'closed', id, reason: 'idle' });
});

/** Runs `p` to `untilMs` in steps of at most `stepMs`, calling `tick` after each step. */
function runSteps(p: Pair, untilMs: number, stepMs: number, tick: () => void): void {
  while (p.now < untilMs) {
    p.now = Math.min(untilMs, p.now + stepMs, Math.max(p.now + 1, Math.min(p.src.pollTimeout(), p.dst.pollTimeout())));
    p.src.handleTimeout(p.now);
    p.dst.handleTimeout(p.now);
    p.pump();
    tick();
  }
}

test('our FIN waits until the peer has read everything, not just acknowledged it (kcp-sys stops reading at a FIN)', () => {
  const p = new Pair();
  const id = p.src.connect(DST, flow, 0);
  assert.ok(p.run(() => p.events.src.some((e) => e.type === 'connected'), 1000));
  const data = new Rng(7).bytes(300_000);
  assert.equal(p.src.write(id, data, p.now), data.length);
  p.src.closeWrite(id);
  const dstId = p.events.dst.find((e) => e.type === 'accepted')!.id;
  // A slow application behind the dst: 3 KiB every 5 ms, so its ikcp queue stays full long after the last ACK.
  const buf = new Uint8Array(3072);
  let read = 0;
  let unreadAtFin = -1;
  const finSeen = (): boolean => p.wire.some((o) => o.type === EtPacketType.KcpSrc && decodeKcpEnvelope(o.payload)!.env.flag === KcpFlag.Fin);
  runSteps(p, 5000, 5, () => {
    if (unreadAtFin < 0 && finSeen()) unreadAtFin = data.length - read;
    read += p.dst.read(dstId, buf);
  });
  assert.equal(read, data.length);
  assert.equal(unreadAtFin, 0, 'the FIN left only once the peer had read every byte');
  const wasks = p.wire.filter((o) => o.type === EtPacketType.KcpSrc && o.payload.length > 14 && o.payload[14 + 4] === 83).length;
  assert.ok(wasks > 0, 'it asked for the window');
  assert.ok(p.events.dst.some((e) => e.type === 'eof'));
});

test('a peer that stops reading gets its FIN after FIN_DRAIN_STALL_MS', () => {
  const p = new Pair();
  const id = p.src.connect(DST, flow, 0);
  assert.ok(p.run(() => p.events.src.some((e) => e.type === 'connected'), 1000));
  p.src.write(id, new Uint8Array(50_000), p.now);
  p.src.closeWrite(id);
  const fin = (): KcpOut | undefined => p.wire.find((o) => o.type === EtPacketType.KcpSrc && decodeKcpEnvelope(o.payload)!.env.flag === KcpFlag.Fin);
  assert.ok(p.run(() => fin() !== undefined, FIN_DRAIN_STALL_MS + 1000));
  assert.ok(p.now >= FIN_DRAIN_STALL_MS, `FIN at ${p.now} ms`);
});

test('at most MAX_OPENING_PER_PEER connects to a peer in flight; a conv its acceptor never takes is reset and opened anew', () => {
  const p = new Pair();
  // The acceptor's ikcp never sees the first conv's segments (kcp-sys dropped it from its accept queue).
  const ids = Array.from({ length: 5 }, () => p.src.connect(DST, flow, 0));
  const first: KcpOut[] = [];
  for (let o = p.src.pollTransmit(); o; o = p.src.pollTransmit()) first.push(o);
  const firstConv = decodeKcpEnvelope(first[0]!.payload)!.env.conv;
  p.drop = (o) => o.type === EtPacketType.KcpSrc && decodeKcpEnvelope(o.payload)!.env.conv === firstConv && o.payload.length > 14;
  assert.deepEqual(first.map((o) => decodeKcpEnvelope(o.payload)!.env.flag), Array(MAX_OPENING_PER_PEER).fill(KcpFlag.Syn), 'the others wait');
  for (const o of first) {
    p.wire.push(o);
    p.dst.input(SRC, o.payload, 0);
  }
  const syns = (): number => p.wire.filter((o) => decodeKcpEnvelope(o.payload)!.env.flag === KcpFlag.Syn).length;
  assert.ok(p.run(() => p.events.src.filter((e) => e.type === 'connected').length === 5, CONNECT_TIMEOUT_MS));
  assert.deepEqual(new Set(p.events.src.map((e) => e.id)), new Set(ids));
  assert.ok(p.now >= CONFIRM_TIMEOUT_MS, 'the first waited out its confirmation');
  const resets = p.wire.filter((o) => o.type === EtPacketType.KcpSrc && decodeKcpEnvelope(o.payload)!.env.flag === KcpFlag.Rst);
  assert.deepEqual(resets.map((o) => decodeKcpEnvelope(o.payload)!.env.conv), [firstConv]);
  assert.equal(syns(), 6, 'one SYN more, for the conv that replaced it');
});
