/**
 * TCP flows of both families keyed by what readTcpFlowKey reads (packet/flow-key.ts). IPv4 flows
 * are nested by (src, dst, src port << 16 | dst port) as numbers, so their per-packet lookup
 * allocates nothing; IPv6 flows by the key's bytes as a string (one string per lookup).
 */
import type { TcpFlowKey } from '../packet/flow-key.js';

/** What set() returns and delete() takes: the flow's key, kept after its packet is gone. */
export interface StoredFlowKey {
  readonly src4: number;
  readonly dst4: number;
  readonly ports: number;
  /** IPv6 flows: the key text; null for IPv4. */
  readonly text: string | null;
}

export class FlowKeyMap<V> {
  private readonly bySrc = new Map<number, Map<number, Map<number, V>>>();
  private readonly v6 = new Map<string, V>();
  private count4 = 0;

  get(k: TcpFlowKey): V | undefined {
    if (k.family === 6) return this.v6.get(k.text());
    return this.bySrc.get(k.src4)?.get(k.dst4)?.get(k.ports);
  }

  /** The value stored under a key set() returned, if it is still there. */
  getStored(s: StoredFlowKey): V | undefined {
    if (s.text !== null) return this.v6.get(s.text);
    return this.bySrc.get(s.src4)?.get(s.dst4)?.get(s.ports);
  }

  set(k: TcpFlowKey, value: V): StoredFlowKey {
    if (k.family === 6) {
      const text = k.text();
      this.v6.set(text, value);
      return { src4: 0, dst4: 0, ports: k.ports, text };
    }
    let byDst = this.bySrc.get(k.src4);
    if (!byDst) this.bySrc.set(k.src4, (byDst = new Map()));
    let byPorts = byDst.get(k.dst4);
    if (!byPorts) byDst.set(k.dst4, (byPorts = new Map()));
    if (!byPorts.has(k.ports)) this.count4++;
    byPorts.set(k.ports, value);
    return { src4: k.src4, dst4: k.dst4, ports: k.ports, text: null };
  }

  delete(s: StoredFlowKey): void {
    if (s.text !== null) {
      this.v6.delete(s.text);
      return;
    }
    const byDst = this.bySrc.get(s.src4);
    const byPorts = byDst?.get(s.dst4);
    if (!byPorts?.delete(s.ports)) return;
    this.count4--;
    if (byPorts.size === 0) byDst!.delete(s.dst4);
    if (byDst!.size === 0) this.bySrc.delete(s.src4);
  }

  *values(): IterableIterator<V> {
    for (const byDst of this.bySrc.values()) for (const byPorts of byDst.values()) yield* byPorts.values();
    yield* this.v6.values();
  }

  get size(): number {
    return this.count4 + this.v6.size;
  }
}
