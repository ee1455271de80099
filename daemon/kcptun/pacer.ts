/**
 * --ratelimit: paces one session's outgoing datagrams to a byte rate with a token bucket.
 * Datagrams over the rate wait in a queue of at most QUEUE_SECONDS worth of bytes; beyond that they
 * are dropped, as a router's queue would, and KCP retransmits them.
 */
import { nowMs } from '../io/clock.js';

const BURST_SECONDS = 0.05;
const QUEUE_SECONDS = 0.5;

export class Pacer {
  private tokens: number;
  private last = nowMs();
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  dropped = 0;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly send: (datagram: Uint8Array) => void,
  ) {
    this.tokens = bytesPerSecond * BURST_SECONDS;
  }

  push(d: Uint8Array): void {
    if (this.queue.length === 0) {
      this.refill();
      if (this.tokens >= d.length) {
        this.tokens -= d.length;
        this.send(d);
        return;
      }
    }
    if (this.queued + d.length > this.bytesPerSecond * QUEUE_SECONDS) {
      this.dropped++;
      return;
    }
    this.queue.push(d);
    this.queued += d.length;
    this.arm();
  }

  private refill(): void {
    const now = nowMs();
    const cap = this.bytesPerSecond * BURST_SECONDS;
    this.tokens = Math.min(cap, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
  }

  private arm(): void {
    if (this.timer || this.queue.length === 0) return;
    const need = this.queue[0]!.length - this.tokens;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, Math.max(1, Math.ceil((need * 1000) / this.bytesPerSecond)));
  }

  private drain(): void {
    this.refill();
    let i = 0;
    while (i < this.queue.length && this.tokens >= this.queue[i]!.length) {
      const d = this.queue[i++]!;
      this.tokens -= d.length;
      this.queued -= d.length;
      this.send(d);
    }
    this.queue.splice(0, i);
    this.arm();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.queue.length = 0;
  }
}
