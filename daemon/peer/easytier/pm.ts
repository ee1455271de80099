/**
 * EasyTier's PM packet: the 16-byte header tstier's own peer layer shares (../wire.ts), EasyTier's
 * packet types, and what happens to a payload between the header and the underlay (encryption,
 * the forward counter, ping/pong).
 *
 * Stricter than EasyTier (docs/easytier-wire.md): with encryption on, a plaintext Data, KCP, QUIC
 * or RPC packet is refused (EasyTier passes it through, so a peer that only knows the network name
 * could inject). Compressed payloads (flag 0x10, zstd) are refused too, as this codec has no zstd.
 */
import { MAX_FORWARD_COUNTER, PM_HEADER_LEN, PmFlag, writePmHeader, type PmHeader } from '../wire.js';
import { readU32Le, writeU32Le } from '../../packet/bytes.js';
import type { EtCipher } from './cipher.js';

export { PM_HEADER_LEN, PmFlag, MAX_FORWARD_COUNTER, type PmHeader };

/** EasyTier 2.6 packet types, numbered as EasyTier numbers them; not every one is sent by tstier. */
export const EtPacketType = {
  Invalid: 0,
  Data: 1,
  HandShake: 2,
  Ping: 4,
  Pong: 5,
  TaRpc: 6,
  RpcReq: 8,
  RpcResp: 9,
  ForeignNetworkPacket: 10,
  KcpSrc: 11,
  KcpDst: 12,
  NoiseHandshakeMsg1: 13,
  NoiseHandshakeMsg2: 14,
  NoiseHandshakeMsg3: 15,
  QuicSrc: 16,
  QuicDst: 17,
  RelayHandshake: 20,
  RelayHandshakeAck: 21,
} as const;

/**
 * tstier's own KCP and QUIC carriers between tstier nodes, on EasyTier's wire: private packet types
 * (EasyTier's own KcpSrc/KcpDst/QuicSrc/QuicDst carry kcp-sys and quinn-plaintext, which a tstier
 * carrier does not speak). EasyTier relays them like any packet for someone else and drops them,
 * as unhandled, if one is ever addressed to it. Sealed like Data.
 */
export const TstierPacketType = {
  KcpSrc: 75,
  KcpDst: 76,
  QuicSrc: 80,
  QuicDst: 81,
} as const;

/** Forward counter a packet leaves its origin with. RPC packets pass the origin's own forwarder once. */
export const ORIGIN_FORWARD_COUNTER = 1;
export const RPC_ORIGIN_FORWARD_COUNTER = 2;

/** Types EasyTier encrypts when encryption is on (RPC too, unless the peer is a public server). */
export function isEncryptedType(type: number): boolean {
  return (
    type === EtPacketType.Data ||
    type === EtPacketType.KcpSrc ||
    type === EtPacketType.KcpDst ||
    type === EtPacketType.QuicSrc ||
    type === EtPacketType.QuicDst ||
    type === EtPacketType.RpcReq ||
    type === EtPacketType.RpcResp ||
    type === TstierPacketType.KcpSrc ||
    type === TstierPacketType.KcpDst ||
    type === TstierPacketType.QuicSrc ||
    type === TstierPacketType.QuicDst
  );
}

export function readPmHeader(b: Uint8Array): PmHeader {
  return { from: readU32Le(b, 0), to: readU32Le(b, 4), type: b[8]!, flags: b[9]!, forwardCounter: b[10]!, len: readU32Le(b, 12) };
}

export interface PmPacket {
  header: PmHeader;
  /** The bytes after the header as they came (possibly sealed). */
  body: Uint8Array;
}

/** Splits one PM packet as the underlay delimited it; null if shorter than the header. */
export function splitPm(packet: Uint8Array): PmPacket | null {
  if (packet.length < PM_HEADER_LEN) return null;
  return { header: readPmHeader(packet), body: packet.subarray(PM_HEADER_LEN) };
}

/**
 * Builds one PM packet after `headroom` bytes left for the underlay's own header (so the packet is
 * sent without another copy). Encryptable types are sealed with `cipher` (setting ENCRYPTED) unless
 * it is 'none', straight from `payload` into the packet; len is the plaintext length, as EasyTier
 * writes it.
 */
export function buildPm(h: Omit<PmHeader, 'len'>, payload: Uint8Array, cipher: EtCipher, headroom = 0): Buffer {
  const seal = cipher.algorithm !== 'none' && isEncryptedType(h.type);
  const at = headroom + PM_HEADER_LEN;
  const out = Buffer.allocUnsafe(at + payload.length + (seal ? cipher.overhead : 0));
  writePmHeaderFields(out, headroom, h, seal ? h.flags | PmFlag.Encrypted : h.flags & ~PmFlag.Encrypted, payload.length);
  if (seal) cipher.sealInto(out, at, payload);
  else out.set(payload, at);
  return out;
}

/**
 * Writes a PM header at out[at..] from `h` with these flags and len; field by field, not
 * writePmHeader({...h}), since it runs for every packet sent.
 */
export function writePmHeaderFields(out: Uint8Array, at: number, h: Omit<PmHeader, 'len'>, flags: number, len: number): void {
  writeU32Le(out, at, h.from);
  writeU32Le(out, at + 4, h.to);
  out[at + 8] = h.type;
  out[at + 9] = flags;
  out[at + 10] = h.forwardCounter;
  out[at + 11] = 0;
  writeU32Le(out, at + 12, len);
}

export type OpenFailure = 'compressed' | 'encrypted-but-off' | 'decrypt-failed' | 'plaintext-refused' | 'bad-len';

/**
 * The plaintext payload of a packet addressed to us, or why it is dropped (each reason is counted).
 * Opens in place: the payload is a view of the packet's own bytes.
 */
export function openPm(p: PmPacket, cipher: EtCipher): { payload: Uint8Array } | { drop: OpenFailure } {
  const { header, body } = p;
  if (header.flags & PmFlag.Compressed) return { drop: 'compressed' };
  let payload = body;
  if (header.flags & PmFlag.Encrypted) {
    if (cipher.algorithm === 'none') return { drop: 'encrypted-but-off' };
    const n = cipher.openInPlace(body, 0, body.length);
    if (n < 0) return { drop: 'decrypt-failed' };
    payload = body.subarray(0, n);
  } else if (cipher.algorithm !== 'none' && isEncryptedType(header.type)) {
    return { drop: 'plaintext-refused' };
  }
  if (payload.length !== header.len) return { drop: 'bad-len' };
  return { payload };
}

/** Whether a relay must drop the packet at `at` for its forward counter. */
export function pastHopLimit(packet: Uint8Array, at = 0): boolean {
  return packet[at + 10]! > MAX_FORWARD_COUNTER;
}

/**
 * A relay's step on a packet (at `at`) for someone else, in place: drop past 7 hops, clear LATENCY_FIRST
 * past 2, count this hop. The payload is not touched (it is sealed for the destination).
 */
export function forwardInPlace(packet: Uint8Array, at = 0): 'forward' | 'drop' {
  if (pastHopLimit(packet, at)) return 'drop';
  const fwd = packet[at + 10]!;
  if (fwd > 2) packet[at + 9] = packet[at + 9]! & ~PmFlag.LatencyFirst;
  packet[at + 10] = fwd + 1;
  return 'forward';
}

/** A Ping (after `headroom` bytes): to the peer at the other end of this connection, never relayed nor encrypted. */
export function buildPing(from: number, to: number, seq: number, headroom = 0): Buffer {
  const out = Buffer.alloc(headroom + PM_HEADER_LEN + 4);
  writePmHeader(out, headroom, { from, to, type: EtPacketType.Ping, flags: 0, forwardCounter: ORIGIN_FORWARD_COUNTER, len: 4 });
  out.writeUInt32LE(seq >>> 0, headroom + PM_HEADER_LEN);
  return out;
}

/** The Pong for a Ping (after `headroom` bytes): the same bytes with the type changed (from/to are not swapped). */
export function pongFor(ping: Uint8Array, headroom = 0): Buffer {
  const out = Buffer.allocUnsafe(headroom + ping.length);
  out.set(ping, headroom);
  out[headroom + 8] = EtPacketType.Pong;
  return out;
}

/** The seq of a Ping or Pong payload, or null if it is not 4 bytes. */
export function pingSeq(p: PmPacket): number | null {
  return p.body.length === 4 ? readU32Le(p.body, 0) : null;
}
