/**
 * The flows to one peer share one path: one PathController and a round-robin ring of flows that have
 * new data waiting. A flow's KCP engine never moves new segments into flight on its own (its quota is
 * 0); pace() hands out small quotas in turn while the controller's budget lasts, so every flow gets
 * an equal share of what the path takes, and together they never send more than it. ACKs and
 * retransmissions go out whenever the engine wants them: they are charged to the budget afterwards.
 * So does a flow's first segment (its OPEN, or the STATUS answering one): it goes ahead of the ring,
 * in the pass that queued it. Behind a ring of bulk flows it would wait a whole turn of the ring, and on
 * a loaded host with a thousand flows that was longer than the proxy waits for an answer before it
 * falls back to plain packets (docs/kcp-proxy.md).
 *
 * Cost per pass: O(grants), not O(flows) — a flow enters the ring when it has something to send and
 * leaves it when served; an idle flow costs nothing.
 */
import { Ring } from '../../transport/kcp/ring.js';
import type { KcpFlow } from './flow.js';
import { PathController } from './path-controller.js';
import { FecEncoder } from './path-fec.js';

/**
 * Segments one flow may send per turn when many wait. Small enough that turns interleave finely, but
 * a run: the receiver writes what one pass brought a flow in one call to its application's socket,
 * and a write costs per call (turns of 4 left ~1 segment per write at 1,000 flows).
 */
export const QUANTUM_SEGS = 16;
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

export class PeerPath {
  readonly ctl: PathController;
  /** Adaptive FEC toward this peer, or null when it did not announce that it decodes it. */
  readonly fec: FecEncoder | null;
  /** Absolute time at which pace() should run again, Infinity when nothing waits on time. */
  wakeAt = Infinity;
  private readonly ready = new Ring<KcpFlow>(64);
  /** Flows whose first segment waits: served before `ready`, outside the budget. */
  private readonly starting = new Ring<KcpFlow>(16);
  /** When a datagram from this peer last reached the carrier, any flow's (-Infinity: never). */
  heardAt = -Infinity;

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
      (flow.firstSent ? this.ready : this.starting).push(flow);
    }
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
    // One segment each: the OPEN (or STATUS) is the first frame, and it fits in one.
    while (this.starting.length > 0) this.grant(this.starting.shift(), 1, now, sent, maxWindow);
    const ready = this.ready;
    let budget = this.ctl.budget(now);
    while (ready.length > 0) {
      if (budget <= 0) break;
      const segs = Math.ceil(budget / this.mss);
      const share = Math.floor(segs / ready.length);
      this.grant(ready.shift(), Math.min(segs, Math.max(QUANTUM_SEGS, share)), now, sent, maxWindow);
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

  /** Lets `flow` move up to `quota` new segments into flight now. */
  private grant(flow: KcpFlow, quota: number, now: number, sent: (flow: KcpFlow) => void, maxWindow: number): void {
    flow.waitingForGrant = false;
    if (flow.retired || !flow.kcp.canSlide()) return;
    flow.firstSent = true;
    const kcp = flow.kcp;
    kcp.newSegmentQuota = quota;
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
  }
}
