/**
 * One congestion controller per peer path, shared by every KCP flow to that peer. Sans-IO: the
 * carrier reports what it sent, what was acknowledged and the RTT samples, each with `now`; the
 * controller answers how many bytes may go now (budget), how many may be in flight (inflightLimit)
 * and when the next byte may go (nextSendAt).
 *
 * The model is BBR's (delivery rate and minimum RTT, not loss): the bottleneck rate is the maximum
 * delivery rate over the last BW_ROUNDS rounds, the path's base RTT the minimum over MIN_RTT_WINDOW_MS.
 * Sends are paced at gain × rate, and what is in flight is capped at a few bandwidth-delay products.
 * STARTUP doubles the rate each round until the delivery rate stops growing, DRAIN empties the queue
 * that built, then PROBE_BW cycles gains 1.25, 0.75, 1 × 6 to find more bandwidth and give it back.
 *
 * Random loss is not read as congestion: the path is lossy by design. Instead the controller measures
 * the share of sends that are retransmissions and paces that much faster on the wire, so the *delivered*
 * rate still meets the model (Brutal's compensation, bounded to 2×; FEC parity counts as overhead too).
 * While the round's smallest RTT sample sits well above the base RTT a queue stands at the bottleneck:
 * the probe up is skipped and the pacer runs a little under the model so the queue drains. The share
 * compensated for leaves out the excess of overflowing rounds (inflight_hi below), so what it covers is
 * the path's own loss. The in-flight cap bounds the queue whatever the estimates say.
 *
 * A busy host is not a faster path. When the peer's event loop stalls, its ACKs arrive in a burst, and
 * a round's delivered bytes over its ACK time would overrate the path (then the pacer overruns a real
 * bottleneck, its queue overflows, and the overflow looks like more random loss to compensate). So a
 * rate sample is delivered bytes over the longer of the ACK span and the span over which that data
 * was sent (BBR's send_elapsed): data cannot have crossed the path faster than it was sent.
 *
 * inflight_hi (BBRv2's idea, on our signals): random loss comes at a steady rate whatever we send, a
 * queue overflowing comes with a standing queue. A round whose smallest RTT sample stands well above
 * the base RTT *and* whose retransmission share is well above the path's usual share says "the
 * bottleneck's queue overflowed at about this much in flight": the in-flight cap is then held at
 * INFLIGHT_HI_BETA of what was in flight, and grows back by INFLIGHT_HI_GROWTH in every round without
 * such excess. Random loss alone never sets it, and a host's stalls (delay without excess loss) neither.
 */

const STARTUP_GAIN = 2.885;
const DRAIN_GAIN = 1 / STARTUP_GAIN;
const PROBE_GAINS = [1.25, 0.75, 1, 1, 1, 1, 1, 1];
/** Gain while a standing queue is seen. */
const QUEUED_GAIN = 0.9;
const STARTUP_CWND_GAIN = 2.885;
const CWND_GAIN = 2;
/** Rounds the bandwidth maximum filter spans. */
const BW_ROUNDS = 10;
const MIN_RTT_WINDOW_MS = 10_000;
/** STARTUP ends after this many rounds without 25 % growth of the delivery rate. */
const FULL_BW_ROUNDS = 3;
/** A round lasts at least this long: shorter windows measure the sender's burstiness, not the path. */
const MIN_ROUND_MS = 10;
/** RTT above base × this plus QUEUE_SLACK_MS means a standing queue. */
const QUEUE_RTT_FACTOR = 1.25;
const QUEUE_SLACK_MS = 5;
/** Loss compensation never more than doubles the wire rate. */
const MAX_LOSS_SHARE = 0.5;
/** Sends counted before a round's retransmission share is trusted. */
const MIN_LOSS_SAMPLE = 16;
/** Budget that may accumulate while idle, in ms of the pacing rate (one pass's lateness). */
const BURST_MS = 4;
const MAX_DEBT_MS = 50;
/** The window allows at most this many (base RTT + a round) of standing delay. */
const MAX_STANDING_RTTS = 4;
/** The RTO floor never exceeds this many (base RTT + a round). */
const MAX_RTO_FLOOR_RTTS = 4;
/** The pacer never goes slower than this many segments per round trip (a path must stay probeable). */
const MIN_RATE_SEGS = 4;
/** A round overflows when its retransmission share exceeds the usual share × this plus OVERFLOW_SLACK. */
const OVERFLOW_FACTOR = 1.5;
const OVERFLOW_SLACK = 0.02;
/** ... and it resent at least this many segments. */
const OVERFLOW_MIN_RETX = 8;
/** inflight_hi: this share of what was in flight when the queue overflowed. */
const INFLIGHT_HI_BETA = 0.85;
/** inflight_hi grows back by this share a round while no overflow is seen. */
const INFLIGHT_HI_GROWTH = 1 / 16;
/** A round's send span counts at this share against its ACK span (see maybeEndRound). */
const SEND_SPAN_SHARE = 0.75;

const enum Mode {
  Startup,
  Drain,
  ProbeBw,
}

export interface PathControllerOptions {
  /** Payload bytes per segment: the unit of the floors below. */
  mss: number;
  /** Rate assumed before the first sample, bytes/ms. */
  initialRate?: number;
  /** Smallest in-flight cap, in segments (so a tiny or unknown BDP still moves). */
  minWindowSegs?: number;
}

export class PathController {
  private readonly mss: number;
  private readonly minWindow: number;
  private readonly initialRate: number;
  private mode = Mode.Startup;

  /** Per-round delivery-rate maxima (bytes/ms), a ring of BW_ROUNDS. */
  private readonly bwRing = new Float64Array(BW_ROUNDS);
  private bwIndex = 0;
  private bw = 0;
  private fullBw = 0;
  private fullBwRounds = 0;

  private minRtt = Infinity;
  private minRttAt = 0;

  private roundStart = -1;
  private roundDelivered = 0;
  private roundSegs = 0;
  private roundMinRtt = Infinity;
  private roundRetx = 0;
  private roundNew = 0;
  private roundParity = 0;
  /** Send time (u32 clock) of the latest-sent data known delivered, at the round's start and now; -1: none yet. */
  private roundSentFrom = -1;
  private latestSent = -1;
  /** Ceiling on bytes in flight learnt from a queue overflowing (Infinity: none seen). */
  private inflightHi = Infinity;
  private queued = false;
  /** Smoothed delay above the base RTT that every sample of a round carries (ACK batching, busy event loops). */
  private standing = 0;
  /** The senders ran out of data this round with budget left: its delivery rate says little about the path. */
  private appLimited = false;
  private cycle = 0;

  /** Smoothed share of sends that were overhead (retransmissions and FEC parity): what is compensated. */
  private lossShare = 0;
  /** Smoothed share of data sends that were retransmissions, outside overflows: the path's usual loss. */
  private usualRetx = 0;

  /** Segment bytes (headers included) in flight over every flow of the path. */
  inflight = 0;
  private tokens = 0;
  private refilledAt = -1;
  private rate = 0;

  /** Figures for the node's stats and the tests. */
  readonly stats = { rounds: 0, queuedRounds: 0, overflowRounds: 0 };

  constructor(opts: PathControllerOptions) {
    this.mss = opts.mss;
    this.minWindow = (opts.minWindowSegs ?? 32) * opts.mss;
    this.initialRate = opts.initialRate ?? (32 * opts.mss) / MIN_ROUND_MS;
    this.rate = this.pacingRate();
  }

  // ---- samples in ----

  /** `bytes` left on the wire (payload, headers, ACKs: all of it costs path capacity). */
  onSent(bytes: number, now: number): void {
    this.refill(now);
    // Debt is capped: a burst of retransmissions or ACKs delays new data, it does not stall the path.
    this.tokens = Math.max(this.tokens - bytes, -this.rate * MAX_DEBT_MS);
  }

  /** A flow reports `newSegs` first transmissions and `retxSegs` retransmissions since its last report. */
  onSegments(newSegs: number, retxSegs: number): void {
    this.roundNew += newSegs;
    this.roundRetx += retxSegs;
  }

  /** An FEC parity datagram went out: overhead to compensate for like a resend, but no sign of loss. */
  onParity(): void {
    this.roundParity++;
  }

  /** The latest-sent transmission a flow knows delivered was sent at `ts` (the engine's u32 clock; -1: none). */
  onDeliveredSentAt(ts: number): void {
    if (ts < 0) return;
    if (this.latestSent < 0 || ((ts - this.latestSent) | 0) > 0) this.latestSent = ts;
  }

  /** Segment bytes (headers included) acknowledged for the first time, and how many segments. */
  onDelivered(bytes: number, segs: number, now: number): void {
    this.roundDelivered += bytes;
    this.roundSegs += segs;
    this.maybeEndRound(now);
  }

  onRtt(rtt: number, now: number): void {
    if (rtt < 0) return;
    if (rtt < this.roundMinRtt) this.roundMinRtt = rtt;
    if (rtt <= this.minRtt || now - this.minRttAt > MIN_RTT_WINDOW_MS) {
      this.minRtt = rtt;
      this.minRttAt = now;
    }
  }

  /** The senders had nothing more to send while budget remained. */
  onAppLimited(): void {
    this.appLimited = true;
  }

  // ---- answers out ----

  /** Bytes that may be sent now (may be ≤ 0: wait until nextSendAt()). */
  budget(now: number): number {
    this.refill(now);
    const room = this.inflightLimit() - this.inflight;
    return Math.min(this.tokens, room);
  }

  /**
   * The least RTO a flow of this path should use: the base RTT plus the time the bottleneck needs to
   * pass everything now in flight (the queue this controller itself lets build), plus a round of
   * timer and ACK slack. Below that a timeout is the pacer's own queue, not a loss.
   */
  rtoFloor(): number {
    if (this.bw === 0 || this.minRtt === Infinity) return 0;
    const rtt = this.minRtt + MIN_ROUND_MS;
    // Capped: a young or app-limited model may underrate the path, and a lost segment must not wait on it.
    return Math.min(rtt + this.inflight / this.bw, MAX_RTO_FLOOR_RTTS * rtt);
  }

  /** Whether the in-flight cap, not the pacer, is what holds sends back (then an ACK, not time, frees them). */
  windowFull(): boolean {
    return this.inflight >= this.inflightLimit();
  }

  /** When `bytes` more of budget will have accrued (absolute ms); never earlier than now + 1. */
  nextSendAt(now: number, bytes: number): number {
    this.refill(now);
    const wait = (bytes - this.tokens) / this.rate;
    return now + Math.max(1, Math.ceil(wait));
  }

  /** The cap on payload bytes in flight: gain × BDP, grown by the loss share (lost segments stay in flight until repaired). */
  inflightLimit(): number {
    if (this.bw === 0 || this.minRtt === Infinity) return this.minWindow;
    const gain = this.mode === Mode.Startup ? STARTUP_CWND_GAIN : CWND_GAIN;
    // Timers and ACK batching add up to a round of delay on top of the path's own RTT, and a busy
    // host's event loops a standing delay more: a window of base RTT alone would starve the pipe
    // (BBR's extra_acked plays this part). Bounded, so a real standing queue cannot feed itself.
    const rtt = this.minRtt + MIN_ROUND_MS;
    const bdp = this.bw * (rtt + Math.min(this.standing, MAX_STANDING_RTTS * rtt));
    return Math.max(this.minWindow, Math.min(this.inflightHi, (gain * bdp) / (1 - this.lossShare)));
  }

  /**
   * The path's bandwidth-delay product in bytes: the model's rate × (base RTT + a round), grown by the
   * loss share; 0 before a model. Unlike inflightLimit() it leaves out the standing delay a busy host
   * adds, so what is sized from it does not grow with the queue it feeds.
   */
  bdp(): number {
    if (this.bw === 0 || this.minRtt === Infinity) return 0;
    return (this.bw * (this.minRtt + MIN_ROUND_MS)) / (1 - this.lossShare);
  }

  get bandwidth(): number {
    return this.bw;
  }

  get baseRtt(): number {
    return this.minRtt;
  }

  get pacing(): number {
    return this.rate;
  }

  get retransmitShare(): number {
    return this.lossShare;
  }

  get modeName(): 'startup' | 'drain' | 'probe-bw' {
    return this.mode === Mode.Startup ? 'startup' : this.mode === Mode.Drain ? 'drain' : 'probe-bw';
  }

  // ---- internals ----

  private refill(now: number): void {
    if (this.refilledAt < 0) {
      this.refilledAt = now;
      this.tokens = this.rate * BURST_MS;
      return;
    }
    const dt = now - this.refilledAt;
    if (dt <= 0) return;
    this.refilledAt = now;
    this.tokens = Math.min(this.tokens + dt * this.rate, Math.max(this.rate * BURST_MS, 4 * this.mss));
  }

  private maybeEndRound(now: number): void {
    if (this.roundStart < 0) {
      this.roundStart = now;
      return;
    }
    const length = Math.max(MIN_ROUND_MS, this.minRtt === Infinity ? 0 : this.minRtt);
    const elapsed = now - this.roundStart;
    if (elapsed < length) return;
    // Mostly small segments (opens, answers, ACK-sized writes): the flows, not the path, set the rate.
    if (this.roundDelivered < (this.roundSegs * this.mss) / 2) this.appLimited = true;
    // The data delivered this round was sent over at least sendSpan: a burst of ACKs (a stalled peer)
    // must not make the path look faster than we fed it.
    const sendSpan = this.roundSentFrom < 0 || this.latestSent < 0 ? 0 : (this.latestSent - this.roundSentFrom) | 0;
    this.roundSentFrom = this.latestSent;
    // Only a clear compression counts: the max of two noisy spans of equal mean would bias every
    // sample low (on the loaded bench, a third of the goodput at 5 % loss).
    this.endRound(this.roundDelivered / Math.max(elapsed, SEND_SPAN_SHARE * sendSpan));
    this.appLimited = false;
    this.roundStart = now;
    this.roundDelivered = 0;
    this.roundSegs = 0;
    this.roundMinRtt = Infinity;
    this.roundNew = this.roundRetx = this.roundParity = 0;
  }

  private endRound(sample: number): void {
    this.stats.rounds++;
    // An app-limited round only counts when it beats the model: a low one says the senders were idle,
    // not that the path slowed (and a path that only ever carried a handshake has no model yet).
    if (!this.appLimited || (this.bw > 0 && sample > this.bw)) {
      this.bwRing[this.bwIndex] = sample;
      this.bwIndex = (this.bwIndex + 1) % BW_ROUNDS;
    }
    let bw = 0;
    for (let i = 0; i < BW_ROUNDS; i++) if (this.bwRing[i]! > bw) bw = this.bwRing[i]!;
    this.bw = bw;

    this.queued = this.roundMinRtt !== Infinity && this.minRtt !== Infinity &&
      this.roundMinRtt > this.minRtt * QUEUE_RTT_FACTOR + QUEUE_SLACK_MS;
    if (this.roundMinRtt !== Infinity && this.minRtt !== Infinity) {
      this.standing += (this.roundMinRtt - this.minRtt - this.standing) / 8;
    }
    const sent = this.roundNew + this.roundRetx;
    // Resends among data sends: the loss signal. Overhead (resends and parity) among all sends: what
    // the pacer compensates for.
    const retxShare = sent >= MIN_LOSS_SAMPLE ? this.roundRetx / sent : -1;
    const overhead = sent >= MIN_LOSS_SAMPLE ? Math.min(MAX_LOSS_SHARE, (this.roundRetx + this.roundParity) / (sent + this.roundParity)) : -1;
    // A standing queue, more resends than the path's usual, and our own data filling the pipe: the
    // bottleneck's queue overflowed at about what is in flight now. Hold the window below that; the
    // excess is not compensated. (A few resends, or a queue while we send little, say nothing.)
    const overflow = this.queued && this.roundRetx >= OVERFLOW_MIN_RETX && this.inflight >= this.bdp() &&
      retxShare > this.usualRetx * OVERFLOW_FACTOR + OVERFLOW_SLACK;
    if (this.queued) this.stats.queuedRounds++;
    if (!overflow && retxShare >= 0) {
      // Queued rounds count too: a busy host's rounds often look queued, and their losses are the
      // path's usual ones (else the share would freeze at a young path's value, and every later round
      // would read as an overflow, or go uncompensated). Only an overflow's excess is left out.
      this.usualRetx += (retxShare - this.usualRetx) / 4;
      this.lossShare += (overhead - this.lossShare) / 4;
    }
    if (overflow) {
      this.stats.overflowRounds++;
      // Never below the pipe itself: what overflowed was the queue on top of it.
      this.inflightHi = Math.max(this.minWindow, this.bdp(), this.inflight * INFLIGHT_HI_BETA);
    } else if (this.inflightHi !== Infinity) {
      // Grows back in every clean round, queued or not: a busy host's delay alone must not pin it.
      this.inflightHi += this.inflightHi * INFLIGHT_HI_GROWTH;
    }

    switch (this.mode) {
      case Mode.Startup:
        if (this.appLimited && !this.queued) break;
        if (bw >= this.fullBw * 1.25) {
          this.fullBw = bw;
          this.fullBwRounds = 0;
        } else if (++this.fullBwRounds >= FULL_BW_ROUNDS || this.queued) {
          this.mode = Mode.Drain;
        }
        break;
      case Mode.Drain:
        if (this.inflight <= this.bw * (this.minRtt + MIN_ROUND_MS)) {
          this.mode = Mode.ProbeBw;
          this.cycle = 2; // start cruising; the probe up comes later in the cycle
        }
        break;
      case Mode.ProbeBw:
        this.cycle = (this.cycle + 1) % PROBE_GAINS.length;
        break;
    }
    this.rate = this.pacingRate();
  }

  private pacingRate(): number {
    const rtt = this.minRtt === Infinity ? MIN_ROUND_MS : this.minRtt + MIN_ROUND_MS;
    return Math.max(this.modelRate(), (MIN_RATE_SEGS * this.mss) / rtt);
  }

  private modelRate(): number {
    const bw = this.bw > 0 ? this.bw : this.initialRate;
    // No loss compensation yet: STARTUP's losses are as likely its own overshoot as the path's.
    if (this.mode === Mode.Startup) return bw * STARTUP_GAIN;
    if (this.mode === Mode.Drain) return bw * DRAIN_GAIN;
    // No probe up into a standing queue: a little under the model instead, so it drains. Still
    // compensated: the share leaves out an overflow's excess, so what it covers is the path's own loss.
    return bw * (this.queued ? QUEUED_GAIN : PROBE_GAINS[this.cycle]!) * this.compensation();
  }

  /** Wire rate per delivered rate: 1 / (1 − overhead share). */
  private compensation(): number {
    return 1 / (1 - this.lossShare);
  }
}
