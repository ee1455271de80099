/**
 * A redirected connection the proxy does not carry (the peer takes neither KCP nor QUIC, no carrier
 * answered, or the address has no owner): the daemon dials the original destination itself, with a
 * socket exempt from the redirect, so the kernel sends it through the TUN as plain packets, and joins
 * the two. The application is already connected (its kernel accepted first), so a refused or
 * unreachable destination is a reset on its connection.
 */
import type { Socket } from 'node:net';
import { resetApp } from '../../carrier/app-end.js';
import { u32ToIpv4 } from '../../peer/ipv4-prefix.js';
import { dialDestination } from '../../proxy/dial.js';
import { splice } from '../../proxy/splice.js';
import type { PlainRow } from '../terminator.js';
import { exemptSocket, type Ipv4Endpoint } from './sockopt.js';

/**
 * Dials the destination, then pipes; the app's connection stays unread until then. `row`, when the
 * proxy lists the flow, counts its bytes and hears its end (never before this call returns).
 */
export function plainSplice(app: Socket, dst: Ipv4Endpoint, closeWaitMs: number, row: PlainRow | null): void {
  const end = (why: string): void => row?.ended(why);
  let socket: Socket;
  try {
    socket = exemptSocket();
  } catch (e) {
    resetApp(app);
    const why = `plain dial failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    return queueMicrotask(() => end(why));
  }
  dialDestination(u32ToIpv4(dst.ip), dst.port, (_status, dialed, why) => {
    if (!dialed) {
      resetApp(app);
      return end(why);
    }
    splice(app, dialed, (how) => end(how === 'clean' ? 'closed' : how), closeWaitMs, row?.counters);
  }, socket);
}
