/**
 * IPv4 header (RFC 791): a reusable checked view over bytes, and a plain representation.
 *
 * The view is bound to (buf, start, end) so a packet inside a larger buffer (the TUN batch) is
 * read in place without a subarray; rebind one view per packet on hot paths. All offsets it
 * reports (payloadStart, transportStart, ...) are absolute indices into `buf`.
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { internetChecksum } from './checksum.js';
import type { PacketError } from './wire-error.js';

export const IPV4_HEADER_LEN = 20;

export interface Ipv4Repr {
  src: Uint8Array; // 4 bytes
  dst: Uint8Array;
  protocol: number;
  payloadLength: number;
  ttl: number;
  ident: number;
  dontFragment: boolean;
  dscpEcn: number;
}

const EMPTY = new Uint8Array(0);

export class Ipv4View {
  buf: Uint8Array = EMPTY;
  start = 0;

  /** Validates the header and lengths of buf[start, end) without binding anything. */
  static check(buf: Uint8Array, start = 0, end = buf.length): PacketError | null {
    if (end - start < IPV4_HEADER_LEN) return 'truncated';
    const b0 = buf[start]!;
    if (b0 >> 4 !== 4) return 'bad-version';
    const ihl = (b0 & 0x0f) * 4;
    if (ihl < IPV4_HEADER_LEN) return 'bad-header-length';
    const total = readU16(buf, start + 2);
    if (total < ihl) return 'bad-length';
    if (total > end - start) return 'truncated';
    return null;
  }

  /** Checks buf[start, end) and binds the view to it on success. */
  wrap(buf: Uint8Array, start = 0, end = buf.length): PacketError | null {
    const err = Ipv4View.check(buf, start, end);
    if (err) return err;
    this.buf = buf;
    this.start = start;
    return null;
  }

  get headerLength(): number {
    return (this.buf[this.start]! & 0x0f) * 4;
  }
  get dscpEcn(): number {
    return this.buf[this.start + 1]!;
  }
  get totalLength(): number {
    return readU16(this.buf, this.start + 2);
  }
  get ident(): number {
    return readU16(this.buf, this.start + 4);
  }
  get dontFragment(): boolean {
    return (this.buf[this.start + 6]! & 0x40) !== 0;
  }
  get moreFragments(): boolean {
    return (this.buf[this.start + 6]! & 0x20) !== 0;
  }
  /** In bytes. Non-zero means this fragment carries no transport header. */
  get fragmentOffset(): number {
    return (readU16(this.buf, this.start + 6) & 0x1fff) * 8;
  }
  get ttl(): number {
    return this.buf[this.start + 8]!;
  }
  set ttl(v: number) {
    this.buf[this.start + 8] = v;
  }
  get protocol(): number {
    return this.buf[this.start + 9]!;
  }
  get checksum(): number {
    return readU16(this.buf, this.start + 10);
  }
  /** Source address as an unsigned 32-bit number (no allocation). */
  get src(): number {
    return readU32(this.buf, this.start + 12);
  }
  set src(v: number) {
    writeU32(this.buf, this.start + 12, v);
  }
  get dst(): number {
    return readU32(this.buf, this.start + 16);
  }
  set dst(v: number) {
    writeU32(this.buf, this.start + 16, v);
  }
  get srcOffset(): number {
    return this.start + 12;
  }
  get dstOffset(): number {
    return this.start + 16;
  }
  get payloadStart(): number {
    return this.start + this.headerLength;
  }
  /** End of the packet per its total length (trailing bytes in the buffer are ignored). */
  get end(): number {
    return this.start + this.totalLength;
  }
  /** Same as payloadStart; named like Ipv6View's for code that handles both. */
  get transportStart(): number {
    return this.payloadStart;
  }
  get transportProtocol(): number {
    return this.protocol;
  }
  /** True unless this is a non-first fragment (which has no transport header). */
  get hasTransportHeader(): boolean {
    return this.fragmentOffset === 0;
  }

  verifyChecksum(): boolean {
    return internetChecksum(this.buf, this.start, this.start + this.headerLength) === 0;
  }
  fillChecksum(): void {
    writeU16(this.buf, this.start + 10, 0);
    writeU16(this.buf, this.start + 10, internetChecksum(this.buf, this.start, this.start + this.headerLength));
  }

  /** A representation that outlives the buffer (addresses are copied). */
  toRepr(): Ipv4Repr {
    return {
      src: this.buf.slice(this.start + 12, this.start + 16),
      dst: this.buf.slice(this.start + 16, this.start + 20),
      protocol: this.protocol,
      payloadLength: this.totalLength - this.headerLength,
      ttl: this.ttl,
      ident: this.ident,
      dontFragment: this.dontFragment,
      dscpEcn: this.dscpEcn,
    };
  }
}

/** Writes a 20-byte header (no options) with its checksum at out[start]; returns its length. */
export function emitIpv4Header(repr: Ipv4Repr, out: Uint8Array, start: number): number {
  const total = IPV4_HEADER_LEN + repr.payloadLength;
  if (total > 0xffff) throw new RangeError(`IPv4 packet of ${total} bytes exceeds 65535`);
  out[start] = 0x45;
  out[start + 1] = repr.dscpEcn;
  writeU16(out, start + 2, total);
  writeU16(out, start + 4, repr.ident);
  writeU16(out, start + 6, repr.dontFragment ? 0x4000 : 0);
  out[start + 8] = repr.ttl;
  out[start + 9] = repr.protocol;
  writeU16(out, start + 10, 0);
  out.set(repr.src, start + 12);
  out.set(repr.dst, start + 16);
  writeU16(out, start + 10, internetChecksum(out, start, start + IPV4_HEADER_LEN));
  return IPV4_HEADER_LEN;
}
