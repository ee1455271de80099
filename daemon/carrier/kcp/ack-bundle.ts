/**
 * ACKs of several flows to one peer in one datagram. A pass answers every flow that took datagrams
 * (KcpCarrier.flushAcks), and with many flows to a peer most answers are a datagram of two or three
 * 24-byte ACK segments: each one sealed, sent, received and opened on its own, about a third of the
 * carrier's datagrams. Their segments are copied into one KIND_BUNDLE datagram per peer and packet
 * type instead (the conv in each KCP segment header says whose it is), up to the MTU.
 *
 * Only segments without data are bundled (ACKs, window probes and answers), so a data segment is never
 * held back or copied. Only toward peers that announce the route feature KcpBundle.
 */
import { IKCP_OVERHEAD, readU32 } from '../../transport/kcp/segment.js';
import { FEC_DATA_PREFIX } from './path-fec.js';
import { KIND_BUNDLE } from './wire.js';

/** Offset of a segment header's data length. */
const LEN_AT = 20;

/**
 * Whether the engine datagram `d` (kind byte at d[FEC_DATA_PREFIX], segments after it) carries only
 * segments without data.
 */
export function controlOnly(d: Uint8Array): boolean {
  let off = FEC_DATA_PREFIX + 1;
  for (; off + IKCP_OVERHEAD <= d.length; off += IKCP_OVERHEAD) if (readU32(d, off + LEN_AT) !== 0) return false;
  return off === d.length && off > FEC_DATA_PREFIX + 1;
}

/** Sends a finished bundle: kind byte at d[FEC_DATA_PREFIX], the bytes before free for FEC framing. */
export type BundleSink = (peerId: number, type: number, d: Uint8Array) => void;

interface OpenBundle {
  peerId: number;
  type: number;
  buf: Uint8Array;
  len: number;
}

export class AckBundler {
  private readonly open: OpenBundle[] = [];
  /** Bundle buffers handed out and not yet recycled, and free ones: no allocation per bundle. */
  private readonly sent: Uint8Array[] = [];
  private readonly free: Uint8Array[] = [];

  /** `mtu`: a datagram's size limit, FEC_DATA_PREFIX included (as the engine's datagrams). */
  constructor(private readonly mtu: number) {}

  /** Appends the segments of `d` (see controlOnly) to the bundle for peer and type; a full one goes to `sink` first. */
  add(peerId: number, type: number, d: Uint8Array, sink: BundleSink): void {
    const segs = d.length - FEC_DATA_PREFIX - 1;
    let i = this.open.findIndex((b) => b.peerId === peerId && b.type === type);
    if (i >= 0 && this.open[i]!.len + segs > this.mtu) {
      this.emit(i, sink);
      i = -1;
    }
    if (i < 0) {
      const buf = this.free.pop() ?? new Uint8Array(this.mtu);
      buf[FEC_DATA_PREFIX] = KIND_BUNDLE;
      i = this.open.push({ peerId, type, buf, len: FEC_DATA_PREFIX + 1 }) - 1;
    }
    const b = this.open[i]!;
    b.buf.set(d.subarray(FEC_DATA_PREFIX + 1), b.len);
    b.len += segs;
  }

  /** Sends every open bundle. */
  flush(sink: BundleSink): void {
    while (this.open.length > 0) this.emit(this.open.length - 1, sink);
  }

  /** Takes back a sent bundle's memory (any view into it); false if `data` is not one of ours. */
  recycle(data: Uint8Array): boolean {
    const i = this.sent.findIndex((b) => b.buffer === data.buffer);
    if (i < 0) return false;
    this.free.push(this.sent[i]!);
    this.sent.splice(i, 1);
    return true;
  }

  private emit(i: number, sink: BundleSink): void {
    const b = this.open[i]!;
    this.open.splice(i, 1);
    // A caller that never recycles (tests polling by hand) must not grow this list without bound.
    if (this.sent.length >= 64) this.sent.shift();
    this.sent.push(b.buf);
    sink(b.peerId, b.type, b.buf.subarray(0, b.len));
  }
}
