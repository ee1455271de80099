/** IPv4 addresses as u32 numbers, the form route lookups use (one number compare per entry). */
import { parseIpv4Address } from '../packet/address.js';
import { readU32 } from '../packet/bytes.js';

export function ipv4ToU32(text: string): number | null {
  const b = parseIpv4Address(text);
  return b ? readU32(b, 0) : null;
}

export function u32ToIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export interface Ipv4Prefix {
  net: number;
  prefix: number;
}

/** "a.b.c.d/n" -> network (host bits cleared) and length; null when malformed. */
export function parseIpv4Prefix(text: string): Ipv4Prefix | null {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text.trim());
  const addr = m ? ipv4ToU32(m[1]!) : null;
  const prefix = m ? Number(m[2]) : 99;
  if (addr === null || prefix > 32) return null;
  return { net: (addr & prefixMask(prefix)) >>> 0, prefix };
}

/** The range other nodes route to for a proxy entry: the mapped CIDR of "real->mapped", else the CIDR. */
export function advertisedProxyPrefix(entry: string): Ipv4Prefix | null {
  const arrow = entry.indexOf('->');
  return parseIpv4Prefix(arrow >= 0 ? entry.slice(arrow + 2) : entry);
}

/** Reads the destination address of an IPv4 packet as a u32 (caller checked the version). */
export function ipv4Destination(packet: Uint8Array, at = 0): number {
  return readU32(packet, at + 16);
}
