/**
 * Binds one TubeSession to I/O through drive(): a send function (the adapter decides the socket and
 * address at send time, so port hops and address moves apply at once), one timer from pollTimeout(),
 * and the connections (TCP/UDP pipes) it carries, by connection id. Inputs and socket events only
 * kick it; one pass pumps the session, dispatches events, and sends.
 */
import { nowMs } from '../io/clock.js';
import { drive, type Drive } from '../io/drive.js';
import type { TubeEvent, TubeSession } from './session.js';
import type { Recycle } from './udp-out.js';

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
  /** The tunnel ended: drop everything (a TCP connection is reset). */
  tunnelEnded(): void;
}

export interface TunnelOwner {
  /** hello, hello-reply and open events. */
  onEvent(tunnel: Tunnel, e: TubeEvent): void;
  onEnded(tunnel: Tunnel, reason: string): void;
}

/** A finishing tunnel waits this long at most for its last bytes to be acknowledged. */
const FINISH_WAIT_MS = 10_000;

export class Tunnel {
  readonly conns = new Map<number, Conn>();
  private ended = false;
  private readonly drive: Drive<Uint8Array, TubeEvent>;
  private finishBy = Infinity;
  /** Connections whose socket is full; reading the session waits for them. */
  private fullSinks = 0;

  readonly kick = (): void => this.drive.kick();
  /** A sent datagram's buffer back to the session, for its next one. */
  private readonly recycle: Recycle = (d) => this.session.recycleTransmit(d);

  constructor(
    readonly session: TubeSession,
    /** Sends a datagram; `sent` takes it back once the kernel has copied it. */
    private readonly send: (d: Uint8Array, sent: Recycle) => void,
    private readonly owner: TunnelOwner,
  ) {
    this.drive = drive(session, {
      event: (e) => this.dispatch(e),
      afterEvents: (now) => {
        // One flush per pass answers every datagram the pass took (their ACKs, the window they opened).
        session.flushAcks(now);
        this.finishIfDue(now);
      },
      transmit: (d) => this.send(d, this.recycle),
      deadline: () => this.finishBy,
      // An exception in a pass (a bug) ends this tunnel, never the process; nothing more is sent.
      failed: (e) => this.end(`internal error: ${(e as Error).message}`, false),
    });
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

  /** A finishing tunnel closes once every byte is acknowledged, or at its deadline. */
  private finishIfDue(now: number): void {
    const s = this.session;
    if (this.ended || this.finishBy === Infinity || !(s.drained || now >= this.finishBy)) return;
    s.close();
    this.dispatchAll();
  }

  private dispatchAll(): void {
    for (let e = this.session.pollEvent(); e !== null && !this.ended; e = this.session.pollEvent()) this.dispatch(e);
  }

  private dispatch(e: TubeEvent): void {
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
        break;
      default:
        this.owner.onEvent(this, e);
    }
  }

  /** Ends at once (CLOSE to the peer), dropping every connection. */
  close(): void {
    if (this.ended) return;
    this.session.close();
    this.dispatchAll();
    this.drive.flushTransmit();
  }

  /** `flush` false: the pass broke, so nothing more is sent (sending may be what broke). */
  private end(reason: string, flush = true): void {
    if (this.ended) return;
    this.ended = true;
    this.drive.stop();
    if (flush) this.drive.flushTransmit(); // a CLOSE we queued
    for (const c of [...this.conns.values()]) c.tunnelEnded();
    this.conns.clear();
    this.owner.onEnded(this, reason);
  }
}
