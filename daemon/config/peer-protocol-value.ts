/**
 * The peer layer's wire and EasyTier's payload encryption: `--peer-protocol easytier` (the only one),
 * `--encryption-algorithm aes-gcm|aes-256-gcm|chacha20|xor` (EasyTier's names; EasyTier falls back
 * to aes-gcm on an unknown one, we refuse it) and `--disable-encryption` (`-u`).
 */
import { parseEtAlgorithm, type EtAlgorithm } from '../peer/easytier/cipher.js';
import { x25519FromPrivate } from '../peer/easytier/secure-noise.js';
import { badConfig } from '../errors.js';

const quote = (raw: string): string => JSON.stringify(raw);

export type PeerProtocol = 'easytier';

/** Accepts `easytier`; `tstier` names the earlier protocol, which was removed, and says what replaces it. */
export function parsePeerProtocol(raw: string, name: string): PeerProtocol {
  const p = raw.trim().toLowerCase();
  if (p === 'tstier') throw badConfig(name, 'tstier\'s earlier peer protocol was removed: EasyTier\'s wire is the only one; use --secure-mode for per-link keys and anti-replay');
  if (p !== 'easytier') throw badConfig(name, `must be easytier (the only peer protocol), got ${quote(raw)}`);
  return p;
}

/** Why `--secure-mode` cannot run with the rest of `c`, or null. Secure mode always seals, with an AEAD. */
export function secureModeProblem(c: { secureMode?: boolean; disableEncryption?: boolean; encryptionAlgorithm?: string }): string | null {
  if (!c.secureMode) return null;
  if (c.disableEncryption) return 'cannot run with --disable-encryption: secure mode always encrypts';
  if (c.encryptionAlgorithm === 'xor') return 'needs an AEAD (--encryption-algorithm aes-gcm, aes-256-gcm or chacha20), not xor';
  return null;
}

/**
 * EasyTier's `[secure_mode]` key pair: `local_private_key` (base64 of the raw 32-byte X25519 key) and,
 * if given, `local_public_key`, which must be its public half (EasyTier refuses a mismatch too).
 */
export function parseSecureKeyPair(privateB64: string, publicB64: string | undefined, name: string): Uint8Array {
  const raw = (text: string, key: string): Uint8Array => {
    const bytes = Buffer.from(text.trim(), 'base64');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text.trim()) || bytes.length !== 32) throw badConfig(key, 'must be the base64 of a 32-byte X25519 key');
    return new Uint8Array(bytes);
  };
  const key = raw(privateB64, `${name}.local_private_key`);
  if (publicB64 !== undefined && !Buffer.from(x25519FromPrivate(key).publicKey).equals(raw(publicB64, `${name}.local_public_key`))) {
    throw badConfig(`${name}.local_public_key`, 'is not the public key of local_private_key');
  }
  return key;
}

export function parseEncryptionAlgorithm(raw: string, name: string): Exclude<EtAlgorithm, 'none'> {
  const a = parseEtAlgorithm(raw.trim().toLowerCase());
  if (a === null || a === 'none') throw badConfig(name, `must be one of aes-gcm, aes-256-gcm, chacha20, xor, got ${quote(raw)}`);
  return a;
}
