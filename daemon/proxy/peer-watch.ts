/**
 * Ties proxied flows to their peer, not to a session. A flow keeps its carrier state while the peer
 * is unreachable (its session died, its route went) and resumes when it is back; only after the peer
 * has been unreachable for the flow timeout are its flows reset toward the applications. A peer known
 * to be gone (its process closed its links, its port refused, a restart gave it a new peer id) has its
 * flows reset at once: they cannot resume, and an application must not wait for them. A node that
 * restarted is also recognised by its virtual address: a new peer id holding the address of a peer
 * that went unreachable is that peer's next life (where no goodbye or ICMP reached us).
 *
 * Sans-IO: the proxy feeds it the peer layer's events and the clock; it calls `reset(peerId, why)`.
 */
export class PeerWatch {
  /** Peers unreachable now, since when (the caller's clock). */
  private readonly unreachable = new Map<number, number>();
  /** Peers reachable at the last route change, with their virtual IPv4 (0: none). */
  private known = new Map<number, number>();
  /** The virtual IPv4 each unreachable peer had, to recognise its restart. */
  private readonly lastIpv4 = new Map<number, number>();

  constructor(
    readonly timeoutMs: number,
    private readonly reset: (peerId: number, why: string) => void,
  ) {}

  /** The peer's process is gone: its flows are dead now. */
  gone(peerId: number, why = 'peer gone (restarted or stopped)'): void {
    this.unreachable.delete(peerId);
    this.lastIpv4.delete(peerId);
    this.reset(peerId, why);
  }

  /** A direct peer's last session ended after `silentForMs` of silence: it has been away since then. */
  down(peerId: number, silentForMs: number, now: number): void {
    const since = now - silentForMs;
    const before = this.unreachable.get(peerId);
    if (before === undefined || since < before) this.unreachable.set(peerId, since);
  }

  /** The route table changed: `reachable` maps every node we can reach now to its virtual IPv4 (0: none). */
  routes(reachable: Map<number, number>, now: number): void {
    for (const [p, ipv4] of this.known) {
      if (reachable.has(p)) continue;
      if (!this.unreachable.has(p)) this.unreachable.set(p, now);
      if (ipv4 !== 0) this.lastIpv4.set(p, ipv4);
    }
    for (const p of reachable.keys()) {
      this.unreachable.delete(p);
      this.lastIpv4.delete(p);
    }
    this.known = reachable;
    if (this.lastIpv4.size === 0) return;
    const holders = new Set(reachable.values());
    for (const [p, ipv4] of this.lastIpv4) {
      if (holders.has(ipv4)) this.gone(p, 'peer restarted (a new peer id holds its address)');
    }
  }

  /** When sweep() next has a peer to reset (Infinity: none unreachable). */
  nextDeadline(): number {
    let at = Infinity;
    for (const since of this.unreachable.values()) at = Math.min(at, since + this.timeoutMs);
    return at;
  }

  /** Resets the flows of peers unreachable past the timeout. */
  sweep(now: number): void {
    for (const [peerId, since] of this.unreachable) {
      if (now - since < this.timeoutMs) continue;
      this.unreachable.delete(peerId);
      this.lastIpv4.delete(peerId);
      this.reset(peerId, `peer unreachable for ${Math.round((now - since) / 1000)} s`);
    }
  }
}
