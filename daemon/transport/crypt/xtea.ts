/** XTEA, 64 rounds (32 cycles), big-endian words as in x/crypto/xtea. */
import { readU32, writeU32 } from '../../packet/bytes.js';
import type { BlockEncryptor } from './cfb.js';

const DELTA = 0x9e3779b9;
const CYCLES = 32;

export class Xtea implements BlockEncryptor {
  readonly blockSize = 8;
  /** The key word plus running sum each half-round adds, precomputed once per key. */
  private readonly table = new Int32Array(2 * CYCLES);

  constructor(key: Uint8Array) {
    if (key.length !== 16) throw new RangeError('XTEA key must be 16 bytes');
    const k = [readU32(key, 0), readU32(key, 4), readU32(key, 8), readU32(key, 12)];
    let sum = 0;
    for (let i = 0; i < CYCLES; i++) {
      this.table[2 * i] = (sum + k[sum & 3]) | 0;
      sum = (sum + DELTA) >>> 0;
      this.table[2 * i + 1] = (sum + k[(sum >>> 11) & 3]) | 0;
    }
  }

  encryptBlock(b: Uint8Array, off: number): void {
    const t = this.table;
    let v0 = readU32(b, off) | 0;
    let v1 = readU32(b, off + 4) | 0;
    for (let i = 0; i < 2 * CYCLES; i += 2) {
      v0 = (v0 + (((((v1 << 4) ^ (v1 >>> 5)) + v1) | 0) ^ t[i])) | 0;
      v1 = (v1 + (((((v0 << 4) ^ (v0 >>> 5)) + v0) | 0) ^ t[i + 1])) | 0;
    }
    writeU32(b, off, v0);
    writeU32(b, off + 4, v1);
  }
}
