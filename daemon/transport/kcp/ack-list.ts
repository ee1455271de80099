/**
 * The ACKs an engine owes: (sn, ts) pairs gathered by input() and written by the next flush. With
 * ackRepeat, the previous flush's pairs are kept to be written once more (KCP has no SACK, so an
 * ACK lost above a hole would otherwise only be healed by a spurious resend).
 */
import type { DatagramOut } from './datagram-out.js';
import { IKCP_CMD_ACK } from './segment.js';

export class AckList {
  /** Pairs waiting for the next flush. */
  count = 0;
  /** Pairs of the previous flush, kept for one repeat. */
  prevCount = 0;
  /** The sn/ts of the last ACK the last write() wrote (0 when none): WASK/WINS carry them, as C ikcp. */
  lastSn = 0;
  lastTs = 0;
  private list = new Uint32Array(256);
  private prev = new Uint32Array(256);

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

  prevSn(i: number): number {
    return this.prev[2 * i]!;
  }

  prevTs(i: number): number {
    return this.prev[2 * i + 1]!;
  }

  /** The pairs now waiting become the ones repeated next time. */
  keepForRepeat(): void {
    if (this.prev.length < this.list.length) this.prev = new Uint32Array(this.list.length);
    this.prev.set(this.list.subarray(0, 2 * this.count));
    this.prevCount = this.count;
  }

  /**
   * Writes the owed ACKs (with `repeat`, last flush's still above rcv_nxt first) with the receiver's
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

  /** Writes last flush's ACKs still above rcv_nxt again, then keeps this flush's for the next one. */
  private writeRepeats(tx: DatagramOut, wnd: number, una: number): void {
    for (let i = 0; i < this.prevCount; i++) {
      const sn = this.prevSn(i);
      if (((sn - una) | 0) < 0) continue; // una covers it now
      tx.header(IKCP_CMD_ACK, 0, wnd, this.prevTs(i), sn, una, 0);
    }
    this.keepForRepeat();
  }
}
