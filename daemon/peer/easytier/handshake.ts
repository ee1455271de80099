/**
 * EasyTier's PeerConn handshake (non-secure mode): one `peer_rpc.HandshakeRequest` each way, in a PM
 * packet of type HandShake with to = 0, never encrypted. The dialler speaks first; the listener
 * answers with its real digest only if the dialler's name and digest equal its own, else zeros.
 *
 * Where tstier is stricter than EasyTier (see docs/easytier-wire.md): EasyTier accepts a
 * same-name peer whose digest is all zeros (its "credential node" rule), so knowing the network
 * name is enough to join. `judgeHandshake` refuses that, and any digest that is not ours.
 */
import { ProtoWriter, protoFields, str, u32 } from './proto.js';
import { isZeroDigest } from './identity.js';
import { TstierError } from '../../errors.js';

export const HANDSHAKE_MAGIC = 0xd1e1a5e1;
export const HANDSHAKE_VERSION = 1;
/** EasyTier waits this long for the other side's handshake, each way. */
export const HANDSHAKE_TIMEOUT_MS = 5000;

export interface HandshakeRequest {
  magic: number;
  myPeerId: number;
  version: number;
  /** Must stay empty: offering "liveness-echo-v1" commits us to a probe format we do not speak. */
  features: string[];
  networkName: string;
  /** Exactly 32 bytes. */
  digest: Uint8Array;
}

export function encodeHandshake(h: HandshakeRequest): Uint8Array {
  const w = new ProtoWriter().uint(1, h.magic).uint(2, h.myPeerId).uint(3, h.version);
  for (const f of h.features) w.string(4, f, true);
  return w.string(5, h.networkName).bytes(6, h.digest).finish();
}

export function decodeHandshake(buf: Uint8Array): HandshakeRequest {
  const h: HandshakeRequest = { magic: 0, myPeerId: 0, version: 0, features: [], networkName: '', digest: new Uint8Array(0) };
  for (const f of protoFields(buf)) {
    if (f.no === 1) h.magic = u32(f);
    else if (f.no === 2) h.myPeerId = u32(f);
    else if (f.no === 3) h.version = u32(f);
    else if (f.no === 4) h.features.push(str(f));
    else if (f.no === 5) h.networkName = str(f);
    else if (f.no === 6) h.digest = f.bytes;
  }
  if (h.digest.length !== 32) throw new TstierError('TSTIER_E_BAD_PACKET', `handshake: digest is ${h.digest.length} bytes, not 32`);
  return h;
}

/** Our side of the exchange: who we are and what we prove. */
export interface LocalIdentity {
  peerId: number;
  networkName: string;
  digest: Uint8Array;
}

/** Our HandshakeRequest; as listener, `vouch` false sends the 32 zero bytes EasyTier sends a stranger. */
export function ourHandshake(me: LocalIdentity, vouch = true): HandshakeRequest {
  return {
    magic: HANDSHAKE_MAGIC,
    myPeerId: me.peerId,
    version: HANDSHAKE_VERSION,
    features: [],
    networkName: me.networkName,
    digest: vouch ? me.digest : new Uint8Array(32),
  };
}

export type HandshakeVerdict =
  | { ok: true }
  | { ok: false; reason: 'other-network' | 'zero-digest' | 'wrong-digest' | 'peer-id-conflict' };

/**
 * Whether to keep a link after the exchange. Refuses a different network name (we are no shared
 * node), an all-zero digest (EasyTier would accept it by name alone), a digest that is not ours,
 * and a peer that claims our own peer id.
 */
export function judgeHandshake(me: LocalIdentity, theirs: HandshakeRequest): HandshakeVerdict {
  if (theirs.networkName !== me.networkName) return { ok: false, reason: 'other-network' };
  if (theirs.myPeerId === me.peerId) return { ok: false, reason: 'peer-id-conflict' };
  if (isZeroDigest(theirs.digest)) return { ok: false, reason: 'zero-digest' };
  if (!equalBytes(theirs.digest, me.digest)) return { ok: false, reason: 'wrong-digest' };
  return { ok: true };
}

/** Whether a listener vouches for the dialler in its reply (EasyTier's rule: same name and digest). */
export function listenerVouches(me: LocalIdentity, theirs: HandshakeRequest): boolean {
  return theirs.networkName === me.networkName && equalBytes(theirs.digest, me.digest);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
