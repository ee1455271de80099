/**
 * A bulk sender paced by the KCP flow's Writable event, as the socket pipe is: it writes 64 KiB
 * chunks (one socket read each) until write() refuses, then waits for Writable. On the virtual clock,
 * over a clean link with some delay, every Writable must come only once the flow's queue has drained
 * to its low-water mark, so each resume of the paused socket takes a large bite (a read, a frame,
 * and at the kernel-NAT end a window update crossing the TUN), not one per freed slot; every byte
 * arrives intact; and the flow never holds more unsent segments than its high-water mark plus one
 * write, however far ahead the application is (the per-flow part of a node's send buffering,
 * docs/benchmarks.md "Memory at 1,000 flows"). A failing seed prints itself; replay with SIM_SEED=n.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { FlowEvent, type KcpFlow } from '../../daemon/carrier/kcp/endpoint.js';
import { UNSENT_LOW_WATER } from '../../daemon/carrier/kcp/flow.js';
import { DialStatus, FRAME_HEADER } from '../../daemon/carrier/flow-frames.js';
import { socketAddrOf } from '../../daemon/packet/flow-key.js';
import { CarrierNode } from './carrier-node.js';
import { Rng, World } from './world.js';

const CHUNK = 64 * 1024;
const TOTAL = 4 * 1024 * 1024;

/** B: takes everything it is given. */
class Sink extends CarrierNode {
  readonly hash = createHash('sha256');
  got = 0;
  react(now: number): void {
    for (let flow = this.carrier.pollEvent(); flow; flow = this.carrier.pollEvent()) {
      if (flow.takeEvents() & FlowEvent.OpenRequest) this.carrier.answer(flow, DialStatus.Connected, now);
      for (let c = this.carrier.read(flow); c; c = this.carrier.read(flow)) {
        this.hash.update(c);
        this.got += c.length;
      }
    }
  }
}

/** A: writes its data chunk by chunk, and after a refusal only on Writable (the pipe's rule). */
class Sender extends CarrierNode {
  flow: KcpFlow | null = null;
  readonly hash = createHash('sha256');
  /** The flow's unsent segments at each Writable that followed a refusal. */
  readonly unsentAtWritable: number[] = [];
  /** The most unsent segments the flow held after any write. */
  maxUnsent = 0;
  private off = 0;
  private blocked = false;
  constructor(otherId: number, seed: number, private readonly data: Uint8Array) {
    super(otherId, seed, 1_000);
    this.hash.update(data);
  }

  react(now: number): void {
    const flow = this.flow!;
    for (let f = this.carrier.pollEvent(); f; f = this.carrier.pollEvent()) {
      if (f.takeEvents() & FlowEvent.Writable && this.blocked) {
        this.blocked = false;
        this.unsentAtWritable.push(flow.kcp.unsentCount);
      }
    }
    if (flow.status !== DialStatus.Connected) return;
    while (!this.blocked && this.off < this.data.length) {
      const chunk = this.data.subarray(this.off, this.off + CHUNK);
      if (this.carrier.write(flow, chunk, now)) this.off += chunk.length;
      else this.blocked = true;
      this.maxUnsent = Math.max(this.maxUnsent, flow.kcp.unsentCount);
    }
  }
}

const only = process.env.SIM_SEED !== undefined ? Number(process.env.SIM_SEED) : undefined;

test('kcp flow: after a refused write, Writable waits for the queue to drain to its low-water mark', () => {
  for (const seed of only !== undefined ? [only] : [1, 2]) {
    const label = `seed=${seed}`;
    const world = new World({ seed });
    const a = new Sender(2, seed, new Rng(seed).bytes(TOTAL));
    const b = new Sink(1, seed ^ 0x5a5a, 1_000);
    world.addNode(a);
    world.addNode(b);
    world.linkBoth(0, 1, { delayMs: 5, jitterMs: 1 });
    a.flow = a.carrier.open(2, { src: socketAddrOf('10.0.0.1', 1000)!, dst: socketAddrOf('10.0.0.2', 80)!, optimistic: false }, 0);
    const r = world.run({ until: () => b.got === TOTAL, maxTime: 5 * 60_000 });
    assert.ok(r.done, `hang: ${label}, ${b.got} of ${TOTAL} bytes (replay with SIM_SEED=${seed})`);
    assert.equal(b.hash.digest('hex'), a.hash.digest('hex'), `bytes differ: ${label}`);
    const seen = a.unsentAtWritable;
    assert.ok(seen.length >= 4, `the sender was refused only ${seen.length} times: ${label}`);
    const early = seen.filter((n) => n > UNSENT_LOW_WATER);
    assert.deepEqual(early, [], `Writable before the queue drained to ${UNSENT_LOW_WATER} segments: ${label}`);
    // Writes are taken below the high-water mark (twice the low), each whole: one chunk, framed, past it at most.
    const bound = 2 * UNSENT_LOW_WATER + Math.ceil((CHUNK + FRAME_HEADER) / a.flow!.kcp.mss);
    assert.ok(a.maxUnsent <= bound, `${a.maxUnsent} unsent segments, over ${bound}: ${label}`);
  }
});
