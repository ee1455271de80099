/**
 * The ACKs an engine owes: (sn, ts) pairs gathered by input() and written by the next flush. With
 * ackRepeat, the pairs of the last REPEATS flushes are kept and written again while still above
 * rcv_nxt (KCP has no SACK, so an ACK lost above a hole would otherwise only be healed by a spurious
 * resend). Twice: with one repeat, two ACK datagrams lost in a row (a burst of drops at the sender's
 * socket, or a lossy path at 20 %, 4 % of such ACKs) still cost a resend of what the peer holds.
 */
import type { DatagramOut } from './datagram-out.js';
import { IKCP_CMD_ACK } from './segment.js';

/** How many earlier flushes' ACKs are written again (ackRepeat). */
const REPEATS = 2;

export class AckList {
  /** Pairs waiting for the next flush. */
  count = 0;
  /** The sn/ts of the last ACK the last write() wrote (0 when none): WASK/WINS carry them, as C ikcp. */
  lastSn = 0;
  lastTs = 0;
  private list = new Uint32Array(256);
  /** Pairs of the last REPEATS flushes, newest first, and how many each holds. */
  private readonly prev = Array.from({ length: REPEATS }, () => new Uint32Array(256));
  private readonly prevCounts = new Array<number>(REPEATS).fill(0);

  push(sn: number, ts: number): void {
    const i = this.count * 2;
    if (i === this.list.length) {
      const bigger = new Uint32Array(this.list.length * 2);
      bigger.set(this.list);
      this.list = bigger;
    }
    this.list[i] = sn;
    this.list[i + 1] = ts;
    this.count++;
  }

  sn(i: number): number {
    return this.list[2 * i]!;
  }

  ts(i: number): number {
    return this.list[2 * i + 1]!;
  }

  /** The pairs now waiting become the newest of the ones repeated (the oldest's buffer is reused). */
  private keepForRepeat(): void {
    const prev = this.prev;
    let oldest = prev.pop()!;
    this.prevCounts.pop();
    if (oldest.length < this.list.length) oldest = new Uint32Array(this.list.length);
    oldest.set(this.list.subarray(0, 2 * this.count));
    prev.unshift(oldest);
    this.prevCounts.unshift(this.count);
  }

  /**
   * Writes the owed ACKs (with `repeat`, the last flushes' still above rcv_nxt first) with the receiver's
   * free window `wnd` and rcv_nxt `una`, and empties the list.
   */
  write(tx: DatagramOut, wnd: number, una: number, repeat: boolean): void {
    const n = this.count;
    this.lastSn = 0;
    this.lastTs = 0;
    // Repeats first: the RTT sample is taken from a datagram's last ACK, which must be a fresh one.
    if (repeat && n > 0) this.writeRepeats(tx, wnd, una);
    for (let i = 0; i < n; i++) {
      const sn = this.sn(i);
      // kcp-go's filter against bufferbloat jitter: skip ACKs below rcv_nxt except the last one.
      if (((sn - una) | 0) >= 0 || i === n - 1) {
        this.lastSn = sn;
        this.lastTs = this.ts(i);
        tx.header(IKCP_CMD_ACK, 0, wnd, this.lastTs, sn, una, 0);
      }
    }
    this.count = 0;
  }

  /** Writes the last flushes' ACKs still above rcv_nxt again (oldest first), then keeps this flush's. */
  private writeRepeats(tx: DatagramOut, wnd: number, una: number): void {
    for (let r = REPEATS - 1; r >= 0; r--) {
      const prev = this.prev[r]!;
      for (let i = 0; i < this.prevCounts[r]!; i++) {
        const sn = prev[2 * i]!;
        if (((sn - una) | 0) < 0) continue; // una covers it now
        tx.header(IKCP_CMD_ACK, 0, wnd, prev[2 * i + 1]!, sn, una, 0);
      }
    }
    this.keepForRepeat();
  }
}
