/**
 * PassScheduler: a closed scheduler holds no timer. A peer layer closing its links re-arms on the way
 * out (each link's end runs a service pass); a timer armed then kept the process alive for its 30 min.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassScheduler } from '../../../daemon/io/pass-scheduler.js';

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('arm() before close() holds a timer; close() drops it; arm() after close() sets none', () => {
  const before = timers();
  const s = new PassScheduler(() => assert.fail('no pass after close'), () => 0);
  s.arm(1_800_000);
  assert.equal(timers(), before + 1, 'armed: one timer');
  s.close();
  assert.equal(timers(), before, 'closed: the timer is gone');
  s.arm(1_000); // earlier than the dropped one: only the close check stops it
  s.kick();
  assert.equal(timers(), before, 'armed after close: still none');
});
