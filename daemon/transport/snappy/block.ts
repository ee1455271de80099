/**
 * Snappy block format (the raw, unframed format), compressor and decompressor.
 *
 * A block is a uvarint of the decoded length followed by elements whose tag's low two bits say:
 *   00 literal (length-1 in the upper 6 bits, or 60..63 meaning 1..4 extra length bytes follow),
 *   01 copy, length 4..11, 11-bit offset; 10 copy, length 1..64, u16 offset; 11 copy, length 1..64, u32 offset.
 *
 * The compressor handles inputs up to MAX_BLOCK_SIZE (the framing format never gives it more), which lets
 * positions live in a Uint16Array hash table. The decompressor checks every bound: bad input yields an
 * error value, never an exception and never an allocation larger than the caller's limit.
 */
import { TstierError } from '../../errors.js';

/** Largest input the compressor takes, and the framing format's decoded-chunk limit. */
export const MAX_BLOCK_SIZE = 65536;

/** Worst-case compressed size of n input bytes (golang/snappy's MaxEncodedLen). */
export function maxEncodedLength(n: number): number {
  return 32 + n + Math.floor(n / 6);
}

const TAG_LITERAL = 0;
const TAG_COPY1 = 1;
const TAG_COPY2 = 2;

const MAX_TABLE_BITS = 14;
/** Below this many bytes the match finder is not worth starting (1 + 1 + input margin). */
const MIN_NON_LITERAL_BLOCK = 17;
/** The match loop stops this many bytes short of the end, so 8-byte loads stay in bounds. */
const INPUT_MARGIN = 15;
const HASH_MUL = 0x1e35a7bd;

function load32(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
}

function badBlock(problem: string): TstierError {
  return new TstierError('TSTIER_E_BAD_PACKET', `snappy: corrupt block (${problem})`);
}

/**
 * Reusable compressor. One instance owns its hash table and output scratch, so compressing does not
 * allocate; the returned view is valid until the next call.
 */
export class SnappyCompressor {
  private readonly table = new Uint16Array(1 << MAX_TABLE_BITS);
  private readonly out = new Uint8Array(maxEncodedLength(MAX_BLOCK_SIZE));

  /** Compresses src[start, end) (at most MAX_BLOCK_SIZE bytes). The result is a view into scratch. */
  compress(src: Uint8Array, start = 0, end = src.length): Uint8Array {
    const n = end - start;
    if (n > MAX_BLOCK_SIZE) throw new RangeError(`snappy: block of ${n} bytes exceeds ${MAX_BLOCK_SIZE}`);
    const dst = this.out;
    let d = writeUvarint(dst, 0, n);
    if (n < MIN_NON_LITERAL_BLOCK) {
      if (n > 0) d = emitLiteral(dst, d, src, start, end);
      return dst.subarray(0, d);
    }
    d = this.encodeBody(src, start, end, d);
    return dst.subarray(0, d);
  }

  /** The LZ77 match finder: hash 4-byte windows, skip faster through incompressible stretches. */
  private encodeBody(src: Uint8Array, base: number, end: number, d: number): number {
    const dst = this.out;
    const table = this.table;
    const n = end - base;
    let shift = 32 - 8;
    let tableSize = 1 << 8;
    while (tableSize < 1 << MAX_TABLE_BITS && tableSize < n) {
      tableSize <<= 1;
      shift--;
    }
    const mask = tableSize - 1;
    table.fill(0, 0, tableSize);

    // Positions below are relative to `base`, so they fit the u16 table.
    const sLimit = n - INPUT_MARGIN;
    let nextEmit = 0;
    let s = 1;
    let nextHash = Math.imul(load32(src, base + s), HASH_MUL) >>> shift;
    outer: for (;;) {
      let skip = 32;
      let nextS = s;
      let candidate: number;
      for (;;) {
        s = nextS;
        const step = skip >> 5;
        nextS = s + step;
        skip += step;
        if (nextS > sLimit) break outer;
        const slot = nextHash & mask;
        candidate = table[slot]!;
        table[slot] = s;
        nextHash = Math.imul(load32(src, base + nextS), HASH_MUL) >>> shift;
        if (load32(src, base + s) === load32(src, base + candidate)) break;
      }
      d = emitLiteral(dst, d, src, base + nextEmit, base + s);
      for (;;) {
        // A 4-byte match at s; extend it as far as it goes.
        const matchStart = s;
        s += 4;
        let i = candidate + 4;
        while (s < n && src[base + i] === src[base + s]) {
          i++;
          s++;
        }
        d = emitCopy(dst, d, matchStart - candidate, s - matchStart);
        nextEmit = s;
        if (s >= sLimit) break outer;
        // Hash s-1 and s so the next match can start right here without a skip.
        table[Math.imul(load32(src, base + s - 1), HASH_MUL) >>> shift & mask] = s - 1;
        const cur = load32(src, base + s);
        const slot = (Math.imul(cur, HASH_MUL) >>> shift) & mask;
        candidate = table[slot]!;
        table[slot] = s;
        if (cur !== load32(src, base + candidate)) {
          s++;
          nextHash = Math.imul(load32(src, base + s), HASH_MUL) >>> shift;
          break;
        }
      }
    }
    if (nextEmit < n) d = emitLiteral(dst, d, src, base + nextEmit, end);
    return d;
  }
}

function writeUvarint(dst: Uint8Array, d: number, v: number): number {
  while (v >= 0x80) {
    dst[d++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  dst[d++] = v;
  return d;
}

function emitLiteral(dst: Uint8Array, d: number, src: Uint8Array, from: number, to: number): number {
  const n = to - from - 1;
  if (n < 60) {
    dst[d++] = (n << 2) | TAG_LITERAL;
  } else if (n < 0x100) {
    dst[d++] = (60 << 2) | TAG_LITERAL;
    dst[d++] = n;
  } else {
    // Blocks are at most 64 KiB, so two length bytes always suffice.
    dst[d++] = (61 << 2) | TAG_LITERAL;
    dst[d++] = n & 0xff;
    dst[d++] = n >>> 8;
  }
  if (n < 16) {
    for (let i = from; i < to; i++) dst[d++] = src[i]!;
    return d;
  }
  dst.set(src.subarray(from, to), d);
  return d + n + 1;
}

/** Offsets never exceed 64 KiB here, so the 4-byte-offset form is never needed. */
function emitCopy(dst: Uint8Array, d: number, offset: number, length: number): number {
  while (length >= 68) {
    dst[d++] = (63 << 2) | TAG_COPY2;
    dst[d++] = offset & 0xff;
    dst[d++] = offset >>> 8;
    length -= 64;
  }
  if (length > 64) {
    // Leave at least 4 bytes so the tail can still use the compact 1-byte-offset form.
    dst[d++] = (59 << 2) | TAG_COPY2;
    dst[d++] = offset & 0xff;
    dst[d++] = offset >>> 8;
    length -= 60;
  }
  if (length >= 12 || offset >= 2048) {
    dst[d++] = ((length - 1) << 2) | TAG_COPY2;
    dst[d++] = offset & 0xff;
    dst[d++] = offset >>> 8;
    return d;
  }
  dst[d++] = ((offset >>> 8) << 5) | ((length - 4) << 2) | TAG_COPY1;
  dst[d++] = offset & 0xff;
  return d;
}

/**
 * Reads the decoded length from a block's uvarint preamble. Returns an error for a varint longer than
 * 5 bytes, one that runs off the end, or a length above maxLength.
 */
export function decodedLength(
  src: Uint8Array, start: number, end: number, maxLength: number,
): { length: number; headerLength: number } | TstierError {
  let v = 0;
  for (let i = 0; i < 5; i++) {
    if (start + i >= end) return badBlock('truncated length');
    const b = src[start + i]!;
    v += (b & 0x7f) * 2 ** (7 * i);
    if (b < 0x80) {
      if (v > maxLength) return badBlock(`decoded length ${v} exceeds ${maxLength}`);
      return { length: v, headerLength: i + 1 };
    }
  }
  return badBlock('length varint too long');
}

/**
 * Decompresses the block in src[start, end). The decoded length may not exceed maxLength.
 * Returns a fresh buffer of exactly the decoded length, or an error for any malformed input.
 */
export function decompress(
  src: Uint8Array, start = 0, end = src.length, maxLength = MAX_BLOCK_SIZE,
): Uint8Array | TstierError {
  const hdr = decodedLength(src, start, end, maxLength);
  if (hdr instanceof TstierError) return hdr;
  const dst = new Uint8Array(hdr.length);
  const err = decodeBody(dst, src, start + hdr.headerLength, end);
  return err ?? dst;
}

function decodeBody(dst: Uint8Array, src: Uint8Array, s: number, end: number): TstierError | null {
  const dLen = dst.length;
  let d = 0;
  while (s < end) {
    const tag = src[s]!;
    let length: number;
    let offset: number;
    switch (tag & 3) {
      case TAG_LITERAL: {
        let x = tag >>> 2;
        if (x < 60) {
          s += 1;
        } else {
          const extra = x - 59; // 1..4 length bytes
          if (s + 1 + extra > end) return badBlock('truncated literal length');
          x = 0;
          for (let i = extra; i >= 1; i--) x = x * 256 + src[s + i]!;
          s += 1 + extra;
        }
        length = x + 1;
        if (length > dLen - d) return badBlock('literal overruns the decoded length');
        if (length > end - s) return badBlock('literal overruns the input');
        if (length < 16) {
          for (let i = 0; i < length; i++) dst[d + i] = src[s + i]!;
        } else {
          dst.set(src.subarray(s, s + length), d);
        }
        d += length;
        s += length;
        continue;
      }
      case TAG_COPY1:
        if (s + 2 > end) return badBlock('truncated copy');
        length = 4 + ((tag >>> 2) & 7);
        offset = ((tag >>> 5) << 8) | src[s + 1]!;
        s += 2;
        break;
      case TAG_COPY2:
        if (s + 3 > end) return badBlock('truncated copy');
        length = 1 + (tag >>> 2);
        offset = src[s + 1]! | (src[s + 2]! << 8);
        s += 3;
        break;
      default: // copy with a 4-byte offset
        if (s + 5 > end) return badBlock('truncated copy');
        length = 1 + (tag >>> 2);
        offset = (src[s + 1]! | (src[s + 2]! << 8) | (src[s + 3]! << 16) | (src[s + 4]! << 24)) >>> 0;
        s += 5;
    }
    if (offset === 0 || offset > d) return badBlock('copy offset out of range');
    if (length > dLen - d) return badBlock('copy overruns the decoded length');
    if (offset >= length && length > 16) {
      dst.copyWithin(d, d - offset, d - offset + length);
      d += length;
    } else {
      // Overlapping copies repeat the pattern, so they must go byte by byte.
      for (const stop = d + length; d < stop; d++) dst[d] = dst[d - offset]!;
    }
  }
  if (d !== dLen) return badBlock('decoded length mismatch');
  return null;
}
