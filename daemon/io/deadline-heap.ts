/**
 * A binary min-heap of deadlines, one slot per item, so a driver finds the earliest of a thousand
 * flows' wake-ups in O(1) and moves one flow's deadline in O(log n) instead of scanning them all
 * every pass. The item keeps its own position (heapIndex), so an update needs no lookup table and
 * allocates nothing.
 */

/** What an item must carry: its position in the heap, -1 when not in it (set that before first use). */
export interface HeapSlot {
  heapIndex: number;
}

export class DeadlineHeap<T extends HeapSlot> {
  private readonly items: T[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.items.length;
  }

  /** The earliest deadline, or Infinity when empty. */
  peekAt(): number {
    return this.keys.length > 0 ? this.keys[0]! : Infinity;
  }

  /** The item with the earliest deadline, or undefined. */
  peek(): T | undefined {
    return this.items[0];
  }

  has(item: T): boolean {
    return item.heapIndex >= 0 && this.items[item.heapIndex] === item;
  }

  /** Inserts `item` at `at`, or moves it there if present. Infinity removes it (it needs no wake-up). */
  set(item: T, at: number): void {
    if (at === Infinity) {
      this.delete(item);
      return;
    }
    let i = item.heapIndex;
    if (!this.has(item)) {
      i = this.items.length;
      this.items.push(item);
      this.keys.push(at);
      item.heapIndex = i;
      this.up(i);
      return;
    }
    const old = this.keys[i]!;
    this.keys[i] = at;
    if (at < old) this.up(i);
    else if (at > old) this.down(i);
  }

  delete(item: T): void {
    if (!this.has(item)) return;
    const i = item.heapIndex;
    const last = this.items.length - 1;
    item.heapIndex = -1;
    if (i !== last) {
      this.place(this.items[last]!, this.keys[last]!, i);
      this.items.pop();
      this.keys.pop();
      this.down(i);
      this.up(i);
    } else {
      this.items.pop();
      this.keys.pop();
    }
  }

  /** Removes and returns the earliest item if its deadline is at or before `now`. */
  popDue(now: number): T | undefined {
    if (this.keys.length === 0 || this.keys[0]! > now) return undefined;
    const item = this.items[0]!;
    this.delete(item);
    return item;
  }

  private place(item: T, at: number, i: number): void {
    this.items[i] = item;
    this.keys[i] = at;
    item.heapIndex = i;
  }

  private up(i: number): void {
    const item = this.items[i]!;
    const at = this.keys[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.keys[parent]! <= at) break;
      this.place(this.items[parent]!, this.keys[parent]!, i);
      i = parent;
    }
    this.place(item, at, i);
  }

  private down(i: number): void {
    const n = this.items.length;
    const item = this.items[i]!;
    const at = this.keys[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.keys[child + 1]! < this.keys[child]!) child++;
      if (this.keys[child]! >= at) break;
      this.place(this.items[child]!, this.keys[child]!, i);
      i = child;
    }
    this.place(item, at, i);
  }
}
