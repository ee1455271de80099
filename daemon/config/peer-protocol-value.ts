/**
 * The peer layer's wire and EasyTier's payload encryption: `--peer-protocol tstier|easytier`,
 * `--encryption-algorithm aes-gcm|aes-256-gcm|chacha20|xor` (EasyTier's names; EasyTier falls back
 * to aes-gcm on an unknown one, we refuse it) and `--disable-encryption` (`-u`).
 */
import { parseEtAlgorithm, type EtAlgorithm } from '../peer/easytier/cipher.js';
import { badConfig } from '../errors.js';

const quote = (raw: string): string => JSON.stringify(raw);

export const PEER_PROTOCOLS = ['tstier', 'easytier'] as const;
export type PeerProtocol = (typeof PEER_PROTOCOLS)[number];

export function parsePeerProtocol(raw: string, name: string): PeerProtocol {
  const p = raw.trim().toLowerCase();
  if (!(PEER_PROTOCOLS as readonly string[]).includes(p)) throw badConfig(name, `must be one of ${PEER_PROTOCOLS.join(', ')}, got ${quote(raw)}`);
  return p as PeerProtocol;
}

/** Why `--secure-mode` cannot run with the rest of `c`, or null. Secure mode always seals, with an AEAD. */
export function secureModeProblem(c: { secureMode?: boolean; peerProtocol?: PeerProtocol; disableEncryption?: boolean; encryptionAlgorithm?: string }): string | null {
  if (!c.secureMode) return null;
  if (c.peerProtocol === 'tstier') return 'is a mode of EasyTier\'s wire, not of --peer-protocol tstier (whose links are always keyed per link)';
  if (c.disableEncryption) return 'cannot run with --disable-encryption: secure mode always encrypts';
  if (c.encryptionAlgorithm === 'xor') return 'needs an AEAD (--encryption-algorithm aes-gcm, aes-256-gcm or chacha20), not xor';
  return null;
}

export function parseEncryptionAlgorithm(raw: string, name: string): Exclude<EtAlgorithm, 'none'> {
  const a = parseEtAlgorithm(raw.trim().toLowerCase());
  if (a === null || a === 'none') throw badConfig(name, `must be one of aes-gcm, aes-256-gcm, chacha20, xor, got ${quote(raw)}`);
  return a;
}
