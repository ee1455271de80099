/**
 * A group that gets no parity (a clean path) says so in its data shards' index, and the decoder keeps
 * no copy of them; a group with parity is kept and rebuilt as before. Either way every data shard's
 * payload is delivered as it came.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FEC_DATA_PREFIX, FecDecoder, FecEncoder, KIND_FEC_PARITY, type Rebuilt } from '../../../daemon/carrier/kcp/path-fec.js';

/** Sends 64 datagrams at `loss` (the encoder's estimate), dropping the data shards whose number `lost` names. */
function run(loss: number, lost: (n: number) => boolean): { dec: FecDecoder; delivered: number[]; rebuilt: number[] } {
  const enc = new FecEncoder();
  enc.loss = loss;
  const dec = new FecDecoder();
  const delivered: number[] = [];
  const rebuilt: number[] = [];
  const onRebuilt = (r: Rebuilt): void => void rebuilt.push(r.payload[1]!);
  const arrive = (d: Uint8Array): void => {
    if (d[0] === KIND_FEC_PARITY) return dec.parity(d.subarray(1), onRebuilt);
    const r = dec.data(d.subarray(1), onRebuilt);
    assert.ok(r, 'a data shard read as malformed');
    delivered.push(r.payload[1]!);
  };
  for (let n = 0; n < 64; n++) {
    const d = new Uint8Array(FEC_DATA_PREFIX + 100).fill(n, FEC_DATA_PREFIX);
    d[FEC_DATA_PREFIX] = 0;
    const shard = enc.data(d, 100, 0, n, arrive);
    if (!lost(n)) arrive(shard.slice());
  }
  enc.handleTimeout(1_000, arrive);
  return { dec, delivered, rebuilt };
}

test('a clean path\'s data shards are delivered and not kept', () => {
  const r = run(0, () => false);
  assert.deepEqual(r.delivered, Array.from({ length: 64 }, (_, n) => n));
  assert.equal(r.dec.stats.kept, 0);
});

test('a lossy path\'s data shards are kept, and a lost one is rebuilt from parity', () => {
  const r = run(0.05, (n) => n === 20);
  assert.equal(r.delivered.length, 63);
  assert.ok(r.dec.stats.kept >= 63, `${r.dec.stats.kept} shards kept`);
  assert.deepEqual(r.rebuilt, [20]);
});
