/**
 * kcp-go's full-block CFB with the fixed IV, over a block cipher written in
 * TypeScript (those OpenSSL 3 keeps in its legacy provider, or lacks).
 */
import { KCP_IV, type BlockCrypt } from './types.js';

/** A block cipher's forward direction; CFB never needs the inverse. */
export interface BlockEncryptor {
  readonly blockSize: 8 | 16;
  /** Encrypts the block at b[off, off + blockSize) in place. */
  encryptBlock(b: Uint8Array, off: number): void;
}

export class CfbCrypt implements BlockCrypt {
  private readonly reg: Uint8Array;

  constructor(private readonly cipher: BlockEncryptor) {
    this.reg = new Uint8Array(cipher.blockSize);
  }

  encrypt(buf: Uint8Array, len: number): void {
    this.run(buf, len, true);
  }

  decrypt(buf: Uint8Array, len: number): void {
    this.run(buf, len, false);
  }

  /** Both directions XOR with E(previous ciphertext block); only which byte is fed back differs. */
  private run(buf: Uint8Array, len: number, encrypting: boolean): void {
    const { reg, cipher } = this;
    const bs = cipher.blockSize;
    reg.set(KCP_IV.subarray(0, bs));
    for (let i = 0; i < len; i += bs) {
      cipher.encryptBlock(reg, 0);
      const n = Math.min(bs, len - i);
      for (let j = 0; j < n; j++) {
        const input = buf[i + j];
        const output = input ^ reg[j];
        buf[i + j] = output;
        reg[j] = encrypting ? output : input;
      }
    }
  }
}
