/** The clock every sans-IO core is driven with: integer milliseconds, monotonic. */
export function nowMs(): number {
  return Math.floor(performance.now());
}
