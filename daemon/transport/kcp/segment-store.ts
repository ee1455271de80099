/**
 * The engine's segment objects and datagram buffers, recycled through free lists shared by every
 * engine in the process (kcp-go's global xmitBuf pool): an EasyTier node runs one engine per proxied
 * flow, and per-engine pools would each keep their high-water mark of idle buffers.
 */
import { FreeList } from './free-list.js';

/** One segment in snd_queue/snd_buf/rcv_buf/rcv_queue. `data` is a buffer of which `len` bytes are used. */
export class Segment {
  sn = 0;
  frg = 0;
  /** Clock (u32) of the segment's latest transmission. */
  ts = 0;
  resendts = 0;
  rto = 0;
  fastack = 0;
  xmit = 0;
  acked = false;
  len = 0;
  constructor(public data: Uint8Array) {}
}

const segmentPool = new FreeList<Segment>(4096);
const datagramPool = new FreeList<Uint8Array>(1024);

/** Segments and datagrams of one engine's MTU. */
export class SegmentStore {
  constructor(private readonly mtu: number) {}

  /** A segment with room for `len` bytes (the MTU's size when it fits, so it can be recycled). */
  take(len: number): Segment {
    const seg = len <= this.mtu ? segmentPool.take(this.mtu) : undefined;
    if (seg !== undefined) return seg;
    return new Segment(new Uint8Array(Math.max(len, this.mtu)));
  }

  give(seg: Segment): void {
    if (seg.data.length !== this.mtu) return;
    seg.sn = seg.frg = seg.ts = seg.resendts = seg.rto = seg.fastack = seg.xmit = seg.len = 0;
    seg.acked = false;
    segmentPool.give(this.mtu, seg);
  }

  datagram(): Uint8Array {
    return datagramPool.take(this.mtu) ?? new Uint8Array(this.mtu);
  }

  /** A datagram handed out earlier (any view of an MTU-sized buffer) comes back. */
  giveDatagram(buf: Uint8Array): void {
    if (buf.buffer.byteLength === this.mtu) {
      datagramPool.give(this.mtu, new Uint8Array(buf.buffer, 0, this.mtu));
    }
  }
}
