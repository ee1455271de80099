/** CAST-128 (RFC 2144) with a 128-bit key, 16 rounds, big-endian words (x/crypto/cast5). */
import { readU32, writeU32 } from '../../packet/bytes.js';
import type { BlockEncryptor } from './cfb.js';
import { castSBoxes } from './cast5-sboxes.js';

let sboxes: Uint32Array[] | undefined;

function rol(x: number, n: number): number {
  return ((x << n) | (x >>> (32 - n))) >>> 0;
}

/**
 * One half-step of the key schedule (RFC 2144 §2.4): `dst` word `dw` becomes `src` word `sw`
 * XORed with S5..S8 of the four `dst`/`src` bytes named by `idx`, and one more box (`extraBox`)
 * of byte `extra`. Byte indices < 16 name `src` bytes, ≥ 16 name `dst` bytes (minus 16).
 */
type Step = readonly [dw: number, sw: number, a: number, b: number, c: number, d: number, extraBox: number, extra: number];

// x -> z, then z -> x; indices ≥ 16 refer to the array being written (RFC 2144's own order).
const TO_Z: readonly Step[] = [
  [0, 0, 0xd, 0xf, 0xc, 0xe, 2, 0x8],
  [1, 2, 16, 18, 17, 19, 3, 0xa],
  [2, 3, 23, 22, 21, 20, 0, 0x9],
  [3, 1, 26, 25, 27, 24, 1, 0xb],
];
const TO_X: readonly Step[] = [
  [0, 2, 0x5, 0x7, 0x4, 0x6, 2, 0x0],
  [1, 0, 16, 18, 17, 19, 3, 0x2],
  [2, 1, 23, 22, 21, 20, 0, 0x1],
  [3, 3, 26, 25, 27, 24, 1, 0x3],
];
/** Four subkeys from the array just written: S5[a]^S6[b]^S7[c]^S8[d]^S(5+i)[e]. */
type KeyPick = readonly [a: number, b: number, c: number, d: number, e: number];
const K_FROM_Z1: readonly KeyPick[] = [[0x8, 0x9, 0x7, 0x6, 0x2], [0xa, 0xb, 0x5, 0x4, 0x6], [0xc, 0xd, 0x3, 0x2, 0x9], [0xe, 0xf, 0x1, 0x0, 0xc]];
const K_FROM_X1: readonly KeyPick[] = [[0x3, 0x2, 0xc, 0xd, 0x8], [0x1, 0x0, 0xe, 0xf, 0xd], [0x7, 0x6, 0x8, 0x9, 0x3], [0x5, 0x4, 0xa, 0xb, 0x7]];
const K_FROM_Z2: readonly KeyPick[] = [[0x3, 0x2, 0xc, 0xd, 0x9], [0x1, 0x0, 0xe, 0xf, 0xc], [0x7, 0x6, 0x8, 0x9, 0x2], [0x5, 0x4, 0xa, 0xb, 0x6]];
const K_FROM_X2: readonly KeyPick[] = [[0x8, 0x9, 0x7, 0x6, 0x3], [0xa, 0xb, 0x5, 0x4, 0x7], [0xc, 0xd, 0x3, 0x2, 0x8], [0xe, 0xf, 0x1, 0x0, 0xd]];

function keySchedule(key: Uint8Array, s: Uint32Array[]): Uint32Array {
  const x = key.slice();
  const z = new Uint8Array(16);
  const k = new Uint32Array(32);
  let n = 0;
  const step = (dst: Uint8Array, src: Uint8Array, steps: readonly Step[]): void => {
    for (const [dw, sw, a, b, c, d, extraBox, extra] of steps) {
      const at = (i: number): number => (i >= 16 ? dst[i - 16] : src[i]);
      const v = readU32(src, 4 * sw) ^ s[4][at(a)] ^ s[5][at(b)] ^ s[6][at(c)] ^ s[7][at(d)] ^ s[4 + extraBox][src[extra]];
      writeU32(dst, 4 * dw, v);
    }
  };
  const pick = (from: Uint8Array, picks: readonly KeyPick[]): void => {
    picks.forEach(([a, b, c, d, e], i) => {
      k[n++] = s[4][from[a]] ^ s[5][from[b]] ^ s[6][from[c]] ^ s[7][from[d]] ^ s[4 + i][from[e]];
    });
  };
  for (let half = 0; half < 2; half++) {
    step(z, x, TO_Z);
    pick(z, K_FROM_Z1);
    step(x, z, TO_X);
    pick(x, K_FROM_X1);
    step(z, x, TO_Z);
    pick(z, K_FROM_Z2);
    step(x, z, TO_X);
    pick(x, K_FROM_X2);
  }
  return k;
}

export class Cast5 implements BlockEncryptor {
  readonly blockSize = 8;
  private readonly km: Uint32Array;
  private readonly kr: Uint8Array;
  private readonly s1: Uint32Array;
  private readonly s2: Uint32Array;
  private readonly s3: Uint32Array;
  private readonly s4: Uint32Array;

  constructor(key: Uint8Array) {
    if (key.length !== 16) throw new RangeError('CAST5 key must be 16 bytes here (kcptun uses 128 bits)');
    sboxes ??= castSBoxes();
    const k = keySchedule(key, sboxes);
    this.km = k.slice(0, 16);
    this.kr = Uint8Array.from(k.subarray(16), (v) => v & 31);
    [this.s1, this.s2, this.s3, this.s4] = sboxes as [Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  }

  encryptBlock(b: Uint8Array, off: number): void {
    const { km, kr, s1, s2, s3, s4 } = this;
    let l = readU32(b, off);
    let r = readU32(b, off + 4);
    for (let i = 0; i < 16; i++) {
      let f: number;
      let t: number;
      switch (i % 3) {
        case 0:
          t = rol((km[i] + r) >>> 0, kr[i]);
          f = ((s1[t >>> 24] ^ s2[(t >>> 16) & 0xff]) - s3[(t >>> 8) & 0xff] + s4[t & 0xff]) >>> 0;
          break;
        case 1:
          t = rol((km[i] ^ r) >>> 0, kr[i]);
          f = ((s1[t >>> 24] - s2[(t >>> 16) & 0xff] + s3[(t >>> 8) & 0xff]) ^ s4[t & 0xff]) >>> 0;
          break;
        default:
          t = rol((km[i] - r) >>> 0, kr[i]);
          f = (((s1[t >>> 24] + s2[(t >>> 16) & 0xff]) ^ s3[(t >>> 8) & 0xff]) - s4[t & 0xff]) >>> 0;
      }
      const nl = r;
      r = (l ^ f) >>> 0;
      l = nl;
    }
    writeU32(b, off, r);
    writeU32(b, off + 4, l);
  }
}
