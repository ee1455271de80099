/**
 * IPv4 TCP flows keyed by (src ip, dst ip, src port << 16 | dst port) as numbers, nested, so the
 * per-packet lookup allocates nothing.
 */
export class FlowKeyMap<V> {
  private readonly bySrc = new Map<number, Map<number, Map<number, V>>>();
  private count = 0;

  get(src: number, dst: number, ports: number): V | undefined {
    return this.bySrc.get(src)?.get(dst)?.get(ports);
  }

  set(src: number, dst: number, ports: number, value: V): void {
    let byDst = this.bySrc.get(src);
    if (!byDst) this.bySrc.set(src, (byDst = new Map()));
    let byPorts = byDst.get(dst);
    if (!byPorts) byDst.set(dst, (byPorts = new Map()));
    if (!byPorts.has(ports)) this.count++;
    byPorts.set(ports, value);
  }

  delete(src: number, dst: number, ports: number): void {
    const byDst = this.bySrc.get(src);
    const byPorts = byDst?.get(dst);
    if (!byPorts?.delete(ports)) return;
    this.count--;
    if (byPorts.size === 0) byDst!.delete(dst);
    if (byDst!.size === 0) this.bySrc.delete(src);
  }

  *values(): IterableIterator<V> {
    for (const byDst of this.bySrc.values()) for (const byPorts of byDst.values()) yield* byPorts.values();
  }

  get size(): number {
    return this.count;
  }
}

/**
 * The key of an IPv6 TCP packet (TCP right after the fixed header; extension headers are not
 * followed): source and destination address and both ports as one 36-char latin1 string, with
 * `out.ports`/`out.flags` filled in; null when it is not one. Unlike IPv4 this allocates (the string).
 */
export function tcp6FlowKey(pkt: Buffer, out: { ports: number; flags: number }): string | null {
  if (pkt.length < 40 + 14 || pkt[0]! >> 4 !== 6 || pkt[6] !== 6) return null;
  out.ports = ((pkt[40]! << 24) | (pkt[41]! << 16) | (pkt[42]! << 8) | pkt[43]!) >>> 0;
  out.flags = pkt[40 + 13]!;
  return pkt.toString('latin1', 8, 44);
}

/** The same key as tcp6FlowKey, from addresses (16 bytes each) and ports. */
export function ipv6FlowKey(src: Uint8Array, dst: Uint8Array, srcPort: number, dstPort: number): string {
  const b = Buffer.alloc(36);
  b.set(src, 0);
  b.set(dst, 16);
  b.writeUInt16BE(srcPort, 32);
  b.writeUInt16BE(dstPort, 34);
  return b.toString('latin1');
}

/** The key fields of an IPv4 TCP packet, or null when it is not one (or a fragment without ports). */
export function tcpFlowKey(pkt: Uint8Array, out: { src: number; dst: number; ports: number; flags: number }): boolean {
  if (pkt.length < 20 || pkt[0]! >> 4 !== 4 || pkt[9] !== 6) return false;
  const ihl = (pkt[0]! & 0x0f) * 4;
  // A non-first fragment has no TCP header; the first one does, but later ones of the flow would not match.
  if (((pkt[6]! & 0x3f) | pkt[7]!) !== 0 || pkt.length < ihl + 14) return false;
  out.src = ((pkt[12]! << 24) | (pkt[13]! << 16) | (pkt[14]! << 8) | pkt[15]!) >>> 0;
  out.dst = ((pkt[16]! << 24) | (pkt[17]! << 16) | (pkt[18]! << 8) | pkt[19]!) >>> 0;
  out.ports = ((pkt[ihl]! << 24) | (pkt[ihl + 1]! << 16) | (pkt[ihl + 2]! << 8) | pkt[ihl + 3]!) >>> 0;
  out.flags = pkt[ihl + 13]!;
  return true;
}
