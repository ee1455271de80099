/**
 * Secure mode (--secure-mode) between two tstier nodes on EasyTier's wire, each with a real TUN in
 * its own namespace (no default route). A dials B through a UDP relay in its own namespace
 * (fixtures/udp-replay-tap.ts) that can replay what it relayed. Proves: routes and pings both ways,
 * a TCP transfer hashed at both ends, a captured sealed Data packet replayed five times is dropped
 * five times and counted as replayed, a node without secure mode is refused with a log line
 * naming the mismatch, and never routed, and in a line A – B – C the ends ping through B in their
 * own relay session.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { cliJson, startCore, type CoreNode, type RouteRow, waitRouteRows } from './lib/core.js';

const SKIP = unavailableReason();
const TAP = new URL('./fixtures/udp-replay-tap.js', import.meta.url);
const TRANSFER = new URL('./fixtures/node-tcp-transfer.js', import.meta.url);
const TRANSFER_BYTES = 8 * 1024 * 1024;

interface StatRow { name: string; labels: string; value: number }

const core = (ns: Namespace, ip: string, host: string, extra: string[]): Promise<CoreNode> =>
  startCore(ns, ['--peer-protocol', 'easytier', '--network-name', 'th8m-net', '--network-secret', 'th8m-secret', '-i', ip,
    '--hostname', host, '--dev-name', 'th8mtun', ...extra]);


/** The replayed-packet count B's live connections report (`easytier-cli stats`), once it reaches `atLeast`. */
async function replayedCount(ns: Namespace, atLeast: number): Promise<number> {
  let n = 0;
  for (let i = 0; i < 100 && n < atLeast; i++) {
    const rows = await cliJson<StatRow>(ns, ['stats']);
    n = rows.filter((r) => r.name === 'tstier_peer_dropped_packets_total' && r.labels.endsWith('reason=replayed')).reduce((a, r) => a + r.value, 0);
  }
  return n;
}

const ping = (ns: Namespace, ip: string) => ns.exec(['ping', '-c', '2', '-i', '0.2', '-w', '10', ip]);

test('secure mode between tstier nodes: routes, pings, a hashed transfer, replays dropped and counted, a mismatch refused, a relayed line', { skip: SKIP ?? false, timeout: 90_000 }, async (t) => {
  const net = await Netns.create('th8m', t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  await net.link(a, b, '198.18.82.1/24', '198.18.82.2/24');
  const nb = await core(b, '10.82.0.2', 'sec-b', ['--secure-mode', '-l', 'udp://0.0.0.0:11010']);
  const tap = a.node(TAP, ['127.0.0.1:12000', '198.18.82.2:11010']);
  await tap.waitForEvent('listening');
  const na = await core(a, '10.82.0.1', 'sec-a', ['--secure-mode', '--no-listener', '-p', 'udp://127.0.0.1:12000']);

  await waitRouteRows(a, 'B listed', (r) => r.some((x) => x.peer_id === nb.peerId && x.cost === 1));
  await waitRouteRows(b, 'A listed', (r) => r.some((x) => x.peer_id === na.peerId && x.cost === 1));
  await ping(a, '10.82.0.2');
  await ping(b, '10.82.0.1');

  const sink = b.node(TRANSFER, ['sink', '10.82.0.2', '5201']);
  await sink.waitForEvent('listening');
  const source = a.node(TRANSFER, ['source', '10.82.0.2', '5201', String(TRANSFER_BYTES)]);
  const [sent, got] = await Promise.all([
    source.waitForEvent<{ bytes: number; sha256: string }>('done', 60_000),
    sink.waitForEvent<{ bytes: number; sha256: string }>('done', 60_000),
  ]);
  assert.equal(got.bytes, TRANSFER_BYTES);
  assert.equal(got.sha256, sent.sha256);

  assert.equal(await replayedCount(b, 0), 0, 'nothing replayed yet');
  tap.send('replay 5');
  assert.equal((await tap.waitForEvent<{ count: number }>('replayed')).count, 5);
  assert.equal(await replayedCount(b, 5), 5, 'each replay dropped and counted once');
  await ping(a, '10.82.0.2'); // the link survives the replays

  // A node without secure mode is refused by name of the mismatch, and never routed.
  await na.proc.stop();
  const plain = await core(a, '10.82.0.3', 'plain-a', ['--no-listener', '-p', 'udp://198.18.82.2:11010']);
  await nb.proc.waitForLine(new RegExp(`peer handshake refused peer_id=${plain.peerId} .*secure mode mismatch`), 15_000);
  assert.ok(!(await cliJson<RouteRow>(b, ['route'])).some((r) => r.peer_id === plain.peerId));
  await plain.proc.stop();

  // A line A – B – C: the ends are no neighbours, so they talk in a relay session (Noise IK) through B.
  const c = await net.ns('c');
  await net.link(b, c, '198.18.88.2/24', '198.18.88.3/24');
  const nc = await core(c, '10.82.0.4', 'sec-c', ['--secure-mode', '--no-listener', '-p', 'udp://198.18.88.2:11010']);
  const na2 = await core(a, '10.82.0.1', 'sec-a', ['--secure-mode', '--no-listener', '-p', 'udp://198.18.82.2:11010']);
  await waitRouteRows(a, 'C at cost 2', (r) => r.some((x) => x.peer_id === nc.peerId && x.cost === 2));
  await ping(a, '10.82.0.4');
  await ping(c, '10.82.0.1');
  await Promise.all([na2.proc.stop(), nc.proc.stop(), nb.proc.stop(), tap.stop()]);
});
