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
 * driver pass of ACK batching. First transmissions within one ms are ordered by sn (a flush writes
 * them so); a resend against a first transmission of the same ms is taken as the later one (candidate()).
 *
 * The allowance adapts as RFC 8985 §6.2 has it, with the ts echo in place of DSACK: an ACK that
 * echoes an earlier transmission than a resent segment's latest one says the original arrived, so
 * the resend was spurious. Each one widens the allowance by another srtt/8 (up to srtt); every
 * REO_PERSIST resends that prove needed narrow it a step again. On a busy host ACKs of segments sent
 * in one burst come back spread over an event-loop stall; a fixed srtt/8 read that spread as loss.
 */
import type { Segment } from './segment-store.js';

const MIN_REORDER_MS = 2;
/** The allowance grows to at most this many srtt/8 (srtt itself, RFC 8985's bound). */
const MAX_REO_MULT = 8;
/** Needed resends after which a widened allowance narrows one step. */
const REO_PERSIST = 16;

export class Rack {
  /** Clock (u32) of the latest transmission known delivered, its sn, and its RTT; rtt < 0: none yet. */
  private xmitTs = 0;
  private sn = 0;
  private rtt = -1;
  /** That transmission was a resend (it left with a full flush's resends, in sn order among them). */
  private resend = false;
  /** The least RTT any delivery showed: no resend's ACK can come back sooner. */
  private minRtt = Infinity;
  private reoMult = 1;
  private needed = 0;
  /** Clock (u32) of the last ACK or una that acknowledged anything new. */
  private progressAt = 0;
  /** Clock (u32) of the latest flush that sent anything, and whether a tail-loss probe is owed since the last progress. */
  private sentAt = 0;
  private probeOwed = false;

  /** `maxReoMult`: the widest allowance, in srtt/8 steps (see the engine's rackMaxReorder option). */
  constructor(private readonly maxReoMult = MAX_REO_MULT) {}

  /** `seg`, sent (latest) at seg.ts, is acknowledged by an ACK echoing `ts`, seen at `current`. */
  acked(seg: Segment, ts: number, current: number): void {
    if (seg.xmit > 1) this.judge(((seg.ts - ts) | 0) > 0);
    this.progressAt = current;
    this.probeOwed = true;
    // An echo of an earlier transmission than the latest may be the first or a resend: taken as the first.
    this.delivered(ts, seg.sn, current, seg.xmit > 1 && ts === seg.ts);
  }

  /**
   * `seg` left the window by the peer's una, without an ACK of its own (that came in a lost datagram,
   * or comes later in this one). Sent once: the delivered transmission is the one with seg.ts. Resent:
   * which one arrived is ambiguous, except when the una came back sooner after the resend than any
   * round trip took, which the resend cannot have made (Eifel's timing test): then the original did.
   */
  covered(seg: Segment, current: number): void {
    this.progressAt = current;
    this.probeOwed = true;
    if (seg.xmit === 1) this.delivered(seg.ts, seg.sn, current);
    else if (((current - seg.ts) | 0) < (this.minRtt * 3) / 4) this.judge(true);
  }

  /**
   * Whether `seg`'s due timeout waits, re-armed to its RTO after the last progress (RFC 6298's timer
   * restart on new data acknowledged): while ACKs bring news, a lost segment shows to RACK, so a
   * timeout then is a queue or a stalled host, not a loss. Only a tail (no progress) times out.
   */
  defers(seg: Segment, current: number): boolean {
    if (((current - seg.resendts) | 0) < 0) return false;
    const at = (this.progressAt + seg.rto) >>> 0;
    if (((current - at) | 0) >= 0) return false;
    seg.resendts = at;
    return true;
  }

  /** A flush sent segments at `current`; `probed`: one of them was a tail-loss probe. */
  sent(current: number, probed: boolean): void {
    this.sentAt = current;
    if (probed) this.probeOwed = false;
  }

  /**
   * Tail-loss probe (RFC 8985 §7; the engine's tailProbe option). RACK finds a segment lost only from
   * the delivery of one sent after it; a segment of the latest flush that sent anything has none, so
   * its loss waited for the RTO (a lost resend with the window waiting on it: ~70 ms at 40 ms RTT).
   * Such a segment is sent again `wait` ms (RACK's wait) after its send: ms until then (≤ 0: now), or
   * Infinity where no probe is owed (one per progress; then the RTO, as the RFC has it).
   */
  untilProbe(seg: Segment, current: number, wait: number): number {
    if (!this.probeOwed || ((this.sentAt - seg.ts) | 0) > 0) return Infinity;
    return wait - ((current - seg.ts) | 0);
  }

  /** A resend proved spurious, or needed: widen the reordering allowance, or narrow it after REO_PERSIST. */
  private judge(spurious: boolean): void {
    if (spurious) {
      if (this.reoMult < this.maxReoMult) this.reoMult++;
      this.needed = 0;
    } else if (this.reoMult > 1 && ++this.needed >= REO_PERSIST) {
      this.reoMult--;
      this.needed = 0;
    }
  }

  /** The transmission sent at `ts` (u32 clock), a resend or not, was delivered, seen at `current`. */
  delivered(ts: number, sn: number, current: number, resend = false): void {
    const later = this.rtt < 0 || ((ts - this.xmitTs) | 0) > 0 || (ts === this.xmitTs && ((sn - this.sn) | 0) > 0);
    if (!later) return;
    this.xmitTs = ts;
    this.sn = sn;
    this.resend = resend;
    this.rtt = Math.max(0, (current - ts) | 0);
    if (this.rtt < this.minRtt) this.minRtt = this.rtt;
  }

  /** How long after its send a candidate counts as lost (`extra` ms more), or -1 before any delivery. */
  wait(srtt: number, extra: number): number {
    if (this.rtt < 0) return -1;
    const reorder = Math.min((srtt >> 3) * this.reoMult, Math.max(srtt, srtt >> 3));
    return this.rtt + Math.max(MIN_REORDER_MS, reorder) + extra;
  }

  /**
   * Sent no later than the latest delivered transmission. Within one ms sn gives the order of first
   * transmissions, and of the resends of one full flush, but not of a resend against a first
   * transmission: a full flush's resends leave after the new segments that pacer grants sent earlier
   * in that ms, so such a resend counts as sent after them. Read by sn, a resend was judged lost one
   * RTT plus the allowance after those newer segments' ACKs, while it waited behind them in the
   * receiver's queue (every segment B got twice on the bench's clean veth).
   */
  candidate(seg: Segment): boolean {
    const d = (this.xmitTs - seg.ts) | 0;
    return d > 0 || (d === 0 && (seg.xmit === 1 || this.resend) && ((this.sn - seg.sn) | 0) > 0);
  }

  /** ms until the candidate `seg` counts as lost (≤ 0: it is). */
  untilLost(seg: Segment, current: number, wait: number): number {
    return wait - ((current - seg.ts) | 0);
  }
}
