/**
 * Builders for whole IP packets: an IPv4 or IPv6 header (chosen by the address length) followed by
 * a TCP segment, UDP datagram or ICMP echo, checksums filled. `emit*` write into a buffer the caller
 * owns and return the length (hot paths); `build*` allocate an exact-size buffer (control paths, tests).
 */
import { type IcmpEchoRepr, IPPROTO_ICMP, IPPROTO_ICMPV6, emitIcmpEcho, icmpEchoLength } from './icmp.js';
import { IPV4_HEADER_LEN, emitIpv4Header } from './ipv4.js';
import { IPV6_HEADER_LEN, emitIpv6Header } from './ipv6.js';
import { IPPROTO_TCP, type TcpRepr, emitTcpSegment, tcpSegmentLength } from './tcp.js';
import { IPPROTO_UDP, type UdpRepr, emitUdpDatagram, udpDatagramLength } from './udp.js';

/** The IP layer of a packet to build. Addresses of 4 bytes make IPv4, of 16 bytes IPv6. */
export interface IpRepr {
  src: Uint8Array;
  dst: Uint8Array;
  /** TTL / hop limit; default 64. */
  ttl?: number;
  /** IPv4 only; default 0. */
  ident?: number;
  /** IPv4 only; default true (we never want routers to fragment proxied traffic). */
  dontFragment?: boolean;
  /** DSCP+ECN byte (IPv4) / traffic class (IPv6); default 0. */
  dscpEcn?: number;
  /** IPv6 only; default 0. */
  flowLabel?: number;
}

type TransportEmitter<R> = (repr: R, out: Uint8Array, start: number, ipStart: number) => number;

function ipHeaderLength(ip: IpRepr): number {
  if (ip.src.length !== ip.dst.length || (ip.src.length !== 4 && ip.src.length !== 16)) {
    throw new RangeError('IP source and destination must both be 4 or both be 16 bytes');
  }
  return ip.src.length === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
}

function emitIpHeader(ip: IpRepr, protocol: number, payloadLength: number, out: Uint8Array, start: number): number {
  const ttl = ip.ttl ?? 64;
  if (ipHeaderLength(ip) === IPV4_HEADER_LEN) {
    const { src, dst } = ip;
    const ident = ip.ident ?? 0;
    const dontFragment = ip.dontFragment ?? true;
    return emitIpv4Header({ src, dst, protocol, payloadLength, ttl, ident, dontFragment, dscpEcn: ip.dscpEcn ?? 0 }, out, start);
  }
  return emitIpv6Header(
    {
      src: ip.src,
      dst: ip.dst,
      nextHeader: protocol,
      payloadLength,
      hopLimit: ttl,
      trafficClass: ip.dscpEcn ?? 0,
      flowLabel: ip.flowLabel ?? 0,
    },
    out,
    start,
  );
}

function emitPacket<R>(
  ip: IpRepr,
  protocol: number,
  repr: R,
  transportLength: number,
  emitTransport: TransportEmitter<R>,
  out: Uint8Array,
  start: number,
): number {
  const total = ipHeaderLength(ip) + transportLength;
  if (start + total > out.length) throw new RangeError(`packet of ${total} bytes does not fit the buffer`);
  const headerLength = emitIpHeader(ip, protocol, transportLength, out, start);
  return headerLength + emitTransport(repr, out, start + headerLength, start);
}

/** Allocates an exact-size buffer and emits into it. */
function build<R>(
  ip: IpRepr,
  repr: R,
  length: (ip: IpRepr, repr: R) => number,
  emit: (ip: IpRepr, repr: R, out: Uint8Array) => number,
): Uint8Array {
  const out = new Uint8Array(length(ip, repr));
  emit(ip, repr, out);
  return out;
}

export function tcpPacketLength(ip: IpRepr, tcp: TcpRepr): number {
  return ipHeaderLength(ip) + tcpSegmentLength(tcp);
}
export function emitTcpPacket(ip: IpRepr, tcp: TcpRepr, out: Uint8Array, start = 0): number {
  return emitPacket(ip, IPPROTO_TCP, tcp, tcpSegmentLength(tcp), emitTcpSegment, out, start);
}
export function buildTcpPacket(ip: IpRepr, tcp: TcpRepr): Uint8Array {
  return build(ip, tcp, tcpPacketLength, emitTcpPacket);
}

export function udpPacketLength(ip: IpRepr, udp: UdpRepr): number {
  return ipHeaderLength(ip) + udpDatagramLength(udp);
}
export function emitUdpPacket(ip: IpRepr, udp: UdpRepr, out: Uint8Array, start = 0): number {
  return emitPacket(ip, IPPROTO_UDP, udp, udpDatagramLength(udp), emitUdpDatagram, out, start);
}
export function buildUdpPacket(ip: IpRepr, udp: UdpRepr): Uint8Array {
  return build(ip, udp, udpPacketLength, emitUdpPacket);
}

export function icmpEchoPacketLength(ip: IpRepr, echo: IcmpEchoRepr): number {
  return ipHeaderLength(ip) + icmpEchoLength(echo);
}
export function emitIcmpEchoPacket(ip: IpRepr, echo: IcmpEchoRepr, out: Uint8Array, start = 0): number {
  const protocol = ip.src.length === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
  return emitPacket(ip, protocol, echo, icmpEchoLength(echo), emitIcmpEcho, out, start);
}
export function buildIcmpEchoPacket(ip: IpRepr, echo: IcmpEchoRepr): Uint8Array {
  return build(ip, echo, icmpEchoPacketLength, emitIcmpEchoPacket);
}
