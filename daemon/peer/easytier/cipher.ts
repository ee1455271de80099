/**
 * EasyTier's payload encryption (non-secure mode). Every node of a network shares one key derived
 * from the secret (identity.ts). AEAD payloads go on the wire as ciphertext ‖ tag(16) ‖ nonce(12),
 * with a random nonce per packet and empty AAD; xor keeps the length and adds nothing.
 *
 * Prototype quality on purpose: node:crypto allocates per packet. The data path will want the
 * peer layer's native AEAD once this protocol is the peer layer's.
 */
import { createCipheriv, createDecipheriv, randomBytes, type CipherGCMTypes } from 'node:crypto';
import { key128, key256 } from './identity.js';

export type EtAlgorithm = 'aes-gcm' | 'aes-256-gcm' | 'chacha20' | 'xor' | 'none';

export const AEAD_TAG_LEN = 16;
export const AEAD_NONCE_LEN = 12;

/**
 * The `--encryption-algorithm` value as EasyTier spells it ("" means the default aes-gcm), or null
 * if unknown. EasyTier falls back to aes-gcm on an unknown name; a config layer should refuse it.
 */
export function parseEtAlgorithm(name: string): EtAlgorithm | null {
  if (name === '') return 'aes-gcm';
  return (['aes-gcm', 'aes-256-gcm', 'chacha20', 'xor'] as const).find((a) => a === name) ?? null;
}

export interface EtCipher {
  readonly algorithm: EtAlgorithm;
  /** Bytes the sealed form adds to the plaintext. */
  readonly overhead: number;
  seal(plain: Uint8Array): Uint8Array;
  /** The plaintext, or null if the payload is too short or fails authentication. */
  open(sealed: Uint8Array): Uint8Array | null;
}

export function etCipher(algorithm: EtAlgorithm, networkSecret: string): EtCipher {
  switch (algorithm) {
    case 'aes-gcm':
      return aead(algorithm, 'aes-128-gcm', key128(networkSecret));
    case 'aes-256-gcm':
      return aead(algorithm, 'aes-256-gcm', key256(networkSecret));
    case 'chacha20':
      return aead(algorithm, 'chacha20-poly1305', key256(networkSecret));
    case 'xor':
      return xorCipher(key128(networkSecret));
    case 'none':
      return { algorithm, overhead: 0, seal: (p) => p, open: (s) => s };
  }
}

function aead(algorithm: EtAlgorithm, name: CipherGCMTypes | 'chacha20-poly1305', key: Uint8Array): EtCipher {
  const tail = AEAD_TAG_LEN + AEAD_NONCE_LEN;
  return {
    algorithm,
    overhead: tail,
    seal(plain) {
      const nonce = randomBytes(AEAD_NONCE_LEN);
      const c = createCipheriv(name as CipherGCMTypes, key, nonce, { authTagLength: AEAD_TAG_LEN });
      return Buffer.concat([c.update(plain), c.final(), c.getAuthTag(), nonce]);
    },
    open(sealed) {
      if (sealed.length < tail) return null;
      const ctLen = sealed.length - tail;
      const nonce = sealed.subarray(ctLen + AEAD_TAG_LEN);
      const d = createDecipheriv(name as CipherGCMTypes, key, nonce, { authTagLength: AEAD_TAG_LEN });
      d.setAuthTag(sealed.subarray(ctLen, ctLen + AEAD_TAG_LEN));
      try {
        return Buffer.concat([d.update(sealed.subarray(0, ctLen)), d.final()]);
      } catch {
        return null;
      }
    },
  };
}

/** Byte-wise XOR with the 16-byte key repeated: no integrity at all, only for interop. */
function xorCipher(key: Uint8Array): EtCipher {
  const apply = (src: Uint8Array): Uint8Array => {
    const out = new Uint8Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = src[i]! ^ key[i % key.length]!;
    return out;
  };
  return { algorithm: 'xor', overhead: 0, seal: apply, open: apply };
}
