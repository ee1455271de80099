/**
 * The identity of a TCP flow as every layer reads it from a packet: family, address bytes, ports
 * and the segment's flags. One function fills it (readTcpFlowKey), so the terminators, the
 * plain-flow tracker and the node agree on what a flow packet is; in particular on fragments
 * (isIpFragment): any fragment, first one included, is not a flow packet, because the later
 * fragments of the same datagram carry no ports and could not follow it.
 *
 * The key is a reusable object bound to the packet (no allocation per packet): the addresses stay
 * in the packet's bytes at srcAt/dstAt, IPv4 ones are also given as u32 numbers, and the views it
 * was read with stay bound for callers that rewrite the packet in place.
 */
import { formatIpAddress, parseIpAddress } from './address.js';
import { readU16 } from './bytes.js';
import { Ipv4View } from './ipv4.js';
import { Ipv6View } from './ipv6.js';
import { IPPROTO_TCP, TcpView } from './tcp.js';

/** An endpoint of a flow in binary form: 4 or 16 address bytes (network order) and a port. */
export interface SocketAddr {
  ip: Uint8Array;
  port: number;
}

/**
 * The IP version of a packet from its first nibble (4 or 6), or 0 when it is neither or too short
 * to hold that version's fixed header.
 */
export function ipVersion(pkt: Uint8Array): 0 | 4 | 6 {
  if (pkt.length === 0) return 0;
  const v = pkt[0]! >> 4;
  if (v === 4) return pkt.length >= 20 ? 4 : 0;
  if (v === 6) return pkt.length >= 40 ? 6 : 0;
  return 0;
}

/**
 * The one fragment rule: a packet is a fragment when More Fragments is set or its offset is not 0
 * (the first fragment has MF set; the last has MF clear and a non-zero offset).
 */
export function isIpFragment(ip: Ipv4View | Ipv6View): boolean {
  return ip.moreFragments || ip.fragmentOffset !== 0;
}

export class TcpFlowKey {
  family: 4 | 6 = 4;
  /** The packet the key was read from; the address bytes are buf[srcAt, srcAt + addrLen). */
  buf: Uint8Array = new Uint8Array(0);
  srcAt = 0;
  dstAt = 0;
  /** IPv4 addresses as u32 numbers (0 for IPv6). */
  src4 = 0;
  dst4 = 0;
  srcPort = 0;
  dstPort = 0;
  /** The TCP flags byte (TCP_SYN, TCP_ACK, ...). */
  flags = 0;
  /** The views the key was read with, bound to the packet while it is valid. */
  readonly ip4 = new Ipv4View();
  readonly ip6 = new Ipv6View();
  readonly tcp = new TcpView();

  get addrLen(): 4 | 16 {
    return this.family === 4 ? 4 : 16;
  }
  /** Both ports as one u32: srcPort << 16 | dstPort. */
  get ports(): number {
    return ((this.srcPort << 16) | this.dstPort) >>> 0;
  }
  /**
   * Copies of the endpoints, which outlive the packet. (Plain Uint8Arrays: a TUN packet is a Buffer,
   * whose slice() would be a view into the read batch.)
   */
  srcAddr(): SocketAddr {
    return { ip: copy(this.buf, this.srcAt, this.addrLen), port: this.srcPort };
  }
  dstAddr(): SocketAddr {
    return { ip: copy(this.buf, this.dstAt, this.addrLen), port: this.dstPort };
  }
  /** The key's bytes (addresses then ports) as a latin1 string, for maps keyed by IPv6 flows. */
  text(): string {
    const b = this.buf;
    const n = this.addrLen;
    return String.fromCharCode(...b.subarray(this.srcAt, this.srcAt + n), ...b.subarray(this.dstAt, this.dstAt + n),
      this.srcPort >> 8, this.srcPort & 0xff, this.dstPort >> 8, this.dstPort & 0xff);
  }
}

function copy(buf: Uint8Array, at: number, len: number): Uint8Array {
  return new Uint8Array(buf.subarray(at, at + len));
}

/**
 * Reads the flow key of an IPv4 or IPv6 TCP packet into `out`; false (out then undefined) when it
 * is not one: malformed, not TCP, a fragment, or a TCP header cut short. IPv6 extension headers are
 * followed to the TCP header.
 */
export function readTcpFlowKey(pkt: Uint8Array, out: TcpFlowKey): boolean {
  const version = ipVersion(pkt);
  let tcpStart: number;
  let end: number;
  if (version === 4) {
    const ip = out.ip4;
    if (ip.wrap(pkt) !== null || ip.protocol !== IPPROTO_TCP || isIpFragment(ip)) return false;
    out.src4 = ip.src;
    out.dst4 = ip.dst;
    out.srcAt = ip.srcOffset;
    out.dstAt = ip.dstOffset;
    tcpStart = ip.payloadStart;
    end = ip.end;
  } else if (version === 6) {
    const ip = out.ip6;
    if (ip.wrap(pkt) !== null || ip.transportProtocol !== IPPROTO_TCP || isIpFragment(ip)) return false;
    out.src4 = 0;
    out.dst4 = 0;
    out.srcAt = ip.srcOffset;
    out.dstAt = ip.dstOffset;
    tcpStart = ip.transportStart;
    end = ip.end;
  } else {
    return false;
  }
  if (out.tcp.wrap(pkt, tcpStart, end) !== null) return false;
  out.family = version;
  out.buf = pkt;
  out.srcPort = readU16(pkt, tcpStart);
  out.dstPort = readU16(pkt, tcpStart + 2);
  out.flags = out.tcp.flags;
  return true;
}

/** "1.2.3.4:80" or "[fd00::1]:80", for logs, the flow table and the RPC. */
export function formatSocketAddr(a: SocketAddr): string {
  return a.ip.length === 4 ? `${formatIpAddress(a.ip)}:${a.port}` : `[${formatIpAddress(a.ip)}]:${a.port}`;
}

/** An endpoint from text (config, a SOCKS5 request): undefined when `ip` is not an IP address. */
export function socketAddrOf(ip: string, port: number): SocketAddr | undefined {
  const bytes = parseIpAddress(ip);
  return bytes && { ip: bytes, port };
}
