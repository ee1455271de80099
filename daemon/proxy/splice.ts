/**
 * Joins two application streams (a userspace-stack flow or a kernel socket, and a kernel socket) both
 * ways, through the one pipe's rules (carrier/socket-pipe.ts): back-pressure, half-close, reset,
 * close-wait; the flow's row counts the bytes.
 */
import type { Socket } from 'node:net';
import { joinStreams, type AppStream } from '../carrier/socket-pipe.js';
import type { FlowCounters } from './flow-table.js';

export type SpliceEnd = 'clean' | 'reset' | 'close-wait';

/**
 * `counters`, when given, counts a's bytes to b as rxBytes and b's to a as txBytes (a is the client);
 * `closeWaitMs` bounds a half-closed pair (0: no bound).
 */
export function splice(a: AppStream, b: Socket, onDone: (how: SpliceEnd) => void, closeWaitMs: number,
  counters?: FlowCounters): void {
  joinStreams(a, b, (how) => onDone(how === 'clean' || how === 'close-wait' ? how : 'reset'), { counters, closeWaitMs });
}
