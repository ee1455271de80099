/**
 * AES-256-GCM for session packets, one key per direction:
 *
 *   [header 16 = AAD][counter u64 LE][ciphertext n][tag 16]     nonce = 4 zero bytes + the counter
 *
 * Two interchangeable implementations with identical output: the peer addon (native/, one OpenSSL
 * context per key, bytes in place: ~1 us a 1400-byte packet) and node:crypto, which must build a
 * cipher object per packet (~4 us, plus garbage) and serves when the addon is not built.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { peerAddon, PEER_ADDON_FILE, type AeadHandle, type PeerAddon } from './native.js';
import { PM_HEADER_LEN } from './wire.js';

export const COUNTER_LEN = 8;
export const TAG_LEN = 16;
/** Where the ciphertext starts in a sealed packet. */
const DATA_AT = PM_HEADER_LEN + COUNTER_LEN;
const CIPHER = 'aes-256-gcm';

export interface PacketSealer {
  /** `out[at..]` holds the header and counter; writes ciphertext then tag after them (out has room). */
  seal(out: Buffer, at: number, payload: Uint8Array): void;
}

export interface PacketOpener {
  /** The plaintext of a whole sealed packet, or null if it does not authenticate. May decrypt in place. */
  open(wire: Uint8Array): Buffer | null;
}

/** Which implementation the ciphers use; tests pin one to compare them. */
export type AeadImpl = 'native' | 'node';

export function defaultAeadImpl(): AeadImpl {
  return peerAddon() ? 'native' : 'node';
}

export function packetSealer(key: Uint8Array, impl: AeadImpl = defaultAeadImpl()): PacketSealer {
  return impl === 'native' ? new NativeSealer(key) : new NodeSealer(key);
}

export function packetOpener(key: Uint8Array, impl: AeadImpl = defaultAeadImpl()): PacketOpener {
  return impl === 'native' ? new NativeOpener(key) : new NodeOpener(key);
}

function nativeAddon(): PeerAddon {
  const addon = peerAddon();
  if (!addon) throw new Error(`peer addon not built (${PEER_ADDON_FILE})`);
  return addon;
}

class NativeSealer implements PacketSealer {
  private readonly native = nativeAddon();
  private readonly handle: AeadHandle;
  constructor(key: Uint8Array) {
    this.handle = this.native.aeadCreate(key, true);
  }

  seal(out: Buffer, at: number, payload: Uint8Array): void {
    this.native.aeadSeal(this.handle, out, at, payload);
  }
}

class NativeOpener implements PacketOpener {
  private readonly native = nativeAddon();
  private readonly handle: AeadHandle;
  constructor(key: Uint8Array) {
    this.handle = this.native.aeadCreate(key, false);
  }

  open(wire: Uint8Array): Buffer | null {
    if (!this.native.aeadOpen(this.handle, wire)) return null;
    return Buffer.from(wire.buffer, wire.byteOffset + DATA_AT, wire.length - DATA_AT - TAG_LEN);
  }
}

/** The nonce of the packet at `wire[at..]`, in a scratch buffer reused per packet. */
function nonceOf(iv: Buffer, wire: Uint8Array, at: number): Buffer {
  iv.set(wire.subarray(at + PM_HEADER_LEN, at + DATA_AT), 4);
  return iv;
}

class NodeSealer implements PacketSealer {
  /** Parsed once: a KeyObject spares each per-packet cipher from importing raw key bytes. */
  private readonly key: KeyObject;
  private readonly iv = Buffer.alloc(12);
  constructor(key: Uint8Array) {
    this.key = createSecretKey(key);
  }

  seal(out: Buffer, at: number, payload: Uint8Array): void {
    const c = createCipheriv(CIPHER, this.key, nonceOf(this.iv, out, at), { authTagLength: TAG_LEN });
    c.setAAD(out.subarray(at, at + PM_HEADER_LEN));
    c.update(payload).copy(out, at + DATA_AT);
    c.final();
    c.getAuthTag().copy(out, at + DATA_AT + payload.length);
  }
}

class NodeOpener implements PacketOpener {
  private readonly key: KeyObject;
  private readonly iv = Buffer.alloc(12);
  constructor(key: Uint8Array) {
    this.key = createSecretKey(key);
  }

  open(wire: Uint8Array): Buffer | null {
    const tagAt = wire.length - TAG_LEN;
    try {
      const d = createDecipheriv(CIPHER, this.key, nonceOf(this.iv, wire, 0), { authTagLength: TAG_LEN });
      d.setAAD(wire.subarray(0, PM_HEADER_LEN));
      d.setAuthTag(wire.subarray(tagAt));
      const plain = d.update(wire.subarray(DATA_AT, tagAt));
      d.final();
      return plain;
    } catch {
      return null;
    }
  }
}
