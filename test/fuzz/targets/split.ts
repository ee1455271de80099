/**
 * How one fuzz input becomes several: a datagram sequence ([u16 LE length][bytes]..., the last
 * length clamped to what is left) or a byte stream cut into pieces (the first byte sets the piece
 * size), so stateful parsers are fed the way their adapters feed them, and the mutator can change
 * the sequence and the cuts as it changes any other byte.
 */

export function datagrams(input: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < input.length; ) {
    const len = at + 1 < input.length ? input[at]! | (input[at + 1]! << 8) : 0;
    at += 2;
    const end = Math.min(input.length, at + len);
    out.push(input.subarray(at, end));
    at = end;
  }
  return out;
}

export function joinDatagrams(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + 2 + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out[at] = p.length & 0xff;
    out[at + 1] = p.length >> 8;
    out.set(p, at + 2);
    at += 2 + p.length;
  }
  return out;
}

/**
 * Calls `fn` with each piece of a stream input in order; the piece size comes from the control byte:
 * 1 + c²/8 bytes for c below 0x80 (1..2017: byte-sized pieces for c < 3, most a few hundred bytes,
 * so trickled input is tried without every input costing a call per byte), or the whole stream at
 * once for 0x80 and up. `fn` returns false to stop.
 */
export function eachPiece(input: Uint8Array, fn: (piece: Uint8Array) => boolean | void): void {
  if (input.length === 0) return;
  const c = input[0]!;
  const size = c < 0x80 ? 1 + ((c * c) >> 3) : input.length;
  for (let at = 1; at < input.length; at += size) {
    if (fn(input.subarray(at, at + size)) === false) return;
  }
}

/** A stream input: the control byte, then the bytes. */
export function withControl(control: number, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length + 1);
  out[0] = control;
  out.set(bytes, 1);
  return out;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
