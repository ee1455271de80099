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
  const sink = new Uint8Array(65536);
  const sent: Sent[] = [];
  const wire: { at: number; to: Kcp; data: Uint8Array }[] = [];
  let off = 0;
  let got = 0;
  const move = (from: Kcp, to: Kcp, now: number): void => {
    for (let d = from.pollTransmit(); d !== null; d = from.pollTransmit()) {
      const body = d.slice();
      from.recycleTransmit(d);
      if (from === a) sent.push({ at: now, data: body });
      if (rng.chance(0.08)) continue; // lost
      wire.push({ at: now + 15 + rng.int(6), to, data: body });
    }
  };
  for (let now = 0; now < 30_000 && got < total; now++) {
    // Bursts with pauses, so that many timer flushes come with nothing new since the last scan.
    while (off < total && a.canWrite() && now % 40 < 3) {
      const n = Math.min(3000, total - off);
      a.send(data.subarray(off, off + n));
      off += n;
    }
    for (let i = 0; i < wire.length;) {
      const w = wire[i]!;
      if (w.at > now) { i++; continue; }
      wire.splice(i, 1);
      w.to.input(w.data, now);
    }
    for (const k of [a, b]) if (k.pollTimeout() <= now) k.handleTimeout(now);
    for (let n = b.read(sink); n > 0; n = b.read(sink)) {
      assert.deepEqual(sink.subarray(0, n), data.subarray(got, got + n));
      got += n;
    }
    move(a, b, now);
    move(b, a, now);
  }
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
