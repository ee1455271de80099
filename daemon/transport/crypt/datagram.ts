/**
 * The crypto layer of a kcp-go datagram, sealed and opened in place.
 *
 * Block ciphers (every name but null and aes-128-gcm):
 *   [0,16) random nonce | [16,20) CRC-32/IEEE LE of [20,end) | [20,end) payload
 *   then the cipher runs over the whole datagram from byte 0.
 * aes-128-gcm: [0,12) random nonce | AES-GCM ciphertext of the payload | 16-byte tag.
 *   The tag goes AFTER the payload: callers leave `tailroom` (16) spare bytes behind
 *   the payload in the buffer they pass to seal().
 * null: no header, no transformation.
 *
 * Buffers arrive with `headerSize` bytes reserved in front of the payload (the layers
 * above leave that headroom), so nothing is copied to make room.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { crc32Ieee } from '../checksum/crc32.js';
import { readU32Le, writeU32Le } from '../../packet/bytes.js';
import { isBlockCryptName, newBlockCrypt, OPENSSL_CFB, type CryptName } from './factory.js';
import { NativeFramedCrypt } from './native-framed.js';
import { transportAddon } from '../native.js';
import { NonceSource } from './nonce.js';
import { NONCE_SIZE, type BlockCrypt } from './types.js';

/** open() results below zero. */
export const OPEN_TOO_SHORT = -1;
export const OPEN_BAD_CRC = -2;
export const OPEN_BAD_TAG = -3;

export interface DatagramCrypt {
  /** The cipher actually in use (after kcptun's fallback to aes). */
  readonly name: CryptName;
  /** True when the requested name was unknown or its cipher failed to build, and aes is used instead. */
  readonly fellBack: boolean;
  /** Bytes in front of the payload: 20 (nonce + CRC), 12 (GCM nonce) or 0 (null). */
  readonly headerSize: number;
  /** Bytes after the payload that seal() appends: 16 (GCM tag) or 0. */
  readonly tailroom: number;
  /**
   * Seals buf[0, len), whose first headerSize bytes are the reserved header room and the
   * rest the payload; buf must have `tailroom` spare bytes past len.
   * Returns the datagram length to send (len + tailroom).
   */
  seal(buf: Uint8Array, len: number): number;
  /**
   * Optional, only where tailroom is 0: seal(d, d.length) of each datagrams[i] for i < count, in one
   * go (the addon's aes runs several datagrams' CFB chains at once).
   */
  sealMany?(datagrams: Uint8Array[], count: number): void;
  /**
   * Opens a received datagram buf[0, len) in place. Returns the payload's offset
   * (the payload ends at len - tailroom), or OPEN_TOO_SHORT / OPEN_BAD_CRC / OPEN_BAD_TAG.
   * Never throws, whatever the bytes.
   */
  open(buf: Uint8Array, len: number): number;
}

const CRC_OFFSET = NONCE_SIZE;
const CRC_HEADER_SIZE = NONCE_SIZE + 4;

class CrcFramedCrypt implements DatagramCrypt {
  readonly headerSize = CRC_HEADER_SIZE;
  readonly tailroom = 0;

  constructor(
    readonly name: CryptName,
    readonly fellBack: boolean,
    private readonly block: BlockCrypt,
    private readonly nonces: NonceSource,
  ) {}

  seal(buf: Uint8Array, len: number): number {
    this.nonces.fill(buf, 0, NONCE_SIZE);
    writeU32Le(buf, CRC_OFFSET, crc32Ieee(buf, CRC_HEADER_SIZE, len));
    this.block.encrypt(buf, len);
    return len;
  }

  open(buf: Uint8Array, len: number): number {
    if (len < CRC_HEADER_SIZE) return OPEN_TOO_SHORT;
    this.block.decrypt(buf, len);
    return readU32Le(buf, CRC_OFFSET) === crc32Ieee(buf, CRC_HEADER_SIZE, len) ? CRC_HEADER_SIZE : OPEN_BAD_CRC;
  }
}

const GCM_NONCE_SIZE = 12;
const GCM_TAG_SIZE = 16;

/**
 * kcp-go's AEAD mode. Node cannot rekey a GCM context with a new nonce, so each
 * datagram builds one; GCM is the slow choice here, aes (CFB) the fast one.
 */
class Aes128GcmCrypt implements DatagramCrypt {
  readonly name = 'aes-128-gcm';
  readonly fellBack = false;
  readonly headerSize = GCM_NONCE_SIZE;
  readonly tailroom = GCM_TAG_SIZE;
  private readonly key: Uint8Array;

  constructor(
    pass: Uint8Array,
    private readonly nonces: NonceSource,
  ) {
    this.key = pass.slice(0, 16);
  }

  seal(buf: Uint8Array, len: number): number {
    if (buf.length < len + GCM_TAG_SIZE) throw new RangeError('aes-128-gcm seal needs 16 bytes of tailroom');
    this.nonces.fill(buf, 0, GCM_NONCE_SIZE);
    const c = createCipheriv('aes-128-gcm', this.key, buf.subarray(0, GCM_NONCE_SIZE));
    buf.set(c.update(buf.subarray(GCM_NONCE_SIZE, len)), GCM_NONCE_SIZE);
    c.final();
    buf.set(c.getAuthTag(), len);
    return len + GCM_TAG_SIZE;
  }

  open(buf: Uint8Array, len: number): number {
    if (len < GCM_NONCE_SIZE + GCM_TAG_SIZE) return OPEN_TOO_SHORT;
    try {
      const d = createDecipheriv('aes-128-gcm', this.key, buf.subarray(0, GCM_NONCE_SIZE));
      d.setAuthTag(buf.subarray(len - GCM_TAG_SIZE, len));
      const plain = d.update(buf.subarray(GCM_NONCE_SIZE, len - GCM_TAG_SIZE));
      d.final(); // throws on a bad tag; only then may the plaintext replace the ciphertext
      buf.set(plain, GCM_NONCE_SIZE);
      return GCM_NONCE_SIZE;
    } catch {
      return OPEN_BAD_TAG;
    }
  }
}

class NullCrypt implements DatagramCrypt {
  readonly name = 'null';
  readonly fellBack = false;
  readonly headerSize = 0;
  readonly tailroom = 0;

  seal(_buf: Uint8Array, len: number): number {
    return len;
  }

  open(_buf: Uint8Array, _len: number): number {
    return 0;
  }
}

/** The crypto layer for a --crypt name and the 32 derived key bytes (see deriveKcptunKey). */
export function newDatagramCrypt(name: string, pass: Uint8Array): DatagramCrypt {
  if (name === 'null') return new NullCrypt();
  if (name === 'aes-128-gcm') return new Aes128GcmCrypt(pass, new NonceSource());
  const native = nativeCrypt(name, pass);
  if (native) return native;
  const resolved = newBlockCrypt(name, pass);
  return new CrcFramedCrypt(resolved.name, resolved.fellBack, resolved.block, new NonceSource());
}

/** The addon's framing for the OpenSSL ciphers (an unknown name falls back to aes, as kcptun does), or null. */
function nativeCrypt(name: string, pass: Uint8Array): DatagramCrypt | null {
  const addon = transportAddon();
  if (addon === null) return null;
  const known = isBlockCryptName(name);
  const use = known ? name : 'aes';
  if (!Object.hasOwn(OPENSSL_CFB, use)) return null;
  const [algorithm, keyLen] = OPENSSL_CFB[use as keyof typeof OPENSSL_CFB];
  try {
    return new NativeFramedCrypt(use, !known, addon, algorithm, pass.subarray(0, keyLen));
  } catch {
    return null; // this OpenSSL lacks the cipher: the JavaScript path decides (and falls back to aes)
  }
}
