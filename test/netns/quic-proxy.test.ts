/**
 * The QUIC proxy end to end with real TUNs in namespaces. A (--enable-kcp-proxy --enable-quic-proxy)
 * reaches B (--disable-kcp-input) over QUIC, C (accepts both) over KCP, D (--disable-kcp-input
 * --disable-quic-input) by plain packets. Proves: one large and 200 concurrent flows over QUIC arrive
 * byte-exact both ways, half-closing in both orders; the precedence KCP > QUIC > plain; a reset by
 * either application reaches the other as ECONNRESET; transfers over a lossy, delaying link stay
 * byte-exact; and the runtime fallback while the SYN is held, saying why:
 *  - H reaches C through B or D, then A; H's first hop relays KCP, so H opens its flows to C on KCP,
 *    but A (--disable-relay-kcp) silently drops the KCP packets it refuses to relay: the opens hear
 *    nothing for 3 s and the flows move on to QUIC, which A relays;
 *  - G accepts KCP and QUIC, but its port 7300 is one of its own services (its peer listener, on
 *    UDP), which it never lets a peer's proxy dial; so H's KCP and then QUIC opens to G:7300 are
 *    really denied, and H falls back to plain packets, which reach G's TCP server on that port.
 * (A KCP open denied and then carried by QUIC needs a peer that says it takes KCP and then denies it,
 * which real configuration cannot build: that case is in test/sim/proxy-flow.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { cliJson, startCore, waitPeers, waitRows, type ProxyRow } from './lib/core.js';

const FLOWS = new URL('./fixtures/proxy-flows.js', import.meta.url);
const RESETS = new URL('./fixtures/reset-flows.js', import.meta.url);
const SKIP = unavailableReason();

interface Done { ok: number; failed: number; errors: string[] }

const common = (ip: string, host: string): string[] =>
  ['--network-name', 'tt14net', '--network-secret', 'quic-secret', '-i', ip, '--hostname', host, '--dev-name', 'tt14tun',
    '--log-level', 'info'];
const SOURCE = ['--enable-kcp-proxy', '--enable-quic-proxy'];

async function flows(ns: Namespace, host: string, count: number, up: number, down: number, finFirst: boolean,
  seed: number, port = 7000): Promise<Done> {
  const p = ns.node(FLOWS, ['flows', host, String(port), String(count), String(up), String(down), finFirst ? '1' : '0', String(seed)]);
  return p.waitForEvent<Done>('done', 120_000);
}

const toDst = (ip: string, port = 7000) => (r: ProxyRow): boolean => r.dst === `${ip}:${port}` && r.role !== 'dst';

test('QUIC proxy: carriage, precedence, resets, loss, runtime fallback', { skip: SKIP ?? false, timeout: 300_000 }, async (t) => {
  const net = await Netns.create('tt14-quic', t);
  const [a, b, c, d, h, g] = [await net.ns('a'), await net.ns('b'), await net.ns('c'), await net.ns('d'), await net.ns('h'), await net.ns('g')];
  await net.link(a, b, '10.250.1.1/24', '10.250.1.2/24');
  await net.link(a, c, '10.250.2.1/24', '10.250.2.2/24');
  await net.link(a, d, '10.250.3.1/24', '10.250.3.2/24');
  await net.link(h, b, '10.250.4.1/24', '10.250.4.2/24');
  await net.link(h, d, '10.250.5.1/24', '10.250.5.2/24');
  await net.link(h, g, '10.250.8.1/24', '10.250.8.2/24');

  await startCore(b, [...common('10.144.170.2', 'node-b'), '-l', 'udp://0.0.0.0:11010', '--disable-kcp-input']);
  await startCore(c, [...common('10.144.170.3', 'node-c'), '-l', 'udp://0.0.0.0:11010']);
  await startCore(d, [...common('10.144.170.4', 'node-d'), '-l', 'udp://0.0.0.0:11010', '--disable-kcp-input',
    '--disable-quic-input']);
  // A relays for H (to C) but refuses to relay KCP; its own flows are direct.
  await startCore(a, [...common('10.144.170.1', 'node-a'), '--no-listener', ...SOURCE, '--disable-relay-kcp',
    '-p', 'udp://10.250.1.2:11010', '-p', 'udp://10.250.2.2:11010', '-p', 'udp://10.250.3.2:11010']);
  await startCore(g, [...common('10.144.170.7', 'node-g'), '-l', 'udp://0.0.0.0:7300']);
  await startCore(h, [...common('10.144.170.8', 'node-h'), '--no-listener', ...SOURCE,
    '-p', 'udp://10.250.4.2:11010', '-p', 'udp://10.250.5.2:11010', '-p', 'udp://10.250.8.2:7300']);
  await waitPeers(a, 4);
  await waitPeers(h, 5);
  for (const ns of [b, c, d]) await ns.node(FLOWS, ['serve', '0.0.0.0', '7000']).waitForEvent('listening');
  await g.node(FLOWS, ['serve', '0.0.0.0', '7300']).waitForEvent('listening');

  await t.test('a destination refusing KCP gets one large flow each way over QUIC, byte-exact', async () => {
    const r = await flows(a, '10.144.170.2', 1, 24 << 20, 24 << 20, false, 1);
    assert.deepEqual([r.ok, r.failed, r.errors], [1, 0, []]);
    const rows = await waitRows(a, 'A lists the flow to B', (rs) => rs.some(toDst('10.144.170.2')));
    assert.ok(rows.filter(toDst('10.144.170.2')).every((x) => x.transport_type === 'Quic'
      && /peer does not accept kcp; peer accepts quic/.test(x.reason ?? '')), JSON.stringify(rows));
    const bRows = await waitRows(b, 'B lists its side', (rs) => rs.some((x) => x.role === 'dst'));
    assert.ok(bRows.every((x) => x.transport_type === 'Quic'), JSON.stringify(bRows));
  });

  await t.test('200 concurrent flows over QUIC, half-closing in both orders, arrive byte-exact', async () => {
    const [clientFirst, serverFirst] = await Promise.all([
      flows(a, '10.144.170.2', 100, 40_000, 60_000, false, 10_000),
      flows(a, '10.144.170.2', 100, 60_000, 40_000, true, 20_000),
    ]);
    assert.deepEqual([clientFirst.ok, clientFirst.failed, clientFirst.errors], [100, 0, []]);
    assert.deepEqual([serverFirst.ok, serverFirst.failed, serverFirst.errors], [100, 0, []]);
  });

  await t.test('precedence: KCP when the destination accepts both; plain packets when it accepts neither', async () => {
    const [toC, toD] = await Promise.all([
      flows(a, '10.144.170.3', 5, 100_000, 100_000, false, 30_000),
      flows(a, '10.144.170.4', 3, 100_000, 100_000, false, 31_000),
    ]);
    assert.deepEqual([toC.ok, toC.failed, toD.ok, toD.failed], [5, 0, 3, 0]);
    const rows = await waitRows(a, 'A lists both', (rs) => rs.filter(toDst('10.144.170.3')).length >= 5
      && rs.filter(toDst('10.144.170.4')).length >= 3);
    assert.ok(rows.filter(toDst('10.144.170.3')).every((x) => x.transport_type === 'Kcp'), JSON.stringify(rows));
    const plain = rows.filter(toDst('10.144.170.4'));
    assert.ok(plain.length === 3 && plain.every((x) => x.transport_type === 'Tcp'
      && /peer does not accept kcp; peer does not accept quic/.test(x.reason ?? '')), JSON.stringify(plain));
    assert.equal((await cliJson<ProxyRow>(d, ['proxy'])).length, 0, 'D carried nothing');
  });

  await t.test('a reset by either application reaches the other as ECONNRESET over QUIC', async () => {
    const server = b.node(RESETS, ['serve', '0.0.0.0', '7100']);
    await server.waitForEvent('listening');
    const bySource = a.node(RESETS, ['client', '10.144.170.2', '7100', 'W']);
    await bySource.waitForEvent('reset', 30_000);
    assert.deepEqual(await server.waitForEvent('peer', 30_000), { event: 'peer', result: 'ECONNRESET' });
    const byServer = a.node(RESETS, ['client', '10.144.170.2', '7100', 'R']);
    assert.deepEqual(await byServer.waitForEvent('peer', 30_000), { event: 'peer', result: 'ECONNRESET' });
    const rows = await waitRows(a, 'A lists the reset flows', (rs) => rs.filter((x) => x.dst === '10.144.170.2:7100'
      && x.state === 'Closed').length === 2);
    const reasons = rows.filter((x) => x.dst === '10.144.170.2:7100').map((x) => x.reason ?? '').sort();
    assert.ok(reasons.some((r) => /reset-by-app/.test(r)) && reasons.some((r) => /reset-by-peer/.test(r)), JSON.stringify(reasons));
    assert.ok(rows.filter((x) => x.dst === '10.144.170.2:7100').every((x) => x.transport_type === 'Quic'));
  });

  await t.test('runtime fallback: an unanswered KCP open moves to QUIC; denied KCP and QUIC move to plain packets', async () => {
    const [toC, toG] = await Promise.all([
      flows(h, '10.144.170.3', 5, 200_000, 200_000, false, 50_000),
      flows(h, '10.144.170.7', 3, 200_000, 200_000, true, 51_000, 7300),
    ]);
    assert.deepEqual([toC.ok, toC.failed, toC.errors, toG.ok, toG.failed, toG.errors], [5, 0, [], 3, 0, []]);
    const rows = await waitRows(h, 'H lists both', (rs) => rs.filter(toDst('10.144.170.3')).length >= 5
      && rs.filter(toDst('10.144.170.7', 7300)).length >= 3);
    const viaQuic = rows.filter(toDst('10.144.170.3'));
    assert.ok(viaQuic.every((x) => x.transport_type === 'Quic' && /kcp: no answer in 3 s; peer accepts quic/.test(x.reason ?? '')),
      JSON.stringify(viaQuic));
    const viaPlain = rows.filter(toDst('10.144.170.7', 7300));
    assert.ok(viaPlain.length === 3 && viaPlain.every((x) => x.transport_type === 'Tcp'
      && /kcp: denied by peer; peer accepts quic; quic: denied by peer; plain packets/.test(x.reason ?? '')), JSON.stringify(viaPlain));
  });

  await t.test('runtime fallback: a peer whose QUIC never answers (its core is missing) gets plain packets after 3 s', async () => {
    // X (behind B) advertises quic_input but cannot load its QUIC core, so QUIC packets to it go unanswered.
    const x = await net.ns('x');
    await net.link(b, x, '10.250.7.1/24', '10.250.7.2/24');
    const nx = await startCore(x, [...common('10.144.170.9', 'node-x'), '--no-listener', '--disable-kcp-input',
      '-p', 'udp://10.250.7.1:11010'], { TSTIER_QUIC_WASM: '/nonexistent/tstier_quic.wasm' });
    assert.ok(nx.proc.lines.some((l) => /QUIC core unavailable/.test(l)), 'X runs without its QUIC core');
    await waitPeers(a, 6);
    await x.node(FLOWS, ['serve', '0.0.0.0', '7000']).waitForEvent('listening');
    const r = await flows(a, '10.144.170.9', 2, 100_000, 100_000, false, 70_000);
    assert.deepEqual([r.ok, r.failed, r.errors], [2, 0, []]);
    const rows = await waitRows(a, 'A lists the flows to X', (rs) => rs.filter(toDst('10.144.170.9')).length >= 2);
    const toX = rows.filter(toDst('10.144.170.9'));
    assert.ok(toX.every((y) => y.transport_type === 'Tcp' && /peer accepts quic; quic: no answer in 3 s; plain packets/.test(y.reason ?? '')),
      JSON.stringify(toX));
  });

  await t.test('over a lossy, delaying link (10% loss each way, 15 ms) QUIC transfers stay byte-exact', async () => {
    // E -> relay -> F, F refusing KCP, so QUIC crosses the lossy link.
    const [e, f] = [await net.ns('e'), await net.ns('f')];
    await net.link(e, f, '10.250.6.1/24', '10.250.6.2/24');
    await startCore(f, [...common('10.144.171.2', 'node-f'), '-l', 'udp://0.0.0.0:11010', '--disable-kcp-input']);
    const relay = e.node(new URL('../../bench/relay.js', import.meta.url), ['--listen', '127.0.0.1:12000',
      '--target', '10.250.6.2:11010', '--loss', '0.1', '--delay', '15', '--jitter', '3', '--seed', '14']);
    await relay.waitForLine(/relay/i);
    const ne = await startCore(e, [...common('10.144.171.1', 'node-e'), '--no-listener', ...SOURCE, '-p', 'udp://127.0.0.1:12000']);
    await waitPeers(e, 1).catch((err: Error) => {
      throw new Error(`${err.message}\nnode E:\n${ne.proc.lines.join('\n')}\nrelay:\n${relay.lines.join('\n')}`);
    });
    await f.node(FLOWS, ['serve', '0.0.0.0', '7000']).waitForEvent('listening');
    const r = await flows(e, '10.144.171.2', 20, 200_000, 200_000, false, 40_000);
    assert.deepEqual([r.ok, r.failed, r.errors], [20, 0, []]);
    const rows = await waitRows(e, 'E lists Quic flows', (rs) => rs.filter((x) => x.transport_type === 'Quic').length >= 20);
    assert.equal(rows.filter((x) => x.transport_type !== 'Quic').length, 0, JSON.stringify(rows.slice(0, 3)));
  });
});
