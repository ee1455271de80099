/**
 * Pipes a TCP socket to a carrier stream (a proxied flow's KCP conversation or QUIC stream), both
 * ways, with back-pressure, half-close and reset:
 *  - socket → stream: bytes the stream cannot take yet stay here and the socket is paused until the
 *    carrier reports the stream writable;
 *  - stream → socket: chunks are written until the socket's buffer is full; then reading stops (so
 *    the carrier's receive window closes) until the socket drains;
 *  - a FIN either way is passed on once every byte before it is delivered;
 *  - a reset either way becomes a reset on the other side (an RST to the application).
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface PipeStream {
  /** Takes what it can of `data` (copying it) and returns how many bytes it took. */
  write(data: Uint8Array): number;
  /** The next chunk for the socket (the caller's to keep), or null. */
  read(): Uint8Array | null;
  /** The peer half-closed and read() has nothing more. */
  readEnded(): boolean;
  /** Our half-close, after the bytes already written. */
  shutdown(): void;
  /** Aborts the stream (the peer sees a reset). */
  abort(): void;
  /** The pipe is done with the stream (after both directions ended, or after an abort). */
  release(): void;
}

/** 'failed': a bug met inside this flow (an exception) closed it, both ways reset. */
export type PipeEnd = 'clean' | 'reset-by-app' | 'reset-by-peer' | 'failed';

/**
 * The application's end: a kernel socket, or any Duplex that ends like one (the userspace stack's
 * flow): 'end' on the peer's FIN, end() for ours, destroy() as a reset, 'close' when done.
 */
export type AppStream = Socket | Duplex;

export class SocketPipe {
  private pending: Uint8Array | null = null;
  private socketFull = false;
  private socketEnded = false;
  private peerEnded = false;
  private done = false;

  constructor(
    private readonly socket: AppStream,
    private readonly stream: PipeStream,
    /** Asks the carrier's driver to send what the stream queued. */
    private readonly kick: () => void,
    /** `cause`: the exception, when a bug ended the flow ('failed'). */
    private readonly onDone: (how: PipeEnd, cause?: unknown) => void,
  ) {
    if ('setNoDelay' in socket) socket.setNoDelay(true);
    socket.on('data', this.guarded((chunk: Buffer) => this.fromSocket(chunk)));
    socket.on('end', this.guarded(() => {
      this.socketEnded = true;
      if (this.pending === null) this.stream.shutdown();
      this.kick();
      this.maybeFinish();
    }));
    socket.on('drain', this.guarded(() => {
      this.socketFull = false;
      this.onReadable();
    }));
    socket.on('error', () => undefined); // 'close' follows with hadError
    socket.on('close', this.guarded((hadError?: boolean) => {
      if (hadError || !this.socketEnded || !this.socket.writableFinished) this.finish('reset-by-app');
      else this.maybeFinish();
    }));
    this.guarded(() => this.onReadable())();
  }

  /**
   * A bug met inside this flow (an exception from the carrier or here): the flow is closed — the
   * application's connection reset, the stream aborted — and the process carries on.
   */
  fail(cause?: unknown): void {
    this.finish('failed', cause);
  }

  /** A socket event handler that turns an exception into this flow's failure, not the process's. */
  private guarded<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
    return (...args: A) => {
      try {
        fn(...args);
      } catch (e) {
        this.fail(e);
      }
    };
  }

  /** The stream can take more bytes. */
  onWritable(): void {
    const p = this.pending;
    if (p === null || this.done) return;
    const n = this.stream.write(p);
    if (n < p.length) {
      this.pending = p.subarray(n);
      return;
    }
    this.pending = null;
    if (this.socketEnded) {
      this.stream.shutdown();
      // The socket may have closed meanwhile (its 'close' found these bytes pending): finish here.
      this.maybeFinish();
    } else this.socket.resume();
    this.kick();
  }

  /** The stream has bytes, or its FIN, for the socket. */
  onReadable(): void {
    if (this.done) return;
    // Corked, the chunks the carrier delivered in one go leave in one writev instead of a syscall each.
    this.socket.cork();
    while (!this.socketFull) {
      const d = this.stream.read();
      if (d === null) break;
      if (!this.socket.write(d)) this.socketFull = true;
    }
    this.socket.uncork();
    if (!this.socketFull && !this.peerEnded && this.stream.readEnded()) {
      this.peerEnded = true;
      this.socket.end();
      this.maybeFinish();
    }
  }

  /** The peer aborted: reset the application's connection. */
  onReset(): void {
    if (this.done) return;
    if ('resetAndDestroy' in this.socket) this.socket.resetAndDestroy();
    else this.socket.destroy(); // a userspace flow answers destroy() with an RST
    this.finish('reset-by-peer');
  }

  private fromSocket(chunk: Buffer): void {
    const n = this.stream.write(chunk);
    if (n < chunk.length) {
      this.pending = chunk.subarray(n);
      this.socket.pause();
    }
    this.kick();
  }

  private maybeFinish(): void {
    if (this.socketEnded && this.peerEnded && this.pending === null) {
      // A kernel socket closes once its FIN is out; a Duplex auto-destroys after both ends.
      if ('destroySoon' in this.socket) this.socket.destroySoon();
      this.finish('clean');
    }
  }

  private finish(how: PipeEnd, cause?: unknown): void {
    if (this.done) return;
    this.done = true;
    try {
      if (how === 'reset-by-app' || how === 'failed') this.stream.abort();
      this.stream.release();
    } catch (e) {
      // The carrier failed while letting go: still end the application's side and report it.
      if (how !== 'failed') cause = e;
      how = 'failed';
    }
    if (!this.socket.destroyed && how !== 'clean') {
      if ('resetAndDestroy' in this.socket && how === 'failed') this.socket.resetAndDestroy();
      else this.socket.destroy();
    }
    this.kick();
    this.onDone(how, cause);
  }
}
