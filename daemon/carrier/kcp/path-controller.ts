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
 * that built, then PROBE_BW cycles gains 1.25, 0.75, 1 × 6 to find more bandwidth and give it back
 * (the probe up lasting while each round finds more). A round is a round trip as the last one took.
 *
 * Random loss is not read as congestion: the path is lossy by design. Instead the controller measures
 * the share of sends that are retransmissions and paces that much faster on the wire, so the *delivered*
 * rate still meets the model (Brutal's compensation, bounded to 2×). Compensation is withheld while the
 * round's smallest RTT sample sits well above the base RTT: a queue is standing at the bottleneck, so
 * the losses are the queue overflowing, and then only the model's rate goes out (and the probe up is
 * skipped). The in-flight cap bounds the queue whatever the estimates say.
 *
 * The receiver's host is a bottleneck too: its socket holds only so much while its event loop is busy
 * (or cold, at start). When the peer reports that its socket dropped our datagrams (onHostDrops), that
 * is congestion, not random loss: STARTUP ends, the round runs as with a standing queue (no
 * compensation, no probe up), and the in-flight cap is cut to HOST_CUT of itself, then grows back slowly
 * (HOST_REGROW_PER_S) while it binds and the flows fill it.
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
/** STARTUP ends after this many rounds without 25 % growth of the delivery rate (one fewer while a queue stands). */
const FULL_BW_ROUNDS = 3;
/** PROBE_BW's probe up goes on while each round's rate grows by this much (at least two rounds). */
const PROBE_GROWTH = 1.1;
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
/**
 * The RTO floor never exceeds this many (base RTT + a round): the round trip plus the longest queue the
 * in-flight cap allows (CWND_GAIN × the BDP grown by the most standing delay it counts). With 4, a
 * busy host's queue outgrew the floor and every stall fired a round of timeouts on a clean link.
 */
const MAX_RTO_FLOOR_RTTS = 1 + CWND_GAIN * (1 + MAX_STANDING_RTTS);
/** Rounds over which the largest RTT sample is kept for the RTO floor. */
const RTT_MAX_ROUNDS = 64;
/** That sample counts up to twice the base RTT plus this (ms): one host stall of a second must not set every RTO. */
const RTT_MAX_SLACK_MS = 100;
/** The pacer never goes slower than this many segments per round trip (a path must stay probeable). */
const MIN_RATE_SEGS = 4;

/** On host drops the in-flight cap becomes this share of itself (at most once per HOST_HOLD_MS). */
const HOST_CUT = 0.5;
/** A report carries up to REPORT_MS of one overflow, and the next may carry the rest: one cut covers both. */
const HOST_HOLD_MS = 250;
/**
 * Growth of a cut cap, its share per second of rounds in which the flows filled it: slow, since a
 * busy host overflows again each time the cap outgrows its socket (per round, a round being 10 ms
 * on a fast path, it grew back within a tenth of a second and every stall dropped as before).
 */
const HOST_REGROW_PER_S = 0.25;

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
  private roundMaxRtt = 0;
  /** Per-round largest RTT samples, a ring of RTT_MAX_ROUNDS. */
  private readonly rttMaxRing = new Float64Array(RTT_MAX_ROUNDS);
  private rttMaxIndex = 0;
  private recentMaxRtt = 0;
  private roundRetx = 0;
  private roundNew = 0;
  private queued = false;
  /** Smoothed delay above the base RTT that every sample of a round carries (ACK batching, busy event loops). */
  private standing = 0;
  /** The senders ran out of data this round with budget left: its delivery rate says little about the path. */
  private appLimited = false;
  /** The last round was not app-limited: flows waited for budget or window, so the path set the pace. */
  private lastRoundBacklogged = false;
  private cycle = 0;
  private probeRounds = 0;
  private probePrevBw = 0;
  /** The last round's smallest RTT sample: how long a round trip takes now, standing delay included. */
  private lastRoundRtt = 0;

  /** Smoothed share of sends that were retransmissions. */
  private lossShare = 0;

  /** The in-flight cap the receiver's host drops set (Infinity: none), and when it may be cut again. */
  private hostCap = Infinity;
  private hostHeldUntil = -Infinity;
  /** Host drops were reported this round: it counts as queued. */
  private hostDropped = false;

  /** Segment bytes (headers included) in flight over every flow of the path. */
  inflight = 0;
  private tokens = 0;
  private refilledAt = -1;
  private rate = 0;

  /** Figures for the node's stats and the tests. */
  readonly stats = { rounds: 0, queuedRounds: 0 };

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

  /** Segment bytes (headers included) acknowledged for the first time, and how many segments. */
  onDelivered(bytes: number, now: number, segs: number): void {
    this.roundDelivered += bytes;
    this.roundSegs += segs;
    this.maybeEndRound(now);
  }

  onRtt(rtt: number, now: number): void {
    if (rtt < 0) return;
    if (rtt < this.roundMinRtt) this.roundMinRtt = rtt;
    if (rtt > this.roundMaxRtt) this.roundMaxRtt = rtt;
    if (rtt > this.recentMaxRtt) this.recentMaxRtt = rtt;
    if (rtt <= this.minRtt || now - this.minRttAt > MIN_RTT_WINDOW_MS) {
      this.minRtt = rtt;
      this.minRttAt = now;
    }
  }

  /**
   * The peer reports `n` of our datagrams dropped unread by its host (its socket overflowed): the
   * receiver, not the path, is full, and resends into the same overflow would only feed it.
   */
  onHostDrops(n: number, now: number): void {
    if (n <= 0) return;
    this.hostDropped = this.queued = true;
    this.lossShare /= 2;
    if (this.mode === Mode.Startup) {
      this.fullBw = this.bw;
      this.mode = Mode.Drain;
    } else if (this.mode === Mode.ProbeBw && this.cycle === 0) this.cycle = 1; // the probe up found the host's limit
    if (now >= this.hostHeldUntil) {
      this.hostHeldUntil = now + HOST_HOLD_MS;
      this.hostCap = Math.max(this.minWindow, HOST_CUT * this.inflightLimit());
    }
    this.rate = this.pacingRate();
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
   * timer and ACK slack. Below that a timeout is the pacer's own queue, not a loss. And at least the
   * largest RTT sample of the last RTT_MAX_ROUNDS rounds plus a round: on a busy host the event loops
   * at both ends add tens of ms now and then, which KCP's own RTO (srtt + max(interval, 4 × rttvar),
   * with an rttvar that its integer smoothing wears down to 0-2 ms) reads as loss: on the bench's
   * clean veth those timeouts were most of the resends.
   */
  rtoFloor(): number {
    if (this.minRtt === Infinity) return 0;
    const rtt = this.minRtt + MIN_ROUND_MS;
    const seen = Math.min(this.recentMaxRtt, 2 * this.minRtt + RTT_MAX_SLACK_MS) + MIN_ROUND_MS;
    if (this.bw === 0) return seen;
    // Capped: a young or app-limited model may underrate the path, and a lost segment must not wait on it.
    return Math.max(seen, Math.min(rtt + this.inflight / this.bw, MAX_RTO_FLOOR_RTTS * rtt));
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

  /**
   * The cap on payload bytes in flight: gain × BDP, grown by the loss share (lost segments stay in
   * flight until repaired), and within what the receiver's host was seen to hold (onHostDrops).
   */
  inflightLimit(): number {
    return Math.min(this.modelLimit(), this.hostCap);
  }

  private modelLimit(): number {
    if (this.bw === 0 || this.minRtt === Infinity) return this.minWindow;
    const gain = this.mode === Mode.Startup ? STARTUP_CWND_GAIN : CWND_GAIN;
    // Timers and ACK batching add up to a round of delay on top of the path's own RTT, and a busy
    // host's event loops a standing delay more: a window of base RTT alone would starve the pipe
    // (BBR's extra_acked plays this part). Bounded, so a real standing queue cannot feed itself.
    const rtt = this.minRtt + MIN_ROUND_MS;
    const bdp = this.bw * (rtt + Math.min(this.standing, MAX_STANDING_RTTS * rtt));
    return Math.max(this.minWindow, (gain * bdp) / (1 - this.lossShare));
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

  /**
   * The last round's flows always had data waiting: whatever else goes on the path (parity) displaces
   * their data. False while the senders run out of data with budget left (thin or idle flows).
   */
  get backlogged(): boolean {
    return this.lastRoundBacklogged;
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
    // A round is a round trip as the last round measured it (standing delay included), not the base
    // RTT alone: on a busy host a round trip takes two or three base RTTs, and counting base RTTs saw
    // STARTUP's growth (which shows a round trip later) as a plateau and ended it at a tenth of the path.
    const rtt = this.minRtt === Infinity ? 0 : Math.max(this.minRtt, Math.min(this.lastRoundRtt, MAX_STANDING_RTTS * (this.minRtt + MIN_ROUND_MS)));
    const length = Math.max(MIN_ROUND_MS, rtt);
    const elapsed = now - this.roundStart;
    if (elapsed < length) return;
    // Mostly small segments (opens, answers, ACK-sized writes): the flows, not the path, set the rate.
    if (this.roundDelivered < (this.roundSegs * this.mss) / 2) this.appLimited = true;
    this.lastRoundBacklogged = !this.appLimited;
    this.endRound(this.roundDelivered / elapsed, elapsed);
    this.appLimited = false;
    this.roundStart = now;
    this.roundDelivered = 0;
    this.roundSegs = 0;
    if (this.roundMinRtt !== Infinity) this.lastRoundRtt = this.roundMinRtt;
    this.roundMinRtt = Infinity;
    this.roundMaxRtt = 0;
    this.roundNew = this.roundRetx = 0;
  }

  private endRound(sample: number, elapsed: number): void {
    this.stats.rounds++;
    this.rttMaxRing[this.rttMaxIndex] = this.roundMaxRtt;
    this.rttMaxIndex = (this.rttMaxIndex + 1) % RTT_MAX_ROUNDS;
    let maxRtt = 0;
    for (let i = 0; i < RTT_MAX_ROUNDS; i++) if (this.rttMaxRing[i]! > maxRtt) maxRtt = this.rttMaxRing[i]!;
    this.recentMaxRtt = maxRtt;
    // An app-limited round only counts when it beats the model: a low one says the senders were idle,
    // not that the path slowed (and a path that only ever carried a handshake has no model yet).
    if (!this.appLimited || (this.bw > 0 && sample > this.bw)) {
      this.bwRing[this.bwIndex] = sample;
      this.bwIndex = (this.bwIndex + 1) % BW_ROUNDS;
    }
    let bw = 0;
    for (let i = 0; i < BW_ROUNDS; i++) if (this.bwRing[i]! > bw) bw = this.bwRing[i]!;
    this.bw = bw;

    this.queued = this.hostDropped || (this.roundMinRtt !== Infinity && this.minRtt !== Infinity &&
      this.roundMinRtt > this.minRtt * QUEUE_RTT_FACTOR + QUEUE_SLACK_MS);
    this.hostDropped = false;
    // Only while it binds: above the model's cap it is the memory of the host's room, kept for when the
    // model grows again (a standing delay, a higher rate), since forgetting it took each overflow anew.
    if (this.hostCap < this.modelLimit() && !this.appLimited) this.hostCap *= 1 + (HOST_REGROW_PER_S * elapsed) / 1000;
    if (this.roundMinRtt !== Infinity && this.minRtt !== Infinity) {
      this.standing += (this.roundMinRtt - this.minRtt - this.standing) / 8;
    }
    const sent = this.roundNew + this.roundRetx;
    if (this.queued) {
      // Losses while a queue stands are (partly) the queue overflowing: stop compensating for them.
      this.stats.queuedRounds++;
      this.lossShare /= 2;
    } else if (sent >= MIN_LOSS_SAMPLE) {
      const share = Math.min(MAX_LOSS_SHARE, this.roundRetx / sent);
      this.lossShare += (share - this.lossShare) / 4;
    }

    switch (this.mode) {
      case Mode.Startup:
        if (this.appLimited && !this.queued) break;
        if (bw >= this.fullBw * 1.25) {
          this.fullBw = bw;
          this.fullBwRounds = 0;
        } else if (++this.fullBwRounds >= FULL_BW_ROUNDS - (this.queued ? 1 : 0)) {
          // Not on one queued round alone: a busy host's event loops stand in every round trip now and then.
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
        if (this.cycle === 0 && !this.queued) {
          // Probe on while it finds more (its sends show a round later, so at least two rounds): a
          // path that had room grows 1.25× a round, not 1.25× per cycle of eight.
          const grew = bw >= this.probePrevBw * PROBE_GROWTH;
          this.probePrevBw = bw;
          if (++this.probeRounds < 2 || grew) break;
        }
        this.cycle = (this.cycle + 1) % PROBE_GAINS.length;
        if (this.cycle === 0) {
          this.probeRounds = 0;
          this.probePrevBw = bw;
        }
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
    // No probe up into a standing queue: a little under the model instead, so it drains.
    if (this.queued) return bw * QUEUED_GAIN;
    return bw * PROBE_GAINS[this.cycle]! * this.compensation();
  }

  /** Wire rate per delivered rate: 1 / (1 − retransmission share) while no queue stands. */
  private compensation(): number {
    return this.queued ? 1 : 1 / (1 - this.lossShare);
  }
}
