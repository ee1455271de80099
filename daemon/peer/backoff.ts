/**
 * Reconnect delays for connectors: exponential with full-range jitter between half and all of
 * the step, so peers that lost a common relay do not all redial in the same instant.
 */
import type { LogFields, Logger } from '../log.js';
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/**
 * At most a second between attempts: a lost peer is back within about a second of its link's return
 * (proxied flows wait for it), and an attempt costs one small datagram or a SYN.
 */
export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 250, maxMs: 1000 };

/** Delay before attempt `attempt` (0 = first retry); `random` in [0, 1). */
export function backoffDelay(attempt: number, random: number, opts: BackoffOptions = DEFAULT_BACKOFF): number {
  const step = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(step * (0.5 + random / 2));
}

/**
 * Logs one failed attempt of a connector, so that an unreachable peer costs a few lines, not one per
 * attempt: a new cause is a warning; while it repeats, a line at attempts 2, 4, 8, ... shows the
 * retries go on (debug has them all). Both peer layers' connectors log through it.
 */
export function logFailedAttempt(log: Logger, c: { attempt: number; lastError: string }, cause: string,
  first: string, again: string, fields: LogFields): void {
  const attempt = c.attempt + 1;
  if (cause !== c.lastError) log.warn(first, fields);
  else if ((attempt & (attempt - 1)) === 0) log.info(again, fields);
  else log.debug(again, fields);
  c.lastError = cause;
}
