/**
 * Pipes one smux stream of a kcptun session to one TCP socket, both ways, with back-pressure:
 *  - TCP → stream: bytes the session cannot take yet (its stream send buffer is full, because KCP's
 *    window is full) stay here and the socket is paused until the session reports the stream writable;
 *  - stream → TCP: the session's bytes are written until the socket's buffer is full; then reading
 *    stops (so smux withholds its window / stops reading KCP) until the socket drains.
 * Half-close is honoured both ways. --closewait bounds how long a half-closed pair may linger.
 */
import type { Socket } from 'node:net';
import type { KcptunSession } from '../transport/session/kcptun-session.js';

export class StreamPipe {
  /** TCP bytes not yet accepted by the session. */
  private pending: Uint8Array | null = null;
  private socketFull = false;
  private tcpEnded = false;
  private streamEnded = false;
  private closed = false;
  private lingerTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly session: KcptunSession,
    readonly sid: number,
    private readonly socket: Socket,
    /** Asks the session's driver to run (flush output, re-arm its timer). */
    private readonly kick: () => void,
    private readonly closeWaitMs: number,
    private readonly onClosed: (pipe: StreamPipe) => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.fromTcp(chunk));
    socket.on('end', () => {
      this.tcpEnded = true;
      if (this.pending === null) this.session.streamShutdown(this.sid);
      this.kick();
      this.maybeFinish();
    });
    socket.on('drain', () => {
      this.socketFull = false;
      this.onReadable();
      this.kick();
    });
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', (hadError: boolean) => {
      // A clean close after both FINs may come while TCP bytes still wait for room in the stream:
      // the pair closes once they are handed over (onWritable).
      if (!hadError && this.tcpEnded && this.pending !== null) return;
      this.close();
    });
  }

  private fromTcp(chunk: Buffer): void {
    const n = this.session.streamWrite(this.sid, chunk);
    if (n < chunk.length) {
      this.pending = chunk.subarray(n);
      this.socket.pause();
    }
    this.kick();
  }

  /** The session can take more bytes for this stream. */
  onWritable(): void {
    const p = this.pending;
    if (p === null || this.closed) return;
    const n = this.session.streamWrite(this.sid, p);
    if (n < p.length) {
      this.pending = p.subarray(n);
      return;
    }
    this.pending = null;
    if (this.tcpEnded) {
      this.session.streamShutdown(this.sid);
      this.maybeFinish();
    } else {
      this.socket.resume();
    }
  }

  /** The session has bytes for this stream. */
  onReadable(): void {
    if (this.closed) return;
    // Corked, the frames read in one go leave in one writev instead of one syscall each.
    this.socket.cork();
    while (!this.socketFull) {
      const d = this.session.streamRead(this.sid);
      if (d === null) break;
      if (!this.socket.write(d)) this.socketFull = true;
    }
    this.socket.uncork();
    if (this.streamEnded && !this.socketFull && !this.socket.writableEnded && !this.session.streamReadable(this.sid)) {
      this.socket.end();
      this.maybeFinish();
    }
  }

  /** The peer sent FIN: end the TCP write side once every byte before it is written. */
  onFin(): void {
    this.streamEnded = true;
    this.onReadable();
  }

  /**
   * Both directions done (every TCP byte handed to smux, every stream byte to the socket): close.
   * One done: start the --closewait timer if there is one.
   */
  private maybeFinish(): void {
    if (this.closed) return;
    const tcpDone = this.tcpEnded && this.pending === null;
    if (tcpDone && this.socket.writableEnded) {
      this.close();
      return;
    }
    if ((tcpDone || this.socket.writableEnded) && this.closeWaitMs > 0 && !this.lingerTimer) {
      this.lingerTimer = setTimeout(() => this.close(), this.closeWaitMs);
      this.lingerTimer.unref();
    }
  }

  /** Closes both sides; safe to call more than once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.session.streamClose(this.sid);
    if (!this.socket.destroyed) {
      if (this.socket.writableEnded) this.socket.destroySoon();
      else this.socket.destroy();
    }
    this.kick();
    this.onClosed(this);
  }
}
