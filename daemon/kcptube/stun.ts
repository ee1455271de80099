/**
 * STUN binding (RFC 5389), codec only: a Binding Request, and the mapped address out of a
 * Binding Success Response (XOR-MAPPED-ADDRESS, or the older MAPPED-ADDRESS). Parsing never throws.
 */

export const STUN_MAGIC_COOKIE = 0x2112a442;
const HEADER = 20;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const ATTR_MAPPED_ADDRESS = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;

export interface MappedAddress {
  address: string;
  port: number;
}

export function buildBindingRequest(txid: Uint8Array): Uint8Array {
  const b = new Uint8Array(HEADER);
  const v = new DataView(b.buffer);
  v.setUint16(0, BINDING_REQUEST);
  v.setUint16(2, 0);
  v.setUint32(4, STUN_MAGIC_COOKIE);
  b.set(txid.subarray(0, 12), 8);
  return b;
}

/** Looks like STUN (first two bits zero, the magic cookie): tells it from tunnel datagrams. */
export function isStun(b: Uint8Array): boolean {
  return b.length >= HEADER && (b[0]! & 0xc0) === 0 &&
    new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(4) === STUN_MAGIC_COOKIE;
}

/** The mapped address of a success response to `txid`, or null for anything else. */
export function parseBindingResponse(b: Uint8Array, txid: Uint8Array): MappedAddress | null {
  if (!isStun(b)) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v.getUint16(0) !== BINDING_SUCCESS) return null;
  for (let i = 0; i < 12; i++) if (b[8 + i] !== txid[i]) return null;
  const end = Math.min(b.length, HEADER + v.getUint16(2));
  let fallback: MappedAddress | null = null;
  for (let p = HEADER; p + 4 <= end;) {
    const type = v.getUint16(p);
    const len = v.getUint16(p + 2);
    const body = p + 4;
    if (body + len > end) break;
    if (type === ATTR_XOR_MAPPED_ADDRESS) {
      const a = readAddress(b, v, body, len, true);
      if (a !== null) return a;
    } else if (type === ATTR_MAPPED_ADDRESS) {
      fallback ??= readAddress(b, v, body, len, false);
    }
    p = body + ((len + 3) & ~3);
  }
  return fallback;
}

function readAddress(b: Uint8Array, v: DataView, o: number, len: number, xor: boolean): MappedAddress | null {
  if (len < 8) return null;
  const family = b[o + 1];
  const port = v.getUint16(o + 2) ^ (xor ? STUN_MAGIC_COOKIE >>> 16 : 0);
  if (family === 1) {
    const a = v.getUint32(o + 4) ^ (xor ? STUN_MAGIC_COOKIE : 0);
    return { address: [a >>> 24, (a >>> 16) & 0xff, (a >>> 8) & 0xff, a & 0xff].join('.'), port };
  }
  if (family === 2 && len >= 20) {
    const words: string[] = [];
    for (let i = 0; i < 16; i += 2) {
      // XOR key for IPv6: the cookie then the transaction id (bytes 4..19 of the header).
      const hi = b[o + 4 + i]! ^ (xor ? b[4 + i]! : 0);
      const lo = b[o + 5 + i]! ^ (xor ? b[5 + i]! : 0);
      words.push(((hi << 8) | lo).toString(16));
    }
    // The URL parser writes IPv6 in its canonical, compressed form.
    return { address: new URL(`http://[${words.join(':')}]/`).hostname.slice(1, -1), port };
  }
  return null;
}
