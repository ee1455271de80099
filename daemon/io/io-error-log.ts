/**
 * Counts I/O errors by place and cause, and logs each new one once with its cause. A repeat is
 * logged again at most every REPEAT_MS, with how many happened meanwhile, so a storm (a refusing
 * target, a full descriptor table) costs a counter bump per event, not a log line.
 */
import { nowMs } from './clock.js';

const REPEAT_MS = 10_000;
/** Places are a handful per process; this only guards against a caller that keys by address. */
const MAX_KEYS = 64;

interface Tally {
  /** Events since the last line logged. */
  unlogged: number;
  loggedAt: number;
}

export class IoErrorLog {
  private readonly tallies = new Map<string, Tally>();
  /** Every error recorded, for counters and tests. */
  total = 0;

  constructor(private readonly log: (line: string) => void) {}

  record(where: string, e: Error): void {
    this.total++;
    const code = (e as NodeJS.ErrnoException).code ?? e.name;
    const key = `${where}\0${code}`;
    const now = nowMs();
    let t = this.tallies.get(key);
    if (t === undefined) {
      if (this.tallies.size >= MAX_KEYS) this.tallies.clear();
      t = { unlogged: 0, loggedAt: now };
      this.tallies.set(key, t);
      this.log(`${where}: ${e.message}`);
      return;
    }
    t.unlogged++;
    if (now - t.loggedAt < REPEAT_MS) return;
    this.log(`${where}: ${e.message} (${t.unlogged} times in the last ${Math.round((now - t.loggedAt) / 1000)} s)`);
    t.unlogged = 0;
    t.loggedAt = now;
  }
}
