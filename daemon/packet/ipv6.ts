/**
 * IPv6 header (RFC 8200) and its extension-header chain: a reusable checked view and a plain
 * representation. `wrap` walks hop-by-hop, routing, fragment, destination-options and AH headers
 * once, so `transportProtocol`/`transportStart` point at the upper-layer header (or, for a
 * non-first fragment, at fragment data; see hasTransportHeader). Offsets are absolute into `buf`.
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import type { PacketError } from './wire-error.js';

export const IPV6_HEADER_LEN = 40;

export const IPPROTO_HOPOPTS = 0;
export const IPPROTO_ROUTING = 43;
export const IPPROTO_FRAGMENT = 44;
export const IPPROTO_AH = 51;
export const IPPROTO_DSTOPTS = 60;

export interface Ipv6Repr {
  src: Uint8Array; // 16 bytes
  dst: Uint8Array;
  /** Next header of the fixed header; builders emit no extension headers. */
  nextHeader: number;
  payloadLength: number;
  hopLimit: number;
  trafficClass: number;
  flowLabel: number;
}

const EMPTY = new Uint8Array(0);

/** Result of walking the extension-header chain: offsets are absolute. */
interface Chain {
  protocol: number;
  start: number;
  fragmentOffset: number;
  moreFragments: boolean;
  fragmentIdent: number;
}

/** Walks extension headers of the packet at buf[start, end); writes into `out` or returns an error. */
function walkChain(buf: Uint8Array, start: number, end: number, out: Chain): PacketError | null {
  let next = buf[start + 6]!;
  let at = start + IPV6_HEADER_LEN;
  out.fragmentOffset = 0;
  out.moreFragments = false;
  out.fragmentIdent = 0;
  for (;;) {
    let len: number;
    if (next === IPPROTO_HOPOPTS || next === IPPROTO_ROUTING || next === IPPROTO_DSTOPTS) {
      if (at + 2 > end) return 'bad-extension-header';
      len = (buf[at + 1]! + 1) * 8;
    } else if (next === IPPROTO_AH) {
      if (at + 2 > end) return 'bad-extension-header';
      len = (buf[at + 1]! + 2) * 4; // AH counts 4-byte units, minus 2 (RFC 4302)
    } else if (next === IPPROTO_FRAGMENT) {
      len = 8;
    } else {
      break; // upper layer (or ESP / no-next-header: opaque to us)
    }
    if (at + len > end) return 'bad-extension-header';
    if (next === IPPROTO_FRAGMENT) {
      const offFlags = readU16(buf, at + 2);
      out.fragmentOffset = offFlags & 0xfff8; // 13-bit offset in 8-byte units, already scaled
      out.moreFragments = (offFlags & 1) !== 0;
      out.fragmentIdent = readU32(buf, at + 4);
    }
    const headerNext = buf[at]!;
    at += len;
    next = headerNext;
    // Data after a non-first fragment's header is not a header chain: stop here.
    if (out.fragmentOffset !== 0) break;
  }
  out.protocol = next;
  out.start = at;
  return null;
}

export class Ipv6View {
  buf: Uint8Array = EMPTY;
  start = 0;
  /** Upper-layer protocol after the extension headers (e.g. 6 TCP, 17 UDP, 58 ICMPv6). */
  transportProtocol = 0;
  transportStart = 0;
  /** From a fragment header, in bytes; 0 when unfragmented or the first fragment. */
  fragmentOffset = 0;
  moreFragments = false;
  fragmentIdent = 0;
  #chain: Chain = { protocol: 0, start: 0, fragmentOffset: 0, moreFragments: false, fragmentIdent: 0 };

  static check(buf: Uint8Array, start = 0, end = buf.length): PacketError | null {
    return checkInto(buf, start, end, scratch);
  }

  wrap(buf: Uint8Array, start = 0, end = buf.length): PacketError | null {
    const err = checkInto(buf, start, end, this.#chain);
    if (err) return err;
    this.buf = buf;
    this.start = start;
    this.transportProtocol = this.#chain.protocol;
    this.transportStart = this.#chain.start;
    this.fragmentOffset = this.#chain.fragmentOffset;
    this.moreFragments = this.#chain.moreFragments;
    this.fragmentIdent = this.#chain.fragmentIdent;
    return null;
  }
  get trafficClass(): number {
    return (readU16(this.buf, this.start) >> 4) & 0xff;
  }
  get flowLabel(): number {
    return readU32(this.buf, this.start) & 0xfffff;
  }
  get payloadLength(): number {
    return readU16(this.buf, this.start + 4);
  }
  get nextHeader(): number {
    return this.buf[this.start + 6]!;
  }
  get hopLimit(): number {
    return this.buf[this.start + 7]!;
  }
  set hopLimit(v: number) {
    this.buf[this.start + 7] = v;
  }
  get srcOffset(): number {
    return this.start + 8;
  }
  get dstOffset(): number {
    return this.start + 24;
  }
  /** Views (no copy) of the addresses. */
  src(): Uint8Array {
    return this.buf.subarray(this.start + 8, this.start + 24);
  }
  dst(): Uint8Array {
    return this.buf.subarray(this.start + 24, this.start + 40);
  }
  get payloadStart(): number {
    return this.start + IPV6_HEADER_LEN;
  }
  get end(): number {
    return this.start + IPV6_HEADER_LEN + this.payloadLength;
  }
  get hasTransportHeader(): boolean {
    return this.fragmentOffset === 0;
  }

  toRepr(): Ipv6Repr {
    return {
      src: this.buf.slice(this.start + 8, this.start + 24),
      dst: this.buf.slice(this.start + 24, this.start + 40),
      nextHeader: this.nextHeader,
      payloadLength: this.payloadLength,
      hopLimit: this.hopLimit,
      trafficClass: this.trafficClass,
      flowLabel: this.flowLabel,
    };
  }
}

const scratch: Chain = { protocol: 0, start: 0, fragmentOffset: 0, moreFragments: false, fragmentIdent: 0 };

function checkInto(buf: Uint8Array, start: number, end: number, chain: Chain): PacketError | null {
  if (end - start < IPV6_HEADER_LEN) return 'truncated';
  if (buf[start]! >> 4 !== 6) return 'bad-version';
  const packetEnd = start + IPV6_HEADER_LEN + readU16(buf, start + 4);
  if (packetEnd > end) return 'truncated';
  return walkChain(buf, start, packetEnd, chain);
}

/** Writes the 40-byte fixed header at out[start]; returns its length. */
export function emitIpv6Header(repr: Ipv6Repr, out: Uint8Array, start: number): number {
  if (repr.payloadLength > 0xffff) throw new RangeError(`IPv6 payload of ${repr.payloadLength} bytes exceeds 65535`);
  writeU32(out, start, ((6 << 28) | ((repr.trafficClass & 0xff) << 20) | (repr.flowLabel & 0xfffff)) >>> 0);
  writeU16(out, start + 4, repr.payloadLength);
  out[start + 6] = repr.nextHeader;
  out[start + 7] = repr.hopLimit;
  out.set(repr.src, start + 8);
  out.set(repr.dst, start + 24);
  return IPV6_HEADER_LEN;
}
