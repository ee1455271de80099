/**
 * Detects the peer's (ds, ps) from the data/parity flag pattern of the shards it
 * receives (kcp-go's autotune, docs/kcptun-wire.md §3): a sender only keeps the strict
 * layout "ds data, then ps parity, seqids contiguous".
 */

const SAMPLES = 258;

export class AutoTune {
  private readonly isData = new Uint8Array(SAMPLES);
  private readonly seq = new Float64Array(SAMPLES).fill(-1);

  sample(isData: boolean, seqid: number): void {
    const i = seqid % SAMPLES;
    this.isData[i] = isData ? 1 : 0;
    this.seq[i] = seqid;
  }

  /**
   * The length of the first complete run of `data` (true) or parity (false) flags,
   * from a rising edge to a falling edge over consecutive seqids; -1 when there is none yet.
   */
  findPeriod(data: boolean): number {
    const level = data ? 1 : 0;
    const { isData, seq } = this;
    let left = -1;
    for (let i = 1; i < SAMPLES; i++) {
      if (isData[i - 1] !== level && isData[i] === level && seq[i - 1] >= 0 && seq[i - 1] + 1 === seq[i]) {
        left = i;
        break;
      }
    }
    if (left < 0) return -1;
    for (let i = left + 1; i < SAMPLES; i++) {
      if (seq[i - 1] + 1 !== seq[i]) return -1;
      if (isData[i] !== level) return i - left;
    }
    return -1;
  }

  reset(): void {
    this.seq.fill(-1);
  }
}
