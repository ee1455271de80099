/**
 * What an outer pacer learns from one engine: the deltas of its counters (RTT samples, first and
 * repeated transmissions, bytes in flight, deliveries) since the last report. One sampler per engine;
 * the proxy carrier's path controller and the EasyTier pacer's rate model both read engines this way.
 */
import type { Kcp } from './kcp.js';

/** The controller side: a path's model, shared by every engine on that path. */
export interface KcpSampleSink {
  /** Segment bytes (headers included) in flight over all engines reporting here. */
  inflight: number;
  onRtt(rtt: number, now: number): void;
  /** `newSegs` first transmissions and `retxSegs` retransmissions since the last report. */
  onSegments(newSegs: number, retxSegs: number): void;
  /** Segment bytes (headers included) acknowledged for the first time, and how many segments. */
  onDelivered(bytes: number, now: number, segs: number): void;
}

export class KcpSampler {
  private seenRtts = 0;
  private seenNew = 0;
  private seenRetx = 0;
  private seenFlight = 0;
  private seenDelivered = 0;
  private seenDeliveredSegs = 0;

  constructor(private readonly kcp: Kcp) {}

  /** Hands the engine's new samples to the controller. */
  report(ctl: KcpSampleSink, now: number): void {
    const k = this.kcp;
    if (k.rttSamples !== this.seenRtts) {
      this.seenRtts = k.rttSamples;
      ctl.onRtt(k.lastRtt, now);
    }
    if (k.newSegsSent !== this.seenNew || k.retransSegs !== this.seenRetx) {
      ctl.onSegments(k.newSegsSent - this.seenNew, k.retransSegs - this.seenRetx);
      this.seenNew = k.newSegsSent;
      this.seenRetx = k.retransSegs;
    }
    ctl.inflight += k.flightBytes - this.seenFlight;
    this.seenFlight = k.flightBytes;
    if (k.deliveredBytes !== this.seenDelivered) {
      ctl.onDelivered(k.deliveredBytes - this.seenDelivered, now, k.deliveredSegs - this.seenDeliveredSegs);
      this.seenDelivered = k.deliveredBytes;
      this.seenDeliveredSegs = k.deliveredSegs;
    }
  }

  /** The engine leaves the path: what it had in flight stops counting. */
  unreport(ctl: KcpSampleSink): void {
    ctl.inflight -= this.seenFlight;
    this.seenFlight = 0;
  }
}
