/**
 * KCP's receive side: rcv_buf (out-of-order segments, a ring indexed by sn) and rcv_queue (in order,
 * waiting for the application), and the application's reads from it (kcp-go's Recv and the session's
 * Read). The slot ring grows on demand, up to the window, so a large receive window costs memory
 * only while out-of-order data actually fills it.
 */
import { emptySlots, Ring } from './ring.js';
import type { Segment, SegmentStore } from './segment-store.js';

/** Slots allocated at first; doubled while an arriving sn lies beyond them (the window bounds it). */
const INITIAL_SLOTS = 32;

export class ReceiveBuffer {
  /** rcv_nxt: every sn below it has been received. */
  next = 0;
  /** Receive window in segments (rcv_wnd). */
  wnd: number;
  /** Out-of-order segments held in rcv_buf. */
  held = 0;
  /**
   * Set when a read took rcv_queue from full to not full: the peer saw a zero window and waits for a
   * probe answer, so the engine should tell it the window at once (kcp-go's "fast recover").
   */
  reopened = false;

  private slots: (Segment | undefined)[] = emptySlots<Segment>(INITIAL_SLOTS);
  private mask = INITIAL_SLOTS - 1;
  private readonly queue = new Ring<Segment>(64);
  /** Segments taken off rcv_queue by read() and not yet fully copied out (kcp-go session's bufptr). */
  private readonly reading = new Ring<Segment>(4);
  private readOff = 0;

  constructor(private readonly store: SegmentStore, wnd: number) {
    this.wnd = wnd;
  }

  /** Free receive window to advertise: rcv_wnd less what waits for the application. */
  unused(): number {
    return this.queue.length < this.wnd ? this.wnd - this.queue.length : 0;
  }

  /** Whether sn lies inside the receive window (at or above rcv_nxt is checked by the caller). */
  inWindow(sn: number): boolean {
    return ((sn - (this.next + this.wnd)) | 0) < 0;
  }

  /** Stores a PUSH (sn ≥ rcv_nxt, inside the window) unless it is a duplicate (returns true then). */
  insert(sn: number, frg: number, data: Uint8Array, off: number, len: number): boolean {
    while (((sn - this.next) | 0) >= this.slots.length) this.grow();
    const slot = sn & this.mask;
    const repeat = this.slots[slot] !== undefined;
    if (!repeat) {
      const seg = this.store.take(len);
      seg.sn = sn;
      seg.frg = frg;
      seg.len = len;
      seg.data.set(data.subarray(off, off + len));
      this.slots[slot] = seg;
      this.held++;
    }
    this.moveInOrder();
    return repeat;
  }

  /** Size of the next complete message in rcv_queue (stream mode: the next segment), or -1. */
  peekSize(): number {
    const q = this.queue;
    if (q.length === 0) return -1;
    const first = q.get(0);
    if (first.frg === 0) return first.len;
    if (q.length < first.frg + 1) return -1;
    let size = 0;
    for (let i = 0; i < q.length; i++) {
      const seg = q.get(i);
      size += seg.len;
      if (seg.frg === 0) return size;
    }
    // Fragment numbers that never reach 0 within the queue (only a broken or hostile peer sends
    // them) make no complete message, so pop must not take any: it would run past the queue.
    return -1;
  }

  /** Copies the next whole message into dst at offset: its length, -1 when none is ready, -2 when it does not fit. */
  recvInto(dst: Uint8Array, offset: number): number {
    const size = this.peekSize();
    if (size < 0) return -1;
    if (size > dst.length - offset) return -2;
    this.pop();
    let pos = offset;
    while (this.reading.length > 0) {
      const seg = this.reading.shift();
      dst.set(seg.len === seg.data.length ? seg.data : seg.data.subarray(0, seg.len), pos);
      pos += seg.len;
      this.store.give(seg);
    }
    return size;
  }

  /** Stream read: up to end − offset bytes across segments, keeping a partly read segment's rest. */
  read(dst: Uint8Array, offset: number, end: number): number {
    let pos = offset;
    while (pos < end) {
      if (this.reading.length === 0 && !this.pop()) break;
      const seg = this.reading.get(0);
      const n = Math.min(seg.len - this.readOff, end - pos);
      dst.set(seg.data.subarray(this.readOff, this.readOff + n), pos);
      pos += n;
      this.readOff += n;
      if (this.readOff === seg.len) {
        this.reading.shift();
        this.store.give(seg);
        this.readOff = 0;
      }
    }
    return pos - offset;
  }

  readable(): boolean {
    return this.reading.length > 0 || this.peekSize() >= 0;
  }

  /** Every segment back to the store (the engine is being discarded). */
  release(): void {
    for (const ring of [this.queue, this.reading]) {
      while (ring.length > 0) this.store.give(ring.shift());
    }
    for (let i = 0; i < this.slots.length; i++) {
      const seg = this.slots[i];
      if (seg !== undefined) this.store.give(seg);
      this.slots[i] = undefined;
    }
    this.held = 0;
  }

  /** Moves the next complete message from rcv_queue to `reading`, then refills rcv_queue (kcp-go Recv). */
  private pop(): boolean {
    if (this.peekSize() < 0) return false;
    const q = this.queue;
    const wasFull = q.length >= this.wnd;
    for (;;) {
      const seg = q.shift();
      this.reading.push(seg);
      if (seg.frg === 0) break;
    }
    this.moveInOrder();
    if (wasFull && q.length < this.wnd) this.reopened = true;
    return true;
  }

  /** rcv_buf → rcv_queue while the next expected sn is there and rcv_queue has room. */
  private moveInOrder(): void {
    const slots = this.slots;
    const q = this.queue;
    while (this.held > 0 && q.length < this.wnd) {
      const slot = this.next & this.mask;
      const seg = slots[slot];
      if (seg === undefined) break;
      slots[slot] = undefined;
      this.held--;
      q.push(seg);
      this.next = (this.next + 1) >>> 0;
    }
  }

  private grow(): void {
    const cap = this.slots.length * 2;
    const next = emptySlots<Segment>(cap);
    for (const seg of this.slots) if (seg !== undefined) next[seg.sn & (cap - 1)] = seg;
    this.slots = next;
    this.mask = cap - 1;
  }
}
