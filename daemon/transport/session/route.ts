/**
 * kcp-go Listener's look at an opened datagram before it picks a session (docs/kcptun-wire.md §7): the conv and
 * sn of the first KCP segment, found after the FEC header for data shards; parity shards have none.
 */
import { readU32Le } from '../../packet/bytes.js';
import { FEC_HEADER_SIZE, FLAG_DATA, FLAG_PARITY, readU16 } from '../fec/header.js';
import { IKCP_OVERHEAD, IKCP_SN_OFFSET } from '../kcp/segment.js';

/** Where the first whole KCP segment header of buf[off, end) starts, or -1 (parity shard, too short). */
export function firstSegment(buf: Uint8Array, off: number, end: number): number {
  if (end - off >= 6) {
    const flag = readU16(buf, off + 4);
    if (flag === FLAG_PARITY) return -1;
    if (flag === FLAG_DATA) {
      if (end - off < FEC_HEADER_SIZE + IKCP_OVERHEAD) return -1;
      off += FEC_HEADER_SIZE;
    }
  }
  return end - off < IKCP_OVERHEAD ? -1 : off;
}

/** Fills out.conv/out.sn from buf[off, end) and returns true, or false when there is no conv. */
export function peekConvSn(buf: Uint8Array, off: number, end: number, out: { conv: number; sn: number }): boolean {
  const seg = firstSegment(buf, off, end);
  if (seg < 0) return false;
  out.conv = readU32Le(buf, seg);
  out.sn = readU32Le(buf, seg + IKCP_SN_OFFSET);
  return true;
}
