/**
 * The thin I/O adapter around SmoltcpStack, run by drive(): a real clock and one timer drive it,
 * packets it emits go to `write` (e.g. the TUN), and each accepted flow becomes a Node Duplex
 * stream, so the proxy can pipe a userspace-terminated TCP flow like a net.Socket.
 *
 *   const driver = new SmoltcpDriver(stack, (p) => tun.write(p), (req) => {
 *     dial(req.dst, { signal: req.signal }).then(
 *       (remote) => remote.pipe(driver.accept(req.id)).pipe(remote),
 *       () => driver.reject(req.id));
 *   });
 *   tun.on('packet', (p) => driver.input(p));
 */
import { Duplex } from 'node:stream';

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
  private readonly sockets = new Map<number, SmoltcpSocket>();
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

  /** The remote dial succeeded: answer the SYN and get the flow as a stream. */
  accept(id: number): SmoltcpSocket {
    this.stack.accept(id);
    this.requests.delete(id);
    const socket = new SmoltcpSocket(this, id);
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

/** One accepted flow as a Duplex: reads are the client's bytes, writes go to the client. */
export class SmoltcpSocket extends Duplex {
  private reading = false;
  private unsent: Uint8Array | null = null;
  private unsentCallback: ((error?: Error | null) => void) | null = null;
  /** The stack no longer knows the flow (closed, reset or crashed). */
  private gone = false;

  constructor(
    private readonly driver: SmoltcpDriver,
    readonly id: number,
  ) {
    super({ allowHalfOpen: true });
  }

  /** Called by the driver for this flow's stack events. */
  onStackEvent(e: SmoltcpEvent): void {
    switch (e.type) {
      case 'readable':
        if (this.reading) this.pull();
        break;
      case 'writable':
        this.trySend();
        break;
      case 'fin':
        this.push(null);
        break;
      case 'closed':
        // Both FINs are through; the stream ends (and auto-destroys) once its reader drains it.
        this.gone = true;
        this.push(null);
        break;
      case 'reset':
      case 'error':
        this.gone = true;
        this.destroy(e.type === 'error' ? e.error : resetError(this.id));
        break;
      default:
        break;
    }
  }

  override _read(): void {
    this.reading = true;
    this.pull();
  }

  override _write(chunk: Uint8Array, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.unsent = chunk;
    this.unsentCallback = callback;
    this.trySend();
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback(this.onStack(() => this.driver.stack.shutdownWrite(this.id)));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Both directions ended cleanly (auto-destroy): the stack finishes the FIN exchange on its own;
    // an abort here would reset a flow whose last bytes and FIN may still be unacknowledged.
    if (error || !this.readableEnded || !this.writableFinished) this.onStack(() => this.driver.stack.abort(this.id));
    this.gone = true;
    this.driver.forget(this.id);
    this.finishWrite(error ?? closedError(this.id));
    callback(error);
  }

  private pull(): void {
    let took = false;
    const failed = this.onStack(() => {
      while (this.reading) {
        const chunk = this.driver.stack.recv(this.id);
        if (!chunk) break;
        took = true;
        this.reading = this.push(chunk);
      }
    });
    if (failed) this.destroy(failed);
    // Reading opened the receive window: let the stack tell the client.
    else if (took) this.driver.kick();
  }

  private trySend(): void {
    if (!this.unsent) return;
    const failed = this.onStack(() => {
      const n = this.driver.stack.send(this.id, this.unsent!);
      this.unsent = n === this.unsent!.length ? null : this.unsent!.subarray(n);
    });
    if (failed) this.finishWrite(failed);
    else if (!this.unsent) this.finishWrite(null);
  }

  /**
   * Runs a stack call for this flow unless it is gone, then flushes. A flow that vanished
   * between its last event and this call (TSTIER_E_CLOSED) is returned as an error.
   */
  private onStack(call: () => void): TstierError | null {
    if (this.gone) return null;
    try {
      call();
      this.driver.kick();
      return null;
    } catch (e) {
      if (!(e instanceof TstierError)) throw e;
      this.gone = true;
      return e;
    }
  }

  private finishWrite(error: Error | null): void {
    const callback = this.unsentCallback;
    this.unsent = null;
    this.unsentCallback = null;
    callback?.(error);
  }
}

function resetError(id: number): TstierError {
  return new TstierError('TSTIER_E_CLOSED', `smoltcp flow ${id}: connection reset by the client`);
}

function closedError(id: number): TstierError {
  return new TstierError('TSTIER_E_CLOSED', `smoltcp flow ${id}: closed before the write was sent`);
}
