/**
 * What an EasyTier network derives from its name and secret (docs/easytier-wire.md): the 32-byte
 * secret digest carried in the handshake, and the 128/256-bit payload keys every node of the network
 * shares. All are SipHash-1-3(k=0) outputs, written big-endian, with earlier outputs fed back in.
 * Only the digest uses the network name.
 */
import { SipHash13 } from './siphash.js';

const utf8 = new TextEncoder();

function putBe64(out: Uint8Array, at: number, v: bigint): void {
  for (let i = 7; i >= 0; i--) {
    out[at + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

/** The handshake's network_secret_digest: d0..d3, each hashing everything produced before it. */
export function secretDigest(networkName: string, networkSecret: string): Uint8Array {
  const st = new SipHash13().write(utf8.encode(networkName)).write(utf8.encode(networkSecret));
  const out = new Uint8Array(32);
  for (let i = 0; i < 4; i++) {
    putBe64(out, 8 * i, st.finish());
    st.write(out.subarray(0, 8 * (i + 1)));
  }
  return out;
}

/** The key for aes-gcm (AES-128-GCM) and xor. */
export function key128(networkSecret: string): Uint8Array {
  const st = new SipHash13().write(utf8.encode(networkSecret));
  const out = new Uint8Array(16);
  putBe64(out, 0, st.finish());
  st.write(out.subarray(0, 8));
  putBe64(out, 8, st.finish());
  return out;
}

/** The key for aes-256-gcm and chacha20. */
export function key256(networkSecret: string): Uint8Array {
  const st = new SipHash13().write(utf8.encode(networkSecret)).write(utf8.encode('easytier-256bit-key'));
  const out = new Uint8Array(32);
  for (let i = 0; i < 4; i++) {
    st.write(out.subarray(0, 8 * i)).write(Uint8Array.of(i));
    putBe64(out, 8 * i, st.finish());
  }
  return out;
}

/** True if every byte is zero: the digest EasyTier sends when it does not vouch for the peer. */
export function isZeroDigest(d: Uint8Array): boolean {
  return d.every((b) => b === 0);
}
