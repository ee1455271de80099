/**
 * Joins two application streams (a userspace-stack flow or a kernel socket, and a kernel socket) both ways, through the
 * one pipe's rules (carrier/socket-pipe.ts): back-pressure, half-close, reset; the flow's row counts the bytes.
 */
import type { Socket } from 'node:net';
import { joinStreams, type AppStream } from '../carrier/socket-pipe.js';
import type { FlowCounters } from './flow-table.js';

export type SpliceEnd = 'clean' | 'reset';

/** `counters`, when given, counts a's bytes to b as rxBytes and b's to a as txBytes (a is the client). */
export function splice(a: AppStream, b: Socket, onDone: (how: SpliceEnd) => void, counters?: FlowCounters): void {
  joinStreams(a, b, (how) => onDone(how === 'clean' ? 'clean' : 'reset'), { counters });
}
