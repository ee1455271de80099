/**
 * Where an incoming datagram goes, sans-IO: open it with the cipher, read the tunnel header, and
 * hand it to the session with that id, wherever it came from.
 *
 * Only an authenticated datagram may create a session or move a session's return path (`P`:
 * whatever the adapter uses to answer, e.g. the socket it arrived on and the source address), and
 * only once: each carries a counter, and a counter seen before (a replay, or a duplicate on the
 * path) is dropped. Everything else is counted and dropped too.
 *
 * A session's replay window dies with it, so the router remembers the ids of the sessions that
 * ended most recently: a datagram for one of them (late, or replayed by a stranger) is dropped and
 * cannot create the session again. And only a session's first datagram (KCP PUSH sn 0, which
 * carries HELLO) may create one: any later datagram, replayed after its id was forgotten or sent
 * by a client that outlived a server restart, would make a session that can never deliver a byte
 * and only answers the sender with ACKs.
 */
import { firstSegment } from '../transport/session/route.js';
import { IKCP_CMD_PUSH, IKCP_SN_OFFSET } from '../transport/kcp/segment.js';
import { OPEN_SHORT, type TunnelCipher } from './crypt.js';
import { COUNTER_NEWEST, COUNTER_REPLAY, type TubeSession } from './session.js';
import { TUNNEL_HEADER_SIZE, T_CLOSE, T_KCP, T_PING, T_PONG, readU32 } from './wire.js';

/** Counted events of one config: drops, and TCP pauses for back-pressure. */
export interface TubeCounters {
  /** Shorter than the cipher header plus the tunnel header. */
  short: number;
  /** Failed authentication (wrong key, forged, corrupted). */
  forged: number;
  /** Authenticated, but with a type we do not know. */
  badType: number;
  /** A control datagram, or a KCP datagram that is not a session's first, for a session we do not have. */
  unknownSession: number;
  /** Authentic datagrams for a session that has ended (late, or replayed): they never revive it. */
  endedSession: number;
  /** UDP datagrams from applications dropped because the KCP window was full. */
  udpQueueFull: number;
  /** Authentic datagrams seen before (replayed or duplicated): they may not move a session. */
  replayed: number;
  /** Times a TCP socket was paused because KCP's window was full (not a drop: it resumes). */
  tcpPauses: number;
}

export function newTubeCounters(): TubeCounters {
  return {
    short: 0, forged: 0, badType: 0, unknownSession: 0, endedSession: 0, replayed: 0, udpQueueFull: 0, tcpPauses: 0,
  };
}

/**
 * Ended session ids remembered (about 2 MB): a busy server's last hours of sessions. Counted, not
 * timed: datagrams carry no time, so a replay is as good a day later as a second later.
 */
export const ENDED_IDS_KEPT = 65536;
/** Where the command byte sits in a KCP segment header. */
const KCP_CMD_OFFSET = 4;

export interface Routed<P> {
  session: TubeSession;
  path: P;
}

export class SessionRouter<P> {
  readonly sessions = new Map<number, Routed<P>>();
  /** Ids of ended sessions, oldest first; at most ENDED_IDS_KEPT. */
  readonly ended = new Set<number>();

  constructor(
    private readonly cipher: TunnelCipher,
    readonly counters: TubeCounters,
    /** Called for an authenticated KCP datagram with an unknown id; return null to refuse it. */
    private readonly create: ((sid: number, path: P, now: number) => TubeSession | null) | null,
  ) {}

  /**
   * Opens buf (in place) and feeds its session. Returns the routed entry, or null when dropped.
   * The newest datagram (highest counter) sets the entry's path, so replies follow the peer to
   * its newest address and a straggler from an old one does not pull them back.
   */
  input(buf: Uint8Array, path: P, now: number): Routed<P> | null {
    const off = this.cipher.open(buf, buf.length);
    if (off < 0 || buf.length - off < TUNNEL_HEADER_SIZE) {
      if (off < 0 && off !== OPEN_SHORT) this.counters.forged++;
      else this.counters.short++;
      return null;
    }
    const sid = readU32(buf, off);
    const type = buf[off + 4]!;
    const counter = readU32(buf, off + 5);
    if (type !== T_KCP && type !== T_PING && type !== T_PONG && type !== T_CLOSE) {
      this.counters.badType++;
      return null;
    }
    let entry = this.sessions.get(sid);
    if (entry === undefined) {
      if (this.ended.has(sid)) {
        this.counters.endedSession++;
        return null;
      }
      const first = type === T_KCP && this.create !== null && opensSession(buf, off + TUNNEL_HEADER_SIZE);
      const session = first ? this.create!(sid, path, now) : null;
      if (session === null) {
        this.counters.unknownSession++;
        return null;
      }
      entry = { session, path };
      this.sessions.set(sid, entry);
    }
    const order = entry.session.acceptCounter(counter);
    if (order === COUNTER_REPLAY) {
      this.counters.replayed++;
      return null;
    }
    if (order === COUNTER_NEWEST) entry.path = path;
    const body = off + TUNNEL_HEADER_SIZE;
    if (type === T_KCP) entry.session.inputKcp(buf, body, now);
    else entry.session.inputControl(type, buf.subarray(body), now);
    return entry;
  }

  /** Forgets a session that ended, and remembers its id so it cannot be revived. */
  delete(sid: number): void {
    if (!this.sessions.delete(sid)) return;
    this.ended.add(sid);
    if (this.ended.size > ENDED_IDS_KEPT) this.ended.delete(this.ended.values().next().value!);
  }
}

/** Whether a KCP body starts with a session's first segment: PUSH with sn 0. */
function opensSession(buf: Uint8Array, body: number): boolean {
  const seg = firstSegment(buf, body, buf.length);
  return seg >= 0 && buf[seg + KCP_CMD_OFFSET] === IKCP_CMD_PUSH && readU32(buf, seg + IKCP_SN_OFFSET) === 0;
}
