/**
 * IP addresses as bytes (4 or 16, network order), the form the views and builders use, and their
 * text forms. Parsing returns undefined on bad input rather than throwing (input may be config).
 */
import { isIPv4, isIPv6 } from 'node:net';

export function parseIpv4Address(text: string): Uint8Array | undefined {
  if (!isIPv4(text)) return undefined;
  return Uint8Array.from(text.split('.'), Number);
}

export function parseIpv6Address(text: string): Uint8Array | undefined {
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let s = text;
  const out = new Uint8Array(16);
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    // Embedded IPv4 tail (e.g. ::ffff:1.2.3.4): becomes the last two groups.
    out.set(parseIpv4Address(dotted[1]!)!, 12);
    s = s.slice(0, dotted.index) + '0:0';
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const groups = (part: string | undefined): number[] => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  for (let i = 0; i < 8; i++) {
    if (dotted && i >= 6) break;
    out[i * 2] = all[i]! >> 8;
    out[i * 2 + 1] = all[i]! & 0xff;
  }
  return out;
}

/** Either family, decided by the text. */
export function parseIpAddress(text: string): Uint8Array | undefined {
  return text.includes(':') ? parseIpv6Address(text) : parseIpv4Address(text);
}

/** Text form: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run as "::", mapped IPv4 dotted). */
export function formatIpAddress(addr: Uint8Array): string {
  if (addr.length === 4) return addr.join('.');
  if (addr.subarray(0, 10).every((b) => b === 0) && addr[10] === 0xff && addr[11] === 0xff) {
    return `::ffff:${addr.subarray(12).join('.')}`;
  }
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((addr[i]! << 8) | addr[i + 1]!);
  let bestStart = -1;
  let bestLen = 1; // RFC 5952: a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}
