/**
 * A short run of every parser fuzzer (test/fuzz/targets/): a few thousand random and mutated-valid
 * inputs each, in a watched worker, so a crash or a hang fails the suite with its seed and input.
 * bench/fuzz.ts runs the same targets at 10^7 inputs each. FUZZ_SEED=n and FUZZ_COUNT=n override.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCrash } from './engine.js';
import { FUZZ_TARGETS } from './targets/index.js';
import { runWatched } from './watchdog.js';

test('every parser takes random and mutated input without a crash or a hang', async () => {
  const seed = Number(process.env['FUZZ_SEED'] ?? 1);
  const count = Number(process.env['FUZZ_COUNT'] ?? 3000);
  const names = FUZZ_TARGETS.map((t) => t.name);
  // 30 s without one input finishing is a hang even on a machine shared with heavy jobs.
  const results = await runWatched({ targets: names, count, seed, hangMs: 30_000 });
  const crashes = results.flatMap((r) => r.crashes);
  assert.deepEqual(crashes.map(formatCrash), []);
  assert.deepEqual(results.map((r) => [r.target, r.inputs]), names.map((n) => [n, count]), 'every target ran every input');
});
