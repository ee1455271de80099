/**
 * PM packets on a secure-mode link: what is sealed with the neighbour's session and how a received
 * one is opened. Sealed are the types EasyTier encrypts (Data, RPC, the proxies, tstier's carriers)
 * when they go from us to this neighbour; Ping/Pong and the Noise messages never are.
 *
 * Stricter than EasyTier (docs/easytier-wire.md): a sealable packet from the neighbour that comes
 * without the ENCRYPTED flag is dropped (EasyTier passes it through). Packets to and from nodes
 * further away travel in relay sessions (secure-relay.ts), never on a link's session.
 */
import { PmFlag, PM_HEADER_LEN, isEncryptedType, writePmHeaderFields, type PmHeader, type PmPacket } from './pm.js';
import { SECURE_TAIL_LEN, directionOf, type SecureOpenFailure, type SecureSession } from './secure-datagram.js';

export type SecureDropReason = SecureOpenFailure | 'secure-no-relay' | 'plaintext-refused' | 'compressed' | 'bad-len';

/** Builds a packet from us to the neighbour at the other end of the link, sealed if its type is. */
/**
 * Builds a packet from us to the neighbour at the other end of the link, sealed if its type is,
 * straight from `payload` into the packet after `headroom` (one buffer, as buildPm's plain path).
 */
export function buildSecurePm(h: Omit<PmHeader, 'len'>, payload: Uint8Array, session: SecureSession, now: number, headroom = 0): Buffer {
  const seal = isEncryptedType(h.type);
  const at = headroom + PM_HEADER_LEN;
  const out = Buffer.allocUnsafe(at + payload.length + (seal ? SECURE_TAIL_LEN : 0));
  writePmHeaderFields(out, headroom, h, seal ? h.flags | PmFlag.Encrypted : h.flags & ~PmFlag.Encrypted, payload.length);
  if (seal) session.sealInto(directionOf(h.from, h.to), out, at, payload, now);
  else out.set(payload, at);
  return out;
}

/** Whether a packet of this type to `to` can leave on a link to `neighbour` in secure mode. */
export function secureSendable(type: number, to: number, neighbour: number): boolean {
  return !isEncryptedType(type) || to === neighbour;
}

/** Opens a packet the neighbour at the other end of the link sent us. */
export function openSecurePm(p: PmPacket, session: SecureSession, now: number): { payload: Uint8Array } | { drop: SecureDropReason } {
  const { header, body } = p;
  if (!isEncryptedType(header.type)) {
    if (header.flags & PmFlag.Encrypted) return { drop: 'decrypt-failed' };
    return body.length === header.len ? { payload: body } : { drop: 'bad-len' };
  }
  if (header.flags & PmFlag.Compressed) return { drop: 'compressed' };
  if (!(header.flags & PmFlag.Encrypted)) return { drop: 'plaintext-refused' };
  const opened = session.open(directionOf(header.from, header.to), body, now);
  if (typeof opened === 'string') return { drop: opened };
  return opened.length === header.len ? { payload: opened } : { drop: 'bad-len' };
}
