/**
 * faketcp:// between easytier-core nodes in namespaces (names start with "tf12n"); nftables drops every
 * UDP datagram on the a–b link both ways, so A and B can only talk in fake TCP:
 *
 *   a (node-a, dials faketcp://, --disable-kcp-input) ──faketcp, 10.121.0.0/24── b (node-b) ──udp://, 10.122.0.0/24── c (node-c)
 *
 * Proves: A and B peer and ping each other; a flow from A to B goes over KCP and one from B to A over
 * QUIC (A refuses KCP), 24 MiB each way, byte-exact, as `easytier-cli proxy` lists them; the line
 * relays A ↔ C across the faketcp and the udp hop (ping, and a KCP flow); when A's kernel connection
 * is killed (as a middlebox RST would), A redials and peers again; after B's SIGTERM no nftables table
 * of ours is left in b; after A's SIGKILL its table is left, and A's restart removes it; at the end,
 * after SIGINT and SIGTERM, no table of ours is left anywhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { cliJson, startCore, waitPeers, waitRows, type CoreNode } from './lib/core.js';
import { runFlows } from './lib/proxy.js';

const SKIP = unavailableReason();
const MIB = 1 << 20;
const FLOWS = new URL('./fixtures/proxy-flows.js', import.meta.url);

/** Drops UDP on one interface (the a–b link) both ways. */
const dropUdp = (ifname: string): string => `table inet tf12n_drop_udp {
  chain input { type filter hook input priority 0; iifname "${ifname}" meta l4proto udp counter drop; }
  chain output { type filter hook output priority 0; oifname "${ifname}" meta l4proto udp counter drop; }
}
`;

const common = (ip: string, host: string): string[] =>
  ['--network-name', 'tf12net', '--network-secret', 'faketcp-secret', '-i', ip, '--hostname', host, '--dev-name', 'tf12tun',
    '--log-level', 'info', '--enable-kcp-proxy', '--enable-quic-proxy'];
const startB = (b: Namespace): Promise<CoreNode> =>
  startCore(b, [...common('10.144.121.2', 'node-b'), '-l', 'faketcp://10.121.0.2:11013', '-l', 'udp://10.122.0.1:11010']);
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

/** The remote URIs of a node's live peer connections. */
async function peerUris(ns: Namespace): Promise<string[]> {
  return (await cliJson<{ remote: string }>(ns, ['peer'])).map((r) => r.remote);
}

test('faketcp:// peers with UDP dropped: ping, KCP and QUIC flows, a relayed line, redial, rules removed on every exit',
  { skip: SKIP ?? false, timeout: 240_000 }, async (t) => {
    const net = await Netns.create('tf12n', t);
    const [a, b, c] = [await net.ns('a'), await net.ns('b'), await net.ns('c')];
    const ab = await net.link(a, b, '10.121.0.1/24', '10.121.0.2/24');
    await net.link(b, c, '10.122.0.1/24', '10.122.0.2/24');
    for (const ns of [a, b]) await ns.exec(['nft', '-f', '-'], { input: dropUdp(ab) });
    let nb = await startB(b);
    let na = await startA(a);
    await startCore(c, [...common('10.144.121.3', 'node-c'), '--no-listener', '-p', 'udp://10.122.0.1:11010']);
    await waitPeers(a, 2);
    await waitPeers(c, 2);
    assert.deepEqual(await ourTables(a), [`tstier_faketcp_${na.proc.child.pid}`]);
    assert.deepEqual(await ourTables(b), [`tstier_faketcp_${nb.proc.child.pid}`]);
    assert.deepEqual(await ourTables(c), [], 'a udp-only node has no table');
    for (const ns of [a, b, c]) await ns.node(FLOWS, ['serve', '0.0.0.0', '7000']).waitForEvent('listening');

    await t.test('ping both ways over faketcp', async () => {
      await ping(a, '10.144.121.2');
      await ping(b, '10.144.121.1');
    });

    await t.test('A -> B over KCP and B -> A over QUIC, 24 MiB each way, byte-exact', async () => {
      const [toB, toA] = await Promise.all([
        runFlows(a, '10.144.121.2', 7000, 1, 24 * MIB, 24 * MIB, false, 1),
        runFlows(b, '10.144.121.1', 7000, 1, 24 * MIB, 24 * MIB, false, 2),
      ]);
      assert.deepEqual([toB.ok, toB.failed, toB.errors, toA.ok, toA.failed, toA.errors], [1, 0, [], 1, 0, []]);
      const fromA = await waitRows(a, 'A lists its flow to B', (rs) => rs.some((r) => r.dst === '10.144.121.2:7000' && r.role !== 'dst'));
      assert.ok(fromA.filter((r) => r.dst === '10.144.121.2:7000' && r.role !== 'dst').every((r) => r.transport_type === 'Kcp'), JSON.stringify(fromA));
      const fromB = await waitRows(b, 'B lists its flow to A', (rs) => rs.some((r) => r.dst === '10.144.121.1:7000' && r.role !== 'dst'));
      assert.ok(fromB.filter((r) => r.dst === '10.144.121.1:7000' && r.role !== 'dst').every((r) => r.transport_type === 'Quic'), JSON.stringify(fromB));
    });

    await t.test('the line relays A <-> C across the faketcp and the udp hop', async () => {
      await ping(a, '10.144.121.3');
      await ping(c, '10.144.121.1');
      const r = await runFlows(a, '10.144.121.3', 7000, 2, 4 * MIB, 4 * MIB, false, 3);
      assert.deepEqual([r.ok, r.failed, r.errors], [2, 0, []]);
      assert.deepEqual(await peerUris(a), ['faketcp://10.121.0.2:11013'], 'A reaches C only through B');
    });

    await t.test('a killed kernel connection (as by a middlebox RST) ends the link; A redials and peers again', async () => {
      const before = await a.exec(['ss', '-Htn', 'state', 'established', 'dst', '10.121.0.2']);
      assert.equal(before.stdout.trim().split('\n').length, 1, before.stdout);
      await a.exec(['ss', '-K', 'dst', '10.121.0.2', 'dport', '=', '11013']);
      const gone = before.stdout.trim().split(/\s+/)[2]; // our local address:port
      let after = '';
      for (let i = 0; i < 100; i++) {
        after = (await a.exec(['ss', '-Htn', 'state', 'established', 'dst', '10.121.0.2'])).stdout.trim();
        if (after !== '' && !after.includes(gone!)) break;
        await new Promise((r) => setTimeout(r, 100)); // the connector's backoff: nothing to wait on from here
      }
      assert.ok(after !== '' && !after.includes(gone!), `A dialled a new connection: ${after}`);
      await ping(a, '10.144.121.2');
    });

    await t.test('SIGTERM leaves no rule; SIGKILL leaves one that the restart replaces; SIGINT leaves none', async () => {
      await nb.proc.stop(5000);
      assert.equal(nb.proc.child.signalCode, null, 'B exited by itself on SIGTERM');
      assert.deepEqual(await ourTables(b), [], 'no table of ours in b after SIGTERM');
      nb = await startB(b);
      na.proc.kill('SIGKILL');
      await na.proc.exited;
      const killed = `tstier_faketcp_${na.proc.child.pid}`;
      assert.deepEqual(await ourTables(a), [killed], 'a killed process leaves its table');
      na = await startA(a);
      await waitPeers(a, 2);
      assert.deepEqual(await ourTables(a), [`tstier_faketcp_${na.proc.child.pid}`], 'the restart removed the stale table');
      await ping(a, '10.144.121.2');
      na.proc.kill('SIGINT');
      await na.proc.exited;
      assert.equal(na.proc.child.signalCode, null, 'A exited by itself on SIGINT');
      await nb.proc.stop(5000);
      assert.deepEqual([await ourTables(a), await ourTables(b)], [[], []], 'nothing of ours left after SIGINT and SIGTERM');
    });
  });
