/**
 * QuicEndpoint: a sans-IO QUIC endpoint (client and server at once) whose peers are peer ids.
 * quinn-proto runs inside WebAssembly (wasm/quic); this class moves bytes in and out of it and
 * turns its numeric events into objects.
 *
 * The proxy's shape: one QUIC connection per peer (`connect`), one bidirectional stream per
 * flow (`openStream`), the flow-open frame as the stream's first bytes. QUIC runs with null
 * protection because the peer layer already authenticates and encrypts every datagram.
 *
 * Driving it (the five verbs): `input(fromPeerId, datagram, now, fromInitiator)`, then drain `pollTransmit()`
 * and `pollEvent()`; call `handleTimeout(now)` once `now >= pollTimeout()`. Stream calls
 * (`write`, `read`, `finish`, ...) take effect on the next `pollTransmit()`.
 *
 * A Rust panic traps the module. The endpoint then reports `connection-lost` (reason
 * `crashed`) for every connection it had, and continues on a fresh instance with fresh
 * connection ids, so late calls with old ids fail cleanly instead of hitting new connections.
 */
import { randomBytes } from 'node:crypto';

import { TstierError, badConfig } from '../../errors.js';
import type { WasmMemory } from '../../wasm/memory.js';
import { checkIntegerOptions, definedOnly } from '../../wasm/options.js';
import { TrapSupervisor } from '../../wasm/supervisor.js';
import { CongestionCode, CryptoSchemeCode, EventKind, OpError, STATS_LEN } from './abi.js';
import { decodeEvent, decodeStats, type QuicConnectionStats, type QuicEvent } from './events.js';
import { type QuicExports, type WasmModule, loadQuicModule } from './wasm.js';

export type { QuicConnectionStats, QuicEvent, QuicLostReason } from './events.js';

export type CongestionControl = 'bbr' | 'cubic' | 'newreno';

/**
 * The QUIC crypto: 'tstier' between tstier nodes (per-connection tags, a handshake only tstier
 * speaks), 'plaintext' toward EasyTier nodes (EasyTier 2.6's quinn-plaintext: SeaHash tags, the
 * transport parameters as the whole handshake). Neither encrypts: the peer layer does.
 */
export type QuicCrypto = keyof typeof CryptoSchemeCode;

export interface QuicOptions {
  /** Largest datagram sent (the peer layer's payload budget). Default 1200, as EasyTier. */
  maxUdpPayload?: number;
  /** Default BBR, as EasyTier. */
  congestion?: CongestionControl;
  /** Default 'tstier'. */
  crypto?: QuicCrypto;
  /** Accept connections peers open to us. Default true. */
  acceptIncoming?: boolean;
  /** A connection with no packets for this long is lost (0: never). Default 30 s. */
  idleTimeoutMs?: number;
  /** Send a keep-alive when idle this long (0: never). Default 5 s, as EasyTier. */
  keepAliveMs?: number;
  /**
   * Streams a peer may have open to us at once; more wait for the peer's MAX_STREAMS as others end.
   * Default 4096 (EasyTier: 255, which held 745 of 1,000 concurrent flows back). quinn reserves an
   * empty slot per allowed stream (tens of bytes); buffers come only with data.
   */
  maxStreams?: number;
  /** Receive window per stream, bytes. Default 1.25 MB (quinn's); at most `maxStreamWindow(maxUdpPayload)`. */
  streamWindow?: number;
  /** Receive window per connection, bytes. Default 16 MiB. */
  connectionWindow?: number;
  /** Unacknowledged bytes we buffer per connection. Default 16 MiB. */
  sendWindow?: number;
  /** Seeds connection ids and every other random choice; default from node:crypto. */
  seed?: number;
  /**
   * 16 bytes keying the stateless-reset tokens; default random. Derive it from stable secrets
   * (network secret + own peer id) so that after a restart this node answers packets of its
   * previous instance with a reset its peers accept: their stale connections end at once
   * (`connection-lost`, reason `reset`) instead of at the idle timeout.
   */
  resetKey?: Uint8Array;
  wasmPath?: string;
}

export const QUIC_DEFAULTS = {
  maxUdpPayload: 1200,
  congestion: 'bbr' as CongestionControl,
  crypto: 'tstier' as QuicCrypto,
  acceptIncoming: true,
  idleTimeoutMs: 30_000,
  keepAliveMs: 5_000,
  maxStreams: 4096,
  streamWindow: 1_250_000,
  connectionWindow: 16 << 20,
  sendWindow: 16 << 20,
};

const LIMITS = {
  maxUdpPayload: [1200, 65527],
  idleTimeoutMs: [0, 0xffff_ffff],
  keepAliveMs: [0, 0xffff_ffff],
  maxStreams: [0, 1 << 20],
  streamWindow: [1024, 0xffff_ffff],
  connectionWindow: [1024, 0xffff_ffff],
  sendWindow: [1024, 0xffff_ffff],
} as const;

/** Separate runs of bytes quinn keeps in one stream's receive buffer before it kills the connection. */
const QUINN_MAX_CHUNKS = 1024;
/** Bytes of a full datagram that are not stream data: header, tag, STREAM frame header (rounded up). */
const DATAGRAM_OVERHEAD = 64;

/**
 * The largest safe receive window per stream. quinn closes the whole connection (INTERNAL_ERROR "too
 * many gaps in stream buffer") once one stream buffers more than 1024 separate runs of bytes, and under
 * loss the received runs alternate with holes: a window of W bytes can hold W / (2 × stream bytes per
 * datagram) runs. An 8 MiB window at 20 % loss each way reached that within seconds and reset every flow
 * to the peer; this bound (2 MiB at 1200-byte datagrams, 10 % margin) keeps it out of reach at any loss.
 */
export function maxStreamWindow(maxUdpPayload: number): number {
  return Math.floor(QUINN_MAX_CHUNKS * 2 * (maxUdpPayload - DATAGRAM_OVERHEAD) * 0.9);
}

export interface QuicStreamRef {
  conn: number;
  stream: number;
}

/** A datagram to send. `data` views wasm memory: copy or send it before the next endpoint call. */
export interface QuicTransmit {
  peerId: number;
  data: Uint8Array;
  /**
   * It belongs to a connection we initiated. EasyTier sends those as peer packets of type
   * QuicSrc (16) and the others as QuicDst (17); the receiver passes the same flag to `input`.
   */
  fromInitiator: boolean;
}

/** `read` result: the peer's FIN was reached; no more data will come. */
export const QUIC_FIN = -1;
/** `read`/`write` result: the stream is gone in that direction (reset, stopped, finished, or its connection). */
export const QUIC_GONE = -2;

const RESET_KEY_LEN = 16;

export class QuicEndpoint {
  private readonly settings: typeof QUIC_DEFAULTS & { seed: number; resetKey: Uint8Array };
  /** The instance, its memory view and crash recovery (daemon/wasm/). */
  private readonly sup: TrapSupervisor<QuicExports>;
  private ioPtr = 0;
  private ioCapacity = 0;
  /** Open connections (id → peer), reported as lost if the instance dies. */
  private readonly conns = new Map<number, number>();
  /** Our connection to each peer (the one `openStream` uses). */
  private readonly outgoing = new Map<number, number>();
  private readonly pending: QuicEvent[] = [];
  private readonly transmit: QuicTransmit = { peerId: 0, data: new Uint8Array(0), fromInitiator: false };
  /** Above every connection id seen, so a rebuilt instance never reuses one. */
  private nextFirstConn = 1;
  private lastNow = 0;
  private inputDropped = 0;

  static async create(options: QuicOptions = {}): Promise<QuicEndpoint> {
    return new QuicEndpoint(await loadQuicModule(options.wasmPath), options);
  }

  constructor(module: WasmModule, options: QuicOptions = {}) {
    const { resetKey: givenKey, wasmPath: _path, ...rest } = options;
    const merged = { ...QUIC_DEFAULTS, ...definedOnly(rest) };
    checkIntegerOptions('quic', merged, LIMITS);
    const windowCap = maxStreamWindow(merged.maxUdpPayload);
    if (merged.streamWindow > windowCap) throw badConfig('quic.streamWindow', `${merged.streamWindow} is above ${windowCap}, where one stream's gaps under loss could close the connection`);
    if (!(merged.congestion in CongestionCode)) throw badConfig('quic.congestion', `${merged.congestion} is not bbr, cubic or newreno`);
    if (!(merged.crypto in CryptoSchemeCode)) throw badConfig('quic.crypto', `${merged.crypto} is not tstier or plaintext`);
    const seed = options.seed ?? randomBytes(4).readUInt32LE(0);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) throw badConfig('quic.seed', `${seed} is not a u32`);
    if (givenKey !== undefined && givenKey.length !== RESET_KEY_LEN) throw badConfig('quic.resetKey', `must be ${RESET_KEY_LEN} bytes, not ${givenKey.length}`);
    this.settings = { ...merged, seed, resetKey: givenKey?.slice() ?? randomBytes(RESET_KEY_LEN) };
    this.sup = new TrapSupervisor(module, {
      metric: 'quic',
      crashMessage: 'QUIC core crashed; its connections were lost',
      start: (wasm, memory, crashes) => this.start(wasm, memory, crashes),
      lost: () => this.lost(),
    });
  }

  private get wasm(): QuicExports {
    return this.sup.wasm;
  }

  /** Instances lost to a trap so far. */
  get crashCount(): number {
    return this.sup.crashes;
  }

  /** Datagrams dropped before reaching QUIC (larger than the input buffer, or peer id 0). */
  get droppedInputs(): number {
    return this.inputDropped;
  }

  /** Size of the core's linear memory (it grows, never shrinks): for leak checks and metrics. */
  get memoryBytes(): number {
    return this.sup.memory.byteLength;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  /** The connection `openStream(peerId)` uses, if one is open. */
  connectionTo(peerId: number): number | undefined {
    return this.outgoing.get(peerId);
  }

  /** Opens (or returns the existing) connection to a peer; ready at its `connected` event. */
  connect(peerId: number, now: number): number {
    const existing = this.outgoing.get(peerId);
    if (existing !== undefined) return existing;
    if (!isPeerId(peerId) || peerId === 0) throw badConfig('quic.peerId', `${peerId} is not a nonzero u32`);
    this.lastNow = now;
    const conn = this.call(() => this.wasm.connect(peerId, now));
    if (conn < 0) throw new TstierError('TSTIER_E_CLOSED', `QUIC connect to peer ${peerId} failed (code ${conn})`);
    this.track(conn, peerId);
    this.outgoing.set(peerId, conn);
    this.collectEvents();
    return conn;
  }

  /**
   * A datagram from a peer. `fromInitiator`: it came on a connection the peer initiated (the
   * sender's `QuicTransmit.fromInitiator`; EasyTier's QuicSrc type). A datagram whose flag does
   * not match its connection is dropped. Garbage is dropped inside QUIC; it never throws.
   */
  input(fromPeerId: number, datagram: Uint8Array, now: number, fromInitiator: boolean): void {
    this.lastNow = now;
    if (datagram.length > this.ioCapacity || !isPeerId(fromPeerId) || fromPeerId === 0) {
      this.inputDropped++;
      return;
    }
    this.refreshView().set(datagram, this.ioPtr);
    try {
      this.wasm.input(fromPeerId, fromInitiator ? 1 : 0, datagram.length, now);
    } catch (e) {
      this.crashed(e);
      this.inputDropped++;
    }
    this.collectEvents();
  }

  /** The next datagram to send, or null. The result object and its bytes are reused. */
  pollTransmit(): QuicTransmit | null {
    let len: number;
    try {
      len = this.wasm.poll_transmit();
    } catch (e) {
      this.crashed(e);
      return null;
    }
    if (len <= 0) return null;
    const ptr = this.wasm.tx_ptr();
    this.transmit.peerId = this.wasm.tx_peer() >>> 0;
    this.transmit.fromInitiator = this.wasm.tx_from_initiator() === 1;
    this.transmit.data = this.refreshView().subarray(ptr, ptr + len);
    return this.transmit;
  }

  /** When `handleTimeout` is next wanted (ms on the caller's clock); Infinity: never. */
  pollTimeout(): number {
    let at: number;
    try {
      at = this.wasm.poll_timeout();
    } catch (e) {
      this.crashed(e);
      return this.lastNow;
    }
    return at < 0 ? Infinity : at;
  }

  handleTimeout(now: number): void {
    this.lastNow = now;
    try {
      this.wasm.handle_timeout(now);
    } catch (e) {
      this.crashed(e);
    }
    this.collectEvents();
  }

  pollEvent(): QuicEvent | null {
    if (this.pending.length === 0) this.collectEvents();
    return this.pending.shift() ?? null;
  }

  /**
   * Opens a bidirectional stream on our connection to `peerId`. Null when none can be opened
   * yet: no connection (call `connect`), handshake not done (wait for `connected`), or the
   * peer's stream limit reached (wait for `streams-available`).
   */
  openStream(peerId: number): QuicStreamRef | null {
    const conn = this.outgoing.get(peerId);
    if (conn === undefined) return null;
    const stream = this.call(() => this.wasm.stream_open(conn));
    // A connection already lost inside the core (its event not yet polled) opens nothing either.
    if (stream === OpError.streamsExhausted || stream === OpError.unknownConnection) return null;
    if (stream < 0) throw streamError(conn, -1, stream);
    return { conn, stream };
  }

  /** Queues bytes; returns how many were accepted (0: window full, wait for `writable`) or QUIC_GONE. */
  write(conn: number, stream: number, data: Uint8Array): number {
    let accepted = 0;
    while (accepted < data.length) {
      const n = Math.min(data.length - accepted, this.ioCapacity);
      this.refreshView().set(data.subarray(accepted, accepted + n), this.ioPtr);
      let r: number;
      try {
        r = this.wasm.stream_write(conn, stream, n);
      } catch (e) {
        this.fail(e);
      }
      if (r === OpError.blocked) break;
      if (r < 0) return this.goneOrThrow(conn, stream, r, accepted);
      accepted += r;
      // A short write goes round again on purpose: quinn promises a `writable` event only to a write
      // it refused (Blocked), not to one it cut short at the connection's send window or credit.
      // Stopping here left flows waiting forever once 1,000 of them shared the send window.
    }
    return accepted;
  }

  /**
   * Copies received bytes into `into` (up to 64 KiB per call; call again while it returns
   * bytes); returns how many (0: nothing yet, wait for `readable`),
   * QUIC_FIN once the peer's FIN is reached, or QUIC_GONE (reset: the `reset` event has the code).
   */
  read(conn: number, stream: number, into: Uint8Array): number {
    // One call only: the core reports a FIN reached together with data on the following read.
    const max = Math.min(into.length, this.ioCapacity);
    let r: number;
    try {
      r = this.wasm.stream_read(conn, stream, max);
    } catch (e) {
      this.fail(e);
    }
    if (r === OpError.blocked) return 0;
    if (r === OpError.finished) return QUIC_FIN;
    if (r < 0) return this.goneOrThrow(conn, stream, r, 0);
    into.set(this.refreshView().subarray(this.ioPtr, this.ioPtr + r));
    return r;
  }

  /** Sends FIN after the written bytes; `finished` follows once all are acknowledged. */
  finish(conn: number, stream: number): void {
    this.checked(conn, stream, this.call(() => this.wasm.stream_finish(conn, stream)));
  }

  /** Abandons our sending side; the peer gets a `reset` event with `code`. */
  reset(conn: number, stream: number, code: number): void {
    this.checked(conn, stream, this.call(() => this.wasm.stream_reset(conn, stream, checkCode(code))));
  }

  /** Stops reading; the peer gets a `stopped` event with `code`. */
  stop(conn: number, stream: number, code: number): void {
    this.checked(conn, stream, this.call(() => this.wasm.stream_stop(conn, stream, checkCode(code))));
  }

  /** Closes a connection (all its streams); a `connection-lost` (locally-closed) event follows. */
  close(conn: number, code: number, now: number): void {
    this.lastNow = now;
    const r = this.call(() => this.wasm.conn_close(conn, checkCode(code), now));
    if (r < 0) throw new TstierError('TSTIER_E_CLOSED', `QUIC connection ${conn} does not exist`);
    this.collectEvents();
    // quinn reports a loss only for what the peer or the clock did; a local close is ours to report.
    const peerId = this.conns.get(conn);
    if (peerId !== undefined) {
      this.pending.push({ type: 'connection-lost', conn, peerId, reason: 'locally-closed', errorCode: 0, detail: '' });
      this.forget(conn);
    }
  }

  stats(conn: number): QuicConnectionStats {
    const r = this.call(() => this.wasm.conn_stats(conn));
    if (r < 0) throw new TstierError('TSTIER_E_CLOSED', `QUIC connection ${conn} does not exist`);
    return decodeStats(new Float64Array(this.wasm.memory.buffer, this.wasm.stats_ptr(), STATS_LEN));
  }

  /** The connection's statistics, or null once it is gone. */
  statsIfOpen(conn: number): QuicConnectionStats | null {
    try {
      return this.stats(conn);
    } catch {
      return null;
    }
  }

  /** Test hook: makes the module trap, as a Rust panic would. */
  debugPanic(): void {
    try {
      this.wasm.debug_panic();
    } catch (e) {
      this.crashed(e);
    }
  }

  /** Sets up a fresh instance (the supervisor's, at creation and after each crash). */
  private start(wasm: QuicExports, memory: WasmMemory, crashes: number): void {
    const s = this.settings;
    this.ioPtr = wasm.io_ptr();
    this.ioCapacity = wasm.io_capacity();
    memory.bytes().set(s.resetKey, this.ioPtr);
    // A rebuilt instance draws a different stream of random choices than the dead one.
    const seedHi = crashes;
    const r = wasm.endpoint_create(
      s.maxUdpPayload,
      CongestionCode[s.congestion],
      CryptoSchemeCode[s.crypto],
      s.acceptIncoming ? 1 : 0,
      s.idleTimeoutMs,
      s.keepAliveMs,
      s.maxStreams,
      s.streamWindow,
      s.connectionWindow,
      s.sendWindow,
      s.seed,
      seedHi,
      this.nextFirstConn,
      RESET_KEY_LEN,
      this.lastNow,
    );
    if (r < 0) throw badConfig('quic', `the QUIC core refused these settings (code ${r})`);
  }

  /** The byte view of wasm memory; renewed after the memory grew (which detaches the old one). */
  private refreshView(): Uint8Array {
    return this.sup.memory.bytes();
  }

  private collectEvents(): void {
    const w = this.wasm;
    for (;;) {
      let kind: number;
      try {
        kind = w.event_next();
      } catch (e) {
        this.crashed(e);
        return;
      }
      if (kind === EventKind.none) return;
      const raw = { kind, conn: w.event_conn() >>> 0, peerId: w.event_peer() >>> 0, stream: w.event_stream(), code: w.event_code() };
      const event = decodeEvent(raw, () => this.lostDetail());
      if (event === null) continue;
      // A connection is known from its first event (ours from `connect`) until it is lost.
      if (event.type === 'connection-lost') this.forget(event.conn);
      else if (event.type === 'connected' || event.type === 'stream-opened') this.track(event.conn, event.peerId);
      this.pending.push(event);
    }
  }

  private lostDetail(): string {
    const n = this.wasm.lost_detail();
    return Buffer.from(this.refreshView().subarray(this.ioPtr, this.ioPtr + n)).toString('utf8');
  }

  private track(conn: number, peerId: number): void {
    this.conns.set(conn, peerId);
    this.nextFirstConn = Math.max(this.nextFirstConn, conn + 1);
  }

  private forget(conn: number): void {
    const peerId = this.conns.get(conn);
    this.conns.delete(conn);
    if (peerId !== undefined && this.outgoing.get(peerId) === conn) this.outgoing.delete(peerId);
  }

  private goneOrThrow(conn: number, stream: number, code: number, done: number): number {
    if (code === OpError.reset || code === OpError.stopped || code === OpError.closed) return done > 0 ? done : QUIC_GONE;
    if (code === OpError.unknownConnection) return done > 0 ? done : QUIC_GONE;
    throw streamError(conn, stream, code);
  }

  private checked(conn: number, stream: number, code: number): void {
    if (code < 0 && code !== OpError.closed && code !== OpError.unknownConnection) throw streamError(conn, stream, code);
  }

  /**
   * Runs one export of a cold path; a trap becomes crash recovery plus a TSTIER_E_CLOSED for
   * the caller. (Hot paths inline the same try/catch, to allocate no closure per packet.)
   */
  private call(fn: () => number): number {
    return this.sup.call(fn);
  }

  /** A trap in a stream or connection call: recover, then tell the caller its call failed. */
  private fail(e: unknown): never {
    this.sup.fail(e);
  }

  /** For a caught throw: a trap is recovered from, anything else rethrown (the supervisor's). */
  private crashed(e: unknown): void {
    this.sup.crashed(e);
  }

  /** The instance trapped: every connection it held is lost (the supervisor then starts a fresh one). */
  private lost(): void {
    for (const [conn, peerId] of this.conns) this.pending.push({ type: 'connection-lost', conn, peerId, reason: 'crashed', errorCode: 0, detail: 'QUIC core trapped' });
    this.conns.clear();
    this.outgoing.clear();
  }
}

function isPeerId(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
}

function checkCode(code: number): number {
  if (!Number.isSafeInteger(code) || code < 0) throw badConfig('quic.code', `${code} is not a non-negative integer`);
  return code;
}

function streamError(conn: number, stream: number, code: number): TstierError {
  return new TstierError('TSTIER_E_CLOSED', `QUIC stream ${stream} of connection ${conn}: operation failed (code ${code})`);
}
