/**
 * The frames a proxied TCP flow sends inside its reliable carrier stream (a KCP conversation or a
 * QUIC stream). The carrier gives ordered, reliable bytes; these frames add what a TCP flow needs on
 * top: where to dial (OPEN, first frame from the initiator, so a lost open is retransmitted by the
 * carrier itself), how the dial went (STATUS), data, half-close (FIN) and abort (RST).
 *
 * Frame: type u8 | length u16 BE | payload. DATA payloads are at most 65535 bytes.
 */
import { formatIpAddress, parseIpAddress } from '../packet/address.js';

export const enum FrameType {
  Open = 1,
  Status = 2,
  Data = 3,
  Fin = 4,
  Rst = 5,
}

export const FRAME_HEADER = 3;
export const MAX_FRAME_PAYLOAD = 0xffff;

/** Outcome of the remote dial, carried in STATUS. Mirrors what a plain TCP connect would see. */
export const enum DialStatus {
  Connected = 0,
  /** The destination answered with a reset: the application must see ECONNREFUSED. */
  Refused = 1,
  /** No answer from the destination: the application must see a timeout. */
  Unreachable = 2,
  /** The destination node's policy forbids it (input disabled, protected port). */
  Denied = 3,
}

export interface SocketAddr {
  /** Dotted IPv4 or RFC 5952 IPv6 text. */
  ip: string;
  port: number;
}

export interface OpenRequest {
  src: SocketAddr;
  dst: SocketAddr;
  /** Optimistic mode: the initiator already accepted the local connection; data may follow at once. */
  optimistic: boolean;
}

const OPEN_VERSION = 1;
const FLAG_OPTIMISTIC = 1;

function addrBytes(a: SocketAddr): Uint8Array {
  const ip = parseIpAddress(a.ip);
  if (!ip) throw new RangeError(`not an IP address: ${a.ip}`);
  return ip;
}

function writeAddr(out: Uint8Array, off: number, ip: Uint8Array, port: number): number {
  out[off++] = ip.length === 4 ? 4 : 6;
  out.set(ip, off);
  off += ip.length;
  out[off++] = port >>> 8;
  out[off++] = port & 0xff;
  return off;
}

function readAddr(buf: Uint8Array, off: number): { addr: SocketAddr; next: number } | null {
  const family = buf[off];
  const ipLen = family === 4 ? 4 : family === 6 ? 16 : -1;
  if (ipLen < 0 || off + 1 + ipLen + 2 > buf.length) return null;
  const ipBytes = buf.subarray(off + 1, off + 1 + ipLen);
  const ip = formatIpAddress(ipBytes);
  const p = off + 1 + ipLen;
  return { addr: { ip, port: (buf[p]! << 8) | buf[p + 1]! }, next: p + 2 };
}

/** Encodes a whole OPEN frame (header included). Throws RangeError on an address that is not an IP. */
export function encodeOpen(req: OpenRequest): Uint8Array {
  const src = addrBytes(req.src);
  const dst = addrBytes(req.dst);
  const len = 2 + (3 + src.length) + (3 + dst.length);
  const out = new Uint8Array(FRAME_HEADER + len);
  out[0] = FrameType.Open;
  out[1] = len >>> 8;
  out[2] = len & 0xff;
  out[3] = OPEN_VERSION;
  out[4] = req.optimistic ? FLAG_OPTIMISTIC : 0;
  writeAddr(out, writeAddr(out, 5, src, req.src.port), dst, req.dst.port);
  return out;
}

/** Decodes an OPEN frame's payload; null if it is malformed or of an unknown version. */
export function decodeOpen(payload: Uint8Array): OpenRequest | null {
  if (payload.length < 2 || payload[0] !== OPEN_VERSION) return null;
  const src = readAddr(payload, 2);
  if (!src) return null;
  const dst = readAddr(payload, src.next);
  if (!dst || dst.next !== payload.length) return null;
  return { src: src.addr, dst: dst.addr, optimistic: (payload[1]! & FLAG_OPTIMISTIC) !== 0 };
}

/** Encodes a frame header for `type` with a payload of `len` bytes into `out` at `off`. */
export function writeFrameHeader(out: Uint8Array, off: number, type: FrameType, len: number): void {
  out[off] = type;
  out[off + 1] = len >>> 8;
  out[off + 2] = len & 0xff;
}

/** A payload-less or one-byte control frame (STATUS, FIN, RST). */
export function encodeControl(type: FrameType.Status | FrameType.Fin | FrameType.Rst, status?: DialStatus): Uint8Array {
  const hasByte = type === FrameType.Status;
  const out = new Uint8Array(FRAME_HEADER + (hasByte ? 1 : 0));
  writeFrameHeader(out, 0, type, hasByte ? 1 : 0);
  if (hasByte) out[3] = status ?? DialStatus.Connected;
  return out;
}

export interface Frame {
  type: FrameType;
  /** A view into the reader's buffer, valid until the next call to `next()`. */
  payload: Uint8Array;
}

/**
 * Reassembles frames from a byte stream delivered in arbitrary pieces. Keeps at most one partial
 * frame; a frame of an unknown type is a protocol error (the carrier resets the flow).
 */
export class FrameReader {
  private buf: Uint8Array = new Uint8Array(0);
  private start = 0;
  private end = 0;
  /** Whether `buf` is our own copy; otherwise it is the caller's and must not outlive push(). */
  private owned = true;
  private readonly frame: Frame = { type: FrameType.Data, payload: new Uint8Array(0) };

  /** Adds bytes. Payloads returned by next() before this call are no longer valid. */
  push(bytes: Uint8Array): void {
    const pending = this.end - this.start;
    if (pending === 0) {
      // Common case: nothing buffered, so parse straight out of the caller's bytes.
      this.buf = bytes;
      this.start = 0;
      this.end = bytes.length;
      this.owned = false;
      return;
    }
    const joined = new Uint8Array(pending + bytes.length);
    joined.set(this.buf.subarray(this.start, this.end), 0);
    joined.set(bytes, pending);
    this.buf = joined;
    this.start = 0;
    this.end = joined.length;
    this.owned = true;
  }

  /** The next whole frame, null if more bytes are needed, or 'error' on a malformed stream. */
  next(): Frame | null | 'error' {
    const avail = this.end - this.start;
    if (avail < FRAME_HEADER) return this.keepTail();
    const b = this.buf;
    const type = b[this.start]!;
    if (type < FrameType.Open || type > FrameType.Rst) return 'error';
    const len = (b[this.start + 1]! << 8) | b[this.start + 2]!;
    if (avail < FRAME_HEADER + len) return this.keepTail();
    this.frame.type = type as FrameType;
    this.frame.payload = b.subarray(this.start + FRAME_HEADER, this.start + FRAME_HEADER + len);
    this.start += FRAME_HEADER + len;
    return this.frame;
  }

  /** Buffered bytes not yet returned as frames. */
  get pending(): number {
    return this.end - this.start;
  }

  /** A partial frame left in the caller's buffer is copied, since that buffer may be reused. */
  private keepTail(): null {
    if (!this.owned && this.start < this.end) {
      this.buf = this.buf.slice(this.start, this.end);
      this.end -= this.start;
      this.start = 0;
      this.owned = true;
    }
    return null;
  }
}
