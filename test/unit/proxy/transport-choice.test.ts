import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseTransport } from '../../../daemon/proxy/transport-choice.js';
import { Feature } from '../../../daemon/peer/route-record.js';

const both = { enableKcpProxy: true, enableQuicProxy: true };
const ALL_INPUT = Feature.KcpInput | Feature.QuicInput;

test('KCP takes precedence over QUIC when the destination accepts both', () => {
  assert.deepEqual(chooseTransport(both, ALL_INPUT, undefined, false), { transport: 'Kcp', reason: 'peer accepts kcp' });
});

test('a destination without KCP input falls back to QUIC, then to plain packets', () => {
  assert.deepEqual(chooseTransport(both, Feature.QuicInput, undefined, false),
    { transport: 'Quic', reason: 'peer does not accept kcp; peer accepts quic' });
  assert.deepEqual(chooseTransport(both, 0, undefined, false),
    { transport: 'Tcp', reason: 'peer does not accept kcp; peer does not accept quic' });
  assert.deepEqual(chooseTransport({ enableKcpProxy: true, enableQuicProxy: false }, Feature.QuicInput, undefined, false),
    { transport: 'Tcp', reason: 'peer does not accept kcp' });
});

test('a first relay that refuses KCP forces the next transport; a direct peer ignores relay flags', () => {
  assert.deepEqual(chooseTransport(both, ALL_INPUT, Feature.NoRelayKcp, true),
    { transport: 'Quic', reason: 'relay refuses kcp; peer accepts quic' });
  assert.equal(chooseTransport(both, ALL_INPUT, Feature.NoRelayKcp, false).transport, 'Kcp');
});

test('unknown destination features or a disabled proxy mean plain packets', () => {
  assert.equal(chooseTransport(both, undefined, undefined, false).transport, 'Tcp');
  assert.deepEqual(chooseTransport({ enableKcpProxy: false, enableQuicProxy: false }, ALL_INPUT, undefined, false),
    { transport: 'Tcp', reason: 'proxy disabled' });
});
