/**
 * The parser fuzzers at volume: every target (test/fuzz/targets/) gets `--count` inputs in a watched
 * worker (a hang is reported like a crash, with its input). Prints inputs/s per target and the
 * totals; exits 1 if any target crashed or hung. The suite runs the same targets briefly
 * (test/fuzz/fuzz.test.ts).
 *
 *   node dist/bench/fuzz.js [--count 10000000] [--seed 1] [--target packet,kcp] [--jobs 1]
 */
import { parseArgs } from 'node:util';
import { formatCrash, type FuzzCrash, type FuzzResult } from '../test/fuzz/engine.js';
import { FUZZ_TARGETS } from '../test/fuzz/targets/index.js';
import { runWatched } from '../test/fuzz/watchdog.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '10000000' },
    seed: { type: 'string', default: '1' },
    target: { type: 'string' },
    jobs: { type: 'string', default: '1' },
  },
});
const count = Number(values.count);
const seed = Number(values.seed);
const jobs = Number(values.jobs);
if (!Number.isInteger(count) || count < 1) throw new Error(`--count: a positive integer, got ${values.count}`);
if (!Number.isInteger(seed)) throw new Error(`--seed: an integer, got ${values.seed}`);
if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs: a positive integer, got ${values.jobs}`);
const names = values.target?.split(',') ?? FUZZ_TARGETS.map((t) => t.name);

const started = performance.now();
const results: FuzzResult[] = [];
const queue = [...names];
const report = (r: FuzzResult): void => {
  const rate = r.ms > 0 ? Math.round(r.inputs / (r.ms / 1000)) : 0;
  console.log(`${r.target.padEnd(16)} ${String(r.inputs).padStart(10)} inputs  ${(r.ms / 1000).toFixed(1).padStart(7)} s  ` +
    `${String(rate).padStart(9)} inputs/s  crashes ${r.crashes.length}`);
  for (const c of r.crashes) console.log(formatCrash(c));
};
console.log(`fuzz: ${count} inputs per target, seed ${seed}, ${jobs} worker(s)`);
await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, async () => {
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    const onProgress = (target: string, inputs: number): void => console.log(`  ${target}: ${inputs} inputs so far`);
    const onCrash = (c: FuzzCrash): void => console.log(`crash (the run goes on): ${formatCrash(c)}`);
    for (const r of await runWatched({ targets: [name], count, seed, onResult: report, onCrash, onProgress, progressMs: 60_000 })) {
      results.push(r);
      if (r.ms === 0) report(r); // a hang: the worker never posted it
    }
  }
}));
const inputs = results.reduce((n, r) => n + r.inputs, 0);
const crashes = results.reduce((n, r) => n + r.crashes.length, 0);
console.log(`total: ${results.length} targets, ${inputs} inputs, ${crashes} crashes, ${((performance.now() - started) / 1000).toFixed(1)} s wall`);
process.exitCode = crashes === 0 ? 0 : 1;
