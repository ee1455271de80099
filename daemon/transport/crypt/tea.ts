/**
 * TEA (Wheeler & Needham), big-endian words as in x/crypto/tea. kcptun asks for
 * 16 rounds, i.e. 8 cycles, not the usual 64 rounds: `rounds` is kept a parameter.
 */
import { readU32, writeU32 } from '../../packet/bytes.js';
import type { BlockEncryptor } from './cfb.js';

const DELTA = 0x9e3779b9;

export class Tea implements BlockEncryptor {
  readonly blockSize = 8;
  private readonly k0: number;
  private readonly k1: number;
  private readonly k2: number;
  private readonly k3: number;
  private readonly cycles: number;

  /** `rounds` must be even (a cycle is two rounds); kcptun uses 16. */
  constructor(key: Uint8Array, rounds: number) {
    if (key.length !== 16) throw new RangeError('TEA key must be 16 bytes');
    if (rounds <= 0 || rounds % 2 !== 0) throw new RangeError('TEA rounds must be even and positive');
    this.k0 = readU32(key, 0);
    this.k1 = readU32(key, 4);
    this.k2 = readU32(key, 8);
    this.k3 = readU32(key, 12);
    this.cycles = rounds / 2;
  }

  encryptBlock(b: Uint8Array, off: number): void {
    const { k0, k1, k2, k3 } = this;
    let v0 = readU32(b, off);
    let v1 = readU32(b, off + 4);
    let sum = 0;
    for (let i = 0; i < this.cycles; i++) {
      sum = (sum + DELTA) | 0;
      v0 = (v0 + ((((v1 << 4) + k0) | 0) ^ ((v1 + sum) | 0) ^ (((v1 >>> 5) + k1) | 0))) | 0;
      v1 = (v1 + ((((v0 << 4) + k2) | 0) ^ ((v0 + sum) | 0) ^ (((v0 >>> 5) + k3) | 0))) | 0;
    }
    writeU32(b, off, v0);
    writeU32(b, off + 4, v1);
  }
}
