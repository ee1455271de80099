/** The kcp-go FEC header fields the session needs to tell packets apart (spec §2.2-2.3). */
export const FEC_HEADER_SIZE = 8;
export const FEC_FLAG_DATA = 0xf1;
export const FEC_FLAG_PARITY = 0xf2;

/** True when the opened datagram at buf[off, end) is an FEC data or parity shard. */
export function isFecPacket(buf: Uint8Array, off: number, end: number): boolean {
  if (end - off < 6) return false;
  const flag = buf[off + 4]! | (buf[off + 5]! << 8);
  return flag === FEC_FLAG_DATA || flag === FEC_FLAG_PARITY;
}
