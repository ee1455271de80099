/**
 * A thousand flows at once through the QUIC proxy, as test/netns/kcp-load.test.ts does through KCP:
 * 1,000 concurrent connections × 1 MiB from A (--enable-quic-proxy) to a sink behind B. Proves: every
 * flow arrives byte-exact (sha256 at both ends); every flow was carried by QUIC (none fell back to
 * plain packets: formerly ~745 did, held back by a 255-stream limit; the proxy table, polled more often
 * than a closed row lingers, never lists one as Tcp); and afterwards no row is left behind on either
 * node (the tables drain to empty).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unavailableReason } from './lib/netns.js';
import { REDIRECT_STALL_SECS, runFlowLoad } from './lib/load.js';

const SKIP = unavailableReason();
const FLOWS = 1000;
const BYTES = 1 << 20;

test('QUIC proxy: 1,000 concurrent flows x 1 MiB, byte-exact, all over QUIC, no row left behind', { skip: SKIP ?? false, timeout: 900_000 }, async (t) => {
  const run = await runFlowLoad(t, {
    prefix: 'tf14m', veth: '10.252.9', vnet: '10.144.191', proxyFlag: '--enable-quic-proxy',
    flows: FLOWS, bytes: BYTES, stallSecs: REDIRECT_STALL_SECS, timeoutMs: 600_000,
  });
  t.diagnostic(`${FLOWS} x ${BYTES} B in ${run.done.secs.toFixed(1)} s`);
  assert.deepEqual([run.done.ok, run.done.failed, run.done.errors], [FLOWS, 0, []]);

  assert.equal(run.seen.size, FLOWS, 'every flow was listed on A');
  const other = [...run.seen].filter(([, kind]) => kind !== 'Quic');
  assert.deepEqual(other.slice(0, 3), [], `flows that did not go over QUIC (${other.length})`);

  assert.deepEqual(run.leftA.slice(0, 3), [], `A's proxy table did not drain (${run.leftA.length} rows)`);
  assert.deepEqual(run.leftB.slice(0, 3), [], `B's proxy table did not drain (${run.leftB.length} rows)`);
});
