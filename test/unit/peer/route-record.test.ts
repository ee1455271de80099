import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecord, decodeSync, encodeRecord, encodeSync, Feature, MAX_SYNC_PAYLOAD,
  type RouteRecord } from '../../../daemon/peer/route-record.js';

const rec = (peerId: number, nNeighbours = 2): RouteRecord => ({
  peerId, version: 7, timestamp: 1.7e12, hostname: 'höst-ü', ipv4: 0x0a000001, prefix: 24,
  proxyCidrs: ['192.168.1.0/24', '172.16.0.0/16->10.1.0.0/16'], features: Feature.KcpInput | Feature.NoRelayQuic,
  neighbours: Array.from({ length: nNeighbours }, (_, i) => ({ peerId: 1000 + i, cost: 1 })),
});

test('a record survives encode/decode unchanged', () => {
  assert.deepEqual(decodeRecord(encodeRecord(rec(42))), rec(42));
});

test('many records split into messages that each fit one datagram, and all come back', () => {
  const records = Array.from({ length: 60 }, (_, i) => rec(i + 1, 20));
  const msgs = encodeSync(records.map(encodeRecord));
  assert.ok(msgs.length > 1);
  for (const m of msgs) assert.ok(m.length <= MAX_SYNC_PAYLOAD);
  assert.deepEqual(msgs.flatMap((m) => decodeSync(m)!), records);
});

test('every truncation and a trailing byte are refused, not thrown', () => {
  const [m] = encodeSync([encodeRecord(rec(5))]);
  for (let n = 0; n < m!.length; n++) assert.equal(decodeSync(m!.subarray(0, n)), null, `cut at ${n}`);
  assert.equal(decodeSync(Buffer.concat([m!, Buffer.from([0])])), null);
});
