/**
 * Two KCP engines exchange random payloads in both directions at once through the simulated network,
 * for many seeds: loss up to 30 %, jitter (reordering), duplication, rate limits with queue drops,
 * corruption behind a CRC framing, slow readers (zero windows, probes), message mode, every kcptun
 * mode and congestion control, and a u32 clock that wraps mid-run. Every run must deliver both
 * payloads byte for byte within a virtual-time bound (scenarios: kcp-scenario.ts).
 *
 * SIM_SEEDS=n runs n seeds (default 5000); SIM_SEED=s replays seed s alone (see seeds.ts). A failure
 * prints the seed and its scenario.
 */
import { test } from 'node:test';
import { kcpScenario, runKcpScenario } from './kcp-scenario.js';
import { seedsFor, sweep } from './seeds.js';

test('KCP: both directions byte-exact through lossy, reordering, duplicating links', (t) => {
  sweep(t, 'KCP', seedsFor('SIM_SEEDS', 5000), (seed) => {
    const s = kcpScenario(seed);
    const { problem } = runKcpScenario(s);
    return problem === null ? null : `${problem}\n  scenario: ${JSON.stringify(s)}`;
  });
});
