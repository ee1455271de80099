/**
 * How a KCP flow reports received bytes to its reader (the socket pipe, whose every report becomes a
 * write to the application's socket): on the virtual clock, over a clean link where each datagram
 * brings one segment, bytes of a DATA frame still arriving are reported only once DELIVER_MIN of them
 * wait, while a frame's end is reported at once. The reader reads only when told, as the pipe does;
 * every byte arrives intact. A failing seed prints itself; replay with SIM_SEED=n.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowEvent, type KcpFlow } from '../../daemon/carrier/kcp/endpoint.js';
import { DELIVER_MIN } from '../../daemon/carrier/kcp/flow.js';
import { DialStatus, MAX_FRAME_PAYLOAD } from '../../daemon/carrier/flow-frames.js';
import { socketAddrOf } from '../../daemon/packet/flow-key.js';
import { CarrierNode } from './carrier-node.js';
import { Rng, World } from './world.js';

/** One frame each (the sender writes each whole): a full frame, a request-sized one, and a mid-sized one. */
const WRITES = [MAX_FRAME_PAYLOAD, 100, 40_000, 64, MAX_FRAME_PAYLOAD];

/** B: reads only when told Readable, recording how many bytes each report gave. */
class Reader extends CarrierNode {
  readonly reads: number[] = [];
  readonly got: Buffer[] = [];
  react(now: number): void {
    for (let flow = this.carrier.pollEvent(); flow; flow = this.carrier.pollEvent()) {
      const ev = flow.takeEvents();
      if (ev & FlowEvent.OpenRequest) this.carrier.answer(flow, DialStatus.Connected, now);
      if (!(ev & FlowEvent.Readable)) continue;
      let n = 0;
      for (let c = this.carrier.read(flow); c; c = this.carrier.read(flow)) {
        this.got.push(Buffer.from(c));
        n += c.length;
      }
      this.reads.push(n);
    }
  }
}

/** A: writes each of WRITES once the previous one has been read whole by B (so frames arrive one at a time). */
class Writer extends CarrierNode {
  flow: KcpFlow | null = null;
  next = 0;
  constructor(otherId: number, seed: number, private readonly data: Uint8Array[], private readonly peer: Reader) {
    super(otherId, seed, 1_000);
  }

  react(now: number): void {
    const flow = this.flow!;
    for (let f = this.carrier.pollEvent(); f; f = this.carrier.pollEvent()) f.takeEvents();
    if (flow.status !== DialStatus.Connected || this.next >= this.data.length) return;
    const before = this.data.slice(0, this.next).reduce((s, d) => s + d.length, 0);
    if (this.peer.got.reduce((s, b) => s + b.length, 0) < before) return;
    assert.ok(this.carrier.write(flow, this.data[this.next]!, now));
    this.next++;
  }
}

const only = process.env.SIM_SEED !== undefined ? Number(process.env.SIM_SEED) : undefined;

test('kcp flow: bytes of a frame in progress are reported once DELIVER_MIN wait, a frame end at once', () => {
  for (const seed of only !== undefined ? [only] : [1, 2]) {
    const label = `seed=${seed}`;
    const rng = new Rng(seed);
    const data = WRITES.map((n) => rng.bytes(n));
    const total = WRITES.reduce((s, n) => s + n, 0);
    const world = new World({ seed });
    const b = new Reader(1, seed ^ 0x5a5a, 1_000);
    const a = new Writer(2, seed, data, b);
    world.addNode(a);
    world.addNode(b);
    world.linkBoth(0, 1, { delayMs: 5, jitterMs: 1 });
    a.flow = a.carrier.open(2, { src: socketAddrOf('10.0.0.1', 1000)!, dst: socketAddrOf('10.0.0.2', 80)!, optimistic: false }, 0);
    const r = world.run({ until: () => b.got.reduce((s, c) => s + c.length, 0) === total, maxTime: 60_000 });
    assert.ok(r.done, `hang: ${label} (replay with SIM_SEED=${seed})`);
    assert.ok(Buffer.concat(b.got).equals(Buffer.concat(data)), `bytes differ: ${label}`);
    // Every report gave DELIVER_MIN bytes or more, or ended a frame (each write waited for the last to be read).
    const ends = new Set(WRITES.map((_, i) => WRITES.slice(0, i + 1).reduce((s, n) => s + n, 0)));
    let at = 0;
    const small: number[] = [];
    for (const n of b.reads) {
      at += n;
      if (n < DELIVER_MIN && !ends.has(at)) small.push(n);
    }
    assert.deepEqual(small, [], `reports of a frame in progress under ${DELIVER_MIN} bytes: ${label}`);
    // The request-sized frames came in one report each.
    assert.ok(b.reads.includes(100) && b.reads.includes(64), `a small frame was not reported whole at once: ${b.reads.join(',')}`);
  }
});
