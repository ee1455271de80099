/**
 * The frames a proxied TCP flow sends inside its reliable carrier stream (a KCP conversation or a
 * QUIC stream). The carrier gives ordered, reliable bytes; these frames add what a TCP flow needs on
 * top: where to dial (OPEN, first frame from the initiator, so a lost open is retransmitted by the
 * carrier itself), how the dial went (STATUS), data, half-close (FIN) and abort (RST).
 *
 * Frame: type u8 | length u16 BE | payload. DATA payloads are at most 65535 bytes.
 */
import type { SocketAddr } from '../packet/flow-key.js';

export const enum FrameType {
  Open = 1,
  Status = 2,
  Data = 3,
  Fin = 4,
  Rst = 5,
}

export const FRAME_HEADER = 3;
export const MAX_FRAME_PAYLOAD = 0xffff;
/**
 * Longest control payload (OPEN with two IPv6 addresses is 40 bytes). A longer one is a broken stream:
 * the reader re-copies a split control frame on every push, which a 64 KiB one trickled in would make
 * quadratic.
 */
export const MAX_CONTROL_PAYLOAD = 64;

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

/** Words for a DialStatus, as logs and the proxy table show it. */
export function dialStatusText(s: DialStatus): string {
  return ['connected', 'refused', 'unreachable', 'denied'][s] ?? `status ${s}`;
}

/** Where a flow goes, in binary (4 or 16 address bytes): text is for logs, the table and the RPC. */
export interface OpenRequest {
  src: SocketAddr;
  dst: SocketAddr;
  /** Optimistic mode: the initiator already accepted the local connection; data may follow at once. */
  optimistic: boolean;
}

const OPEN_VERSION = 1;
const FLAG_OPTIMISTIC = 1;

function addrBytes(a: SocketAddr): Uint8Array {
  if (a.ip.length !== 4 && a.ip.length !== 16) throw new RangeError(`an IP address is 4 or 16 bytes, not ${a.ip.length}`);
  return a.ip;
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
  // A copy (not Buffer's slice(), a view): the request outlives the stream bytes it was read from.
  const ip = new Uint8Array(buf.subarray(off + 1, off + 1 + ipLen));
  const p = off + 1 + ipLen;
  return { addr: { ip, port: (buf[p]! << 8) | buf[p + 1]! }, next: p + 2 };
}

/** Encodes a whole OPEN frame (header included). Throws RangeError on an address of neither length. */
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
  /**
   * Control frames (OPEN, STATUS, FIN, RST) come whole. DATA comes as it arrives: one frame's payload
   * may be delivered in several pieces, each a view into the bytes given to push(), so no DATA byte is
   * copied here.
   */
  payload: Uint8Array;
}

/**
 * Parses frames out of a byte stream delivered in arbitrary pieces. DATA payloads pass straight
 * through as views of the pushed bytes; only a control frame split across pushes is reassembled.
 */
export class FrameReader {
  private input: Uint8Array = new Uint8Array(0);
  private pos = 0;
  /** DATA payload bytes still to come for the frame in progress. */
  private dataLeft = 0;
  /** A control frame split across pushes: the bytes gathered so far. */
  private partial: Uint8Array | null = null;
  private readonly frame: Frame = { type: FrameType.Data, payload: new Uint8Array(0) };

  /** Adds bytes; call next() until it returns null before pushing again. */
  push(bytes: Uint8Array): void {
    this.input = bytes;
    this.pos = 0;
  }

  /** The next frame or DATA piece, null when the pushed bytes are used up, or 'error' on a malformed stream. */
  next(): Frame | null | 'error' {
    const b = this.input;
    if (this.dataLeft > 0) {
      if (this.pos >= b.length) return null;
      const n = Math.min(this.dataLeft, b.length - this.pos);
      this.dataLeft -= n;
      return this.emit(FrameType.Data, b.subarray(this.pos, (this.pos += n)));
    }
    if (this.partial) return this.continuePartial();
    if (this.pos >= b.length) return null;
    if (b.length - this.pos < FRAME_HEADER) return this.startPartial();
    const type = b[this.pos]!;
    if (type < FrameType.Open || type > FrameType.Rst) return 'error';
    const len = (b[this.pos + 1]! << 8) | b[this.pos + 2]!;
    if (type === FrameType.Data) {
      this.pos += FRAME_HEADER;
      this.dataLeft = len;
      return this.next();
    }
    if (len > MAX_CONTROL_PAYLOAD) return 'error';
    if (b.length - this.pos < FRAME_HEADER + len) return this.startPartial();
    const payload = b.subarray(this.pos + FRAME_HEADER, this.pos + FRAME_HEADER + len);
    this.pos += FRAME_HEADER + len;
    return this.emit(type as FrameType, payload);
  }

  /** True between frames: nothing of a frame is pending. */
  get atBoundary(): boolean {
    return this.dataLeft === 0 && this.partial === null;
  }

  private emit(type: FrameType, payload: Uint8Array): Frame {
    this.frame.type = type;
    this.frame.payload = payload;
    return this.frame;
  }

  /** Copies the rest of the pushed bytes, which start a control frame (or a header) too short to parse. */
  private startPartial(): null {
    this.partial = this.input.slice(this.pos);
    this.pos = this.input.length;
    return null;
  }

  private continuePartial(): Frame | null | 'error' {
    const b = this.input;
    if (this.pos >= b.length) return null;
    const joined = new Uint8Array(this.partial!.length + b.length - this.pos);
    joined.set(this.partial!, 0);
    joined.set(b.subarray(this.pos), this.partial!.length);
    this.partial = null;
    this.input = joined;
    this.pos = 0;
    return this.next();
  }
}
