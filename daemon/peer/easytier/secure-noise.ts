/**
 * The Noise XX handshake EasyTier's secure mode runs on a PeerConn, sans-IO:
 * Noise_XX_25519_ChaChaPoly_SHA256 (the Noise Protocol Framework, revision 34), only the three
 * handshake messages and the handshake hash. EasyTier never uses Noise's transport states (they
 * need in-order delivery); its datagrams are keyed from a root key the responder sends inside msg2
 * (secure-datagram.ts), so `split()` is not needed here.
 *
 *   -> e
 *   <- e, ee, s, es
 *   -> s, se
 *
 * X25519, ChaCha20-Poly1305 and SHA-256 come from node:crypto. Handshakes happen once per link, so
 * allocating per call is fine here.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { TstierError } from '../../errors.js';

export const NOISE_PROTOCOL = 'Noise_XX_25519_ChaChaPoly_SHA256';
const DH_LEN = 32;
const HASH_LEN = 32;
const TAG_LEN = 16;

// DER wrappers that turn a raw 32-byte X25519 key into what node:crypto imports.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

export interface X25519KeyPair {
  /** Raw 32-byte private key (as EasyTier's config holds it, base64). */
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

function privateKeyObject(raw: Uint8Array): KeyObject {
  if (raw.length !== DH_LEN) throw new TstierError('TSTIER_E_BAD_CONFIG', `x25519 private key is ${raw.length} bytes, not 32`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: 'der', type: 'pkcs8' });
}

/** The key pair for a raw private key. */
export function x25519FromPrivate(privateKey: Uint8Array): X25519KeyPair {
  const der = createPublicKey(privateKeyObject(privateKey)).export({ format: 'der', type: 'spki' });
  return { privateKey: Uint8Array.from(privateKey), publicKey: new Uint8Array(der.subarray(der.length - DH_LEN)) };
}

export function x25519Generate(): X25519KeyPair {
  const der = generateKeyPairSync('x25519').privateKey.export({ format: 'der', type: 'pkcs8' });
  return x25519FromPrivate(new Uint8Array(der.subarray(der.length - DH_LEN)));
}

function dh(priv: Uint8Array, pub: Uint8Array): Uint8Array {
  const publicKey = createPublicKey({ key: Buffer.concat([SPKI_X25519, pub]), format: 'der', type: 'spki' });
  return new Uint8Array(diffieHellman({ privateKey: privateKeyObject(priv), publicKey }));
}

const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

const hmac = (key: Uint8Array, ...parts: Uint8Array[]): Uint8Array => {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

/** Noise's HKDF (two outputs; not RFC 5869's: no info, chained counters 0x01, 0x02). */
function noiseHkdf(ck: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const temp = hmac(ck, ikm);
  const o1 = hmac(temp, Uint8Array.of(1));
  return [o1, hmac(temp, o1, Uint8Array.of(2))];
}

/** ChaChaPoly's Noise nonce: 32 zero bits, then the 64-bit counter little-endian. */
function nonceFor(n: number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32LE(n >>> 0, 4);
  nonce.writeUInt32LE(Math.floor(n / 2 ** 32), 8);
  return nonce;
}

/** Thrown when a handshake message does not decrypt or is cut short: the handshake is over. */
export class NoiseError extends TstierError {
  constructor(what: string) {
    super('TSTIER_E_BAD_PACKET', `noise: ${what}`);
  }
}

class SymmetricState {
  ck: Uint8Array;
  h: Uint8Array;
  #k: Uint8Array | null = null;
  #n = 0;

  constructor(protocolName: string) {
    const name = new TextEncoder().encode(protocolName);
    // A name of at most HASHLEN bytes is zero-padded, not hashed.
    this.h = name.length <= HASH_LEN ? Uint8Array.from({ length: HASH_LEN }, (_, i) => name[i] ?? 0) : sha256(name);
    this.ck = this.h;
  }

  mixHash(data: Uint8Array): void {
    this.h = sha256(this.h, data);
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, k] = noiseHkdf(this.ck, ikm);
    this.ck = ck;
    this.#k = k;
    this.#n = 0;
  }

  encryptAndHash(plain: Uint8Array): Uint8Array {
    let out: Uint8Array = plain;
    if (this.#k) {
      const c = createCipheriv('chacha20-poly1305', this.#k, nonceFor(this.#n++), { authTagLength: TAG_LEN });
      c.setAAD(this.h, { plaintextLength: plain.length });
      out = new Uint8Array(Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]));
    }
    this.mixHash(out);
    return out;
  }

  decryptAndHash(cipher: Uint8Array): Uint8Array {
    let out: Uint8Array = cipher;
    if (this.#k) {
      if (cipher.length < TAG_LEN) throw new NoiseError('ciphertext shorter than its tag');
      const d = createDecipheriv('chacha20-poly1305', this.#k, nonceFor(this.#n), { authTagLength: TAG_LEN });
      d.setAAD(this.h, { plaintextLength: cipher.length - TAG_LEN });
      d.setAuthTag(cipher.subarray(cipher.length - TAG_LEN));
      try {
        out = new Uint8Array(Buffer.concat([d.update(cipher.subarray(0, cipher.length - TAG_LEN)), d.final()]));
      } catch {
        throw new NoiseError('handshake message failed authentication');
      }
      this.#n++;
    }
    this.mixHash(cipher);
    return out;
  }

  /** Bytes a field of `len` plaintext bytes takes on the wire once a key is set. */
  sealedLen(len: number): number {
    return this.#k ? len + TAG_LEN : len;
  }
}

export interface NoiseXXOptions {
  initiator: boolean;
  prologue: Uint8Array;
  staticKey: X25519KeyPair;
  /** For test vectors only; a fresh ephemeral key is generated otherwise. */
  ephemeralKey?: X25519KeyPair;
}

/**
 * One side of an XX handshake. Messages alternate: the initiator writes 1 and 3, the responder
 * writes 2; each side reads the other's. Every read or write advances the state; any error leaves
 * it unusable (the caller closes the link).
 */
export class NoiseXX {
  readonly initiator: boolean;
  readonly #ss: SymmetricState;
  readonly #s: X25519KeyPair;
  readonly #e: X25519KeyPair;
  #re: Uint8Array | null = null;
  #rs: Uint8Array | null = null;
  /** Index of the next message (0, 1, 2); 3 when complete. */
  #step = 0;

  constructor(o: NoiseXXOptions) {
    this.initiator = o.initiator;
    this.#s = o.staticKey;
    this.#e = o.ephemeralKey ?? x25519Generate();
    this.#ss = new SymmetricState(NOISE_PROTOCOL);
    this.#ss.mixHash(o.prologue);
  }

  /** The handshake hash so far (EasyTier binds its secret proof to it at a fixed point). */
  get handshakeHash(): Uint8Array {
    return this.#ss.h;
  }

  /** The other side's static public key, once its message carrying it was read. */
  get remoteStatic(): Uint8Array | null {
    return this.#rs;
  }

  get complete(): boolean {
    return this.#step === 3;
  }

  writeMessage(payload: Uint8Array): Uint8Array {
    this.#expect(true);
    const parts: Uint8Array[] = [];
    const ss = this.#ss;
    if (this.#step === 0) {
      parts.push(this.#e.publicKey);
      ss.mixHash(this.#e.publicKey);
    } else if (this.#step === 1) {
      parts.push(this.#e.publicKey);
      ss.mixHash(this.#e.publicKey);
      ss.mixKey(dh(this.#e.privateKey, this.#re!)); // ee
      parts.push(ss.encryptAndHash(this.#s.publicKey));
      ss.mixKey(dh(this.#s.privateKey, this.#re!)); // es (responder side)
    } else {
      parts.push(ss.encryptAndHash(this.#s.publicKey));
      ss.mixKey(dh(this.#s.privateKey, this.#re!)); // se (initiator side)
    }
    parts.push(ss.encryptAndHash(payload));
    this.#step++;
    return new Uint8Array(Buffer.concat(parts));
  }

  readMessage(message: Uint8Array): Uint8Array {
    this.#expect(false);
    const ss = this.#ss;
    let at = 0;
    const take = (n: number): Uint8Array => {
      if (message.length - at < n) throw new NoiseError(`message ${this.#step + 1} is too short`);
      const out = message.subarray(at, at + n);
      at += n;
      return out;
    };
    if (this.#step === 0) {
      this.#re = Uint8Array.from(take(DH_LEN));
      ss.mixHash(this.#re);
    } else if (this.#step === 1) {
      this.#re = Uint8Array.from(take(DH_LEN));
      ss.mixHash(this.#re);
      ss.mixKey(dh(this.#e.privateKey, this.#re)); // ee
      this.#rs = ss.decryptAndHash(take(ss.sealedLen(DH_LEN)));
      ss.mixKey(dh(this.#e.privateKey, this.#rs)); // es (initiator side)
    } else {
      this.#rs = ss.decryptAndHash(take(ss.sealedLen(DH_LEN)));
      ss.mixKey(dh(this.#e.privateKey, this.#rs)); // se (responder side)
    }
    const payload = ss.decryptAndHash(message.subarray(at));
    this.#step++;
    return payload;
  }

  #expect(writing: boolean): void {
    if (this.#step >= 3) throw new NoiseError('handshake already complete');
    // The initiator writes messages 0 and 2, the responder message 1.
    const initiatorTurn = this.#step !== 1;
    if ((initiatorTurn === this.initiator) !== writing) throw new NoiseError(`message ${this.#step + 1} is not ours to ${writing ? 'write' : 'read'}`);
  }
}
