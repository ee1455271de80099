/**
 * EasyTier's payload encryption (non-secure mode). Every node of a network shares one key derived
 * from the secret (identity.ts). AEAD payloads go on the wire as ciphertext ‖ tag(16) ‖ nonce(12),
 * with a random nonce per packet and empty AAD; xor keeps the length and adds nothing.
 *
 * The data path seals and opens in place (sealInto / openInPlace), into and out of the buffers the
 * underlay sends and receives, so a packet costs no allocation here. Two interchangeable AEAD
 * implementations give identical bytes: the peer addon (one OpenSSL context per key and direction)
 * and node:crypto, which must build a cipher object per packet and serves when the addon is absent.
 */
import { createCipheriv, createDecipheriv, randomFillSync, type CipherGCMTypes } from 'node:crypto';
import { defaultAeadImpl, peerAddon, type AeadHandle, type AeadImpl, type PeerAddon } from '../native.js';
import { key128, key256 } from './identity.js';

export type EtAlgorithm = 'aes-gcm' | 'aes-256-gcm' | 'chacha20' | 'xor' | 'none';

export const AEAD_TAG_LEN = 16;
export const AEAD_NONCE_LEN = 12;
const AEAD_TAIL = AEAD_TAG_LEN + AEAD_NONCE_LEN;

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
  /**
   * Writes the sealed form of `payload` at out[at..at + payload.length + overhead]; `payload` may be
   * out[at..] itself (sealing in place). `nonce` fixes the nonce instead of a random one (secure
   * mode's counter nonces, and tests).
   */
  sealInto(out: Uint8Array, at: number, payload: Uint8Array, nonce?: Uint8Array): void;
  /** Opens buf[at..at + len] in place: the plaintext's length (it starts at `at`), or -1 if it fails. */
  openInPlace(buf: Uint8Array, at: number, len: number): number;
  /** sealInto a new buffer (the control plane's convenience). */
  seal(plain: Uint8Array): Uint8Array;
  /** The plaintext of a copy, or null if too short or it fails authentication. */
  open(sealed: Uint8Array): Uint8Array | null;
}

export type AeadName = 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';
/** The addon's numbering of the AEADs (et_aead.c). */
const NATIVE_ID: Record<AeadName, number> = { 'aes-128-gcm': 0, 'aes-256-gcm': 1, 'chacha20-poly1305': 2 };

export function etCipher(algorithm: EtAlgorithm, networkSecret: string, impl: AeadImpl = defaultAeadImpl()): EtCipher {
  switch (algorithm) {
    case 'aes-gcm':
      return aead(algorithm, 'aes-128-gcm', key128(networkSecret), impl);
    case 'aes-256-gcm':
      return aead(algorithm, 'aes-256-gcm', key256(networkSecret), impl);
    case 'chacha20':
      return aead(algorithm, 'chacha20-poly1305', key256(networkSecret), impl);
    case 'xor': {
      const xor = xorInto(key128(networkSecret));
      return withCopies(algorithm, 0, xor, (buf, at, len) => {
        xor(buf, at, buf.subarray(at, at + len));
        return len;
      });
    }
    case 'none':
      return withCopies(algorithm, 0, (out, at, payload) => out.set(payload, at), (_buf, _at, len) => len);
  }
}

type SealInto = EtCipher['sealInto'];
type OpenInPlace = EtCipher['openInPlace'];

/** The convenience forms on top of the in-place ones. */
function withCopies(algorithm: EtAlgorithm, overhead: number, sealInto: SealInto, openInPlace: OpenInPlace): EtCipher {
  return {
    algorithm, overhead, sealInto, openInPlace,
    seal(plain) {
      const out = new Uint8Array(plain.length + overhead);
      sealInto(out, 0, plain);
      return out;
    },
    open(sealed) {
      const copy = Uint8Array.from(sealed);
      const n = openInPlace(copy, 0, copy.length);
      return n < 0 ? null : copy.subarray(0, n);
    },
  };
}

/** An AEAD with a raw key, sealing and opening in place: secure mode's traffic keys (secure-datagram.ts). */
export function aeadWithKey(name: AeadName, key: Uint8Array, impl: AeadImpl = defaultAeadImpl()): EtCipher {
  return aead(name === 'aes-128-gcm' ? 'aes-gcm' : name === 'aes-256-gcm' ? 'aes-256-gcm' : 'chacha20', name, key, impl);
}

function aead(algorithm: EtAlgorithm, name: AeadName, key: Uint8Array, impl: AeadImpl): EtCipher {
  const native = impl === 'native' ? nativeAead(name, key) : null;
  if (native) return withCopies(algorithm, AEAD_TAIL, native.sealInto, native.openInPlace);
  const cipherName = name as CipherGCMTypes;
  return withCopies(algorithm, AEAD_TAIL, (out, at, payload, nonce) => {
    const n = payload.length;
    const nonceAt = at + n + AEAD_TAG_LEN;
    if (nonce) out.set(nonce, nonceAt);
    else randomFillSync(out, nonceAt, AEAD_NONCE_LEN);
    const c = createCipheriv(cipherName, key, out.subarray(nonceAt, nonceAt + AEAD_NONCE_LEN), { authTagLength: AEAD_TAG_LEN });
    out.set(c.update(payload), at);
    c.final();
    out.set(c.getAuthTag(), at + n);
  }, (buf, at, len) => {
    if (len < AEAD_TAIL) return -1;
    const n = len - AEAD_TAIL;
    const d = createDecipheriv(cipherName, key, buf.subarray(at + n + AEAD_TAG_LEN, at + len), { authTagLength: AEAD_TAG_LEN });
    d.setAuthTag(buf.subarray(at + n, at + n + AEAD_TAG_LEN));
    try {
      const plain = d.update(buf.subarray(at, at + n));
      d.final();
      buf.set(plain, at);
      return n;
    } catch {
      return -1;
    }
  });
}

/**
 * The addon's contexts for one key (one per direction), or null when its OpenSSL refuses this
 * cipher (then node:crypto serves).
 */
function nativeAead(name: AeadName, key: Uint8Array): { sealInto: SealInto; openInPlace: OpenInPlace } | null {
  const addon: PeerAddon | null = peerAddon();
  if (!addon) return null;
  let enc: AeadHandle, dec: AeadHandle;
  try {
    enc = addon.etAeadCreate(NATIVE_ID[name], key, true);
    dec = addon.etAeadCreate(NATIVE_ID[name], key, false);
  } catch {
    return null;
  }
  return {
    sealInto(out, at, payload, nonce) {
      if (nonce) out.set(nonce, at + payload.length + AEAD_TAG_LEN);
      addon.etAeadSeal(enc, out, at, payload, nonce !== undefined);
    },
    openInPlace: (buf, at, len) => addon.etAeadOpen(dec, buf, at, len),
  };
}

/** Byte-wise XOR with the 16-byte key repeated: no integrity at all, only for interop. */
function xorInto(key: Uint8Array): SealInto {
  return (out, at, payload) => {
    for (let i = 0; i < payload.length; i++) out[at + i] = payload[i]! ^ key[i % key.length]!;
  };
}
