/**
 * In-place NAT rewrites of addresses and ports with RFC 1624 incremental checksum updates, so a
 * rewritten packet costs a few additions instead of a checksum over its whole payload.
 * The IPv4 header checksum and the TCP/UDP/ICMPv6 checksums (whose pseudo-header holds the
 * addresses) are all kept valid. Call after a successful `wrap` of the view.
 *
 * `partial`: the packet is an offloaded one whose transport checksum is still partial (a TUN
 * super-packet, docs/tun.md "Offloads"): the field holds only the pseudo-header's sum, so an address
 * moves it as a plain sum, and a port, which the finished checksum will cover, leaves it alone.
 */
import { readU16, writeU16 } from './bytes.js';
import { adjustChecksum, adjustPartialSum, onesSum } from './checksum.js';
import { IPPROTO_ICMPV6 } from './icmp.js';
import type { Ipv4View } from './ipv4.js';
import type { Ipv6View } from './ipv6.js';
import { IPPROTO_TCP } from './tcp.js';
import { IPPROTO_UDP } from './udp.js';

export type IpView = Ipv4View | Ipv6View;
export type Endpoint = 'src' | 'dst';

/** Offset of the transport checksum field, or -1 when there is none to fix up. */
function transportChecksumOffset(view: IpView): number {
  if (!view.hasTransportHeader) return -1;
  const p = view.transportProtocol;
  const at = view.transportStart;
  let field: number;
  if (p === IPPROTO_TCP) field = at + 16;
  else if (p === IPPROTO_UDP) field = at + 6;
  else if (p === IPPROTO_ICMPV6) field = at + 2; // ICMPv4's checksum has no pseudo-header
  else return -1;
  if (field + 2 > view.end) return -1;
  // UDP over IPv4 with checksum 0 carries none (RFC 768): it must stay 0.
  if (p === IPPROTO_UDP && view.buf[view.start]! >> 4 === 4 && readU16(view.buf, field) === 0) return -1;
  return field;
}

function adjustField(buf: Uint8Array, field: number, oldSum: number, newSum: number): void {
  writeU16(buf, field, adjustChecksum(readU16(buf, field), oldSum, newSum));
}

/** Replaces the source or destination address (4 or 16 bytes, matching the packet's family). */
export function rewriteAddress(view: IpView, which: Endpoint, addr: Uint8Array, partial = false): void {
  const buf = view.buf;
  const v4 = buf[view.start]! >> 4 === 4;
  const len = v4 ? 4 : 16;
  if (addr.length !== len) throw new RangeError(`address of ${addr.length} bytes for an IPv${v4 ? 4 : 6} packet`);
  const at = which === 'src' ? view.srcOffset : view.dstOffset;
  const oldSum = onesSum(buf, at, at + len);
  const newSum = onesSum(addr);
  buf.set(addr, at);
  if (v4) adjustField(buf, view.start + 10, oldSum, newSum);
  const field = transportChecksumOffset(view);
  if (field < 0) return;
  if (partial) writeU16(buf, field, adjustPartialSum(readU16(buf, field), oldSum, newSum));
  else adjustField(buf, field, oldSum, newSum);
}

/** Replaces a TCP or UDP port; other protocols (and non-first fragments) are left alone. Returns whether it did. */
export function rewritePort(view: IpView, which: Endpoint, port: number, partial = false): boolean {
  const p = view.transportProtocol;
  if (!view.hasTransportHeader || (p !== IPPROTO_TCP && p !== IPPROTO_UDP)) return false;
  const at = view.transportStart + (which === 'src' ? 0 : 2);
  if (at + 2 > view.end) return false;
  const old = readU16(view.buf, at);
  writeU16(view.buf, at, port);
  const field = partial ? -1 : transportChecksumOffset(view);
  if (field >= 0) adjustField(view.buf, field, old, port);
  return true;
}
