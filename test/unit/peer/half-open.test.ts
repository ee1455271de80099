import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HalfOpenGate, halfOpenLimitsFor, sourceKey, type HalfOpenLimits } from '../../../daemon/peer/underlay/half-open.js';

const LIMITS: HalfOpenLimits = { deadlineMs: 5000, perSource: 3, global: 5, quietMs: 10_000 };

test('the deadline counts from the accept: activity in between does not extend it', () => {
  const g = new HalfOpenGate<string>(LIMITS);
  g.admit('a', '10.0.0.1', 0);
  g.admit('b', '10.0.0.2', 1000);
  assert.equal(g.pollTimeout(), 5000);
  // A trickler's bytes are not reported to the gate at all: nothing but settle() takes it out.
  assert.deepEqual(g.handleTimeout(4999), []);
  assert.deepEqual(g.handleTimeout(5000), ['a']);
  assert.equal(g.pollTimeout(), 6000);
  g.settle('b');
  assert.equal(g.pollTimeout(), Infinity);
  assert.deepEqual(g.handleTimeout(100_000), []);
  assert.deepEqual([g.stats.expired, g.stats.settled, g.size], [1, 1, 0]);
});

test('over the per-source cap the oldest of that source goes, never another source\'s', () => {
  const g = new HalfOpenGate<string>(LIMITS);
  g.admit('legit', '10.0.0.9', 0);
  for (let i = 0; i < 3; i++) assert.deepEqual(g.admit(`f${i}`, '10.0.0.1', 10 + i), []);
  assert.deepEqual(g.admit('f3', '10.0.0.1', 20), ['f0']);
  assert.deepEqual(g.admit('f4', '10.0.0.1', 21), ['f1']);
  assert.ok(g.holds('legit'));
  assert.deepEqual([g.stats.evictedPerSource, g.stats.evictedGlobal, g.size], [2, 0, 4]);
});

test('over the global cap the oldest of the heaviest source goes; ties go to the older', () => {
  const g = new HalfOpenGate<string>(LIMITS);
  g.admit('legit', '10.0.0.9', 0);
  g.admit('x0', '10.0.0.1', 1);
  g.admit('y0', '10.0.0.2', 2);
  g.admit('x1', '10.0.0.1', 3);
  g.admit('y1', '10.0.0.2', 4);
  // Full (5): 10.0.0.1 and 10.0.0.2 hold two each; 10.0.0.1's oldest is the older.
  assert.deepEqual(g.admit('z0', '10.0.0.3', 5), ['x0']);
  assert.deepEqual(g.admit('z1', '10.0.0.3', 6), ['y0']);
  // Now every source holds one or two: 10.0.0.3 holds two.
  assert.deepEqual(g.admit('w0', '10.0.0.4', 7), ['z0']);
  assert.ok(g.holds('legit'));
  assert.equal(g.size, 5);
  assert.deepEqual([g.stats.evictedGlobal, g.stats.peak], [3, 5]);
});

test('a flood from many sources never holds more than the caps, and a newcomer always gets in', () => {
  const g = new HalfOpenGate<number>(LIMITS);
  let closed = 0;
  for (let i = 0; i < 10_000; i++) {
    closed += g.admit(i, `10.0.${i % 7}.1`, i).length;
    assert.ok(g.size <= LIMITS.global);
    assert.ok(g.holds(i), 'the newest is admitted');
  }
  assert.equal(closed, 10_000 - LIMITS.global);
  assert.equal(g.stats.peak, LIMITS.global);
});

test('evictions are reported once when a burst starts and once when it has been quiet for quietMs', () => {
  const g = new HalfOpenGate<number>(LIMITS);
  for (let i = 0; i < 100; i++) g.admit(i, '10.0.0.1', i);
  assert.deepEqual(g.pollEvent(), { type: 'overload', cap: 'per-source', source: '10.0.0.1' });
  assert.equal(g.pollEvent(), undefined);
  g.handleTimeout(99 + 9_999);
  assert.equal(g.pollEvent(), undefined, 'still within quietMs of the last eviction');
  assert.equal(g.pollTimeout(), 99 + 10_000);
  g.handleTimeout(99 + 10_000);
  assert.deepEqual(g.pollEvent(), { type: 'overload-over', evicted: 97, durationMs: 96 });
  // The next burst is reported afresh.
  for (let i = 100; i < 104; i++) g.admit(i, '10.0.0.2', 20_000 + i);
  assert.deepEqual(g.pollEvent(), { type: 'overload', cap: 'per-source', source: '10.0.0.2' });
});

test('shed gives up a quarter (at least one), the oldest of the heaviest sources first; nothing when empty', () => {
  const g = new HalfOpenGate<string>(LIMITS);
  assert.deepEqual(g.shed(0), []);
  g.admit('a', '10.0.0.9', 0);
  g.admit('b', '10.0.0.1', 1);
  g.admit('c', '10.0.0.1', 2);
  assert.deepEqual(g.shed(3), ['b']);
  assert.deepEqual(g.pollEvent(), { type: 'overload', cap: 'descriptors', source: '10.0.0.1' });
  const big = new HalfOpenGate<number>({ ...LIMITS, perSource: 100, global: 100 });
  for (let i = 0; i < 40; i++) big.admit(i, i < 30 ? '10.0.0.1' : `10.0.1.${i}`, i);
  assert.deepEqual(big.shed(50), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual([big.stats.shed, big.size], [10, 30]);
});

test('the global cap is at most a quarter of the descriptor limit', () => {
  assert.equal(halfOpenLimitsFor(undefined).global, 512);
  assert.equal(halfOpenLimitsFor(1_048_576).global, 512);
  assert.equal(halfOpenLimitsFor(1024).global, 256);
  assert.equal(halfOpenLimitsFor(2).global, 1);
});

test('sources: an IPv4 address (mapped or not) is its own; IPv6 addresses count by their /64', () => {
  assert.equal(sourceKey('10.1.2.3'), '10.1.2.3');
  assert.equal(sourceKey('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(sourceKey('2001:db8:0:1::5'), '2001:db8:0:1::/64');
  assert.equal(sourceKey('2001:0db8:0000:0001:ffff:1:2:3'), '2001:db8:0:1::/64');
  assert.equal(sourceKey('2001:db8::1'), '2001:db8::/64');
  assert.equal(sourceKey('::1'), '::/64');
  assert.equal(sourceKey('fe80::1:2:3:4'), 'fe80::/64');
});
