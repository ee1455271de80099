import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerWatch } from '../../../daemon/proxy/peer-watch.js';

/** A watch with a 30 s timeout on a virtual clock, recording its resets. */
function watch(): { w: PeerWatch; resets: string[] } {
  const resets: string[] = [];
  return { w: new PeerWatch(30_000, (peer, why) => resets.push(`${peer}: ${why}`)), resets };
}

test('an outage shorter than the flow timeout resets nothing; the peer\'s return clears it', () => {
  const { w, resets } = watch();
  w.routes([7, 8], 0);
  w.routes([8], 6_000); // 7's session died of silence
  w.down(7, 6_000, 6_000); // silent since t = 0
  w.sweep(29_999);
  w.routes([7, 8], 29_999);
  w.sweep(100_000);
  assert.deepEqual(resets, []);
});

test('unreachable past the timeout, counted from the last packet heard: reset once', () => {
  const { w, resets } = watch();
  w.routes([7], 0);
  w.routes([], 6_000);
  w.down(7, 6_000, 6_000);
  w.sweep(29_999);
  assert.deepEqual(resets, []);
  w.sweep(30_000);
  w.sweep(60_000);
  assert.deepEqual(resets, ['7: peer unreachable for 30 s']);
});

test('a relayed peer whose route went: the timeout runs from the route\'s loss', () => {
  const { w, resets } = watch();
  w.routes([7, 9], 0);
  w.routes([7], 1_000);
  w.sweep(30_999);
  assert.deepEqual(resets, []);
  w.sweep(31_000);
  assert.deepEqual(resets, ['9: peer unreachable for 30 s']);
});

test('a peer that is gone is reset at once, and not again at the timeout', () => {
  const { w, resets } = watch();
  w.routes([7], 0);
  w.routes([], 1_000);
  w.down(7, 0, 1_000);
  w.gone(7);
  w.sweep(100_000);
  assert.deepEqual(resets, ['7: peer gone (restarted or stopped)']);
});
