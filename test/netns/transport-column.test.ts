/**
 * "Which transport, and why" with no flow open: A (--enable-kcp-proxy --enable-quic-proxy) peers
 * with B (accepts both), C (--disable-kcp-input, and refuses to relay KCP) and D (accepts neither);
 * E sits behind C. `easytier-cli peer` and `route` on A must say Kcp, Quic, Tcp with the reasons,
 * and name C as the relay that refuses KCP on the way to E. Then F, a --no-tun SOCKS5 node, shows
 * the runtime fallback of flows that start at a socket:
 *  - to E, whose route from F runs F-B-A-C-E: F's first hop (B) relays KCP, so F opens the flow on
 *    KCP, but C silently drops the KCP packets it refuses to relay; the open hears nothing for 3 s,
 *    and the flow moves on to QUIC, which C relays, and connects;
 *  - to G: G accepts KCP and QUIC, but port 7000 is one of its own services (its peer listener, on
 *    UDP), which it never lets a peer's proxy dial; so F's KCP and then QUIC opens to G:7000 are
 *    really denied and, with no TUN for plain packets, the client gets "host unreachable".
 * (A KCP open denied and then carried by QUIC needs a peer that says it takes KCP and then denies it,
 * which real configuration cannot build: that case is in test/sim/proxy-flow.) Last, F's
 * --proxy-close-wait 1: a client that half-closes toward a server that never ends its side is closed
 * about a second after its FIN, and the row says close-wait.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason } from './lib/netns.js';
import { cliJson, startCore, waitPeers } from './lib/core.js';
import { FLOWS } from './lib/proxy.js';

const CLIENT = new URL('./fixtures/socks-client.js', import.meta.url);

const SKIP = unavailableReason();

const common = (ip: string, host: string): string[] =>
  ['--network-name', 'th9tcnet', '--network-secret', 'tc-secret', '-i', ip, '--hostname', host, '--no-tun', '--log-level', 'info'];

interface Row { peer_id: number; hostname?: string; tcp_transport: string; tcp_reason: string }

test('peer and route tables say which transport a new TCP flow would take, and why', { skip: SKIP ?? false, timeout: 120_000 }, async (t) => {
  const net = await Netns.create('th9tc', t);
  const [a, b, c, d, e] = [await net.ns('a'), await net.ns('b'), await net.ns('c'), await net.ns('d'), await net.ns('e')];
  await net.link(a, b, '10.253.12.1/24', '10.253.12.2/24');
  await net.link(a, c, '10.253.13.1/24', '10.253.13.2/24');
  await net.link(a, d, '10.253.14.1/24', '10.253.14.2/24');
  await net.link(c, e, '10.253.15.1/24', '10.253.15.2/24');
  const listen = ['-l', 'udp://0.0.0.0:11010'];
  const nb = await startCore(b, [...common('10.144.162.2', 'node-b'), ...listen]);
  const nc = await startCore(c, [...common('10.144.162.3', 'node-c'), ...listen, '--disable-kcp-input', '--disable-relay-kcp']);
  const nd = await startCore(d, [...common('10.144.162.4', 'node-d'), ...listen, '--disable-kcp-input', '--disable-quic-input']);
  const ne = await startCore(e, [...common('10.144.162.5', 'node-e'), '--no-listener', '-p', 'udp://10.253.15.1:11010']);
  const na = await startCore(a, [...common('10.144.162.1', 'node-a'), '--no-listener', '--enable-kcp-proxy', '--enable-quic-proxy',
    '-p', 'udp://10.253.12.2:11010', '-p', 'udp://10.253.13.2:11010', '-p', 'udp://10.253.14.2:11010']);
  await waitPeers(a, 4);

  const want = new Map<number, [string, RegExp]>([
    [nb.peerId, ['Kcp', /^peer accepts kcp$/]],
    [nc.peerId, ['Quic', /^peer does not accept kcp; peer accepts quic$/]],
    [nd.peerId, ['Tcp', /^peer does not accept kcp; peer does not accept quic$/]],
  ]);
  const peers = await cliJson<Row>(a, ['peer']);
  for (const [id, [transport, reason]] of want) {
    const row = peers.find((p) => p.peer_id === id);
    assert.ok(row, `peer ${id} listed: ${JSON.stringify(peers)}`);
    assert.equal(row.tcp_transport, transport, JSON.stringify(row));
    assert.match(row.tcp_reason, reason);
  }
  const routes = await cliJson<Row>(a, ['route']);
  for (const [id, [transport, reason]] of want) {
    const row = routes.find((r) => r.peer_id === id)!;
    assert.deepEqual([row.tcp_transport, reason.test(row.tcp_reason)], [transport, true], JSON.stringify(row));
  }
  const toE = routes.find((r) => r.peer_id === ne.peerId);
  assert.ok(toE, JSON.stringify(routes));
  assert.equal(toE.tcp_transport, 'Quic', JSON.stringify(toE));
  assert.equal(toE.tcp_reason, 'relay node-c refuses kcp; peer accepts quic');
  const self = routes.find((r) => r.peer_id === na.peerId);
  if (self) assert.equal(self.tcp_transport, '');
  // The table form carries the columns too.
  const table = await a.exec([process.execPath, new URL('../../../bin/easytier-cli', import.meta.url).pathname, 'peer']);
  assert.match(table.stdout, /tcp_transport/);
  assert.match(table.stdout, /peer does not accept kcp; peer accepts quic/);

  // G accepts both carriers; its peer listener is UDP port 7000.
  const g = await net.ns('g');
  await net.link(a, g, '10.253.16.1/24', '10.253.16.2/24');
  await startCore(g, [...common('10.144.162.7', 'node-g'), '-l', 'udp://0.0.0.0:7000']);
  // F: in A's namespace, its own portal and SOCKS port, peering with G and with B.
  await startCore(a, [...common('10.144.162.6', 'node-f'), '--no-listener', '-r', '15899', '--socks5', '1081',
    '--enable-kcp-proxy', '--enable-quic-proxy', '--proxy-close-wait', '1', '-p', 'udp://10.253.16.2:7000',
    '-p', 'udp://10.253.12.2:11010']);
  const fRows = async (): Promise<Array<{ dst: string; transport_type: string; reason: string; state: string }>> =>
    cliJson(a, ['-p', '127.0.0.1:15899', 'proxy']);
  for (let i = 0; i < 100; i++) {
    const ips = (await cliJson<{ ipv4: string }>(a, ['-p', '127.0.0.1:15899', 'route']).catch(() => [])).map((r) => r.ipv4);
    if (['10.144.162.7', '10.144.162.5'].every((ip) => ips.some((x) => x.startsWith(ip)))) break;
  }
  // With --no-tun, a flow to E's own virtual address is dialled on E's loopback.
  await e.node(FLOWS, ['serve', '127.0.0.1', '7000']).waitForEvent('listening');
  const viaQuic = await a.node(CLIENT, ['connect', '127.0.0.1', '1081', '10.144.162.5', '7000']).waitForEvent<{ rep: number }>('connect', 30_000);
  assert.equal(viaQuic.rep, 0);
  const rowE = (await fRows()).find((r) => r.dst === '10.144.162.5:7000');
  assert.equal(rowE?.transport_type, 'Quic', JSON.stringify(rowE));
  assert.match(rowE!.reason, /^socks5; peer accepts kcp; kcp: no answer in 3 s; peer accepts quic/);
  const toG = await a.node(CLIENT, ['connect', '127.0.0.1', '1081', '10.144.162.7', '7000']).waitForEvent<{ rep: number }>('connect', 30_000);
  assert.equal(toG.rep, 4);
  const rowG = (await fRows()).find((r) => r.dst === '10.144.162.7:7000');
  assert.equal(rowG?.transport_type, 'Tcp', JSON.stringify(rowG));
  assert.match(rowG!.reason, /kcp: denied by peer; .*quic: denied by peer; .*no carrier and no TUN for plain packets \(--no-tun\)/);
  const prom = await a.exec([process.execPath, new URL('../../../bin/easytier-cli', import.meta.url).pathname, '-p', '127.0.0.1:15899', 'stats', 'prometheus']);
  assert.match(prom.stdout, /^tstier_proxy_fallbacks_total\{from="Kcp",to="Quic"\} 2$/m);
  assert.match(prom.stdout, /^tstier_proxy_fallbacks_total\{from="Quic",to="Tcp"\} 1$/m);

  // --proxy-close-wait 1: G's server on 7001 never ends its side of a half-closed flow.
  await g.node(CLIENT, ['hold', '127.0.0.1', '7001']).waitForEvent('listening');
  const half = await a.node(CLIENT, ['half-close', '127.0.0.1', '1081', '10.144.162.7', '7001'])
    .waitForEvent<{ rep: number; closed: boolean; ms: number }>('half-close', 30_000);
  assert.equal(half.rep, 0);
  assert.equal(half.closed, true, 'the half-closed flow was closed after the close-wait');
  assert.ok(half.ms >= 900, `closed ${half.ms} ms after the client's FIN, not after the bound`);
  const rowHalf = (await fRows()).find((r) => r.dst === '10.144.162.7:7001');
  assert.match(rowHalf?.reason ?? '', /close-wait$/, JSON.stringify(rowHalf));
});
