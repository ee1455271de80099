import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_COUNTER, REPLAY_WINDOW, ReplayWindow } from '../../../daemon/peer/replay-window.js';

test('accepts each counter once, in any order inside the window', () => {
  const w = new ReplayWindow();
  for (const c of [0, 5, 3, 1, 2, 4]) assert.equal(w.update(c), true, `first ${c}`);
  for (const c of [0, 1, 2, 3, 4, 5]) assert.equal(w.check(c), false, `replayed ${c}`);
  assert.equal(w.check(6), true);
});

test('window edge: exactly REPLAY_WINDOW behind is too old, one less is still accepted', () => {
  const w = new ReplayWindow();
  const top = 10_000;
  assert.equal(w.update(top), true);
  assert.equal(w.check(top - REPLAY_WINDOW), false);
  assert.equal(w.update(top - REPLAY_WINDOW + 1), true);
  assert.equal(w.update(top - REPLAY_WINDOW + 1), false);
});

test('a jump far ahead clears old bits, so reused ring slots are not mistaken for replays', () => {
  const w = new ReplayWindow();
  for (let c = 0; c < 2048; c++) assert.equal(w.update(c), true);
  assert.equal(w.update(2048 + 2047), true);
  // Ring slots of 2048..4094 held bits of 0..2046; they must read as fresh now.
  for (let c = 4095 - REPLAY_WINDOW + 1; c < 4095; c++) assert.equal(w.check(c), true, `counter ${c}`);
  assert.equal(w.check(0), false);
});

test('a jump of exactly one word boundary keeps the bits still in the window', () => {
  const w = new ReplayWindow();
  assert.equal(w.update(31), true);
  assert.equal(w.update(32), true);
  assert.equal(w.check(31), false);
  assert.equal(w.check(30), true);
});

test('check does not move the window; only update does', () => {
  const w = new ReplayWindow();
  assert.equal(w.check(1_000_000), true);
  assert.equal(w.update(1), true);
  assert.equal(w.check(1), false);
  assert.equal(w.update(0), true);
});

test('rejects negative, fractional-large and out-of-range counters', () => {
  const w = new ReplayWindow();
  assert.equal(w.check(-1), false);
  assert.equal(w.check(MAX_COUNTER), false);
  assert.equal(w.check(Number.NaN), false);
  assert.equal(w.update(MAX_COUNTER - 1), true);
});
