/**
 * Two KCP engines exchange random payloads in both directions at once through the simulated network,
 * for many seeds: loss up to 30 %, jitter (reordering), duplication, rate limits with queue drops,
 * corruption behind a CRC framing, slow readers (zero windows, probes), message mode, every kcptun
 * mode and congestion control, and a u32 clock that wraps mid-run. Every run must deliver both
 * payloads byte for byte within a virtual-time bound (scenarios: kcp-scenario.ts).
 *
 * SIM_SEEDS=n runs n seeds (default 2000); SIM_SEED=s replays seed s alone. A failure prints the
 * seed and its scenario.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kcpScenario, runKcpScenario } from './kcp-scenario.js';

test('KCP: both directions byte-exact through lossy, reordering, duplicating links', () => {
  const only = process.env['SIM_SEED'];
  const count = Number(process.env['SIM_SEEDS'] ?? 2000);
  const seeds = only !== undefined ? [Number(only)] : Array.from({ length: count }, (_, i) => i + 1);
  const failures: string[] = [];
  for (const seed of seeds) {
    const s = kcpScenario(seed);
    const { problem } = runKcpScenario(s);
    if (problem !== null) {
      failures.push(`SIM_SEED=${seed}: ${problem}\n  scenario: ${JSON.stringify(s)}`);
      if (failures.length >= 5) break;
    }
  }
  assert.deepEqual(failures, [], failures.join('\n'));
});
