/**
 * The KCP carrier's flow tables: the flows this node opened and the ones it accepted, each by peer
 * then conv, and the flows forgotten recently. A conv is unique only per (initiator, acceptor) pair,
 * so a datagram's direction (which of the two packet types it came as) picks the table; a late
 * segment of a forgotten flow is answered with how that flow ended instead of being taken for a new
 * flow (endpoint.ts).
 */
import type { KcpFlow } from './flow.js';

interface Gone {
  at: number;
  /** It finished cleanly: its late segments get CLOSED, not RESET. */
  clean: boolean;
}

export class FlowTables {
  /** Flows this node opened, by peer then conv. */
  private readonly initiated = new Map<number, Map<number, KcpFlow>>();
  /** Flows this node accepted, by peer then conv. */
  private readonly accepted = new Map<number, Map<number, KcpFlow>>();
  /** Flows forgotten recently, "peer/role/conv" → when; insertion order is time order. */
  private readonly forgotten = new Map<string, Gone>();
  /** Flows in the tables (initiated and accepted). */
  live = 0;

  /** The flow a datagram of conv `conv` from `peerId` belongs to: an acceptor's if the initiator sent it. */
  find(peerId: number, fromInitiator: boolean, conv: number): KcpFlow | undefined {
    return (fromInitiator ? this.accepted : this.initiated).get(peerId)?.get(conv);
  }

  /** The first conv from `start` on that no flow this node opened toward `peerId` uses. */
  freeConv(peerId: number, start: number): number {
    const table = this.initiated.get(peerId);
    let conv = start >>> 0;
    while (table?.has(conv)) conv = (conv + 1) >>> 0;
    return conv;
  }

  add(flow: KcpFlow): void {
    const tables = flow.role === 'initiator' ? this.initiated : this.accepted;
    let t = tables.get(flow.peerId);
    if (!t) tables.set(flow.peerId, (t = new Map()));
    t.set(flow.kcp.conv, flow);
    this.live++;
  }

  /** How a forgotten flow ended, if it is still remembered. */
  gone(peerId: number, role: 'initiator' | 'acceptor', conv: number): Gone | undefined {
    return this.forgotten.get(forgottenKey(peerId, role, conv));
  }

  /**
   * Takes the flow out of its table and remembers how it ended. Returns whether its peer has no flow
   * left in either table (the caller then drops the peer's per-path state).
   */
  remove(flow: KcpFlow, now: number): boolean {
    this.forgotten.set(forgottenKey(flow.peerId, flow.role, flow.kcp.conv), { at: now, clean: !flow.isReset });
    const tables = flow.role === 'initiator' ? this.initiated : this.accepted;
    const t = tables.get(flow.peerId);
    if (t?.delete(flow.kcp.conv)) this.live--;
    if (t && t.size === 0) tables.delete(flow.peerId);
    return !this.initiated.has(flow.peerId) && !this.accepted.has(flow.peerId);
  }

  /** Forgets the flows that ended `keepMs` or more before `now`. */
  expire(now: number, keepMs: number): void {
    for (const [key, gone] of this.forgotten) {
      if (now - gone.at < keepMs) break;
      this.forgotten.delete(key);
    }
  }

  /** Every flow with `peerId`, either role (a copy: the caller may forget them meanwhile). */
  peerFlows(peerId: number): KcpFlow[] {
    return [...(this.initiated.get(peerId)?.values() ?? []), ...(this.accepted.get(peerId)?.values() ?? [])];
  }

  /** Flows in the tables. */
  get count(): number {
    let n = 0;
    for (const t of this.initiated.values()) n += t.size;
    for (const t of this.accepted.values()) n += t.size;
    return n;
  }
}

function forgottenKey(peerId: number, role: 'initiator' | 'acceptor', conv: number): string {
  return `${peerId}/${role}/${conv}`;
}
