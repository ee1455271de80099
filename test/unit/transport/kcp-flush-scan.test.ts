/**
 * A flush skips the segments already in flight when nothing can have changed for them (flush-scan.ts).
 * That must change nothing on the wire: two senders, one that skips and one that always scans, driven
 * through the same seeded lossy, reordering link, must send the very same datagrams at the same
 * times, with and without RACK, and every byte must arrive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kcp } from '../../../daemon/transport/kcp/kcp.js';
import { Rng } from '../../sim/world.js';
import { drivePair } from './kcp-wire-loop.js';

interface Sent { at: number; data: Uint8Array }

function run(seed: number, rack: boolean, skip: boolean): { sent: Sent[]; got: number; total: number } {
  // As the carrier drives it: input() does not flush, the timer does (and so finds what input changed).
  const opts = { conv: 9, mtu: 1200, sndWnd: 64, rcvWnd: 64, nodelay: 1, interval: 10, resend: 2, nc: 1, streamMode: true, rack,
    inputFlushes: false };
  const a = new Kcp(opts);
  const b = new Kcp(opts);
  if (!skip) (a as unknown as { scan: { canSkip(): boolean } }).scan.canSkip = () => false;
  const rng = new Rng(seed);
  const total = 1_500_000;
  const data = rng.bytes(total);
  const sent: Sent[] = [];
  let off = 0;
  const feed = (now: number): void => {
    // Bursts with pauses, so that many timer flushes come with nothing new since the last scan.
    while (off < total && a.canWrite() && now % 40 < 3) {
      const n = Math.min(3000, total - off);
      a.send(data.subarray(off, off + n));
      off += n;
    }
  };
  const { got } = drivePair(a, b, data, 30_000, feed, (from, body, now) => {
    if (from === a) sent.push({ at: now, data: body });
    return rng.chance(0.08) ? -1 : 15 + rng.int(6); // lost, or delayed
  });
  return { sent, got, total };
}

for (const rack of [true, false]) {
  test(`skipping the scan of segments in flight changes nothing on the wire (${rack ? 'RACK' : 'duplicate ACKs'})`, () => {
    for (const seed of [1, 2, 3]) {
      const skipping = run(seed, rack, true);
      const scanning = run(seed, rack, false);
      assert.equal(skipping.got, skipping.total, 'every byte arrived');
      assert.equal(skipping.sent.length, scanning.sent.length, `seed ${seed}: as many datagrams`);
      for (let i = 0; i < skipping.sent.length; i++) {
        assert.equal(skipping.sent[i]!.at, scanning.sent[i]!.at, `seed ${seed}: datagram ${i} at the same time`);
        assert.deepEqual(skipping.sent[i]!.data, scanning.sent[i]!.data, `seed ${seed}: datagram ${i} the same`);
      }
    }
  });
}
