/**
 * EasyTier's secure-mode PeerConn handshake, sans-IO: Noise XX (secure-noise.ts) in PM packets of
 * types 13, 14 and 15, with the payloads of secure-msg.ts, prologue "easytier-peerconn-noise".
 *
 *   dialler  --13 msg1 {version, name, conn id a, algorithm}---------------------> listener (to = 0)
 *            <-14 msg2 {name, role 1, action, generation, root key?, epoch, b, echo a, proof_B, algorithm}
 *            --15 msg3 {echo a, echo b, proof_A, digest}------------------------->
 *
 * A proof is HMAC-SHA256(key = network secret, "easytier secret proof" ‖ handshake hash): the
 * listener's over the hash after reading msg1, the dialler's over the hash after reading msg2. Only
 * a side that knows the secret can make one, and it is bound to this handshake's keys, so unlike the
 * plain handshake's digest it cannot be replayed.
 *
 * Stricter than EasyTier (docs/easytier-wire.md): both proofs are required (EasyTier also admits
 * "credential" peers by a trusted static key, and shared nodes without one); a different network
 * name is refused (we relay for no foreign network); msg3's digest must be ours.
 */
import { createHmac } from 'node:crypto';
import { NoiseError, NoiseHandshake, type X25519KeyPair } from './secure-noise.js';
import { ROLE_SAME_NETWORK, decodeMsg1, decodeMsg2, decodeMsg3, encodeMsg1, encodeMsg2, encodeMsg3, newConnId, sameConnId, type ConnId } from './secure-msg.js';
import type { SecureSessionStore, SessionRefusal } from './secure-session-store.js';
import { parseSecureAlgorithm, type SecureAlgorithm, type SecureSession } from './secure-datagram.js';
import { EtPacketType, ORIGIN_FORWARD_COUNTER, PM_HEADER_LEN, type PmHeader } from './pm.js';
import { writePmHeader } from '../wire.js';
import { TstierError } from '../../errors.js';

export const NOISE_PROLOGUE = new TextEncoder().encode('easytier-peerconn-noise');
const PROOF_PREFIX = new TextEncoder().encode('easytier secret proof');
const SECURE_VERSION = 1;

/** What a node brings to every secure handshake. */
export interface SecureIdentity {
  peerId: number;
  networkName: string;
  networkSecret: string;
  /** The plain handshake's digest; EasyTier sends it in msg3 for its bookkeeping. */
  digest: Uint8Array;
  staticKey: X25519KeyPair;
  algorithm: SecureAlgorithm;
  sessions: SecureSessionStore;
}

export function secretProof(networkSecret: string, handshakeHash: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', networkSecret).update(PROOF_PREFIX).update(handshakeHash).digest());
}

export type SecureFailure =
  | 'secure-malformed'
  | 'other-network'
  | 'wrong-secret'
  | 'peer-id-conflict'
  | 'secure-conn-id'
  | 'secure-algorithm'
  | `secure-session-${SessionRefusal}`;

export interface SecureUp {
  peerId: number;
  session: SecureSession;
  remoteStatic: Uint8Array;
}

/** What one input produced: a packet to send and/or the outcome (a failure sends nothing). */
export type SecureStep = { send?: Uint8Array; up?: SecureUp; fail?: SecureFailure };

/** Whether a PM type belongs to the secure handshake. */
export function isNoiseType(type: number): boolean {
  return type === EtPacketType.NoiseHandshakeMsg1 || type === EtPacketType.NoiseHandshakeMsg2 || type === EtPacketType.NoiseHandshakeMsg3;
}

/** A handshake packet: never sealed, forward counter 1. */
export function noisePm(from: number, to: number, type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(PM_HEADER_LEN + body.length);
  writePmHeader(out, 0, { from, to, type, flags: 0, forwardCounter: ORIGIN_FORWARD_COUNTER, len: body.length });
  out.set(body, PM_HEADER_LEN);
  return out;
}

/** Constant-time compare of a received value with ours. */
function equal(theirs: Uint8Array | undefined, ours: Uint8Array): boolean {
  if (theirs?.length !== ours.length) return false;
  let d = 0;
  for (let i = 0; i < ours.length; i++) d |= theirs[i]! ^ ours[i]!;
  return d === 0;
}

export class SecureHandshake {
  readonly #me: SecureIdentity;
  readonly #noise: NoiseHandshake;
  readonly #dialler: boolean;
  readonly #connId: ConnId = newConnId();
  #theirConnId: ConnId | undefined;
  #peerId = 0;
  /** The hash the other side's proof is over. */
  #proofHash: Uint8Array | null = null;
  /** The session this link holds in the store (released when the link closes). */
  #held: SecureSession | null = null;

  constructor(role: 'dialler' | 'listener', me: SecureIdentity) {
    this.#me = me;
    this.#dialler = role === 'dialler';
    this.#noise = new NoiseHandshake({ pattern: 'XX', initiator: this.#dialler, prologue: NOISE_PROLOGUE, staticKey: me.staticKey });
  }

  /** The dialler's msg1 (to = 0: it does not know the listener's id yet). */
  start(): Uint8Array {
    if (!this.#dialler) throw new TstierError('TSTIER_E_PROTOCOL', 'secure handshake: the listener does not speak first');
    const msg1 = encodeMsg1({ version: SECURE_VERSION, networkName: this.#me.networkName, connId: this.#connId, encryptionAlgorithm: this.#me.algorithm, tstier: true });
    const pm = noisePm(this.#me.peerId, 0, EtPacketType.NoiseHandshakeMsg1, this.#noise.writeMessage(msg1));
    this.#proofHash = this.#noise.handshakeHash;
    return pm;
  }

  /** One handshake packet of the other side. */
  input(header: PmHeader, body: Uint8Array, now: number): SecureStep {
    try {
      if (!this.#dialler && header.type === EtPacketType.NoiseHandshakeMsg1 && this.#peerId === 0) return this.#onMsg1(header.from, body, now);
      if (this.#dialler && header.type === EtPacketType.NoiseHandshakeMsg2 && this.#peerId === 0) return this.#onMsg2(header.from, body, now);
      if (!this.#dialler && header.type === EtPacketType.NoiseHandshakeMsg3 && this.#peerId !== 0) return this.#onMsg3(body);
    } catch (e) {
      if (e instanceof NoiseError || e instanceof TstierError) return { fail: 'secure-malformed' };
      throw e;
    }
    return {}; // out of order or repeated: ignored, as EasyTier waits for the type it expects
  }

  /** The link is gone: let go of its session. */
  release(): void {
    if (this.#held) this.#me.sessions.release(this.#peerId);
    this.#held = null;
  }

  #onMsg1(from: number, body: Uint8Array, now: number): SecureStep {
    const m = decodeMsg1(this.#noise.readMessage(body));
    this.#peerId = from;
    if (m.networkName !== this.#me.networkName) return { fail: 'other-network' };
    if (from === this.#me.peerId) return { fail: 'peer-id-conflict' };
    const theirAlgorithm = parseSecureAlgorithm(m.encryptionAlgorithm);
    if (!theirAlgorithm) return { fail: 'secure-algorithm' };
    const proof = secretProof(this.#me.networkSecret, this.#noise.handshakeHash);
    const d = this.#me.sessions.respond(from, m.sessionGeneration, this.#me.algorithm, theirAlgorithm, now);
    if (typeof d === 'string') return { fail: `secure-session-${d}` };
    this.#held = d.session;
    this.#theirConnId = m.connId;
    const msg2 = encodeMsg2({
      networkName: this.#me.networkName,
      roleHint: ROLE_SAME_NETWORK,
      action: d.action,
      sessionGeneration: d.generation,
      rootKey: d.rootKey,
      initialEpoch: d.initialEpoch,
      connId: this.#connId,
      connIdEcho: m.connId,
      secretProof: proof,
      encryptionAlgorithm: this.#me.algorithm,
      tstier: true,
    });
    const send = noisePm(this.#me.peerId, from, EtPacketType.NoiseHandshakeMsg2, this.#noise.writeMessage(msg2));
    this.#proofHash = this.#noise.handshakeHash;
    return { send };
  }

  #onMsg2(from: number, body: Uint8Array, now: number): SecureStep {
    const m = decodeMsg2(this.#noise.readMessage(body));
    this.#peerId = from;
    if (!sameConnId(m.connIdEcho, this.#connId)) return { fail: 'secure-conn-id' };
    if (m.networkName !== this.#me.networkName || m.roleHint !== ROLE_SAME_NETWORK) return { fail: 'other-network' };
    if (from === this.#me.peerId) return { fail: 'peer-id-conflict' };
    if (!equal(m.secretProof, secretProof(this.#me.networkSecret, this.#proofHash!))) return { fail: 'wrong-secret' };
    const theirAlgorithm = parseSecureAlgorithm(m.encryptionAlgorithm);
    if (!theirAlgorithm) return { fail: 'secure-algorithm' };
    const keepOursOnCross = !m.tstier || this.#me.peerId >>> 0 < from >>> 0;
    const s = this.#me.sessions.apply(from, { ...m, generation: m.sessionGeneration }, this.#me.algorithm, theirAlgorithm, now, keepOursOnCross);
    if (typeof s === 'string') return { fail: `secure-session-${s}` };
    this.#held = s;
    const msg3 = encodeMsg3({
      aConnIdEcho: this.#connId,
      bConnIdEcho: m.connId,
      secretProof: secretProof(this.#me.networkSecret, this.#noise.handshakeHash),
      secretDigest: this.#me.digest,
    });
    return this.#finish(noisePm(this.#me.peerId, from, EtPacketType.NoiseHandshakeMsg3, this.#noise.writeMessage(msg3)));
  }

  #onMsg3(body: Uint8Array): SecureStep {
    const m = decodeMsg3(this.#noise.readMessage(body));
    if (!sameConnId(m.aConnIdEcho, this.#theirConnId) || !sameConnId(m.bConnIdEcho, this.#connId)) return { fail: 'secure-conn-id' };
    if (!equal(m.secretProof, secretProof(this.#me.networkSecret, this.#proofHash!))) return { fail: 'wrong-secret' };
    if (!equal(m.secretDigest, this.#me.digest)) return { fail: 'wrong-secret' };
    return this.#finish(undefined);
  }

  #finish(send: Uint8Array | undefined): SecureStep {
    const remoteStatic = this.#noise.remoteStatic!;
    if (!this.#me.sessions.pinStatic(this.#peerId, remoteStatic)) return { fail: 'secure-session-static-key-changed' };
    return { send, up: { peerId: this.#peerId, session: this.#held!, remoteStatic } };
  }
}
