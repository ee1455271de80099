/**
 * How long a KCP-carried flow lives when its peer goes quiet or away, on a virtual clock: retransmissions
 * alone never end it before the flow timeout, silence past it does, abortPeer ends every flow of a peer
 * at once, and an exception inside one flow resets that flow only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KcpCarrier, FlowEvent, type KcpFlow } from '../../../daemon/carrier/kcp/endpoint.js';
import { DialStatus } from '../../../daemon/carrier/flow-frames.js';
import { socketAddrOf } from '../../../daemon/packet/flow-key.js';

const TYPES = { fromInitiator: 11, fromAcceptor: 12 };
const A = 1;
const B = 2;
const REQ = { src: socketAddrOf('10.0.0.1', 4000)!, dst: socketAddrOf('10.0.0.2', 80)!, optimistic: false };

/** Two carriers joined by a switchable wire; `step` runs both to `now`, delivering while the wire is up. */
function pair(silentLimitMs: number): { a: KcpCarrier; b: KcpCarrier; step: (now: number) => void; wire: { up: boolean } } {
  const a = new KcpCarrier({ types: TYPES, silentLimitMs, convSeed: 1 });
  const b = new KcpCarrier({ types: TYPES, silentLimitMs, convSeed: 2 });
  const wire = { up: true };
  const step = (now: number): void => {
    for (let moved = true; moved;) {
      moved = false;
      for (const [from, to, fromId] of [[a, b, A], [b, a, B]] as const) {
        if (from.pollTimeout() <= now) from.handleTimeout(now);
        from.flushAcks(now);
        for (let t = from.pollTransmit(); t; t = from.pollTransmit()) {
          moved = true;
          if (wire.up) to.input(fromId, t.type, t.data, now);
        }
      }
    }
  };
  return { a, b, step, wire };
}

/** Opens a flow A -> B and connects it; returns both ends. */
function connected(p: ReturnType<typeof pair>): { src: KcpFlow; dst: KcpFlow } {
  const src = p.a.open(B, REQ, 0);
  p.step(1);
  const dst = p.b.pollEvent()!;
  assert.equal(dst.takeEvents() & FlowEvent.OpenRequest, FlowEvent.OpenRequest);
  p.b.answer(dst, DialStatus.Connected, 1);
  p.step(2);
  assert.equal(src.status, DialStatus.Connected);
  src.takeEvents();
  return { src, dst };
}

/** Runs the pair in 10 ms steps from `from` to `to`. */
function run(p: ReturnType<typeof pair>, from: number, to: number): void {
  for (let now = from; now <= to; now += 10) p.step(now);
}

test('unacked data through a silent link: the flow lives up to the flow timeout, then resets', () => {
  const p = pair(30_000);
  const { src } = connected(p);
  p.wire.up = false;
  assert.ok(p.a.write(src, new Uint8Array(5000), 10));
  run(p, 10, 29_000);
  assert.equal(src.ended, false, 'still alive well past KCP\'s own dead-link count (~12 s)');
  run(p, 29_010, 31_000);
  assert.equal(src.isReset, true);
  assert.ok(src.takeEvents() & FlowEvent.Reset);
});

test('an outage shorter than the flow timeout: the flow resumes and delivers', () => {
  const p = pair(30_000);
  const { src, dst } = connected(p);
  p.wire.up = false;
  assert.ok(p.a.write(src, new Uint8Array(3000).fill(7), 10));
  run(p, 10, 20_000);
  p.wire.up = true;
  run(p, 20_010, 25_000);
  let got = 0;
  for (let d = p.b.read(dst); d; d = p.b.read(dst)) got += d.length;
  assert.equal(got, 3000);
  assert.equal(src.ended, false);
});

test('abortPeer resets every flow with that peer at once, and only those', () => {
  const p = pair(30_000);
  const one = connected(p);
  const two = connected(p);
  const other = p.a.open(9, REQ, 3);
  assert.equal(p.a.abortPeer(B, 4), 2);
  for (const f of [one.src, two.src]) assert.ok(f.isReset && f.takeEvents() & FlowEvent.Reset);
  assert.equal(other.ended, false);
});

test('an exception inside one flow resets that flow; the carrier and other flows carry on', () => {
  const p = pair(30_000);
  const bad = connected(p);
  const good = connected(p);
  bad.dst.kcp.input = (): number => {
    throw new Error('bug in one flow');
  };
  assert.ok(p.a.write(bad.src, new Uint8Array(100), 10) && p.a.write(good.src, new Uint8Array(100).fill(1), 10));
  assert.doesNotThrow(() => run(p, 10, 500));
  assert.ok(p.b.stats.faults >= 1, 'counted (once per exception: the broken flow keeps failing until forgotten)');
  assert.equal((p.b.lastFault as Error).message, 'bug in one flow');
  assert.equal(bad.dst.isReset, true);
  assert.equal(p.b.read(good.dst)?.length, 100);
});
