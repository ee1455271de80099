/**
 * Secure mode (--secure-mode) against the real EasyTier 2.6.4 core in its own secure mode
 * ([secure_mode] enabled, with a key pair), each with a real TUN in its own namespace (no default
 * route). Proves:
 * - over udp:// and tcp://, each side dialling the other at once: both list each other in their
 *   routes and ping both ways, and EasyTier reports both links as Noise links whose secret proof it
 *   checked (secure_auth_level NetworkSecretConfirmed), with one static key for us;
 * - a mode mismatch either way gives no route: EasyTier in secure mode dialling a tstier node
 *   without it is refused with a log line naming the mismatch; tstier in secure mode dialling an
 *   EasyTier node without it is refused by EasyTier.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { cliJson, startCore, type CoreNode, waitRouteRows } from './lib/core.js';
import { easytierUnavailable, etConfig, startEasyTier } from './lib/easytier.js';

const SKIP = unavailableReason() ?? easytierUnavailable();
const NET = { name: 'th8s-net', secret: 'th8s-secret' };

interface EtConn { peer_id: number; secure_auth_level?: string; noise_remote_static_pubkey?: string }

const core = (ns: Namespace, ip: string, host: string, extra: string[]): Promise<CoreNode> =>
  startCore(ns, ['--peer-protocol', 'easytier', '--network-name', NET.name, '--network-secret', NET.secret, '-i', ip,
    '--hostname', host, '--dev-name', 'th8tun', ...extra]);


const ping = (ns: Namespace, ip: string) => ns.exec(['ping', '-c', '2', '-i', '0.2', '-w', '10', ip]);

// Over tcp:// each side sends with another cipher (EasyTier chacha20, tstier aes-256-gcm): a session's two
// directions are keyed alike but sealed with each sender's own algorithm, as EasyTier does.
for (const [scheme, etAlg, tsAlg] of [['udp', undefined, undefined], ['tcp', 'chacha20', 'aes-256-gcm']] as const) {
  test(`secure mode, tstier and EasyTier over ${scheme}://, each dialling the other: routes, pings, proofs checked${etAlg ? ', ciphers differ' : ''}`, { skip: SKIP ?? false, timeout: 90_000 }, async (t) => {
    const net = await Netns.create(`th8s-${scheme}`, t);
    const [a, b] = [await net.ns('a'), await net.ns('b')];
    await net.link(a, b, '198.18.81.1/24', '198.18.81.2/24');
    const et = await startEasyTier(b, etConfig({ ...NET, ipv4: '10.81.0.2/24', hostname: 'et-b', secureMode: true, ...(etAlg ? { encryption: etAlg } : {}),
      listeners: [`${scheme}://0.0.0.0:11010`], peers: [`${scheme}://198.18.81.1:11010`] }));
    const ts = await core(a, '10.81.0.1', 'ts-a', ['--secure-mode', ...(tsAlg ? ['--encryption-algorithm', tsAlg] : []),
      '-l', `${scheme}://0.0.0.0:11010`, '-p', `${scheme}://198.18.81.2:11010`]);

    await et.waitRoutes([ts.peerId]);
    await waitRouteRows(a, 'EasyTier listed', (r) => r.some((x) => x.peer_id === et.peerId && x.cost === 1));
    await ping(a, '10.81.0.2');
    await ping(b, '10.81.0.1');

    // Both links (one dialled each way; EasyTier's own dial may come seconds later, after a
    // crossed handshake is retried: polled, bounded by time, not by count, since a query is quick).
    let conns: EtConn[] = [];
    for (const until = Date.now() + 30_000; conns.length < 2 && Date.now() < until; await sleep(100)) {
      const peers = await et.peers() as Array<{ peer_id: number; conns?: EtConn[] }>;
      conns = peers.find((p) => p.peer_id === ts.peerId)?.conns ?? [];
    }
    assert.equal(conns.length, 2, JSON.stringify(conns));
    assert.deepEqual(conns.map((c) => c.secure_auth_level), ['NetworkSecretConfirmed', 'NetworkSecretConfirmed']);
    assert.equal(Buffer.from(conns[0]!.noise_remote_static_pubkey ?? '', 'base64').length, 32);
    assert.equal(conns[1]!.noise_remote_static_pubkey, conns[0]!.noise_remote_static_pubkey, 'one static key for our node');
    await ping(a, '10.81.0.2'); // still carried once both links share the session
    await et.stop();
  });
}

test('secure mode mismatch with EasyTier, either way: refused, no route', { skip: SKIP ?? false, timeout: 90_000 }, async (t) => {
  const net = await Netns.create('th8s-mis', t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  await net.link(a, b, '198.18.83.1/24', '198.18.83.2/24');

  await t.test('EasyTier in secure mode dials tstier without it', async () => {
    const ts = await core(a, '10.83.0.1', 'ts-plain', ['-l', 'tcp://0.0.0.0:11010']);
    const et = await startEasyTier(b, etConfig({ ...NET, ipv4: '10.83.0.2/24', hostname: 'et-sec', secureMode: true, peers: ['tcp://198.18.83.1:11010'] }));
    await ts.proc.waitForLine(/peer handshake refused .*secure mode mismatch/, 15_000);
    assert.deepEqual((await et.routes()).map((r) => r.peer_id), []);
    assert.deepEqual(await cliJson(a, ['route']), []);
    await Promise.all([ts.proc.stop(), et.stop()]);
  });

  await t.test('tstier in secure mode dials EasyTier without it', async () => {
    const et = await startEasyTier(b, etConfig({ ...NET, ipv4: '10.83.0.2/24', hostname: 'et-plain', listeners: ['tcp://0.0.0.0:11010'] }));
    const ts = await core(a, '10.83.0.1', 'ts-sec', ['--secure-mode', '--no-listener', '-p', 'tcp://198.18.83.2:11010']);
    await ts.proc.waitForLine(/peer handshake failed remote=tcp:/, 15_000);
    assert.deepEqual((await et.routes()).map((r) => r.peer_id), []);
    assert.deepEqual(await cliJson(a, ['route']), []);
    await Promise.all([ts.proc.stop(), et.stop()]);
  });
});

test('secure mode, EasyTier – tstier – EasyTier: the ends run their relay session through the tstier node and ping', { skip: SKIP ?? false, timeout: 90_000 }, async (t) => {
  const net = await Netns.create('th8s-line', t);
  const [a, b, c] = [await net.ns('a'), await net.ns('b'), await net.ns('c')];
  await net.link(a, b, '198.18.84.1/24', '198.18.84.2/24');
  await net.link(b, c, '198.18.85.2/24', '198.18.85.3/24');
  const mid = await core(b, '10.84.0.2', 'ts-mid', ['--secure-mode', '-l', 'udp://0.0.0.0:11010', '-l', 'tcp://0.0.0.0:11010']);
  const ea = await startEasyTier(a, etConfig({ ...NET, ipv4: '10.84.0.1/24', hostname: 'et-a', secureMode: true, peers: ['udp://198.18.84.2:11010'] }));
  const ec = await startEasyTier(c, etConfig({ ...NET, ipv4: '10.84.0.3/24', hostname: 'et-c', secureMode: true, peers: ['tcp://198.18.85.2:11010'] }));
  const ra = await ea.waitRoutes([mid.peerId, ec.peerId], 30);
  assert.deepEqual([ra.find((r) => r.peer_id === ec.peerId)?.cost, ra.find((r) => r.peer_id === ec.peerId)?.next_hop_peer_id], [2, mid.peerId]);
  await ping(a, '10.84.0.3');
  await ping(c, '10.84.0.1');
  await Promise.all([ea.stop(), ec.stop(), mid.proc.stop()]);
});

test('secure mode, tstier – EasyTier – tstier: the ends set up their own relay session through EasyTier and ping', { skip: SKIP ?? false, timeout: 90_000 }, async (t) => {
  const net = await Netns.create('th8s-rel', t);
  const [a, b, c] = [await net.ns('a'), await net.ns('b'), await net.ns('c')];
  await net.link(a, b, '198.18.86.1/24', '198.18.86.2/24');
  await net.link(b, c, '198.18.87.2/24', '198.18.87.3/24');
  const mid = await startEasyTier(b, etConfig({ ...NET, ipv4: '10.86.0.2/24', hostname: 'et-mid', secureMode: true, listeners: ['udp://0.0.0.0:11010', 'tcp://0.0.0.0:11010'] }));
  const ta = await core(a, '10.86.0.1', 'ts-a', ['--secure-mode', '--no-listener', '-p', 'udp://198.18.86.2:11010']);
  const tc = await core(c, '10.86.0.3', 'ts-c', ['--secure-mode', '--no-listener', '-p', 'tcp://198.18.87.2:11010']);
  await waitRouteRows(a, 'C at cost 2', (r) => r.some((x) => x.peer_id === tc.peerId && x.cost === 2));
  await ping(a, '10.86.0.3');
  await ping(c, '10.86.0.1');
  await Promise.all([ta.proc.stop(), tc.proc.stop(), mid.stop()]);
});
