/**
 * Whether a flush must look at the segments already in flight, or may skip them. A flush runs per
 * flow on every timer tick (the interval) and after every pass that brought ACKs; each one visited the
 * whole snd_buf to find resends, so with windows of thousands of segments the scans were most of a
 * sending node's CPU while nothing had changed. What the last full scan found is kept here: a scan is
 * needed again only after input() (ACKs change what is acked, RACK's newest delivery, the duplicate-ACK
 * counts), once its earliest deadline (resend or RACK loss) has come, when RACK's wait got shorter, or
 * when a segment with duplicate ACKs meets a tail (kcp-go's early retransmit).
 */
/**
 * "No deadline" for a flush's earliest-deadline search. Not 0x7fffffff: `current + earliest` then leaves
 * the small-integer range and the flush's optimised code is thrown away ("overflow") the first time
 * nothing is in flight. The daemons' clock (nowMs) counts ms since the process started, so the sum stays
 * small for 12 days; any clock stays correct (u32 arithmetic), only that deopt may come back.
 */
export const NO_DEADLINE = 0x3fffffff;

export class FlushScan {
  /** input() came since the last full scan. */
  stale = true;
  /** The earliest resend or RACK-loss time found (u32 clock), folded with newer segments' own. */
  private dueAt = 0;
  private rackWait = 0;
  private fastack = false;

  /** Whether the old segments may be skipped now (`tail`: the engine's early-retransmit condition). */
  canSkip(current: number, rackWait: number, tail: boolean): boolean {
    return !this.stale && ((current - this.dueAt) | 0) < 0 && rackWait >= this.rackWait && !(tail && this.fastack);
  }

  /**
   * After a flush visited all segments (`full`) or only new ones: records what it found (`earliest`:
   * ms to its earliest deadline, NO_DEADLINE for none; `fastack`: a segment still has duplicate ACKs)
   * and returns the ms until the next deadline of any segment in flight.
   */
  record(full: boolean, current: number, earliest: number, rackWait: number, fastack: boolean): number {
    if (full) {
      this.stale = false;
      this.dueAt = (current + earliest) >>> 0;
      this.rackWait = rackWait;
      this.fastack = fastack;
      return earliest;
    }
    if (((current + earliest - this.dueAt) | 0) < 0) this.dueAt = (current + earliest) >>> 0;
    if (fastack) this.fastack = true;
    const untilDue = (this.dueAt - current) | 0;
    return untilDue > 0 && untilDue < earliest ? untilDue : earliest;
  }
}
