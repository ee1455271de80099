/**
 * The integrity tag of quinn-plaintext, the null QUIC crypto EasyTier's QUIC proxy uses: no header
 * protection, no encryption, and every packet ends with 8 bytes =
 * SeaHash(u64_le(len(H)) ‖ H ‖ u64_le(len(P)) ‖ P), written big-endian, where H is the header up to
 * the packet number and P the frames. SeaHash with its default seeds.
 *
 * The QUIC core computes it itself (wasm/quic/src/plaintext.rs); this independent version, checked
 * against SeaHash's reference vector, is what the tests hold the core's packets to.
 */
const MASK = (1n << 64n) - 1n;
const SEEDS = [0x16f11fe89b0d677cn, 0xb480a793d8e6c86cn, 0x6fe2e5aaf078ebc9n, 0x14f994a4c5259381n] as const;
const PRIME = 0x6eed0e9da4d94a4fn;

function diffuse(x: bigint): bigint {
  x = (x * PRIME) & MASK;
  x ^= (x >> 32n) >> (x >> 60n);
  return (x * PRIME) & MASK;
}

/** SeaHash of `buf` with the default seeds: 8-byte LE words dealt round-robin to four lanes. */
export function seahash(buf: Uint8Array): bigint {
  const lanes: bigint[] = [...SEEDS];
  for (let at = 0, i = 0; at < buf.length; at += 8, i++) {
    let w = 0n;
    for (let j = Math.min(at + 8, buf.length) - 1; j >= at; j--) w = (w << 8n) | BigInt(buf[j]!);
    lanes[i & 3] = diffuse(lanes[i & 3]! ^ w);
  }
  return diffuse(lanes[0]! ^ lanes[1]! ^ lanes[2]! ^ lanes[3]! ^ BigInt(buf.length));
}

/** quinn-plaintext's 8-byte tag for a packet with header `h` (through the packet number) and frames `p`. */
export function plaintextTag(h: Uint8Array, p: Uint8Array): Uint8Array {
  const msg = new Uint8Array(16 + h.length + p.length);
  const dv = new DataView(msg.buffer);
  dv.setBigUint64(0, BigInt(h.length), true);
  msg.set(h, 8);
  dv.setBigUint64(8 + h.length, BigInt(p.length), true);
  msg.set(p, 16 + h.length);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, seahash(msg), false);
  return out;
}
