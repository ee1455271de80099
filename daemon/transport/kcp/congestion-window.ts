/**
 * kcp-go's congestion window (nc=0 only): slow start, then additive increase as una advances; rate
 * halving on a fast or early resend and back to one segment on a timeout. Loss-based, so the proxy
 * carrier runs with nc=1 and paces from its path controller instead.
 */
import { IKCP_THRESH_INIT, IKCP_THRESH_MIN } from './segment.js';

export class CongestionWindow {
  cwnd = 0; // kcp-go starts at 0: with nc=0 the first flush sends nothing
  private incr = 0;
  private ssthresh = IKCP_THRESH_INIT;

  constructor(private readonly mss: number) {}

  /** una advanced; the peer's window caps the growth. */
  grow(rmtWnd: number): void {
    if (this.cwnd >= rmtWnd) return;
    const mss = this.mss;
    if (this.cwnd < this.ssthresh) {
      this.cwnd++;
      this.incr += mss;
    } else {
      if (this.incr < mss) this.incr = mss;
      this.incr += Math.floor((mss * mss) / this.incr) + (mss >>> 4);
      if ((this.cwnd + 1) * mss <= this.incr) this.cwnd = Math.floor((this.incr + mss - 1) / mss);
    }
    if (this.cwnd > rmtWnd) {
      this.cwnd = rmtWnd;
      this.incr = rmtWnd * mss;
    }
  }

  /**
   * After a flush: `changed` fast/early resends, `lost` timeouts, `inFlight` = snd_nxt − snd_una, `wnd`
   * the window the flush used, `resent` the fast-resend threshold (0xFFFFFFFF when off).
   */
  afterFlush(changed: number, lost: number, inFlight: number, wnd: number, resent: number): void {
    if (changed > 0) {
      // Rate halving. With resend=0, `resent` is 0xFFFFFFFF and kcp-go's u32 sum wraps to ssthresh−1.
      this.ssthresh = Math.max(inFlight >>> 1, IKCP_THRESH_MIN);
      this.cwnd = (this.ssthresh + resent) >>> 0;
      this.incr = (this.cwnd * this.mss) >>> 0;
    }
    if (lost > 0) {
      this.ssthresh = Math.max(wnd >>> 1, IKCP_THRESH_MIN);
      this.cwnd = 1;
      this.incr = this.mss;
    }
    if (this.cwnd < 1) {
      this.cwnd = 1;
      this.incr = this.mss;
    }
  }
}
