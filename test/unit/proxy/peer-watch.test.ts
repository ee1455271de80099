import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerWatch } from '../../../daemon/proxy/peer-watch.js';

/** Reachable peers, each with a distinct virtual IPv4 (10.0.0.<id>). */
function ids(...peers: number[]): Map<number, number> {
  return new Map(peers.map((p) => [p, 0x0a000000 + p]));
}

/** A watch with a 30 s timeout on a virtual clock, recording its resets. */
function watch(): { w: PeerWatch; resets: string[] } {
  const resets: string[] = [];
  return { w: new PeerWatch(30_000, (peer, why) => resets.push(`${peer}: ${why}`)), resets };
}

test('an outage shorter than the flow timeout resets nothing; the peer\'s return clears it', () => {
  const { w, resets } = watch();
  w.routes(ids(7, 8), 0);
  w.routes(ids(8), 6_000); // 7's session died of silence
  w.down(7, 6_000, 6_000); // silent since t = 0
  w.sweep(29_999);
  w.routes(ids(7, 8), 29_999);
  w.sweep(100_000);
  assert.deepEqual(resets, []);
});

test('unreachable past the timeout, counted from the last packet heard: reset once', () => {
  const { w, resets } = watch();
  w.routes(ids(7), 0);
  w.routes(ids(), 6_000);
  w.down(7, 6_000, 6_000);
  w.sweep(29_999);
  assert.deepEqual(resets, []);
  w.sweep(30_000);
  w.sweep(60_000);
  assert.deepEqual(resets, ['7: peer unreachable for 30 s']);
});

test('a relayed peer whose route went: the timeout runs from the route\'s loss', () => {
  const { w, resets } = watch();
  w.routes(ids(7, 9), 0);
  w.routes(ids(7), 1_000);
  w.sweep(30_999);
  assert.deepEqual(resets, []);
  w.sweep(31_000);
  assert.deepEqual(resets, ['9: peer unreachable for 30 s']);
});

test('a peer that is gone is reset at once, and not again at the timeout', () => {
  const { w, resets } = watch();
  w.routes(ids(7), 0);
  w.routes(ids(), 1_000);
  w.down(7, 0, 1_000);
  w.gone(7);
  w.sweep(100_000);
  assert.deepEqual(resets, ['7: peer gone (restarted or stopped)']);
});

test('a new peer id holding the address of an unreachable peer: that peer restarted, its flows are reset at once', () => {
  const { w, resets } = watch();
  w.routes(ids(7), 0);
  // The restarted node's new session comes up while the old one is still waiting for its dead timer.
  w.routes(new Map([[7, 0x0a000007], [70, 0x0a000007]]), 1_000);
  assert.deepEqual(resets, []);
  w.routes(new Map([[70, 0x0a000007]]), 6_000);
  assert.deepEqual(resets, ['7: peer restarted (a new peer id holds its address)']);
  w.sweep(100_000);
  assert.equal(resets.length, 1);
});
