/**
 * A growable ring-buffer deque: O(1) push at the back, shift at the front and indexed access.
 * KCP's queues only ever grow at the back and shrink at the front, so this replaces kcp-go's
 * slice re-slicing without the O(n) splices a plain array `shift` would do on big windows.
 */
export class Ring<T> {
  private items: (T | undefined)[];
  private mask: number;
  private head = 0;
  length = 0;

  constructor(initialCapacity = 16) {
    let cap = 1;
    while (cap < initialCapacity) cap <<= 1;
    this.items = emptySlots<T>(cap);
    this.mask = cap - 1;
  }

  /** Element i counted from the front; i must be in [0, length). */
  get(i: number): T {
    return this.items[(this.head + i) & this.mask] as T;
  }

  push(v: T): void {
    if (this.length > this.mask) this.grow();
    this.items[(this.head + this.length) & this.mask] = v;
    this.length++;
  }

  /** Removes and returns the front element; the ring must not be empty. */
  shift(): T {
    const v = this.items[this.head] as T;
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.length--;
    return v;
  }

  private grow(): void {
    const cap = this.items.length;
    const next = emptySlots<T>(cap * 2);
    for (let i = 0; i < this.length; i++) next[i] = this.items[(this.head + i) & this.mask];
    this.items = next;
    this.mask = cap * 2 - 1;
    this.head = 0;
  }
}

/**
 * `n` empty slots for objects. `new Array(n)` starts with small-integer elements and turns into an
 * object array at its first store, so one call site sees arrays of both kinds: the optimised code of
 * push() or insert() (inlined into KCP's input and flush) then meets an array of the other kind from a
 * new or grown ring and is deoptimised ("wrong map"). Filled, every ring holds the object kind at once.
 */
export function emptySlots<T>(n: number): (T | undefined)[] {
  return new Array<T | undefined>(n).fill(undefined);
}
