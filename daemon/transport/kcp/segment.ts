/**
 * KCP segment wire format (kcp-go v5, docs/kcptun-wire.md §4).
 *
 * A KCP datagram is one or more segments end to end; each is a 24-byte little-endian header
 * followed by `len` bytes of data:
 *
 *   off 0  u32 conv   conversation id
 *   off 4  u8  cmd    81 PUSH, 82 ACK, 83 WASK, 84 WINS
 *   off 5  u8  frg    fragment countdown (message mode); always 0 in stream mode
 *   off 6  u16 wnd    sender's free receive window, in segments
 *   off 8  u32 ts     sender's clock (ACK: the ts echoed from the acked PUSH)
 *   off 12 u32 sn     sequence number (ACK: the acked sn)
 *   off 16 u32 una    sender's rcv_nxt (cumulative ack)
 *   off 20 u32 len    length of the data that follows
 *
 * The engine (kcp.ts) writes headers with `writeSegmentHeader` straight into its output buffer;
 * `parseSegmentHeader` / `encodeSegment` are the representation-level helpers for control paths,
 * tests and tools.
 */
/** This format's fields are little-endian. */
export { readU32Le as readU32, writeU32Le as writeU32 } from '../../packet/bytes.js';
import { readU32Le as readU32, writeU32Le as writeU32 } from '../../packet/bytes.js';

export const IKCP_OVERHEAD = 24;
export const IKCP_SN_OFFSET = 12;

export const IKCP_CMD_PUSH = 81;
export const IKCP_CMD_ACK = 82;
export const IKCP_CMD_WASK = 83;
export const IKCP_CMD_WINS = 84;

export const IKCP_RTO_NDL = 30; // minimum RTO when nodelay != 0
export const IKCP_RTO_MIN = 100; // minimum RTO when nodelay == 0
export const IKCP_RTO_DEF = 200;
export const IKCP_RTO_MAX = 60000;
export const IKCP_WND_SND = 32;
export const IKCP_WND_RCV = 32;
export const IKCP_MTU_DEF = 1400;
export const IKCP_INTERVAL = 100;
export const IKCP_DEADLINK = 20;
export const IKCP_THRESH_INIT = 2;
export const IKCP_THRESH_MIN = 2;
/** kcp-go ≤ v5.6.42 (kcptun 2021). v5.6.43+ uses 500. */
export const IKCP_PROBE_INIT = 7000;
export const IKCP_PROBE_LIMIT = 120000;
/** kcp-go's receive buffer size (`mtuLimit`): no datagram, hence no MTU, exceeds it. */
export const KCP_MTU_LIMIT = 1500;

export interface SegmentHeader {
  conv: number;
  cmd: number;
  frg: number;
  wnd: number;
  ts: number;
  sn: number;
  una: number;
  len: number;
}

export function isKnownCmd(cmd: number): boolean {
  return cmd >= IKCP_CMD_PUSH && cmd <= IKCP_CMD_WINS;
}

/** Writes one 24-byte header at `off`; returns the offset just past it. */
export function writeSegmentHeader(
  b: Uint8Array, off: number,
  conv: number, cmd: number, frg: number, wnd: number, ts: number, sn: number, una: number, len: number,
): number {
  writeU32(b, off, conv);
  b[off + 4] = cmd;
  b[off + 5] = frg;
  b[off + 6] = wnd;
  b[off + 7] = wnd >>> 8;
  writeU32(b, off + 8, ts);
  writeU32(b, off + 12, sn);
  writeU32(b, off + 16, una);
  writeU32(b, off + 20, len);
  return off + IKCP_OVERHEAD;
}

/**
 * Reads the header at `off`, or null when fewer than 24 bytes remain. It does not judge cmd or
 * len (the engine's input does, to return kcp-go's error codes).
 */
export function parseSegmentHeader(b: Uint8Array, off = 0): SegmentHeader | null {
  if (b.length - off < IKCP_OVERHEAD) return null;
  return {
    conv: readU32(b, off),
    cmd: b[off + 4]!,
    frg: b[off + 5]!,
    wnd: b[off + 6]! | (b[off + 7]! << 8),
    ts: readU32(b, off + 8),
    sn: readU32(b, off + 12),
    una: readU32(b, off + 16),
    len: readU32(b, off + 20),
  };
}

/** One segment as a fresh buffer; `len` is taken from `data`. */
export function encodeSegment(h: Omit<SegmentHeader, 'len'>, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(IKCP_OVERHEAD + data.length);
  writeSegmentHeader(out, 0, h.conv, h.cmd, h.frg, h.wnd, h.ts, h.sn, h.una, data.length);
  out.set(data, IKCP_OVERHEAD);
  return out;
}
