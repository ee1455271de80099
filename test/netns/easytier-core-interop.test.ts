/**
 * easytier-core with --peer-protocol easytier against the real EasyTier 2.6.4 core, each with a
 * real TUN in its own namespace (no default route). Proves, with the kernel's ping over both TUNs:
 * - over udp:// and over tcp://, each side dialling the other once: both list each other in their
 *   routes (hostname, version, cost 1) and ping both ways;
 * - the lines tstier – EasyTier – tstier and EasyTier – tstier – EasyTier: the ends learn each other
 *   at cost 2 through the middle and ping through it;
 * - a wrong secret on either side: no route on either side and no ping;
 * - a forged peer with the right name and an all-zero digest (which EasyTier itself would accept)
 *   is refused by tstier, counted, and never routed; a peer with the right secret that sends in
 *   clear while we encrypt has its packets dropped (counted) and gets no route.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { cliJson, startCore, type CoreNode } from './lib/core.js';
import { easytierUnavailable, etConfig, startEasyTier } from './lib/easytier.js';

const SKIP = unavailableReason() ?? easytierUnavailable();
const NET = { name: 'tg7x-net', secret: 'tg7x-secret' };
const FIXTURE = new URL('./fixtures/et-peer.js', import.meta.url);

interface RouteRow { peer_id: number; hostname: string; ipv4: string; next_hop: number; cost: number; version?: string }

const core = (ns: Namespace, ip: string, host: string, extra: string[], secret = NET.secret): Promise<CoreNode> =>
  startCore(ns, ['--peer-protocol', 'easytier', '--network-name', NET.name, '--network-secret', secret, '-i', ip,
    '--hostname', host, '--dev-name', 'tg7tun', ...extra]);

/** Polls the CLI route table (one round trip a poll, bounded) until `ok` holds. */
async function waitRoutes(ns: Namespace, what: string, ok: (rows: RouteRow[]) => boolean): Promise<RouteRow[]> {
  let rows: RouteRow[] = [];
  for (let i = 0; i < 100; i++) {
    rows = await cliJson<RouteRow>(ns, ['route']).catch(() => []);
    if (ok(rows)) return rows;
  }
  assert.fail(`${ns.name}: ${what} never held; last routes: ${JSON.stringify(rows)}`);
}

interface StatRow { name: string; labels: string; value: number }

/** Polls `easytier-cli stats` (bounded) until `ok` holds. */
async function waitStats(ns: Namespace, what: string, ok: (rows: StatRow[]) => boolean): Promise<void> {
  let rows: StatRow[] = [];
  for (let i = 0; i < 100; i++) {
    rows = await cliJson<StatRow>(ns, ['stats']).catch(() => []);
    if (ok(rows)) return;
  }
  assert.fail(`${ns.name}: ${what} never held; ${rows.length} rows`);
}

const ping = (ns: Namespace, ip: string) => ns.exec(['ping', '-c', '2', '-i', '0.2', '-w', '10', ip]);
const pingFails = async (ns: Namespace, ip: string): Promise<void> => {
  const r = await ns.exec(['ping', '-c', '2', '-i', '0.2', '-w', '2', ip]).then(() => 'answered', () => 'silent');
  assert.equal(r, 'silent', `${ns.name} -> ${ip} must not be answered`);
};

for (const scheme of ['udp', 'tcp'] as const) {
  test(`tstier and EasyTier over ${scheme}://, each dialling the other: routes and pings both ways`, { skip: SKIP ?? false, timeout: 90_000 }, async (t) => {
    const net = await Netns.create(`tg7x-${scheme}`, t);
    const [a, b] = [await net.ns('a'), await net.ns('b')];
    await net.link(a, b, '198.18.71.1/24', '198.18.71.2/24');
    const et = await startEasyTier(b, etConfig({ ...NET, ipv4: '10.71.0.2/24', hostname: 'et-b', listeners: [`${scheme}://0.0.0.0:11010`],
      peers: [`${scheme}://198.18.71.1:11010`] }));
    const ts = await core(a, '10.71.0.1', 'ts-a', ['-l', `${scheme}://0.0.0.0:11010`, '-p', `${scheme}://198.18.71.2:11010`]);

    const etRoutes = await et.waitRoutes([ts.peerId]);
    const mine = etRoutes.find((r) => r.peer_id === ts.peerId)!;
    assert.deepEqual([mine.hostname, mine.cost, mine.ipv4_addr?.address.addr], ['ts-a', 1, ((10 << 24) | (71 << 16) | 1) >>> 0]);
    assert.match(mine.version ?? '', /tstier/);
    const rows = await waitRoutes(a, 'EasyTier listed', (r) => r.some((x) => x.peer_id === et.peerId));
    const theirs = rows.find((r) => r.peer_id === et.peerId)!;
    assert.deepEqual([theirs.hostname, theirs.ipv4, theirs.cost, theirs.next_hop, theirs.version], ['et-b', '10.71.0.2/24', 1, et.peerId, et.version]);
    // The second link is EasyTier's own dial, which may come a little after the route (bounded poll).
    let peers: Array<{ peer_id: number; remote: string }> = [];
    for (let i = 0; i < 100 && peers.filter((p) => p.peer_id === et.peerId).length < 2; i++) {
      peers = await cliJson<{ peer_id: number; remote: string }>(a, ['peer']);
    }
    assert.equal(peers.filter((p) => p.peer_id === et.peerId).length, 2, `two links, one dialled each way: ${JSON.stringify(peers)}`);

    await ping(a, '10.71.0.2');
    await ping(b, '10.71.0.1');
    await et.stop();
  });
}

test('lines tstier – EasyTier – tstier and EasyTier – tstier – EasyTier: the ends ping through the middle', { skip: SKIP ?? false, timeout: 120_000 }, async (t) => {
  const net = await Netns.create('tg7x-line', t);
  const [a, b, c] = [await net.ns('a'), await net.ns('b'), await net.ns('c')];
  await net.link(a, b, '198.18.72.1/24', '198.18.72.2/24');
  await net.link(b, c, '198.18.73.2/24', '198.18.73.3/24');

  await t.test('tstier – EasyTier – tstier', async () => {
    const mid = await startEasyTier(b, etConfig({ ...NET, ipv4: '10.72.0.2/24', hostname: 'et-mid', listeners: ['udp://0.0.0.0:11010', 'tcp://0.0.0.0:11010'] }));
    const ta = await core(a, '10.72.0.1', 'ts-a', ['--no-listener', '-p', 'udp://198.18.72.2:11010']);
    const tc = await core(c, '10.72.0.3', 'ts-c', ['--no-listener', '-p', 'tcp://198.18.73.2:11010']);
    const ra = await waitRoutes(a, 'C at cost 2', (r) => r.some((x) => x.peer_id === tc.peerId && x.cost === 2));
    assert.equal(ra.find((x) => x.peer_id === tc.peerId)?.next_hop, mid.peerId);
    await ping(a, '10.72.0.3');
    await ping(c, '10.72.0.1');
    await Promise.all([ta.proc.stop(), tc.proc.stop(), mid.stop()]);
  });

  await t.test('EasyTier – tstier – EasyTier', async () => {
    const mid = await core(b, '10.72.0.2', 'ts-mid', ['-l', 'udp://0.0.0.0:11010', '-l', 'tcp://0.0.0.0:11010']);
    const ea = await startEasyTier(a, etConfig({ ...NET, ipv4: '10.72.0.1/24', hostname: 'et-a', peers: ['udp://198.18.72.2:11010'] }));
    const ec = await startEasyTier(c, etConfig({ ...NET, ipv4: '10.72.0.3/24', hostname: 'et-c', peers: ['tcp://198.18.73.2:11010'] }));
    const ra = await ea.waitRoutes([mid.peerId, ec.peerId], 30);
    assert.deepEqual([ra.find((r) => r.peer_id === ec.peerId)?.cost, ra.find((r) => r.peer_id === ec.peerId)?.next_hop_peer_id], [2, mid.peerId]);
    await ping(a, '10.72.0.3');
    await ping(c, '10.72.0.1');
    await Promise.all([ea.stop(), ec.stop(), mid.proc.stop()]);
  });
});

test('a wrong secret on either side: no route, no data; a forged all-zero digest is refused by tstier', { skip: SKIP ?? false, timeout: 120_000 }, async (t) => {
  const net = await Netns.create('tg7x-auth', t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  await net.link(a, b, '198.18.74.1/24', '198.18.74.2/24');

  await t.test('tstier with the wrong secret dials EasyTier', async () => {
    const et = await startEasyTier(b, etConfig({ ...NET, ipv4: '10.74.0.2/24', hostname: 'et-b', listeners: ['udp://0.0.0.0:11010'] }));
    const ts = await core(a, '10.74.0.1', 'ts-wrong', ['--no-listener', '-p', 'udp://198.18.74.2:11010'], 'not-the-secret');
    await ts.proc.waitForLine(/peer handshake failed .*zero digest/, 15_000);
    await pingFails(b, '10.74.0.1');
    assert.deepEqual((await et.routes()).map((r) => r.peer_id), []);
    assert.deepEqual(await cliJson(a, ['route']), []);
    await Promise.all([ts.proc.stop(), et.stop()]);
  });

  await t.test('EasyTier with the wrong secret dials tstier', async () => {
    const ts = await core(a, '10.74.0.1', 'ts-a', ['-l', 'tcp://0.0.0.0:11010']);
    const et = await startEasyTier(b, etConfig({ ...NET, secret: 'wrong', ipv4: '10.74.0.2/24', hostname: 'et-wrong', peers: ['tcp://198.18.74.1:11010'] }));
    await ts.proc.waitForLine(/peer handshake refused.*wrong digest/, 20_000);
    await pingFails(a, '10.74.0.2');
    assert.deepEqual((await et.routes()).map((r) => r.peer_id), []);
    assert.deepEqual(await cliJson(a, ['route']), []);
    await et.stop();

    // The right name and 32 zero bytes: EasyTier would take this peer by name alone; tstier does not.
    const peerId = (randomBytes(4).readUInt32LE(0) | 1) >>> 0;
    const forged = b.node(FIXTURE, [JSON.stringify({ ...NET, peerId, url: 'tcp://198.18.74.1:11010', hostname: 'forger', ipv4: '10.74.0.66/24', zeroDigest: true })]);
    await ts.proc.waitForLine(new RegExp(`peer handshake refused peer_id=${peerId} .*zero digest`), 15_000);
    // Refused in silence: no handshake comes back, so the forger learns nothing (EasyTier would answer).
    assert.ok(!forged.lines.some((l) => l.includes('"event":"up"')), 'the forger never came up');
    assert.deepEqual(await cliJson(a, ['route']), []);
    await forged.stop();

    // The right secret but encryption off: its handshake passes, its plaintext RPC and Data do not.
    const plainId = (randomBytes(4).readUInt32LE(0) | 1) >>> 0;
    const plain = b.node(FIXTURE, [JSON.stringify({ ...NET, peerId: plainId, url: 'tcp://198.18.74.1:11010', hostname: 'plain', ipv4: '10.74.0.67/24', encryption: 'none' })]);
    await plain.waitForEvent('up');
    await waitStats(a, 'plaintext dropped', (rows) => rows.some((r) => r.name === 'tstier_peer_dropped_packets_total'
      && r.labels.includes(`peer_id=${plainId},`) && r.labels.endsWith('reason=other') && r.value > 0));
    assert.ok(!(await cliJson<RouteRow>(a, ['route'])).some((r) => r.peer_id === plainId), 'plaintext route info never accepted');
    await plain.stop();
    await ts.proc.stop();
  });
});
