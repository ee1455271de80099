/** IPv4 addresses as u32 numbers (what the views return) and as the 4 bytes the rewrites take. */
export function u32ToBytes(v: number): Uint8Array {
  return Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}
