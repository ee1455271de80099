/**
 * tstier's KCP proxy toward the real EasyTier 2.6.4 over a lossy link: the two namespaces are joined
 * only by the packet-level impairment relay (bench/packet-relay.ts; 5 % loss and 20 ms each way,
 * seeded), tstier's node in A dials EasyTier in B and carries two flows to a server in B, 2 MiB up
 * each, byte-exact at both ends, listed as Kcp in tstier's table. Before tstier's kcp-sys sender was
 * paced, ikcp's congestion window moved about 0.1 MB/s over such a link and this took a minute.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason } from './lib/netns.js';
import { cliJson, startCore, type ProxyRow } from './lib/core.js';
import { easytierUnavailable, etConfig, startEasyTier } from './lib/easytier.js';

const SKIP = unavailableReason() ?? easytierUnavailable();
const NET = { name: 's19h1-net', secret: 's19h1-secret' };
const RELAY = new URL('../../bench/packet-relay.js', import.meta.url);
const FLOWS_FIXTURE = new URL('./fixtures/duplex-flows.js', import.meta.url);
const FLOWS = 2;
const UP = 2 * 1024 * 1024;
const DOWN = 64 * 1024;

test('tstier → EasyTier KCP proxy over 5 % loss and 20 ms each way: 2 flows of 2 MiB arrive whole', { skip: SKIP ?? false, timeout: 120_000 }, async (t) => {
  const net = await Netns.create('s19h1l', t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  const relay = a.node(RELAY, ['--peer-ns', b.name, '--a', '198.18.91.1/24', '--b', '198.18.91.2/24', '--loss', '0.05', '--delay', '20', '--seed', '91']);
  await relay.waitForLine(/^ready$/);
  const et = await startEasyTier(b, etConfig({ ...NET, ipv4: '10.91.0.2/24', hostname: 'et-b', listeners: ['udp://0.0.0.0:11010'] }));
  const node = await startCore(a, ['--peer-protocol', 'easytier', '--network-name', NET.name, '--network-secret', NET.secret,
    '-i', '10.91.0.1', '--hostname', 'ts-a', '--dev-name', 's19tun', '--enable-kcp-proxy', '--no-listener', '-p', 'udp://198.18.91.2:11010']);
  await et.waitRoutes([node.peerId]);
  const server = b.node(FLOWS_FIXTURE, ['serve', '10.91.0.2', '5391']);
  await server.waitForEvent('listening');
  const client = a.node(FLOWS_FIXTURE, ['flows', '10.91.0.2', '5391', String(FLOWS), String(UP), String(DOWN)]);
  const done = await client.waitForEvent<{ ok: number; errors: string[] }>('done', 60_000);
  assert.deepEqual([done.ok, done.errors], [FLOWS, []], 'every downstream byte-exact');
  for (let i = 0; i < FLOWS; i++) {
    const c = await server.waitForEvent<{ ok: boolean; bytes: number }>('conn', 20_000); // ikcp's congestion window took ~40 s
    assert.deepEqual([c.ok, c.bytes], [true, UP], 'an upstream arrived whole');
  }
  const rows = (await cliJson<ProxyRow>(a, ['proxy'])).filter((r) => r.dst === '10.91.0.2:5391');
  assert.ok(rows.length === FLOWS && rows.every((r) => r.transport_type === 'Kcp'), JSON.stringify(rows));
  await server.stop();
  await et.stop();
  await relay.stop();
});
