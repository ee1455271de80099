/**
 * Blowfish (Schneier 1993), big-endian words, any key of 1..56 bytes (kcptun
 * passes all 32 derived bytes).
 */
import { readU32, writeU32 } from '../../packet/bytes.js';
import type { BlockEncryptor } from './cfb.js';

const P_WORDS = 18;
const INIT_WORDS = P_WORDS + 4 * 256;
let initialState: Uint32Array | undefined;

/**
 * Blowfish's initial P-array and S-boxes are the hexadecimal digits of π's
 * fractional part, 1042 words of them. Computing them (Machin's formula in BigInt,
 * tens of milliseconds, once) replaces a 4 KiB literal table.
 */
function piFractionWords(): Uint32Array {
  const guard = 64n;
  const bits = BigInt(INIT_WORDS * 32) + guard;
  const one = 1n << bits;
  const arctanInv = (x: bigint): bigint => {
    let sum = 0n;
    let term = one / x;
    const x2 = x * x;
    for (let n = 1n, positive = true; term !== 0n; n += 2n, positive = !positive, term /= x2) {
      sum += positive ? term / n : -(term / n);
    }
    return sum;
  };
  const pi = 4n * (4n * arctanInv(5n) - arctanInv(239n));
  let frac = (pi - (3n << bits)) >> guard;
  const words = new Uint32Array(INIT_WORDS);
  for (let i = INIT_WORDS - 1; i >= 0; i--, frac >>= 32n) words[i] = Number(frac & 0xffffffffn);
  return words;
}

export class Blowfish implements BlockEncryptor {
  readonly blockSize = 8;
  private readonly p: Uint32Array;
  private readonly s0: Uint32Array;
  private readonly s1: Uint32Array;
  private readonly s2: Uint32Array;
  private readonly s3: Uint32Array;

  constructor(key: Uint8Array) {
    if (key.length < 1 || key.length > 56) throw new RangeError('Blowfish key must be 1..56 bytes');
    initialState ??= piFractionWords();
    const state = initialState.slice();
    this.p = state.subarray(0, P_WORDS);
    this.s0 = state.subarray(P_WORDS, P_WORDS + 256);
    this.s1 = state.subarray(P_WORDS + 256, P_WORDS + 512);
    this.s2 = state.subarray(P_WORDS + 512, P_WORDS + 768);
    this.s3 = state.subarray(P_WORDS + 768, P_WORDS + 1024);
    for (let i = 0, j = 0; i < P_WORDS; i++) {
      let w = 0;
      for (let b = 0; b < 4; b++, j = (j + 1) % key.length) w = (w << 8) | key[j];
      this.p[i] ^= w;
    }
    // Replace P and the S-boxes, in order, with successive encryptions of an all-zero block.
    const block = new Uint8Array(8);
    for (let i = 0; i < INIT_WORDS; i += 2) {
      this.encryptBlock(block, 0);
      state[i] = readU32(block, 0);
      state[i + 1] = readU32(block, 4);
    }
  }

  encryptBlock(b: Uint8Array, off: number): void {
    const { p, s0, s1, s2, s3 } = this;
    let l = readU32(b, off);
    let r = readU32(b, off + 4);
    for (let i = 0; i < 16; i += 2) {
      l ^= p[i];
      r ^= ((s0[l >>> 24] + s1[(l >>> 16) & 0xff]) ^ s2[(l >>> 8) & 0xff]) + s3[l & 0xff];
      r ^= p[i + 1];
      l ^= ((s0[r >>> 24] + s1[(r >>> 16) & 0xff]) ^ s2[(r >>> 8) & 0xff]) + s3[r & 0xff];
    }
    writeU32(b, off, r ^ p[17]);
    writeU32(b, off + 4, l ^ p[16]);
  }
}
