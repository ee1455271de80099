import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SmoltcpStack } from '../../../daemon/intercept/smoltcp/stack.js';
import { TCP_ACK, TCP_SYN } from '../../../daemon/packet/tcp.js';
import { runFuzz } from './fuzz.js';
import { Harness, TestClient } from './harness.js';

test('50,000 malformed, truncated and mutated packets: no crash, memory flat after warm-up', async () => {
  const seed = 0x5eed_0001;
  const stack = await SmoltcpStack.create();
  const r = runFuzz(stack, 50_000, seed);
  const why = `seed ${seed}: ${JSON.stringify(r)}`;
  assert.equal(r.crashes, 0, why);
  assert.equal(r.thrown, 0, why);
  for (const type of ['new', 'writable', 'readable', 'fin', 'closed', 'reset']) {
    assert.ok((r.events[type] ?? 0) > 0, `the fuzz reached '${type}' events: ${why}`);
  }
  assert.equal(r.memoryAtEnd, r.memoryAfterWarmup, why);
  const s = stack.stats();
  assert.ok(s.malformed > 0 && s.noFlow > 0, JSON.stringify(s));
});

test('a trap becomes an error event for each held flow, and a fresh instance serves new flows', async () => {
  const h = new Harness(await SmoltcpStack.create());
  const c1 = h.add(new TestClient('10.0.0.2', 47000, '192.0.2.20', 80));
  const c2 = h.add(new TestClient('10.0.0.3', 47001, '192.0.2.21', 80));
  h.app.onNew = (e) => {
    if (e.src.port === 47000) h.stack.accept(e.id); // c2 stays pending
  };
  h.stack.input(c1.syn(), h.now);
  h.stack.input(c2.syn(), h.now);
  h.runUntil(() => h.app.ofType('writable').length === 1);
  const ids = h.app.ofType('new').map((e) => e.id);

  assert.throws(() => h.stack.debugPanic(), { code: 'TSTIER_E_CLOSED' });
  const errors = [];
  for (let e; (e = h.stack.pollEvent()); ) errors.push(e);
  assert.deepEqual(errors.map((e) => [e.type, e.id]).sort(), ids.map((id) => ['error', id]).sort());
  assert.equal(h.stack.stats().crashes, 1);
  assert.throws(() => h.stack.send(ids[0]!, new Uint8Array(10)), { code: 'TSTIER_E_CLOSED' });

  // The client's next segment meets a stack that never knew it: RST, like a rebooted host.
  h.stack.input(c1.packet(TCP_ACK), h.now);
  h.exchange();
  assert.ok(c1.reset);

  const c3 = h.add(new TestClient('10.0.0.4', 47002, '192.0.2.22', 80));
  h.app.onNew = (e) => h.stack.accept(e.id);
  h.stack.input(c3.syn(), h.now);
  h.runUntil(() => c3.established);
  const fresh = h.app.ofType('new').at(-1)!;
  assert.equal(fresh.src.port, 47002);
  assert.ok(fresh.id > Math.max(...ids), 'ids of the dead instance are not reused');
  assert.equal(h.emitted.at(-1)!.flags & TCP_SYN, TCP_SYN);
});
