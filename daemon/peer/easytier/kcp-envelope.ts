/**
 * The kcp-sys envelope EasyTier's KCP proxy puts in PM packets of type KcpSrc (from the side that
 * connects) and KcpDst (from the side that accepts): a 14-byte header, then either the connect
 * message (on SYN), or concatenated ikcp segments (on ACK|DATA), or nothing.
 *
 *   0 conv u32 LE | 4 src_session_id u32 LE (initiator's peer id) | 8 dst_session_id u32 LE
 *  12 flag u8 | 13 reserved u8
 *
 * The triple (conv, src, dst) names a connection in both directions; the ids are never swapped.
 */
import { readU32Le, writeU32Le } from '../../packet/bytes.js';
import { ProtoWriter, protoFields, u32 } from './proto.js';

export const KCP_ENVELOPE_LEN = 14;

export const KcpFlag = { Syn: 0x01, Ack: 0x02, Fin: 0x04, Data: 0x08, Rst: 0x10, Ping: 0x20, Pong: 0x40 } as const;

/** EasyTier's KCP settings for proxied flows: stream mode, MTU 1200, windows 1024, nodelay, resend 2, no cwnd. */
export const ET_KCP = { mtu: 1200, sndWnd: 1024, rcvWnd: 1024, nodelay: true, resend: 2, noCwnd: true, stream: true } as const;

export interface KcpEnvelope {
  conv: number;
  srcSessionId: number;
  dstSessionId: number;
  flag: number;
}

export function encodeKcpEnvelope(e: KcpEnvelope, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(KCP_ENVELOPE_LEN + body.length);
  writeU32Le(out, 0, e.conv);
  writeU32Le(out, 4, e.srcSessionId);
  writeU32Le(out, 8, e.dstSessionId);
  out[12] = e.flag;
  out[13] = 0;
  out.set(body, KCP_ENVELOPE_LEN);
  return out;
}

/** The envelope and its body, or null if shorter than the header. */
export function decodeKcpEnvelope(b: Uint8Array): { env: KcpEnvelope; body: Uint8Array } | null {
  if (b.length < KCP_ENVELOPE_LEN) return null;
  return {
    env: { conv: readU32Le(b, 0), srcSessionId: readU32Le(b, 4), dstSessionId: readU32Le(b, 8), flag: b[12]! },
    body: b.subarray(KCP_ENVELOPE_LEN),
  };
}

/** An IPv4 socket address as `common.SocketAddr` carries it ({1 ipv4 {1 addr}, 3 port}). */
export interface EtSocketAddrV4 {
  /** Octets big-endian in a u32 (10.77.0.1 → 0x0a4d0001). */
  addr: number;
  port: number;
}

const encodeSocketAddr = (a: EtSocketAddrV4): Uint8Array =>
  new ProtoWriter().message(1, new ProtoWriter().uint(1, a.addr).finish()).uint(3, a.port).finish();

function decodeSocketAddr(buf: Uint8Array): EtSocketAddrV4 | null {
  let addr: number | null = null;
  let port = 0;
  for (const f of protoFields(buf)) {
    if (f.no === 1) {
      addr = 0;
      for (const g of protoFields(f.bytes)) if (g.no === 1) addr = u32(g);
    } else if (f.no === 3) port = u32(f);
  }
  return addr === null ? null : { addr, port };
}

/** The connect message on a SYN: `peer_rpc.KcpConnData {1 src, 4 dst}`, raw protobuf, no length prefix. */
export interface KcpConnData {
  src: EtSocketAddrV4;
  /** The address the client dialled. */
  dst: EtSocketAddrV4;
}

export const encodeKcpConnData = (c: KcpConnData): Uint8Array =>
  new ProtoWriter().message(1, encodeSocketAddr(c.src)).message(4, encodeSocketAddr(c.dst)).finish();

/** Null unless both addresses are IPv4 ones (an IPv6 SocketAddr uses another field). */
export function decodeKcpConnData(buf: Uint8Array): KcpConnData | null {
  let src: EtSocketAddrV4 | null = null;
  let dst: EtSocketAddrV4 | null = null;
  for (const f of protoFields(buf)) {
    if (f.no === 1) src = decodeSocketAddr(f.bytes);
    else if (f.no === 4) dst = decodeSocketAddr(f.bytes);
  }
  return src && dst ? { src, dst } : null;
}
