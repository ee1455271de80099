/**
 * The Noise handshakes of EasyTier's secure mode, sans-IO (the Noise Protocol Framework, revision
 * 34): Noise_XX_25519_ChaChaPoly_SHA256 on a PeerConn, Noise_IK_25519_ChaChaPoly_SHA256 for a relay
 * session to a node further away. Only the handshake messages and the handshake hash: EasyTier never
 * uses Noise's transport states (they need in-order delivery); its datagrams are keyed from a root
 * key the responder sends inside its message (secure-datagram.ts), so `split()` is not needed here.
 *
 *   XX:  -> e                IK:  <- s (known beforehand)
 *        <- e, ee, s, es          -> e, es, s, ss
 *        -> s, se                 <- e, ee, se
 *
 * X25519, ChaCha20-Poly1305 and SHA-256 come from node:crypto. Handshakes happen once per link, so
 * allocating per call is fine here.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { TstierError } from '../../errors.js';

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

/** Noise's message tokens, and the two patterns EasyTier uses. */
type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss';
export type NoisePattern = 'XX' | 'IK';
const PATTERNS: Record<NoisePattern, { protocol: string; responderStaticKnown: boolean; messages: Token[][] }> = {
  // The PeerConn handshake: both static keys travel encrypted.
  XX: { protocol: 'Noise_XX_25519_ChaChaPoly_SHA256', responderStaticKnown: false, messages: [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']] },
  // The relay handshake: the initiator knows the responder's static key (from route sync).
  IK: { protocol: 'Noise_IK_25519_ChaChaPoly_SHA256', responderStaticKnown: true, messages: [['e', 'es', 's', 'ss'], ['e', 'ee', 'se']] },
};

export interface NoiseOptions {
  pattern: NoisePattern;
  initiator: boolean;
  prologue: Uint8Array;
  staticKey: X25519KeyPair;
  /** IK's initiator: the responder's static public key, known beforehand. */
  remoteStatic?: Uint8Array;
  /** For test vectors only; a fresh ephemeral key is generated otherwise. */
  ephemeralKey?: X25519KeyPair;
}

/**
 * One side of a handshake. Messages alternate, the initiator writing the first; each side reads the
 * other's. Every read or write advances the state; any error leaves it unusable (the caller ends
 * the handshake).
 */
export class NoiseHandshake {
  readonly initiator: boolean;
  readonly #messages: Token[][];
  readonly #ss: SymmetricState;
  readonly #s: X25519KeyPair;
  readonly #e: X25519KeyPair;
  #re: Uint8Array | null = null;
  #rs: Uint8Array | null;
  #step = 0;

  constructor(o: NoiseOptions) {
    const p = PATTERNS[o.pattern];
    this.initiator = o.initiator;
    this.#messages = p.messages;
    this.#s = o.staticKey;
    this.#e = o.ephemeralKey ?? x25519Generate();
    this.#rs = o.remoteStatic ? Uint8Array.from(o.remoteStatic) : null;
    if (p.responderStaticKnown && o.initiator && !this.#rs) throw new NoiseError(`${o.pattern} needs the responder's static key`);
    this.#ss = new SymmetricState(p.protocol);
    this.#ss.mixHash(o.prologue);
    if (p.responderStaticKnown) this.#ss.mixHash(o.initiator ? this.#rs! : this.#s.publicKey);
  }

  /** The handshake hash so far (EasyTier binds its secret proof to it at a fixed point). */
  get handshakeHash(): Uint8Array {
    return this.#ss.h;
  }

  /** The other side's static public key, once known. */
  get remoteStatic(): Uint8Array | null {
    return this.#rs;
  }

  get complete(): boolean {
    return this.#step === this.#messages.length;
  }

  writeMessage(payload: Uint8Array): Uint8Array {
    const tokens = this.#turn(true);
    const parts: Uint8Array[] = [];
    for (const t of tokens) {
      if (t === 'e') {
        parts.push(this.#e.publicKey);
        this.#ss.mixHash(this.#e.publicKey);
      } else if (t === 's') parts.push(this.#ss.encryptAndHash(this.#s.publicKey));
      else this.#ss.mixKey(this.#dh(t));
    }
    parts.push(this.#ss.encryptAndHash(payload));
    this.#step++;
    return new Uint8Array(Buffer.concat(parts));
  }

  readMessage(message: Uint8Array): Uint8Array {
    const tokens = this.#turn(false);
    let at = 0;
    const take = (n: number): Uint8Array => {
      if (message.length - at < n) throw new NoiseError(`message ${this.#step + 1} is too short`);
      const out = message.subarray(at, at + n);
      at += n;
      return out;
    };
    for (const t of tokens) {
      if (t === 'e') {
        this.#re = Uint8Array.from(take(DH_LEN));
        this.#ss.mixHash(this.#re);
      } else if (t === 's') this.#rs = this.#ss.decryptAndHash(take(this.#ss.sealedLen(DH_LEN)));
      else this.#ss.mixKey(this.#dh(t));
    }
    const payload = this.#ss.decryptAndHash(message.subarray(at));
    this.#step++;
    return payload;
  }

  /** A DH token from this side's view: the first letter is the initiator's key, the second the responder's. */
  #dh(t: Exclude<Token, 'e' | 's'>): Uint8Array {
    const mine = (t[this.initiator ? 0 : 1] === 'e' ? this.#e : this.#s).privateKey;
    const theirs = t[this.initiator ? 1 : 0] === 'e' ? this.#re : this.#rs;
    if (!theirs) throw new NoiseError(`token ${t} before the remote key`);
    return dh(mine, theirs);
  }

  #turn(writing: boolean): Token[] {
    const tokens = this.#messages[this.#step];
    if (!tokens) throw new NoiseError('handshake already complete');
    const initiatorTurn = this.#step % 2 === 0;
    if ((initiatorTurn === this.initiator) !== writing) throw new NoiseError(`message ${this.#step + 1} is not ours to ${writing ? 'write' : 'read'}`);
    return tokens;
  }
}
