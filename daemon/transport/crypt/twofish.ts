/**
 * Twofish (Schneier et al. 1998) for 128-, 192- and 256-bit keys (kcptun uses
 * 256), little-endian words. The q permutations are built from the 4-bit tables
 * of the specification (§4.3.5); the key-dependent S-boxes are folded together
 * with the MDS matrix into four 256-entry tables per key, so g() is four lookups.
 */
import { readU32Le, writeU32Le } from '../../packet/bytes.js';
import type { BlockEncryptor } from './cfb.js';

const Q0_T = [
  [0x8, 0x1, 0x7, 0xd, 0x6, 0xf, 0x3, 0x2, 0x0, 0xb, 0x5, 0x9, 0xe, 0xc, 0xa, 0x4],
  [0xe, 0xc, 0xb, 0x8, 0x1, 0x2, 0x3, 0x5, 0xf, 0x4, 0xa, 0x6, 0x7, 0x0, 0x9, 0xd],
  [0xb, 0xa, 0x5, 0xe, 0x6, 0xd, 0x9, 0x0, 0xc, 0x8, 0xf, 0x3, 0x2, 0x4, 0x7, 0x1],
  [0xd, 0x7, 0xf, 0x4, 0x1, 0x2, 0x6, 0xe, 0x9, 0xb, 0x3, 0x0, 0x8, 0x5, 0xc, 0xa],
];
const Q1_T = [
  [0x2, 0x8, 0xb, 0xd, 0xf, 0x7, 0x6, 0xe, 0x3, 0x1, 0x9, 0x4, 0x0, 0xa, 0xc, 0x5],
  [0x1, 0xe, 0x2, 0xb, 0x4, 0xc, 0x3, 0x7, 0x6, 0xd, 0xa, 0x5, 0xf, 0x9, 0x0, 0x8],
  [0x4, 0xc, 0x7, 0x5, 0x1, 0x6, 0x9, 0xa, 0x0, 0xe, 0xd, 0x8, 0x2, 0xb, 0x3, 0xf],
  [0xb, 0x9, 0x5, 0x1, 0xc, 0x3, 0xd, 0xe, 0x6, 0x4, 0x7, 0xf, 0x2, 0x0, 0x8, 0xa],
];

function buildQ(t: number[][]): Uint8Array {
  const ror4 = (x: number): number => ((x >>> 1) | (x << 3)) & 0xf;
  const q = new Uint8Array(256);
  for (let x = 0; x < 256; x++) {
    let a = x >>> 4;
    let b = x & 0xf;
    for (let round = 0; round < 2; round++) {
      const a1 = a ^ b;
      const b1 = (a ^ ror4(b) ^ (8 * a)) & 0xf;
      a = t[2 * round][a1];
      b = t[2 * round + 1][b1];
    }
    q[x] = (b << 4) | a;
  }
  return q;
}

const Q0 = buildQ(Q0_T);
const Q1 = buildQ(Q1_T);

/** Multiplication in GF(2^8) modulo `poly` (0x169 for MDS, 0x14d for RS). */
function gfMul(a: number, b: number, poly: number): number {
  let r = 0;
  for (; b !== 0; b >>>= 1) {
    if (b & 1) r ^= a;
    a <<= 1;
    if (a & 0x100) a ^= poly;
  }
  return r;
}

const MDS = [
  [0x01, 0xef, 0x5b, 0x5b],
  [0x5b, 0xef, 0xef, 0x01],
  [0xef, 0x5b, 0x01, 0xef],
  [0xef, 0x01, 0xef, 0x5b],
];
const RS = [
  [0x01, 0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e],
  [0xa4, 0x56, 0x82, 0xf3, 0x1e, 0xc6, 0x68, 0xe5],
  [0x02, 0xa1, 0xfc, 0xc1, 0x47, 0xae, 0x3d, 0x19],
  [0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e, 0x03],
];

/** MDS column `col` times byte y, as a little-endian word. */
function mdsColumn(col: number, y: number): number {
  let w = 0;
  for (let row = 0; row < 4; row++) w |= gfMul(MDS[row][col], y, 0x169) << (8 * row);
  return w >>> 0;
}

/**
 * The q chain byte `pos` of h() goes through: the first k-2 entries apply only for
 * longer keys (outermost key word first), then q, key word 1, q, key word 0, q.
 */
const CHAINS = [
  [Q1, Q1, Q0, Q0, Q1],
  [Q0, Q1, Q1, Q0, Q0],
  [Q0, Q0, Q0, Q1, Q1],
  [Q1, Q0, Q1, Q1, Q0],
];

/** h's byte `pos` before the MDS: x through the q chain, XORing key bytes l[k-1]..l[0] between. */
function hByte(pos: number, x: number, l: readonly number[]): number {
  const chain = CHAINS[pos];
  const k = l.length;
  let y = x;
  for (let i = k - 1, stage = 4 - k; i >= 0; i--, stage++) y = chain[stage][y] ^ ((l[i] >>> (8 * pos)) & 0xff);
  return chain[4][y];
}

function h(x: number, l: readonly number[]): number {
  let w = 0;
  for (let pos = 0; pos < 4; pos++) w ^= mdsColumn(pos, hByte(pos, (x >>> (8 * pos)) & 0xff, l));
  return w >>> 0;
}

function rol(x: number, n: number): number {
  return ((x << n) | (x >>> (32 - n))) >>> 0;
}

export class Twofish implements BlockEncryptor {
  readonly blockSize = 16;
  private readonly subkeys = new Uint32Array(40);
  /** g(X) = s[0][X0] ^ s[1][X1] ^ s[2][X2] ^ s[3][X3]. */
  private readonly s0 = new Uint32Array(256);
  private readonly s1 = new Uint32Array(256);
  private readonly s2 = new Uint32Array(256);
  private readonly s3 = new Uint32Array(256);

  constructor(key: Uint8Array) {
    if (key.length !== 16 && key.length !== 24 && key.length !== 32) throw new RangeError('Twofish key must be 16, 24 or 32 bytes');
    const k = key.length / 8;
    const even: number[] = [];
    const odd: number[] = [];
    const sWords: number[] = [];
    for (let i = 0; i < k; i++) {
      even.push(readU32Le(key, 8 * i));
      odd.push(readU32Le(key, 8 * i + 4));
      let s = 0;
      for (let row = 0; row < 4; row++) {
        let v = 0;
        for (let c = 0; c < 8; c++) v ^= gfMul(RS[row][c], key[8 * i + c], 0x14d);
        s |= v << (8 * row);
      }
      sWords.unshift(s >>> 0); // g uses (S[k-1], ..., S[0])
    }
    for (let i = 0; i < 20; i++) {
      const a = h(Math.imul(2 * i, 0x01010101) >>> 0, even);
      const b = rol(h(Math.imul(2 * i + 1, 0x01010101) >>> 0, odd), 8);
      this.subkeys[2 * i] = a + b;
      this.subkeys[2 * i + 1] = rol((a + 2 * b) >>> 0, 9);
    }
    const tables = [this.s0, this.s1, this.s2, this.s3];
    for (let pos = 0; pos < 4; pos++) {
      for (let x = 0; x < 256; x++) tables[pos][x] = mdsColumn(pos, hByte(pos, x, sWords));
    }
  }

  encryptBlock(b: Uint8Array, off: number): void {
    const { subkeys: k, s0, s1, s2, s3 } = this;
    let r0 = readU32Le(b, off) ^ k[0];
    let r1 = readU32Le(b, off + 4) ^ k[1];
    let r2 = readU32Le(b, off + 8) ^ k[2];
    let r3 = readU32Le(b, off + 12) ^ k[3];
    for (let round = 0; round < 16; round += 2) {
      let t0 = s0[r0 & 0xff] ^ s1[(r0 >>> 8) & 0xff] ^ s2[(r0 >>> 16) & 0xff] ^ s3[r0 >>> 24];
      let t1 = s0[r1 >>> 24] ^ s1[r1 & 0xff] ^ s2[(r1 >>> 8) & 0xff] ^ s3[(r1 >>> 16) & 0xff];
      r2 ^= (t0 + t1 + k[2 * round + 8]) | 0;
      r2 = (r2 >>> 1) | (r2 << 31);
      r3 = ((r3 << 1) | (r3 >>> 31)) ^ ((t0 + 2 * t1 + k[2 * round + 9]) | 0);
      t0 = s0[r2 & 0xff] ^ s1[(r2 >>> 8) & 0xff] ^ s2[(r2 >>> 16) & 0xff] ^ s3[r2 >>> 24];
      t1 = s0[r3 >>> 24] ^ s1[r3 & 0xff] ^ s2[(r3 >>> 8) & 0xff] ^ s3[(r3 >>> 16) & 0xff];
      r0 ^= (t0 + t1 + k[2 * round + 10]) | 0;
      r0 = (r0 >>> 1) | (r0 << 31);
      r1 = ((r1 << 1) | (r1 >>> 31)) ^ ((t0 + 2 * t1 + k[2 * round + 11]) | 0);
    }
    writeU32Le(b, off, r2 ^ k[4]);
    writeU32Le(b, off + 4, r3 ^ k[5]);
    writeU32Le(b, off + 8, r0 ^ k[6]);
    writeU32Le(b, off + 12, r1 ^ k[7]);
  }
}
