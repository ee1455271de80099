/**
 * The thin I/O adapter around SmoltcpStack, run by drive(): a real clock and one timer drive it,
 * packets it emits go to `write` (e.g. the TUN), and each accepted flow becomes the application end
 * of the one pipe (carrier/app-end.ts), so the proxy pipes a userspace-terminated TCP flow exactly
 * as it pipes a kernel socket:
 *
 *   const driver = new SmoltcpDriver(stack, (p) => tun.write(p), (req) => {
 *     dial(req.dst, { signal: req.signal }).then(
 *       (remote) => joinStreams(driver.accept(req.id), remote, onDone),
 *       () => driver.reject(req.id));
 *   });
 *   tun.on('packet', (p) => driver.input(p));
 */
import type { AppEnd, AppEvents } from '../../carrier/app-end.js';
import { TstierError } from '../../errors.js';
import { nowMs } from '../../io/clock.js';
import { drive, type Drive } from '../../io/drive.js';
import type { SocketAddr } from '../../packet/flow-key.js';
import { InputOutcome, type SmoltcpEvent, type SmoltcpStack } from './stack.js';

/** A SYN waiting for the remote dial; `signal` aborts if the client gives up or the stack dies. */
export interface FlowRequest {
  readonly id: number;
  readonly family: 4 | 6;
  readonly src: SocketAddr;
  readonly dst: SocketAddr;
  readonly signal: AbortSignal;
}

/** Rounds of events per pass before yielding to the event loop. */
const MAX_ROUNDS = 64;

export class SmoltcpDriver {
  private readonly sockets = new Map<number, SmoltcpAppEnd>();
  private readonly requests = new Map<number, AbortController>();
  private readonly drive: Drive<Uint8Array, SmoltcpEvent>;
  private closed = false;

  /**
   * `write` receives each outbound IP packet as a view valid only during the call.
   * `clock` gives milliseconds; the default is the monotonic nowMs().
   */
  constructor(
    readonly stack: SmoltcpStack,
    write: (packet: Uint8Array) => void,
    private readonly onFlow: (request: FlowRequest) => void,
    private readonly clock: () => number = nowMs,
  ) {
    // smoltcp's poll() is both its timed work and the pump that moves what input() and the sockets queued.
    const core = {
      pollTimeout: (): number => stack.pollTimeout(),
      handleTimeout: (now: number): void => void stack.poll(now),
      pump: (now: number): void => void stack.poll(now),
      pollTransmit: (): Uint8Array | null => stack.pollTransmit(),
      pollEvent: (): SmoltcpEvent | null => stack.pollEvent(),
    };
    this.drive = drive(core, { transmit: write, event: (e) => this.dispatch(e), clock, maxRounds: MAX_ROUNDS });
  }

  /** An IP packet from the TUN; returns the stack's `InputOutcome` (e.g. newFlow for a SYN it now holds). */
  input(packet: Uint8Array): number {
    if (this.closed) return InputOutcome.dropped;
    const outcome = this.stack.input(packet, this.clock());
    this.kick();
    return outcome;
  }

  /** The remote dial succeeded: answer the SYN and get the flow as the pipe's application end. */
  accept(id: number, onFault?: (error: Error) => void): SmoltcpAppEnd {
    this.stack.accept(id);
    this.requests.delete(id);
    const socket = new SmoltcpAppEnd(this, id, onFault);
    this.sockets.set(id, socket);
    this.kick();
    return socket;
  }

  /** The remote dial failed: answer the SYN with RST. */
  reject(id: number): void {
    this.requests.delete(id);
    this.stack.reject(id);
    this.kick();
  }

  /** The remote destination is unreachable: forget the SYN unanswered (the client's connect times out). */
  drop(id: number): void {
    this.requests.delete(id);
    this.stack.drop(id);
    this.kick();
  }

  /** Stops the timer and resets every flow. */
  close(): void {
    this.closed = true;
    this.drive.stop();
    for (const socket of this.sockets.values()) socket.destroy();
    for (const [id, controller] of this.requests) {
      controller.abort(new TstierError('TSTIER_E_CLOSED', 'smoltcp driver closed'));
      try {
        this.stack.reject(id);
      } catch (e) {
        if (!(e instanceof TstierError)) throw e; // its reset is still queued: gone anyway
      }
    }
    this.requests.clear();
    // The resets leave now: no pass runs after close.
    this.stack.poll(this.clock());
    this.drive.flushTransmit();
  }

  /** Something changed (a packet, a socket's read or write): run one pass soon. */
  kick(): void {
    this.drive.kick();
  }

  forget(id: number): void {
    this.sockets.delete(id);
  }

  private dispatch(e: SmoltcpEvent): void {
    if (e.type === 'new') {
      const controller = new AbortController();
      this.requests.set(e.id, controller);
      this.onFlow({ id: e.id, family: e.family, src: e.src, dst: e.dst, signal: controller.signal });
      return;
    }
    const socket = this.sockets.get(e.id);
    if (!socket) {
      // A held SYN ended before accept: the client reset it, or the stack crashed.
      if (e.type === 'reset' || e.type === 'error') {
        this.requests.get(e.id)?.abort(e.type === 'error' ? e.error : resetError(e.id));
        this.requests.delete(e.id);
      }
      return;
    }
    socket.onStackEvent(e);
  }
}

/**
 * One accepted flow as the pipe's application end (carrier/app-end.ts), straight on the stack: the
 * client's bytes are read from the stack while the pipe wants them, and what the pipe writes goes
 * into the stack's send buffer; the one chunk that does not fit waits here for 'writable'.
 */
export class SmoltcpAppEnd implements AppEnd {
  private on: AppEvents | null = null;
  private paused = true;
  /** The client's FIN has come (its bytes may still be waiting in the stack), and was reported. */
  private finSeen = false;
  private endReported = false;
  /** What the stack could not take yet; write() said false, so nothing follows it before drain. */
  private unsent: Uint8Array | null = null;
  private ended = false;
  private finHandedOver = false;
  /** The stack no longer knows the flow (closed, reset, crashed, or let go). */
  private gone = false;
  private closed = false;

  constructor(
    private readonly driver: SmoltcpDriver,
    readonly id: number,
    /** A stack failure ended this flow (e.g. a wasm trap), for the log. */
    private readonly onFault?: (error: Error) => void,
  ) {}

  get destroyed(): boolean {
    return this.closed;
  }

  get writableEnded(): boolean {
    return this.ended;
  }

  get writableFinished(): boolean {
    return this.finHandedOver;
  }

  bind(on: AppEvents): void {
    this.on = on;
  }

  /** Called by the driver for this flow's stack events. */
  onStackEvent(e: SmoltcpEvent): void {
    switch (e.type) {
      case 'readable':
        this.pull();
        break;
      case 'writable':
        this.flushUnsent();
        break;
      case 'fin':
        this.finSeen = true;
        this.pull();
        break;
      case 'closed':
        // Both FINs are through: the stack has finished the flow on its own.
        this.gone = true;
        this.finSeen = true;
        this.pull();
        break;
      case 'reset':
      case 'error':
        if (e.type === 'error') this.onFault?.(e.error);
        this.gone = true;
        this.close(true);
        break;
      default:
        break;
    }
  }

  write(data: Uint8Array): boolean {
    if (this.closed || this.ended) return true; // its close is on the way
    let n = 0;
    if (!this.onStack(() => (n = this.driver.stack.send(this.id, data))) || n === data.length) return true;
    this.unsent = data.subarray(n);
    return false;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.pull();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.unsent === null) this.shutdown();
  }

  closeSoon(): void {
    // Both directions ended cleanly: the stack finishes the FIN exchange on its own; an abort here
    // would reset a flow whose last bytes and FIN may still be unacknowledged.
    this.gone = true;
    this.close(false);
  }

  destroy(): void {
    if (!(this.endReported && this.finHandedOver)) this.abortStack();
    this.close(false);
  }

  reset(): void {
    this.abortStack();
    this.close(false);
  }

  private pull(): void {
    if (this.paused || this.closed || !this.on) return;
    let took = false;
    while (!this.paused && !this.closed) {
      let chunk: Uint8Array | null = null;
      if (!this.onStack(() => (chunk = this.driver.stack.recv(this.id))) || chunk === null) break;
      took = true;
      this.on.data(chunk);
    }
    // Reading opened the receive window: let the stack tell the client.
    if (took) this.driver.kick();
    if (!this.paused && !this.closed && this.finSeen && !this.endReported) {
      this.endReported = true;
      this.on.end();
    }
  }

  private flushUnsent(): void {
    const p = this.unsent;
    if (p === null || this.closed) return;
    let n = 0;
    if (!this.onStack(() => (n = this.driver.stack.send(this.id, p)))) return;
    if (n < p.length) {
      this.unsent = p.subarray(n);
      return;
    }
    this.unsent = null;
    if (this.ended) this.shutdown();
    this.on?.drain();
  }

  private shutdown(): void {
    if (this.onStack(() => this.driver.stack.shutdownWrite(this.id))) this.finHandedOver = true;
  }

  private abortStack(): void {
    if (!this.gone) this.onStack(() => this.driver.stack.abort(this.id));
    this.gone = true;
  }

  /** The flow is over here: forget it, and tell the pipe (`hadError`: a reset or failure). */
  private close(hadError: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.unsent = null;
    this.driver.forget(this.id);
    // As a socket's 'close', on a later tick: never inside the pipe's own call into this end. A
    // pipe that ended the flow itself has finished and ignores it.
    process.nextTick(() => this.on?.close(hadError));
  }

  /**
   * Runs a stack call for this flow unless it is gone, then flushes; false if it did not run. A flow
   * that vanished between its last event and this call (TSTIER_E_CLOSED) closes as by a reset.
   */
  private onStack(call: () => void): boolean {
    if (this.gone) return false;
    try {
      call();
      this.driver.kick();
      return true;
    } catch (e) {
      if (!(e instanceof TstierError)) throw e;
      this.gone = true;
      this.onFault?.(e);
      this.close(true);
      return false;
    }
  }
}

function resetError(id: number): TstierError {
  return new TstierError('TSTIER_E_CLOSED', `smoltcp flow ${id}: connection reset by the client`);
}
