/**
 * The deadline heap against a plain list, on seeded random operations: after every insert, move
 * and delete the heap's earliest deadline is the list's minimum, and popDue yields exactly the due
 * items in deadline order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeadlineHeap } from '../../../daemon/io/deadline-heap.js';
import { Rng } from '../../sim/world.js';

interface Item {
  id: number;
  heapIndex: number;
}

test('random sets, moves and deletes: the earliest deadline always matches a scan', () => {
  for (let seed = 1; seed <= 50; seed++) {
    const rng = new Rng(seed);
    const heap = new DeadlineHeap<Item>();
    const items: Item[] = Array.from({ length: 64 }, (_, id) => ({ id, heapIndex: -1 }));
    const truth = new Map<Item, number>();
    for (let op = 0; op < 2000; op++) {
      const item = items[rng.int(items.length)]!;
      const r = rng.int(10);
      if (r < 6) {
        const at = rng.int(1000);
        heap.set(item, at);
        truth.set(item, at);
      } else if (r < 8) {
        heap.delete(item);
        truth.delete(item);
      } else {
        heap.set(item, Infinity);
        truth.delete(item);
      }
      const min = Math.min(...truth.values());
      assert.equal(heap.peekAt(), min, `seed ${seed} op ${op}`);
      assert.equal(heap.size, truth.size);
      if (truth.size > 0) assert.equal(truth.get(heap.peek()!), min);
      for (const it of items) assert.equal(heap.has(it), truth.has(it));
    }
    // Drain what is due by 500: in order, all of it, nothing later.
    const due = [...truth].filter(([, at]) => at <= 500).map(([, at]) => at).sort((a, b) => a - b);
    const popped: number[] = [];
    for (let it = heap.popDue(500); it; it = heap.popDue(500)) {
      popped.push(truth.get(it)!);
      assert.equal(it.heapIndex, -1);
    }
    assert.deepEqual(popped, due);
    assert.ok(heap.peekAt() > 500);
  }
});

test('an empty heap wakes never and pops nothing', () => {
  const heap = new DeadlineHeap<Item>();
  assert.equal(heap.peekAt(), Infinity);
  assert.equal(heap.popDue(Number.MAX_SAFE_INTEGER), undefined);
  const a = { id: 1, heapIndex: -1 };
  heap.delete(a);
  heap.set(a, Infinity);
  assert.equal(heap.size, 0);
});
