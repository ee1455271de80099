/**
 * snd_queue: application data cut into segments, waiting to be moved into flight (kcp-go's Send, and
 * its session's Write in stream mode).
 */
import type { Ring } from './ring.js';
import type { Segment, SegmentStore } from './segment-store.js';

/**
 * Queues a copy of `data`; returns data.length, or -1 for empty data, or -2 in message mode when the
 * message needs more than 255 segments (kcp-go refuses it). Stream mode splits any length into MSS
 * pieces after topping up the last still-unsent segment; message mode numbers the fragments down to 0.
 */
export function queueData(queue: Ring<Segment>, store: SegmentStore, data: Uint8Array, mss: number, streamMode: boolean): number {
  const total = data.length;
  if (total === 0) return -1;
  let p = 0;
  if (streamMode) {
    if (queue.length > 0) {
      const last = queue.get(queue.length - 1);
      const room = mss - last.len;
      if (room > 0) {
        const n = Math.min(room, total);
        last.data.set(n === total ? data : data.subarray(0, n), last.len);
        last.len += n;
        p = n;
      }
    }
    for (; p < total; p += mss) queue.push(segmentOf(store, data, p, Math.min(mss, total - p), 0));
    return total;
  }
  const count = total <= mss ? 1 : Math.ceil(total / mss);
  if (count > 255) return -2;
  for (let i = 0; i < count; i++, p += mss) queue.push(segmentOf(store, data, p, Math.min(mss, total - p), count - i - 1));
  return total;
}

/**
 * Nagle's rule in stream mode (the engine's holdPartialTail): the only queued segment is not full and
 * `inFlight` segments are unacknowledged, so it waits for the next write to top it up rather than go
 * as a short datagram of its own. The proxy carrier's reads from a busy kernel socket are a few KB
 * each, and such tails were a third of its datagrams. It goes when the flight empties (within a round
 * trip), or at once when the owner turns the rule off (its FIN or RST).
 */
export function tailWaits(queue: Ring<Segment>, inFlight: number, mss: number): boolean {
  return inFlight > 0 && queue.length === 1 && queue.get(0).len < mss;
}

function segmentOf(store: SegmentStore, data: Uint8Array, start: number, n: number, frg: number): Segment {
  const seg = store.take(n);
  seg.data.set(data.subarray(start, start + n));
  seg.len = n;
  seg.frg = frg;
  return seg;
}
