/**
 * A kcptun session, sans-IO: datagrams on one side, smux streams on the other.
 *
 *   datagrams ⇄ KcpLink (crypt + FEC + KCP) ⇄ snappy framing (unless nocomp) ⇄ smux session ⇄ streams
 *
 * The caller feeds datagrams with input(), sends what pollTransmit() yields, runs handleTimeout() at
 * pollTimeout(), and uses the stream methods and pollEvent() for the smux side. After a batch of
 * calls it calls pump(now) once (input() and the stream writes do not flush on their own), so many
 * datagrams or writes in one event-loop turn cost one KCP flush.
 *
 * Back-pressure: smux frames are pulled into KCP only while KCP's window has room (kcptun 2021's
 * Write blocks at waitsnd ≥ min(snd_wnd, rmt_wnd)); smux's per-stream send buffer then fills and
 * write() comes up short, which the TCP adapter answers by pausing its socket. The other way, KCP is
 * read only while smux wants input (its receive bucket is not exhausted).
 */
import { SmuxSession, type SmuxEvent } from '../smux/session.js';
import type { SmuxConfig } from '../smux/config.js';
import { Fifo } from '../smux/queue.js';
import { SnappyFrameReader, SnappyFrameWriter } from '../snappy/framing.js';
import { TstierError } from '../../errors.js';
import { KcpLink, type KcpLinkConfig } from './kcp-link.js';
import type { KcptunSnmp } from './snmp.js';

export interface KcptunSessionConfig extends KcpLinkConfig {
  /** snappy framing between KCP and smux (kcptun: on unless --nocomp). */
  compress: boolean;
  smux: Partial<SmuxConfig>;
  role: 'client' | 'server';
}

/** What the adapter must react to; 'input-ready' is handled inside. */
export type KcptunSessionEvent = Exclude<SmuxEvent, { type: 'input-ready' }>;

/** smux frames are pulled into KCP this many bytes at a time (whole frames; PSH cut to fit). */
const TX_CHUNK = 65536;
/** KCP stream bytes are read into arenas of this size and handed up as views. */
const RX_ARENA = 65536;
/** A read starts a new arena when less than this is left in the current one. */
const RX_MIN_ROOM = 2048;

export class KcptunSession {
  readonly link: KcpLink;
  readonly smux: SmuxSession;
  private readonly writer: SnappyFrameWriter | null;
  private readonly reader: SnappyFrameReader | null;
  private readonly txBuf = new Uint8Array(TX_CHUNK);
  private rxArena: Uint8Array = Buffer.allocUnsafe(RX_ARENA);
  private rxPos = 0;
  private readonly events = new Fifo<KcptunSessionEvent>();
  private readonly writeLink = (part: Uint8Array): void => this.link.write(part);
  private dead: TstierError | null = null;

  constructor(
    cfg: KcptunSessionConfig,
    snmp: KcptunSnmp,
    now: number,
  ) {
    this.link = new KcpLink(cfg, snmp);
    this.smux = new SmuxSession(cfg.role, cfg.smux, now);
    this.writer = cfg.compress ? new SnappyFrameWriter() : null;
    this.reader = cfg.compress ? new SnappyFrameReader() : null;
  }

  get conv(): number {
    return this.link.kcp.conv;
  }

  /** True once smux has closed (keepalive timeout, protocol error, or closeSession()). */
  get closed(): boolean {
    return this.smux.isClosed();
  }

  /** A datagram from the socket; it is decrypted in place. Call pump() after the batch. */
  input(datagram: Uint8Array, now: number): number {
    return this.link.input(datagram, now);
  }

  /** A datagram the caller already opened (see KcpLink.inputOpened). */
  inputOpened(datagram: Uint8Array, offset: number, now: number): number {
    return this.link.inputOpened(datagram, offset, now);
  }

  pollTransmit(): Uint8Array | null {
    return this.link.pollTransmit();
  }

  /** A datagram from pollTransmit() that was sent (copied out): its buffer is reused. */
  recycleTransmit(datagram: Uint8Array): void {
    this.link.recycleTransmit(datagram);
  }

  pollTimeout(): number {
    const s = this.smux.pollTimeout();
    const k = this.link.pollTimeout();
    return s === null || k < s ? k : s;
  }

  handleTimeout(now: number): void {
    this.link.handleTimeout(now);
    this.smux.handleTimeout(now);
    this.pump(now);
  }

  /**
   * Moves bytes between the layers: KCP → snappy → smux while smux wants input, smux → snappy → KCP
   * while KCP's window has room, then one KCP flush if anything was written.
   */
  pump(now: number): void {
    this.pumpIn(now);
    this.pumpOut(now);
    this.drainSmuxEvents(now);
  }

  /** Answers the datagrams input() took since the last flush, once per batch (see KcpLink.flushAcks). */
  flushAcks(now: number): void {
    this.link.flushAcks(now);
  }

  private pumpIn(now: number): void {
    const link = this.link;
    while (this.smux.wantsInput() && link.readable()) {
      if (RX_ARENA - this.rxPos < RX_MIN_ROOM) {
        // Not zeroed: only the spans KCP's read() filled are ever handed up.
        this.rxArena = Buffer.allocUnsafe(RX_ARENA);
        this.rxPos = 0;
      }
      const start = this.rxPos;
      const n = link.read(this.rxArena, start, RX_ARENA);
      if (n === 0) break;
      this.rxPos += n;
      const bytes = this.rxArena.subarray(start, start + n);
      if (this.reader) {
        const chunks = this.reader.push(bytes);
        if (chunks instanceof TstierError) {
          this.fail(chunks);
          return;
        }
        for (const c of chunks) this.smux.input(c, now);
      } else {
        this.smux.input(bytes, now);
      }
    }
  }

  private pumpOut(now: number): void {
    const link = this.link;
    let wrote = false;
    while (link.canWrite() && this.smux.wantsTransmit()) {
      const n = this.smux.pollTransmit(this.txBuf);
      if (n === 0) break;
      const frames = this.txBuf.subarray(0, n);
      // KCP copies what it is given, so txBuf (and each part the writer emits) is free again at once.
      if (this.writer) this.writer.writeParts(frames, this.writeLink);
      else link.write(frames);
      wrote = true;
    }
    if (wrote) link.flush(now);
  }

  private drainSmuxEvents(now: number): void {
    let e: SmuxEvent | null;
    while ((e = this.smux.pollEvent()) !== null) {
      if (e.type === 'input-ready') {
        this.pumpIn(now);
        this.pumpOut(now); // reading may have queued v2 window updates
      } else {
        this.events.push(e);
      }
    }
  }

  private fail(error: TstierError): void {
    if (this.dead) return;
    this.dead = error;
    this.smux.closeSession();
    // closeSession() reports a null error; report the real cause instead.
    let e: SmuxEvent | null;
    while ((e = this.smux.pollEvent()) !== null) {
      if (e.type !== 'closed' && e.type !== 'input-ready') this.events.push(e);
    }
    this.events.push({ type: 'closed', error });
  }

  /** The next event for the adapter, or null. */
  pollEvent(): KcptunSessionEvent | null {
    return this.events.shift() ?? null;
  }

  // ---- streams ----

  /** Opens a stream (client side); its SYN goes out at the next pump(). */
  openStream(): number | TstierError {
    return this.smux.open();
  }

  /** Queues bytes on a stream; returns how many were taken (wait for 'writable' for the rest). */
  streamWrite(sid: number, data: Uint8Array): number {
    return this.smux.write(sid, data);
  }

  /** The next buffered bytes of a stream (a view), or null. */
  streamRead(sid: number): Uint8Array | null {
    return this.smux.read(sid);
  }

  streamReadable(sid: number): boolean {
    return this.smux.readable(sid) > 0;
  }

  /** Half-close: FIN after the queued data. */
  streamShutdown(sid: number): void {
    this.smux.closeWrite(sid);
  }

  /** Full close of one stream. */
  streamClose(sid: number): void {
    this.smux.close(sid);
  }

  /** Ends the session; a 'closed' event follows. */
  close(): void {
    this.smux.closeSession();
  }

  /** Returns KCP's buffers to the shared pool once the session is over; nothing may be called after. */
  release(): void {
    this.link.release();
  }
}
