/**
 * faketcp:// between two easytier-core nodes in namespaces (names start with "tf12n") where nftables
 * drops every UDP datagram both ways, so the peers can only talk in fake TCP:
 *
 *   a (node-a, dials faketcp://10.121.0.2:11013, --disable-kcp-input) ──10.121.0.0/24── b (node-b, listens)
 *
 * Proves: the peers come up and ping each other; a flow from A to B goes over KCP and one from B to A
 * over QUIC (A refuses KCP), both byte-exact each way; after B's SIGTERM no nftables table of ours is
 * left in b; after A's SIGKILL its table is left, and A's restart removes it and peers again; at the
 * end, after SIGTERM, no table of ours is left anywhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { startCore, waitPeers, waitRows, type CoreNode } from './lib/core.js';
import { runFlows } from './lib/proxy.js';

const SKIP = unavailableReason();
const MIB = 1 << 20;

const DROP_UDP = `table inet tf12n_drop_udp {
  chain input { type filter hook input priority 0; meta l4proto udp counter drop; }
  chain output { type filter hook output priority 0; meta l4proto udp counter drop; }
}
`;

const common = (ip: string, host: string): string[] =>
  ['--network-name', 'tf12net', '--network-secret', 'faketcp-secret', '-i', ip, '--hostname', host, '--dev-name', 'tf12tun',
    '--log-level', 'info', '--enable-kcp-proxy', '--enable-quic-proxy'];
const startB = (b: Namespace): Promise<CoreNode> =>
  startCore(b, [...common('10.144.121.2', 'node-b'), '-l', 'faketcp://10.121.0.2:11013']);
const startA = (a: Namespace): Promise<CoreNode> =>
  startCore(a, [...common('10.144.121.1', 'node-a'), '--no-listener', '--disable-kcp-input', '-p', 'faketcp://10.121.0.2:11013']);

/** The nftables tables of ours (tstier_faketcp_<pid>) in a namespace. */
async function ourTables(ns: Namespace): Promise<string[]> {
  const r = await ns.exec(['nft', 'list', 'tables', 'inet']);
  return [...r.stdout.matchAll(/tstier_faketcp_\d+/g)].map((m) => m[0]).sort();
}

async function ping(from: Namespace, to: string): Promise<void> {
  await from.exec(['ping', '-c', '3', '-i', '0.2', '-W', '5', to]);
}

test('faketcp:// peers with UDP dropped: ping, KCP and QUIC proxied flows, rules removed on every exit', { skip: SKIP ?? false, timeout: 240_000 }, async (t) => {
  const net = await Netns.create('tf12n', t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  await net.link(a, b, '10.121.0.1/24', '10.121.0.2/24');
  for (const ns of [a, b]) await ns.exec(['nft', '-f', '-'], { input: DROP_UDP });
  let nb = await startB(b);
  let na = await startA(a);
  await waitPeers(a, 1);
  await waitPeers(b, 1);
  assert.deepEqual(await ourTables(a), [`tstier_faketcp_${na.proc.child.pid}`]);
  assert.deepEqual(await ourTables(b), [`tstier_faketcp_${nb.proc.child.pid}`]);

  await t.test('ping both ways', async () => {
    await ping(a, '10.144.121.2');
    await ping(b, '10.144.121.1');
  });

  await t.test('A -> B over KCP and B -> A over QUIC, 8 MiB each way, byte-exact', async () => {
    for (const ns of [a, b]) await ns.node(new URL('./fixtures/proxy-flows.js', import.meta.url), ['serve', '0.0.0.0', '7000']).waitForEvent('listening');
    const [ab, ba] = await Promise.all([
      runFlows(a, '10.144.121.2', 7000, 1, 8 * MIB, 8 * MIB, false, 1),
      runFlows(b, '10.144.121.1', 7000, 1, 8 * MIB, 8 * MIB, false, 2),
    ]);
    assert.deepEqual([ab.ok, ab.failed, ab.errors, ba.ok, ba.failed, ba.errors], [1, 0, [], 1, 0, []]);
    const fromA = await waitRows(a, 'A lists its flow to B', (rs) => rs.some((r) => r.dst === '10.144.121.2:7000' && r.role !== 'dst'));
    assert.ok(fromA.filter((r) => r.dst === '10.144.121.2:7000' && r.role !== 'dst').every((r) => r.transport_type === 'Kcp'), JSON.stringify(fromA));
    const fromB = await waitRows(b, 'B lists its flow to A', (rs) => rs.some((r) => r.dst === '10.144.121.1:7000' && r.role !== 'dst'));
    assert.ok(fromB.filter((r) => r.dst === '10.144.121.1:7000' && r.role !== 'dst').every((r) => r.transport_type === 'Quic'), JSON.stringify(fromB));
  });

  await t.test('SIGTERM leaves no rule; SIGKILL leaves one that the restart replaces', async () => {
    await nb.proc.stop(5000);
    assert.equal(nb.proc.child.signalCode, null, 'B exited by itself on SIGTERM');
    assert.deepEqual(await ourTables(b), [], 'no table of ours in b after SIGTERM');
    nb = await startB(b);
    na.proc.kill('SIGKILL');
    await na.proc.exited;
    const killed = `tstier_faketcp_${na.proc.child.pid}`;
    assert.deepEqual(await ourTables(a), [killed], 'a killed process leaves its table');
    na = await startA(a);
    await waitPeers(a, 1);
    assert.deepEqual(await ourTables(a), [`tstier_faketcp_${na.proc.child.pid}`], 'the restart removed the stale table');
    await ping(a, '10.144.121.2');
    await na.proc.stop(5000);
    await nb.proc.stop(5000);
    assert.deepEqual([await ourTables(a), await ourTables(b)], [[], []], 'nothing of ours left after SIGTERM');
  });
});
