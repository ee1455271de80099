/**
 * The send rate toward one EasyTier node, sans-IO: a delivery-rate model (as BBR) fitted to what an
 * EasyTier receiver is. Its UDP socket holds about 90 datagrams (the default 208 KiB of buffer), its
 * reader is a process on a shared machine, and its ikcp acknowledges in batches, every 10 ms. So:
 *
 * - Delivery-rate samples span whole ACK batches: a window runs from the end of one batch to the end
 *   of a batch at least SAMPLE_MS later, counting the batches after the first. A window of a fixed
 *   length would catch one batch more or less by chance, and the maximum filter would keep the
 *   lucky ones (the carrier's own controller, fed by these batches, overrated EasyTier by 30 % and a
 *   third of what reached its socket overflowed).
 * - Random loss is compensated (the wire rate is the model's over 1 − loss), but only the loss seen
 *   while the rate is at the model or under it: the retransmission share of a gain cycle's cruising
 *   windows (a loss is detected about a round trip after it, so those windows see what the drain and
 *   the cruise before them lost, never what the probe above the model made the socket drop). So the
 *   socket's overflow is not compensated, and cannot feed itself.
 * - The probe up is small (GAINS[0]): its overshoot over one window is about what that socket holds.
 */

/** A delivery-rate window spans at least this long (four of ikcp's 10 ms ACK batches). */
const SAMPLE_MS = 40;
/** Reports closer together than this belong to one ACK batch. */
const BATCH_GAP_MS = 2;
/** Gains of the windows of one cycle; the bandwidth maximum spans a cycle. */
const GAINS = [1.2, 0.8, 1, 1, 1, 1, 1, 1];
/** The cycle's first window at the model's rate after the drain. */
const FIRST_CRUISE = 2;
const STARTUP_GAIN = 2;
/** Startup ends after this many windows without 25 % growth. */
const FULL_BW_WINDOWS = 3;
/** ikcp holds its ACKs up to one 10 ms update: the round trip a window must cover is RTT + that. */
const ACK_HOLD_MS = 10;
const CWND_GAIN = 2;
const MAX_LOSS = 0.5;
/** Sends a cycle's cruise needs before its retransmission share counts. */
const MIN_LOSS_SAMPLE = 16;
/** Budget that may build up while idle, ms of the rate; debt is capped likewise. */
const BURST_MS = 2;
const MAX_DEBT_MS = 50;
const MIN_RTT_WINDOW_MS = 10_000;

export class EtKcpRate {
  /** Segment bytes (headers included) in flight over every connection to the node. */
  inflight = 0;
  private bw = 0;
  private readonly bwRing = new Float64Array(GAINS.length);
  private lossShare = 0;
  /** Sends and retransmissions of the current cycle's cruising windows. */
  private cruiseSent = 0;
  private cruiseRetx = 0;
  private ring = 0;
  private startup = true;
  private fullBw = 0;
  private fullBwWindows = 0;
  private cycle = 0;
  private minRtt = Infinity;
  private minRttAt = 0;
  private winStart = -1;
  private winBytes = 0;
  private winNew = 0;
  private winRetx = 0;
  /** When the last delivery was reported (a batch's datagrams come within BATCH_GAP_MS). */
  private lastAt = -1;
  private appLimited = false;
  private tokens = 0;
  private refilledAt = -1;

  constructor(private readonly mss: number) {}

  onSent(bytes: number, now: number): void {
    this.refill(now);
    this.tokens = Math.max(this.tokens - bytes, -this.rate() * MAX_DEBT_MS);
  }

  onSegments(newSegs: number, retxSegs: number): void {
    this.winNew += newSegs;
    this.winRetx += retxSegs;
  }

  onRtt(rtt: number, now: number): void {
    if (rtt < 0) return;
    if (rtt <= this.minRtt || now - this.minRttAt > MIN_RTT_WINDOW_MS) {
      this.minRtt = rtt;
      this.minRttAt = now;
    }
  }

  /** Segment bytes acknowledged for the first time. */
  onDelivered(bytes: number, now: number): void {
    if (this.winStart < 0) {
      this.winStart = this.lastAt = now; // this batch ends before the window: not counted
      return;
    }
    if (now - this.lastAt >= BATCH_GAP_MS && this.lastAt - this.winStart >= Math.max(SAMPLE_MS, this.minRtt)) {
      // A new batch begins and the one before closed a window long enough.
      this.endWindow(this.winBytes / (this.lastAt - this.winStart));
      this.winStart = this.lastAt;
      this.winBytes = 0;
    }
    this.winBytes += bytes;
    this.lastAt = now;
  }

  /** The senders had nothing more to send while budget remained. */
  onAppLimited(): void {
    this.appLimited = true;
  }

  /** Bytes that may go now (≤ 0: wait for nextSendAt(), or for an ACK when windowFull()). */
  budget(now: number): number {
    this.refill(now);
    return Math.min(this.tokens, this.inflightLimit() - this.inflight);
  }

  windowFull(): boolean {
    return this.inflight >= this.inflightLimit();
  }

  nextSendAt(now: number, bytes: number): number {
    this.refill(now);
    return now + Math.max(1, Math.ceil((bytes - this.tokens) / this.rate()));
  }

  /** What may be in flight: a few round trips (with ikcp's ACK hold) at the model's rate, grown by the loss. */
  inflightLimit(): number {
    const floor = 32 * this.mss;
    if (this.bw === 0 || this.minRtt === Infinity) return floor;
    const gain = this.startup ? STARTUP_GAIN * CWND_GAIN : CWND_GAIN;
    return Math.max(floor, (gain * this.bw * (this.minRtt + ACK_HOLD_MS)) / (1 - this.loss()));
  }

  /** Pacing rate, bytes/ms. */
  rate(): number {
    const rtt = this.minRtt === Infinity ? ACK_HOLD_MS : this.minRtt + ACK_HOLD_MS;
    const floor = (4 * this.mss) / rtt;
    if (this.bw === 0) return Math.max(floor, (32 * this.mss) / ACK_HOLD_MS);
    const gain = this.startup ? STARTUP_GAIN : GAINS[this.cycle]!;
    return Math.max(floor, (this.bw * gain) / (1 - this.loss()));
  }

  get bandwidth(): number {
    return this.bw;
  }

  /** The path's own loss: the retransmission share while cruising (smoothed over cycles). */
  loss(): number {
    return this.lossShare;
  }

  private endWindow(sample: number): void {
    const appLimited = this.appLimited;
    if (!appLimited || sample > this.bw) this.bwRing[this.ring] = sample;
    if (!this.startup && this.cycle >= FIRST_CRUISE) {
      this.cruiseSent += this.winNew + this.winRetx;
      this.cruiseRetx += this.winRetx;
    }
    this.ring = (this.ring + 1) % GAINS.length;
    this.winNew = this.winRetx = 0;
    this.appLimited = false;
    let bw = 0;
    for (const b of this.bwRing) if (b > bw) bw = b;
    this.bw = bw;
    if (this.startup) {
      // A window the senders left idle (a request/response flow) says nothing of where the path is full:
      // ending startup on it left a bulk flow after it to climb from a tiny model, a probe per cycle.
      if (appLimited) return;
      if (bw >= this.fullBw * 1.25) {
        this.fullBw = bw;
        this.fullBwWindows = 0;
      } else if (++this.fullBwWindows >= FULL_BW_WINDOWS) {
        this.startup = false;
        this.cycle = 1; // drain what startup queued first
      }
    } else {
      this.cycle = (this.cycle + 1) % GAINS.length;
      if (this.cycle === 0) this.endCycle();
    }
  }

  private endCycle(): void {
    if (this.cruiseSent >= MIN_LOSS_SAMPLE) this.lossShare += (Math.min(MAX_LOSS, this.cruiseRetx / this.cruiseSent) - this.lossShare) / 2;
    this.cruiseSent = this.cruiseRetx = 0;
  }

  private refill(now: number): void {
    if (this.refilledAt < 0) {
      this.refilledAt = now;
      this.tokens = this.rate() * BURST_MS;
      return;
    }
    const dt = now - this.refilledAt;
    if (dt <= 0) return;
    this.refilledAt = now;
    const rate = this.rate();
    this.tokens = Math.min(this.tokens + dt * rate, Math.max(rate * BURST_MS, 4 * this.mss));
  }
}
