/**
 * kcp-go's FEC header, right after the crypto header:
 *   [0,4) seqid u32 LE | [4,6) flag u16 LE | [6,8) size u16 LE (data shards only) | KCP bytes
 * A parity shard's payload starts at 6. In bare KCP, bytes 4..5 are cmd (81..84) and frg,
 * so the flag values below never occur there.
 */
/** This format's fields are little-endian. */
export { readU16Le as readU16, writeU16Le as writeU16 } from '../../packet/bytes.js';
export const FEC_HEADER_SIZE = 8;
/** Where a shard starts within the FEC header: the size field is coded along with the KCP bytes. */
export const FEC_SHARD_OFFSET = 6;
export const FLAG_DATA = 0xf1;
export const FLAG_PARITY = 0xf2;
/** [cur] kcp-go's out-of-band datagrams; kcptun never sends them. */
export const FLAG_OOB = 0xf3;

/** Where the seqid counter wraps: a multiple of the group size, so groups stay aligned. */
export function paws(shardsPerGroup: number): number {
  return Math.floor(0xffffffff / shardsPerGroup) * shardsPerGroup;
}

