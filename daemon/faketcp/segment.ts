/**
 * Fake TCP segments: parsing what the raw socket reads (IPv4 header + TCP segment) and building the
 * data segments we send (TCP header + payload; the kernel adds the IP header).
 *
 * What we send looks like a Linux established connection's data segment: PSH|ACK, the timestamp
 * option (NOP, NOP, TS) when the handshake negotiated it, and a window of the size Linux advertises
 * with its default window scale. xtaci/tcpraw (kcptun's --tcp) sends PSH|ACK without options and
 * delivers any PSH segment of a known flow, whatever its options; it reads the payload from the data
 * offset, so the options cost 12 bytes a segment and nothing in compatibility.
 */
import { readU32, writeU16, writeU32 } from '../packet/bytes.js';
import { internetChecksum, pseudoHeaderSum } from '../packet/checksum.js';
import { Ipv4View } from '../packet/ipv4.js';
import { IPPROTO_TCP, TcpView, TCP_ACK, TCP_HEADER_LEN, TCP_PSH } from '../packet/tcp.js';

const OPT_NOP = 1;
const OPT_TIMESTAMPS = 8;
/** NOP, NOP, kind 8, length 10, TSval, TSecr: Linux's layout on every segment after the handshake. */
export const TS_OPTION_LEN = 12;
/** The pseudo IPv4 header in front of the segment in the send buffer: only summed, never sent. */
const PSEUDO_LEN = 20;

/** The header fields a received segment and a sent one both carry. */
interface SegmentHeader {
  /** IPv4 addresses as host-order uint32. */
  srcAddr: number;
  dstAddr: number;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
}

/** What a received segment says, filled in place by parseSegment (no allocation per segment). */
export interface SegmentInfo extends SegmentHeader {
  flags: number;
  /** The peer's TSval, or -1 without the timestamp option. */
  tsVal: number;
  payloadStart: number;
  payloadEnd: number;
}

export function newSegmentInfo(): SegmentInfo {
  return { srcAddr: 0, dstAddr: 0, srcPort: 0, dstPort: 0, seq: 0, ack: 0, flags: 0, tsVal: -1, payloadStart: 0, payloadEnd: 0 };
}

export type SegmentError = 'not-ipv4-tcp' | 'malformed' | 'bad-checksum';

const ip = new Ipv4View();
const tcp = new TcpView();

/**
 * Parses buf[start, end) as an IPv4 packet carrying TCP. The TCP checksum is verified only for
 * segments with payload: those are ours or tcpraw's, summed in full by the sender, while the kernel's
 * handshake segments may arrive over veth or loopback with a checksum left to offload.
 */
export function parseSegment(buf: Uint8Array, start: number, end: number, out: SegmentInfo): SegmentError | null {
  if (ip.wrap(buf, start, end) || ip.protocol !== IPPROTO_TCP || ip.fragmentOffset !== 0 || ip.moreFragments) return 'not-ipv4-tcp';
  const tcpStart = ip.payloadStart;
  const tcpEnd = start + ip.totalLength;
  if (tcp.wrap(buf, tcpStart, tcpEnd)) return 'malformed';
  out.srcAddr = readU32(buf, start + 12);
  out.dstAddr = readU32(buf, start + 16);
  out.srcPort = tcp.srcPort;
  out.dstPort = tcp.dstPort;
  out.seq = tcp.seq;
  out.ack = tcp.ack;
  out.flags = tcp.flags;
  out.payloadStart = tcp.payloadStart;
  out.payloadEnd = tcpEnd;
  if (tcpEnd > tcp.payloadStart && !tcp.verifyChecksum(start)) return 'bad-checksum';
  out.tsVal = findTsVal(buf, tcpStart + TCP_HEADER_LEN, tcp.payloadStart);
  return null;
}

/** The TSval of a timestamp option in buf[at, end), or -1. Malformed option lists read as none. */
function findTsVal(buf: Uint8Array, at: number, end: number): number {
  while (at < end) {
    const kind = buf[at]!;
    if (kind === 0) break;
    if (kind === OPT_NOP) {
      at++;
      continue;
    }
    if (at + 1 >= end) break;
    const len = buf[at + 1]!;
    if (len < 2 || at + len > end) break;
    if (kind === OPT_TIMESTAMPS && len === 10) return readU32(buf, at + 2);
    at += len;
  }
  return -1;
}

/** The fields of one outgoing data segment; the flow fills them. */
export interface DataSegment extends SegmentHeader {
  window: number;
  /** [TSval, TSecr] are written when this is true. */
  timestamps: boolean;
  tsVal: number;
  tsEcr: number;
}

/**
 * A reusable send buffer: builds one PSH|ACK segment around a payload and returns the bytes to hand
 * to the raw socket (a view into the buffer, valid until the next build).
 */
export class SegmentBuilder {
  private readonly buf: Uint8Array;

  constructor(maxPayload: number) {
    this.buf = new Uint8Array(PSEUDO_LEN + TCP_HEADER_LEN + TS_OPTION_LEN + maxPayload);
    this.buf[0] = 0x45; // pseudoHeaderSum tells the family by the version nibble
  }

  get maxPayload(): number {
    return this.buf.length - PSEUDO_LEN - TCP_HEADER_LEN - TS_OPTION_LEN;
  }

  build(s: DataSegment, payload: Uint8Array): Uint8Array {
    if (payload.length > this.maxPayload) throw new RangeError(`fake TCP payload of ${payload.length} bytes, at most ${this.maxPayload}`);
    const b = this.buf;
    writeU32(b, 12, s.srcAddr);
    writeU32(b, 16, s.dstAddr);
    const t = PSEUDO_LEN;
    const headerLen = TCP_HEADER_LEN + (s.timestamps ? TS_OPTION_LEN : 0);
    writeU16(b, t, s.srcPort);
    writeU16(b, t + 2, s.dstPort);
    writeU32(b, t + 4, s.seq);
    writeU32(b, t + 8, s.ack);
    b[t + 12] = (headerLen / 4) << 4;
    b[t + 13] = TCP_PSH | TCP_ACK;
    writeU16(b, t + 14, s.window);
    writeU16(b, t + 16, 0);
    writeU16(b, t + 18, 0);
    if (s.timestamps) {
      b[t + 20] = OPT_NOP;
      b[t + 21] = OPT_NOP;
      b[t + 22] = OPT_TIMESTAMPS;
      b[t + 23] = 10;
      writeU32(b, t + 24, s.tsVal);
      writeU32(b, t + 28, s.tsEcr);
    }
    b.set(payload, t + headerLen);
    const end = t + headerLen + payload.length;
    writeU16(b, t + 16, internetChecksum(b, t, end, pseudoHeaderSum(b, 0, IPPROTO_TCP, end - t)));
    return b.subarray(t, end);
  }
}

/** Reads a host-order IPv4 address as text. */
export function formatAddr(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

/** Dotted-quad text to a host-order uint32 (the caller passes a valid address). */
export function parseAddr(text: string): number {
  const p = text.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

