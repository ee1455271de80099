/**
 * GF(2^8) with klauspost/reedsolomon's field: reducing polynomial
 * x^8+x^4+x^3+x^2+1 (0x11D), generator 2. A full 256×256 product table (64 KiB)
 * makes every multiply in the shard loops one lookup in a 256-byte row.
 */

import { transportAddon } from '../native.js';

const POLY = 0x11d;

const EXP = new Uint8Array(510); // doubled so EXP[log a + log b] needs no modulo
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    EXP[i + 255] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= POLY;
  }
}

export function galMul(a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : EXP[LOG[a] + LOG[b]];
}

export function galInverse(a: number): number {
  if (a === 0) throw new RangeError('0 has no inverse in GF(2^8)');
  return EXP[255 - LOG[a]];
}

/** a^n, with 0^0 = 1 (klauspost's galExp convention, which the Vandermonde rows rely on). */
export function galExp(a: number, n: number): number {
  if (n === 0) return 1;
  if (a === 0) return 0;
  return EXP[(LOG[a] * n) % 255];
}

const MUL_TABLE = new Uint8Array(256 * 256);
for (let a = 1; a < 256; a++) for (let b = 1; b < 256; b++) MUL_TABLE[(a << 8) | b] = EXP[LOG[a] + LOG[b]];

/** The 256 products c·x for x = 0..255: index it with a byte to multiply that byte by c. */
export function mulRow(c: number): Uint8Array {
  return MUL_TABLE.subarray(c << 8, (c + 1) << 8);
}

/** Below this many bytes the JavaScript loop beats a call into the addon. */
const NATIVE_MIN = 64;
const addon = transportAddon();

/**
 * dst[dOff + j] ^= c · src[sOff + j] for j < n: the one loop encode and reconstruct
 * spend their time in. Long spans go to the transport addon (32 bytes a step with AVX2).
 */
export function mulAddInto(c: number, src: Uint8Array, sOff: number, dst: Uint8Array, dOff: number, n: number): void {
  if (addon !== null && n >= NATIVE_MIN) addon.gfMulAdd(c, src, sOff, dst, dOff, n);
  else mulAddIntoJs(c, src, sOff, dst, dOff, n);
}

/**
 * The JavaScript multiply-add (the reference the addon is tested against). c = 1 (common: identity
 * rows, (k,1) parity) is a plain XOR.
 */
export function mulAddIntoJs(c: number, src: Uint8Array, sOff: number, dst: Uint8Array, dOff: number, n: number): void {
  if (c === 0) return;
  if (c === 1) {
    for (let j = 0; j < n; j++) dst[dOff + j] ^= src[sOff + j];
    return;
  }
  const row = mulRow(c);
  for (let j = 0; j < n; j++) dst[dOff + j] ^= row[src[sOff + j]];
}
