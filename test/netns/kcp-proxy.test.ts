/**
 * The KCP proxy end to end with real TUNs in namespaces: A (--enable-kcp-proxy) reaches B over KCP
 * and C (--disable-kcp-input, --disable-relay-kcp) over plain packets; F behind B over KCP through B's
 * relay, G behind C by plain packets because C refuses to relay KCP. Proves: one large and 200
 * concurrent flows arrive byte-exact both ways; half-close works in both orders; a closed port gives
 * the application ECONNREFUSED; the fallbacks show as Tcp with their reasons; `easytier-cli proxy -o
 * json` on both ends lists the flows; a lossy, delaying link (the userspace relay) keeps transfers
 * byte-exact, in optimistic mode too.
 * A terminates in the kernel (`--proxy-redirect false`): this is kernel NAT termination's test, whose
 * held SYN makes a closed port ECONNREFUSED (the redirect's, the default, is proxy-redirect.test.ts);
 * D, over the lossy link, terminates by the default redirect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { cliJson, startCore, waitPeers, waitRows, type ProxyRow } from './lib/core.js';

const FLOWS = new URL('./fixtures/proxy-flows.js', import.meta.url);
const SKIP = unavailableReason();

interface Done { ok: number; failed: number; errors: string[]; upSha256: string; downSha256: string }

const common = (ip: string, host: string): string[] =>
  ['--network-name', 'tt6net', '--network-secret', 'kcp-secret', '-i', ip, '--hostname', host, '--dev-name', 'tt6tun',
    '--log-level', 'info'];

/** Runs the flows fixture from `ns` to `host:port` and returns its verdict. */
async function flows(ns: Namespace, host: string, port: number, count: number, up: number, down: number,
  finFirst: boolean, seed: number): Promise<Done> {
  const p = ns.node(FLOWS, ['flows', host, String(port), String(count), String(up), String(down), finFirst ? '1' : '0', String(seed)]);
  return p.waitForEvent<Done>('done', 120_000);
}

test('KCP proxy: interception, fidelity, fallback, visibility, loss', { skip: SKIP ?? false, timeout: 300_000 }, async (t) => {
  const net = await Netns.create('tt6-kcp', t);
  const [a, b, c, f, g] = [await net.ns('a'), await net.ns('b'), await net.ns('c'), await net.ns('f'), await net.ns('g')];
  await net.link(a, b, '10.252.1.1/24', '10.252.1.2/24');
  await net.link(a, c, '10.252.2.1/24', '10.252.2.2/24');
  await net.link(b, f, '10.252.4.1/24', '10.252.4.2/24');
  await net.link(c, g, '10.252.5.1/24', '10.252.5.2/24');

  await startCore(b, [...common('10.144.150.2', 'node-b'), '-l', 'udp://0.0.0.0:11010']);
  await startCore(c, [...common('10.144.150.3', 'node-c'), '-l', 'udp://0.0.0.0:11010', '--disable-kcp-input',
    '--disable-relay-kcp']);
  await startCore(f, [...common('10.144.150.6', 'node-f'), '--no-listener', '-p', 'udp://10.252.4.1:11010']);
  await startCore(g, [...common('10.144.150.7', 'node-g'), '--no-listener', '-p', 'udp://10.252.5.1:11010']);
  await startCore(a, [...common('10.144.150.1', 'node-a'), '--no-listener', '--enable-kcp-proxy', '--proxy-redirect', 'false',
    '-p', 'udp://10.252.1.2:11010', '-p', 'udp://10.252.2.2:11010']);
  await waitPeers(a, 4);
  for (const ns of [b, c, f, g]) await ns.node(FLOWS, ['serve', '0.0.0.0', '7000']).waitForEvent('listening');

  await t.test('one large flow each way arrives byte-exact over KCP', async () => {
    const r = await flows(a, '10.144.150.2', 7000, 1, 24 << 20, 24 << 20, false, 1);
    assert.deepEqual([r.ok, r.failed, r.errors], [1, 0, []]);
  });

  await t.test('200 concurrent flows, half-closing in both orders, arrive byte-exact', async () => {
    const [clientFirst, serverFirst] = await Promise.all([
      flows(a, '10.144.150.2', 7000, 100, 40_000, 60_000, false, 10_000),
      flows(a, '10.144.150.2', 7000, 100, 60_000, 40_000, true, 20_000),
    ]);
    assert.deepEqual([clientFirst.ok, clientFirst.failed, clientFirst.errors], [100, 0, []]);
    assert.deepEqual([serverFirst.ok, serverFirst.failed, serverFirst.errors], [100, 0, []]);
  });

  await t.test('both ends list open flows as Kcp, Connected, in easytier-cli proxy -o json', async () => {
    const holder = a.node(FLOWS, ['hold', '10.144.150.2', '7000', '5']);
    const { ports } = await holder.waitForEvent<{ ports: number[] }>('open', 30_000);
    const srcs = ports.map((p) => `10.144.150.1:${p}`).sort();
    const isOpen = (r: ProxyRow): boolean => srcs.includes(r.src) && r.state === 'Connected';
    for (const ns of [a, b]) {
      const rows = (await waitRows(ns, 'the held flows are listed', (rs) => rs.filter(isOpen).length === 5)).filter(isOpen);
      assert.deepEqual(rows.map((r) => r.src).sort(), srcs);
      assert.ok(rows.every((r) => r.dst === '10.144.150.2:7000' && r.transport_type === 'Kcp'), JSON.stringify(rows[0]));
    }
    holder.send('close');
    await holder.waitForEvent('closed', 30_000);
    await waitRows(a, 'closed flows show Closed', (rs) => rs.filter((r) => srcs.includes(r.src) && r.state === 'Closed').length === 5);
  });

  await t.test('a closed port reaches the application as ECONNREFUSED', async () => {
    const p = a.node(FLOWS, ['connect', '10.144.150.2', '7999', '10000']);
    assert.deepEqual(await p.waitForEvent('connect', 30_000), { event: 'connect', result: 'ECONNREFUSED' });
  });

  await t.test('a destination with --disable-kcp-input is reached by plain packets and listed as Tcp', async () => {
    const r = await flows(a, '10.144.150.3', 7000, 3, 100_000, 100_000, false, 30_000);
    assert.deepEqual([r.ok, r.failed], [3, 0]);
    const rows = await waitRows(a, 'A lists the fallback', (rs) => rs.some((x) => x.dst === '10.144.150.3:7000'));
    const toC = rows.filter((x) => x.dst === '10.144.150.3:7000');
    assert.ok(toC.length === 3 && toC.every((x) => x.transport_type === 'Tcp'), JSON.stringify(toC));
    const cRows = await cliJson<ProxyRow>(c, ['proxy']);
    assert.equal(cRows.length, 0, 'C carried nothing over KCP');
  });

  await t.test('through a relay: KCP when the relay carries it, plain packets when it refuses', async () => {
    const [viaB, viaC] = await Promise.all([
      flows(a, '10.144.150.6', 7000, 10, 300_000, 300_000, false, 50_000),
      flows(a, '10.144.150.7', 7000, 2, 100_000, 100_000, false, 60_000),
    ]);
    assert.deepEqual([viaB.ok, viaB.failed, viaB.errors], [10, 0, []]);
    assert.deepEqual([viaC.ok, viaC.failed, viaC.errors], [2, 0, []]);
    const rows = await waitRows(a, 'A lists both', (rs) => rs.some((x) => x.dst === '10.144.150.6:7000')
      && rs.some((x) => x.dst === '10.144.150.7:7000'));
    assert.ok(rows.filter((x) => x.dst === '10.144.150.6:7000').every((x) => x.transport_type === 'Kcp'));
    const toG = rows.filter((x) => x.dst === '10.144.150.7:7000');
    assert.ok(toG.every((x) => x.transport_type === 'Tcp' && /relay refuses kcp/.test(x.reason ?? '')), JSON.stringify(toG));
  });

  await t.test('over a lossy, delaying link (10% loss each way, 15 ms) transfers stay byte-exact, in optimistic mode', async () => {
    // A second pair of nodes, D -> relay -> E, so the lossy link is the only path.
    const [d, e] = [await net.ns('d'), await net.ns('e')];
    await net.link(d, e, '10.252.3.1/24', '10.252.3.2/24');
    await startCore(e, [...common('10.144.151.2', 'node-e'), '-l', 'udp://0.0.0.0:11010']);
    const relay = d.node(new URL('../../bench/relay.js', import.meta.url), ['--listen', '127.0.0.1:12000',
      '--target', '10.252.3.2:11010', '--loss', '0.1', '--delay', '15', '--jitter', '3', '--seed', '6']);
    await relay.waitForLine(/relay/i);
    const nd = await startCore(d, [...common('10.144.151.1', 'node-d'), '--no-listener', '--enable-kcp-proxy',
      '--proxy-optimistic', '-p', 'udp://127.0.0.1:12000']);
    await waitPeers(d, 1).catch((err: Error) => {
      throw new Error(`${err.message}\nnode D:\n${nd.proc.lines.join('\n')}\nrelay:\n${relay.lines.join('\n')}`);
    });
    const server = e.node(FLOWS, ['serve', '0.0.0.0', '7000']);
    await server.waitForEvent('listening');
    const r = await flows(d, '10.144.151.2', 7000, 20, 200_000, 200_000, false, 40_000);
    assert.deepEqual([r.ok, r.failed, r.errors], [20, 0, []]);
    const rows = await waitRows(d, 'D lists Kcp flows', (rs) => rs.filter((x) => x.transport_type === 'Kcp').length >= 20);
    assert.ok(rows.some((x) => x.transport_type === 'Kcp'));
  });
});
