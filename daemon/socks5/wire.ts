/**
 * SOCKS5's byte formats (RFC 1928): the address field (ATYP + address + port) shared by requests,
 * replies and UDP datagrams, the reply message, and the UDP relay header. Pure functions over bytes;
 * the session state machine (session.ts) and the adapters use them.
 */
import { formatIpAddress, parseIpAddress } from '../packet/address.js';

export const SOCKS_VERSION = 5;

export const enum Atyp {
  Ipv4 = 1,
  Domain = 3,
  Ipv6 = 4,
}

/** Reply codes (RFC 1928 §6). */
export const enum Rep {
  Succeeded = 0,
  GeneralFailure = 1,
  NotAllowed = 2,
  NetworkUnreachable = 3,
  HostUnreachable = 4,
  ConnectionRefused = 5,
  TtlExpired = 6,
  CommandNotSupported = 7,
  AddressTypeNotSupported = 8,
}

export interface SocksAddr {
  /** Dotted IPv4, RFC 5952 IPv6, or a domain name as the client sent it. */
  host: string;
  port: number;
  atyp: Atyp;
}

/** Parsed at `off`: the address and where the next byte is; 'short' if more bytes are needed; 'bad-atyp'. */
export function readAddress(buf: Uint8Array, off: number): { addr: SocksAddr; next: number } | 'short' | 'bad-atyp' {
  if (off >= buf.length) return 'short';
  const atyp = buf[off]!;
  let start = off + 1;
  let len: number;
  if (atyp === Atyp.Ipv4) len = 4;
  else if (atyp === Atyp.Ipv6) len = 16;
  else if (atyp === Atyp.Domain) {
    if (start >= buf.length) return 'short';
    len = buf[start]!;
    start++;
  } else return 'bad-atyp';
  const end = start + len;
  if (end + 2 > buf.length) return 'short';
  const raw = buf.subarray(start, end);
  const host = atyp === Atyp.Domain ? Buffer.from(raw).toString('latin1') : formatIpAddress(raw);
  return { addr: { host, port: (buf[end]! << 8) | buf[end + 1]!, atyp }, next: end + 2 };
}

/** The address field for an IP address (text) and port. */
export function encodeAddress(ip: string, port: number): Uint8Array {
  const bytes = parseIpAddress(ip) ?? new Uint8Array(4);
  const out = new Uint8Array(1 + bytes.length + 2);
  out[0] = bytes.length === 4 ? Atyp.Ipv4 : Atyp.Ipv6;
  out.set(bytes, 1);
  out[out.length - 2] = port >>> 8;
  out[out.length - 1] = port & 0xff;
  return out;
}

/** VER REP RSV + BND address (0.0.0.0:0 unless given). */
export function encodeReply(rep: Rep, bind: { ip: string; port: number } = { ip: '0.0.0.0', port: 0 }): Uint8Array {
  const addr = encodeAddress(bind.ip, bind.port);
  const out = new Uint8Array(3 + addr.length);
  out[0] = SOCKS_VERSION;
  out[1] = rep;
  out.set(addr, 3);
  return out;
}

/** A UDP relay datagram's header: RSV(2) FRAG ATYP DST.ADDR DST.PORT, then the payload. */
export interface UdpDatagram {
  dst: SocksAddr;
  payload: Uint8Array;
}

/** Null for a datagram to drop: too short, a fragment (unsupported, RFC 1928 §7 allows dropping), bad ATYP. */
export function parseUdpDatagram(buf: Uint8Array): UdpDatagram | null {
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0) return null;
  const r = readAddress(buf, 3);
  if (typeof r === 'string') return null;
  return { dst: r.addr, payload: buf.subarray(r.next) };
}

/** Wraps a payload from `src` for the client. */
export function encodeUdpDatagram(src: { ip: string; port: number }, payload: Uint8Array): Buffer {
  const addr = encodeAddress(src.ip, src.port);
  const out = Buffer.allocUnsafe(3 + addr.length + payload.length);
  out[0] = out[1] = out[2] = 0;
  out.set(addr, 3);
  out.set(payload, 3 + addr.length);
  return out;
}
