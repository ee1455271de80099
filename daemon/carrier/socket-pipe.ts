/**
 * The one pipe between an application's stream (a TCP socket, or a userspace-stack flow: its
 * AppEnd, app-end.ts) and a carrier stream: a proxied flow's KCP conversation or QUIC stream, a kcptun smux stream, a kcptube
 * connection, or a second application stream (joinStreams). One set of rules for all of them:
 *  - socket → stream: bytes the stream cannot take yet stay here and the socket is paused until the
 *    stream's owner reports it writable (onWritable);
 *  - stream → socket: chunks are written until the socket's buffer is full; then reading stops (so
 *    the carrier's receive window closes; a stream that pushes is told to hold) until it drains;
 *  - half-close both ways: a FIN either way is passed on once every byte before it is delivered;
 *  - a reset either way becomes a reset on the other side (an RST to the application);
 *  - close-wait: with `closeWaitMs`, a half-closed pair lingers at most that long after the first
 *    direction ends, then both sides are closed ('close-wait');
 *  - every byte is counted: rxBytes from the application, txBytes to it.
 */
import type { Socket } from 'node:net';
import { appEnd, resetApp, type AppEnd, type AppStream } from './app-end.js';

export type { AppStream } from './app-end.js';

export interface PipeStream {
  /** Takes what it can of `data` (copying it, or keeping the view) and returns how many bytes it took. */
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
  /**
   * The socket's buffer filled (true) or drained (false). Only a stream that pushes its bytes rather
   * than waiting to be read needs it: it stops delivering meanwhile.
   */
  hold?(full: boolean): void;
}

/** 'failed': a bug met inside this flow (an exception) closed it, both ways reset. */
export type PipeEnd = 'clean' | 'reset-by-app' | 'reset-by-peer' | 'close-wait' | 'failed';

/** Bytes through a pipe: rxBytes from the application into the stream, txBytes from the stream to it. */
export interface PipeCounters {
  rxBytes: number;
  txBytes: number;
}

export interface PipeOptions {
  /** How long a half-closed pair may linger after its first direction ends; default: until the other ends. */
  closeWaitMs?: number;
  /** Where the bytes are counted (e.g. the flow table's row); default: the pipe's own. */
  counters?: PipeCounters;
}

export class SocketPipe {
  readonly counters: PipeCounters;
  private pending: Uint8Array | null = null;
  private socketFull = false;
  private socketEnded = false;
  private peerEnded = false;
  private done = false;
  private readonly closeWaitMs: number;
  private lingerTimer: NodeJS.Timeout | undefined;
  private readonly socket: AppEnd;

  constructor(
    app: AppStream,
    private readonly stream: PipeStream,
    /** Asks the stream's driver to send what the stream queued. */
    private readonly kick: () => void,
    /** `cause`: the exception, when a bug ended the flow ('failed'). */
    private readonly onDone: (how: PipeEnd, cause?: unknown) => void,
    opts: PipeOptions = {},
  ) {
    this.counters = opts.counters ?? { rxBytes: 0, txBytes: 0 };
    this.closeWaitMs = opts.closeWaitMs ?? 0;
    const socket = this.socket = appEnd(app);
    socket.bind({
      data: this.guarded((chunk: Uint8Array) => this.fromSocket(chunk)),
      end: this.guarded(() => {
        this.socketEnded = true;
        if (this.pending === null) this.stream.shutdown();
        this.kick();
        this.maybeFinish();
      }),
      drain: this.guarded(() => {
        this.setFull(false);
        this.onReadable();
        this.kick();
      }),
      close: this.guarded((hadError: boolean) => {
        // A clean close after both FINs may come while socket bytes still wait for room in the
        // stream: the pair finishes once they are handed over (onWritable).
        if (hadError || !this.socketEnded || !this.socket.writableFinished) this.finish('reset-by-app');
        else this.maybeFinish();
      }),
    });
    this.guarded(() => this.onReadable())();
  }

  /**
   * A bug met inside this flow (an exception from the stream or here): the flow is closed — the
   * application's connection reset, the stream aborted — and the process carries on.
   */
  fail(cause?: unknown): void {
    this.finish('failed', cause);
  }

  /** The stream can take more bytes. */
  onWritable(): void {
    const p = this.pending;
    if (p === null || this.done) return;
    const n = this.offer(p);
    if (this.pending !== null) {
      // What the stream did take waits in it: have the driver send it.
      if (n > 0) this.kick();
      return;
    }
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
    // Corked, the chunks the stream delivered in one go leave in one writev instead of a syscall each.
    this.socket.cork?.();
    while (!this.socketFull) {
      const d = this.stream.read();
      if (d === null) break;
      this.counters.txBytes += d.length;
      if (!this.socket.write(d)) this.setFull(true);
    }
    this.socket.uncork?.();
    if (!this.socketFull && !this.peerEnded && this.stream.readEnded()) {
      this.peerEnded = true;
      this.socket.end();
      this.maybeFinish();
    }
  }

  /** The peer aborted (or its session ended): reset the application's connection. */
  onReset(): void {
    if (this.done) return;
    this.socket.reset();
    this.finish('reset-by-peer');
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

  private fromSocket(chunk: Uint8Array): void {
    this.offer(chunk);
    if (this.pending !== null) this.socket.pause();
    this.kick();
  }

  /** Writes what the stream takes of `d`, counting it; the rest becomes `pending` (null: all taken). Returns the bytes taken. */
  private offer(d: Uint8Array): number {
    const n = this.stream.write(d);
    this.counters.rxBytes += n;
    this.pending = n < d.length ? d.subarray(n) : null;
    return n;
  }

  private setFull(full: boolean): void {
    if (this.socketFull === full) return;
    this.socketFull = full;
    this.stream.hold?.(full);
  }

  /** Both directions done: finish. One done: start the close-wait timer, if there is one. */
  private maybeFinish(): void {
    if (this.done) return;
    const fromAppDone = this.socketEnded && this.pending === null;
    if (fromAppDone && this.peerEnded) {
      this.socket.closeSoon();
      this.finish('clean');
      return;
    }
    if ((fromAppDone || this.peerEnded) && this.closeWaitMs > 0 && !this.lingerTimer) {
      this.lingerTimer = setTimeout(this.guarded(() => this.finish('close-wait')), this.closeWaitMs);
      this.lingerTimer.unref();
    }
  }

  private finish(how: PipeEnd, cause?: unknown): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.lingerTimer);
    try {
      if (how === 'reset-by-app' || how === 'close-wait' || how === 'failed') this.stream.abort();
      this.stream.release();
    } catch (e) {
      // The stream failed while letting go: still end the application's side and report it.
      if (how !== 'failed') cause = e;
      how = 'failed';
    }
    if (!this.socket.destroyed && how !== 'clean') {
      // After close-wait the application has our FIN or we have its: a close, not an abort.
      if (how === 'failed') this.socket.reset();
      else if (how === 'close-wait' && this.socket.writableEnded) this.socket.closeSoon();
      else this.socket.destroy();
    }
    this.kick();
    this.onDone(how, cause);
  }
}

/**
 * Joins two application streams both ways (a userspace-stack flow or a kernel socket, and a kernel
 * socket): `b` is read (paused mode) and written as the pipe's stream, so back-pressure, half-close,
 * reset and close-wait follow the same rules as a carried flow's. A kernel socket must allow half-open.
 */
export function joinStreams(a: AppStream, b: Socket, onDone: (how: PipeEnd, cause?: unknown) => void,
  opts: PipeOptions = {}): SocketPipe {
  const pipe = new SocketPipe(a, streamOf(b), () => undefined, onDone, opts);
  b.on('readable', () => pipe.onReadable());
  b.on('end', () => pipe.onReadable());
  b.on('drain', () => pipe.onWritable());
  b.on('error', () => undefined); // 'close' follows
  b.on('close', () => {
    if (!b.readableEnded || !b.writableFinished) pipe.onReset();
  });
  a.resume();
  return pipe;
}

/** `s` as a pipe's stream: read in paused mode, written until its buffer is full, ended, reset. */
function streamOf(s: Socket): PipeStream {
  return {
    write: (d) => {
      if (s.destroyed) return d.length; // its 'close' resets the pipe
      if (s.writableNeedDrain) return 0;
      s.write(d);
      return d.length;
    },
    read: () => s.read() as Buffer | null,
    readEnded: () => s.readableEnded,
    shutdown: () => s.end(),
    abort: () => resetApp(s),
    // Both directions ended: the socket closes once its FIN is out.
    release: () => s.destroySoon(),
  };
}
