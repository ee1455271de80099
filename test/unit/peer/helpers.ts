/** Shared by the peer-layer tests that run over loopback sockets. */
import assert from 'node:assert/strict';
import type { Logger } from '../../../daemon/log.js';

export const quietLog: Logger = { error() {}, warn() {}, info() {}, debug() {}, trace() {}, enabled: () => false };

/** Peer-layer timers short enough that failure detection and reconnects take milliseconds. */
export const FAST_PEER = {
  timers: { keepaliveMs: 100, deadMs: 600, handshakeRetryMs: 100, handshakeTimeoutMs: 800 },
  route: { syncMs: 300, expireMs: 1000 },
  backoff: { baseMs: 50, maxMs: 200 },
};

/** Polls `cond` (state with no event to wait on) every 10 ms; fails after `ms`. */
export async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
