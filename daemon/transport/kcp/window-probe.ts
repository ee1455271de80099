/**
 * KCP's window probing: while the peer advertises a zero window, ask it (WASK) after probeInit ms and
 * then at 1.5× growing intervals up to IKCP_PROBE_LIMIT; answer its asks (and a window that reopened)
 * with WINS. kcp-go's probe / ts_probe / probe_wait.
 */
import { IKCP_PROBE_LIMIT } from './segment.js';

export const ASK_SEND = 1; // a WASK is due
export const ASK_TELL = 2; // a WINS is due

export class WindowProbe {
  /** ASK_* bits due in the next flush. */
  due = 0;
  private at = 0;
  private wait = 0;

  constructor(private readonly init: number) {}

  /** Called by every full flush with the peer's window; sets ASK_SEND when a probe is due. */
  check(rmtWnd: number, current: number): void {
    if (rmtWnd !== 0) {
      this.at = 0;
      this.wait = 0;
    } else if (this.wait === 0) {
      this.wait = this.init;
      this.at = (current + this.wait) >>> 0;
    } else if (((current - this.at) | 0) >= 0) {
      if (this.wait < this.init) this.wait = this.init;
      this.wait = Math.min(this.wait + (this.wait >>> 1), IKCP_PROBE_LIMIT);
      this.at = (current + this.wait) >>> 0;
      this.due |= ASK_SEND;
    }
  }
}
