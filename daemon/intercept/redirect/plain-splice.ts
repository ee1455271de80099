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
import type { FlowCounters } from '../../proxy/flow-table.js';
import { splice } from '../../proxy/splice.js';
import type { PlainSplice } from '../terminator.js';
import { exemptSocket, type Ipv4Endpoint } from './sockopt.js';

export class RedirectSplice implements PlainSplice {
  private counters: FlowCounters | undefined;
  private onEnd: ((why: string) => void) | null = null;
  private endedWhy: string | null = null;

  constructor(private readonly app: Socket, private readonly dst: Ipv4Endpoint, private readonly closeWaitMs: number) {}

  follow(counters: FlowCounters, end: (why: string) => void): void {
    this.counters = counters;
    if (this.endedWhy !== null) end(this.endedWhy);
    else this.onEnd = end;
  }

  /** Dials the destination, then pipes; the app's connection stays unread until then. */
  start(): void {
    let socket: Socket;
    try {
      socket = exemptSocket();
    } catch (e) {
      resetApp(this.app);
      return this.end(`plain dial failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    dialDestination(u32ToIpv4(this.dst.ip), this.dst.port, (_status, dialed, why) => {
      if (!dialed) {
        resetApp(this.app);
        return this.end(why);
      }
      splice(this.app, dialed, (how) => this.end(how === 'clean' ? 'closed' : how), this.closeWaitMs, this.counters);
    }, socket);
  }

  private end(why: string): void {
    if (this.endedWhy !== null) return;
    this.endedWhy = why;
    this.onEnd?.(why);
    this.onEnd = null;
  }
}
