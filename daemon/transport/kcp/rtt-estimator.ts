/**
 * kcp-go's RTT estimator (update_ack): RFC 6298 smoothing with an 8× lighter weight for samples
 * below srtt − rttvar, int32 arithmetic as kcp-go, and RTO = srtt + max(interval, 4·rttvar)
 * clamped to [minRto, IKCP_RTO_MAX].
 */
import { IKCP_RTO_DEF, IKCP_RTO_MAX } from './segment.js';

export class RttEstimator {
  srtt = 0;
  rttvar = 0;
  rto = IKCP_RTO_DEF;
  minRto: number;
  /** Samples taken, and the last one (ms). */
  samples = 0;
  last = 0;

  constructor(minRto: number) {
    this.minRto = minRto;
  }

  update(rtt: number, interval: number): void {
    this.samples++;
    this.last = rtt;
    if (this.srtt === 0) {
      this.srtt = rtt;
      this.rttvar = rtt >> 1;
    } else {
      let delta = (rtt - this.srtt) | 0;
      this.srtt = (this.srtt + (delta >> 3)) | 0;
      if (delta < 0) delta = -delta;
      if (rtt < this.srtt - this.rttvar) this.rttvar = (this.rttvar + ((delta - this.rttvar) >> 5)) | 0;
      else this.rttvar = (this.rttvar + ((delta - this.rttvar) >> 2)) | 0;
    }
    const rto = (this.srtt >>> 0) + Math.max(interval, (this.rttvar << 2) >>> 0);
    this.rto = Math.min(Math.max(this.minRto, rto), IKCP_RTO_MAX);
  }
}
