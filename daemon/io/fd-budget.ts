/**
 * How many accepted TCP connections a listener may hold: the soft RLIMIT_NOFILE less a reserve.
 * Beyond it Node closes new connections itself and says so ('drop'), instead of libuv dropping
 * them silently at EMFILE while log writes, UDP sockets and dials fail too.
 */
import type { Server } from 'node:net';
import { openFileLimit } from './limits.js';

/** Descriptors kept back from connections: log appends, DNS, stdio, the odd file. */
const RESERVED_FDS = 32;

/** The budget for connections when `others` descriptors (UDP sockets, per-connection dials…) are needed besides. */
export function connectionBudget(others: number): number {
  const limit = openFileLimit() ?? Infinity; // not Linux, or unlimited: no budget but the kernel's
  return Math.max(1, limit - RESERVED_FDS - others);
}

/** Caps a server's connections at `budget` and reports each connection it had to turn away. */
export function capConnections(
  server: Server,
  budget: number,
  onDrop: (e: Error) => void,
): void {
  if (budget === Infinity) return;
  server.maxConnections = budget;
  server.on('drop', (d) => onDrop(Object.assign(
    new Error(`connection from ${d?.remoteAddress}:${d?.remotePort} closed: ${budget} open, the most the descriptor limit allows`),
    { code: 'EMFILE' })));
}
