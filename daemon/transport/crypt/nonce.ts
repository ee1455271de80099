/**
 * Per-datagram nonces, cheaply: an AES-128-CTR keystream under a random key,
 * produced a few kilobytes at a time and rekeyed from the system CSPRNG every
 * REKEY_BATCHES batches. The nonce only has to be unpredictable and not repeat
 * (it randomises the first cipher block, or is the AES-GCM nonce); calling
 * randomBytes per datagram would cost a syscall-sized slice of the budget.
 */
import { createCipheriv, randomBytes, type Cipher } from 'node:crypto';

const BATCH_BYTES = 4096;
const REKEY_BATCHES = 1024; // 4 MiB of nonce material per key

export class NonceSource {
  private ctr!: Cipher;
  private pool: Uint8Array = new Uint8Array(0);
  private pos = 0;
  private batches = 0;
  private readonly zeros = new Uint8Array(BATCH_BYTES);

  /** Writes `n` (≤ 4096) fresh random bytes at buf[off, off + n). */
  fill(buf: Uint8Array, off: number, n: number): void {
    if (this.pos + n > this.pool.length) this.refill();
    buf.set(this.pool.subarray(this.pos, this.pos + n), off);
    this.pos += n;
  }

  private refill(): void {
    if (this.batches % REKEY_BATCHES === 0) this.ctr = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
    this.batches++;
    this.pool = this.ctr.update(this.zeros);
    this.pos = 0;
  }
}
