/**
 * kcptube's encryption_algorithm choices, as tstier seals them (the layout is ours, see
 * docs/kcptube-wire.md):
 *
 *   AEAD:  [0,N) random nonce | [N,N+16) tag | [N+16,end) ciphertext of the tunnel header + payload
 *   none:  [0,2) LRC ‖ 8-bit sum of [2,end) | [2,end) plaintext
 *
 * The tag sits in front of the ciphertext, not behind it, so every cipher needs only headroom
 * (which the KCP engine reserves) and never tailroom. Keys: PBKDF2-SHA256(password,
 * "tstier-kcptube", 4096 rounds) → 32 bytes (AES-256, ChaCha20). xchacha20 derives a per-datagram
 * subkey with HChaCha20 from the first 16 nonce bytes, then runs chacha20-poly1305 with nonce
 * 0⁴ ‖ nonce[16,24).
 */
import { createCipheriv, createDecipheriv, pbkdf2Sync, type CipherGCMTypes } from 'node:crypto';
import { NonceSource } from '../transport/crypt/nonce.js';
import { hchacha20 } from './hchacha20.js';

export type KcptubeCipher = 'none' | 'aes-gcm' | 'aes-ocb' | 'chacha20' | 'xchacha20';

const TAG = 16;
const NONCE: Record<KcptubeCipher, number> = { none: 0, 'aes-gcm': 12, 'aes-ocb': 12, chacha20: 12, xchacha20: 24 };
const CHECKSUM = 2;

/** Bytes each cipher adds to a datagram. */
export const CRYPT_OVERHEAD: Readonly<Record<KcptubeCipher, number>> = {
  none: CHECKSUM,
  'aes-gcm': NONCE['aes-gcm'] + TAG,
  'aes-ocb': NONCE['aes-ocb'] + TAG,
  chacha20: NONCE.chacha20 + TAG,
  xchacha20: NONCE.xchacha20 + TAG,
};

/** open() failures. */
export const OPEN_SHORT = -1;
export const OPEN_FORGED = -2;

const NODE_CIPHER: Record<Exclude<KcptubeCipher, 'none'>, string> = {
  'aes-gcm': 'aes-256-gcm',
  'aes-ocb': 'aes-256-ocb',
  chacha20: 'chacha20-poly1305',
  xchacha20: 'chacha20-poly1305',
};

export function deriveKey(password: string): Uint8Array {
  return pbkdf2Sync(password, 'tstier-kcptube', 4096, 32, 'sha256');
}

/** kcptube's plaintext check: an LRC byte and an 8-bit sum. It catches corruption, not forgery. */
function checksum(buf: Uint8Array, start: number, end: number): number {
  let lrc = 0;
  let sum = 0;
  for (let i = start; i < end; i++) {
    lrc = (lrc + buf[i]!) & 0xff;
    sum ^= buf[i]!;
  }
  return (((-lrc) & 0xff) << 8) | sum;
}

export class TunnelCipher {
  /** Bytes in front of the tunnel header. */
  readonly headerSize: number;
  private readonly nonceSize: number;
  private readonly nodeName: string;
  private readonly nonces = new NonceSource();
  private readonly subkey = new Uint8Array(32);
  private readonly iv12 = new Uint8Array(12);

  constructor(
    readonly name: KcptubeCipher,
    private readonly key: Uint8Array,
  ) {
    this.nonceSize = NONCE[name];
    this.headerSize = CRYPT_OVERHEAD[name];
    this.nodeName = name === 'none' ? '' : NODE_CIPHER[name];
  }

  static fromPassword(name: KcptubeCipher, password: string): TunnelCipher {
    return new TunnelCipher(name, name === 'none' ? new Uint8Array(0) : deriveKey(password));
  }

  /** Seals buf[0,len) in place; buf[0,headerSize) is the reserved room. Returns len. */
  seal(buf: Uint8Array, len: number): number {
    const h = this.headerSize;
    if (this.name === 'none') {
      const c = checksum(buf, h, len);
      buf[0] = c >>> 8;
      buf[1] = c & 0xff;
      return len;
    }
    this.nonces.fill(buf, 0, this.nonceSize);
    const c = createCipheriv(this.nodeName as CipherGCMTypes, this.keyFor(buf), this.ivFor(buf), { authTagLength: TAG });
    // OCB holds back a partial block until final(): place both outputs.
    const head = c.update(buf.subarray(h, len));
    buf.set(head, h);
    buf.set(c.final(), h + head.length);
    buf.set(c.getAuthTag(), this.nonceSize);
    return len;
  }

  /**
   * Opens buf[0,len) in place. Returns the offset of the tunnel header (plaintext runs to len),
   * or OPEN_SHORT / OPEN_FORGED. Never throws.
   */
  open(buf: Uint8Array, len: number): number {
    const h = this.headerSize;
    if (len < h) return OPEN_SHORT;
    if (this.name === 'none') {
      return ((buf[0]! << 8) | buf[1]!) === checksum(buf, h, len) ? h : OPEN_FORGED;
    }
    try {
      const d = createDecipheriv(this.nodeName as CipherGCMTypes, this.keyFor(buf), this.ivFor(buf), { authTagLength: TAG });
      d.setAuthTag(buf.subarray(this.nonceSize, h));
      const head = d.update(buf.subarray(h, len));
      const tail = d.final(); // throws on a bad tag; only then may the plaintext replace the ciphertext
      buf.set(head, h);
      buf.set(tail, h + head.length);
      return h;
    } catch {
      return OPEN_FORGED;
    }
  }

  private keyFor(buf: Uint8Array): Uint8Array {
    if (this.name !== 'xchacha20') return this.key;
    hchacha20(this.key, buf, 0, this.subkey);
    return this.subkey;
  }

  private ivFor(buf: Uint8Array): Uint8Array {
    if (this.name !== 'xchacha20') return buf.subarray(0, this.nonceSize);
    this.iv12.set(buf.subarray(16, 24), 4); // bytes 0..3 stay zero
    return this.iv12;
  }
}
