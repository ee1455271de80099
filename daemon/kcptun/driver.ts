/**
 * Binds one KcptunSession to I/O through drive(): a datagram sender, one timer driven by
 * pollTimeout(), and a SocketPipe per smux stream. Datagrams and socket events only kick it;
 * one pass then pumps the layers, dispatches events, and sends.
 */
import type { Socket } from 'node:net';
import { TstierError } from '../errors.js';
import type { KcptunSession, KcptunSessionEvent } from '../transport/session/kcptun-session.js';
import { nowMs } from '../io/clock.js';
import { drive, type Drive } from '../io/drive.js';
import { SocketPipe, type PipeEnd, type PipeStream } from '../carrier/socket-pipe.js';

/** A smux stream attached to its socket. */
interface AttachedStream {
  readonly pipe: SocketPipe;
  /** The peer's FIN arrived. */
  onFin(): void;
}


export interface DriverHooks {
  /** The peer opened a stream (server side): dial the target and attach() it. */
  onAccept?(driver: SessionDriver, sid: number): void;
  /** The session ended; error is null when closed locally. */
  onClosed(driver: SessionDriver, error: TstierError | null): void;
  /** A stream's pipe ended, and how (anything but 'clean' reset or cut the application's side). */
  onStreamClosed?(driver: SessionDriver, sid: number, how: PipeEnd): void;
}

export class SessionDriver {
  readonly pipes = new Map<number, AttachedStream>();
  readonly createdAt = nowMs();
  private ended = false;
  private readonly drive: Drive<Uint8Array, KcptunSessionEvent>;
  readonly kick = (): void => this.drive.kick();

  constructor(
    readonly session: KcptunSession,
    send: (datagram: Uint8Array) => void,
    private readonly hooks: DriverHooks,
    private readonly closeWaitMs: number,
  ) {
    this.drive = drive(session, {
      event: (e) => this.dispatch(e),
      transmit: send,
      // One flush per pass answers every datagram the pass took (their ACKs, the window they opened).
      afterEvents: (now) => session.flushAcks(now),
      // An exception in a pass (a bug) ends this session, never the process.
      failed: (e) => this.end(new TstierError('TSTIER_E_CLOSED', `internal error: ${(e as Error).message}`, { cause: e })),
    });
    this.kick();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** A datagram for this session from the socket. */
  input(datagram: Uint8Array): void {
    if (this.ended) return;
    this.session.input(datagram, nowMs());
    this.kick();
  }

  /** A datagram the caller already opened (server routing). */
  inputOpened(datagram: Uint8Array, offset: number): void {
    if (this.ended) return;
    this.session.inputOpened(datagram, offset, nowMs());
    this.kick();
  }

  /** Pipes a smux stream to a TCP socket (data and a FIN may have arrived while the caller was dialling). */
  attach(sid: number, socket: Socket): SocketPipe {
    const s = this.session;
    let fin = this.sawFin.delete(sid);
    // smux has no reset: an abort closes the stream like a FIN (release; kcptun does the same).
    const stream: PipeStream = {
      write: (d) => s.streamWrite(sid, d),
      read: () => s.streamRead(sid),
      readEnded: () => fin && !s.streamReadable(sid),
      shutdown: () => s.streamShutdown(sid),
      abort: () => undefined,
      release: () => s.streamClose(sid),
    };
    const pipe = new SocketPipe(socket, stream, this.kick, (how) => {
      this.pipes.delete(sid);
      this.hooks.onStreamClosed?.(this, sid, how);
    }, { closeWaitMs: this.closeWaitMs });
    this.pipes.set(sid, {
      pipe, onFin: () => {
        fin = true;
        pipe.onReadable();
      },
    });
    this.kick();
    return pipe;
  }

  /** A stream that will never be attached (its target could not be dialled): close it. */
  reject(sid: number): void {
    this.sawFin.delete(sid);
    this.session.streamClose(sid);
    this.kick();
  }

  /** FINs that arrived for streams not attached yet. */
  private readonly sawFin = new Set<number>();

  private dispatch(e: KcptunSessionEvent): void {
    switch (e.type) {
      case 'accept':
        this.hooks.onAccept?.(this, e.sid);
        break;
      case 'readable':
        this.pipes.get(e.sid)?.pipe.onReadable();
        break;
      case 'writable':
        this.pipes.get(e.sid)?.pipe.onWritable();
        break;
      case 'fin': {
        const entry = this.pipes.get(e.sid);
        if (entry) entry.onFin();
        else this.sawFin.add(e.sid);
        break;
      }
      case 'closed':
        this.drive.flushTransmit();
        this.end(e.error);
        break;
    }
  }

  /** Closes the session and every stream. */
  close(): void {
    if (this.ended) return;
    this.session.close();
    // Send what is queued (FINs) once more before going quiet.
    this.drive.flushTransmit();
    this.end(null);
  }

  private end(error: TstierError | null): void {
    if (this.ended) return;
    this.ended = true;
    this.drive.stop();
    // The session is gone: every stream's application sees a reset.
    for (const p of [...this.pipes.values()]) p.pipe.onReset();
    this.session.release();
    this.hooks.onClosed(this, error);
  }
}

/** The per-stream close line; a stream that did not end cleanly says how (a reset, close-wait, a failure). */
export function streamClosedLine(sid: number, how: PipeEnd): string {
  return how === 'clean' ? `stream closed sid: ${sid}` : `stream closed sid: ${sid} (${how})`;
}
