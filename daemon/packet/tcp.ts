/**
 * TCP header (RFC 9293) with options: a reusable checked view over buf[start, end), where end is
 * the IP payload's end, and a plain representation. The checksum covers a pseudo-header taken from the IP header the segment
 * sits behind, so checksum methods take that header's start (ipStart) in the same buffer.
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { internetChecksum, pseudoHeaderSum } from './checksum.js';
import { PortsView } from './ports-view.js';
import type { PacketError } from './wire-error.js';

export const IPPROTO_TCP = 6;
export const TCP_HEADER_LEN = 20;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

const OPT_END = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WINDOW_SCALE = 3;
const OPT_SACK_PERMITTED = 4;
const OPT_SACK = 5;
const OPT_TIMESTAMPS = 8;

export interface TcpOptions {
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  /** [TSval, TSecr] */
  timestamps?: [number, number];
  /** [left, right) edges, at most 4 blocks */
  sackBlocks?: [number, number][];
}

export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** Bits of TCP_FIN ... TCP_CWR, any combination. */
  flags: number;
  window: number;
  urgent: number;
  options: TcpOptions;
  payload: Uint8Array;
}

export class TcpView extends PortsView {

  static check(buf: Uint8Array, start = 0, end = buf.length): PacketError | null {
    if (end - start < TCP_HEADER_LEN) return 'truncated';
    const headerLength = (buf[start + 12]! >> 4) * 4;
    if (headerLength < TCP_HEADER_LEN) return 'bad-header-length';
    if (headerLength > end - start) return 'truncated';
    return null;
  }

  wrap(buf: Uint8Array, start = 0, end = buf.length): PacketError | null {
    return TcpView.check(buf, start, end) ?? this.bind(buf, start, end);
  }

  get seq(): number {
    return readU32(this.buf, this.start + 4);
  }
  get ack(): number {
    return readU32(this.buf, this.start + 8);
  }
  get headerLength(): number {
    return (this.buf[this.start + 12]! >> 4) * 4;
  }
  get flags(): number {
    return this.buf[this.start + 13]!;
  }
  get window(): number {
    return readU16(this.buf, this.start + 14);
  }
  get checksum(): number {
    return readU16(this.buf, this.start + 16);
  }
  get urgent(): number {
    return readU16(this.buf, this.start + 18);
  }
  get payloadStart(): number {
    return this.start + this.headerLength;
  }
  get payloadLength(): number {
    return this.end - this.payloadStart;
  }

  /** `ipStart`: where the IPv4/IPv6 header of this segment starts in the same buffer. */
  verifyChecksum(ipStart: number): boolean {
    const len = this.end - this.start;
    return internetChecksum(this.buf, this.start, this.end, pseudoHeaderSum(this.buf, ipStart, IPPROTO_TCP, len)) === 0;
  }
  fillChecksum(ipStart: number): void {
    writeU16(this.buf, this.start + 16, tcpChecksum(this.buf, ipStart, this.start, this.end));
  }

  /** Parses the options; an error for a malformed option list (the segment is then dropped). */
  parseOptions(out: TcpOptions): PacketError | null {
    return parseTcpOptions(this.buf, this.start + TCP_HEADER_LEN, this.payloadStart, out);
  }

  toRepr(): TcpRepr | PacketError {
    const options: TcpOptions = {};
    const err = this.parseOptions(options);
    if (err) return err;
    return {
      srcPort: this.srcPort,
      dstPort: this.dstPort,
      seq: this.seq,
      ack: this.ack,
      flags: this.flags,
      window: this.window,
      urgent: this.urgent,
      options,
      payload: this.buf.subarray(this.payloadStart, this.end),
    };
  }
}

/** Checksum of the segment buf[start, end) behind the IP header at ipStart (field zeroed first). */
function tcpChecksum(buf: Uint8Array, ipStart: number, start: number, end: number): number {
  writeU16(buf, start + 16, 0);
  return internetChecksum(buf, start, end, pseudoHeaderSum(buf, ipStart, IPPROTO_TCP, end - start));
}

export function parseTcpOptions(buf: Uint8Array, start: number, end: number, out: TcpOptions): PacketError | null {
  let at = start;
  while (at < end) {
    const kind = buf[at]!;
    if (kind === OPT_END) break;
    if (kind === OPT_NOP) {
      at++;
      continue;
    }
    if (at + 2 > end) return 'bad-option';
    const len = buf[at + 1]!;
    if (len < 2 || at + len > end) return 'bad-option';
    if (kind === OPT_MSS) {
      if (len !== 4) return 'bad-option';
      out.mss = readU16(buf, at + 2);
    } else if (kind === OPT_WINDOW_SCALE) {
      if (len !== 3) return 'bad-option';
      out.windowScale = buf[at + 2]!;
    } else if (kind === OPT_SACK_PERMITTED) {
      if (len !== 2) return 'bad-option';
      out.sackPermitted = true;
    } else if (kind === OPT_TIMESTAMPS) {
      if (len !== 10) return 'bad-option';
      out.timestamps = [readU32(buf, at + 2), readU32(buf, at + 6)];
    } else if (kind === OPT_SACK) {
      if ((len - 2) % 8 !== 0) return 'bad-option';
      const blocks: [number, number][] = [];
      for (let b = at + 2; b < at + len; b += 8) blocks.push([readU32(buf, b), readU32(buf, b + 4)]);
      out.sackBlocks = blocks;
    } // unknown kinds are skipped by their length
    at += len;
  }
  return null;
}

/** Bytes the options take on the wire, padded to a multiple of 4. */
export function tcpOptionsLength(o: TcpOptions): number {
  let n = 0;
  if (o.mss !== undefined) n += 4;
  if (o.windowScale !== undefined) n += 3;
  if (o.sackPermitted) n += 2;
  if (o.timestamps) n += 10;
  if (o.sackBlocks && o.sackBlocks.length > 0) n += 2 + 8 * o.sackBlocks.length;
  const padded = (n + 3) & ~3;
  if (padded > 40) throw new RangeError(`TCP options take ${padded} bytes, more than 40`);
  return padded;
}

function emitOptions(o: TcpOptions, out: Uint8Array, start: number, end: number): void {
  let at = start;
  if (o.mss !== undefined) {
    out[at] = OPT_MSS;
    out[at + 1] = 4;
    writeU16(out, at + 2, o.mss);
    at += 4;
  }
  if (o.windowScale !== undefined) {
    out[at] = OPT_WINDOW_SCALE;
    out[at + 1] = 3;
    out[at + 2] = o.windowScale;
    at += 3;
  }
  if (o.sackPermitted) {
    out[at] = OPT_SACK_PERMITTED;
    out[at + 1] = 2;
    at += 2;
  }
  if (o.timestamps) {
    out[at] = OPT_TIMESTAMPS;
    out[at + 1] = 10;
    writeU32(out, at + 2, o.timestamps[0]);
    writeU32(out, at + 6, o.timestamps[1]);
    at += 10;
  }
  if (o.sackBlocks && o.sackBlocks.length > 0) {
    out[at] = OPT_SACK;
    out[at + 1] = 2 + 8 * o.sackBlocks.length;
    at += 2;
    for (const [left, right] of o.sackBlocks) {
      writeU32(out, at, left);
      writeU32(out, at + 4, right);
      at += 8;
    }
  }
  out.fill(OPT_END, at, end);
}

export function tcpSegmentLength(repr: TcpRepr): number {
  return TCP_HEADER_LEN + tcpOptionsLength(repr.options) + repr.payload.length;
}

/**
 * Writes the segment at out[start] and its checksum, using the IP header already written at
 * out[ipStart] for the pseudo-header. Returns the segment length.
 */
export function emitTcpSegment(repr: TcpRepr, out: Uint8Array, start: number, ipStart: number): number {
  const optionsLength = tcpOptionsLength(repr.options);
  const headerLength = TCP_HEADER_LEN + optionsLength;
  const end = start + headerLength + repr.payload.length;
  writeU16(out, start, repr.srcPort);
  writeU16(out, start + 2, repr.dstPort);
  writeU32(out, start + 4, repr.seq);
  writeU32(out, start + 8, repr.ack);
  out[start + 12] = (headerLength / 4) << 4;
  out[start + 13] = repr.flags;
  writeU16(out, start + 14, repr.window);
  writeU16(out, start + 18, repr.urgent);
  emitOptions(repr.options, out, start + TCP_HEADER_LEN, start + headerLength);
  out.set(repr.payload, start + headerLength);
  writeU16(out, start + 16, tcpChecksum(out, ipStart, start, end));
  return end - start;
}
