/**
 * The proxy's flow machine, sans-IO: both roles of a carried TCP flow, from the held SYN to the
 * closed row, with no socket, timer or carrier in sight. TcpProxy (its adapter) feeds it what
 * happened — a SYN claimed, a carrier opened, a STATUS, a reset, an accepted connection, a dial's
 * outcome, a pipe's end, a peer gone — with the monotonic `now`, then drains `pollAction()` and
 * wakes it at `pollTimeout()` with `handleTimeout(now)`. test/sim/proxy-flow.test.ts runs it by the
 * thousand on a virtual clock.
 *
 * Source role. Connection fidelity (default): the application's SYN is held until the far node
 * reports its dial. Connected releases it (connect() completes only once the destination accepted);
 * Refused answers it with a RST; Unreachable drops it (the app's connect times out, as without the
 * proxy). With --proxy-optimistic the SYN is released at once (EasyTier's way).
 *
 * Runtime fallback (beyond EasyTier, which only decides from route info): while the SYN is still held,
 * a carrier the peer denies, or that heard nothing from the peer after NO_ANSWER_FALLBACK_MS, gives
 * way to the next transport (KCP > QUIC > plain packets); plain packets means the held SYN is handed
 * back and forwarded as is. The row says what was tried and why. Nothing from the peer, not nothing
 * about this flow: while the carrier hears the peer on other flows, this flow's OPEN is queued on a
 * busy node, not lost, and it waits on (bounded by the carrier's open timeout).
 *
 * Rows never outlive their flow: a released SYN whose connection never reaches the proxy (the kernel
 * listener dropped the application's last handshake ACK, e.g. with a full accept queue) is given up
 * after ACCEPT_TIMEOUT_MS, so it cannot stay ConnectingDst here and Connected on the far node.
 *
 * Destination role: the OPEN's row, the dial (or its denial by policy), the STATUS answer, the pipe's
 * end. Peers: PeerWatch decides when a peer's flows are reset (gone, or unreachable past the timeout).
 *
 * Flows that start at a socket (SOCKS5, port forwards: socket-flow.ts) keep their own state, but
 * their no-answer deadline is here too (socketOpened / socketSettled / 'socket-no-answer'), so every
 * flow timer of the proxy is one of the core's deadlines.
 */
import { DialStatus, dialStatusText, type OpenRequest } from '../carrier/flow-frames.js';
import type { ProxyTransport } from '../rpc/source.js';
import type { DialTarget } from './dial-target.js';
import { formatSocketAddr } from '../packet/flow-key.js';
import type { FlowCounters, FlowEntry, FlowTable } from './flow-table.js';
import { PeerWatch } from './peer-watch.js';
import type { TransportChoice } from './transport-choice.js';

/** A held flow whose carrier heard nothing from the peer (about any flow) this long tries the next transport. */
export const NO_ANSWER_FALLBACK_MS = 3_000;
/**
 * A released SYN whose connection has not reached the proxy this long is given up. Linux retransmits
 * an unanswered SYN-ACK for 63 s before it forgets a half-open connection; past that it never comes.
 */
export const ACCEPT_TIMEOUT_MS = 65_000;

export type CarriedTransport = 'Kcp' | 'Quic';

/** What the core reads of a carrier's flow (CarrierFlow has it all). */
export interface CarrierView extends FlowCounters {
  /** The STATUS received (initiator); null while opening. */
  readonly status: DialStatus | null;
  /** The peer's carrier has shown it is there for this flow. */
  readonly heard: boolean;
  /** When the carrier last heard from this flow's peer over any flow (-Infinity: never). */
  readonly peerHeardAt: number;
  readonly ended: boolean;
}

const NO_COUNTERS: FlowCounters = { txBytes: 0, rxBytes: 0, rttMs: 0, retransmits: 0, duplicates: 0 };

/**
 * held: claimed, no carrier yet; opening: waiting for STATUS; released: the app's handshake may
 * complete; piped: bytes move; done: the row is closed.
 */
type SrcPhase = 'held' | 'opening' | 'released' | 'piped' | 'done';

/** The source side of one carried flow. */
export class SrcFlowState<C extends CarrierView = CarrierView> {
  phase: SrcPhase = 'held';
  carrier: C | null = null;
  transport: CarriedTransport = 'Kcp';
  /** Transports that failed this flow before any byte moved. */
  readonly tried = new Set<ProxyTransport>();
  constructor(readonly row: FlowEntry, readonly req: OpenRequest, readonly dstPeer: number) {}
}

/** The destination side: dialling, then piped, then done. */
export class DstFlowState<C extends CarrierView = CarrierView> {
  phase: 'dialling' | 'piped' | 'done' = 'dialling';
  constructor(readonly row: FlowEntry, readonly carrier: C, readonly transport: CarriedTransport, readonly req: OpenRequest) {}
}

/**
 * A flow that starts at a socket (a SOCKS5 CONNECT, a port forward; socket-flow.ts) while it opens on
 * a carrier: its adapter keeps the rest of its state, the core its no-answer deadline.
 */
export interface SocketOpening<C extends CarrierView = CarrierView> {
  /** The carrier flow being opened; null once given up. */
  readonly carrier: C | null;
  /** What the adapter calls for this flow's 'socket-no-answer'. */
  noAnswer(why: string): void;
}

export type FlowAction<C extends CarrierView> =
  /** Open the flow on `transport`; hand the carrier's flow back with opened(). */
  | { kind: 'open'; flow: SrcFlowState<C>; transport: CarriedTransport }
  /** Stop listening to a carrier flow; with `abort`, reset it first unless it already ended (the peer sees a reset). */
  | { kind: 'detach'; carrier: C; transport: CarriedTransport; abort: boolean }
  /** The terminator's verbs on the held SYN / the app's connection (see intercept/terminator.ts). */
  | { kind: 'release' | 'refuse' | 'drop' | 'ended'; flow: SrcFlowState<C> }
  /** No carrier left: take the held SYN back and forward it as plain packets; report with passed(). */
  | { kind: 'pass'; flow: SrcFlowState<C> }
  /** Reset every flow with this peer on every carrier (PeerWatch's verdict). */
  | { kind: 'abort-peer'; peer: number; why: string }
  /** Destination: dial ip:port; report with dialed(). */
  | { kind: 'dial'; flow: DstFlowState<C>; ip: string; port: number }
  /** Destination: answer the OPEN; anything but Connected also detaches the carrier flow. */
  | { kind: 'answer'; flow: DstFlowState<C>; status: DialStatus }
  /** Reset the application's piped connection (its pipe's end then closes the row). */
  | { kind: 'reset-app'; flow: SrcFlowState<C> }
  /** Destination: abort the dial in progress (its outcome still comes back through dialed()). */
  | { kind: 'cancel-dial'; flow: DstFlowState<C> }
  /** A socket flow's carrier heard nothing from the peer in time: it tries the next transport. */
  | { kind: 'socket-no-answer'; flow: SocketOpening<C>; why: string };

export type Claim<C extends CarrierView> =
  | { kind: 'held'; flow: SrcFlowState<C> }
  /** Plain packets from the start; a row to follow (IPv4) or none. */
  | { kind: 'plain'; row: FlowEntry | null };

export interface FlowCoreOptions {
  table: FlowTable;
  /** The transport for a flow to `peer` from route info, skipping `tried`; null: the peer has no route. */
  choose(peer: number, tried: ReadonlySet<ProxyTransport>): TransportChoice | null;
  /** Reset a peer's flows once it has been unreachable this long (--proxy-flow-timeout). */
  flowTimeoutMs: number;
  noAnswerMs?: number;
  acceptTimeoutMs?: number;
  /** Lines for the debug log, with the flow's endpoints; none in the simulation. */
  note?: (what: string, fields: Record<string, unknown>) => void;
}

export class FlowCore<C extends CarrierView = CarrierView> {
  readonly table: FlowTable;
  private readonly actions: FlowAction<C>[] = [];
  private actionAt = 0;
  /** Held flows and socket flows waiting for STATUS, by no-answer deadline: insertion order is deadline order. */
  private readonly noAnswer = new Map<SrcFlowState<C> | SocketOpening<C>, number>();
  /** Released flows waiting for the app's connection, by accept deadline (insertion order too). */
  private readonly accepting = new Map<SrcFlowState<C>, number>();
  private readonly watch: PeerWatch;
  private readonly noAnswerMs: number;
  private readonly acceptTimeoutMs: number;

  constructor(private readonly opts: FlowCoreOptions) {
    this.table = opts.table;
    this.noAnswerMs = opts.noAnswerMs ?? NO_ANSWER_FALLBACK_MS;
    this.acceptTimeoutMs = opts.acceptTimeoutMs ?? ACCEPT_TIMEOUT_MS;
    this.watch = new PeerWatch(opts.flowTimeoutMs, (peer, why) => this.push({ kind: 'abort-peer', peer, why }));
  }

  pollAction(): FlowAction<C> | null {
    if (this.actionAt < this.actions.length) return this.actions[this.actionAt++]!;
    this.actions.length = this.actionAt = 0;
    return null;
  }

  /** The next deadline: a no-answer fallback, an accept timeout, a peer's flow timeout, a row's linger. */
  pollTimeout(): number {
    let at = Math.min(this.watch.nextDeadline(), this.table.sweepAt);
    for (const t of this.noAnswer.values()) { at = Math.min(at, t); break; }
    for (const t of this.accepting.values()) { at = Math.min(at, t); break; }
    return at;
  }

  handleTimeout(now: number): void {
    for (const [flow, t] of this.noAnswer) {
      if (t > now) break;
      this.noAnswer.delete(flow);
      // Heard: the STATUS is late (a slow dial), not missing; the carrier's own open timeout ends it.
      const carrier = flow.carrier;
      if (!carrier || carrier.status !== null || carrier.heard) continue;
      if (now - carrier.peerHeardAt < this.noAnswerMs) {
        // The peer talks to this carrier, only not yet about this flow: its OPEN (or the answer) waits
        // behind other flows' data on a busy node. Ask again later; the carrier's open timeout bounds it.
        this.noAnswer.set(flow, now + this.noAnswerMs); // the latest deadline: it goes last, in order
        continue;
      }
      const why = `no answer in ${this.noAnswerMs / 1000} s`;
      if (flow instanceof SrcFlowState) this.fallback(flow, why, now);
      else this.push({ kind: 'socket-no-answer', flow, why });
    }
    for (const [src, t] of this.accepting) {
      if (t > now) break;
      this.accepting.delete(src);
      this.dropCarrier(src);
      this.endSrc(src, `released, but the application's connection never reached the proxy in ${this.acceptTimeoutMs / 1000} s`, now);
    }
    this.watch.sweep(now);
    if (this.table.sweepAt <= now) this.table.sweep(now);
  }

  // ---- source role ----

  /** A SYN nobody tracks, to `dstPeer`: hold it, pass it as plain packets, or (null: no route) leave it. */
  claim(req: OpenRequest, dstPeer: number, startTime: number): Claim<C> | null {
    const choice = this.opts.choose(dstPeer, new Set());
    if (!choice) return null;
    const row = { src: formatSocketAddr(req.src), dst: formatSocketAddr(req.dst), role: 'src' as const, startTime };
    this.opts.note?.('new flow', { src: row.src, dst: row.dst, ...choice });
    if (choice.transport === 'Tcp') {
      return { kind: 'plain', row: this.table.add({ ...row, transport: 'Tcp', reason: choice.reason, state: 'Connected' }) };
    }
    const entry = this.table.add({ ...row, transport: choice.transport, reason: choice.reason, state: 'SynReceived' });
    return { kind: 'held', flow: new SrcFlowState<C>(entry, req, dstPeer) };
  }

  /** The terminator holds the SYN: open the first carrier (and release at once if optimistic). */
  held(src: SrcFlowState<C>, now: number): void {
    this.openWith(src, src.row.transport as CarriedTransport, now);
    if (src.req.optimistic) this.release(src, now);
  }

  /** The carrier's flow for the last 'open' action. */
  opened(src: SrcFlowState<C>, carrier: C): void {
    src.carrier = carrier;
    src.row.counters = carrier;
  }

  status(src: SrcFlowState<C>, carrier: C, status: DialStatus, now: number): void {
    if (carrier !== src.carrier || src.phase === 'done') return;
    this.noAnswer.delete(src);
    const holding = src.phase === 'opening';
    if (status === DialStatus.Connected) {
      if (holding) this.release(src, now);
      return;
    }
    // Nothing moved yet (the SYN is still held): another carrier, or plain packets, may still work.
    if (status === DialStatus.Denied && holding) return this.fallback(src, 'denied by peer', now);
    if (src.phase === 'piped') {
      // Optimistic: the application is already connected, and learns of the failed dial by a reset.
      src.row.reason = `${src.row.reason}; dial ${dialStatusText(status)}`;
      return this.push({ kind: 'reset-app', flow: src });
    }
    this.push({ kind: status === DialStatus.Refused ? 'refuse' : 'drop', flow: src });
    this.endSrc(src, `dial ${dialStatusText(status)}`, now);
  }

  /** The carrier reset the flow before it was piped (after, the pipe reports its end). */
  carrierReset(src: SrcFlowState<C>, carrier: C, now: number): void {
    if (carrier !== src.carrier || src.phase === 'piped' || src.phase === 'done') return;
    this.noAnswer.delete(src);
    if (src.phase === 'opening' && !src.req.optimistic && carrier.status === null && !carrier.heard) {
      return this.fallback(src, 'no answer from peer', now);
    }
    this.endSrc(src, 'reset before the connection was accepted', now);
  }

  /** The application's connection reached the proxy. False: not wanted any more (reset the app). */
  accepted(src: SrcFlowState<C>): boolean {
    if (src.phase !== 'released' || !src.carrier || src.carrier.ended) return false;
    this.accepting.delete(src);
    src.phase = 'piped';
    src.row.state = 'Connected';
    return true;
  }

  /** The pipe between the application and the carrier ended; `why` for the row. */
  pipeEnded(src: SrcFlowState<C>, why: string, now: number): void {
    this.endSrc(src, why, now);
  }

  /** The terminator gave the flow up on its own (client reset, held too long, stack crash). */
  abandoned(src: SrcFlowState<C>, why: string, now: number): void {
    this.dropCarrier(src);
    this.closeRow(src, why, now);
  }

  /** A bug met inside this unpiped flow: drop the SYN, reset the carrier, close the row. */
  srcFault(src: SrcFlowState<C>, err: string, now: number): void {
    if (src.phase === 'done') return;
    this.push({ kind: 'drop', flow: src });
    this.dropCarrier(src);
    this.endSrc(src, `failed: ${err}`, now);
  }

  /** After 'pass': `syn` says whether the SYN was still held and of which family. */
  passed(src: SrcFlowState<C>, syn: 'ipv4' | 'ipv6' | null, now: number): void {
    const row = src.row;
    if (!syn) return this.closeRow(src, 'SYN no longer held', now);
    row.reason = `${row.reason}; plain packets`;
    row.state = 'Connected';
    if (syn === 'ipv6') return this.closeRow(src, 'not followed (IPv6)', now);
    // The plain-flow tracker follows the row from here, and closes it on the app's FIN or RST.
    src.phase = 'done';
  }

  private openWith(src: SrcFlowState<C>, transport: CarriedTransport, now: number): void {
    src.transport = transport;
    src.phase = 'opening';
    src.row.transport = transport;
    src.row.state = 'ConnectingDst';
    this.push({ kind: 'open', flow: src, transport });
    if (!src.req.optimistic) this.noAnswer.set(src, now + this.noAnswerMs);
  }

  private release(src: SrcFlowState<C>, now: number): void {
    src.phase = 'released';
    this.push({ kind: 'release', flow: src });
    this.accepting.set(src, now + this.acceptTimeoutMs);
  }

  /** The current carrier cannot open this held flow: try the next transport, down to plain packets. */
  private fallback(src: SrcFlowState<C>, why: string, now: number): void {
    const row = src.row;
    const gaveUp = src.transport;
    src.tried.add(gaveUp);
    this.dropCarrier(src);
    row.reason = `${row.reason}; ${gaveUp.toLowerCase()}: ${why}`;
    const next = this.opts.choose(src.dstPeer, src.tried);
    this.table.totals.fellBack(gaveUp, next?.transport ?? 'Tcp');
    this.opts.note?.('proxied flow falls back', { src: row.src, dst: row.dst, from: gaveUp, why, to: next?.transport ?? 'none' });
    if (next && next.transport !== 'Tcp') {
      row.reason = `${row.reason}; ${next.reason}`;
      return this.openWith(src, next.transport, now);
    }
    row.transport = 'Tcp';
    row.counters = NO_COUNTERS;
    src.phase = 'held';
    this.push({ kind: 'pass', flow: src });
  }

  private dropCarrier(src: SrcFlowState<C>): void {
    if (!src.carrier) return;
    this.push({ kind: 'detach', carrier: src.carrier, transport: src.transport, abort: true });
    src.carrier = null;
  }

  /** Done with the app's side: the terminator forgets the flow, the row closes. */
  private endSrc(src: SrcFlowState<C>, why: string, now: number): void {
    if (src.phase === 'done') return;
    this.push({ kind: 'ended', flow: src });
    this.closeRow(src, why, now);
  }

  private closeRow(src: SrcFlowState<C>, why: string, now: number): void {
    if (src.phase === 'done') return;
    src.phase = 'done';
    this.noAnswer.delete(src);
    this.accepting.delete(src);
    // The carrier flow stays until here so the row's counters are final; its sink goes now.
    if (src.carrier) this.push({ kind: 'detach', carrier: src.carrier, transport: src.transport, abort: false });
    src.carrier = null;
    src.row.reason = `${src.row.reason}; ${why}`;
    this.opts.note?.('proxied flow ended', { src: src.row.src, dst: src.row.dst, why });
    this.table.close(src.row, now);
  }

  // ---- flows from sockets ----

  /** A socket flow opened its carrier: it falls back if the carrier hears nothing in time. */
  socketOpened(flow: SocketOpening<C>, now: number): void {
    this.noAnswer.delete(flow); // a later deadline goes last, keeping deadline order
    this.noAnswer.set(flow, now + this.noAnswerMs);
  }

  /** The socket flow has its answer (or is gone): no deadline any more. */
  socketSettled(flow: SocketOpening<C>): void {
    this.noAnswer.delete(flow);
  }

  // ---- destination role ----

  /** A peer's OPEN: its row, then the dial (or the denial `target` gives). */
  openRequest(transport: CarriedTransport, carrier: C, req: OpenRequest, target: DialTarget, startTime: number,
    now: number): DstFlowState<C> {
    const row = this.table.add({
      src: formatSocketAddr(req.src), dst: formatSocketAddr(req.dst), role: 'dst', transport, reason: 'accepted', state: 'ConnectingDst', startTime,
    });
    row.counters = carrier;
    const dst = new DstFlowState<C>(row, carrier, transport, req);
    if (!target.ok) this.answer(dst, DialStatus.Denied, target.why, now);
    else this.push({ kind: 'dial', flow: dst, ip: target.ip, port: req.dst.port });
    return dst;
  }

  /** The dial's outcome. True: connected and answered, so pipe the socket; false: the caller closes it. */
  dialed(dst: DstFlowState<C>, status: DialStatus, why: string, now: number): boolean {
    if (dst.phase !== 'dialling') return false;
    if (dst.carrier.ended) {
      // The source gave up (reset) while we dialled.
      this.push({ kind: 'detach', carrier: dst.carrier, transport: dst.transport, abort: false });
      dst.row.reason = 'source reset during the dial';
      this.closeDst(dst, now);
      return false;
    }
    this.answer(dst, status, why, now);
    if (status !== DialStatus.Connected) return false;
    dst.phase = 'piped';
    return true;
  }

  /** The carrier reset the flow before it was piped: stop the dial (its outcome closes the row). */
  dstCarrierReset(dst: DstFlowState<C>): void {
    if (dst.phase === 'dialling') this.push({ kind: 'cancel-dial', flow: dst });
  }

  dstPipeEnded(dst: DstFlowState<C>, why: string, now: number): void {
    dst.row.reason = `connected; ${why}`;
    this.closeDst(dst, now);
  }

  /** A bug met inside this unpiped flow: stop the dial, reset the carrier, close the row. */
  dstFault(dst: DstFlowState<C>, err: string, now: number): void {
    if (dst.phase === 'done') return;
    dst.row.reason = `${dst.row.reason}; failed: ${err}`;
    this.push({ kind: 'cancel-dial', flow: dst });
    this.push({ kind: 'detach', carrier: dst.carrier, transport: dst.transport, abort: true });
    this.closeDst(dst, now);
  }

  private answer(dst: DstFlowState<C>, status: DialStatus, why: string, now: number): void {
    this.push({ kind: 'answer', flow: dst, status });
    dst.row.reason = why;
    if (status === DialStatus.Connected) dst.row.state = 'Connected';
    else this.closeDst(dst, now);
  }

  private closeDst(dst: DstFlowState<C>, now: number): void {
    dst.phase = 'done';
    this.table.close(dst.row, now);
  }

  // ---- peers ----

  /** The peer's process is gone (goodbye, refused port, restart): its flows are reset now. */
  peerGone(peer: number): void {
    this.watch.gone(peer);
  }

  /** A direct peer's last session ended after `silentForMs` of silence, and no route remains. */
  peerDown(peer: number, silentForMs: number, now: number): void {
    this.watch.down(peer, silentForMs, now);
  }

  /** The reachable nodes and their virtual IPv4 (0: none), after a route change. */
  routes(reachable: Map<number, number>, now: number): void {
    this.watch.routes(reachable, now);
  }

  private push(a: FlowAction<C>): void {
    this.actions.push(a);
  }
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
