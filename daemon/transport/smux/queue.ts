/**
 * Small FIFOs for the session: a generic one with O(1) shift (Array.shift is O(n)), and a byte queue
 * that holds views of caller buffers instead of copying them.
 */

export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  /** Replaces the front item (e.g. with what is left of it after a partial read). */
  replaceFirst(item: T): void {
    if (this.head < this.items.length) this.items[this.head] = item;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    // Compact once the dead prefix dominates, so memory follows the live size.
    if (this.head >= 64 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

/**
 * Returns bytes itself when it covers most of its underlying buffer, else a compact copy. Queues that keep
 * views would otherwise pin whole large buffers for a few bytes each, and memory would no longer follow
 * the byte counts the flow control is based on.
 */
export function compact(bytes: Uint8Array): Uint8Array {
  return bytes.length * 2 >= bytes.buffer.byteLength ? bytes : bytes.slice();
}

export class ByteQueue {
  private readonly pieces = new Fifo<Uint8Array>();
  /** Total bytes queued. */
  length = 0;

  /** Appends a view; the queue keeps it, so the caller must not modify those bytes afterwards. */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.pieces.push(bytes);
    this.length += bytes.length;
  }

  /** Removes and returns at most max bytes from the front, as a view of one piece (no copy). */
  shift(max: number): Uint8Array | null {
    const first = this.pieces.peek();
    if (!first) return null;
    if (first.length <= max) {
      this.pieces.shift();
      this.length -= first.length;
      return first;
    }
    this.pieces.replaceFirst(first.subarray(max));
    this.length -= max;
    return first.subarray(0, max);
  }

  /** Moves n bytes (n ≤ length) from the front into dst at offset o. */
  copyOut(dst: Uint8Array, o: number, n: number): void {
    this.length -= n;
    while (n > 0) {
      const first = this.pieces.peek()!;
      if (first.length <= n) {
        dst.set(first, o);
        this.pieces.shift();
        o += first.length;
        n -= first.length;
      } else {
        dst.set(first.subarray(0, n), o);
        this.pieces.replaceFirst(first.subarray(n));
        n = 0;
      }
    }
  }

  clear(): void {
    this.pieces.clear();
    this.length = 0;
  }
}
