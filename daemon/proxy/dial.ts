/**
 * The destination side's dial: a kernel connect with a deadline, its outcome as a DialStatus
 * (ECONNREFUSED is Refused; anything else, timeouts included, is Unreachable). The socket comes back
 * paused, so no byte is read before the caller has piped it.
 */
import { Socket } from 'node:net';
import { DialStatus } from '../carrier/flow-frames.js';

/** The far node's dial gives up after this long (then the app's connect times out, as without us). */
export const DIAL_TIMEOUT_MS = 10_000;

export type DialOutcome = (status: DialStatus, socket: Socket | null, why: string) => void;

/**
 * Dials ip:port; `done` is called exactly once. Returns the socket, so the caller can abort the dial (destroy).
 * `socket`: an unconnected one to dial with (e.g. one carrying a mark); by default a new one.
 */
export function dialDestination(ip: string, port: number, done: DialOutcome,
  socket = new Socket({ allowHalfOpen: true })): Socket {
  let settled = false;
  const settle = (status: DialStatus, why: string): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    if (status !== DialStatus.Connected) socket.destroy();
    done(status, status === DialStatus.Connected ? socket : null, why);
  };
  socket.connect({ host: ip, port });
  socket.pause();
  const timer = setTimeout(() => settle(DialStatus.Unreachable, 'dial timed out'), DIAL_TIMEOUT_MS);
  socket.once('error', (err: NodeJS.ErrnoException) => {
    settle(err.code === 'ECONNREFUSED' ? DialStatus.Refused : DialStatus.Unreachable, `dial failed: ${err.code ?? err.message}`);
  });
  socket.once('close', () => settle(DialStatus.Unreachable, 'dial aborted'));
  socket.once('connect', () => settle(DialStatus.Connected, 'connected'));
  return socket;
}
