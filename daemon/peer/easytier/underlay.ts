/**
 * How EasyTier's underlays delimit PM packets (docs/easytier-wire.md):
 * - tcp://: each PM packet is prefixed with u32 LE length (16 + bytes after the header);
 *   a length over 2000 or under 16 ends the stream;
 * - udp://: one PM packet per datagram behind an 8-byte header
 *   (conn_id u32 LE, msg_type u8, 0, len u16 LE); Syn/Sack carry an 8-byte magic.
 */
import { readU16Le, readU32Le, writeU16Le, writeU32Le } from '../../packet/bytes.js';
import { PM_HEADER_LEN } from '../wire.js';
import { TstierError } from '../../errors.js';

/** EasyTier's receive limit on either underlay; keep PM packets at or below it. */
export const ET_MAX_PACKET = 2000;

// ---- tcp:// ----

export const TCP_LEN_PREFIX = 4;

/** The length prefix for one PM packet. */
export function tcpFrame(pm: Uint8Array): Uint8Array {
  const out = new Uint8Array(TCP_LEN_PREFIX + pm.length);
  writeU32Le(out, 0, pm.length);
  out.set(pm, TCP_LEN_PREFIX);
  return out;
}

/** Reassembles PM packets from a TCP byte stream. Bounded: it never holds more than one frame plus a chunk. */
export class TcpFrameDecoder {
  #pending: Uint8Array = new Uint8Array(0);

  /** Appends a chunk and returns every complete PM packet; throws (the stream must close) on a bad length. */
  push(chunk: Uint8Array): Uint8Array[] {
    const buf = this.#pending.length === 0 ? chunk : concat(this.#pending, chunk);
    const out: Uint8Array[] = [];
    let at = 0;
    while (buf.length - at >= TCP_LEN_PREFIX) {
      const len = readU32Le(buf, at);
      if (len > ET_MAX_PACKET || len < PM_HEADER_LEN) {
        throw new TstierError('TSTIER_E_PROTOCOL', `tcp frame length ${len} outside ${PM_HEADER_LEN}..${ET_MAX_PACKET}`);
      }
      if (buf.length - at < TCP_LEN_PREFIX + len) break;
      out.push(buf.slice(at + TCP_LEN_PREFIX, at + TCP_LEN_PREFIX + len));
      at += TCP_LEN_PREFIX + len;
    }
    this.#pending = buf.slice(at);
    return out;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// ---- udp:// ----

export const UDP_HEADER_LEN = 8;
export const UDP_MAGIC_LEN = 8;
/** A connector waits this long for the Sack; the Syn is not retransmitted. */
export const UDP_CONNECT_TIMEOUT_MS = 3000;

export const UdpMsgType = { Invalid: 0, Syn: 1, Sack: 2, Data: 3, Fin: 4, HolePunch: 5, V4HolePunch: 6, V6HolePunch: 7 } as const;

export interface UdpDatagram {
  connId: number;
  msgType: number;
  body: Uint8Array;
}

export function encodeUdp(connId: number, msgType: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(UDP_HEADER_LEN + body.length);
  writeU32Le(out, 0, connId);
  out[4] = msgType;
  out[5] = 0;
  writeU16Le(out, 6, body.length);
  out.set(body, UDP_HEADER_LEN);
  return out;
}

/** Parses one datagram; null (drop silently, as EasyTier does) if its len disagrees with its size. */
export function decodeUdp(dgram: Uint8Array): UdpDatagram | null {
  if (dgram.length < UDP_HEADER_LEN) return null;
  if (readU16Le(dgram, 6) !== dgram.length - UDP_HEADER_LEN) return null;
  return { connId: readU32Le(dgram, 0), msgType: dgram[4]!, body: dgram.subarray(UDP_HEADER_LEN) };
}

/** A connector's Syn, or a listener's Sack: the same conn_id and 8-byte magic both ways. */
export function udpSyn(connId: number, magic: Uint8Array, type: typeof UdpMsgType.Syn | typeof UdpMsgType.Sack = UdpMsgType.Syn): Uint8Array {
  if (magic.length !== UDP_MAGIC_LEN) throw new TstierError('TSTIER_E_PROTOCOL', 'udp syn magic must be 8 bytes');
  return encodeUdp(connId, type, magic);
}
