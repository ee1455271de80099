/**
 * The ACKs an engine owes: (sn, ts) pairs gathered by input() and written by the next flush. With
 * ackRepeat, the previous flush's pairs are kept to be written once more (KCP has no SACK, so an
 * ACK lost above a hole would otherwise only be healed by a spurious resend).
 */
export class AckList {
  /** Pairs waiting for the next flush. */
  count = 0;
  /** Pairs of the previous flush, kept for one repeat. */
  prevCount = 0;
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
}
