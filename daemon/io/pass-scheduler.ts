/**
 * How a driver runs its sans-IO core (a carrier, a kcptun session, a kcptube tunnel): work is coalesced into passes. Anything that changes
 * (a peer packet, a socket write or read) asks for a pass with kick(); one setImmediate runs it, so a
 * burst of packets costs one pass. The pass ends by arming the timer for the core's next deadline.
 */
export class PassScheduler {
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private closed = false;

  constructor(
    /** One pass; the scheduler calls it at most once per kick burst, never after close(). */
    private readonly pass: () => void,
    /** The driver's clock (ms), for turning deadlines into delays. */
    private readonly clock: () => number,
  ) {}

  /** Something changed: run one pass soon. */
  kick(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  /**
   * Wake for a pass at `at` (ms on the clock) unless an earlier wake-up is set; Infinity: none needed.
   * Never after close(): a link closing with its owner re-arms on the way out, and that timer would hold the process.
   */
  arm(at: number): void {
    if (this.closed || at === Infinity || at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.wake, Math.max(0, at - this.clock()));
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    if (!this.closed) this.pass();
  };

  private readonly wake = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    this.kick();
  };
}
