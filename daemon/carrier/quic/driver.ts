/**
 * Binds a QuicEndpoint to the peer layer and one timer, and turns its streams into proxied flows
 * (EasyTier 2.6's design, docs/quic-proxy.md "How a flow is carried"): one QUIC connection per destination peer,
 * opened on first use and reused; one bidirectional stream per flow. QUIC datagrams travel as peer
 * packets QuicSrc (on connections the sender initiated) / QuicDst (replies), so the peer layer
 * encrypts them and relays carry them like any peer packet.
 *
 * Per flow: the initiator writes the OPEN frame first; the acceptor answers with a STATUS frame;
 * then raw bytes. Half-close is the stream's FIN. An abort resets our sending side and stops our
 * receiving side, so the peer sees RESET_STREAM (and STOP_SENDING) and resets its application.
 *
 * Work is coalesced like the KCP driver's: packets and socket activity mark the driver dirty; one
 * setImmediate pass handles QUIC events, tells the sinks, sends, and re-arms the timer.
 */
import type { Logger } from '../../log.js';
import type { PeerManager } from '../../peer/peer-manager.js';
import { PacketType } from '../../peer/wire.js';
import { FlowEvent, type CarrierDriver, type FlowSink } from '../carrier.js';
import { decodeOpen, DialStatus, encodeControl, encodeOpen, FrameType, type OpenRequest } from '../flow-frames.js';
import { PassScheduler } from '../../io/pass-scheduler.js';
import type { PipeStream } from '../socket-pipe.js';
import { nowMs } from '../../io/clock.js';
import { QUIC_FIN, QUIC_GONE, type QuicConnectionStats, type QuicEndpoint, type QuicEvent } from './endpoint.js';
import { QuicFlow } from './flow.js';

type PeerSeam = Pick<PeerManager, 'onPacket' | 'sendTo'>;

export interface QuicDriverOptions {
  /** Whether this node carries flows peers open to it (false: `--disable-quic-input`, answered Denied). */
  acceptInput: boolean;
  /** An open with no STATUS after this long is reported Unreachable. Default 10 s. */
  openTimeoutMs?: number;
  /** Where every flow reset and connection loss is logged with its cause. */
  log?: Logger;
  /** A connection we opened that has carried no flow for this long is closed. Default 60 s. */
  idleCloseMs?: number;
}

/** Application error codes on the stream: an application's reset, or a flow the node refused. */
const CODE_APP_RESET = 1;
const CODE_REFUSED = 2;
/** Connection close code: the peer is gone (restarted, killed) or was unreachable past the flow timeout. */
const CODE_PEER_GONE = 3;
const READ_CHUNK = 64 * 1024;

function resetCause(code: number): string {
  if (code === CODE_APP_RESET) return 'its application reset the connection, or its node ended the flow';
  if (code === CODE_REFUSED) return 'its node refused the flow';
  return 'unknown code';
}

export class QuicCarrierDriver implements CarrierDriver<QuicFlow> {
  readonly kind = 'Quic';
  readonly stats = { malformedHeads: 0, refusedOpens: 0 };
  /** Open flows by connection, then stream id. */
  private readonly flows = new Map<number, Map<number, QuicFlow>>();
  private readonly sinks = new Map<QuicFlow, FlowSink<QuicFlow>>();
  /** Flows waiting for a stream to their peer (connection not up yet, or the peer's stream limit). */
  private readonly waiting = new Map<number, QuicFlow[]>();
  /** Initiator flows without STATUS yet, for the open timeout. */
  private readonly opening = new Set<QuicFlow>();
  private readonly withEvents = new Set<QuicFlow>();
  private readonly scratch = new Uint8Array(READ_CHUNK);
  private readonly openTimeoutMs: number;
  private readonly idleCloseMs: number;
  /**
   * Our connections whose handshake completed (peer → connection), with when each was last seen
   * carrying no flow (Infinity while it carries some). A flow waiting there has been heard from.
   */
  private readonly established = new Map<number, { conn: number; idleSince: number }>();
  private readonly statsOf = (flow: QuicFlow): QuicConnectionStats | null => this.connStats(flow);
  private readonly passes = new PassScheduler(() => this.pass(), nowMs);

  constructor(
    private readonly peer: PeerSeam,
    readonly ep: QuicEndpoint,
    private readonly opts: QuicDriverOptions,
    /** A peer asked us to carry a flow: dial `flow.request`, then answer(). */
    private readonly onOpenRequest: (flow: QuicFlow) => void,
  ) {
    this.openTimeoutMs = opts.openTimeoutMs ?? 10_000;
    this.idleCloseMs = opts.idleCloseMs ?? 60_000;
    peer.onPacket(PacketType.QuicSrc, (from, payload) => {
      ep.input(from, payload, nowMs(), true);
      this.kick();
    });
    peer.onPacket(PacketType.QuicDst, (from, payload) => {
      ep.input(from, payload, nowMs(), false);
      this.kick();
    });
  }

  open(peerId: number, req: OpenRequest, sink: FlowSink<QuicFlow>): QuicFlow {
    const now = nowMs();
    const flow = new QuicFlow(peerId, 'initiator', now + this.openTimeoutMs, this.statsOf);
    flow.request = req;
    flow.head = encodeOpen(req);
    this.sinks.set(flow, sink);
    this.opening.add(flow);
    try {
      this.ep.connect(peerId, now);
      let queue = this.waiting.get(peerId);
      if (!queue) this.waiting.set(peerId, (queue = []));
      queue.push(flow);
      this.openWaiting(peerId);
    } catch (err) {
      this.fail(flow, err); // a crashed core or a bad peer id: the proxy sees a reset before any answer
    }
    this.kick();
    return flow;
  }

  attach(flow: QuicFlow, sink: FlowSink<QuicFlow>): void {
    this.sinks.set(flow, sink);
  }

  detach(flow: QuicFlow): void {
    this.sinks.delete(flow);
    this.settle(flow);
  }

  answer(flow: QuicFlow, status: DialStatus): void {
    if (flow.answered || flow.isReset) return;
    flow.answered = true;
    flow.status = status;
    flow.head = encodeControl(FrameType.Status, status);
    this.flushHead(flow);
    if (status !== DialStatus.Connected) {
      // Nothing more either way: FIN after the STATUS, and stop the peer's sending side.
      this.finishStream(flow);
      flow.peerFin = true;
      this.call(flow, () => this.ep.stop(flow.conn, flow.stream, CODE_REFUSED));
      this.settle(flow);
    }
    this.kick();
  }

  abort(flow: QuicFlow): void {
    if (flow.ended) return;
    this.teardown(flow, CODE_APP_RESET);
    this.kick();
  }

  /** Closes our connections with the peer; their loss (next pass) resets every flow on them. */
  abortPeer(peerId: number): number {
    const conns = new Set<number>();
    let n = this.waiting.get(peerId)?.length ?? 0;
    for (const [conn, byStream] of this.flows) {
      for (const f of byStream.values()) {
        if (f.peerId !== peerId) continue;
        conns.add(conn);
        if (!f.ended) n++;
      }
    }
    const outgoing = this.ep.connectionTo(peerId);
    if (outgoing !== undefined) conns.add(outgoing);
    for (const conn of conns) {
      try {
        this.ep.close(conn, CODE_PEER_GONE, nowMs());
      } catch {
        // already gone: its connection-lost event is on its way
      }
    }
    this.kick();
    return n;
  }

  pipeStream(flow: QuicFlow): PipeStream {
    return {
      write: (d) => this.write(flow, d),
      read: () => this.read(flow),
      readEnded: () => flow.peerFin && flow.leftover === null && !flow.isReset,
      shutdown: () => {
        if (flow.localFin || flow.isReset) return;
        if (flow.head) flow.finPending = true;
        else this.finishStream(flow);
        this.settle(flow);
      },
      abort: () => this.abort(flow),
      release: () => this.detach(flow),
    };
  }

  kick(): void {
    this.passes.kick();
  }

  close(): void {
    this.passes.close();
  }

  /** Open flows (for stats and tests). */
  get flowCount(): number {
    let n = 0;
    for (const m of this.flows.values()) n += m.size;
    for (const q of this.waiting.values()) n += q.length;
    return n;
  }

  // ---- the pass ----

  private pass(): void {
    const ep = this.ep;
    const now = nowMs();
    if (ep.pollTimeout() <= now) ep.handleTimeout(now);
    for (let e = ep.pollEvent(); e; e = ep.pollEvent()) this.onEvent(e);
    for (const f of this.opening) if (f.openDeadline <= now) this.openTimedOut(f);
    this.closeIdle(now);
    for (const flow of this.withEvents) {
      this.withEvents.delete(flow);
      const events = flow.events;
      flow.events = 0;
      if (events & FlowEvent.OpenRequest && !this.sinks.has(flow) && !flow.answered) this.onOpenRequest(flow);
      this.sinks.get(flow)?.onFlowEvents(flow, events);
    }
    for (let t = ep.pollTransmit(); t; t = ep.pollTransmit()) {
      this.peer.sendTo(t.peerId, t.fromInitiator ? PacketType.QuicSrc : PacketType.QuicDst, t.data);
    }
    let at = ep.pollTimeout();
    for (const f of this.opening) if (f.openDeadline < at) at = f.openDeadline;
    for (const c of this.established.values()) at = Math.min(at, c.idleSince + this.idleCloseMs);
    this.passes.arm(at);
  }

  private onEvent(e: QuicEvent): void {
    switch (e.type) {
      case 'connected':
      case 'streams-available':
        if (e.type === 'connected' && !e.outgoing) return;
        if (e.type === 'connected') this.established.set(e.peerId, { conn: e.conn, idleSince: Infinity });
        this.openWaiting(e.peerId);
        return;
      case 'connection-lost':
        if (this.established.get(e.peerId)?.conn === e.conn) this.established.delete(e.peerId);
        if (e.reason === 'locally-closed') return this.connectionLost(e.conn, e.peerId);
        this.logLost(e);
        return this.connectionLost(e.conn, e.peerId);
      case 'stream-opened':
        return this.accept(e.conn, e.peerId, e.stream);
      default:
        break;
    }
    const flow = this.flows.get(e.conn)?.get(e.stream);
    if (!flow) return;
    switch (e.type) {
      case 'readable':
        if (!flow.headDone) this.readHead(flow);
        else this.raise(flow, FlowEvent.Readable);
        return;
      case 'writable':
        if (flow.head) this.flushHead(flow);
        if (flow.writeBlocked && flow.openForData && !flow.head) {
          flow.writeBlocked = false;
          this.raise(flow, FlowEvent.Writable);
        }
        return;
      case 'stopped':
      case 'reset':
        // An initiator may find the STATUS (sent before the peer gave up) still readable.
        if (!flow.headDone && e.type === 'stopped') this.readHead(flow);
        if (flow.ended) return;
        this.opts.log?.info(`QUIC flow ${e.type} by peer: ${resetCause(e.code)}`, { peer: e.peerId, conn: e.conn, stream: e.stream, code: e.code });
        this.teardown(flow, CODE_APP_RESET);
        this.raise(flow, FlowEvent.Reset);
        return;
      default:
        return;
    }
  }

  // ---- streams ----

  /** Opens streams for the flows waiting on `peerId`, while the connection allows. */
  private openWaiting(peerId: number): void {
    const queue = this.waiting.get(peerId);
    if (!queue) return;
    let i = 0;
    for (; i < queue.length; i++) {
      const flow = queue[i]!;
      if (flow.isReset) continue; // given up while it waited
      let ref;
      try {
        ref = this.ep.openStream(peerId);
      } catch (err) {
        this.fail(flow, err);
        continue;
      }
      if (ref === null) break;
      flow.conn = ref.conn;
      flow.stream = ref.stream;
      flow.heard = true; // a stream opens only on an established connection: the peer's QUIC answered
      // The open timeout counts from here: time spent waiting for a stream is not the peer's silence.
      if (flow.status === null) flow.openDeadline = nowMs() + this.openTimeoutMs;
      this.register(flow);
      this.flushHead(flow);
      if (flow.writeBlocked && flow.openForData && !flow.head) {
        flow.writeBlocked = false;
        this.raise(flow, FlowEvent.Writable);
      }
    }
    queue.splice(0, i);
    if (queue.length === 0) this.waiting.delete(peerId);
    else if (this.established.has(peerId)) {
      // Waiting for the peer's stream limit (it grants more as flows end): the peer did answer, so
      // neither the no-answer fallback nor the open timeout applies until a stream opens.
      for (const flow of queue) {
        flow.heard = true;
        flow.openDeadline = Infinity;
      }
    }
  }

  /** A loss that resets flows is a warning; an idle connection the peer closed is routine. */
  private logLost(e: Extract<QuicEvent, { type: 'connection-lost' }>): void {
    const flows = (this.flows.get(e.conn)?.size ?? 0) + (this.ep.connectionTo(e.peerId) === undefined ? this.waiting.get(e.peerId)?.length ?? 0 : 0);
    const fields = { peer: e.peerId, conn: e.conn, reason: e.reason, code: e.errorCode, detail: e.detail, flows };
    if (flows > 0) this.opts.log?.warn('QUIC connection lost; its flows are reset', fields);
    else this.opts.log?.debug('QUIC connection lost', fields);
  }

  /**
   * Closes connections we opened that have carried no flow for idleCloseMs (keep-alives would hold
   * them forever). Only the initiator closes: the acceptor could race a stream the initiator opens.
   */
  private closeIdle(now: number): void {
    for (const [peerId, c] of this.established) {
      if ((this.flows.get(c.conn)?.size ?? 0) > 0 || this.waiting.has(peerId)) c.idleSince = Infinity;
      else if (c.idleSince === Infinity) c.idleSince = now;
      else if (now - c.idleSince >= this.idleCloseMs) {
        this.established.delete(peerId);
        this.opts.log?.debug('QUIC connection closed: idle', { peer: peerId, conn: c.conn, idleMs: now - c.idleSince });
        try {
          this.ep.close(c.conn, 0, now);
        } catch {
          // Already gone inside the core: its connection-lost event is on the way.
        }
        this.kick(); // the close's event is handled in the next pass
      }
    }
  }

  /** A peer opened a stream: a flow it wants us to carry; its OPEN frame is read as it arrives. */
  private accept(conn: number, peerId: number, stream: number): void {
    const flow = new QuicFlow(peerId, 'acceptor', 0, this.statsOf);
    flow.conn = conn;
    flow.stream = stream;
    this.register(flow);
    this.readHead(flow);
  }

  private readHead(flow: QuicFlow): void {
    while (!flow.headDone && !flow.isReset) {
      const n = this.readRaw(flow);
      if (n === 0) return;
      if (n < 0) {
        // FIN or reset before a whole head frame: not a flow.
        this.stats.malformedHeads++;
        this.opts.log?.warn('QUIC flow reset: its stream ended before a whole head frame', { peer: flow.peerId, conn: flow.conn, stream: flow.stream });
        this.teardown(flow, CODE_REFUSED);
        this.raise(flow, FlowEvent.Reset);
        return;
      }
      const head = flow.pushHead(this.scratch.subarray(0, n));
      if (head === null) continue;
      const req = head === 'error' ? null : flow.role === 'acceptor' ? decodeOpen(head.payload) : null;
      if (head === 'error' || (flow.role === 'acceptor' && !req)) {
        this.stats.malformedHeads++;
        this.opts.log?.warn('QUIC flow reset: malformed head frame', { peer: flow.peerId, conn: flow.conn, stream: flow.stream });
        this.teardown(flow, CODE_REFUSED);
        this.raise(flow, FlowEvent.Reset);
        return;
      }
      if (flow.role === 'acceptor') {
        flow.request = req;
        if (this.opts.acceptInput) this.raise(flow, FlowEvent.OpenRequest);
        else {
          this.stats.refusedOpens++;
          this.answer(flow, DialStatus.Denied);
        }
      } else {
        this.gotStatus(flow, head.payload[0] as DialStatus);
      }
      if (flow.leftover) this.raise(flow, FlowEvent.Readable);
    }
  }

  private gotStatus(flow: QuicFlow, status: DialStatus): void {
    flow.status = status;
    flow.heard = true;
    flow.openDeadline = 0;
    this.opening.delete(flow);
    this.raise(flow, FlowEvent.Status);
    if (status !== DialStatus.Connected) {
      // The acceptor finished its side after the STATUS; abandon ours.
      flow.leftover = null;
      flow.peerFin = true;
      this.call(flow, () => this.ep.reset(flow.conn, flow.stream, CODE_REFUSED));
      flow.localFin = true;
      flow.head = null;
      this.settle(flow);
    } else if (flow.writeBlocked && !flow.head) {
      flow.writeBlocked = false;
      this.raise(flow, FlowEvent.Writable);
    }
  }

  private openTimedOut(flow: QuicFlow): void {
    this.opening.delete(flow);
    if (flow.status !== null || flow.isReset) return;
    flow.status = DialStatus.Unreachable;
    this.opts.log?.warn(`QUIC flow reset: no STATUS within ${this.openTimeoutMs / 1000} s`, { peer: flow.peerId, conn: flow.conn, stream: flow.stream });
    this.teardown(flow, CODE_REFUSED);
    this.raise(flow, FlowEvent.Status);
  }

  private write(flow: QuicFlow, d: Uint8Array): number {
    if (flow.head) this.flushHead(flow);
    if (flow.head || !flow.openForData) {
      flow.writeBlocked = true;
      return 0;
    }
    let n: number;
    try {
      n = this.ep.write(flow.conn, flow.stream, d);
    } catch (err) {
      this.fail(flow, err);
      return 0;
    }
    if (n === QUIC_GONE) return 0; // a stopped/reset event follows
    if (n < d.length) flow.writeBlocked = true;
    flow.txBytes += n;
    return n;
  }

  private read(flow: QuicFlow): Uint8Array | null {
    const left = flow.leftover;
    if (left) {
      flow.leftover = null;
      flow.rxBytes += left.length;
      return left;
    }
    if (!flow.headDone || flow.peerFin || flow.isReset) return null;
    const n = this.readRaw(flow);
    if (n > 0) {
      flow.rxBytes += n;
      return this.scratch.slice(0, n);
    }
    if (n === QUIC_FIN) {
      flow.peerFin = true;
      this.settle(flow);
    }
    return null;
  }

  /** One read into the scratch buffer: bytes, 0, QUIC_FIN or QUIC_GONE (a crash counts as gone). */
  private readRaw(flow: QuicFlow): number {
    try {
      return this.ep.read(flow.conn, flow.stream, this.scratch);
    } catch (err) {
      this.fail(flow, err);
      return QUIC_GONE;
    }
  }

  private flushHead(flow: QuicFlow): void {
    const head = flow.head;
    if (!head || flow.conn < 0) return;
    let n: number;
    try {
      n = this.ep.write(flow.conn, flow.stream, head);
    } catch (err) {
      return this.fail(flow, err);
    }
    if (n === QUIC_GONE) return;
    flow.head = n >= head.length ? null : head.subarray(n);
    if (!flow.head && flow.finPending) this.finishStream(flow);
  }

  private finishStream(flow: QuicFlow): void {
    flow.finPending = false;
    flow.localFin = true;
    this.call(flow, () => this.ep.finish(flow.conn, flow.stream));
  }

  /** Ends a flow abnormally: reset our sending side, stop our receiving side, forget it. */
  private teardown(flow: QuicFlow, code: number): void {
    if (flow.conn >= 0) {
      this.call(flow, () => this.ep.reset(flow.conn, flow.stream, code));
      this.call(flow, () => this.ep.stop(flow.conn, flow.stream, code));
    }
    this.markReset(flow);
  }

  /** The core failed under a stream call: the flow is reset (the core reports its connections lost). */
  private fail(flow: QuicFlow, err: unknown): void {
    if (flow.isReset) return;
    this.opts.log?.warn('QUIC flow reset: a stream call failed', { peer: flow.peerId, conn: flow.conn, stream: flow.stream, err });
    this.markReset(flow);
    this.raise(flow, FlowEvent.Reset);
  }

  private markReset(flow: QuicFlow): void {
    flow.isReset = true;
    flow.localFin = flow.peerFin = true;
    flow.head = flow.leftover = null;
    this.opening.delete(flow);
    this.forget(flow);
  }

  private connectionLost(conn: number, peerId: number): void {
    const byStream = this.flows.get(conn);
    if (byStream) {
      for (const flow of [...byStream.values()]) this.lost(flow);
      this.flows.delete(conn);
    }
    // Flows still waiting for a stream to that peer waited on the lost connection.
    if (this.ep.connectionTo(peerId) === undefined) {
      for (const flow of this.waiting.get(peerId) ?? []) this.lost(flow);
      this.waiting.delete(peerId);
    }
  }

  private lost(flow: QuicFlow): void {
    if (flow.ended) return;
    this.markReset(flow);
    this.raise(flow, FlowEvent.Reset);
  }

  /** A stream call on a cold path; a failure of the core resets the flow. */
  private call(flow: QuicFlow, fn: () => void): void {
    if (flow.conn < 0) return;
    try {
      fn();
    } catch (err) {
      this.fail(flow, err);
    }
  }

  private register(flow: QuicFlow): void {
    let byStream = this.flows.get(flow.conn);
    if (!byStream) this.flows.set(flow.conn, (byStream = new Map()));
    byStream.set(flow.stream, flow);
  }

  /** Forgets an ended flow nobody holds any more; QUIC finishes the stream on its own. */
  private settle(flow: QuicFlow): void {
    if (flow.ended && !this.sinks.has(flow)) this.forget(flow);
  }

  private forget(flow: QuicFlow): void {
    const byStream = this.flows.get(flow.conn);
    if (byStream?.get(flow.stream) === flow) {
      byStream.delete(flow.stream);
      if (byStream.size === 0) this.flows.delete(flow.conn);
    }
  }

  private raise(flow: QuicFlow, bits: number): void {
    flow.events |= bits;
    this.withEvents.add(flow);
  }

  private connStats(flow: QuicFlow): QuicConnectionStats | null {
    if (flow.conn < 0) return null;
    try {
      return this.ep.stats(flow.conn);
    } catch {
      return null; // the connection is gone
    }
  }
}
