/**
 * Salsa20/20 with a 64-bit nonce and a 256-bit key (Bernstein's specification;
 * x/crypto's XORKeyStream with an 8-byte nonce), block counter from 0.
 */
import { readU32Le, writeU32Le } from '../../packet/bytes.js';
import type { BlockCrypt } from './types.js';

const SIGMA0 = 0x61707865; // "expa"
const SIGMA1 = 0x3320646e; // "nd 3"
const SIGMA2 = 0x79622d32; // "2-by"
const SIGMA3 = 0x6b206574; // "te k"

export class Salsa20 {
  private readonly state = new Uint32Array(16);
  private readonly block = new Uint8Array(64);

  constructor(key: Uint8Array) {
    const s = this.state;
    s[0] = SIGMA0;
    for (let i = 0; i < 4; i++) s[1 + i] = readU32Le(key, 4 * i);
    s[5] = SIGMA1;
    s[10] = SIGMA2;
    for (let i = 0; i < 4; i++) s[11 + i] = readU32Le(key, 16 + 4 * i);
    s[15] = SIGMA3;
  }

  /** XORs buf[start, end) with the keystream for `nonce` (8 bytes at nonceBuf[nonceOff]), counter 0. */
  xorKeyStream(buf: Uint8Array, start: number, end: number, nonceBuf: Uint8Array, nonceOff: number): void {
    const s = this.state;
    s[6] = readU32Le(nonceBuf, nonceOff);
    s[7] = readU32Le(nonceBuf, nonceOff + 4);
    s[8] = 0;
    s[9] = 0;
    const block = this.block;
    for (let pos = start; pos < end; pos += 64) {
      this.core();
      const n = Math.min(64, end - pos);
      for (let i = 0; i < n; i++) buf[pos + i] ^= block[i];
      s[8] = (s[8] + 1) >>> 0;
      if (s[8] === 0) s[9] = (s[9] + 1) >>> 0;
    }
  }

  /** One 64-byte keystream block from the state into `block` (little-endian words). */
  private core(): void {
    const x = this.state;
    let x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3], x4 = x[4], x5 = x[5], x6 = x[6], x7 = x[7];
    let x8 = x[8], x9 = x[9], x10 = x[10], x11 = x[11], x12 = x[12], x13 = x[13], x14 = x[14], x15 = x[15];
    let u: number;
    for (let i = 0; i < 20; i += 2) {
      // column round
      u = (x0 + x12) | 0; x4 ^= (u << 7) | (u >>> 25);
      u = (x4 + x0) | 0; x8 ^= (u << 9) | (u >>> 23);
      u = (x8 + x4) | 0; x12 ^= (u << 13) | (u >>> 19);
      u = (x12 + x8) | 0; x0 ^= (u << 18) | (u >>> 14);
      u = (x5 + x1) | 0; x9 ^= (u << 7) | (u >>> 25);
      u = (x9 + x5) | 0; x13 ^= (u << 9) | (u >>> 23);
      u = (x13 + x9) | 0; x1 ^= (u << 13) | (u >>> 19);
      u = (x1 + x13) | 0; x5 ^= (u << 18) | (u >>> 14);
      u = (x10 + x6) | 0; x14 ^= (u << 7) | (u >>> 25);
      u = (x14 + x10) | 0; x2 ^= (u << 9) | (u >>> 23);
      u = (x2 + x14) | 0; x6 ^= (u << 13) | (u >>> 19);
      u = (x6 + x2) | 0; x10 ^= (u << 18) | (u >>> 14);
      u = (x15 + x11) | 0; x3 ^= (u << 7) | (u >>> 25);
      u = (x3 + x15) | 0; x7 ^= (u << 9) | (u >>> 23);
      u = (x7 + x3) | 0; x11 ^= (u << 13) | (u >>> 19);
      u = (x11 + x7) | 0; x15 ^= (u << 18) | (u >>> 14);
      // row round
      u = (x0 + x3) | 0; x1 ^= (u << 7) | (u >>> 25);
      u = (x1 + x0) | 0; x2 ^= (u << 9) | (u >>> 23);
      u = (x2 + x1) | 0; x3 ^= (u << 13) | (u >>> 19);
      u = (x3 + x2) | 0; x0 ^= (u << 18) | (u >>> 14);
      u = (x5 + x4) | 0; x6 ^= (u << 7) | (u >>> 25);
      u = (x6 + x5) | 0; x7 ^= (u << 9) | (u >>> 23);
      u = (x7 + x6) | 0; x4 ^= (u << 13) | (u >>> 19);
      u = (x4 + x7) | 0; x5 ^= (u << 18) | (u >>> 14);
      u = (x10 + x9) | 0; x11 ^= (u << 7) | (u >>> 25);
      u = (x11 + x10) | 0; x8 ^= (u << 9) | (u >>> 23);
      u = (x8 + x11) | 0; x9 ^= (u << 13) | (u >>> 19);
      u = (x9 + x8) | 0; x10 ^= (u << 18) | (u >>> 14);
      u = (x15 + x14) | 0; x12 ^= (u << 7) | (u >>> 25);
      u = (x12 + x15) | 0; x13 ^= (u << 9) | (u >>> 23);
      u = (x13 + x12) | 0; x14 ^= (u << 13) | (u >>> 19);
      u = (x14 + x13) | 0; x15 ^= (u << 18) | (u >>> 14);
    }
    const b = this.block;
    writeU32Le(b, 0, x0 + x[0]); writeU32Le(b, 4, x1 + x[1]); writeU32Le(b, 8, x2 + x[2]); writeU32Le(b, 12, x3 + x[3]);
    writeU32Le(b, 16, x4 + x[4]); writeU32Le(b, 20, x5 + x[5]); writeU32Le(b, 24, x6 + x[6]); writeU32Le(b, 28, x7 + x[7]);
    writeU32Le(b, 32, x8 + x[8]); writeU32Le(b, 36, x9 + x[9]); writeU32Le(b, 40, x10 + x[10]); writeU32Le(b, 44, x11 + x[11]);
    writeU32Le(b, 48, x12 + x[12]); writeU32Le(b, 52, x13 + x[13]); writeU32Le(b, 56, x14 + x[14]); writeU32Le(b, 60, x15 + x[15]);
  }
}

/** `--crypt salsa20`: the datagram's first 8 bytes travel in clear and are the nonce for the rest. */
export class Salsa20Crypt implements BlockCrypt {
  private readonly salsa: Salsa20;

  constructor(key: Uint8Array) {
    this.salsa = new Salsa20(key);
  }

  encrypt(buf: Uint8Array, len: number): void {
    if (len > 8) this.salsa.xorKeyStream(buf, 8, len, buf, 0);
  }

  decrypt(buf: Uint8Array, len: number): void {
    this.encrypt(buf, len);
  }
}
