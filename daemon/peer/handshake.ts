/**
 * The peer handshake, sans-IO: one round trip that proves both ends know the network secret
 * and agrees fresh per-session keys.
 *
 *   PSK  = HKDF-SHA256(ikm = secret, salt = "tstier-psk-v1", info = network name)
 *   init = kind 1 | ver | initiator id | ephemeral X25519 pub | timestamp | nonce | HMAC(PSK, ...)
 *   resp = kind 2 | ver | responder id | initiator id | ephemeral pub | init nonce | HMAC(PSK, init | resp...)
 *   keys = HKDF-SHA256(ikm = X25519(e_i, e_r), salt = PSK, info = label | SHA256(init | resp)) -> 2 x 32 bytes,
 *          one key per direction.
 *
 * The responder checks the MAC before anything else and answers a bad one with silence (a counter
 * only), so a scanner without the secret learns nothing, not even that a node listens.
 *
 * Replay: an init is accepted only if its timestamp is within `maxSkewMs` of the responder's clock
 * and its nonce was not seen in that span (a bounded cache). Beyond that, a replayed init can never
 * yield a session: the keys depend on the initiator's ephemeral private key, which the replayer
 * lacks, and the responder treats its side as established only after the first packet sealed with
 * those keys arrives (key confirmation, as WireGuard does). So the cache only stops the responder
 * from doing work and sending answers for replays; it is not what keeps replays out.
 */
import { createHash, createHmac, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes,
  timingSafeEqual, type KeyObject } from 'node:crypto';
import { readU32, writeU32 } from './wire.js';

export const HANDSHAKE_VERSION = 1;
const KIND_INIT = 1;
const KIND_RESP = 2;
const KEY_LEN = 32;
const NONCE_LEN = 16;
const MAC_LEN = 32;
export const INIT_LEN = 4 + 4 + KEY_LEN + 8 + NONCE_LEN + MAC_LEN; // 96
export const RESP_LEN = 4 + 4 + 4 + KEY_LEN + NONCE_LEN + MAC_LEN; // 92
const SESSION_LABEL = Buffer.from('tstier-peer-session-v1');
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export interface SessionKeys {
  /** Key for what this side sends. */
  send: Buffer;
  /** Key for what this side receives. */
  recv: Buffer;
}

export function derivePsk(networkName: string, networkSecret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(networkSecret, 'utf8'), Buffer.from('tstier-psk-v1'),
    Buffer.from(networkName, 'utf8'), 32));
}

interface Ephemeral {
  privateKey: KeyObject;
  publicRaw: Buffer;
}

function newEphemeral(): Ephemeral {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return { privateKey, publicRaw: Buffer.from(spki.subarray(spki.length - KEY_LEN)) };
}

function sharedSecret(own: KeyObject, peerRaw: Uint8Array): Buffer | null {
  try {
    const pub = createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, peerRaw]), format: 'der', type: 'spki' });
    const s = diffieHellman({ privateKey: own, publicKey: pub });
    // A low-order point gives an all-zero secret; refuse it rather than derive keys from nothing.
    return s.every((b) => b === 0) ? null : s;
  } catch {
    return null;
  }
}

function mac(psk: Buffer, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha256', psk);
  for (const p of parts) h.update(p);
  return h.digest();
}

function macOk(expected: Buffer, got: Uint8Array): boolean {
  return got.length === MAC_LEN && timingSafeEqual(expected, got);
}

function deriveKeys(shared: Buffer, psk: Buffer, init: Uint8Array, resp: Uint8Array, initiator: boolean): SessionKeys {
  const transcript = createHash('sha256').update(init).update(resp).digest();
  const okm = Buffer.from(hkdfSync('sha256', shared, psk, Buffer.concat([SESSION_LABEL, transcript]), 2 * KEY_LEN));
  const i2r = okm.subarray(0, KEY_LEN);
  const r2i = okm.subarray(KEY_LEN);
  return initiator ? { send: i2r, recv: r2i } : { send: r2i, recv: i2r };
}

function writeU64(b: Uint8Array, at: number, v: number): void {
  writeU32(b, at, v % 2 ** 32);
  writeU32(b, at + 4, Math.floor(v / 2 ** 32));
}

function readU64(b: Uint8Array, at: number): number {
  return readU32(b, at) + readU32(b, at + 4) * 2 ** 32;
}

/** The initiator's half: build the init, then complete with the responder's answer. */
export class HandshakeInitiator {
  readonly message: Buffer;
  private readonly eph = newEphemeral();

  constructor(private readonly psk: Buffer, readonly myPeerId: number, now: number) {
    const m = Buffer.alloc(INIT_LEN);
    m[0] = KIND_INIT;
    m[1] = HANDSHAKE_VERSION;
    writeU32(m, 4, myPeerId);
    this.eph.publicRaw.copy(m, 8);
    writeU64(m, 8 + KEY_LEN, Math.max(0, Math.floor(now)));
    randomBytes(NONCE_LEN).copy(m, 16 + KEY_LEN);
    mac(psk, m.subarray(0, INIT_LEN - MAC_LEN)).copy(m, INIT_LEN - MAC_LEN);
    this.message = m;
  }

  /** Keys and the responder's peer id, or null if `resp` is not a valid answer to our init. */
  complete(resp: Uint8Array): { peerId: number; keys: SessionKeys } | null {
    if (resp.length !== RESP_LEN || resp[0] !== KIND_RESP || resp[1] !== HANDSHAKE_VERSION) return null;
    if (!macOk(mac(this.psk, this.message, resp.subarray(0, RESP_LEN - MAC_LEN)), resp.subarray(RESP_LEN - MAC_LEN))) {
      return null;
    }
    if (readU32(resp, 8) !== this.myPeerId) return null;
    if (!Buffer.from(resp.subarray(12 + KEY_LEN, 12 + KEY_LEN + NONCE_LEN)).equals(this.nonce())) return null;
    const shared = sharedSecret(this.eph.privateKey, resp.subarray(12, 12 + KEY_LEN));
    if (!shared) return null;
    return { peerId: readU32(resp, 4), keys: deriveKeys(shared, this.psk, this.message, resp, true) };
  }

  private nonce(): Buffer {
    return this.message.subarray(16 + KEY_LEN, 16 + KEY_LEN + NONCE_LEN);
  }
}

export type InitRejection = 'malformed' | 'mac' | 'stale' | 'replay' | 'key';

export interface AcceptedInit {
  initiatorPeerId: number;
  response: Buffer;
  keys: SessionKeys;
}

export interface ResponderOptions {
  /** How far an init's timestamp may be from our clock. */
  maxSkewMs?: number;
  /** Bound on remembered nonces; inits beyond it are refused until old ones age out. */
  maxRemembered?: number;
}

/**
 * The responder's half. One per node (not per connection): the nonce cache must see every init
 * that reaches any listener.
 */
export class HandshakeResponder {
  readonly rejected: Record<InitRejection, number> = { malformed: 0, mac: 0, stale: 0, replay: 0, key: 0 };
  private readonly maxSkewMs: number;
  private readonly maxRemembered: number;
  /** nonce (hex) -> the time it stops mattering. Insertion order is expiry order (roughly). */
  private readonly seen = new Map<string, number>();

  constructor(private readonly psk: Buffer, private readonly myPeerId: number, opts: ResponderOptions = {}) {
    this.maxSkewMs = opts.maxSkewMs ?? 60_000;
    this.maxRemembered = opts.maxRemembered ?? 16_384;
  }

  accept(init: Uint8Array, now: number): AcceptedInit | InitRejection {
    if (init.length !== INIT_LEN || init[0] !== KIND_INIT || init[1] !== HANDSHAKE_VERSION) return this.reject('malformed');
    if (!macOk(mac(this.psk, init.subarray(0, INIT_LEN - MAC_LEN)), init.subarray(INIT_LEN - MAC_LEN))) {
      return this.reject('mac');
    }
    const ts = readU64(init, 8 + KEY_LEN);
    if (Math.abs(ts - now) > this.maxSkewMs) return this.reject('stale');
    this.forget(now);
    const nonce = Buffer.from(init.subarray(16 + KEY_LEN, 16 + KEY_LEN + NONCE_LEN)).toString('hex');
    if (this.seen.has(nonce) || this.seen.size >= this.maxRemembered) return this.reject('replay');
    const eph = newEphemeral();
    const shared = sharedSecret(eph.privateKey, init.subarray(8, 8 + KEY_LEN));
    if (!shared) return this.reject('key');
    this.seen.set(nonce, ts + this.maxSkewMs);

    const initiatorPeerId = readU32(init, 4);
    const r = Buffer.alloc(RESP_LEN);
    r[0] = KIND_RESP;
    r[1] = HANDSHAKE_VERSION;
    writeU32(r, 4, this.myPeerId);
    writeU32(r, 8, initiatorPeerId);
    eph.publicRaw.copy(r, 12);
    r.set(init.subarray(16 + KEY_LEN, 16 + KEY_LEN + NONCE_LEN), 12 + KEY_LEN);
    mac(this.psk, init, r.subarray(0, RESP_LEN - MAC_LEN)).copy(r, RESP_LEN - MAC_LEN);
    return { initiatorPeerId, response: r, keys: deriveKeys(shared, this.psk, init, r, false) };
  }

  private reject(why: InitRejection): InitRejection {
    this.rejected[why]++;
    return why;
  }

  /** Drops nonces whose init could no longer pass the timestamp check anyway. */
  private forget(now: number): void {
    for (const [nonce, until] of this.seen) {
      if (until >= now) break;
      this.seen.delete(nonce);
    }
  }
}
