/**
 * The peer-manager ("PM") header every overlay packet starts with: 16 bytes, little-endian,
 * the layout EasyTier uses (docs/easytier-wire.md). The header travels in clear so relays can route on it;
 * the payload after it is sealed (easytier/cipher.ts, or per link in secure mode).
 *
 *   0 from_peer_id u32 | 4 to_peer_id u32 | 8 packet_type u8 | 9 flags u8
 *  10 forward_counter u8 | 11 reserved u8 | 12 len u32 (payload length)
 */
/** This format's fields are little-endian. */
export { readU32Le as readU32, writeU32Le as writeU32, readU16Le as readU16, writeU16Le as writeU16 } from '../packet/bytes.js';
import { readU32Le as readU32, writeU32Le as writeU32 } from '../packet/bytes.js';

export const PM_HEADER_LEN = 16;

/** Packet types; numbers follow EasyTier where it has the same type. */
export const PacketType = {
  Data: 1,
  Handshake: 2,
  Ping: 4,
  Pong: 5,
  RpcReq: 8,
  RpcResp: 9,
  KcpSrc: 11,
  KcpDst: 12,
  QuicSrc: 16,
  QuicDst: 17,
} as const;

export const PmFlag = {
  Encrypted: 0x01,
  LatencyFirst: 0x02,
  ExitNode: 0x04,
  NoProxy: 0x08,
  Compressed: 0x10,
  NotSendToTun: 0x40,
} as const;

/** A relay drops a packet whose forward counter would exceed this, as in EasyTier. */
export const MAX_FORWARD_COUNTER = 7;

/** Header fields, for writing one. Readers use the getters below, in place. */
export interface PmHeader {
  from: number;
  to: number;
  type: number;
  flags: number;
  forwardCounter: number;
  len: number;
}

export function writePmHeader(buf: Uint8Array, at: number, h: PmHeader): void {
  writeU32(buf, at, h.from);
  writeU32(buf, at + 4, h.to);
  buf[at + 8] = h.type;
  buf[at + 9] = h.flags;
  buf[at + 10] = h.forwardCounter;
  buf[at + 11] = 0;
  writeU32(buf, at + 12, h.len);
}

export const pmFrom = (b: Uint8Array): number => readU32(b, 0);
export const pmTo = (b: Uint8Array): number => readU32(b, 4);
export const pmType = (b: Uint8Array): number => b[8]!;

