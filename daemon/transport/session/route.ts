/**
 * kcp-go Listener's look at an opened datagram before it picks a session (spec §6.3): the conv and
 * sn of the first KCP segment, found after the FEC header for data shards; parity shards have none.
 */
import { FEC_HEADER_SIZE, FLAG_DATA, FLAG_PARITY } from '../fec/header.js';

const KCP_OVERHEAD = 24;
const SN_OFFSET = 12;

function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

/** Fills out.conv/out.sn from buf[off, end) and returns true, or false when there is no conv. */
export function peekConvSn(buf: Uint8Array, off: number, end: number, out: { conv: number; sn: number }): boolean {
  if (end - off >= 6) {
    const flag = buf[off + 4]! | (buf[off + 5]! << 8);
    if (flag === FLAG_PARITY) return false;
    if (flag === FLAG_DATA) {
      if (end - off < FEC_HEADER_SIZE + KCP_OVERHEAD) return false;
      off += FEC_HEADER_SIZE;
    }
  }
  if (end - off < KCP_OVERHEAD) return false;
  out.conv = u32(buf, off);
  out.sn = u32(buf, off + SN_OFFSET);
  return true;
}
