/**
 * `--crypt xor`: every datagram XORed with one fixed 1500-byte pad from byte 0.
 * The same pad for every packet, so it hides nothing from an observer; kept for interop.
 */
import { pbkdf2Sync } from 'node:crypto';
import type { BlockCrypt } from './types.js';

const PAD_SALT = 'sH3CIVoF#rWLtJo6';
const PAD_ITERATIONS = 32;
/** kcp-go's receive buffer size; no datagram is longer, and bytes past the pad stay as they are. */
const PAD_BYTES = 1500;

export class XorCrypt implements BlockCrypt {
  private readonly pad: Uint8Array;

  constructor(pass: Uint8Array) {
    this.pad = new Uint8Array(pbkdf2Sync(pass, PAD_SALT, PAD_ITERATIONS, PAD_BYTES, 'sha1'));
  }

  encrypt(buf: Uint8Array, len: number): void {
    const pad = this.pad;
    const n = Math.min(len, PAD_BYTES);
    for (let i = 0; i < n; i++) buf[i] ^= pad[i];
  }

  decrypt(buf: Uint8Array, len: number): void {
    this.encrypt(buf, len);
  }
}
