/**
 * QUIC streams over seeded lossy links (test/sim/world.ts): loss 5-20 %, delay, jitter (which
 * reorders) and duplication. Every stream must arrive byte-exact in both directions; a failure
 * names its seed (SIM_SEED=n replays it; SIM_QUIC_SEEDS=n sets the sweep's count, default 1000),
 * and the same seed replays the same run. Heavy reordering plus duplicates is
 * what exposed that the null tag must bind the packet number (wasm/quic/src/crypto.rs). Bulk
 * transfers both ways at 20-30 % loss with the proxy's stream window exposed that quinn closes the
 * connection once one stream's receive buffer holds 1024 gaps (see maxStreamWindow).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { type CongestionControl, maxStreamWindow, QUIC_DEFAULTS } from '../../daemon/carrier/quic/endpoint.js';
import { type QuicNode, type StreamState, connectedPair, payload, peerState, sha256 } from '../unit/quic/harness.js';
import { seedsFor, sweepAsync } from './seeds.js';
import { Rng } from './world.js';

const MAX_TIME = 30 * 60_000;

interface Case {
  seed: number;
  loss: number;
  delayMs: number;
  jitterMs: number;
  congestion: CongestionControl;
}

const CASES: Case[] = [
  { seed: 101, loss: 0.05, delayMs: 10, jitterMs: 5, congestion: 'bbr' },
  { seed: 102, loss: 0.1, delayMs: 5, jitterMs: 10, congestion: 'bbr' },
  { seed: 103, loss: 0.2, delayMs: 20, jitterMs: 20, congestion: 'bbr' },
  { seed: 104, loss: 0.2, delayMs: 2, jitterMs: 3, congestion: 'bbr' },
  { seed: 105, loss: 0.1, delayMs: 15, jitterMs: 15, congestion: 'cubic' },
  { seed: 106, loss: 0.2, delayMs: 8, jitterMs: 8, congestion: 'cubic' },
  // Loss-based NewReno collapses to a 2-packet window at 20 % random loss; its ACK-starved RTT
  // estimate then backs the probe timer off past the idle timeout. 10 % is its test here.
  { seed: 107, loss: 0.1, delayMs: 8, jitterMs: 8, congestion: 'newreno' },
];

for (const c of CASES) {
  test(`lossy link seed ${c.seed}: ${(c.loss * 100).toFixed(1)}% loss, ${c.delayMs}±${c.jitterMs} ms, ${c.congestion}`, async () => {
    const r = await runCase(c, 6, 150_000);
    assert.equal(r.problem, null, r.problem ?? '');
    assert.ok(r.lost > 0, `seed ${c.seed}: the link did drop packets`);
    assert.ok(r.a.ep.stats(r.conn).lostPackets > 0, `seed ${c.seed}: QUIC saw and repaired losses`);
  });
}

interface CaseRun {
  /** null when every stream completed byte-exact both ways. */
  problem: string | null;
  /** Datagrams the a→b link dropped. */
  lost: number;
  a: QuicNode;
  conn: number;
}

/** Opens `streams` streams of up to `maxBytes` each way over the case's link and runs them to the end. */
async function runCase(c: Case, streams: number, maxBytes: number): Promise<CaseRun> {
  const rng = new Rng(c.seed);
  const link = { loss: c.loss, delayMs: c.delayMs, jitterMs: c.jitterMs, duplicate: 0.01 };
  const { world, a, b } = await connectedPair({ seed: c.seed, link, quic: { congestion: c.congestion } });
  const replies = new Map<number, string>();
  b.replyFor = (s) => {
    const p = payload(rng, rng.int(maxBytes));
    replies.set(s.stream, sha256(p));
    return p;
  };
  const sent: StreamState[] = [];
  const done = (problem: string | null): CaseRun =>
    ({ problem: problem && `${problem} (${JSON.stringify(c)})`, lost: world.stats(a.node, b.node).lost, a, conn: sent[0]?.conn ?? 0 });
  for (let i = 0; i < streams; i++) {
    const s = a.send(b.node, payload(rng, rng.int(maxBytes)));
    if (!s) return done(`stream ${i} did not open`);
    sent.push(s);
  }
  const peer = (s: StreamState): StreamState | undefined => peerState(b, s.stream);
  const r = world.run({ until: () => sent.every((s) => s.in.fin && peer(s)?.in.fin === true), maxTime: MAX_TIME });
  if (!r.done) return done(`streams incomplete at virtual ${r.now} ms (${r.steps} steps)`);
  for (const s of sent) {
    if (peer(s)!.in.digest !== s.out!.sha) return done(`a→b stream ${s.stream} differs`);
    if (s.in.digest !== replies.get(s.stream)) return done(`b→a stream ${s.stream} differs`);
  }
  return done(null);
}

// A sweep: random conditions, stream counts and sizes per seed, BBR (the default) mostly.
test('QUIC: a seeded sweep of lossy, jittery, duplicating links, byte-exact both ways', async (t) => {
  await sweepAsync(t, 'QUIC', seedsFor('SIM_QUIC_SEEDS', 1000, 200), async (seed) => {
    const r = new Rng(seed);
    const c: Case = {
      seed, loss: r.float() * 0.2, delayMs: r.range(1, 30), jitterMs: r.range(0, 20),
      congestion: r.pick(['bbr', 'bbr', 'cubic', 'newreno'] as const),
    };
    if (c.congestion === 'newreno') c.loss = Math.min(c.loss, 0.1); // see CASES
    return (await runCase(c, r.range(1, 6), r.pick([2_000, 20_000, 60_000]))).problem;
  });
});

/**
 * Bulk both ways at the largest stream window the endpoint accepts (the proxy's). With the former
 * 8 MiB window both 30 % cases lose the connection ("too many gaps in stream buffer") within 3 virtual
 * seconds, resetting every flow to the peer; at 20 % that took ~40 MiB, too long for this suite.
 */
const BULK_CASES = [
  { seed: 301, loss: 0.2, mib: 12 },
  { seed: 302, loss: 0.2, mib: 12 },
  { seed: 303, loss: 0.3, mib: 16 },
  { seed: 304, loss: 0.3, mib: 16 },
];

for (const c of BULK_CASES) {
  test(`bulk seed ${c.seed}: ${c.mib} MiB each way at ${c.loss * 100}% loss each way, 20 ms, largest stream window`, async () => {
    const rng = new Rng(c.seed);
    const link = { loss: c.loss, delayMs: 20 };
    const quic = { streamWindow: maxStreamWindow(QUIC_DEFAULTS.maxUdpPayload) };
    const { world, a, b } = await connectedPair({ seed: c.seed, link, quic });
    const up = payload(rng, c.mib << 20);
    const down = payload(rng, c.mib << 20);
    b.replyFor = () => down;
    const s = a.send(b.node, up)!;
    const lost = (): boolean => [...a.events, ...b.events].some((e) => e.type === 'connection-lost');
    const r = world.run({ until: () => lost() || (s.in.fin && peerState(b, s.stream)?.in.fin === true), maxTime: MAX_TIME });
    const losses = [...a.events, ...b.events].filter((e) => e.type === 'connection-lost');
    assert.deepEqual(losses, [], `seed ${c.seed}: no connection lost`);
    assert.ok(r.done, `seed ${c.seed}: both directions completed (virtual ${r.now} ms)`);
    assert.equal(peerState(b, s.stream)!.in.digest, sha256(up), `seed ${c.seed}: a→b`);
    assert.equal(s.in.digest, sha256(down), `seed ${c.seed}: b→a`);
    assert.ok(a.ep.stats(s.conn).lostPackets > 1000, `seed ${c.seed}: QUIC repaired thousands of losses`);
  });
}
