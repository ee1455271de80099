/** The clock every sans-IO core is driven with: integer milliseconds, monotonic. */
export function nowMs(): number {
  return Math.floor(performance.now());
}

/** A time on nowMs()'s clock as wall-clock milliseconds since the epoch, for display only. */
export function wallMsAt(monotonicMs: number): number {
  return monotonicMs === 0 ? 0 : Date.now() - nowMs() + monotonicMs;
}
