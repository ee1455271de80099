/**
 * The one loop every sans-IO core is run by (the KCP carrier, a kcptun session, a kcptube tunnel, the
 * smoltcp stack): a core says when it must wake (pollTimeout), does its timed work (handleTimeout),
 * and hands out what to send (pollTransmit) and what happened (pollEvent); the adapter supplies the
 * I/O. Work is coalesced into passes (PassScheduler): anything that changes the core asks for one
 * with kick(), and a burst of packets or socket events costs one pass.
 *
 * A pass: run the timed work if it is due (else pump the core's layers once); then rounds of
 * events → pump → send, while a round still found events (an event's handler may unblock more
 * work), at most `maxRounds` before yielding to the event loop; then arm the timer for the
 * earliest deadline.
 */
import { nowMs } from './clock.js';
import { PassScheduler } from './pass-scheduler.js';

export interface DrivenCore<T, E> {
  /** When handleTimeout must next run (ms on the driver's clock); Infinity: never. */
  pollTimeout(): number;
  handleTimeout(now: number): void;
  pollTransmit(): T | null;
  pollEvent(): E | null;
  /**
   * Cores whose inputs and writes are batched (input() does not flush): move the batch through
   * their layers. Runs when a pass is not due for handleTimeout, and after each round of events.
   */
  pump?(now: number): void;
}

export interface DriveIo<T, E> {
  transmit(t: T): void;
  event(e: E): void;
  /** First thing in each pass (e.g. a check the adapter owns, a log of faults since the last pass). */
  begin?(now: number): void;
  /** After each round's events and pump, before sending (e.g. the KCP carrier's ACK flush). */
  afterEvents?(now: number): void;
  /** An adapter's own deadline besides the core's (e.g. a bounded close). */
  deadline?(): number;
  /** An exception in a pass (a bug): the adapter ends what it drives. Without it the exception propagates. */
  failed?(error: unknown): void;
  /** Milliseconds, monotonic; default nowMs. */
  clock?: () => number;
  /** Event rounds per pass; default 16. */
  maxRounds?: number;
}

const DEFAULT_MAX_ROUNDS = 16;

export class Drive<T, E> {
  private readonly passes: PassScheduler;
  private readonly clock: () => number;
  private readonly maxRounds: number;
  private stopped = false;
  /**
   * While a pass dispatches events: a kick then (a handler wrote or read) needs no pass of its own,
   * since this pass pumps, sends and goes round again after them.
   */
  private dispatching = false;

  constructor(
    private readonly core: DrivenCore<T, E>,
    private readonly io: DriveIo<T, E>,
  ) {
    this.clock = io.clock ?? nowMs;
    this.maxRounds = io.maxRounds ?? DEFAULT_MAX_ROUNDS;
    this.passes = new PassScheduler(() => this.pass(), this.clock);
  }

  /** Something changed (an input, a write, a read): run one pass soon. */
  readonly kick = (): void => {
    if (!this.dispatching) this.passes.kick();
  };

  /** No pass after this; a pass in progress stops after the current event. */
  stop(): void {
    this.stopped = true;
    this.passes.close();
  }

  /** Sends what the core queued, now (e.g. the goodbyes a close queued, after stop()). */
  flushTransmit(): void {
    for (let t = this.core.pollTransmit(); t !== null; t = this.core.pollTransmit()) this.io.transmit(t);
  }

  private pass(): void {
    if (this.stopped) return;
    try {
      this.run();
    } catch (e) {
      if (!this.io.failed) throw e;
      this.io.failed(e);
    } finally {
      this.dispatching = false;
    }
  }

  private run(): void {
    const { core, io } = this;
    const now = this.clock();
    io.begin?.(now);
    if (core.pollTimeout() <= now) core.handleTimeout(now);
    else core.pump?.(now);
    for (let round = 1; ; round++) {
      let any = false;
      this.dispatching = true;
      for (let e = core.pollEvent(); e !== null; e = core.pollEvent()) {
        any = true;
        io.event(e);
        if (this.stopped) break;
      }
      this.dispatching = false;
      if (this.stopped) return;
      if (any) core.pump?.(now);
      io.afterEvents?.(now);
      this.flushTransmit();
      if (!any) break;
      if (round === this.maxRounds) {
        // Still busy: yield to the event loop and carry on in the next pass.
        this.kick();
        return;
      }
    }
    this.passes.arm(Math.min(core.pollTimeout(), io.deadline?.() ?? Infinity));
  }
}

/** Runs `core` with `io`; kick() the result whenever something changes. */
export function drive<T, E>(core: DrivenCore<T, E>, io: DriveIo<T, E>): Drive<T, E> {
  return new Drive(core, io);
}
