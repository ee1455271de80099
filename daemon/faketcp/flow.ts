/**
 * One fake TCP connection's sequence state, sans IO: fed every segment the raw socket reads for it,
 * asked for the header fields of every data segment we send.
 *
 * The numbers follow xtaci/tcpraw, which kcptun's --tcp peer runs, so that both ends agree on what
 * the connection looks like: the handshake (done by the kernels) seeds them; after it our sequence
 * number is whatever the peer last acknowledged plus what we sent since, and our acknowledgement
 * moves over each in-order data segment. A lost segment freezes our ack at its start; the peer's next
 * segments then restart from that number, as a retransmission would, and the two ends resynchronise.
 */
import { TCP_ACK, TCP_PSH, TCP_SYN } from '../packet/tcp.js';
import type { DataSegment, SegmentInfo } from './segment.js';

/**
 * Linux advertises its receive window scaled by 2^7 (the default wscale for today's buffers); a
 * window field in the 500s is what an idle-reading established connection shows.
 */
const WINDOW_BASE = 501;

export class FakeTcpFlow {
  private seq = 0;
  private ack = 0;
  private timestamps = false;
  private tsRecent = 0;
  private readonly tsOffset: number;
  private readonly window: number;

  /**
   * `random`: 32 random bits, for this connection's timestamp offset and window (Linux, too, offsets
   * each connection's timestamps by a random value).
   */
  constructor(
    readonly localAddr: number,
    readonly localPort: number,
    readonly remoteAddr: number,
    readonly remotePort: number,
    random: number,
  ) {
    this.tsOffset = random >>> 0;
    this.window = WINDOW_BASE + (random & 0x0f);
  }

  /** Takes in a segment of this connection; true when it carries data to deliver (PSH with payload). */
  onSegment(s: SegmentInfo): boolean {
    if (s.tsVal >= 0) this.tsRecent = s.tsVal;
    if (s.flags & TCP_SYN) {
      // The peer's SYN or SYN-ACK: its initial sequence number, and whether it offered timestamps
      // (Linux offers them, and uses them from then on only if both ends did).
      this.ack = (s.seq + 1) >>> 0;
      this.timestamps = s.tsVal >= 0;
      if (s.flags & TCP_ACK) this.seq = s.ack;
      return false;
    }
    if (s.flags & TCP_ACK) this.seq = s.ack;
    const len = s.payloadEnd - s.payloadStart;
    if ((s.flags & TCP_PSH) === 0 || len === 0) return false;
    if (this.ack === 0 || this.ack === s.seq) this.ack = (s.seq + len) >>> 0;
    return true;
  }

  /** Fills `out` for a data segment of `len` bytes sent at `nowMs`, and advances our sequence number. */
  next(len: number, nowMs: number, out: DataSegment): void {
    out.srcAddr = this.localAddr;
    out.dstAddr = this.remoteAddr;
    out.srcPort = this.localPort;
    out.dstPort = this.remotePort;
    out.seq = this.seq;
    out.ack = this.ack;
    out.window = this.window;
    out.timestamps = this.timestamps;
    out.tsVal = (nowMs + this.tsOffset) >>> 0;
    out.tsEcr = this.tsRecent;
    this.seq = (this.seq + len) >>> 0;
  }
}

export function newDataSegment(): DataSegment {
  return { srcAddr: 0, dstAddr: 0, srcPort: 0, dstPort: 0, seq: 0, ack: 0, window: 0, timestamps: false, tsVal: 0, tsEcr: 0 };
}
