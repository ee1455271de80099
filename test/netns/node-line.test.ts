/**
 * Real easytier-core processes with real TUNs in network namespaces, in a line A - B - C
 * (veths A-B and B-C only, so A reaches C through B's relay), plus D with the wrong secret and
 * E, a plain host on a LAN that C exports (-n).
 *
 * Proves: A pings C's virtual IP and E through C's proxied CIDR; 64 MiB over TCP A -> C arrives byte-exact; D never appears in
 * any route table; the CLI's `route -o json` matches the topology; B killed and restarted (with a
 * new peer id) restores A <-> C. Waits are on log lines and on the route table (bounded polling);
 * there are no sleeps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Netns, unavailableReason, type Namespace, type NsProcess } from './lib/netns.js';

const root = (p: string): string => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const CORE = root('bin/easytier-core');
const CLI = root('bin/easytier-cli');
const TRANSFER = new URL('./fixtures/node-tcp-transfer.js', import.meta.url);
const TRANSFER_BYTES = 64 * 1024 * 1024;
const SKIP = unavailableReason();

interface RouteRow { peer_id: number; hostname: string; ipv4: string; proxy_cidrs: string; next_hop: number; cost: number }

interface CoreNode { proc: NsProcess; peerId: number }

/** Starts easytier-core in `ns` (its log, on stderr, is merged into the lines we wait on). */
async function startCore(ns: Namespace, args: string[]): Promise<CoreNode> {
  const quoted = [process.execPath, CORE, ...args].map((a) => `'${a}'`).join(' ');
  const proc = ns.spawn(['sh', '-c', `exec ${quoted} 2>&1`]);
  const m = await proc.waitForLine(/node ready peer_id=(\d+)/).catch((e: Error) => {
    throw new Error(`${e.message}\noutput:\n${proc.lines.join('\n')}`);
  });
  return { proc, peerId: Number(m[1]) };
}

const common = (ip: string, host: string): string[] =>
  ['--network-name', 'tt5net', '--network-secret', 's3cret', '-i', ip, '--hostname', host, '--dev-name', 'tt5tun'];

async function routes(ns: Namespace): Promise<RouteRow[]> {
  const r = await ns.exec([process.execPath, CLI, 'route', '-o', 'json']);
  return JSON.parse(r.stdout) as RouteRow[];
}

/** Polls `ns`'s route table (each poll is one CLI round trip) until `ok` holds; bounded. */
async function waitRoutes(ns: Namespace, what: string, ok: (rows: RouteRow[]) => boolean): Promise<RouteRow[]> {
  let rows: RouteRow[] = [];
  for (let attempt = 0; attempt < 60; attempt++) {
    rows = await routes(ns).catch(() => []);
    if (ok(rows)) return rows;
  }
  assert.fail(`${ns.name}: ${what} never held; last routes: ${JSON.stringify(rows)}`);
}

const via = (rows: RouteRow[], peerId: number): RouteRow | undefined => rows.find((r) => r.peer_id === peerId);

test('three nodes in a line, a relay that restarts, and an intruder', { skip: SKIP ?? false, timeout: 180_000 }, async (t) => {
  const net = await Netns.create('tt5-node', t);
  const [a, b, c, d] = [await net.ns('a'), await net.ns('b'), await net.ns('c'), await net.ns('d')];
  await net.link(a, b, '10.251.1.1/24', '10.251.1.2/24');
  await net.link(b, c, '10.251.2.1/24', '10.251.2.2/24');
  await net.link(d, b, '10.251.3.1/24', '10.251.3.2/24');
  // E is a plain host on a LAN behind C, which C exports with -n.
  const e = await net.ns('e');
  await net.link(c, e, '192.168.77.1/24', '192.168.77.2/24');
  await c.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  await e.exec(['ip', 'route', 'add', '10.144.144.0/24', 'via', '192.168.77.1']);

  const startB = (): Promise<CoreNode> =>
    startCore(b, [...common('10.144.144.2', 'node-b'), '-l', 'udp://0.0.0.0:11010', '-l', 'tcp://0.0.0.0:11010']);
  let nb = await startB();
  const na = await startCore(a, [...common('10.144.144.1', 'node-a'), '--no-listener', '-p', 'udp://10.251.1.2:11010']);
  const nc = await startCore(c, [...common('10.144.144.3', 'node-c'), '--no-listener', '-p', 'tcp://10.251.2.1:11010',
    '-n', '192.168.77.0/24']);

  await t.test('routes converge; the CLI JSON matches the line topology', async () => {
    const ra = await waitRoutes(a, 'A routes to C', (rows) => via(rows, nc.peerId)?.cost === 2);
    assert.deepEqual(
      ra.map((r) => [r.peer_id, r.hostname, r.ipv4, r.proxy_cidrs, r.next_hop, r.cost]).sort(),
      [[nb.peerId, 'node-b', '10.144.144.2/24', '', nb.peerId, 1],
        [nc.peerId, 'node-c', '10.144.144.3/24', '192.168.77.0/24', nb.peerId, 2]].sort(),
    );
    const rb = await waitRoutes(b, 'B sees both', (rows) => rows.length === 2);
    for (const n of [na, nc]) assert.deepEqual([via(rb, n.peerId)?.next_hop, via(rb, n.peerId)?.cost], [n.peerId, 1]);
    const rc = await waitRoutes(c, 'C routes to A', (rows) => via(rows, na.peerId)?.cost === 2);
    assert.equal(via(rc, na.peerId)?.next_hop, nb.peerId);
  });

  await t.test('A pings C across the relay', async () => {
    await a.exec(['ping', '-c', '3', '-i', '0.2', '-W', '2', '10.144.144.3']);
  });

  await t.test('A reaches the LAN behind C through C\'s proxied CIDR', async () => {
    for (let attempt = 0; ; attempt++) {
      const r = await a.exec(['ip', 'route', 'show', '192.168.77.0/24']);
      if (r.stdout.includes('dev tt5tun')) break;
      assert.ok(attempt < 200, `A never routed C's CIDR into its TUN: ${r.stdout}`);
    }
    await a.exec(['ping', '-c', '2', '-i', '0.2', '-W', '2', '192.168.77.2']);
  });

  await t.test('64 MiB over TCP from A to C arrive byte-exact', async () => {
    const sink = c.node(TRANSFER, ['sink', '10.144.144.3', '5201']);
    await sink.waitForEvent('listening');
    const source = a.node(TRANSFER, ['source', '10.144.144.3', '5201', String(TRANSFER_BYTES)]);
    const [sent, got] = await Promise.all([
      source.waitForEvent<{ bytes: number; sha256: string }>('done', 120_000),
      sink.waitForEvent<{ bytes: number; sha256: string }>('done', 120_000),
    ]);
    assert.equal(sent.bytes, TRANSFER_BYTES);
    assert.equal(got.bytes, TRANSFER_BYTES);
    assert.equal(got.sha256, sent.sha256);
  });

  await t.test('a node with the wrong secret is never let in', async () => {
    const nd = await startCore(d, ['--network-name', 'tt5net', '--network-secret', 'wrong', '-i', '10.144.144.4',
      '--hostname', 'node-d', '--dev-name', 'tt5tun', '--no-listener',
      '-p', 'udp://10.251.3.2:11010', '-p', 'tcp://10.251.3.2:11010']);
    // Both dials fail the same way: B answers neither, so each handshake times out (in either order).
    const failed = new Set<string>();
    while (failed.size < 2) {
      const m = await nd.proc.waitForLine(/peer handshake failed remote=(tcp):|peer handshake failed remote=(udp):.*handshake timeout/);
      failed.add(m[1] ?? m[2]!);
    }
    for (const ns of [a, b, c]) {
      const rows = await routes(ns);
      assert.equal(rows.some((r) => r.peer_id === nd.peerId || r.hostname === 'node-d'), false, `${ns.name} routes D`);
    }
    assert.deepEqual(await routes(d), []);
    await nd.proc.stop();
  });

  await t.test('B killed and restarted: A and C find each other again through the new B', async () => {
    // SIGKILL: no goodbye on the wire; A learns from its dead UDP port, C from the TCP reset.
    nb.proc.kill('SIGKILL');
    await nb.proc.exited;
    await waitRoutes(a, 'A loses C', (rows) => via(rows, nc.peerId) === undefined);
    nb = await startB();
    const ra = await waitRoutes(a, 'A routes to C via the new B', (rows) => via(rows, nc.peerId)?.next_hop === nb.peerId);
    assert.equal(via(ra, nc.peerId)?.cost, 2);
    await a.exec(['ping', '-c', '2', '-i', '0.2', '-W', '2', '10.144.144.3']);
  });
});
