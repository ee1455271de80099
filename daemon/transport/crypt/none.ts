/** `--crypt none`: the nonce and CRC are still there, the bytes stay in clear. */
import type { BlockCrypt } from './types.js';

export class NoneCrypt implements BlockCrypt {
  encrypt(_buf: Uint8Array, _len: number): void {}
  decrypt(_buf: Uint8Array, _len: number): void {}
}
