/**
 * The protobuf wire format, hand-written for the few EasyTier messages a peer needs (proto3 as
 * prost encodes it: fields in number order, default values omitted, packed repeated scalars).
 * Control path only: messages are built and read as plain objects, a few per second per peer.
 *
 * 64-bit fields (session ids, transaction ids, route ids) are bigint; 32-bit ones are number.
 */
import { TstierError } from '../../errors.js';

const WT_VARINT = 0;
const WT_I64 = 1;
const WT_LEN = 2;
const WT_I32 = 5;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Appends fields in the order called; emit them in field-number order, as prost does. */
export class ProtoWriter {
  #chunks: number[] = [];
  #parts: Uint8Array[] = [];

  #varint(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      this.#chunks.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.#chunks.push(Number(x));
  }

  #flush(): void {
    if (this.#chunks.length > 0) {
      this.#parts.push(Uint8Array.from(this.#chunks));
      this.#chunks = [];
    }
  }

  #tag(no: number, wt: number): void {
    this.#varint(BigInt((no << 3) | wt));
  }

  /** uint32/uint64/int32/int64/enum; omitted when zero (proto3 default). Negative int32/64 take 10 bytes. */
  uint(no: number, v: number | bigint): this {
    if (v === 0 || v === 0n) return this;
    this.#tag(no, WT_VARINT);
    this.#varint(BigInt(v));
    return this;
  }

  /** A proto3 `optional` scalar: written even when zero (presence is the point). */
  optionalUint(no: number, v: number | bigint | undefined): this {
    if (v === undefined) return this;
    this.#tag(no, WT_VARINT);
    this.#varint(BigInt(v));
    return this;
  }

  bool(no: number, v: boolean | undefined): this {
    return v ? this.uint(no, 1) : this;
  }

  /** Raw bytes; omitted when empty unless `always` (for sub-messages, whose presence matters). */
  bytes(no: number, v: Uint8Array | undefined, always = false): this {
    if (v === undefined || (v.length === 0 && !always)) return this;
    this.#tag(no, WT_LEN);
    this.#varint(BigInt(v.length));
    this.#flush();
    this.#parts.push(v);
    return this;
  }

  string(no: number, v: string | undefined, always = false): this {
    return v === undefined ? this : this.bytes(no, utf8.encode(v), always);
  }

  /** A sub-message field: present even when its encoding is empty. */
  message(no: number, v: Uint8Array | undefined): this {
    return this.bytes(no, v, true);
  }

  /** A packed repeated uint32. */
  packed(no: number, vs: readonly number[]): this {
    if (vs.length === 0) return this;
    const inner = new ProtoWriter();
    for (const v of vs) inner.#varint(BigInt(v));
    return this.bytes(no, inner.finish());
  }

  finish(): Uint8Array {
    this.#flush();
    const total = this.#parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** One decoded field: `varint` for wire type 0 (and the fixed types, widened), `bytes` for type 2. */
export interface ProtoField {
  no: number;
  varint: bigint;
  bytes: Uint8Array;
}

const EMPTY = new Uint8Array(0);

const malformed = (what: string): TstierError => new TstierError('TSTIER_E_BAD_PACKET', `protobuf: ${what}`);

/**
 * Iterates the fields of one message. Throws TstierError(TSTIER_E_BAD_PACKET) on truncated or
 * malformed input; unknown fields are returned like known ones, for the caller to skip.
 */
export function* protoFields(buf: Uint8Array): Generator<ProtoField> {
  let at = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (at >= buf.length) throw malformed('truncated varint');
      const b = buf[at++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asUintN(64, v);
    }
    throw malformed('varint longer than 10 bytes');
  };
  const fixed = (n: number): bigint => {
    if (at + n > buf.length) throw malformed('truncated fixed field');
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[at + i]!);
    at += n;
    return v;
  };
  while (at < buf.length) {
    const key = varint();
    const no = Number(key >> 3n);
    const wt = Number(key & 7n);
    if (no === 0) throw malformed('field number 0');
    if (wt === WT_VARINT) yield { no, varint: varint(), bytes: EMPTY };
    else if (wt === WT_I64) yield { no, varint: fixed(8), bytes: EMPTY };
    else if (wt === WT_I32) yield { no, varint: fixed(4), bytes: EMPTY };
    else if (wt === WT_LEN) {
      const len = varint();
      if (len > BigInt(buf.length - at)) throw malformed('length runs past the end');
      const n = Number(len);
      yield { no, varint: 0n, bytes: buf.subarray(at, at + n) };
      at += n;
    } else throw malformed(`unsupported wire type ${wt}`);
  }
}

/** A uint32 field's value (the low 32 bits, as prost truncates). */
export const u32 = (f: ProtoField): number => Number(f.varint & 0xffffffffn);

/** An int64 field's value, sign restored. */
export const i64 = (f: ProtoField): bigint => BigInt.asIntN(64, f.varint);

export function str(f: ProtoField): string {
  try {
    return utf8Strict.decode(f.bytes);
  } catch {
    throw malformed(`field ${f.no} is not UTF-8`);
  }
}

/** The values of a repeated uint32 field, packed or not (proto3 accepts both). */
export function repeatedU32(f: ProtoField, into: number[]): void {
  if (f.bytes === EMPTY) {
    into.push(u32(f));
    return;
  }
  let at = 0;
  const b = f.bytes;
  while (at < b.length) {
    let v = 0;
    let shift = 0;
    for (;;) {
      if (at >= b.length || shift > 35) throw malformed('bad packed varint');
      const x = b[at++]!;
      v += (x & 0x7f) * 2 ** shift;
      shift += 7;
      if (x < 0x80) break;
    }
    into.push(v >>> 0);
  }
}
