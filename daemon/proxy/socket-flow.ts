/**
 * TCP flows that start at a Node socket instead of a SYN on the TUN: a SOCKS5 CONNECT, a
 * port-forward's accepted connection. They take the same path as a TUN flow: the same transport
 * choice from route info (KCP > QUIC > plain), the same runtime fallback while nothing has moved
 * (a carrier the peer denies, or that heard nothing for NO_ANSWER_FALLBACK_MS, gives way to the
 * next; that deadline is the flow core's, flow-core.ts), the same fidelity (the caller learns
 * Connected, Refused or Unreachable from the far node's real dial before it answers its client), the
 * same pipe and close-wait bound, and a row in the proxy table.
 *
 * "Plain" for a socket means a kernel connect to the virtual address, which the kernel routes over
 * the TUN. Without a TUN (--no-tun) there is no plain path: a destination no carrier can reach is
 * Unreachable, and its row says so.
 */
import type { Socket } from 'node:net';
import type { NodeConfig } from '../config/node-config.js';
import { FlowEvent, type CarrierDriver, type CarrierFlow, type FlowSink } from '../carrier/carrier.js';
import { DialStatus, dialStatusText } from '../carrier/flow-frames.js';
import { SocketPipe } from '../carrier/socket-pipe.js';
import { nowMs } from '../io/clock.js';
import { isOwnAddress, type NodeAddresses } from '../config/addresses.js';
import { formatIpAddress } from '../packet/address.js';
import { readU32 } from '../packet/bytes.js';
import { formatSocketAddr, type SocketAddr } from '../packet/flow-key.js';
import { prefixMask } from '../peer/ipv4-prefix.js';
import type { ProxyTransport } from '../rpc/source.js';
import { dialDestination } from './dial.js';
import { dstDialTarget } from './dial-target.js';
import type { SocketOpening } from './flow-core.js';
import type { FlowEntry, FlowTable } from './flow-table.js';
import { splice } from './splice.js';
import type { TransportChoice } from './transport-choice.js';

/** What TcpProxy lends to flows that start at a socket. */
export interface SocketCarriers {
  readonly table: FlowTable;
  readonly config: NodeConfig;
  readonly addresses: NodeAddresses;
  readonly selfId: number;
  /** The node owning a virtual address (4 or 16 bytes) or proxied range, if any. */
  ownerOf(ip: Uint8Array): number | undefined;
  /** As for a TUN flow; null when the peer has no route. */
  choose(peerId: number, tried: Set<ProxyTransport>): TransportChoice | null;
  /** The carrier a flow to `dstPeer` opens on (toward an EasyTier node: EasyTier's own). */
  driver(transport: 'Kcp' | 'Quic', dstPeer: number): CarrierDriver;
  /** The flow opened a carrier: the flow core's no-answer deadline starts (its expiry calls flow.noAnswer()). */
  awaitAnswer(flow: SocketOpening<CarrierFlow>): void;
  /** The flow has its answer, or gave the carrier up: the deadline goes. */
  settled(flow: SocketOpening<CarrierFlow>): void;
  /** The proxy's flows moving bytes: a stopping node resets their applications, these included. */
  readonly pipes: Set<SocketPipe>;
  /** The pipes' close-wait bound (--proxy-close-wait), ms; 0: none. */
  readonly closeWaitMs: number;
  /**
   * An unconnected IPv4 socket whose connection leaves through the TUN as plain packets (under the
   * redirect termination, one exempt from its rule: otherwise it would come back to the proxy as a new
   * flow); undefined: any socket does.
   */
  plainSocket(): Socket | undefined;
}

/** Where a destination lies, as a SOCKS server decides whether to take it. */
export type Placement = 'self' | 'peer' | 'unowned' | 'outside';

/** `unowned`: inside this node's virtual network but no node has the address (now). */
export function placeOf(c: SocketCarriers, ip: Uint8Array): Placement {
  const owner = c.ownerOf(ip);
  if (owner === c.selfId || (ip.length === 4 && isOwnAddress(c.addresses, ip))) return 'self';
  if (owner !== undefined) return 'peer';
  const net = c.addresses.ipv4;
  if (ip.length === 4 && net) {
    const mask = prefixMask(net.prefix);
    if (((readU32(ip, 0) & mask) >>> 0) === ((net.u32 & mask) >>> 0)) return 'unowned';
  }
  return 'outside';
}

export type SocketDialResult =
  | { ok: true; transport: ProxyTransport; attach(socket: Socket, early: Uint8Array): void }
  | { ok: false; status: DialStatus; why: string };

export interface SocketDialOptions {
  /** The client as the row shows it. */
  src: SocketAddr;
  dst: SocketAddr;
  /** Who started it, first in the row's reason: "socks5", "port-forward". */
  label: string;
}

/** A pending or open flow; abort() when the client leaves before the answer. */
export interface SocketDial {
  abort(): void;
}

/** Starts a flow to `opts.dst`; `done` is called exactly once, unless abort() came first. */
export function dialFromSocket(c: SocketCarriers, opts: SocketDialOptions, done: (r: SocketDialResult) => void): SocketDial {
  const flow = new OutboundFlow(c, opts, done);
  flow.start();
  return flow;
}

class OutboundFlow implements FlowSink, SocketDial, SocketOpening<CarrierFlow> {
  private entry: FlowEntry | null = null;
  private peerId = 0;
  private driver: CarrierDriver | null = null;
  private flow: CarrierFlow | null = null;
  private pipe: SocketPipe | null = null;
  private kernel: Socket | null = null;
  private settled = false;
  private readonly tried = new Set<ProxyTransport>();

  constructor(private readonly c: SocketCarriers, private readonly opts: SocketDialOptions,
    private readonly done: (r: SocketDialResult) => void) {}

  start(): void {
    const { dst } = this.opts;
    const place = placeOf(this.c, dst.ip);
    if (place === 'self') {
      const target = dstDialTarget(dst, this.c.addresses, this.c.config.noTun);
      this.addRow('Tcp', 'this node');
      if (!target.ok) return this.fail(DialStatus.Denied, target.why);
      return this.dialKernel(target.ip);
    }
    if (place === 'outside') {
      this.addRow('Tcp', 'outside the virtual network');
      return this.dialKernel(formatIpAddress(dst.ip));
    }
    const owner = this.c.ownerOf(dst.ip);
    const choice = owner === undefined ? null : this.c.choose(owner, this.tried);
    if (owner === undefined || !choice) {
      this.addRow('Tcp', 'no route');
      return this.fail(DialStatus.Unreachable, 'no node owns this address now');
    }
    this.peerId = owner;
    this.addRow(choice.transport, choice.reason);
    this.next(choice);
  }

  get carrier(): CarrierFlow | null {
    return this.flow;
  }

  /** The flow core's verdict: the carrier heard nothing from the peer in time. */
  noAnswer(why: string): void {
    if (!this.settled && this.flow) this.fallback(why);
  }

  abort(): void {
    if (this.settled && this.pipe) return;
    this.settled = true;
    this.c.settled(this);
    this.kernel?.destroy();
    this.dropCarrier();
    this.closeRow('client left before the answer');
  }

  onFlowEvents(flow: CarrierFlow, ev: number): void {
    if (flow !== this.flow) return; // a carrier this flow already gave up
    if (ev & FlowEvent.Status) this.onStatus(flow.status!);
    if (this.pipe) {
      if (ev & FlowEvent.Reset) this.pipe.onReset();
      else {
        if (ev & (FlowEvent.Readable | FlowEvent.Fin)) this.pipe.onReadable();
        if (ev & FlowEvent.Writable) this.pipe.onWritable();
      }
    } else if ((ev & FlowEvent.Reset) && !this.settled) {
      if (flow.status === null && !flow.heard) this.fallback('no answer from peer');
      else this.fail(DialStatus.Unreachable, 'reset before the connection was accepted');
    }
  }

  private next(choice: TransportChoice): void {
    if (choice.transport === 'Tcp') return this.plain();
    const driver = this.c.driver(choice.transport, this.peerId);
    const entry = this.entry!;
    entry.transport = choice.transport;
    entry.state = 'ConnectingDst';
    this.driver = driver;
    this.flow = driver.open(this.peerId, { src: this.opts.src, dst: this.opts.dst, optimistic: false }, this);
    entry.counters = this.flow;
    this.c.awaitAnswer(this);
  }

  private onStatus(status: DialStatus): void {
    if (this.settled) return;
    this.c.settled(this);
    if (status === DialStatus.Denied) return this.fallback('denied by peer');
    if (status !== DialStatus.Connected) return this.fail(status, `dial ${dialStatusText(status)}`);
    this.settled = true;
    const driver = this.driver!;
    const flow = this.flow!;
    this.entry!.state = 'Connected';
    this.done({
      ok: true, transport: this.entry!.transport,
      attach: (socket, early) => {
        if (flow.ended) {
          socket.resetAndDestroy();
          return this.closeRow('reset before the client was attached');
        }
        if (early.length > 0) socket.unshift(Buffer.from(early));
        const pipe = new SocketPipe(socket, driver.pipeStream(flow), () => driver.kick(), (how) => {
          this.c.pipes.delete(pipe);
          driver.detach(flow);
          this.closeRow(how === 'clean' ? 'closed' : how);
        }, { closeWaitMs: this.c.closeWaitMs });
        this.pipe = pipe;
        this.c.pipes.add(pipe);
        socket.resume();
      },
    });
  }

  /** The carrier cannot open the flow: the next transport, down to plain. */
  private fallback(why: string): void {
    const entry = this.entry!;
    this.tried.add(entry.transport);
    entry.reason = `${entry.reason}; ${entry.transport.toLowerCase()}: ${why}`;
    this.dropCarrier();
    const next = this.c.choose(this.peerId, this.tried) ?? { transport: 'Tcp', reason: 'no route' };
    this.c.table.totals.fellBack(entry.transport, next.transport);
    entry.reason = `${entry.reason}; ${next.reason}`;
    this.next(next);
  }

  /** Plain: the kernel's own connect, routed over the TUN; none without one. */
  private plain(): void {
    const entry = this.entry!;
    entry.transport = 'Tcp';
    entry.counters = { txBytes: 0, rxBytes: 0, rttMs: 0, retransmits: 0, duplicates: 0 };
    if (this.c.config.noTun || !this.c.config.ipv4) {
      return this.fail(DialStatus.Unreachable, 'no carrier and no TUN for plain packets (--no-tun)');
    }
    let socket: Socket | undefined;
    try {
      socket = this.opts.dst.ip.length === 4 ? this.c.plainSocket() : undefined;
    } catch (e) {
      return this.fail(DialStatus.Unreachable, `plain dial failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    this.dialKernel(formatIpAddress(this.opts.dst.ip), socket);
  }

  /** `via`: an unconnected socket to dial with (a plain flow's, past the redirect); by default a new one. */
  private dialKernel(ip: string, via?: Socket): void {
    this.entry!.state = 'ConnectingDst';
    this.kernel = dialDestination(ip, this.opts.dst.port, (status, socket, why) => {
      this.kernel = null;
      if (this.settled) {
        socket?.destroy();
        return;
      }
      if (!socket) return this.fail(status, why);
      this.settled = true;
      const entry = this.entry!;
      entry.state = 'Connected';
      this.done({
        ok: true, transport: 'Tcp',
        attach: (client, early) => {
          if (early.length > 0) socket.write(early);
          splice(client, socket, (how) => this.closeRow(how === 'clean' ? 'closed' : how), this.c.closeWaitMs, entry.counters);
        },
      });
    }, via);
  }

  private fail(status: DialStatus, why: string): void {
    if (this.settled) return;
    this.settled = true;
    this.c.settled(this);
    this.dropCarrier();
    this.closeRow(why);
    this.done({ ok: false, status, why });
  }

  private dropCarrier(): void {
    if (!this.flow) return;
    if (!this.flow.ended) this.driver!.abort(this.flow);
    this.driver!.detach(this.flow);
    this.flow = this.driver = null;
  }

  private addRow(transport: ProxyTransport, reason: string): void {
    this.entry = this.c.table.add({
      src: formatSocketAddr(this.opts.src), dst: formatSocketAddr(this.opts.dst), role: 'src', transport,
      reason: `${this.opts.label}; ${reason}`, state: 'SynReceived', startTime: Math.floor(Date.now() / 1000),
    });
  }

  private closeRow(why: string): void {
    const e = this.entry;
    if (!e || e.closedAt !== 0) return;
    e.reason = `${e.reason}; ${why}`;
    this.c.table.close(e, nowMs());
  }
}
