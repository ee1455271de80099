/**
 * A sans-IO smux session (xtaci/smux v1 and v2 on the wire, as kcptun uses it).
 *
 * The caller moves bytes: input() takes what the underlying stream (KCP, maybe via snappy) delivered,
 * pollTransmit() fills a buffer with frames to send, pollTimeout()/handleTimeout() drive keepalive,
 * pollEvent() reports what changed. Streams are numbers (their smux ids).
 *
 * Ownership: input() and write() may keep views of the buffers they are given, so callers must not reuse
 * those buffers; read() may hand out such views. (Payloads that are a small part of a large buffer are
 * copied, so buffered memory stays close to the byte counts flow control works with.)
 */
import { TstierError } from '../../errors.js';
import { type SmuxConfig, smuxConfig } from './config.js';
import {
  CMD_FIN, CMD_NOP, CMD_PSH, CMD_SYN, CMD_UPD, HEADER_SIZE, type SmuxHeader, UPD_PAYLOAD_SIZE,
  readHeader, readU32, writeHeader, writeU32,
} from './frame.js';
import { ByteQueue, Fifo, compact } from './queue.js';

export type SmuxRole = 'client' | 'server';

export type SmuxEvent =
  /** The peer opened a stream (SYN). */
  | { type: 'accept'; sid: number }
  /** A stream's read buffer went from empty to non-empty: read() until null. */
  | { type: 'readable'; sid: number }
  /** A stream whose write() came up short can take more now. */
  | { type: 'writable'; sid: number }
  /** The peer sent FIN: once read() has drained the buffer, readEnded(sid) is true. */
  | { type: 'fin'; sid: number }
  /** wantsInput() turned true again after back-pressure: resume feeding input(). */
  | { type: 'input-ready' }
  /** The session is over; error is null when closeSession() was called locally. */
  | { type: 'closed'; error: TstierError | null };

/** smux v2 assumes this peer window until the peer's first UPD. */
const INITIAL_PEER_WINDOW = 262144;
/** smux's accept channel capacity; beyond it smux stops reading, and so do we. */
const ACCEPT_BACKLOG = 1024;

class Stream {
  readonly recv = new ByteQueue();
  readonly send = new ByteQueue();
  finReceived = false;
  /** SYN still to transmit (locally opened streams). */
  synPending = false;
  /** closeWrite()/close() asked for a FIN after the queued data. */
  finQueued = false;
  finSent = false;
  /** close() was called: incoming data is discarded and the stream goes away once its FIN is out. */
  closed = false;
  /** write() came up short; report 'writable' when room appears. */
  writeBlocked = false;
  /** Already in the session's round-robin ring. */
  inRing = false;
  // v2 flow control, all u32 counters with wrap-around arithmetic.
  updPending = false;
  numRead = 0;
  incr = 0;
  numWritten = 0;
  peerConsumed = 0;
  peerWindow = INITIAL_PEER_WINDOW;

  constructor(readonly sid: number) {}

  hasOutput(): boolean {
    return this.synPending || this.updPending || this.send.length > 0 || (this.finQueued && !this.finSent);
  }
}

export class SmuxSession {
  readonly config: SmuxConfig;
  readonly role: SmuxRole;
  private readonly streams = new Map<number, Stream>();
  /** Streams with frames to send, served round-robin, one data frame per visit. */
  private readonly ring = new Fifo<Stream>();
  private readonly events = new Fifo<SmuxEvent>();
  private nextSid: number;
  private closedFlag = false;

  // Receive side.
  /** Session receive bucket: bytes the peer may still send before we stop taking input. */
  private bucket: number;
  private pendingAccepts = 0;
  private inputPaused = false;
  private readonly header: SmuxHeader = { version: 0, cmd: 0, length: 0, sid: 0 };
  private readonly headerBuf = new Uint8Array(HEADER_SIZE);
  private headerFill = 0;
  /** Payload bytes of the current frame still to come; -1 between frames. */
  private payloadLeft = -1;
  /** Where the current PSH payload goes (null: discard). */
  private payloadTarget: Stream | null = null;
  private readonly updBuf = new Uint8Array(UPD_PAYLOAD_SIZE);
  private updFill = 0;

  // Keepalive.
  private nopPending = false;
  /**
   * When the peer last showed life: its last frame header, or the last time we were not reading on
   * purpose. smux's ticker checks only every keepAliveTimeout, so a dead peer took up to twice the
   * timeout to notice; here a session closes keepAliveTimeout after the peer went silent.
   */
  private heardAt: number;
  /** The `now` of the latest input() or handleTimeout(). */
  private lastNow: number;
  private nextPing: number;

  constructor(role: SmuxRole, config: Partial<SmuxConfig>, now: number) {
    this.config = smuxConfig(config);
    this.role = role;
    // The id is advanced by 2 before use: client 3, 5, 7, ...; server 2, 4, 6, ...
    this.nextSid = role === 'client' ? 1 : 0;
    this.bucket = this.config.maxReceiveBuffer;
    this.nextPing = this.config.keepAliveInterval > 0 ? now + this.config.keepAliveInterval : Infinity;
    this.heardAt = now;
    this.lastNow = now;
  }

  get version(): number {
    return this.config.version;
  }

  isClosed(): boolean {
    return this.closedFlag;
  }

  /** Number of streams still known to the session (open, half-closed, or closing with a FIN to send). */
  get streamCount(): number {
    return this.streams.size;
  }

  // ---------------------------------------------------------------- receive

  /**
   * Consumes bytes of the underlying stream, split anywhere. Keeps views of bytes (see the file comment).
   * `now` times the peer's last frame, for the keepalive timeout (default: the last time given).
   */
  input(bytes: Uint8Array, now = this.lastNow): void {
    this.lastNow = now;
    let p = 0;
    const n = bytes.length;
    while (p < n && !this.closedFlag) {
      if (this.payloadLeft < 0) {
        let h: SmuxHeader;
        if (this.headerFill === 0 && n - p >= HEADER_SIZE) {
          h = readHeader(bytes, p, this.header);
          p += HEADER_SIZE;
        } else {
          const take = Math.min(HEADER_SIZE - this.headerFill, n - p);
          this.headerBuf.set(bytes.subarray(p, p + take), this.headerFill);
          this.headerFill += take;
          p += take;
          if (this.headerFill < HEADER_SIZE) break;
          this.headerFill = 0;
          h = readHeader(this.headerBuf, 0, this.header);
        }
        this.onHeader(h);
      } else {
        const take = Math.min(this.payloadLeft, n - p);
        this.onPayload(bytes, p, take);
        p += take;
        this.payloadLeft -= take;
        if (this.payloadLeft === 0) this.endFrame();
      }
    }
    if (!this.wantsInput() && !this.closedFlag) this.inputPaused = true;
  }

  /** The underlying byte stream ended (KCP session gone). Ends the session; mid-frame it is an error. */
  inputEnded(): void {
    if (this.closedFlag) return;
    const midFrame = this.headerFill > 0 || this.payloadLeft >= 0;
    this.shutdown(new TstierError(
      midFrame ? 'TSTIER_E_PROTOCOL' : 'TSTIER_E_CLOSED',
      midFrame ? 'smux: underlying stream ended inside a frame' : 'smux: underlying stream ended',
    ));
  }

  /**
   * False while the receive bucket is exhausted (unread data ≥ maxReceiveBuffer) or the accept backlog is
   * full: the adapter should stop reading the underlying stream, which back-pressures the peer through KCP.
   * An 'input-ready' event says when to resume.
   */
  wantsInput(): boolean {
    return !this.closedFlag && this.bucket > 0 && this.pendingAccepts < ACCEPT_BACKLOG;
  }

  private onHeader(h: SmuxHeader): void {
    this.heardAt = this.lastNow;
    if (h.version !== this.config.version) {
      this.shutdown(new TstierError('TSTIER_E_PROTOCOL', `smux: invalid protocol (frame version ${h.version}, session version ${this.config.version})`));
      return;
    }
    this.payloadTarget = null;
    switch (h.cmd) {
      case CMD_NOP:
        break;
      case CMD_SYN:
        if (!this.streams.has(h.sid)) {
          this.streams.set(h.sid, new Stream(h.sid));
          this.pendingAccepts++;
          this.events.push({ type: 'accept', sid: h.sid });
        }
        break;
      case CMD_FIN: {
        const s = this.streams.get(h.sid);
        if (s && !s.closed && !s.finReceived) {
          s.finReceived = true;
          this.events.push({ type: 'fin', sid: h.sid });
        }
        break;
      }
      case CMD_PSH: {
        const s = this.streams.get(h.sid);
        if (s && !s.closed) this.payloadTarget = s;
        break;
      }
      case CMD_UPD:
        // smux reads exactly 8 bytes here whatever the length says; any other length would desync it.
        if (h.length !== UPD_PAYLOAD_SIZE) {
          this.shutdown(new TstierError('TSTIER_E_PROTOCOL', `smux: UPD frame with ${h.length}-byte payload`));
          return;
        }
        this.updFill = 0;
        break;
      default:
        this.shutdown(new TstierError('TSTIER_E_PROTOCOL', `smux: invalid protocol (unknown command ${h.cmd})`));
        return;
    }
    // SYN/FIN/NOP normally carry nothing; a payload there is skipped rather than parsed as frames.
    this.payloadLeft = h.length;
    if (h.length === 0) this.endFrame();
  }

  private onPayload(bytes: Uint8Array, p: number, take: number): void {
    const cmd = this.header.cmd;
    if (cmd === CMD_PSH) {
      const s = this.payloadTarget;
      if (!s) return;
      const wasEmpty = s.recv.length === 0;
      s.recv.push(compact(bytes.subarray(p, p + take)));
      this.bucket -= take;
      if (wasEmpty) this.events.push({ type: 'readable', sid: s.sid });
    } else if (cmd === CMD_UPD) {
      this.updBuf.set(bytes.subarray(p, p + take), this.updFill);
      this.updFill += take;
    }
  }

  private endFrame(): void {
    this.payloadLeft = -1;
    if (this.header.cmd === CMD_UPD) this.onUpdate(this.header.sid, readU32(this.updBuf, 0), readU32(this.updBuf, 4));
  }

  /** The peer's window update. v1 sessions accept and ignore it, as smux 1.5.16 does. */
  private onUpdate(sid: number, consumed: number, window: number): void {
    const s = this.streams.get(sid);
    if (!s) return;
    s.peerConsumed = consumed;
    s.peerWindow = window;
    if (this.config.version === 2 && ((s.numWritten - consumed) | 0) < 0) {
      this.shutdown(new TstierError('TSTIER_E_PROTOCOL', `smux: peer claims to have consumed more than stream ${sid} sent`));
      return;
    }
    this.checkWritable(s);
  }

  // ---------------------------------------------------------------- streams

  /** Opens a stream (queues its SYN) and returns its id, or an error if the session is closed or out of ids. */
  open(): number | TstierError {
    if (this.closedFlag) return new TstierError('TSTIER_E_CLOSED', 'smux: session closed');
    const sid = this.nextSid + 2;
    if (sid > 0xffffffff) return new TstierError('TSTIER_E_CLOSED', 'smux: stream ids exhausted (go away)');
    this.nextSid = sid;
    const s = new Stream(sid);
    s.synPending = true;
    this.streams.set(sid, s);
    this.schedule(s);
    return sid;
  }

  /**
   * Queues data on a stream and returns how many bytes were taken (the rest: wait for 'writable').
   * Keeps a view of the accepted bytes. 0 for unknown, closed or write-closed streams.
   */
  write(sid: number, data: Uint8Array): number {
    const s = this.streams.get(sid);
    if (!s) return 0;
    const room = this.room(s);
    const n = Math.min(room, data.length);
    if (n < data.length) s.writeBlocked = true;
    if (n <= 0) return 0;
    s.send.push(n === data.length ? data : data.subarray(0, n));
    s.numWritten = (s.numWritten + n) >>> 0;
    this.schedule(s);
    return n;
  }

  /** How many bytes write() would take now. */
  writable(sid: number): number {
    const s = this.streams.get(sid);
    return s ? Math.max(0, this.room(s)) : 0;
  }

  private room(s: Stream): number {
    if (this.closedFlag || s.finQueued) return 0;
    let room = this.config.streamSendBuffer - s.send.length;
    if (this.config.version === 2) {
      // inflight counts bytes accepted but not yet consumed by the peer's reader (u32 arithmetic).
      const inflight = (s.numWritten - s.peerConsumed) | 0;
      room = Math.min(room, (s.peerWindow | 0) - inflight);
    }
    return room;
  }

  /**
   * Returns the next buffered bytes of a stream (at most max), as a view, or null when none are buffered.
   * Reading returns the bytes to the session bucket and, in v2, may queue a window update.
   */
  read(sid: number, max = Infinity): Uint8Array | null {
    const s = this.streams.get(sid);
    if (!s || s.closed || this.closedFlag) return null;
    const b = s.recv.shift(max);
    if (!b) return null;
    const n = b.length;
    this.returnTokens(n);
    if (this.config.version === 2) {
      s.numRead = (s.numRead + n) >>> 0;
      s.incr += n;
      // smux sends an update on the first read and after each half window consumed.
      if (s.incr >= this.config.maxStreamBuffer / 2 || s.numRead === n) {
        s.incr = 0;
        s.updPending = true;
        this.schedule(s);
      }
    }
    return b;
  }

  /** Bytes buffered on a stream, not yet read. */
  readable(sid: number): number {
    return this.streams.get(sid)?.recv.length ?? 0;
  }

  /** True once the peer's FIN arrived and every byte before it has been read. */
  readEnded(sid: number): boolean {
    const s = this.streams.get(sid);
    return s ? s.finReceived && s.recv.length === 0 : true;
  }

  /** Half-close: a FIN goes out after the queued data; reading continues. */
  closeWrite(sid: number): void {
    const s = this.streams.get(sid);
    if (!s || s.finQueued) return;
    s.finQueued = true;
    s.writeBlocked = false;
    this.schedule(s);
  }

  /**
   * Full close: unread data is dropped (its bucket space returned), a FIN follows any queued data, and
   * the stream id is forgotten once that FIN is out. Frames the peer still sends for it are discarded.
   */
  close(sid: number): void {
    const s = this.streams.get(sid);
    if (!s || s.closed) return;
    s.closed = true;
    this.returnTokens(s.recv.length);
    s.recv.clear();
    s.updPending = false;
    this.closeWrite(sid);
    if (s.finSent) this.streams.delete(sid);
  }

  /** Ends the session locally. A 'closed' event with a null error follows. */
  closeSession(): void {
    if (this.closedFlag) return;
    this.shutdown(null);
  }

  private returnTokens(n: number): void {
    this.bucket += n;
    this.checkInputReady();
  }

  private checkInputReady(): void {
    if (this.inputPaused && this.wantsInput()) {
      this.inputPaused = false;
      this.events.push({ type: 'input-ready' });
    }
  }

  private checkWritable(s: Stream): void {
    if (s.writeBlocked && this.room(s) > 0) {
      s.writeBlocked = false;
      this.events.push({ type: 'writable', sid: s.sid });
    }
  }

  private schedule(s: Stream): void {
    if (s.inRing || this.closedFlag) return;
    s.inRing = true;
    this.ring.push(s);
  }

  // ---------------------------------------------------------------- transmit

  /** True when pollTransmit() has frames to give. */
  wantsTransmit(): boolean {
    return !this.closedFlag && (this.nopPending || this.ring.size > 0);
  }

  /**
   * Writes whole frames into out (which must hold at least 16 bytes) and returns the bytes written;
   * 0 when there is nothing to send. Streams take turns one data frame at a time; within a stream,
   * SYN and UPD go before data, FIN after it. PSH payloads are cut to maxFrameSize and to fit out.
   */
  pollTransmit(out: Uint8Array): number {
    if (this.closedFlag) return 0;
    const v = this.config.version;
    let o = 0;
    if (this.nopPending && out.length >= HEADER_SIZE) {
      o = writeHeader(out, o, v, CMD_NOP, 0, 0);
      this.nopPending = false;
    }
    for (let s = this.ring.peek(); s; s = this.ring.peek()) {
      const before = o;
      o = this.emitFor(s, out, o);
      if (s.hasOutput()) {
        if (o === before) break; // out is full
        this.ring.push(this.ring.shift()!);
      } else {
        this.ring.shift();
        s.inRing = false;
        if (s.finSent && s.closed) this.streams.delete(s.sid);
      }
      this.checkWritable(s);
      if (out.length - o < HEADER_SIZE + 1) break;
    }
    return o;
  }

  /** One turn of a stream: its control frames, then one data frame or its FIN, as space allows. */
  private emitFor(s: Stream, out: Uint8Array, o: number): number {
    const v = this.config.version;
    if (s.synPending) {
      if (out.length - o < HEADER_SIZE) return o;
      o = writeHeader(out, o, v, CMD_SYN, 0, s.sid);
      s.synPending = false;
    }
    if (s.updPending) {
      if (out.length - o < HEADER_SIZE + UPD_PAYLOAD_SIZE) return o;
      o = writeHeader(out, o, v, CMD_UPD, UPD_PAYLOAD_SIZE, s.sid);
      writeU32(out, o, s.numRead);
      writeU32(out, o + 4, this.config.maxStreamBuffer);
      o += UPD_PAYLOAD_SIZE;
      s.updPending = false;
    }
    if (s.send.length > 0) {
      const n = Math.min(s.send.length, this.config.maxFrameSize, out.length - o - HEADER_SIZE);
      if (n <= 0) return o;
      o = writeHeader(out, o, v, CMD_PSH, n, s.sid);
      s.send.copyOut(out, o, n);
      return o + n;
    }
    if (s.finQueued && !s.finSent && out.length - o >= HEADER_SIZE) {
      o = writeHeader(out, o, v, CMD_FIN, 0, s.sid);
      s.finSent = true;
    }
    return o;
  }

  // ---------------------------------------------------------------- timers and events

  /** When handleTimeout() must next run, or null when the session is closed or keepalive is off. */
  pollTimeout(): number | null {
    if (this.closedFlag) return null;
    const t = Math.min(this.nextPing, this.deadline());
    return t === Infinity ? null : t;
  }

  /** When the session is closed unless the peer sends a frame first. */
  private deadline(): number {
    return this.config.keepAliveTimeout > 0 ? this.heardAt + this.config.keepAliveTimeout : Infinity;
  }

  /** Queues the keepalive NOP when due, and closes the session if the peer went silent. */
  handleTimeout(now: number): void {
    if (this.closedFlag) return;
    this.lastNow = now;
    if (now >= this.nextPing) {
      this.nopPending = true;
      this.nextPing = nextTick(this.nextPing, this.config.keepAliveInterval, now);
    }
    // While the bucket is empty we stopped reading on purpose, so silence is not the peer's fault.
    if (this.bucket <= 0) this.heardAt = now;
    else if (now >= this.deadline()) {
      this.shutdown(new TstierError('TSTIER_E_CLOSED', 'smux: keepalive timeout (no frame from the peer)'));
    }
  }

  /** The next event, or null. */
  pollEvent(): SmuxEvent | null {
    const e = this.events.shift() ?? null;
    if (e?.type === 'accept') {
      this.pendingAccepts--;
      this.checkInputReady();
    }
    return e;
  }

  private shutdown(error: TstierError | null): void {
    this.closedFlag = true;
    this.streams.clear();
    this.ring.clear();
    this.nopPending = false;
    this.events.push({ type: 'closed', error });
  }
}

/** Advances a periodic deadline past now, skipping ticks missed while the caller was late (like a Go ticker). */
function nextTick(deadline: number, period: number, now: number): number {
  const next = deadline + period;
  return next > now ? next : now + period;
}
