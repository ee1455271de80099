/**
 * HChaCha20 (draft-irtf-cfrg-xchacha §2.2): derives a 32-byte subkey from a 32-byte key and a
 * 16-byte nonce with ChaCha20's 20 rounds and no final addition. XChaCha20-Poly1305 is then
 * ChaCha20-Poly1305 under that subkey with nonce = 4 zero bytes ‖ the last 8 nonce bytes; Node has
 * chacha20-poly1305 but not the X variant, so this is the one piece written here.
 */

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]; // "expand 32-byte k"

function le32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

const rotl = (v: number, n: number): number => ((v << n) | (v >>> (32 - n))) >>> 0;

function quarter(s: Uint32Array, a: number, b: number, c: number, d: number): void {
  s[a] = s[a]! + s[b]!; s[d] = rotl(s[d]! ^ s[a]!, 16);
  s[c] = s[c]! + s[d]!; s[b] = rotl(s[b]! ^ s[c]!, 12);
  s[a] = s[a]! + s[b]!; s[d] = rotl(s[d]! ^ s[a]!, 8);
  s[c] = s[c]! + s[d]!; s[b] = rotl(s[b]! ^ s[c]!, 7);
}

const state = new Uint32Array(16);

/** Writes the 32-byte subkey for key[0,32) and nonce[nonceOff, nonceOff+16) into out. */
export function hchacha20(key: Uint8Array, nonce: Uint8Array, nonceOff: number, out: Uint8Array): void {
  const s = state;
  for (let i = 0; i < 4; i++) s[i] = SIGMA[i]!;
  for (let i = 0; i < 8; i++) s[4 + i] = le32(key, 4 * i);
  for (let i = 0; i < 4; i++) s[12 + i] = le32(nonce, nonceOff + 4 * i);
  for (let r = 0; r < 10; r++) {
    quarter(s, 0, 4, 8, 12); quarter(s, 1, 5, 9, 13); quarter(s, 2, 6, 10, 14); quarter(s, 3, 7, 11, 15);
    quarter(s, 0, 5, 10, 15); quarter(s, 1, 6, 11, 12); quarter(s, 2, 7, 8, 13); quarter(s, 3, 4, 9, 14);
  }
  const words = [0, 1, 2, 3, 12, 13, 14, 15];
  for (let i = 0; i < 8; i++) {
    const w = s[words[i]!]!;
    out[4 * i] = w & 0xff;
    out[4 * i + 1] = (w >>> 8) & 0xff;
    out[4 * i + 2] = (w >>> 16) & 0xff;
    out[4 * i + 3] = w >>> 24;
  }
}
