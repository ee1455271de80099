/**
 * A request/response flow alone on a lossy path (the bench's 64-byte RR probe), on the virtual clock:
 * the adaptive FEC must learn the loss from thin traffic and give each short group enough parity
 * that a lost request or answer is rebuilt at once, not resent after a round trip or an RTO.
 * Properties: every answer is the request's bytes, and after a warm-up (the first loss reports) at
 * least 98 % of round trips take no longer than the RTT plus two group times and the jitter.
 * A failing seed prints itself; replay with SIM_SEED=n.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowEvent, type KcpFlow } from '../../daemon/carrier/kcp/endpoint.js';
import { DialStatus } from '../../daemon/carrier/flow-frames.js';
import { socketAddrOf } from '../../daemon/packet/flow-key.js';
import { CarrierNode } from './carrier-node.js';
import { Rng, World } from './world.js';

const DELAY_MS = 20;
const JITTER_MS = 1;
const ROUND_TRIPS = 400;
const WARM_MS = 3_000;
/** A group closes a quarter of the base RTT after its first shard (path-fec.ts). */
const GROUP_MS = (2 * DELAY_MS) / 4;

/** B: echoes whatever a flow brings. */
class Echo extends CarrierNode {
  react(now: number): void {
    for (let flow = this.carrier.pollEvent(); flow; flow = this.carrier.pollEvent()) {
      if (flow.takeEvents() & FlowEvent.OpenRequest) this.carrier.answer(flow, DialStatus.Connected, now);
      for (let c = this.carrier.read(flow); c; c = this.carrier.read(flow)) assert.ok(this.carrier.write(flow, c.slice(), now));
    }
  }
}

/** A: one request of 64 bytes at a time, the next as soon as the answer is whole. */
class Prober extends CarrierNode {
  flow: KcpFlow | null = null;
  readonly rtts: { at: number; ms: number }[] = [];
  private request: Uint8Array = new Uint8Array(64);
  private sentAt = -1;
  private got = 0;
  constructor(otherId: number, seed: number, private readonly rng: Rng) {
    super(otherId, seed, 1_000, { peerDecodesFec: () => true });
  }

  react(now: number): void {
    const flow = this.flow!;
    for (let f = this.carrier.pollEvent(); f; f = this.carrier.pollEvent()) f.takeEvents();
    for (let c = this.carrier.read(flow); c; c = this.carrier.read(flow)) {
      assert.ok(Buffer.from(c).equals(this.request.subarray(this.got, this.got + c.length)), 'the answer is not the request');
      this.got += c.length;
    }
    if (this.sentAt >= 0 && this.got === this.request.length) {
      this.rtts.push({ at: this.sentAt, ms: now - this.sentAt });
      this.sentAt = -1;
    }
    if (this.sentAt < 0 && flow.status === DialStatus.Connected && this.rtts.length < ROUND_TRIPS) {
      this.request = this.rng.bytes(64);
      this.got = 0;
      this.sentAt = now;
      assert.ok(this.carrier.write(flow, this.request, now));
    }
  }
}

const only = process.env.SIM_SEED !== undefined ? Number(process.env.SIM_SEED) : undefined;

test('thin flow: a request/response flow over 5-30 % loss gets its holes rebuilt, not resent', () => {
  for (const seed of only !== undefined ? [only] : [1, 2, 3]) {
    const loss = [0.3, 0.05, 0.2][seed % 3]!;
    const label = `seed=${seed} loss=${loss}`;
    const world = new World({ seed });
    const a = new Prober(2, seed, new Rng(seed * 3 + 1));
    const b = new Echo(1, seed ^ 0x5a5a, 1_000, { peerDecodesFec: () => true });
    world.addNode(a);
    world.addNode(b);
    world.linkBoth(0, 1, { loss, delayMs: DELAY_MS, jitterMs: JITTER_MS });
    a.flow = a.carrier.open(2, { src: socketAddrOf('10.0.0.1', 1000)!, dst: socketAddrOf('10.0.0.2', 80)!, optimistic: false }, 0);
    const r = world.run({ until: () => a.rtts.length === ROUND_TRIPS, maxTime: 10 * 60_000 });
    assert.ok(r.done, `hang: ${label} (replay with SIM_SEED=${seed})`);
    const measured = a.rtts.filter((x) => x.at >= WARM_MS).map((x) => x.ms);
    assert.ok(measured.length >= ROUND_TRIPS / 2, `too few round trips after warm-up: ${label}`);
    const bound = 2 * (DELAY_MS + JITTER_MS) + 2 * GROUP_MS + 2;
    const slow = measured.filter((ms) => ms > bound).length;
    if (process.env.SIM_VERBOSE) console.log(label, { measured: measured.length, slow, max: Math.max(...measured) });
    assert.ok(slow <= 0.02 * measured.length, `${slow} of ${measured.length} round trips over ${bound} ms: ${label}`);
  }
});

test('thin flow: on a clean link to a busy peer (its event loop stalls up to 60 ms), nothing is resent for nothing', () => {
  // KCP's own RTO is srtt + max(interval, 4 × rttvar), and its integer smoothing wears rttvar down to a
  // few ms between stalls: each answer a stall held past that was a spurious resend. The path's RTO
  // floor keeps the largest recent round trip instead.
  for (const seed of only !== undefined ? [only] : [1, 2, 3]) {
    const label = `seed=${seed}`;
    const world = new World({ seed });
    const a = new Prober(2, seed, new Rng(seed * 3 + 1));
    const b = new Echo(1, seed ^ 0x5a5a, 1_000, { peerDecodesFec: () => true }, { everyMs: 300, maxMs: 60, rng: new Rng(seed * 5 + 2) });
    world.addNode(a);
    world.addNode(b);
    world.linkBoth(0, 1, { delayMs: DELAY_MS, jitterMs: JITTER_MS });
    a.flow = a.carrier.open(2, { src: socketAddrOf('10.0.0.1', 1000)!, dst: socketAddrOf('10.0.0.2', 80)!, optimistic: false }, 0);
    const r = world.run({ until: () => a.rtts.length === ROUND_TRIPS, maxTime: 10 * 60_000 });
    assert.ok(r.done, `hang: ${label} (replay with SIM_SEED=${seed})`);
    const resent = a.flow.retransmits;
    if (process.env.SIM_VERBOSE) console.log(label, { resent, slow: a.rtts.filter((x) => x.ms > 2 * DELAY_MS + 5).length });
    assert.ok(resent <= ROUND_TRIPS / 50, `${resent} requests resent on a clean link: ${label}`);
  }
});
