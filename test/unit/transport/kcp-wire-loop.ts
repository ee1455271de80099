/**
 * Two engines over a timed wire on a 1 ms virtual clock, as the KCP unit tests drive them: each step
 * the sender's `feed` writes, datagrams due are delivered, timers run, B reads (every byte checked
 * against `data`), then both sides' output goes onto the wire, until B has read all of `data` or
 * `maxMs` passes.
 */
import assert from 'node:assert/strict';
import type { Kcp } from '../../../daemon/transport/kcp/kcp.js';

/** Says after how many ms a datagram (a copy) sent by `from` arrives, or < 0 for a lost one. */
export type Route = (from: Kcp, body: Uint8Array, now: number) => number;

export function drivePair(a: Kcp, b: Kcp, data: Uint8Array, maxMs: number, feed: (now: number) => void, route: Route): { got: number; doneAt: number } {
  const sink = new Uint8Array(65536);
  const wire: { at: number; to: Kcp; data: Uint8Array }[] = [];
  let got = 0;
  let doneAt = -1;
  const move = (from: Kcp, to: Kcp, now: number): void => {
    for (let d = from.pollTransmit(); d !== null; d = from.pollTransmit()) {
      const body = d.slice();
      from.recycleTransmit(d);
      const delay = route(from, body, now);
      if (delay >= 0) wire.push({ at: now + delay, to, data: body });
    }
  };
  for (let now = 0; now < maxMs && doneAt < 0; now++) {
    feed(now);
    for (let i = 0; i < wire.length;) {
      const w = wire[i]!;
      if (w.at > now) { i++; continue; }
      wire.splice(i, 1);
      w.to.input(w.data, now);
    }
    for (const k of [a, b]) if (k.pollTimeout() <= now) k.handleTimeout(now);
    for (let n = b.read(sink); n > 0; n = b.read(sink)) {
      assert.deepEqual(sink.subarray(0, n), data.subarray(got, got + n));
      got += n;
    }
    if (got === data.length) doneAt = now;
    move(a, b, now);
    move(b, a, now);
  }
  return { got, doneAt };
}
