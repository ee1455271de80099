/**
 * The connections a QuicCarrier opened whose handshake completed (one per peer), and since when each
 * has carried no flow. Keep-alives would hold an unused connection forever, so one idle for
 * `idleCloseMs` is closed; only the initiator closes (the acceptor could race a stream the initiator
 * opens). A flow waiting on a connection listed here has been heard from (its peer's QUIC answered).
 */
import type { Logger } from '../../log.js';
import type { QuicEndpoint } from './endpoint.js';

export class IdleConnections {
  /** Peer → our connection, with when it last carried no flow (Infinity while it carries some). */
  private readonly byPeer = new Map<number, { conn: number; idleSince: number }>();

  constructor(private readonly idleCloseMs: number) {}

  /** Our connection to `peerId` completed its handshake. */
  established(peerId: number, conn: number): void {
    this.byPeer.set(peerId, { conn, idleSince: Infinity });
  }

  has(peerId: number): boolean {
    return this.byPeer.has(peerId);
  }

  connectionTo(peerId: number): number | undefined {
    return this.byPeer.get(peerId)?.conn;
  }

  lost(peerId: number, conn: number): void {
    if (this.byPeer.get(peerId)?.conn === conn) this.byPeer.delete(peerId);
  }

  /** Whether our connection to `peerId` carries (or has waiting) flows now. */
  note(peerId: number, busy: boolean, now: number): void {
    const c = this.byPeer.get(peerId);
    if (!c) return;
    if (busy) c.idleSince = Infinity;
    else if (c.idleSince === Infinity) c.idleSince = now;
  }

  /** When the next idle connection is due to close; Infinity: none. */
  deadline(): number {
    let at = Infinity;
    for (const c of this.byPeer.values()) if (c.idleSince + this.idleCloseMs < at) at = c.idleSince + this.idleCloseMs;
    return at;
  }

  /** Forgets and closes (on `ep`) the connections idle for idleCloseMs by `now`. */
  closeExpired(now: number, ep: Pick<QuicEndpoint, 'close'>, log: Logger | undefined): void {
    for (const [peerId, c] of this.byPeer) {
      if (now - c.idleSince < this.idleCloseMs) continue;
      this.byPeer.delete(peerId);
      log?.debug('QUIC connection closed: idle', { peer: peerId, conn: c.conn, idleMs: now - c.idleSince });
      try {
        ep.close(c.conn, 0, now);
      } catch {
        // Already gone inside the core: its connection-lost event is on the way.
      }
    }
  }
}
