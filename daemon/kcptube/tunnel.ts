/**
 * Binds one TubeSession to I/O: a send function (the adapter decides the socket and address at
 * send time, so port hops and address moves apply at once), one timer from pollTimeout(), and the
 * connections (TCP/UDP pipes) it carries, by connection id. Work is coalesced: inputs and socket
 * events only mark it dirty; one setImmediate pass pumps the session, dispatches events, and sends.
 */
import { nowMs } from '../io/clock.js';
import { PassScheduler } from '../io/pass-scheduler.js';
import type { TubeEvent, TubeSession } from './session.js';


/** One application connection riding a tunnel. */
export interface Conn {
  /** Bytes from the peer (a view that stays valid; no copy needed). */
  data(d: Uint8Array): void;
  /** The peer will send no more. */
  fin(): void;
  /** The peer aborted. */
  reset(): void;
  /** KCP's window has room again. */
  writable(): void;
  /** The tunnel ended: drop everything. */
  abort(): void;
}

export interface TunnelOwner {
  /** hello, hello-reply and open events. */
  onEvent(tunnel: Tunnel, e: TubeEvent): void;
  onEnded(tunnel: Tunnel, reason: string): void;
}

/** Event rounds per pass: each may unblock more work, but a pass must end. */
const MAX_ROUNDS = 16;
/** A finishing tunnel waits this long at most for its last bytes to be acknowledged. */
const FINISH_WAIT_MS = 10_000;

export class Tunnel {
  readonly conns = new Map<number, Conn>();
  private ended = false;
  private readonly passes = new PassScheduler(() => this.pass(), nowMs);
  private finishBy = Infinity;
  /** Connections whose socket is full; reading the session waits for them. */
  private fullSinks = 0;

  readonly kick = (): void => this.passes.kick();

  constructor(
    readonly session: TubeSession,
    private readonly send: (d: Uint8Array) => void,
    private readonly owner: TunnelOwner,
  ) {
    this.kick();
  }

  get sid(): number {
    return this.session.sid;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** A sink's socket buffer filled (true) or drained (false): hold KCP's bytes meanwhile. */
  sinkFull(full: boolean): void {
    this.fullSinks += full ? 1 : -1;
    this.session.pauseReading(this.fullSinks > 0);
    this.kick();
  }

  /** Closes the tunnel once every byte written is acknowledged (bounded wait). */
  finish(): void {
    if (this.finishBy === Infinity) this.finishBy = nowMs() + FINISH_WAIT_MS;
    this.kick();
  }

  /** One pass; an exception in it (a bug) ends this tunnel, never the process. */
  private pass(): void {
    try {
      this.run();
    } catch (e) {
      this.end(`internal error: ${(e as Error).message}`, false);
    }
  }

  private run(): void {
    if (this.ended) return;
    const now = nowMs();
    const s = this.session;
    if (now >= s.pollTimeout()) s.handleTimeout(now);
    else s.pump(now);
    for (let round = 0; round < MAX_ROUNDS && this.dispatch(); round++) s.pump(now);
    if (!this.ended && this.finishBy !== Infinity && (s.drained || now >= this.finishBy)) {
      s.close();
      this.dispatch();
    }
    this.transmit();
    if (!this.ended) this.passes.arm(Math.min(s.pollTimeout(), this.finishBy));
  }

  private transmit(): void {
    let d: Uint8Array | null;
    // Not recycled: dgram.send() reads the buffer later, asynchronously.
    while ((d = this.session.pollTransmit()) !== null) this.send(d);
  }

  /** Handles pending events; true if there were any (they may have produced more work). */
  private dispatch(): boolean {
    let any = false;
    for (let e = this.session.pollEvent(); e !== null; e = this.session.pollEvent()) {
      any = true;
      switch (e.type) {
        case 'data':
          this.conns.get(e.conn)?.data(e.data);
          break;
        case 'fin':
          this.conns.get(e.conn)?.fin();
          break;
        case 'reset':
          this.conns.get(e.conn)?.reset();
          break;
        case 'writable':
          for (const c of this.conns.values()) c.writable();
          break;
        case 'closed':
          this.end(e.reason);
          return false;
        default:
          this.owner.onEvent(this, e);
      }
    }
    return any;
  }

  /** Ends at once (CLOSE to the peer), dropping every connection. */
  close(): void {
    if (this.ended) return;
    this.session.close();
    this.dispatch();
    this.transmit();
  }

  /** `flush` false: the pass broke, so nothing more is sent (sending may be what broke). */
  private end(reason: string, flush = true): void {
    if (this.ended) return;
    this.ended = true;
    this.passes.close();
    if (flush) this.transmit(); // a CLOSE we queued
    for (const c of [...this.conns.values()]) c.abort();
    this.conns.clear();
    this.owner.onEnded(this, reason);
  }
}
