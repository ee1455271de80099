/** The option checks and the memory view both wasm crates share (daemon/wasm/). */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { SmoltcpStack } from '../../../daemon/intercept/smoltcp/stack.js';
import { QuicEndpoint } from '../../../daemon/carrier/quic/endpoint.js';
import { WasmMemory } from '../../../daemon/wasm/memory.js';
import { checkIntegerOptions } from '../../../daemon/wasm/options.js';

test('integer options: out of range, fractional or missing values name their key', () => {
  const limits = { mtu: [576, 65535], maxFlows: [1, 10] } as const;
  checkIntegerOptions('x', { mtu: 1280, maxFlows: 10 }, limits);
  assert.throws(() => checkIntegerOptions('x', { mtu: 100, maxFlows: 1 }, limits),
    { code: 'TSTIER_E_BAD_CONFIG', message: 'x.mtu: 100 is not an integer in [576, 65535]' });
  assert.throws(() => checkIntegerOptions('x', { mtu: 1280, maxFlows: 1.5 }, limits), /x\.maxFlows: 1\.5 is not an integer/);
  assert.throws(() => checkIntegerOptions('x', { mtu: 1280 }, limits), /x\.maxFlows: undefined is not an integer/);
});

test('both crates check their options the same way', async () => {
  await assert.rejects(SmoltcpStack.create({ mtu: 100 }), { message: 'smoltcp.mtu: 100 is not an integer in [576, 65535]' });
  await assert.rejects(QuicEndpoint.create({ maxStreams: -1 }), { message: 'quic.maxStreams: -1 is not an integer in [0, 1048576]' });
});

test('the memory view is renewed after the memory grew (the old buffer is detached), and only then', () => {
  const memory = { buffer: new ArrayBuffer(64) };
  const view = new WasmMemory(memory);
  const first = view.bytes();
  assert.equal(view.bytes(), first, 'no new view while the buffer is the same');
  first[3] = 7;
  const grown = new ArrayBuffer(128);
  new Uint8Array(grown).set(first);
  memory.buffer = grown;
  assert.notEqual(view.bytes(), first);
  assert.equal(view.bytes()[3], 7);
  assert.equal(view.byteLength, 128);
  assert.equal(view.float64().length, 16);
});
