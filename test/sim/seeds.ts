/**
 * How many seeds each simulation area runs, and how a sweep reports them. The defaults add up to
 * more than 10,000 seeds per suite run; each sweep prints "<area>: N seeds in T s" as a test
 * diagnostic.
 *
 *   SIM_SEED=n     replays seed n alone, in every area (a failure prints itself as SIM_SEED=n)
 *   SIM_SCALE=x    multiplies every area's default count (0.1 for a quick look, 10 for a soak)
 *   <AREA_VAR>=n   sets one area's count (SIM_SEEDS for KCP, SIM_CARRIER_SEEDS, SIM_PROXY_SEEDS, ...; see each file)
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';

export function seedsFor(envName: string, defaultCount: number, first = 1): number[] {
  const only = process.env['SIM_SEED'];
  if (only !== undefined) return [Number(only)];
  const scale = Number(process.env['SIM_SCALE'] ?? 1);
  const count = Number(process.env[envName] ?? Math.max(1, Math.round(defaultCount * scale)));
  return Array.from({ length: count }, (_, i) => first + i);
}

/** Failures of one sweep, each `SIM_SEED=n: problem`; the sweep stops after five. */
class Tally {
  readonly failures: string[] = [];
  private readonly started = performance.now();

  /** `outcome`: null (passed), a problem, or what the seed threw. Returns true to stop. */
  add(seed: number, outcome: unknown): boolean {
    if (outcome !== null) this.failures.push(`SIM_SEED=${seed}: ${outcome instanceof Error ? outcome.message : String(outcome)}`);
    return this.failures.length >= 5;
  }

  finish(t: TestContext, area: string, seeds: number): void {
    t.diagnostic(`${area}: ${seeds} seeds in ${((performance.now() - this.started) / 1000).toFixed(1)} s`);
    assert.deepEqual(this.failures, [], this.failures.join('\n'));
  }
}

/** Runs `one` for every seed: it returns null or a problem, or throws (an assertion). */
export function sweep(t: TestContext, area: string, seeds: readonly number[], one: (seed: number) => string | null): void {
  const tally = new Tally();
  for (const seed of seeds) {
    let outcome: unknown;
    try {
      outcome = one(seed);
    } catch (e) {
      outcome = e;
    }
    if (tally.add(seed, outcome)) break;
  }
  tally.finish(t, area, seeds.length);
}

/** The same for cores whose setup awaits (the QUIC wasm module). */
export async function sweepAsync(
  t: TestContext, area: string, seeds: readonly number[], one: (seed: number) => Promise<string | null>,
): Promise<void> {
  const tally = new Tally();
  for (const seed of seeds) {
    if (tally.add(seed, await one(seed).catch((e: unknown) => e))) break;
  }
  tally.finish(t, area, seeds.length);
}
