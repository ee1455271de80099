/**
 * The redirect path behind the Terminator seam (`--proxy-redirect`, docs/userspace-stack.md,
 * "Redirect"): a packet-filter rule (rules.ts) sends every TCP connection this host opens through the
 * TUN to one listener on 127.0.0.1, and the accepted socket's SO_ORIGINAL_DST says where it was going.
 * The proxied flow's bytes then go app → kernel socket → carrier, never through the TUN: with kernel
 * termination every application segment and every ACK of our listener crossed the TUN twice (read,
 * NAT-rewritten, re-injected).
 *
 * The kernel completes the application's handshake before we hear of the flow (as EasyTier's own
 * kernel path does), so connection fidelity is weaker than the kernel NAT's held SYN: the accepted
 * connection is held unread while the far node dials, a refused or unreachable destination resets
 * it, and a flow no carrier takes is piped by the daemon itself as plain packets (plain-splice.ts).
 * Only connections this host opens are redirected (the output hook); a LAN host's flows forwarded
 * into the TUN pass as plain packets, as they do under kernel termination.
 */
import type { Socket } from 'node:net';
import { resetApp } from '../../carrier/app-end.js';
import { TstierError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { ipv4ToU32 } from '../../peer/ipv4-prefix.js';
import { u32ToBytes } from '../kernel/addr.js';
import { KernelListeners } from '../kernel/listeners.js';
import { HELD_TIMEOUT_MS, type PlainRow, type TerminatedFlow, type Terminator, type TerminatorClient } from '../terminator.js';
import { plainSplice } from './plain-splice.js';
import { RedirectRules } from './rules.js';
import { exemptSocket, originalDst, setRecvBuffer, type Ipv4Endpoint } from './sockopt.js';

/** Accepted connections held unread at once, at most; more are reset (bounded descriptors). */
export const MAX_HELD = 4096;
/**
 * The receive buffer of every accepted connection, fixed. Autotuned on loopback it grew to the
 * kernel's tcp_rmem maximum (32 MiB here): at 1,000 flows the applications' whole megabyte each sat in
 * our sockets within a second, TCP memory went into pressure, and the applications' own TCP timed out
 * (1,499 RTOs in one run). 256 KiB is still a window far above what one flow's carrier takes per
 * millisecond of event-loop latency.
 */
export const RECV_BUFFER = 256 * 1024;

/** held: accepted, unread, waiting for the proxy; piped: the proxy's pipe or our splice owns it; gone: reset. */
interface RedirectFlow {
  readonly socket: Socket;
  readonly dst: Ipv4Endpoint;
  phase: 'held' | 'piped' | 'gone';
}

export class RedirectTerminator<O extends TerminatedFlow> implements Terminator<O> {
  readonly kind = 'redirect';
  /** Held flows by the time they were accepted: insertion order is expiry order. */
  private readonly held = new Map<O, number>();

  private constructor(
    private readonly listeners: KernelListeners,
    private readonly rules: RedirectRules,
    private readonly client: TerminatorClient<O>,
    private readonly clock: () => number,
    private readonly closeWaitMs: number,
  ) {}

  /** Listens on 127.0.0.1 and installs the rule for TCP leaving through the TUN `dev`. */
  static async open<O extends TerminatedFlow>(dev: string, client: TerminatorClient<O>, clock: () => number,
    closeWaitMs: number, log: Logger): Promise<RedirectTerminator<O>> {
    let term: RedirectTerminator<O> | null = null;
    const listeners = await KernelListeners.open('127.0.0.1', (s) => {
      if (term) term.onAccept(s);
      else s.destroy();
    }, 1);
    let rules: RedirectRules;
    try {
      for (const fd of listeners.fds) setRecvBuffer(fd, RECV_BUFFER);
      rules = await RedirectRules.install(dev, listeners.ports[0]!);
    } catch (e) {
      listeners.close();
      throw new TstierError('TSTIER_E_BAD_CONFIG', `--proxy-redirect: cannot set up the listener's buffer or the nftables redirect rule: ${(e as Error).message}`);
    }
    term = new RedirectTerminator(listeners, rules, client, clock, closeWaitMs);
    log.debug('redirect termination', { dev, listener: listeners.ports[0], table: rules.table });
    return term;
  }

  /** Nothing of a redirected flow crosses the TUN. */
  intercept(): boolean {
    return false;
  }

  release(owner: O): void {
    const f = this.unhold(owner);
    if (!f) return;
    f.phase = 'piped';
    // Not from inside the proxy's action: the kernel path's accept arrives later too.
    queueMicrotask(() => this.client.accepted(owner, f.socket));
  }

  refuse(owner: O): void {
    this.reset(owner);
  }

  /** An unreachable destination: the application is already connected, so it gets a reset too. */
  drop(owner: O): void {
    this.reset(owner);
  }

  carryPlain(owner: O, row: PlainRow): 'ipv4' | null {
    const f = this.unhold(owner);
    if (!f) return null;
    f.phase = 'piped';
    plainSplice(f.socket, f.dst, this.closeWaitMs, row);
    return 'ipv4';
  }

  plainSocket(): Socket {
    return exemptSocket();
  }

  /** A flow the proxy ends before piping it is reset; after, its pipe has closed the connection. */
  ended(owner: O): void {
    this.reset(owner);
  }

  sweep(now: number): void {
    for (const [owner, at] of this.held) {
      if (now - at < HELD_TIMEOUT_MS) break;
      this.reset(owner);
      this.client.abandoned(owner, 'held connection expired');
    }
  }

  close(): void {
    this.listeners.close();
    this.rules.remove();
    for (const owner of [...this.held.keys()]) this.reset(owner);
  }

  private onAccept(socket: Socket): void {
    socket.on('error', () => undefined); // a reset while held: the proxy's pipe or our splice sees it later
    let dst;
    try {
      dst = originalDst(socket);
    } catch {
      dst = null; // the connection is gone already (its descriptor closed)
    }
    const srcIp = ipv4ToU32(socket.remoteAddress ?? '');
    if (!dst || srcIp === null) return void socket.destroy(); // a direct connection to the listener
    if (this.held.size >= MAX_HELD) return resetApp(socket);
    let row: PlainRow | null = null;
    const owner = this.client.claim(
      { ip: u32ToBytes(srcIp), port: socket.remotePort ?? 0 }, { ip: u32ToBytes(dst.ip), port: dst.port }, (r) => {
        row = r;
      });
    if (!owner) return plainSplice(socket, dst, this.closeWaitMs, row);
    const f: RedirectFlow = { socket, dst, phase: 'held' };
    owner.term = f;
    this.held.set(owner, this.clock());
    this.client.held(owner);
  }

  private unhold(owner: O): RedirectFlow | null {
    const f = owner.term as RedirectFlow;
    if (f.phase !== 'held') return null;
    this.held.delete(owner);
    return f;
  }

  private reset(owner: O): void {
    const f = this.unhold(owner);
    if (!f) return;
    f.phase = 'gone';
    resetApp(f.socket);
  }
}
