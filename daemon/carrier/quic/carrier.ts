/**
 * The QUIC carrier: each proxied TCP flow is one bidirectional stream of a QUIC connection to its
 * peer (EasyTier 2.6's design, docs/quic-proxy.md "How a flow is carried"): one connection per
 * destination peer, opened on first use and reused. Sans-IO, like KcpCarrier: the driver feeds it
 * peer packets and the clock, sends what pollTransmit() returns, wakes it at pollTimeout(), and
 * hands each flow pollEvent() returns to its sink.
 *
 * Per flow: the initiator writes the OPEN frame first; the acceptor answers with a STATUS frame;
 * then raw bytes. Half-close is the stream's FIN. An abort resets our sending side and stops our
 * receiving side, so the peer sees RESET_STREAM (and STOP_SENDING) and resets its application.
 * Flows beyond the peer's stream limit wait for its MAX_STREAMS; an open with no STATUS is given up
 * at the open timeout; a connection we opened that carries no flow for idleCloseMs is closed.
 *
 * QUIC itself (quinn-proto in wasm) is the QuicEndpoint this carrier owns; its datagrams travel as
 * the peer packet types in `types` (EasyTier's QuicSrc on connections the sender initiated, QuicDst
 * on the others), so the peer layer encrypts them and relays carry them like any peer packet.
 */
import type { Logger } from '../../log.js';
import { FlowEvent } from '../carrier.js';
import { DialStatus, encodeControl, FrameType, type OpenRequest } from '../flow-frames.js';
import { QUIC_FIN, QUIC_GONE, type QuicConnectionStats, type QuicEndpoint, type QuicEvent } from './endpoint.js';
import { CODE_APP_RESET, CODE_PEER_GONE, CODE_REFUSED, QuicFlow, resetCause } from './flow.js';
import { TSTIER_HEADS, type FlowHeads } from './heads.js';
import { IdleConnections } from './idle-connections.js';

export interface QuicCarrierOptions {
  /** Peer packet types of datagrams on connections their sender initiated / accepted. */
  types: { fromInitiator: number; fromAcceptor: number };
  /** How a flow's stream starts (heads.ts). Default tstier's OPEN/STATUS. */
  heads?: FlowHeads;
  /** Whether this node carries flows peers open to it (false: `--disable-quic-input`, answered Denied). */
  acceptInput: boolean;
  /** An open with no STATUS after this long is reported Unreachable. Default 10 s. */
  openTimeoutMs?: number;
  /** A connection we opened that has carried no flow for this long is closed. Default 60 s. */
  idleCloseMs?: number;
  /** Where every flow reset and connection loss is logged with its cause. */
  log?: Logger;
}

/** A datagram to send; `data` views wasm memory, so send it before the next call. Reused. */
export interface QuicCarrierTransmit {
  peerId: number;
  type: number;
  data: Uint8Array;
}

const READ_CHUNK = 64 * 1024;

export class QuicCarrier {
  readonly stats = { malformedHeads: 0, refusedOpens: 0 };
  /** Open flows by connection, then stream id. */
  private readonly flows = new Map<number, Map<number, QuicFlow>>();
  /** Flows waiting for a stream to their peer (connection not up yet, or the peer's stream limit). */
  private readonly waiting = new Map<number, QuicFlow[]>();
  /** Initiator flows without STATUS yet, for the open timeout. */
  private readonly opening = new Set<QuicFlow>();
  private readonly pendingEvents = new Set<QuicFlow>();
  /** Flows QUIC woke for writing since the events were last drained (see wakeWriters). */
  private readonly woken: QuicFlow[] = [];
  /** Writes accepted so far: each flow's servedSeq is this count at its latest. */
  private writes = 0;
  private readonly established: IdleConnections;
  private readonly scratch = new Uint8Array(READ_CHUNK);
  private readonly tx: QuicCarrierTransmit = { peerId: 0, type: 0, data: new Uint8Array(0) };
  private readonly types: QuicCarrierOptions['types'];
  private readonly heads: FlowHeads;
  private readonly openTimeoutMs: number;
  private readonly log: Logger | undefined;
  private readonly statsOf = (flow: QuicFlow): QuicConnectionStats | null => (flow.conn < 0 ? null : this.ep.statsIfOpen(flow.conn));
  /** The clock of the latest call that carried one. */
  private clock = 0;
  acceptInput: boolean;

  constructor(readonly ep: QuicEndpoint, opts: QuicCarrierOptions) {
    this.types = opts.types;
    this.heads = opts.heads ?? TSTIER_HEADS;
    this.acceptInput = opts.acceptInput;
    this.openTimeoutMs = opts.openTimeoutMs ?? 10_000;
    this.established = new IdleConnections(opts.idleCloseMs ?? 60_000);
    this.log = opts.log;
  }

  // ---- the sans-IO verbs ----

  /** Opens a flow to `peerId`; its OPEN goes out once a stream to the peer opens. The caller holds it. */
  open(peerId: number, req: OpenRequest, now: number): QuicFlow {
    this.clock = now;
    const flow = new QuicFlow(peerId, 'initiator', now + this.openTimeoutMs, this.statsOf);
    flow.request = req;
    flow.head = this.heads.open(req);
    flow.held = true;
    this.opening.add(flow);
    try {
      if (!flow.head) throw new RangeError('this framing cannot carry that flow'); // EasyTier's: IPv4 only
      this.ep.connect(peerId, now);
      let queue = this.waiting.get(peerId);
      if (!queue) this.waiting.set(peerId, (queue = []));
      queue.push(flow);
      this.openWaiting(peerId);
    } catch (err) {
      this.fail(flow, err); // a crashed core or a bad peer id: the caller sees a reset before any answer
    }
    return flow;
  }

  /** A peer packet of one of our two types arrived from `fromPeer`. Never throws on any bytes. */
  input(fromPeer: number, type: number, payload: Uint8Array, now: number): void {
    const fromInitiator = type === this.types.fromInitiator;
    if (!fromInitiator && type !== this.types.fromAcceptor) return;
    this.clock = now;
    this.ep.input(fromPeer, payload, now, fromInitiator);
    this.drainEndpoint();
  }

  /** The next datagram to send, or null. The object and its bytes are reused: send before the next call. */
  pollTransmit(): QuicCarrierTransmit | null {
    const t = this.ep.pollTransmit();
    if (!t) return null;
    this.tx.peerId = t.peerId;
    this.tx.type = t.fromInitiator ? this.types.fromInitiator : this.types.fromAcceptor;
    this.tx.data = t.data;
    return this.tx;
  }

  /** When handleTimeout is next wanted (ms on the caller's clock); Infinity: never. */
  pollTimeout(): number {
    let at = this.ep.pollTimeout();
    for (const f of this.opening) if (f.openDeadline < at) at = f.openDeadline;
    return Math.min(at, this.established.deadline());
  }

  handleTimeout(now: number): void {
    this.clock = now;
    if (this.ep.pollTimeout() <= now) this.ep.handleTimeout(now);
    this.drainEndpoint();
    for (const f of this.opening) if (f.openDeadline <= now) this.openTimedOut(f);
    this.established.closeExpired(now, this.ep, this.log); // connections that carried no flow for idleCloseMs
    this.drainEndpoint();
  }

  /** The next flow with news (read `flow.takeEvents()`), or null. */
  pollEvent(): QuicFlow | null {
    this.drainEndpoint();
    for (const f of this.pendingEvents) {
      this.pendingEvents.delete(f);
      return f;
    }
    return null;
  }

  // ---- what the proxy does to a flow ----

  /** Someone (the proxy) now owns an accepted flow: it is kept until released. */
  hold(flow: QuicFlow): void {
    flow.held = true;
  }

  /** Its owner is done with the flow: forgotten once it has ended (QUIC finishes the stream on its own). */
  release(flow: QuicFlow): void {
    flow.held = false;
    this.settle(flow);
  }

  /** Acceptor: reports the remote dial's outcome. Anything but Connected ends the flow. */
  answer(flow: QuicFlow, status: DialStatus): void {
    if (flow.answered || flow.isReset) return;
    flow.answered = true;
    flow.status = status;
    // No STATUS in this framing: a failed dial resets the stream, which ends the peer's flow.
    if (!this.heads.answers) return status === DialStatus.Connected ? this.checkWritable(flow) : this.teardown(flow, CODE_REFUSED);
    flow.head = encodeControl(FrameType.Status, status);
    this.flushHead(flow);
    if (status !== DialStatus.Connected) {
      // Nothing more either way: FIN after the STATUS, and stop the peer's sending side.
      this.finishStream(flow);
      flow.peerFin = true;
      this.call(flow, () => this.ep.stop(flow.conn, flow.stream, CODE_REFUSED));
      this.settle(flow);
    }
  }

  /** Aborts the flow; the peer sees a reset. */
  abort(flow: QuicFlow): void {
    if (flow.ended) return;
    this.teardown(flow, CODE_APP_RESET);
  }

  /** Closes our connections with the peer; their loss (at the next poll) resets every flow on them. How many. */
  abortPeer(peerId: number, now: number): number {
    this.clock = now;
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
        this.ep.close(conn, CODE_PEER_GONE, now);
      } catch {
        // already gone: its connection-lost event is on its way
      }
    }
    return n;
  }

  /** Queues application bytes; returns how many were taken (fewer: a Writable event follows). */
  write(flow: QuicFlow, d: Uint8Array): number {
    if (flow.peerStopped) return d.length; // nobody reads it over there
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
    if (n > 0) flow.servedSeq = ++this.writes;
    flow.txBytes += n;
    return n;
  }

  /** The next received chunk (the caller's to keep), or null. */
  read(flow: QuicFlow): Uint8Array | null {
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

  /** Our half-close, after the bytes already written (and after the head frame, if still unwritten). */
  shutdown(flow: QuicFlow): void {
    if (flow.localFin || flow.isReset) return;
    if (flow.head) flow.finPending = true;
    else this.finishStream(flow);
    this.settle(flow);
  }

  /** Open flows (for stats and tests). */
  get flowCount(): number {
    let n = 0;
    for (const m of this.flows.values()) n += m.size;
    for (const q of this.waiting.values()) n += q.length;
    return n;
  }

  // ---- the endpoint's events ----

  private drainEndpoint(): void {
    for (let e = this.ep.pollEvent(); e; e = this.ep.pollEvent()) this.onEvent(e);
    if (this.woken.length > 0) this.wakeWriters();
  }

  /**
   * Flows QUIC says may write again, least recently served first. When the connection's send window
   * frees a little, quinn wakes every stream it refused, in the order they were refused, and the first
   * to write takes the room and is refused first again: woken in that order, the same few flows would
   * take every byte of room while the rest starved (1,000 flows: most stalled for minutes).
   */
  private wakeWriters(): void {
    const woken = this.woken;
    if (woken.length > 1) woken.sort((x, y) => x.servedSeq - y.servedSeq);
    for (const flow of woken) {
      if (flow.head) this.flushHead(flow);
      this.checkWritable(flow);
    }
    woken.length = 0;
  }

  private onEvent(e: QuicEvent): void {
    switch (e.type) {
      case 'connected':
        if (!e.outgoing) return;
        this.established.established(e.peerId, e.conn);
        this.openWaiting(e.peerId);
        return this.noteIdle(e.peerId);
      case 'streams-available':
        return this.openWaiting(e.peerId);
      case 'connection-lost':
        this.established.lost(e.peerId, e.conn);
        if (e.reason !== 'locally-closed') this.logLost(e);
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
        this.woken.push(flow);
        return;
      case 'stopped':
      case 'reset':
        if (e.type === 'stopped' && flow.role === 'initiator' && !flow.headDone) {
          // A refusing peer sends STATUS, FIN, then STOP_SENDING; under loss the STOP_SENDING can come
          // first. Our sending is over, but the STATUS is on its way (a peer that gave up resets too).
          this.readHead(flow);
          if (!flow.headDone && !flow.isReset) return this.stopSending(flow);
        }
        if (e.type === 'stopped' && !this.heads.answers) return this.peerStopped(flow);
        if (flow.ended) return;
        this.log?.info(`QUIC flow ${e.type} by peer: ${resetCause(e.code)}`, { peer: e.peerId, conn: e.conn, stream: e.stream, code: e.code });
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
      if (flow.status === null) flow.openDeadline = this.clock + this.openTimeoutMs;
      this.register(flow);
      this.flushHead(flow);
      if (this.heads.answers) this.checkWritable(flow);
      else this.gotStatus(flow, DialStatus.Connected); // no STATUS comes in this framing: this is as connected as it gets
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
    this.noteIdle(peerId);
  }

  /** A loss that resets flows is a warning; an idle connection the peer closed is routine. */
  private logLost(e: Extract<QuicEvent, { type: 'connection-lost' }>): void {
    const flows = (this.flows.get(e.conn)?.size ?? 0) + (this.ep.connectionTo(e.peerId) === undefined ? this.waiting.get(e.peerId)?.length ?? 0 : 0);
    const fields = { peer: e.peerId, conn: e.conn, reason: e.reason, code: e.errorCode, detail: e.detail, flows };
    if (flows > 0) this.log?.warn('QUIC connection lost; its flows are reset', fields);
    else this.log?.debug('QUIC connection lost', fields);
  }

  /** Marks when our connection to `peerId` stopped carrying flows (Infinity while it carries some). */
  private noteIdle(peerId: number): void {
    const conn = this.established.connectionTo(peerId);
    if (conn === undefined) return;
    this.established.note(peerId, (this.flows.get(conn)?.size ?? 0) > 0 || this.waiting.has(peerId), this.clock);
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
        return this.malformed(flow, 'its stream ended before a whole head frame');
      }
      const head = flow.pushHead(this.scratch.subarray(0, n), this.heads);
      if (head === null) continue;
      if (head === 'error') return this.malformed(flow, 'malformed head frame');
      if (head.request) {
        flow.request = head.request;
        if (this.acceptInput) this.raise(flow, FlowEvent.OpenRequest);
        else {
          this.stats.refusedOpens++;
          this.answer(flow, DialStatus.Denied);
        }
      } else this.gotStatus(flow, head.status);
      if (flow.leftover) this.raise(flow, FlowEvent.Readable);
    }
  }

  private malformed(flow: QuicFlow, why: string): void {
    this.stats.malformedHeads++;
    this.log?.warn(`QUIC flow reset: ${why}`, { peer: flow.peerId, conn: flow.conn, stream: flow.stream });
    this.teardown(flow, CODE_REFUSED);
    this.raise(flow, FlowEvent.Reset);
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
    } else this.checkWritable(flow);
  }

  private openTimedOut(flow: QuicFlow): void {
    this.opening.delete(flow);
    if (flow.status !== null || flow.isReset) return;
    flow.status = DialStatus.Unreachable;
    this.log?.warn(`QUIC flow reset: no STATUS within ${this.openTimeoutMs / 1000} s`, { peer: flow.peerId, conn: flow.conn, stream: flow.stream });
    this.teardown(flow, CODE_REFUSED);
    this.raise(flow, FlowEvent.Status);
  }

  /** A write refused earlier may go now: tell the owner. */
  private checkWritable(flow: QuicFlow): void {
    if (flow.writeBlocked && flow.openForData && !flow.head) {
      flow.writeBlocked = false;
      this.raise(flow, FlowEvent.Writable);
    }
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

  /** The peer stopped reading before its STATUS came: abandon our side, keep reading for the STATUS. */
  private stopSending(flow: QuicFlow): void {
    this.call(flow, () => this.ep.reset(flow.conn, flow.stream, CODE_REFUSED));
    flow.localFin = true;
    flow.finPending = false;
    flow.head = null;
  }

  /**
   * EasyTier ends a flow once either direction ends: it stops reading while what it sent still drains.
   * Read on to its FIN (a reset would cut that drain) and drop what we would send.
   */
  private peerStopped(flow: QuicFlow): void {
    if (flow.ended) return;
    flow.peerStopped = true;
    this.stopSending(flow);
    if (flow.writeBlocked) this.raise(flow, FlowEvent.Writable); // its writes go nowhere now, at once
    this.settle(flow);
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
    this.log?.warn('QUIC flow reset: a stream call failed', { peer: flow.peerId, conn: flow.conn, stream: flow.stream, err });
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
    if (flow.ended && !flow.held) this.forget(flow);
  }

  private forget(flow: QuicFlow): void {
    const byStream = this.flows.get(flow.conn);
    if (byStream?.get(flow.stream) === flow) {
      byStream.delete(flow.stream);
      if (byStream.size === 0) this.flows.delete(flow.conn);
      this.noteIdle(flow.peerId);
    }
  }

  private raise(flow: QuicFlow, bits: number): void {
    flow.events |= bits;
    this.pendingEvents.add(flow);
  }
}
