/**
 * Proves the EasyTier harness (lib/easytier.ts): two real EasyTier 2.6.4 nodes in namespaces with
 * no default route peer over udp://, list each other in routes(), and ping each other's virtual IP
 * through their TUNs. The EasyTier interop tests build on this.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason } from './lib/netns.js';
import { easytierUnavailable, etConfig, startEasyTier } from './lib/easytier.js';

const SKIP = unavailableReason() ?? easytierUnavailable();

test('two EasyTier nodes peer over udp:// and ping both ways', { skip: SKIP ?? false, timeout: 90_000 }, async (t) => {
  const net = await Netns.create('tet-smoke', t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  await net.link(a, b, '198.18.91.1/24', '198.18.91.2/24');
  const common = { name: 'tet-net', secret: 'tet-secret' };
  const ea = await startEasyTier(a, etConfig({ ...common, ipv4: '10.91.0.1/24', hostname: 'et-a', listeners: ['udp://0.0.0.0:11010'] }));
  const eb = await startEasyTier(b, etConfig({ ...common, ipv4: '10.91.0.2/24', hostname: 'et-b', peers: ['udp://198.18.91.1:11010'] }));
  assert.match(ea.version, /^2\.6\.4/);

  const [ra, rb] = await Promise.all([ea.waitRoutes([eb.peerId]), eb.waitRoutes([ea.peerId])]);
  const toB = ra.find((r) => r.peer_id === eb.peerId)!;
  assert.equal(toB.hostname, 'et-b');
  assert.equal(toB.cost, 1);
  assert.equal(toB.ipv4_addr?.address.addr, ((10 << 24) | (91 << 16) | 2) >>> 0);
  assert.equal(rb.find((r) => r.peer_id === ea.peerId)!.hostname, 'et-a');

  // -w bounds each ping; a route that is listed must carry packets at once.
  await b.exec(['ping', '-c', '2', '-i', '0.2', '-w', '10', '10.91.0.1']);
  await a.exec(['ping', '-c', '2', '-i', '0.2', '-w', '10', '10.91.0.2']);
  const peers = await ea.peers();
  assert.equal(peers.length, 1);
  await Promise.all([ea.stop(), eb.stop()]);
});
