/**
 * SipHash-1-3 with both keys zero, streaming: what Rust's `DefaultHasher::new()` computes and what
 * EasyTier derives its secret digest and payload keys from. `finish()` does not reset the state, so
 * more bytes can be absorbed after it (EasyTier re-feeds its own outputs that way).
 *
 * BigInt arithmetic: this runs a few times per handshake or key setup, never per packet.
 */
const MASK = (1n << 64n) - 1n;

const rotl = (x: bigint, b: bigint): bigint => ((x << b) | (x >> (64n - b))) & MASK;

export class SipHash13 {
  #v0 = 0x736f6d6570736575n; // "somepseudorandomlygeneratedbytes" xor k0/k1 = 0
  #v1 = 0x646f72616e646f6dn;
  #v2 = 0x6c7967656e657261n;
  #v3 = 0x7465646279746573n;
  #tail = new Uint8Array(8);
  #ntail = 0;
  #length = 0;

  /** Absorbs bytes; any split of the same stream gives the same state. */
  write(bytes: Uint8Array): this {
    for (const b of bytes) {
      this.#tail[this.#ntail++] = b;
      if (this.#ntail === 8) {
        this.#compress(this.#word(this.#tail, 8));
        this.#ntail = 0;
      }
    }
    this.#length += bytes.length;
    return this;
  }

  /** The 64-bit hash of everything absorbed so far; the state is left as it was. */
  finish(): bigint {
    const b = (BigInt(this.#length & 0xff) << 56n) | this.#word(this.#tail, this.#ntail);
    let [v0, v1, v2, v3] = [this.#v0, this.#v1, this.#v2, this.#v3];
    v3 ^= b;
    [v0, v1, v2, v3] = round(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xffn;
    for (let i = 0; i < 3; i++) [v0, v1, v2, v3] = round(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
  }

  #compress(m: bigint): void {
    this.#v3 ^= m;
    [this.#v0, this.#v1, this.#v2, this.#v3] = round(this.#v0, this.#v1, this.#v2, this.#v3);
    this.#v0 ^= m;
  }

  /** The first n bytes of buf as a little-endian word. */
  #word(buf: Uint8Array, n: number): bigint {
    let w = 0n;
    for (let i = n - 1; i >= 0; i--) w = (w << 8n) | BigInt(buf[i]!);
    return w;
  }
}

function round(v0: bigint, v1: bigint, v2: bigint, v3: bigint): [bigint, bigint, bigint, bigint] {
  v0 = (v0 + v1) & MASK;
  v1 = rotl(v1, 13n) ^ v0;
  v0 = rotl(v0, 32n);
  v2 = (v2 + v3) & MASK;
  v3 = rotl(v3, 16n) ^ v2;
  v0 = (v0 + v3) & MASK;
  v3 = rotl(v3, 21n) ^ v0;
  v2 = (v2 + v1) & MASK;
  v1 = rotl(v1, 17n) ^ v2;
  v2 = rotl(v2, 32n);
  return [v0, v1, v2, v3];
}
