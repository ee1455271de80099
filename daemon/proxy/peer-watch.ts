/**
 * Ties proxied flows to their peer, not to a session. A flow keeps its carrier state while the peer
 * is unreachable (its session died, its route went) and resumes when it is back; only after the peer
 * has been unreachable for the flow timeout are its flows reset toward the applications. A peer known
 * to be gone (its process closed its links, its port refused, a restart gave it a new peer id) has its
 * flows reset at once: they cannot resume, and an application must not wait for them.
 *
 * Sans-IO: the proxy feeds it the peer layer's events and the clock; it calls `reset(peerId, why)`.
 */
export class PeerWatch {
  /** Peers unreachable now, since when (the caller's clock). */
  private readonly unreachable = new Map<number, number>();
  /** Peers reachable at the last route change. */
  private known = new Set<number>();

  constructor(
    readonly timeoutMs: number,
    private readonly reset: (peerId: number, why: string) => void,
  ) {}

  /** The peer's process is gone: its flows are dead now. */
  gone(peerId: number): void {
    this.unreachable.delete(peerId);
    this.reset(peerId, 'peer gone (restarted or stopped)');
  }

  /** A direct peer's last session ended after `silentForMs` of silence: it has been away since then. */
  down(peerId: number, silentForMs: number, now: number): void {
    const since = now - silentForMs;
    const before = this.unreachable.get(peerId);
    if (before === undefined || since < before) this.unreachable.set(peerId, since);
  }

  /** The route table changed: `reachable` lists every node we can reach now. */
  routes(reachable: Iterable<number>, now: number): void {
    const next = new Set(reachable);
    for (const p of this.known) if (!next.has(p) && !this.unreachable.has(p)) this.unreachable.set(p, now);
    for (const p of next) this.unreachable.delete(p);
    this.known = next;
  }

  /** Resets the flows of peers unreachable past the timeout. */
  sweep(now: number): void {
    for (const [peerId, since] of this.unreachable) {
      if (now - since < this.timeoutMs) continue;
      this.unreachable.delete(peerId);
      this.reset(peerId, `peer unreachable for ${Math.round((now - since) / 1000)} s`);
    }
  }
}
