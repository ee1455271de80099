/**
 * Table-driven CRC-32 (slicing-by-8) for the two polynomials the wire formats use:
 * IEEE (kcp-go's datagram checksum) and Castagnoli (snappy framing).
 * Slicing-by-8 matters because the IEEE sum covers every datagram in the hot path.
 * With the transport addon, spans of NATIVE_MIN bytes or more are summed there (CRC-32C with the CPU's
 * instruction); these tables stay the reference and do the short spans, where the call costs more.
 */
import { transportAddon } from '../native.js';

/** Below this many bytes the JavaScript tables beat a call into the addon. */
const NATIVE_MIN = 128;

function makeTables(reversedPoly: number): Uint32Array[] {
  const t0 = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ reversedPoly : c >>> 1;
    t0[i] = c >>> 0;
  }
  const tables = [t0];
  for (let s = 1; s < 8; s++) {
    const prev = tables[s - 1]!;
    const t = new Uint32Array(256);
    for (let i = 0; i < 256; i++) t[i] = (prev[i]! >>> 8) ^ t0[prev[i]! & 0xff]!;
    tables.push(t);
  }
  return tables;
}

function makeCrc(reversedPoly: number): (data: Uint8Array, start?: number, end?: number) => number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = makeTables(reversedPoly) as [
    Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array,
  ];
  return (data, start = 0, end = data.length) => {
    let crc = 0xffffffff;
    let i = start;
    for (; i + 8 <= end; i += 8) {
      const a = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) ^ crc;
      crc =
        t7[a & 0xff]! ^ t6[(a >>> 8) & 0xff]! ^ t5[(a >>> 16) & 0xff]! ^ t4[a >>> 24]! ^
        t3[data[i + 4]!]! ^ t2[data[i + 5]!]! ^ t1[data[i + 6]!]! ^ t0[data[i + 7]!]!;
    }
    for (; i < end; i++) crc = t0[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
    return (crc ^ 0xffffffff) >>> 0;
  };
}

/** The JavaScript sums (the reference the addon is tested against). */
export const crc32IeeeJs = makeCrc(0xedb88320);
export const crc32cJs = makeCrc(0x82f63b78);

function withAddon(js: (data: Uint8Array, start?: number, end?: number) => number, castagnoli: boolean):
  (data: Uint8Array, start?: number, end?: number) => number {
  const addon = transportAddon();
  if (addon === null) return js;
  return (data, start = 0, end = data.length) => (end - start >= NATIVE_MIN ? addon.crc32(data, start, end, castagnoli) : js(data, start, end));
}

/** CRC-32/IEEE (zlib, Go's crc32.ChecksumIEEE) over data[start, end). */
export const crc32Ieee = withAddon(crc32IeeeJs, false);
/** CRC-32C (Castagnoli) over data[start, end). */
export const crc32c = withAddon(crc32cJs, true);
