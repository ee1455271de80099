/**
 * Time-based loss detection for the engine's `rack` option (RACK, RFC 8985, on KCP's ms clock).
 *
 * Why not duplicate ACKs: kcp-go counts every ACK of a later-sent segment as a duplicate, so a burst
 * of ACKs that overtakes a late one, or one lost ACK datagram (KCP has no SACK), resends segments
 * the peer already holds; and a lost retransmission waits for the RTO. RACK instead asks one
 * question per segment: was something sent after it delivered, and has more than that one's RTT
 * plus a reordering allowance passed since it was sent? KCP echoes the ts of the very transmission
 * that arrived, so every ACK gives an unambiguous send time and RTT, retransmissions included.
 *
 * The allowance is srtt/8 (the brief's 1.125 × RTT), at least 2 ms: the clock's 1 ms grain and one
 * driver pass of ACK batching. Sends within one ms are ordered by sn (a flush writes them so).
 */
import type { Segment } from './segment-store.js';

const MIN_REORDER_MS = 2;

export class Rack {
  /** Clock (u32) of the latest transmission known delivered, its sn, and its RTT; rtt < 0: none yet. */
  private xmitTs = 0;
  private sn = 0;
  private rtt = -1;

  /** The transmission sent at `ts` (u32 clock) was delivered, seen at `current`. */
  delivered(ts: number, sn: number, current: number): void {
    const later = this.rtt < 0 || ((ts - this.xmitTs) | 0) > 0 || (ts === this.xmitTs && ((sn - this.sn) | 0) > 0);
    if (!later) return;
    this.xmitTs = ts;
    this.sn = sn;
    this.rtt = Math.max(0, (current - ts) | 0);
  }

  /** How long after its send a candidate counts as lost (`extra` ms more), or -1 before any delivery. */
  wait(srtt: number, extra: number): number {
    return this.rtt < 0 ? -1 : this.rtt + Math.max(MIN_REORDER_MS, srtt >> 3) + extra;
  }

  /** Sent no later than the latest delivered transmission (same ms: lower sn first). */
  candidate(seg: Segment): boolean {
    const d = (this.xmitTs - seg.ts) | 0;
    return d > 0 || (d === 0 && ((this.sn - seg.sn) | 0) > 0);
  }

  /** ms until the candidate `seg` counts as lost (≤ 0: it is). */
  untilLost(seg: Segment, current: number, wait: number): number {
    return wait - ((current - seg.ts) | 0);
  }
}
