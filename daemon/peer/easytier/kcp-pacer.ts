/**
 * Pacing for the kcp-sys connections to one EasyTier node: one rate model (kcp-rate.ts) shared by
 * every connection to that node, and a round-robin ring of connections with new data waiting. A
 * connection's ikcp never moves new segments into flight on its own (its quota stays 0); pace() grants
 * small quotas in turn while the model's budget lasts. ACKs and retransmissions go whenever ikcp wants
 * them and are charged afterwards.
 *
 * Why not ikcp's own windows, as kcp-sys runs them: with congestion control off (kcp-sys), every
 * connection puts its whole window (1024 segments) on the link at once and resends whatever the
 * receiver's socket dropped; twenty flows at once overflowed EasyTier's UDP socket until its pings
 * were lost and it dropped the peer link. With ikcp's congestion window on instead, the window starts
 * at ssthresh 2, grows by about one segment per ACK *datagram* (EasyTier batches its ACKs every
 * 10 ms) and falls to one segment on every timeout: 3 MB/s on a clean link, and a stall at 5 % loss.
 * The model reads random loss as loss (resent, and paced that much faster), not as congestion, and
 * keeps the receiver's queue short. Nothing of it is on the wire: ikcp sees an ordinary sender.
 */
import { Ring } from '../../transport/kcp/ring.js';
import type { Kcp } from '../../transport/kcp/kcp.js';
import { KcpSampler } from '../../transport/kcp/sampler.js';
import { EtKcpRate } from './kcp-rate.js';

/** Segments one connection may send per turn when several wait: small, so turns interleave finely. */
const QUANTUM_SEGS = 4;

/** One connection's engine, and its counters as last reported to the controller. */
export class PacedKcp<T = unknown> {
  waiting = false;
  retired = false;
  readonly sampler: KcpSampler;

  constructor(readonly kcp: Kcp, readonly owner: T) {
    kcp.newSegmentQuota = 0;
    this.sampler = new KcpSampler(kcp);
  }
}

export class EtKcpPacer<T> {
  readonly ctl: EtKcpRate;
  /** Absolute time at which pace() should run again; Infinity when only an ACK can free a send. */
  wakeAt = Infinity;
  /** Connections sharing the path (the pacer is dropped when none is left). */
  members = 0;
  private readonly ready = new Ring<PacedKcp<T>>(16);

  constructor(mss: number) {
    this.ctl = new EtKcpRate(mss);
  }

  /** `bytes` left for the peer on this path (data, resends, ACKs, envelopes: all cost capacity). */
  onSent(bytes: number, now: number): void {
    this.ctl.onSent(bytes, now);
  }

  /** After anything reached the connection: report its samples, and queue it if new data waits to go. */
  note(p: PacedKcp<T>, now: number): void {
    if (p.retired) return;
    p.sampler.report(this.ctl, now);
    if (!p.waiting && p.kcp.canSlide()) {
      p.waiting = true;
      this.ready.push(p);
    }
  }

  retire(p: PacedKcp<T>): void {
    p.retired = true;
    p.sampler.unreport(this.ctl);
  }

  /** Grants quotas round-robin while the budget lasts; `sent(p)` collects what the engine queued. */
  pace(now: number, sent: (p: PacedKcp<T>) => void): void {
    const ready = this.ready;
    let budget = this.ctl.budget(now);
    while (ready.length > 0 && budget > 0) {
      const p = ready.shift();
      p.waiting = false;
      if (p.retired || !p.kcp.canSlide()) continue;
      const segs = Math.ceil(budget / p.kcp.mss);
      const kcp = p.kcp;
      kcp.newSegmentQuota = Math.min(segs, Math.max(QUANTUM_SEGS, Math.floor(segs / (ready.length + 1))));
      kcp.flushNew(now);
      kcp.newSegmentQuota = 0;
      sent(p);
      this.note(p, now);
      budget = this.ctl.budget(now);
    }
    if (ready.length === 0) {
      if (budget > 0) this.ctl.onAppLimited();
      this.wakeAt = Infinity;
    } else {
      // Held by the in-flight cap: an ACK frees it (note() and pace() run then), not the clock.
      this.wakeAt = this.ctl.windowFull() ? Infinity : this.ctl.nextSendAt(now, ready.get(0).kcp.mss);
    }
  }
}
