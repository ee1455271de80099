/**
 * The engine's output: segments packed into datagrams of at most `mtu` bytes, each starting after
 * `headroom` reserved bytes (kcp-go's ReserveBytes), queued until the caller polls them.
 */
import { Ring } from './ring.js';
import { IKCP_CMD_PUSH, writeSegmentHeader } from './segment.js';
import type { Segment, SegmentStore } from './segment-store.js';

export class DatagramOut {
  /** Segments written (kcp-go's OutSegs). */
  segs = 0;
  private readonly queue = new Ring<Uint8Array>(16);
  private out: Uint8Array;
  private pos: number;

  constructor(
    private readonly store: SegmentStore,
    private readonly conv: number,
    private readonly mtu: number,
    private readonly headroom: number,
  ) {
    this.out = store.datagram();
    this.pos = headroom;
  }

  /** Writes one segment header, starting a new datagram first when `len` more data bytes would not fit. */
  header(cmd: number, frg: number, wnd: number, ts: number, sn: number, una: number, len: number): void {
    if (this.pos + 24 + len > this.mtu) this.emit();
    this.pos = writeSegmentHeader(this.out, this.pos, this.conv, cmd, frg, wnd, ts, sn, una, len);
    this.segs++;
  }

  /** The data of a segment whose header() was just written. */
  data(seg: Segment): void {
    this.out.set(seg.len === seg.data.length ? seg.data : seg.data.subarray(0, seg.len), this.pos);
    this.pos += seg.len;
  }

  /** A PUSH of `seg` as it was last sent (its ts). */
  push(seg: Segment, wnd: number, una: number): void {
    this.header(IKCP_CMD_PUSH, seg.frg, wnd, seg.ts, seg.sn, una, seg.len);
    this.data(seg);
  }

  /** Closes the datagram being filled, if it holds anything. */
  finish(): void {
    if (this.pos > this.headroom) this.emit();
  }

  poll(): Uint8Array | null {
    return this.queue.length > 0 ? this.queue.shift() : null;
  }

  private emit(): void {
    this.queue.push(this.out.subarray(0, this.pos));
    this.out = this.store.datagram();
    this.pos = this.headroom;
  }
}
