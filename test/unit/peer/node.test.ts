/**
 * Node without a TUN (forward-only), over loopback: what the control plane reads, and start-up
 * failures. The TUN paths are covered by test/netns/node-line.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeConfig } from '../../../daemon/config/node-config.js';
import { Node } from '../../../daemon/node.js';
import type { Logger } from '../../../daemon/log.js';
import { FAST_PEER, quietLog, until } from './helpers.js';


function config(over: Partial<NodeConfig>): NodeConfig {
  return {
    instanceName: 'default', hostname: 'h', networkName: 'unit', networkSecret: 'sec', listeners: [], peers: [],
    proxyNetworks: [], rpcPortal: '127.0.0.1:0', devName: '', mtu: 1380, noTun: true, useSmoltcp: false,
    enableKcpProxy: false, disableKcpInput: false, enableQuicProxy: false, disableQuicInput: false,
    disableRelayKcp: false, disableRelayQuic: false, proxyOptimistic: false, proxyFlowTimeout: 30, logLevel: 'info', quicCongestion: 'bbr', ...over,
  };
}

test('two forward-only nodes: nodeInfo, peers and routes as the control plane sees them', async (t) => {
  const b = await Node.start(config({ hostname: 'b', ipv4: { address: '10.9.0.2', prefix: 24 },
    ipv6: { address: 'fd00:9:0:0::2', prefix: 64 },
    listeners: ['tcp://127.0.0.1:0'], disableQuicInput: true,
    proxyNetworks: [{ cidr: '192.168.5.0/24' }, { cidr: '172.16.0.0/16', mappedCidr: '10.77.0.0/16' }] }),
  { log: quietLog, peer: FAST_PEER });
  t.after(() => b.close());
  const a = await Node.start(config({ hostname: 'a', ipv4: { address: '10.9.0.1', prefix: 24 }, peers: b.listening,
    disableRelayKcp: true }), { log: quietLog, peer: FAST_PEER });
  t.after(() => a.close());

  const info = b.nodeInfo();
  assert.equal(info.peerId, b.peer.peerId);
  assert.equal(info.ipv4, '10.9.0.2/24');
  assert.equal(info.ipv6, 'fd00:9::2/64', 'canonical form');
  assert.equal(a.nodeInfo().ipv6, '');
  assert.deepEqual(info.proxyCidrs, ['192.168.5.0/24', '172.16.0.0/16->10.77.0.0/16']);
  assert.deepEqual(info.features, { kcpInput: true, quicInput: false, noRelayKcp: false, noRelayQuic: false });
  assert.deepEqual(b.proxyEntries(), []);

  await until('A routes B', () => a.routes().length === 1);
  const [r] = a.routes();
  assert.deepEqual(r, { peerId: b.peer.peerId, hostname: 'b', ipv4: '10.9.0.2/24', ipv6: 'fd00:9::2/64',
    // EasyTier's wire announces the range others route to (the mapped one), and a software version.
    proxyCidrs: ['192.168.5.0/24', '10.77.0.0/16'],
    nextHopPeerId: b.peer.peerId, cost: 1, features: { kcpInput: true, quicInput: false, noRelayKcp: false, noRelayQuic: false },
    tcpTransport: 'Tcp', tcpReason: 'proxy disabled', version: '2.6.4-tstier' });
  await until('B routes A', () => b.routes().length === 1);
  assert.equal(b.routes()[0]!.features.noRelayKcp, true);
  assert.equal(b.routes()[0]!.ipv6, '', 'A has no IPv6');
  const [pa] = a.peers();
  assert.equal(pa!.peerId, b.peer.peerId);
  assert.equal(pa!.outbound, true);
  assert.equal(pa!.remoteUri, b.listening[0]);
  assert.equal(b.peers()[0]!.outbound, false);
});

test('a listener port in use fails start with TSTIER_E_ADDR_IN_USE naming that listener', async (t) => {
  const first = await Node.start(config({ listeners: ['udp://127.0.0.1:0'] }), { log: quietLog, peer: FAST_PEER });
  t.after(() => first.close());
  const taken = first.listening[0]!;
  await assert.rejects(Node.start(config({ listeners: ['tcp://127.0.0.1:0', taken] }), { log: quietLog, peer: FAST_PEER }),
    (e: Error & { code?: string }) => e.code === 'TSTIER_E_ADDR_IN_USE' && e.message.includes(taken));
});

test('two nodes with the same virtual IPv4: each warns once, naming both peer ids, and keeps running', async (t) => {
  const warnings: { node: string; message: string }[] = [];
  const capture = (node: string): Logger => ({ ...quietLog, warn: (message) => void warnings.push({ node, message }) });
  const b = await Node.start(config({ hostname: 'b', ipv4: { address: '10.9.3.7', prefix: 24 }, listeners: ['udp://127.0.0.1:0'] }),
    { log: capture('b'), peer: FAST_PEER });
  t.after(() => b.close());
  const a = await Node.start(config({ hostname: 'a', ipv4: { address: '10.9.3.7', prefix: 24 }, peers: b.listening }),
    { log: capture('a'), peer: FAST_PEER });
  t.after(() => a.close());
  await until('both warned', () => new Set(warnings.map((w) => w.node)).size === 2);
  for (const [me, other] of [[a, b], [b, a]] as const) {
    const mine = warnings.filter((w) => w.node === me.config.hostname);
    assert.equal(mine.length, 1, JSON.stringify(warnings));
    assert.match(mine[0]!.message, new RegExp(`^duplicate virtual address 10\\.9\\.3\\.7: peer ${other.peer.peerId} uses it too \\(this node is peer ${me.peer.peerId}\\)`));
  }
  assert.equal(a.routes().length, 1, 'the route is kept: the warning is all');
});
