/**
 * The flows to one peer share one path: one PathController and a round-robin ring of flows that have
 * new data waiting. A flow's KCP engine never moves new segments into flight on its own (its quota is
 * 0); pace() hands out small quotas in turn while the controller's budget lasts, so every flow gets
 * an equal share of what the path takes, and together they never send more than it. ACKs and
 * retransmissions go out whenever the engine wants them: they are charged to the budget afterwards.
 *
 * Cost per pass: O(grants), not O(flows) — a flow enters the ring when it has something to send and
 * leaves it when served; an idle flow costs nothing.
 */
import { Ring } from '../../transport/kcp/ring.js';
import type { KcpFlow } from './flow.js';
import { PathController } from './path-controller.js';
import { FecEncoder } from './path-fec.js';

/** Segments one flow may send per turn when many wait: small, so turns interleave finely. */
const QUANTUM_SEGS = 4;
/**
 * A flow's send window (the sn span from the oldest unacknowledged segment) in path BDPs: the pipe
 * itself, plus a hole at the window's start takes about a round trip to repair (RACK) while the
 * segments sent meanwhile must still fit, plus slack. And at least twice the controller's in-flight
 * cap, which also counts the standing delay of a busy host: a window of the base RTT alone keeps the
 * flow window-limited there, and then the rate it measures never grows.
 */
const WINDOW_BDPS = 3;
/** Send windows never fall below this many segments (a path with no model yet must still move). */
export const MIN_FLOW_WINDOW = 64;
/**
 * A gap this long (ms) in what the peer sends ends a quiet spell when it speaks again; for RESUME_GRACE_MS
 * after that, what it had shown before still counts: a stalled host answers its whole backlog in one
 * pass, flow by flow, and those ACKs reach us over a few of our passes, so a timer run between them
 * must not take the ones still coming for losses.
 */
const QUIET_MS = 10;
const RESUME_GRACE_MS = 10;
/**
 * While the peer is silent, one timeout probe per gap over all flows: the path's RTO floor (at least
 * MIN_PROBE_GAP_MS), doubled after each probe that met silence, up to MAX_PROBE_BACKOFF doublings
 * (a timer's backoff, for the path).
 */
const MIN_PROBE_GAP_MS = 30;
const MAX_PROBE_BACKOFF = 5;

export class PeerPath {
  readonly ctl: PathController;
  /** Adaptive FEC toward this peer, or null when it did not announce that it decodes it. */
  readonly fec: FecEncoder | null;
  /** Absolute time at which pace() should run again, Infinity when nothing waits on time. */
  wakeAt = Infinity;
  private readonly ready = new Ring<KcpFlow>(64);
  /** When the peer last sent us anything, and when it spoke again after a quiet spell (ms). */
  private heardAt = -Infinity;
  private resumedAt = -Infinity;
  /**
   * The newest send time (u32 clock) any flow's ACKs echoed: the peer reads one socket in order, so it
   * had read everything sent before; and that time as it stood before the last quiet spell. -1: none.
   */
  private answered = -1;
  private answeredBeforeQuiet = -1;
  /** When a flow of this path last resent on a timeout (ms), and how many did since the peer last spoke. */
  private probedAt = -Infinity;
  private unansweredProbes = 0;

  constructor(private readonly mss: number, fec: boolean) {
    this.ctl = new PathController({ mss });
    this.fec = fec ? new FecEncoder() : null;
  }

  /** After anything reached the flow: report its samples, and queue it if new data waits to go. */
  note(flow: KcpFlow, now: number): void {
    if (flow.retired) return; // the proxy may still touch a flow the carrier forgot
    flow.report(this.ctl, now);
    if (!flow.waitingForGrant && flow.kcp.canSlide()) {
      flow.waitingForGrant = true;
      this.ready.push(flow);
    }
  }

  /** A datagram from the peer arrived. */
  heard(now: number): void {
    if (now - this.heardAt > QUIET_MS) {
      this.answeredBeforeQuiet = this.answered;
      this.resumedAt = now;
    }
    this.heardAt = now;
    this.unansweredProbes = 0;
  }

  /** After the flow took a datagram: the newest send its ACKs echoed counts for the whole path. */
  acked(flow: KcpFlow): void {
    const ts = flow.kcp.ackedSendTs;
    if (ts >= 0 && (this.answered < 0 || ((ts - this.answered) | 0) > 0)) this.answered = ts;
  }

  /**
   * Before a flow's engine may run its timeouts: they resend only what was sent before the newest send
   * the peer has acknowledged (on any flow: what it has not read yet may still wait in its socket),
   * except for one flow per probe gap, whose timeout probes a silent path. Without this, a peer's stall
   * past the RTO cost two resends per flow in flight, all of them spurious, in one burst into the
   * waking host's socket (docs/kcp-proxy.md, "A silent peer is one event for the path").
   */
  armTimeouts(flow: KcpFlow, now: number): void {
    const kcp = flow.kcp;
    const answered = now - this.resumedAt >= RESUME_GRACE_MS ? this.answered : this.answeredBeforeQuiet;
    const gap = Math.max(MIN_PROBE_GAP_MS, this.ctl.rtoFloor()) * 2 ** Math.min(this.unansweredProbes, MAX_PROBE_BACKOFF);
    kcp.holdsTimeouts = now - this.probedAt < gap;
    // Nothing acknowledged yet: before anything in flight (a quarter of the u32 clock back).
    kcp.answeredTs = answered < 0 ? (Math.floor(now) - 0x40000000) >>> 0 : answered;
  }

  /** After a flow's step: a timeout resend (`lostBefore`: its engine's count before the step) was a probe of the path. */
  probed(flow: KcpFlow, lostBefore: number, now: number): void {
    if (flow.kcp.lostSegs === lostBefore) return;
    this.probedAt = now;
    if (now - this.heardAt > QUIET_MS) this.unansweredProbes++;
  }

  /** The flow is being forgotten: whatever it had in flight no longer counts. */
  retire(flow: KcpFlow): void {
    flow.retired = true;
    flow.unreport(this.ctl);
  }

  /** Segments a flow's send window spans: from the path's bandwidth-delay product, within [MIN_FLOW_WINDOW, maxWindow]. */
  sendWindow(maxWindow: number): number {
    const segs = Math.ceil(Math.max(WINDOW_BDPS * this.ctl.bdp(), 2 * this.ctl.inflightLimit()) / this.mss);
    return Math.max(MIN_FLOW_WINDOW, Math.min(maxWindow, segs));
  }

  get waiting(): number {
    return this.ready.length;
  }

  /**
   * Grants quotas round-robin while budget lasts. `sent(flow)` must drain what the flow queued and
   * call note() (which puts the flow back at the tail if it still has data).
   */
  pace(now: number, sent: (flow: KcpFlow) => void, maxWindow: number): void {
    const ready = this.ready;
    let budget = this.ctl.budget(now);
    while (ready.length > 0) {
      if (budget <= 0) break;
      const flow = ready.shift();
      flow.waitingForGrant = false;
      if (flow.retired || !flow.kcp.canSlide()) continue;
      const segs = Math.ceil(budget / this.mss);
      const share = Math.floor(segs / (ready.length + 1));
      const kcp = flow.kcp;
      kcp.newSegmentQuota = Math.min(segs, Math.max(QUANTUM_SEGS, share));
      kcp.rtoFloor = this.ctl.rtoFloor();
      if (this.fec) {
        this.fec.setBaseRtt(this.ctl.baseRtt);
        this.fec.backlogged = this.ctl.backlogged;
        kcp.rackExtraMs = this.fec.repairDelay;
      }
      kcp.setWindows(this.sendWindow(maxWindow), 0);
      kcp.flushNew(now);
      kcp.newSegmentQuota = 0;
      sent(flow);
      budget = this.ctl.budget(now);
    }
    if (ready.length === 0) {
      if (budget > 0) this.ctl.onAppLimited();
      this.wakeAt = Infinity;
    } else {
      // Held by the in-flight cap: an ACK will free it (note() runs then), not the clock.
      this.wakeAt = this.ctl.windowFull() ? Infinity : this.ctl.nextSendAt(now, this.mss);
    }
  }
}
