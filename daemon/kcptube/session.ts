/**
 * One kcptube KCP session, sans-IO: sealed datagrams on one side, connection records on the other.
 *
 *   datagrams ⇄ TunnelCipher + tunnel header ⇄ KcpLink (FEC + KCP) ⇄ records (HELLO, OPEN, DATA, FIN…)
 *
 * The session is named by its id, never by an address: the adapter routes any authenticated
 * datagram carrying the id here, from whatever source, which is what lets port hopping move it.
 *
 * Driving it: inputKcp()/inputControl() for datagrams the adapter opened, the record writers for
 * outgoing data, then pump(now) once per batch; handleTimeout(now) at pollTimeout(); send every
 * pollTransmit(); react to every pollEvent().
 *
 * Back-pressure: canWrite() is KCP's window test. TCP adapters stop reading their socket while it is
 * false and resume on the 'writable' event; UDP adapters drop the datagram (kcptube does the same).
 * The other way, pauseReading() leaves bytes in KCP, so its receive window closes on the peer.
 */
import type { DatagramCrypt } from '../transport/crypt/datagram.js';
import { OPEN_TOO_SHORT } from '../transport/crypt/datagram.js';
import { ReplayWindow } from '../peer/replay-window.js';
import { KcpLink } from '../transport/session/kcp-link.js';
import type { KcptunSnmp } from '../transport/session/snmp.js';
import type { KcptubeSide } from './config.js';
import type { TunnelCipher } from './crypt.js';
import {
  FEC_OVERHEAD, MAX_RECORD_PAYLOAD, RECORD_HEADER_SIZE, R_DATA, R_FIN, R_HELLO,
  R_HELLO_REPLY, R_OPEN, R_RESET, RecordReader, TUNNEL_HEADER_SIZE, T_CLOSE, T_KCP, T_PING, T_PONG,
  decodeHello, decodeHelloReply, encodeHello, encodeHelloReply, readU32, writeRecordHeader, writeTunnelHeader, writeU32,
  type Hello, type HelloReply,
} from './wire.js';

export type TubeEvent =
  | { type: 'hello'; hello: Hello }
  | { type: 'hello-reply'; reply: HelloReply }
  | { type: 'open'; conn: number; protocol: number }
  | { type: 'data'; conn: number; data: Uint8Array }
  | { type: 'fin'; conn: number }
  | { type: 'reset'; conn: number }
  | { type: 'writable' }
  | { type: 'closed'; reason: string };

export const COUNTER_NEWEST = 1;
export const COUNTER_LATE = 0;
export const COUNTER_REPLAY = -1;

/** kcptube resets windows from bandwidth and RTT about this long after a session starts. */
export const BANDWIDTH_WINDOW_DELAY_MS = 5000;
/** kcptube closes a keep-alive channel that heard nothing for 30 s. */
export const KEEPALIVE_DEAD_MS = 30_000;
const MIN_BANDWIDTH_WINDOW = 32;

/**
 * kcptube's bandwidth rule: window = bytes/s ÷ mtu × srtt(s) × 1.2, at least 32 segments.
 * Returns null when the bandwidth is unset or there is no RTT sample yet.
 */
export function windowFromBandwidth(bitsPerSecond: number, mtu: number, srttMs: number): number | null {
  if (bitsPerSecond <= 0 || srttMs <= 0) return null;
  const w = Math.floor(((bitsPerSecond / 8 / mtu) * srttMs) / 1000 * 1.2);
  return Math.min(0xffff, Math.max(MIN_BANDWIDTH_WINDOW, w));
}

/** Lets KcpLink reserve room for, and write, our cipher header and tunnel header. */
class SessionSeal implements DatagramCrypt {
  // kcptun's cipher names do not apply; KcpLink reads only the sizes and seal().
  readonly name = 'null' as const;
  readonly fellBack = false;
  readonly tailroom = 0;
  readonly headerSize: number;

  constructor(
    private readonly cipher: TunnelCipher,
    private readonly sid: number,
    private readonly counter: () => number,
  ) {
    this.headerSize = cipher.headerSize + TUNNEL_HEADER_SIZE;
  }

  seal(buf: Uint8Array, len: number): number {
    writeTunnelHeader(buf, this.cipher.headerSize, this.sid, T_KCP, this.counter());
    return this.cipher.seal(buf, len);
  }

  /** Datagrams are opened once, before routing by session id; KcpLink never opens. */
  open(): number {
    return OPEN_TOO_SHORT;
  }
}

export interface TubeSessionOptions {
  sid: number;
  cipher: TunnelCipher;
  side: KcptubeSide;
  snmp: KcptunSnmp;
  now: number;
}

export class TubeSession {
  readonly sid: number;
  readonly link: KcpLink;
  /** Time of the last authenticated datagram for this session. */
  lastHeard: number;
  /** Bandwidth the peer announced (HELLO / HELLO_REPLY); 0 when unknown. */
  peerInboundBps = 0;
  private readonly cipher: TunnelCipher;
  private readonly side: KcptubeSide;
  private readonly reader = new RecordReader();
  private readonly hdr = new Uint8Array(RECORD_HEADER_SIZE);
  private readonly events: TubeEvent[] = [];
  private eventHead = 0;
  private readonly control: Uint8Array[] = [];
  private dirty = false;
  private readPaused = false;
  private wasBlocked = false;
  private ended = false;
  private bandwidthAt: number;
  private pingAt: number;
  private pingToken = 0;
  /** Counter of the next datagram we send; the peer's counters go through `replay`. */
  private txCounter = 0;
  private readonly replay = new ReplayWindow();
  private topCounter = -1;

  constructor(o: TubeSessionOptions) {
    this.sid = o.sid;
    this.cipher = o.cipher;
    this.side = o.side;
    const s = o.side;
    const fec = s.fecData > 0 && s.fecRedundant > 0;
    const seal = new SessionSeal(o.cipher, o.sid, () => this.txCounter++);
    this.link = new KcpLink(
      {
        conv: o.sid,
        crypt: seal,
        dataShards: s.fecData,
        parityShards: s.fecRedundant,
        mtu: s.kcpMtu + (fec ? FEC_OVERHEAD : 0) + seal.headerSize,
        sndWnd: s.sndWnd,
        rcvWnd: s.rcvWnd,
        nodelay: s.nodelay,
        interval: s.interval,
        resend: s.resend,
        nc: s.nc,
        ackNoDelay: false,
      },
      o.snmp,
    );
    this.lastHeard = o.now;
    const bw = s.outboundBandwidth > 0 || s.inboundBandwidth > 0;
    this.bandwidthAt = bw ? o.now + BANDWIDTH_WINDOW_DELAY_MS : Infinity;
    this.pingAt = s.keepAlive > 0 ? o.now + s.keepAlive * 1000 : Infinity;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * Marks an authenticated datagram's counter seen. Returns COUNTER_NEWEST for the highest
   * counter so far (only such a datagram may move the session's return path: a late one from
   * before a port hop must not pull it back), COUNTER_LATE for an older one not seen before, and
   * COUNTER_REPLAY for one seen before or too old (drop it).
   */
  acceptCounter(counter: number): number {
    if (!this.replay.update(counter)) return COUNTER_REPLAY;
    if (counter <= this.topCounter) return COUNTER_LATE;
    this.topCounter = counter;
    return COUNTER_NEWEST;
  }

  /** A KCP body (after the tunnel header) of an authenticated datagram. Call pump() after the batch. */
  inputKcp(buf: Uint8Array, bodyOff: number, now: number): void {
    if (this.ended) return;
    this.lastHeard = now;
    this.link.inputOpened(buf, bodyOff, now);
    this.dirty = true;
  }

  /** A PING / PONG / CLOSE datagram for this session. */
  inputControl(type: number, body: Uint8Array, now: number): void {
    if (this.ended) return;
    this.lastHeard = now;
    if (type === T_PING && body.length >= 4) this.queueControl(T_PONG, readU32(body, 0));
    else if (type === T_CLOSE) this.end('closed by peer');
  }

  // ---- records out ----

  sendHello(h: Hello): void {
    this.record(R_HELLO, 0, encodeHello(h));
  }

  sendHelloReply(r: HelloReply): void {
    this.record(R_HELLO_REPLY, 0, encodeHelloReply(r));
  }

  open(conn: number, protocol: number): void {
    this.record(R_OPEN, conn, Uint8Array.of(protocol));
  }

  /** TCP bytes (cut into records) or one UDP datagram (at most 65535 bytes). */
  write(conn: number, data: Uint8Array): void {
    for (let off = 0; off < data.length; off += MAX_RECORD_PAYLOAD) {
      this.record(R_DATA, conn, data.subarray(off, Math.min(data.length, off + MAX_RECORD_PAYLOAD)));
    }
  }

  fin(conn: number): void {
    this.record(R_FIN, conn, null);
  }

  reset(conn: number): void {
    this.record(R_RESET, conn, null);
  }

  private record(kind: number, conn: number, payload: Uint8Array | null): void {
    if (this.ended) return;
    writeRecordHeader(this.hdr, 0, kind, conn, payload?.length ?? 0);
    this.link.write(this.hdr);
    if (payload !== null && payload.length > 0) this.link.write(payload);
    // blast: send now (kcptube's Refresh after Send); otherwise the next interval tick sends it.
    if (this.side.blast) this.dirty = true;
  }

  /** KCP's window has room (kcptube's test before it writes). */
  canWrite(): boolean {
    const ok = this.link.canWrite();
    if (!ok) this.wasBlocked = true;
    return ok;
  }

  /** Every byte written so far has been acknowledged. */
  get drained(): boolean {
    return this.link.kcp.waitSnd === 0;
  }

  /** Stops (true) or resumes reading records, e.g. while a TCP socket's buffer is full. */
  pauseReading(paused: boolean): void {
    this.readPaused = paused;
    this.dirty = true;
  }

  // ---- driving ----

  /** Answers the datagrams taken since the last flush, once per batch (see KcpLink.flushAcks). */
  flushAcks(now: number): void {
    if (!this.ended) this.link.flushAcks(now);
  }

  /** Flushes what was written, reads records into events. */
  pump(now: number): void {
    if (this.ended) return;
    if (this.dirty) {
      this.dirty = false;
      this.link.flush(now);
    }
    if (!this.readPaused) this.readRecords();
    if (this.wasBlocked && this.link.canWrite()) {
      this.wasBlocked = false;
      this.events.push({ type: 'writable' });
    }
  }

  private readRecords(): void {
    const reader = this.reader;
    for (;;) {
      for (let r = reader.next(); r !== null; r = reader.next()) {
        this.dispatch(r.kind, r.conn, r.payload);
        if (this.readPaused || this.ended) return;
      }
      if (reader.failed) {
        this.end('protocol error: unknown record kind');
        return;
      }
      const space = reader.space();
      const n = this.link.read(space, 0, space.length);
      if (n <= 0) return;
      reader.commit(n);
    }
  }

  private dispatch(kind: number, conn: number, payload: Uint8Array): void {
    switch (kind) {
      case R_HELLO: {
        const h = decodeHello(payload);
        if (h === null) return this.end('protocol error: short HELLO');
        this.peerInboundBps = h.inboundBps;
        this.events.push({ type: 'hello', hello: h });
        return;
      }
      case R_HELLO_REPLY: {
        const r = decodeHelloReply(payload);
        if (r === null) return this.end('protocol error: bad HELLO_REPLY');
        this.peerInboundBps = r.inboundBps;
        this.events.push({ type: 'hello-reply', reply: r });
        return;
      }
      case R_OPEN:
        this.events.push({ type: 'open', conn, protocol: payload[0] ?? 0 });
        return;
      case R_DATA:
        this.events.push({ type: 'data', conn, data: payload });
        return;
      case R_FIN:
        this.events.push({ type: 'fin', conn });
        return;
      default:
        this.events.push({ type: 'reset', conn });
    }
  }

  pollEvent(): TubeEvent | null {
    // A head index, not shift(): one pump can queue thousands of DATA events.
    if (this.eventHead >= this.events.length) return null;
    const e = this.events[this.eventHead++]!;
    if (this.eventHead === this.events.length) {
      this.events.length = 0;
      this.eventHead = 0;
    }
    return e;
  }

  pollTimeout(): number {
    if (this.ended) return Infinity;
    return Math.min(this.link.pollTimeout(), this.bandwidthAt, this.pingAt);
  }

  handleTimeout(now: number): void {
    if (this.ended) return;
    if (this.side.keepAlive > 0 && now - this.lastHeard > Math.max(KEEPALIVE_DEAD_MS, 2 * this.side.keepAlive * 1000)) {
      this.end('keep-alive: nothing heard');
      return;
    }
    if (now >= this.pingAt) {
      this.queueControl(T_PING, ++this.pingToken);
      this.pingAt = now + this.side.keepAlive * 1000;
    }
    if (now >= this.bandwidthAt) this.applyBandwidth(now);
    this.link.handleTimeout(now);
    this.pump(now);
  }

  /** kcptube's ResetWindowValues: windows from configured bandwidth and the measured RTT. */
  private applyBandwidth(now: number): void {
    const kcp = this.link.kcp;
    if (kcp.srtt <= 0) {
      this.bandwidthAt = now + BANDWIDTH_WINDOW_DELAY_MS; // no RTT sample yet: try again later
      return;
    }
    this.bandwidthAt = Infinity;
    let out = this.side.outboundBandwidth;
    if (this.peerInboundBps > 0 && (out === 0 || out > this.peerInboundBps)) out = this.peerInboundBps;
    const snd = windowFromBandwidth(out, kcp.mtu, kcp.srtt);
    const rcv = windowFromBandwidth(this.side.inboundBandwidth, kcp.mtu, kcp.srtt);
    kcp.setWindows(snd ?? 0, rcv ?? 0);
  }

  /** The next datagram for the socket (owned by the caller), or null. */
  pollTransmit(): Uint8Array | null {
    return this.control.shift() ?? this.link.pollTransmit();
  }

  /**
   * A datagram from pollTransmit() that the kernel has copied: KCP's and parity buffers are reused
   * (the link tells them by size); a control datagram is left to the collector.
   */
  recycleTransmit(datagram: Uint8Array): void {
    this.link.recycleTransmit(datagram);
  }

  /** Says goodbye (one CLOSE datagram, best effort) and ends the session. */
  close(): void {
    if (this.ended) return;
    this.queueControl(T_CLOSE, -1);
    this.end('closed');
  }

  private queueControl(type: number, token: number): void {
    const h = this.cipher.headerSize;
    const b = new Uint8Array(h + TUNNEL_HEADER_SIZE + (token >= 0 ? 4 : 0));
    writeTunnelHeader(b, h, this.sid, type, this.txCounter++);
    if (token >= 0) writeU32(b, h + TUNNEL_HEADER_SIZE, token);
    this.control.push(b.subarray(0, this.cipher.seal(b, b.length)));
  }

  private end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.events.push({ type: 'closed', reason });
  }
}
