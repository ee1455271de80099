/**
 * The peer layer's wire and EasyTier's payload encryption: `--peer-protocol easytier` (the only one),
 * `--encryption-algorithm aes-gcm|aes-256-gcm|chacha20|xor` (EasyTier's names; EasyTier falls back
 * to aes-gcm on an unknown one, we refuse it) and `--disable-encryption` (`-u`).
 */
import { parseEtAlgorithm, type EtAlgorithm } from '../peer/easytier/cipher.js';
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

export function parseEncryptionAlgorithm(raw: string, name: string): Exclude<EtAlgorithm, 'none'> {
  const a = parseEtAlgorithm(raw.trim().toLowerCase());
  if (a === null || a === 'none') throw badConfig(name, `must be one of aes-gcm, aes-256-gcm, chacha20, xor, got ${quote(raw)}`);
  return a;
}
