/**
 * One proxied TCP flow carried by one bidirectional QUIC stream. QUIC already gives ordered,
 * reliable bytes, half-close (FIN) and abort (RESET_STREAM / STOP_SENDING), so the stream carries
 * only one flow frame each way before raw bytes: the initiator's OPEN (where to dial) and the
 * acceptor's STATUS (how the dial went). State only; QuicCarrier (carrier.ts) does the stream calls.
 */
import type { CarrierFlow } from '../carrier.js';
import { DialStatus, type OpenRequest } from '../flow-frames.js';
import type { QuicConnectionStats } from './endpoint.js';
import type { FlowHeads, ParsedHead, QuicFlowRole } from './heads.js';

export type { QuicFlowRole } from './heads.js';

/** Application error codes on the stream: an application's reset, or a flow the node refused. */
export const CODE_APP_RESET = 1;
export const CODE_REFUSED = 2;
/** Connection close code: the peer is gone (restarted, killed) or was unreachable past the flow timeout. */
export const CODE_PEER_GONE = 3;

/** Words for a stream's reset or stop code, for the log. */
export function resetCause(code: number): string {
  if (code === CODE_APP_RESET) return 'its application reset the connection, or its node ended the flow';
  if (code === CODE_REFUSED) return 'its node refused the flow';
  return 'unknown code';
}

export class QuicFlow implements CarrierFlow {
  request: OpenRequest | null = null;
  status: DialStatus | null = null;
  answered = false;
  heard = false;
  /** `heard` is set for the whole connection (carrier.ts, openWaiting): nothing to add per peer. */
  readonly peerHeardAt = -Infinity;
  /** Stream, once open (an initiator may wait for its connection or the peer's stream limit). */
  conn = -1;
  stream = -1;
  /** The frame that must precede any data we write (OPEN or STATUS), while not fully written. */
  head: Uint8Array | null = null;
  /** Bytes read past the peer's head frame, not yet handed to the reader. */
  leftover: Uint8Array | null = null;
  localFin = false;
  /** shutdown() came while the head was still unwritten: finish right after it. */
  finPending = false;
  peerFin = false;
  isReset = false;
  /** The peer stopped reading (EasyTier's framing): what we write is dropped. */
  peerStopped = false;
  writeBlocked = false;
  /** When a write of it was last accepted (the carrier's count of writes): who waited longest writes first. */
  servedSeq = 0;
  txBytes = 0;
  rxBytes = 0;
  /** Initiator: when an unanswered open is given up (driver clock); 0 once answered. */
  openDeadline: number;
  /** FlowEvent bits not yet taken (takeEvents). */
  events = 0;
  /** Its owner (the proxy) still holds it: an ended flow is forgotten only once released. */
  held = false;
  /** The peer's head frame, gathered while it arrives in pieces. */
  private headIn: Uint8Array | null = null;

  constructor(
    readonly peerId: number,
    readonly role: QuicFlowRole,
    openDeadline: number,
    /** Connection statistics, for the table's rtt and loss columns (null: connection gone). */
    private readonly connStats: (flow: QuicFlow) => QuicConnectionStats | null,
  ) {
    this.openDeadline = openDeadline;
  }

  /** FlowEvent bits since the last call. */
  takeEvents(): number {
    const e = this.events;
    this.events = 0;
    return e;
  }

  get ended(): boolean {
    return this.isReset || (this.localFin && this.peerFin && this.head === null);
  }

  /** The peer half-closed and every byte before its FIN has been read. */
  get readEnded(): boolean {
    return this.peerFin && this.leftover === null && !this.isReset;
  }

  get rttMs(): number {
    return this.connStats(this)?.rttMs ?? 0;
  }

  /** Packets the connection lost (shared by every flow to the same peer). */
  get retransmits(): number {
    return this.connStats(this)?.lostPackets ?? 0;
  }

  /** Not counted for QUIC. */
  readonly duplicates = 0;

  /** Whether data may be written: the stream is open and the dial succeeded (or optimistic). */
  get openForData(): boolean {
    if (this.isReset || this.localFin || this.conn < 0) return false;
    if (this.role === 'acceptor') return this.answered && this.status === DialStatus.Connected;
    return this.status === DialStatus.Connected || (this.status === null && (this.request?.optimistic ?? false));
  }

  /** Whether the peer's head frame has been parsed (reads then return raw flow bytes). */
  get headDone(): boolean {
    return this.role === 'acceptor' ? this.request !== null : this.status !== null;
  }

  /**
   * Adds bytes of the peer's head (framed as `heads` says). Returns it once whole, keeping what
   * follows it in `leftover`; null while incomplete; 'error' for bytes that cannot be a head.
   */
  pushHead(bytes: Uint8Array, heads: FlowHeads): ParsedHead | null | 'error' {
    let acc: Uint8Array = bytes;
    if (this.headIn) {
      acc = new Uint8Array(this.headIn.length + bytes.length);
      acc.set(this.headIn);
      acc.set(bytes, this.headIn.length);
    }
    const head = heads.parse(acc, this.role);
    if (head === null) this.headIn = acc.slice();
    else {
      this.headIn = null;
      if (head !== 'error' && acc.length > head.length) this.leftover = acc.slice(head.length);
    }
    return head;
  }
}
