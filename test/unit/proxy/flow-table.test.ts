import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowTable } from '../../../daemon/proxy/flow-table.js';

test('entries list with live counters, linger after close, then go', () => {
  const t = new FlowTable(10_000);
  const a = t.add({ src: '10.0.0.1:4000', dst: '10.0.0.3:80', role: 'src', transport: 'Kcp', reason: 'peer accepts kcp', startTime: 1700000000 });
  const b = t.add({ src: '10.0.0.1:4001', dst: '10.0.0.3:81', role: 'src', transport: 'Tcp', reason: 'peer disabled kcp input', startTime: 1700000001 });
  a.state = 'Connected';
  a.counters.txBytes = 123;
  a.counters.rttMs = 4.5;
  a.counters.duplicates = 2;
  const rows = t.list();
  assert.equal(rows.length, 2);
  assert.deepEqual(rows[0], {
    src: '10.0.0.1:4000', dst: '10.0.0.3:80', startTime: 1700000000, state: 'Connected', transportType: 'Kcp',
    role: 'src', txBytes: 123, rxBytes: 0, rttMs: 4.5, retransmits: 0, duplicates: 2,
    reason: 'peer accepts kcp',
  });
  t.close(b, 5_000);
  assert.equal(t.openCount, 1);
  t.sweep(14_999);
  assert.equal(t.size, 2, 'still lingering');
  assert.equal(t.list()[1]!.state, 'Closed');
  t.sweep(15_000);
  assert.deepEqual(t.list().map((r) => r.dst), ['10.0.0.3:80']);
  t.close(b, 20_000); // closing twice is harmless
  assert.equal(t.size, 1);
});
