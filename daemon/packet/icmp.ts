/**
 * ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) messages, with echo request/reply fields. The two
 * share a layout; they differ in checksum: ICMPv6 covers an IPv6 pseudo-header, ICMPv4 does not.
 * The view is family-aware: `wrap` takes the IP header start it sits behind.
 */
import { readU16, writeU16 } from './bytes.js';
import { internetChecksum, pseudoHeaderSum } from './checksum.js';
import type { PacketError } from './wire-error.js';

export const IPPROTO_ICMP = 1;
export const IPPROTO_ICMPV6 = 58;
export const ICMP_HEADER_LEN = 8;

export const ICMPV4_ECHO_REPLY = 0;
export const ICMPV4_ECHO_REQUEST = 8;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;

export interface IcmpEchoRepr {
  /** ICMPV4_ECHO_* or ICMPV6_ECHO_*; must match the IP family it is emitted behind. */
  type: number;
  ident: number;
  seq: number;
  payload: Uint8Array;
}

const EMPTY = new Uint8Array(0);

export class IcmpView {
  buf: Uint8Array = EMPTY;
  start = 0;
  end = 0;
  ipStart = 0;

  static check(buf: Uint8Array, start = 0, end = buf.length): PacketError | null {
    return end - start < ICMP_HEADER_LEN ? 'truncated' : null;
  }

  /** `ipStart`: the IPv4/IPv6 header this message follows (decides the checksum rule). */
  wrap(buf: Uint8Array, start: number, end: number, ipStart: number): PacketError | null {
    const err = IcmpView.check(buf, start, end);
    if (err) return err;
    this.buf = buf;
    this.start = start;
    this.end = end;
    this.ipStart = ipStart;
    return null;
  }

  get type(): number {
    return this.buf[this.start]!;
  }
  get code(): number {
    return this.buf[this.start + 1]!;
  }
  get checksum(): number {
    return readU16(this.buf, this.start + 2);
  }
  /** Echo identifier / sequence number (meaningful for echo messages). */
  get ident(): number {
    return readU16(this.buf, this.start + 4);
  }
  get seq(): number {
    return readU16(this.buf, this.start + 6);
  }
  get isEcho(): boolean {
    const t = this.type;
    return t === ICMPV4_ECHO_REQUEST || t === ICMPV4_ECHO_REPLY || t === ICMPV6_ECHO_REQUEST || t === ICMPV6_ECHO_REPLY;
  }
  get payloadStart(): number {
    return this.start + ICMP_HEADER_LEN;
  }

  verifyChecksum(): boolean {
    return internetChecksum(this.buf, this.start, this.end, icmpPseudoSum(this.buf, this.ipStart, this.end - this.start)) === 0;
  }

  toEchoRepr(): IcmpEchoRepr {
    return { type: this.type, ident: this.ident, seq: this.seq, payload: this.buf.subarray(this.payloadStart, this.end) };
  }
}

function icmpPseudoSum(buf: Uint8Array, ipStart: number, length: number): number {
  return buf[ipStart]! >> 4 === 6 ? pseudoHeaderSum(buf, ipStart, IPPROTO_ICMPV6, length) : 0;
}

export function icmpEchoLength(repr: IcmpEchoRepr): number {
  return ICMP_HEADER_LEN + repr.payload.length;
}

/** Writes an echo message at out[start] with its checksum (IP header at out[ipStart]); returns its length. */
export function emitIcmpEcho(repr: IcmpEchoRepr, out: Uint8Array, start: number, ipStart: number): number {
  const len = ICMP_HEADER_LEN + repr.payload.length;
  out[start] = repr.type;
  out[start + 1] = 0;
  writeU16(out, start + 2, 0);
  writeU16(out, start + 4, repr.ident);
  writeU16(out, start + 6, repr.seq);
  out.set(repr.payload, start + ICMP_HEADER_LEN);
  writeU16(out, start + 2, internetChecksum(out, start, start + len, icmpPseudoSum(out, ipStart, len)));
  return len;
}
