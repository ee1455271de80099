/**
 * Snappy framing format, as golang/snappy's buffered Writer (flushed on every write) and Reader speak it.
 * kcptun runs one such stream per KCP session per direction, under smux.
 *
 * Chunk = type (1 byte) + body length (u24 LE) + body.
 *   0xff stream identifier, body "sNaPpY" (once at the front; repeats are allowed)
 *   0x00 compressed: masked CRC-32C of the decoded data (u32 LE) + snappy block
 *   0x01 uncompressed: masked CRC-32C + raw data
 *   0x02..0x7f reserved unskippable (error), 0x80..0xfe skippable
 */
import { crc32c } from '../checksum/crc32.js';
import { TstierError } from '../../errors.js';
import { MAX_BLOCK_SIZE, SnappyCompressor, decompress, maxEncodedLength } from './block.js';

const CHUNK_COMPRESSED = 0x00;
const CHUNK_UNCOMPRESSED = 0x01;
const CHUNK_STREAM_ID = 0xff;
const CHUNK_HEADER = 4;
const CHECKSUM_SIZE = 4;
/** golang/snappy's Reader buffer: no chunk body may be longer. */
export const MAX_CHUNK_BODY = CHECKSUM_SIZE + maxEncodedLength(MAX_BLOCK_SIZE); // 76494

/** The stream identifier chunk every stream starts with. */
export const STREAM_IDENTIFIER = Uint8Array.of(0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59);

/** The CRC as the framing format stores it: rotated and offset so CRCs of CRCs don't collide trivially. */
export function maskedCrc(data: Uint8Array, start = 0, end = data.length): number {
  const c = crc32c(data, start, end);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

function corrupt(problem: string): TstierError {
  return new TstierError('TSTIER_E_BAD_PACKET', `snappy framing: ${problem}`);
}

/** Encodes one direction of a framed stream. Each write() becomes whole chunks (one per ≤ 64 KiB). */
export class SnappyFrameWriter {
  private readonly compressor = new SnappyCompressor();
  private readonly header = new Uint8Array(CHUNK_HEADER + CHECKSUM_SIZE);
  private wroteIdentifier = false;

  /**
   * Returns the encoded bytes for data (a fresh buffer the caller owns); the first non-empty write adds the
   * identifier. An empty write encodes to nothing, as in golang/snappy.
   */
  write(data: Uint8Array): Uint8Array {
    const parts: Uint8Array[] = [];
    let size = 0;
    this.writeParts(data, (part) => {
      parts.push(part.slice());
      size += part.length;
    });
    const out = new Uint8Array(size);
    let o = 0;
    for (const part of parts) {
      out.set(part, o);
      o += part.length;
    }
    return out;
  }

  /**
   * The bytes write() would return, handed to `emit` in parts: the identifier, then per chunk its
   * header and its body (a view of data, or of the compressor's scratch). Each part is only valid
   * during its emit() call, so a caller that copies anyway (KCP's send) gets the stream with no
   * buffer allocated, filled and copied again per write.
   */
  writeParts(data: Uint8Array, emit: (part: Uint8Array) => void): void {
    if (data.length === 0) return;
    if (!this.wroteIdentifier) {
      this.wroteIdentifier = true;
      emit(STREAM_IDENTIFIER);
    }
    const h = this.header;
    for (let p = 0; p < data.length; p += MAX_BLOCK_SIZE) {
      const end = Math.min(p + MAX_BLOCK_SIZE, data.length);
      const block = this.compressor.compress(data, p, end);
      const compressed = useCompressed(end - p, block.length);
      const bodyLen = CHECKSUM_SIZE + (compressed ? block.length : end - p);
      h[0] = compressed ? CHUNK_COMPRESSED : CHUNK_UNCOMPRESSED;
      h[1] = bodyLen & 0xff;
      h[2] = (bodyLen >>> 8) & 0xff;
      h[3] = bodyLen >>> 16;
      const crc = maskedCrc(data, p, end);
      h[4] = crc & 0xff;
      h[5] = (crc >>> 8) & 0xff;
      h[6] = (crc >>> 16) & 0xff;
      h[7] = crc >>> 24;
      emit(h);
      emit(compressed ? block : data.subarray(p, end));
    }
  }
}

/** golang/snappy keeps the compressed form only if it saves at least an eighth. */
function useCompressed(rawLength: number, compressedLength: number): boolean {
  return compressedLength < rawLength - (rawLength >>> 3);
}

/**
 * Decodes one direction of a framed stream from arbitrarily split input. Once it reports an error it
 * stays failed (the stream cannot be resynchronised).
 */
export class SnappyFrameReader {
  /** Input not yet consumed: views of what push() was given. */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private readonly header = new Uint8Array(CHUNK_HEADER);
  /** Assembles a chunk body that arrived split across pushes. */
  private readonly assembly = new Uint8Array(MAX_CHUNK_BODY);
  private sawIdentifier = false;
  private failed: TstierError | null = null;

  /**
   * Takes ownership of bytes (it may keep views into them) and returns the data of every chunk now
   * complete, in order, or the error that ended the stream. Returned buffers belong to the caller.
   */
  push(bytes: Uint8Array): Uint8Array[] | TstierError {
    if (this.failed) return this.failed;
    const out: Uint8Array[] = [];
    // Fast path: nothing pending, chunks wholly inside bytes are decoded in place.
    let p = 0;
    if (this.pendingBytes === 0) {
      while (bytes.length - p >= CHUNK_HEADER) {
        const bodyLen = bytes[p + 1]! | (bytes[p + 2]! << 8) | (bytes[p + 3]! << 16);
        if (bodyLen > MAX_CHUNK_BODY) return this.fail(corrupt(`chunk body of ${bodyLen} bytes exceeds ${MAX_CHUNK_BODY}`));
        if (bytes.length - p - CHUNK_HEADER < bodyLen) break;
        const r = this.chunk(bytes[p]!, bytes, p + CHUNK_HEADER, p + CHUNK_HEADER + bodyLen, false);
        if (r instanceof TstierError) return this.fail(r);
        if (r) out.push(r);
        p += CHUNK_HEADER + bodyLen;
      }
    }
    if (p < bytes.length) {
      this.pending.push(p === 0 ? bytes : bytes.subarray(p));
      this.pendingBytes += bytes.length - p;
    }
    // Slow path: chunks that straddle pushes are copied together first.
    while (this.pendingBytes >= CHUNK_HEADER) {
      this.peek(this.header, CHUNK_HEADER);
      const h = this.header;
      const bodyLen = h[1]! | (h[2]! << 8) | (h[3]! << 16);
      if (bodyLen > MAX_CHUNK_BODY) return this.fail(corrupt(`chunk body of ${bodyLen} bytes exceeds ${MAX_CHUNK_BODY}`));
      if (this.pendingBytes < CHUNK_HEADER + bodyLen) break;
      this.consume(CHUNK_HEADER);
      this.peek(this.assembly, bodyLen);
      this.consume(bodyLen);
      const r = this.chunk(h[0]!, this.assembly, 0, bodyLen, true);
      if (r instanceof TstierError) return this.fail(r);
      if (r) out.push(r);
    }
    return out;
  }

  private fail(e: TstierError): TstierError {
    this.failed = e;
    this.pending = [];
    this.pendingBytes = 0;
    return e;
  }

  /** Copies the first n pending bytes into dst without consuming them. */
  private peek(dst: Uint8Array, n: number): void {
    let o = 0;
    for (let i = 0; o < n; i++) {
      const piece = this.pending[i]!;
      const take = Math.min(piece.length, n - o);
      dst.set(take === piece.length ? piece : piece.subarray(0, take), o);
      o += take;
    }
  }

  private consume(n: number): void {
    this.pendingBytes -= n;
    while (n > 0) {
      const piece = this.pending[0]!;
      if (piece.length <= n) {
        n -= piece.length;
        this.pending.shift();
      } else {
        this.pending[0] = piece.subarray(n);
        n = 0;
      }
    }
  }

  /**
   * Handles one whole chunk whose body is src[start, end). Returns its data, null for chunks that carry
   * none, or an error. `scratch` says src is reused, so uncompressed data must be copied out.
   */
  private chunk(type: number, src: Uint8Array, start: number, end: number, scratch: boolean): Uint8Array | null | TstierError {
    if (!this.sawIdentifier && type !== CHUNK_STREAM_ID) return corrupt('stream does not start with the identifier chunk');
    switch (type) {
      case CHUNK_STREAM_ID:
        if (end - start !== 6) return corrupt('bad stream identifier length');
        for (let i = 0; i < 6; i++) {
          if (src[start + i] !== STREAM_IDENTIFIER[4 + i]) return corrupt('bad stream identifier');
        }
        this.sawIdentifier = true;
        return null;
      case CHUNK_COMPRESSED: {
        if (end - start < CHECKSUM_SIZE) return corrupt('compressed chunk too short');
        const data = decompress(src, start + CHECKSUM_SIZE, end, MAX_BLOCK_SIZE);
        if (data instanceof TstierError) return data;
        return checkCrc(src, start, data, 0, data.length) ? data : corrupt('checksum mismatch');
      }
      case CHUNK_UNCOMPRESSED: {
        if (end - start < CHECKSUM_SIZE) return corrupt('uncompressed chunk too short');
        const from = start + CHECKSUM_SIZE;
        if (end - from > MAX_BLOCK_SIZE) return corrupt('uncompressed chunk exceeds 65536 bytes');
        if (!checkCrc(src, start, src, from, end)) return corrupt('checksum mismatch');
        return scratch ? src.slice(from, end) : src.subarray(from, end);
      }
      default:
        if (type < 0x80) return corrupt(`reserved unskippable chunk type 0x${type.toString(16)}`);
        // 0x80..0xfd are reserved skippable and 0xfe is padding: all are ignored.
        return null;
    }
  }
}

function checkCrc(src: Uint8Array, at: number, data: Uint8Array, start: number, end: number): boolean {
  const stored = (src[at]! | (src[at + 1]! << 8) | (src[at + 2]! << 16) | (src[at + 3]! << 24)) >>> 0;
  return stored === maskedCrc(data, start, end);
}
