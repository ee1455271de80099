/**
 * The TCP underlay's framing: each packet is preceded by a u32 LE length (EasyTier frames the
 * same way). The reader never holds more than one frame of at most `maxFrame` bytes, so what a
 * remote can make us buffer is bounded by the length it is allowed to announce.
 */
import { readU32 } from '../wire.js';

export const LENGTH_LEN = 4;
/** The largest frame an authenticated peer may send: a peer packet is at most a 64 KiB datagram plus headers. */
export const MAX_FRAME = 70_000;

/**
 * Splits a byte stream into frames. Frames are views into the chunks read; only a frame split
 * across chunks is copied, once, into a buffer of its announced size (allocated when its length is
 * known, so a stream trickled a byte at a time costs one allocation per frame, not one per byte).
 */
export class FrameReader {
  /** A partial length prefix. */
  private readonly head = Buffer.alloc(LENGTH_LEN);
  private headLen = 0;
  /** The frame being filled across chunks, and how much of it is filled. */
  private body: Buffer | null = null;
  private bodyLen = 0;

  /** `maxFrame`: a length over this stops the reader; the owner may change it between frames. */
  constructor(public maxFrame = MAX_FRAME) {}

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.headLen + (this.body ? this.body.length : 0);
  }

  /** Calls `frame` with each complete frame; false (at the culprit) when a length exceeds maxFrame. */
  feed(chunk: Buffer, frame: (pkt: Buffer) => void): boolean {
    let at = 0;
    while (at < chunk.length && (this.headLen > 0 || this.body)) {
      if (!this.body) {
        const take = Math.min(LENGTH_LEN - this.headLen, chunk.length - at);
        chunk.copy(this.head, this.headLen, at, at + take);
        this.headLen += take;
        at += take;
        if (this.headLen < LENGTH_LEN) break;
        this.headLen = 0;
        const len = readU32(this.head, 0);
        if (len > this.maxFrame) return false;
        if (chunk.length - at >= len) {
          frame(chunk.subarray(at, at + len));
          at += len;
          continue;
        }
        this.body = Buffer.allocUnsafe(len);
        this.bodyLen = 0;
      }
      const body = this.body;
      const take = Math.min(body.length - this.bodyLen, chunk.length - at);
      chunk.copy(body, this.bodyLen, at, at + take);
      this.bodyLen += take;
      at += take;
      if (this.bodyLen < body.length) break;
      this.body = null;
      frame(body);
    }
    while (chunk.length - at >= LENGTH_LEN) {
      const len = readU32(chunk, at);
      if (len > this.maxFrame) return false;
      if (chunk.length - at - LENGTH_LEN < len) break;
      frame(chunk.subarray(at + LENGTH_LEN, at + LENGTH_LEN + len));
      at += LENGTH_LEN + len;
    }
    const rest = chunk.length - at;
    if (rest === 0) return true;
    if (rest < LENGTH_LEN) {
      chunk.copy(this.head, 0, at);
      this.headLen = rest;
      return true;
    }
    // A whole length prefix and part of its frame: the loop above checked the length already.
    const len = readU32(chunk, at);
    this.body = Buffer.allocUnsafe(len);
    this.bodyLen = chunk.copy(this.body, 0, at + LENGTH_LEN);
    return true;
  }
}
