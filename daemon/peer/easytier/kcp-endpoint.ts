/**
 * One side of EasyTier's KCP proxy transport (kcp-sys), sans-IO. A 'src' endpoint opens
 * connections (its packets are PM type KcpSrc); a 'dst' endpoint accepts them (type KcpDst). Each
 * connection is named by (conv, src peer id, dst peer id) and runs one ikcp in stream mode with
 * EasyTier's settings over the envelope of kcp-envelope.ts:
 *
 *   src: SYN + KcpConnData  →  dst: SYN|ACK  →  src: ACK|DATA (empty)  →  both: ACK|DATA + segments
 *   FIN when the local writer is closed and everything sent is acknowledged (half-close);
 *   PING every 10 s, answered PING|PONG (or RST if unknown); silent for 60 s = dropped.
 *
 * kcp-sys sends FIN once, unacknowledged; a lost FIN would leave the peer waiting for EOF. So we
 * repeat our FIN every FIN_RESEND_MS until the connection is done, and a done connection lingers
 * LINGER_MS (repeating FIN, answering pings, ignoring the rest) before it is forgotten.
 *
 * "Everything acknowledged" is not enough before a FIN to kcp-sys: its receiver stops taking bytes
 * out of ikcp the moment a FIN arrives, and ikcp acknowledges a segment when it enters its receive
 * queue, not when the application has read it. Segments still queued there are lost (the tail of a
 * flow toward EasyTier, when its TCP writer is slower than the link). So our FIN also waits until
 * the peer's advertised free window is whole again (its queue is empty), asking with WASK probes
 * (FIN_PROBE_MIN_MS doubling to FIN_PROBE_MAX_MS); a peer whose window stops growing for
 * FIN_DRAIN_STALL_MS (an application that no longer reads, or a smaller rcv_wnd) gets its FIN anyway.
 *
 * A connect that gets no SYN|ACK is retried with a new conv every CONNECT_RETRY_MS (EasyTier
 * hedges five attempts 200 ms apart) until CONNECT_TIMEOUT_MS. Bounded: at most MAX_CONNS live
 * connections; a SYN beyond that is answered with RST.
 *
 * A kcp-sys acceptor only creates a connection's ikcp when its accept loop takes the connection
 * from a queue four deep, filled with try_send: connections established faster than it accepts
 * are dropped without a word, and everything sent on them vanishes (seen: 14 of 20 concurrent
 * flows toward EasyTier). So a connect is 'connected' only once the acceptor's ikcp has answered
 * (a WASK after our ACK|DATA, repeated every CONFIRM_RETRY_MS, draws a WINS); one unanswered for
 * CONFIRM_TIMEOUT_MS is reset and opened again on a new conv (no data was sent on it), and at most
 * MAX_OPENING_PER_PEER connects to one peer are in flight at once, the rest wait their turn.
 */
import { randomBytes } from 'node:crypto';
import { Kcp } from '../../transport/kcp/kcp.js';
import { ET_KCP, KCP_ENVELOPE_LEN, KcpFlag, decodeKcpConnData, decodeKcpEnvelope, encodeKcpConnData, encodeKcpEnvelope, type KcpConnData } from './kcp-envelope.js';
import { EtKcpPacer, PacedKcp } from './kcp-pacer.js';
import { EtPacketType } from './pm.js';
import { writeU32Le } from '../../packet/bytes.js';

export const CONNECT_RETRY_MS = 1000;
export const CONFIRM_RETRY_MS = 200;
export const CONFIRM_TIMEOUT_MS = 2000;
export const MAX_OPENING_PER_PEER = 2;
export const CONNECT_TIMEOUT_MS = 10_000;
export const KCP_PING_INTERVAL_MS = 10_000;
export const KCP_IDLE_TIMEOUT_MS = 60_000;
export const MAX_CONNS = 4096;
export const FIN_RESEND_MS = 1000;
export const LINGER_MS = 3000;
export const FIN_PROBE_MIN_MS = 10;
export const FIN_PROBE_MAX_MS = 200;
export const FIN_DRAIN_STALL_MS = 10_000;
/** kcp-sys lets a writer proceed while ikcp holds at most twice the send window. */
const WRITE_LIMIT_SEGMENTS = 2 * ET_KCP.sndWnd;
/**
 * A full EasyTier receiver tells us when its window reopens (one WINS, no retry); if that one is
 * lost, ikcp's own first probe would come 7 s later.
 */
const ZERO_WINDOW_PROBE_MS = 200;
/** ikcp's MTU counts only its own bytes; the envelope rides in the datagram's headroom. */
const KCP_DATAGRAM = ET_KCP.mtu + KCP_ENVELOPE_LEN;

export type KcpConnId = string;

export type KcpEndpointEvent =
  | { type: 'accepted'; id: KcpConnId; peer: number; connData: KcpConnData }
  | { type: 'connected'; id: KcpConnId }
  | { type: 'readable'; id: KcpConnId }
  | { type: 'writable'; id: KcpConnId }
  /** The peer closed its writing side; what it sent has all been read. */
  | { type: 'eof'; id: KcpConnId }
  | { type: 'closed'; id: KcpConnId; reason: 'done' | 'reset' | 'connect-timeout' | 'idle' | 'dead-link' };

export interface KcpOut {
  to: number;
  /** EtPacketType.KcpSrc or KcpDst. */
  type: number;
  payload: Uint8Array;
}

interface Conn {
  /** The handle callers hold; stays the same across connect retries. */
  id: KcpConnId;
  conv: number;
  src: number;
  dst: number;
  peer: number;
  state: 'queued' | 'syn-sent' | 'confirming' | 'syn-received' | 'established' | 'lingering' | 'closed';
  kcp: Kcp | null;
  /** The same engine as its peer's pacer sees it. */
  paced: PacedKcp<Conn> | null;
  connData: Uint8Array;
  localFin: 'open' | 'pending' | 'sent';
  peerFin: boolean;
  eofReported: boolean;
  writeBlocked: boolean;
  lastRx: number;
  nextPingAt: number;
  /** syn-sent/confirming: when to retry, and when to give up; after our FIN: when to repeat it; lingering: when to forget. */
  retryAt: number;
  giveUpAt: number;
  /** confirming: when to give this conv up and open another. */
  confirmBy: number;
  /** FIN pending, all acknowledged: when to ask the peer's window next (Infinity: not waiting), the backoff, and the window's last growth. */
  probeAt: number;
  probeWait: number;
  drainWnd: number;
  drainSince: number;
}

export class EtKcpEndpoint {
  readonly role: 'src' | 'dst';
  readonly #me: number;
  readonly #type: number;
  readonly #byTriple = new Map<string, Conn>();
  readonly #byId = new Map<KcpConnId, Conn>();
  /** One pacer per peer with live engines: the connections to a node share its path. */
  readonly #pacers = new Map<number, EtKcpPacer<Conn>>();
  readonly #sent = (p: PacedKcp<Conn>): void => this.#wrap(p.owner);
  #nextConv: number;
  #nextId = 1;
  /** Connects in flight (syn-sent or confirming) by peer, and those waiting for a place, in order. */
  readonly #opening = new Map<number, number>();
  #queued: Conn[] = [];
  /** The latest `now` any call brought; closeWrite and read, which take none, act at that time. */
  #now = 0;
  #tx: KcpOut[] = [];
  #events: KcpEndpointEvent[] = [];
  /** Packets refused or ignored, by reason. */
  readonly drops = { malformed: 0, 'unknown-conn': 0, 'over-limit': 0 };

  constructor(role: 'src' | 'dst', myPeerId: number) {
    this.role = role;
    this.#me = myPeerId;
    this.#type = role === 'src' ? EtPacketType.KcpSrc : EtPacketType.KcpDst;
    this.#nextConv = randomBytes(4).readUInt32LE(0);
  }

  /** Opens a connection to the node `peer` for the flow `connData` (src endpoints only). */
  connect(peer: number, connData: KcpConnData, now: number): KcpConnId {
    this.#now = now;
    const c: Conn = {
      id: `k${this.#nextId++}`, conv: 0, src: this.#me, dst: peer, peer, state: 'queued', kcp: null, paced: null, confirmBy: Infinity,
      connData: encodeKcpConnData(connData), localFin: 'open', peerFin: false, eofReported: false, writeBlocked: false,
      lastRx: now, nextPingAt: now + KCP_PING_INTERVAL_MS, retryAt: now, giveUpAt: now + CONNECT_TIMEOUT_MS, ...NO_DRAIN,
    };
    this.#byId.set(c.id, c);
    if ((this.#opening.get(peer) ?? 0) < MAX_OPENING_PER_PEER) this.#open(c, now);
    else this.#queued.push(c);
    return c.id;
  }

  /** One kcp-sys packet from `from` (the payload of a PM KcpSrc/KcpDst packet for us). */
  input(from: number, payload: Uint8Array, now: number): void {
    this.#now = now;
    const got = decodeKcpEnvelope(payload);
    if (!got) {
      this.drops.malformed++;
      return;
    }
    const { env, body } = got;
    const c = this.#byTriple.get(triple(env.conv, env.srcSessionId, env.dstSessionId));
    if (!c || c.peer !== from) {
      this.#unknown(from, env.conv, env.srcSessionId, env.dstSessionId, env.flag, body, now);
      return;
    }
    c.lastRx = now;
    if (c.state === 'lingering') {
      if (env.flag === KcpFlag.Ping) this.#send(c, KcpFlag.Ping | KcpFlag.Pong);
      return;
    }
    if (env.flag & KcpFlag.Rst) {
      this.#close(c, 'reset');
      return;
    }
    if (env.flag & KcpFlag.Ping) {
      if (!(env.flag & KcpFlag.Pong)) this.#send(c, KcpFlag.Ping | KcpFlag.Pong);
      return;
    }
    if (c.state === 'syn-sent' && env.flag === (KcpFlag.Syn | KcpFlag.Ack)) {
      c.state = 'confirming';
      this.#attachKcp(c);
      c.confirmBy = now + CONFIRM_TIMEOUT_MS;
      this.#send(c, KcpFlag.Ack | KcpFlag.Data);
      this.#askConfirm(c, now);
      return;
    }
    if (c.state === 'confirming' && env.flag & KcpFlag.Data && body.length > 0) {
      // Any ikcp segment from the acceptor: its connection exists, so what we send now is taken.
      if (c.kcp!.input(body, now) !== 0) return;
      c.state = 'established';
      this.#leaveOpening(c, now);
      this.#events.push({ type: 'connected', id: c.id });
      return;
    }
    if (c.state === 'syn-received') {
      if (env.flag === KcpFlag.Syn) this.#send(c, KcpFlag.Syn | KcpFlag.Ack); // our SYN|ACK was lost
      else if (env.flag & KcpFlag.Ack) {
        c.state = 'established';
        this.#attachKcp(c);
        this.#events.push({ type: 'accepted', id: c.id, peer: c.peer, connData: readConnData(c.connData)! });
      }
    }
    if (c.state !== 'established') return;
    if (env.flag & KcpFlag.Data && body.length > 0) {
      const kcp = c.kcp!;
      kcp.input(body, now);
      if (kcp.readable()) this.#events.push({ type: 'readable', id: c.id });
      this.#checkWritable(c);
      this.#flushKcp(c);
    }
    if (env.flag & KcpFlag.Fin && !c.peerFin) {
      c.peerFin = true;
      this.#maybeEof(c);
    }
  }

  /** Queues bytes; returns how many were taken (0 while ikcp holds too much: wait for 'writable'). */
  write(id: KcpConnId, data: Uint8Array, now: number): number {
    this.#now = now;
    const c = this.#byId.get(id);
    if (!c || c.state !== 'established' || c.localFin !== 'open' || data.length === 0) return 0;
    if (c.kcp!.waitSnd >= WRITE_LIMIT_SEGMENTS) {
      c.writeBlocked = true;
      return 0;
    }
    c.kcp!.send(data);
    c.kcp!.flush(now);
    this.#collect(c);
    return data.length;
  }

  /** Reads delivered bytes into `dst`; 0 if none are waiting. */
  read(id: KcpConnId, dst: Uint8Array): number {
    const c = this.#byId.get(id);
    if (!c?.kcp) return 0;
    const n = c.kcp.read(dst);
    this.#maybeEof(c);
    return n > 0 ? n : 0;
  }

  /** Half-close: a FIN follows once everything written is acknowledged. */
  closeWrite(id: KcpConnId): void {
    const c = this.#byId.get(id);
    if (!c || c.localFin !== 'open') return;
    c.localFin = 'pending';
    this.#maybeFin(c);
  }

  /** Drops the connection at once, telling the peer (RST). */
  abort(id: KcpConnId): void {
    const c = this.#byId.get(id);
    if (!c) return;
    if (c.state !== 'closed') this.#send(c, KcpFlag.Rst);
    this.#close(c, 'reset');
  }

  handleTimeout(now: number): void {
    this.#now = now;
    for (const pacer of this.#pacers.values()) if (pacer.wakeAt <= now) pacer.pace(now, this.#sent);
    for (const c of [...this.#byId.values()]) {
      if (c.localFin === 'sent' && now >= c.retryAt) {
        c.retryAt = now + FIN_RESEND_MS;
        this.#send(c, KcpFlag.Fin);
      }
      if (c.state === 'lingering') {
        if (now >= c.giveUpAt) this.#forget(c);
        continue;
      }
      if (c.state === 'queued' || c.state === 'syn-sent' || c.state === 'confirming') {
        if (now >= c.giveUpAt) this.#close(c, 'connect-timeout');
        else if (c.state === 'syn-sent' && now >= c.retryAt) this.#sendSyn(c, now);
        else if (c.state === 'confirming' && now >= c.confirmBy) this.#reopen(c, now);
        else if (c.state === 'confirming' && now >= c.retryAt) this.#askConfirm(c, now);
        continue;
      }
      if (now - c.lastRx >= KCP_IDLE_TIMEOUT_MS) {
        this.#close(c, 'idle');
        continue;
      }
      if (now >= c.nextPingAt) {
        c.nextPingAt = now + KCP_PING_INTERVAL_MS;
        this.#send(c, KcpFlag.Ping);
      }
      if (c.kcp && now >= c.probeAt) {
        c.probeWait = Math.min(2 * c.probeWait, FIN_PROBE_MAX_MS);
        c.probeAt = now + c.probeWait;
        c.kcp.askWindow();
        c.kcp.flush(now);
        this.#flushKcp(c);
      }
      if (c.kcp && c.kcp.pollTimeout() <= now) {
        c.kcp.handleTimeout(now);
        if (c.kcp.deadLinkReached) {
          this.#send(c, KcpFlag.Rst);
          this.#close(c, 'dead-link');
          continue;
        }
        this.#flushKcp(c);
      }
    }
  }

  pollTimeout(): number {
    let t = Infinity;
    for (const pacer of this.#pacers.values()) t = Math.min(t, pacer.wakeAt);
    for (const c of this.#byId.values()) {
      if (c.state === 'queued') t = Math.min(t, c.giveUpAt);
      else if (c.state === 'syn-sent' || c.state === 'lingering') t = Math.min(t, c.retryAt, c.giveUpAt);
      else if (c.state === 'confirming') t = Math.min(t, c.retryAt, c.giveUpAt, c.confirmBy);
      else if (c.localFin === 'sent') t = Math.min(t, c.retryAt, c.lastRx + KCP_IDLE_TIMEOUT_MS, c.nextPingAt, c.kcp?.pollTimeout() ?? Infinity);
      else t = Math.min(t, c.probeAt, c.lastRx + KCP_IDLE_TIMEOUT_MS, c.nextPingAt, c.kcp?.pollTimeout() ?? Infinity);
    }
    return t;
  }

  pollTransmit(): KcpOut | undefined {
    return this.#tx.shift();
  }

  pollEvent(): KcpEndpointEvent | undefined {
    return this.#events.shift();
  }

  get size(): number {
    return this.#byId.size;
  }

  /** A packet for no connection we know: a bare SYN opens one (dst endpoints), anything else but RST is answered with RST. */
  #unknown(from: number, conv: number, src: number, dst: number, flag: number, body: Uint8Array, now: number): void {
    if (flag === KcpFlag.Syn && this.role === 'dst' && dst === this.#me && src === from) {
      if (this.#byId.size >= MAX_CONNS || !readConnData(body)) {
        this.drops[this.#byId.size >= MAX_CONNS ? 'over-limit' : 'malformed']++;
        this.#tx.push({ to: from, type: this.#type, payload: encodeKcpEnvelope({ conv, srcSessionId: src, dstSessionId: dst, flag: KcpFlag.Rst }) });
        return;
      }
      const c: Conn = {
        id: `k${this.#nextId++}`, conv, src, dst, peer: from, state: 'syn-received', kcp: null, paced: null, connData: Uint8Array.from(body),
        localFin: 'open', peerFin: false, eofReported: false, writeBlocked: false, lastRx: now,
        nextPingAt: now + KCP_PING_INTERVAL_MS, retryAt: Infinity, giveUpAt: Infinity, confirmBy: Infinity, ...NO_DRAIN,
      };
      this.#byId.set(c.id, c);
      this.#byTriple.set(triple(conv, src, dst), c);
      this.#send(c, KcpFlag.Syn | KcpFlag.Ack);
      return;
    }
    this.drops['unknown-conn']++;
    if (!(flag & KcpFlag.Rst)) {
      this.#tx.push({ to: from, type: this.#type, payload: encodeKcpEnvelope({ conv, srcSessionId: src, dstSessionId: dst, flag: KcpFlag.Rst }) });
    }
  }

  /** A queued connect takes its place among the peer's connects in flight and sends its SYN. */
  #open(c: Conn, now: number): void {
    this.#opening.set(c.peer, (this.#opening.get(c.peer) ?? 0) + 1);
    c.state = 'syn-sent';
    this.#sendSyn(c, now);
  }

  /** A connect left the in-flight set (confirmed or closed): the next queued one to that peer goes. */
  #leaveOpening(c: Conn, now: number): void {
    const n = (this.#opening.get(c.peer) ?? 1) - 1;
    if (n > 0) this.#opening.set(c.peer, n);
    else this.#opening.delete(c.peer);
    const i = this.#queued.findIndex((q) => q.peer === c.peer);
    if (i >= 0) this.#open(this.#queued.splice(i, 1)[0]!, now);
  }

  /** A WASK on a just-opened connection: only an acceptor that has taken it answers (WINS). */
  #askConfirm(c: Conn, now: number): void {
    c.retryAt = now + CONFIRM_RETRY_MS;
    c.kcp!.askWindow();
    c.kcp!.flush(now);
    this.#collect(c);
  }

  /** The acceptor never took this conv: reset it and open the connect again on a fresh one. */
  #reopen(c: Conn, now: number): void {
    this.#send(c, KcpFlag.Rst);
    this.#detachKcp(c);
    c.confirmBy = Infinity;
    c.state = 'syn-sent';
    this.#sendSyn(c, now);
  }

  /** (Re)sends the SYN of a connect, on a fresh conv: a late SYN|ACK for an old one meets RST. */
  #sendSyn(c: Conn, now: number): void {
    this.#byTriple.delete(triple(c.conv, c.src, c.dst));
    do c.conv = this.#nextConv++ >>> 0;
    while (this.#byTriple.has(triple(c.conv, c.src, c.dst)));
    this.#nextConv >>>= 0;
    this.#byTriple.set(triple(c.conv, c.src, c.dst), c);
    c.retryAt = now + CONNECT_RETRY_MS;
    this.#tx.push({ to: c.peer, type: this.#type, payload: encodeKcpEnvelope({ conv: c.conv, srcSessionId: c.src, dstSessionId: c.dst, flag: KcpFlag.Syn }, c.connData) });
  }

  #send(c: Conn, flag: number): void {
    this.#tx.push({ to: c.peer, type: this.#type, payload: encodeKcpEnvelope({ conv: c.conv, srcSessionId: c.src, dstSessionId: c.dst, flag }) });
  }

  #flushKcp(c: Conn): void {
    this.#collect(c);
    this.#maybeFin(c);
  }

  /** Sends what ikcp queued, then lets the peer's pacer grant new segments to whichever connection waits. */
  #collect(c: Conn): void {
    this.#wrap(c);
    const pacer = this.#pacers.get(c.peer);
    if (!pacer || !c.paced) return;
    pacer.note(c.paced, this.#now);
    pacer.pace(this.#now, this.#sent);
  }

  /** Wraps ikcp's datagrams (the envelope goes into the headroom ikcp left for it) and charges them to the path. */
  #wrap(c: Conn): void {
    let bytes = 0;
    for (let d = c.kcp!.pollTransmit(); d; d = c.kcp!.pollTransmit()) {
      writeU32Le(d, 0, c.conv);
      writeU32Le(d, 4, c.src);
      writeU32Le(d, 8, c.dst);
      d[12] = KcpFlag.Ack | KcpFlag.Data;
      d[13] = 0;
      this.#tx.push({ to: c.peer, type: this.#type, payload: d });
      bytes += d.length;
    }
    if (bytes > 0) this.#pacers.get(c.peer)?.onSent(bytes, this.#now);
  }

  #attachKcp(c: Conn): void {
    c.kcp = newKcp(c.conv);
    let pacer = this.#pacers.get(c.peer);
    if (!pacer) this.#pacers.set(c.peer, (pacer = new EtKcpPacer(c.kcp.mss)));
    pacer.members++;
    c.paced = new PacedKcp(c.kcp, c);
  }

  #detachKcp(c: Conn): void {
    if (!c.kcp) return;
    const pacer = this.#pacers.get(c.peer)!;
    pacer.retire(c.paced!);
    if (--pacer.members === 0) this.#pacers.delete(c.peer);
    c.kcp.release();
    c.kcp = null;
    c.paced = null;
  }

  #maybeFin(c: Conn): void {
    if (c.localFin !== 'pending' || !c.kcp || c.kcp.waitSnd > 0) return;
    const wnd = c.kcp.remoteWindow;
    if (c.probeAt === Infinity || wnd > c.drainWnd) {
      c.drainWnd = wnd;
      c.drainSince = this.#now;
    }
    if (wnd < ET_KCP.rcvWnd && this.#now - c.drainSince < FIN_DRAIN_STALL_MS) {
      if (c.probeAt === Infinity) {
        c.probeWait = FIN_PROBE_MIN_MS;
        c.probeAt = this.#now + FIN_PROBE_MIN_MS;
      }
      return;
    }
    c.probeAt = Infinity;
    c.localFin = 'sent';
    c.retryAt = this.#now + FIN_RESEND_MS;
    this.#send(c, KcpFlag.Fin);
    this.#maybeDone(c);
  }

  #maybeEof(c: Conn): void {
    if (!c.peerFin || c.eofReported || (c.kcp && c.kcp.readable())) return;
    c.eofReported = true;
    this.#events.push({ type: 'eof', id: c.id });
    this.#maybeDone(c);
  }

  #checkWritable(c: Conn): void {
    if (c.writeBlocked && c.kcp!.waitSnd < WRITE_LIMIT_SEGMENTS) {
      c.writeBlocked = false;
      this.#events.push({ type: 'writable', id: c.id });
    }
  }

  /** Both directions finished: the connection is done, and lingers to repeat its FIN. */
  #maybeDone(c: Conn): void {
    if (c.localFin !== 'sent' || !c.eofReported || !c.kcp) return;
    c.state = 'lingering';
    c.giveUpAt = this.#now + LINGER_MS;
    this.#detachKcp(c);
    this.#events.push({ type: 'closed', id: c.id, reason: 'done' });
  }

  #close(c: Conn, reason: 'reset' | 'connect-timeout' | 'idle' | 'dead-link'): void {
    if (c.state === 'closed' || c.state === 'lingering') return;
    this.#forget(c);
    this.#events.push({ type: 'closed', id: c.id, reason });
  }

  #forget(c: Conn): void {
    if (c.state === 'syn-sent' || c.state === 'confirming') this.#leaveOpening(c, this.#now);
    else if (c.state === 'queued') this.#queued = this.#queued.filter((q) => q !== c);
    this.#detachKcp(c);
    c.state = 'closed';
    this.#byId.delete(c.id);
    if (this.#byTriple.get(triple(c.conv, c.src, c.dst)) === c) this.#byTriple.delete(triple(c.conv, c.src, c.dst));
  }
}

/** The connect message, or null if it is garbled or not IPv4. */
function readConnData(body: Uint8Array): KcpConnData | null {
  try {
    return decodeKcpConnData(body);
  } catch {
    return null;
  }
}

const NO_DRAIN = { probeAt: Infinity, probeWait: 0, drainWnd: 0, drainSince: 0 } as const;

const triple = (conv: number, src: number, dst: number): string => `${conv >>> 0}:${src >>> 0}:${dst >>> 0}`;

/**
 * EasyTier's wire settings (MTU, windows, stream mode, nodelay, fast resend, no congestion window).
 * Two local departures, neither visible on the wire: new segments wait for the peer's pacer
 * (kcp-pacer.ts says why), and a zero window is probed after ZERO_WINDOW_PROBE_MS, not ikcp's 7 s.
 */
function newKcp(conv: number): Kcp {
  return new Kcp({
    conv, mtu: KCP_DATAGRAM, headroom: KCP_ENVELOPE_LEN, sndWnd: ET_KCP.sndWnd, rcvWnd: ET_KCP.rcvWnd,
    nodelay: 1, interval: 10, resend: ET_KCP.resend, nc: 1, streamMode: true, probeInitMs: ZERO_WINDOW_PROBE_MS,
  });
}
