/**
 * One proxied TCP flow carried by one KCP conversation: the KCP engine plus the flow-frame layer
 * (OPEN / STATUS / DATA / FIN / RST) and the flow's lifecycle. Sans-IO; owned by KcpCarrier.
 */
import { type Kcp } from '../../transport/kcp/kcp.js';
import { KcpSampler } from '../../transport/kcp/sampler.js';
import { IKCP_CMD_PUSH, IKCP_OVERHEAD, readU32 } from '../../transport/kcp/segment.js';
import {
  decodeOpen, DialStatus, encodeControl, encodeOpen, FrameReader, FrameType, MAX_FRAME_PAYLOAD, writeFrameHeader,
  type OpenRequest,
} from '../flow-frames.js';
import { FlowEvent, type CarrierFlow } from '../carrier.js';
import type { PathController } from './path-controller.js';
import { FEC_DATA_PREFIX } from './path-fec.js';
import { KIND_SEGMENTS, type CarrierPacketTypes, type CarrierTransmit } from './wire.js';

/**
 * Turns an engine datagram into what goes on the peer channel (a view of it, FEC-framed or not), or
 * null when the carrier took its segments into a bundle (ack-bundle.ts) and the datagram is spent.
 */
export type DatagramFramer = (d: Uint8Array, type: number) => Uint8Array | null;

export { FlowEvent };

/** Bytes of received data held for the application before KCP is left to back-pressure the sender. */
const RX_HIGH_WATER = 256 * 1024;
/**
 * Segments written but not yet granted a send, beyond which write() refuses: the path's pacer decides
 * when they go, so more would only be memory (a thousand flows × this is the node's send buffering).
 */
const UNSENT_HIGH_WATER = 64;
/**
 * After a refused write, Writable waits until the unsent segments have drained to here and what is in
 * flight to 1.5 send windows (hysteresis, as a Node stream's 'drain'). Told at the first free slot,
 * the pipe resumed its paused socket for one small read at a time; each cost a read, a pause and a
 * resume, a frame, and at a kernel-NAT end the window update that read sent across the TUN.
 */
export const UNSENT_LOW_WATER = UNSENT_HIGH_WATER / 2;
/**
 * Received stream bytes are taken from KCP through this scratch, as much as is ready at once, then
 * copied into one buffer of exactly that size: a buffer per segment (its own ArrayBuffer, a socket
 * write chunk each) cost the receiving node of 1,000 flows much of its CPU in GC and writes.
 */
const rxScratch = new Uint8Array(64 * 1024);
/**
 * How long the ACK for a lone datagram may wait for the application's answer to carry it, while we
 * have nothing in flight. A request/response then costs one datagram each way, not two: the lone
 * ACK woke the other node for nothing, and on a busy host each wake-up waits for a CPU (64-byte RR
 * p50 on a loaded 2-core host, docs/kcp-proxy-measured.md). Well under KCP's 30 ms minimum RTO, so the
 * peer never resends for it; a second segment to acknowledge, or any send of ours, sends it at once.
 */
export const ACK_DELAY_MS = 5;

export type FlowRole = 'initiator' | 'acceptor';

/** What a flow reads of its peer's path: when the carrier last heard from that peer over any flow. */
export interface PeerHearing {
  readonly heardAt: number;
}

export class KcpFlow implements CarrierFlow {
  request: OpenRequest | null = null;
  /** Initiator: the STATUS received (or Unreachable on timeout); null while opening. */
  status: DialStatus | null = null;
  /** Acceptor: answer() was called. */
  answered = false;
  localFin = false;
  peerFin = false;
  isReset = false;
  /** Something of this flow came back from the peer (see CarrierFlow.heard). */
  heard = false;
  /** Application bytes written to / delivered from this flow. */
  txBytes = 0;
  rxBytes = 0;

  private events = 0;
  /** The peer must be told with an out-of-band RESET (we aborted, not it). */
  private resetToSend = false;
  private readonly frames = new FrameReader();
  private readonly rx: Uint8Array[] = [];
  private rxHeld = 0;
  private writeBlocked = false;
  private ackPending = false;
  /**
   * What input() took since the ACKs last went includes a segment above a hole or into one: those
   * ACKs are loss recovery's news and go with this pass, never held (see mayHoldAck).
   */
  private gapAck = false;
  /** When a held ACK must go (see ACK_DELAY_MS); 0 while none is held. */
  private ackDueAt = 0;
  /** Deadline for the OPEN/STATUS exchange; 0 once done. */
  private openDeadline: number;
  /** When the flow ended (both FINs and all acked, or aborted); 0 while alive. */
  private endedAt = 0;
  private lastNow: number;
  /** When a datagram of this flow last came from the peer. */
  private heardAt: number;
  private readonly hdr = new Uint8Array(3);

  /** In its path's ring, waiting for a send grant (see PeerPath). */
  waitingForGrant = false;
  /** Its first segment (the OPEN, or the STATUS answering one) was granted: the rest waits its turn. */
  firstSent = false;
  /** Forgotten by the carrier: never granted again. */
  retired = false;
  /** Its place in the carrier's deadline heap; -1 while it needs no timer. */
  heapIndex = -1;
  /** The engine's counters as last reported to the path controller. */
  private readonly sampler: KcpSampler;

  constructor(
    readonly id: number,
    readonly peerId: number,
    readonly role: FlowRole,
    readonly kcp: Kcp,
    now: number,
    openTimeoutMs: number,
    private readonly lingerMs: number,
    /** Unacknowledged data and nothing from the peer this long: the peer is deemed gone (the flow timeout). */
    private readonly silentLimitMs: number,
    private readonly peer: PeerHearing,
  ) {
    this.openDeadline = now + openTimeoutMs;
    this.lastNow = this.heardAt = now;
    this.sampler = new KcpSampler(kcp);
  }

  /** Whether a datagram for an unknown conv may start a new flow: it carries one of the first segments. */
  static startsConversation(payload: Uint8Array, window = 1024): boolean {
    for (let off = 1; off + IKCP_OVERHEAD <= payload.length; ) {
      const len = readU32(payload, off + 20);
      if (payload[off + 4] === IKCP_CMD_PUSH && readU32(payload, off + 12) < window) return true;
      off += IKCP_OVERHEAD + len;
    }
    return false;
  }

  // ---- called by the carrier ----

  sendOpen(req: OpenRequest, now: number): void {
    this.kcp.send(encodeOpen(req));
    this.kcp.flush(now);
  }

  /**
   * Feeds one datagram (kind byte first); `regular` = false for one rebuilt by FEC (no window or RTT
   * sample from it). Returns false if KCP rejected it as malformed.
   */
  input(payload: Uint8Array, now: number, regular = true): boolean {
    this.lastNow = this.heardAt = now;
    this.heard = true;
    const gapBefore = this.kcp.rcvBufCount > 0;
    const ok = this.kcp.input(payload.subarray(1), now, regular) >= 0;
    if (gapBefore || this.kcp.rcvBufCount > 0) this.gapAck = true;
    // The pass's flushAcks() flushes once for all the datagrams it took: ACKs, and the resends they
    // reveal. Not per datagram: a full flush scans the whole window.
    this.ackPending = true;
    this.pull();
    this.checkWritable();
    this.checkEnded(now);
    return ok;
  }

  /**
   * Sends the ACKs owed for what input() took since the last flush, instead of leaving them for the
   * next interval tick: an ACK held up to `interval` ms inflates the sender's RTT samples by a varying
   * amount and releases its window in interval-sized bursts. The driver calls this once per pass, so
   * a burst of datagrams is answered by one ACK datagram, not one each (kcp-go's ackNoDelay).
   */
  flushAcks(now: number): void {
    if (!this.ackPending) return;
    this.lastNow = now;
    if (this.mayHoldAck()) {
      // Held already (by a timer run earlier in this pass): it keeps its first deadline.
      if (this.ackDueAt === 0) this.ackDueAt = now + ACK_DELAY_MS;
      return;
    }
    this.flushAll(now);
  }

  /**
   * What is owed is at most one segment's ACK (or a window update), nothing of ours waits for an ACK,
   * and it arrived in order. A segment above a hole or into one is ACKed at once, as TCP does (RFC
   * 5681 §4.2): the sender's RACK counts a repair lost one round trip plus a few ms after the ACKs of
   * segments sent later, and a repair arrives after those (FEC rebuilds a datagram once its group's
   * parity comes). Held even 1 ms past that, the repair was resent while the receiver had it.
   */
  private mayHoldAck(): boolean {
    return !this.gapAck && this.kcp.acksOwed <= 1 && this.kcp.waitSnd === 0;
  }

  /** An ACK is held for the application's answer (nothing of ours waits for it). */
  private get ackHeld(): boolean {
    return this.ackDueAt !== 0 && this.kcp.waitSnd === 0;
  }

  /** A full flush: every segment due and every ACK owed, held ones included. */
  private flushAll(now: number): void {
    this.kcp.flush(now);
    this.ackPending = this.gapAck = false;
    this.ackDueAt = 0;
  }

  handleTimeout(now: number): void {
    this.lastNow = now;
    if (this.openDeadline !== 0 && now >= this.openDeadline) this.openTimedOut(now);
    if (this.ackDueAt !== 0 && now >= this.ackDueAt) this.flushAll(now);
    // A tick due in the pass that took a lone segment (the driver runs timers before the pass's
    // flushAcks) must not send its ACK alone: it is held for the answer like any other. (A window
    // update alone, nothing owed, goes with the tick as before: drainOutput would drop its hold.)
    else if (this.ackPending && this.ackDueAt === 0 && this.kcp.acksOwed === 1 && this.mayHoldAck()) this.ackDueAt = now + ACK_DELAY_MS;
    // Woken before a held ACK is due (by the open deadline): it keeps waiting.
    if (!this.ackHeld && (this.endedAt === 0 || this.kcp.waitSnd > 0 || this.ackPending)) {
      this.kcp.handleTimeout(now);
      this.ackPending = this.gapAck = false;
      this.ackDueAt = 0;
    }
    // Not KCP's count of transmissions: an outage shorter than the flow timeout must not end the flow.
    if (this.endedAt === 0 && this.kcp.waitSnd > 0 && now - this.heardAt >= this.silentLimitMs) this.abort(now);
    this.checkWritable();
    this.checkEnded(now);
  }

  /** The peer is gone (restarted, killed) or unreachable past the flow timeout: reset toward the application. */
  lost(now: number): void {
    this.abort(now);
  }

  peerReset(now: number): void {
    this.abort(now);
    this.resetToSend = false;
  }

  /**
   * The peer finished this flow cleanly and forgot it: it had everything we sent. If we have its FIN
   * too, we are done as well; otherwise something is inconsistent and the flow is aborted.
   */
  peerClosed(now: number): void {
    if (this.endedAt !== 0) return;
    if (!(this.localFin && this.peerFin)) return this.peerReset(now);
    this.endedAt = now || 1;
  }

  /** Whether the carrier must send the peer a RESET for this flow (asked once). */
  takeResetToSend(): boolean {
    const r = this.resetToSend;
    this.resetToSend = false;
    return r;
  }

  /**
   * Moves the engine's datagrams to `out`, each framed by `frame` (the plain payload starts at
   * d[FEC_DATA_PREFIX], its kind byte; the bytes before are room for FEC); returns the bytes of those
   * it queued (not of those bundled).
   */
  drainOutput(out: CarrierTransmit[], types: CarrierPacketTypes, frame: DatagramFramer): number {
    const type = this.role === 'initiator' ? types.fromInitiator : types.fromAcceptor;
    let bytes = 0;
    for (let d = this.kcp.pollTransmit(); d !== null; d = this.kcp.pollTransmit()) {
      d[FEC_DATA_PREFIX] = KIND_SEGMENTS;
      const data = frame(d, type);
      if (data === null) continue;
      bytes += data.length;
      out.push({ peerId: this.peerId, type, data });
    }
    if (bytes > 0) this.checkWritable();
    // A held ACK that left with new data (write()) needs no wake-up of its own any more.
    if (this.ackDueAt !== 0 && this.kcp.acksOwed === 0) this.ackDueAt = 0;
    return bytes;
  }

  /** Hands the engine's new samples (RTT, delivered, in flight, sends) to the path controller. */
  report(ctl: PathController, now: number): void {
    this.sampler.report(ctl, now);
  }

  /** The flow leaves the path: its bytes in flight stop counting. */
  unreport(ctl: PathController): void {
    this.sampler.unreport(ctl);
  }

  deadline(): number {
    // A finished flow only needs its engine while something is unacknowledged; else just the linger's end.
    if (this.endedAt !== 0 && this.kcp.waitSnd === 0 && !this.ackPending) return this.endedAt + this.lingerMs;
    let t = this.ackHeld ? this.ackDueAt : this.kcp.pollTimeout();
    if (this.openDeadline !== 0 && this.openDeadline < t) t = this.openDeadline;
    return t;
  }

  needsTimer(): boolean {
    return this.openDeadline !== 0 || this.kcp.waitSnd > 0 || this.ackPending || this.endedAt !== 0;
  }

  /** True once the flow ended and lingered long enough that late segments no longer matter. */
  finished(): boolean {
    return this.endedAt !== 0 && this.lastNow - this.endedAt >= this.lingerMs;
  }

  hasEvents(): boolean {
    return this.events !== 0;
  }

  // ---- called by the proxy ----

  /** FlowEvent bits since the last call. */
  takeEvents(): number {
    const e = this.events;
    this.events = 0;
    return e;
  }

  /** Acceptor: report the remote dial's outcome. Anything but Connected ends the flow once delivered. */
  answer(status: DialStatus, now: number): void {
    if (this.answered) return;
    this.answered = true;
    this.openDeadline = 0;
    this.kcp.send(encodeControl(FrameType.Status, status));
    if (status !== DialStatus.Connected) {
      this.localFin = true;
      this.peerFin = true; // nothing more will be read
    }
    this.flushForNewData(now);
  }

  /** Whether write() would accept data now. */
  get writable(): boolean {
    const k = this.kcp;
    return this.isOpenForData() && !this.localFin && k.unsentCount < UNSENT_HIGH_WATER && k.waitSnd < k.sendWindow * 2;
  }

  /**
   * Queues application data; returns false (and takes nothing) while the send queue is full — a
   * Writable event follows when it has room. Data is copied into KCP segments.
   */
  write(data: Uint8Array, now: number): boolean {
    if (!this.writable) {
      this.writeBlocked = true;
      return false;
    }
    for (let off = 0; off < data.length; off += MAX_FRAME_PAYLOAD) {
      const piece = data.subarray(off, Math.min(off + MAX_FRAME_PAYLOAD, data.length));
      writeFrameHeader(this.hdr, 0, FrameType.Data, piece.length);
      this.kcp.send(this.hdr);
      this.kcp.send(piece);
    }
    this.txBytes += data.length;
    this.flushForNewData(now);
    return true;
  }

  /**
   * After new data was queued. It leaves on its path's grant (PeerPath.pace, which the carrier runs
   * right after this), and that flush writes the ACKs owed first, in the same datagram. A flush here
   * would send a held ACK alone, one datagram (a wake-up of the peer) ahead of the answer meant to
   * carry it. Only when no new segment can go (a full window) does the ACK go now.
   */
  private flushForNewData(now: number): void {
    if (!this.kcp.canSlide()) this.flushAll(now);
  }

  /** Half-close: a FIN frame after the data already written. */
  closeWrite(now: number): void {
    if (this.localFin || this.isReset) return;
    this.localFin = true;
    this.kcp.holdPartialTail = false; // nothing more will top the tail up: it goes with the FIN
    this.kcp.send(encodeControl(FrameType.Fin));
    this.kcp.flush(now);
    this.checkEnded(now);
  }

  /** Aborts the flow: an RST frame (reliable) now; the carrier forgets the flow after the linger. */
  reset(now: number): void {
    if (this.isReset || this.endedAt !== 0) return;
    this.kcp.holdPartialTail = false;
    this.kcp.send(encodeControl(FrameType.Rst));
    this.kcp.flush(now);
    this.isReset = true;
    this.localFin = this.peerFin = true;
    this.endedAt = now || 1;
    this.resetToSend = true;
    this.dropReceived();
  }

  /** The next chunk of received application data, or null. The chunk is the caller's to keep. */
  read(): Uint8Array | null {
    const chunk = this.rx.shift();
    if (!chunk) return null;
    this.rxHeld -= chunk.length;
    if (this.rxHeld < RX_HIGH_WATER / 2) this.pull();
    this.checkEnded(this.lastNow);
    return chunk;
  }

  /** The peer half-closed and every byte before its FIN has been read. */
  get readEnded(): boolean {
    return this.peerFin && this.rx.length === 0 && !this.isReset;
  }

  /** Round-trip time estimate in ms. */
  get rttMs(): number {
    return this.kcp.srtt;
  }

  get retransmits(): number {
    return this.kcp.retransSegs;
  }

  get duplicates(): number {
    return this.kcp.repeatSegs;
  }

  /** When the carrier last heard from this flow's peer, over any of its flows (see CarrierFlow.peerHeardAt). */
  get peerHeardAt(): number {
    return this.peer.heardAt;
  }

  /** The clock of the last call that reached this flow. */
  get lastSeen(): number {
    return this.lastNow;
  }

  get ended(): boolean {
    return this.endedAt !== 0;
  }

  // ---- internals ----

  private isOpenForData(): boolean {
    if (this.isReset) return false;
    if (this.role === 'initiator') return this.status === DialStatus.Connected || (this.request?.optimistic ?? false);
    return this.answered;
  }

  /** Moves received stream bytes through the frame parser, up to the high-water mark. */
  private pull(): void {
    while (this.rxHeld < RX_HIGH_WATER && !this.isReset) {
      const n = this.kcp.read(rxScratch);
      if (n === 0) return;
      const chunk = Buffer.allocUnsafe(n);
      chunk.set(n === rxScratch.length ? rxScratch : rxScratch.subarray(0, n));
      // The window this frees must reach the sender: one that saw it closed waits on a probe
      // otherwise, and a flow with nothing else to send would not flush until then.
      this.ackPending = true;
      this.frames.push(chunk);
      for (let f = this.frames.next(); f !== null; f = this.frames.next()) {
        if (f === 'error') {
          this.abort(this.lastNow);
          return;
        }
        this.onFrame(f.type, f.payload);
        if (this.isReset) return;
      }
    }
  }

  private onFrame(type: FrameType, payload: Uint8Array): void {
    switch (type) {
      case FrameType.Data:
        if (payload.length === 0 || this.peerFin) return;
        if (this.rx.length === 0) this.events |= FlowEvent.Readable;
        this.rx.push(payload);
        this.rxHeld += payload.length;
        this.rxBytes += payload.length;
        return;
      case FrameType.Open: {
        if (this.role !== 'acceptor' || this.request) return this.abort(this.lastNow);
        const req = decodeOpen(payload);
        if (!req) return this.abort(this.lastNow);
        this.request = req;
        this.events |= FlowEvent.OpenRequest;
        return;
      }
      case FrameType.Status:
        if (this.role !== 'initiator' || this.status !== null || payload.length !== 1) return this.abort(this.lastNow);
        this.status = payload[0] as DialStatus;
        this.openDeadline = 0;
        this.events |= FlowEvent.Status;
        if (this.status !== DialStatus.Connected) {
          this.localFin = true;
          this.peerFin = true;
        }
        return;
      case FrameType.Fin:
        if (!this.peerFin) {
          this.peerFin = true;
          this.events |= FlowEvent.Fin;
        }
        return;
      case FrameType.Rst:
        return this.abort(this.lastNow);
    }
  }

  private openTimedOut(now: number): void {
    this.openDeadline = 0;
    if (this.role === 'initiator' && this.status === null) {
      this.status = DialStatus.Unreachable;
      this.events |= FlowEvent.Status;
      this.localFin = this.peerFin = true;
      this.endedAt = now || 1;
    } else if (this.role === 'acceptor' && this.request === null) {
      // Segments that looked like a new flow but no OPEN ever came (a stale retransmission).
      this.abort(now);
    }
  }

  /** Ends the flow abnormally; a flow that already ended (cleanly or not) stays as it was. */
  private abort(now: number): void {
    if (this.endedAt !== 0) return;
    this.isReset = true;
    this.localFin = this.peerFin = true;
    this.openDeadline = 0;
    this.endedAt = now || 1;
    this.resetToSend = true;
    this.dropReceived();
    this.events |= FlowEvent.Reset;
  }

  private dropReceived(): void {
    this.rx.length = 0;
    this.rxHeld = 0;
  }

  /** The queue fell to its low-water mark (UNSENT_LOW_WATER). */
  private get drained(): boolean {
    const k = this.kcp;
    return k.unsentCount <= UNSENT_LOW_WATER && k.waitSnd <= k.sendWindow * 1.5;
  }

  private checkWritable(): void {
    if (this.writeBlocked && this.writable && this.drained) {
      this.writeBlocked = false;
      this.events |= FlowEvent.Writable;
    }
  }

  /** Both directions closed and everything we sent acknowledged: start the linger. */
  private checkEnded(now: number): void {
    if (this.endedAt !== 0) return;
    if (this.localFin && this.peerFin && this.kcp.waitSnd === 0 && this.rx.length === 0) this.endedAt = now || 1;
  }
}

