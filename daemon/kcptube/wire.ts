/**
 * tstier's kcptube wire format (docs/kcptube-wire.md), codecs only.
 *
 * Datagram, after the cipher's header (crypt.ts):
 *   [0,4) session id u32 LE | [4] type | [5,9) datagram counter u32 LE | [9,end) body
 *   type KCP: body is KCP (FEC-framed when fec=D:R) of that session
 *   type PING / PONG: body is a u32 LE token (keep_alive)
 *   type CLOSE: no body; the session is over
 *
 * The KCP byte stream of a session carries records:
 *   [0] kind | [1,5) connection id u32 LE | [5,7) length u16 LE | payload
 *   HELLO (client → server, conn 0): u8 version | u64 outbound bps | u64 inbound bps
 *   HELLO_REPLY (server → client, conn 0): u16 port range start | u16 end | u64 out bps | u64 in bps
 *   OPEN: u8 protocol (1 TCP, 2 UDP) — a new connection in this session
 *   DATA: TCP bytes, or exactly one UDP datagram
 *   FIN: the sender will send no more on this connection (TCP half-close; UDP: gone)
 *   RESET: the connection failed or was aborted
 */
import { FEC_HEADER_SIZE, readU16, writeU16 } from '../transport/fec/header.js';
import { readU32, writeU32 } from '../transport/kcp/segment.js';

export { readU32, writeU32 };

export const TUNNEL_HEADER_SIZE = 9;
/** kcp-go style FEC header in front of each KCP datagram when FEC is on. */
export const FEC_OVERHEAD = FEC_HEADER_SIZE;

export const T_KCP = 1;
export const T_PING = 2;
export const T_PONG = 3;
export const T_CLOSE = 4;

export const RECORD_HEADER_SIZE = 7;
export const R_HELLO = 1;
export const R_HELLO_REPLY = 2;
export const R_OPEN = 3;
export const R_DATA = 4;
export const R_FIN = 5;
export const R_RESET = 6;
const MAX_KIND = R_RESET;

export const PROTO_TCP = 1;
export const PROTO_UDP = 2;

export const WIRE_VERSION = 1;
export const MAX_RECORD_PAYLOAD = 0xffff;


/** u64 as two u32 halves, for values up to 2^53. */
function writeU64(b: Uint8Array, o: number, v: number): void {
  writeU32(b, o, v % 0x100000000);
  writeU32(b, o + 4, Math.floor(v / 0x100000000));
}

function readU64(b: Uint8Array, o: number): number {
  return readU32(b, o) + readU32(b, o + 4) * 0x100000000;
}

/** `counter` numbers the session's datagrams in one direction, so a replayed one is refused. */
export function writeTunnelHeader(b: Uint8Array, o: number, sid: number, type: number, counter: number): void {
  writeU32(b, o, sid);
  b[o + 4] = type;
  writeU32(b, o + 5, counter);
}

export function writeRecordHeader(b: Uint8Array, o: number, kind: number, conn: number, len: number): void {
  b[o] = kind;
  writeU32(b, o + 1, conn);
  writeU16(b, o + 5, len);
}

export interface Hello {
  version: number;
  outboundBps: number;
  inboundBps: number;
}

export interface HelloReply {
  portStart: number;
  portEnd: number;
  outboundBps: number;
  inboundBps: number;
}

export const HELLO_SIZE = 17;
export const HELLO_REPLY_SIZE = 20;

export function encodeHello(h: Hello): Uint8Array {
  const b = new Uint8Array(HELLO_SIZE);
  b[0] = h.version;
  writeU64(b, 1, h.outboundBps);
  writeU64(b, 9, h.inboundBps);
  return b;
}

export function decodeHello(b: Uint8Array): Hello | null {
  if (b.length < HELLO_SIZE) return null;
  return { version: b[0]!, outboundBps: readU64(b, 1), inboundBps: readU64(b, 9) };
}

export function encodeHelloReply(h: HelloReply): Uint8Array {
  const b = new Uint8Array(HELLO_REPLY_SIZE);
  writeU16(b, 0, h.portStart);
  writeU16(b, 2, h.portEnd);
  writeU64(b, 4, h.outboundBps);
  writeU64(b, 12, h.inboundBps);
  return b;
}

export function decodeHelloReply(b: Uint8Array): HelloReply | null {
  if (b.length < HELLO_REPLY_SIZE) return null;
  const portStart = readU16(b, 0);
  const portEnd = readU16(b, 2);
  if (portStart === 0 || portStart > portEnd) return null;
  return { portStart, portEnd, outboundBps: readU64(b, 4), inboundBps: readU64(b, 12) };
}

/** One parsed record; the reader reuses this object, and payload is a view valid until it is dropped. */
export interface StreamRecord {
  kind: number;
  conn: number;
  payload: Uint8Array;
}

/** Bytes read from KCP are parsed in arenas of this size; handed-out payloads are never overwritten. */
const ARENA = 128 * 1024;
const MIN_ROOM = 4096;

/**
 * Cuts a session's KCP byte stream into records. The caller reads KCP into `space()` and calls
 * `commit(n)`, then takes records with `next()`. A record with an unknown kind makes `failed` true
 * (the peer broke the protocol; the session should end) and no more records come out.
 */
export class RecordReader {
  private arena = new Uint8Array(ARENA);
  private start = 0; // first unparsed byte
  private end = 0; // end of the bytes read
  failed = false;
  private readonly rec: StreamRecord = { kind: 0, conn: 0, payload: new Uint8Array(0) };

  /** Where to read more bytes: a view of free arena space, at least MIN_ROOM long. */
  space(): Uint8Array {
    if (this.arena.length - this.end < MIN_ROOM) this.renew(0);
    return this.arena.subarray(this.end);
  }

  commit(n: number): void {
    this.end += n;
  }

  next(): StreamRecord | null {
    if (this.failed) return null;
    const avail = this.end - this.start;
    if (avail < RECORD_HEADER_SIZE) return null;
    const a = this.arena;
    const s = this.start;
    const kind = a[s]!;
    if (kind < 1 || kind > MAX_KIND) {
      this.failed = true;
      return null;
    }
    const len = readU16(a, s + 5);
    const total = RECORD_HEADER_SIZE + len;
    if (avail < total) {
      // A record that cannot finish in this arena moves to a fresh one with room for all of it.
      if (s + total > a.length) this.renew(total);
      return null;
    }
    this.start = s + total;
    const r = this.rec;
    r.kind = kind;
    r.conn = readU32(a, s + 1);
    r.payload = a.subarray(s + RECORD_HEADER_SIZE, s + total);
    return r;
  }

  /** Starts a new arena (old views stay valid), carrying the unparsed tail. */
  private renew(need: number): void {
    const tail = this.arena.subarray(this.start, this.end);
    const next = new Uint8Array(Math.max(ARENA, need + MIN_ROOM));
    next.set(tail);
    this.arena = next;
    this.start = 0;
    this.end = tail.length;
  }
}
