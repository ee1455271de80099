/**
 * Adaptive FEC and the host's own drops: datagrams this node's socket dropped unread crossed the path
 * fine, so the loss the decoder reports leaves them out (up to what is missing), and a clean path
 * whose receiver drops 10 % of datagrams in its own socket gets no parity; the same holes with no
 * socket drops to explain them are path loss and get parity. Virtual clock, seeded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FEC_DATA_PREFIX, FecDecoder, FecEncoder, parityFor } from '../../../daemon/carrier/kcp/path-fec.js';
import { Rng } from '../../sim/world.js';

/** 10 s of 2 datagrams a ms, 10 % of them lost at the receiver; `inSocket`: lost to its socket, counted by hostDrops. */
function run(inSocket: boolean, seed: number): { loss: number; parity: number } {
  const enc = new FecEncoder();
  const dec = new FecDecoder();
  const rng = new Rng(seed);
  let socketDrops = 0;
  const hostDrops = inSocket ? (): number => socketDrops : undefined;
  const rebuilt = (): void => {};
  const deliver = (d: Uint8Array): void => {
    if (rng.chance(0.1)) {
      socketDrops++; // counted whether or not the carrier is told
      return;
    }
    if (d[0] === 4) dec.parity(d.subarray(1), rebuilt);
    else dec.data(d.subarray(1), rebuilt);
  };
  for (let now = 0; now < 10_000; now++) {
    for (let i = 0; i < 2; i++) {
      const d = new Uint8Array(FEC_DATA_PREFIX + 200);
      d[FEC_DATA_PREFIX] = 0;
      deliver(enc.data(d, 200, 0, now, deliver));
    }
    if (enc.deadline() <= now) enc.handleTimeout(now, deliver);
    const report = dec.takeReport(now, hostDrops);
    if (report) enc.report(report.subarray(1));
  }
  return { loss: enc.loss, parity: enc.stats.parity };
}

test('socket drops the host counted are not path loss: no parity for them; the same holes unexplained get parity', () => {
  for (const seed of [1, 2, 3]) {
    const host = run(true, seed);
    const path = run(false, seed);
    assert.equal(parityFor(host.loss), 0, `seed ${seed}: host drops read as loss ${host.loss}`);
    assert.ok(host.parity < 50, `seed ${seed}: ${host.parity} parity shards for host drops`);
    assert.ok(path.loss > 0.07 && path.loss < 0.13, `seed ${seed}: path loss measured ${path.loss}`);
    assert.ok(path.parity > 1000, `seed ${seed}: ${path.parity} parity shards at 10 % path loss`);
  }
});
