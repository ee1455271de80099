/**
 * easytier-core's TCP proxy over kcp-sys with the real EasyTier 2.6.4 core, each with a real TUN in
 * its own namespace (no default route):
 * - both ways at once, FLOWS full-duplex flows each way (16 MiB each way in all), byte-exact at both
 *   ends; tstier's proxy table says Kcp for the flows it originated and accepted; EasyTier's
 *   TcpProxyConnect counter says protocol=KCP for the ones it originated;
 * - --disable-kcp-input on either side makes the other fall back to plain packets, and the flows
 *   still arrive whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { cliJson, startCore, type CoreNode, type ProxyRow } from './lib/core.js';
import { easytierUnavailable, etConfig, startEasyTier, type EasyTierNode } from './lib/easytier.js';

const SKIP = unavailableReason() ?? easytierUnavailable();
const NET = { name: 'tg8k-net', secret: 'tg8k-secret' };
const FLOWS_FIXTURE = new URL('./fixtures/duplex-flows.js', import.meta.url);
const FLOWS = 20;
const FLOW_BYTES = Math.ceil((16 * 1024 * 1024) / FLOWS);

const core = (ns: Namespace, ip: string, extra: string[]): Promise<CoreNode> =>
  startCore(ns, ['--peer-protocol', 'easytier', '--network-name', NET.name, '--network-secret', NET.secret, '-i', ip,
    '--hostname', 'ts-a', '--dev-name', 'tg8tun', '--enable-kcp-proxy', ...extra]);

/** FLOWS full-duplex flows from `srcNs` to `ip:port` (served in `sinkNs`), each end checking what it got. */
async function flows(sinkNs: Namespace, srcNs: Namespace, ip: string, port: number): Promise<void> {
  const server = sinkNs.node(FLOWS_FIXTURE, ['serve', ip, String(port)]);
  await server.waitForEvent('listening');
  const client = srcNs.node(FLOWS_FIXTURE, ['flows', ip, String(port), String(FLOWS), String(FLOW_BYTES), String(FLOW_BYTES)]);
  const done = await client.waitForEvent<{ ok: number; errors: string[] }>('done', 120_000);
  assert.deepEqual([done.ok, done.errors], [FLOWS, []], `${ip}:${port}: every downstream byte-exact`);
  for (let i = 0; i < FLOWS; i++) {
    const c = await server.waitForEvent<{ ok: boolean; bytes: number }>('conn');
    assert.deepEqual([c.ok, c.bytes], [true, FLOW_BYTES], `${ip}:${port}: an upstream arrived whole`);
  }
  await server.stop();
}

/** EasyTier's TcpProxyConnect counters as [dst_ip, protocol, count]. */
async function etConnects(et: EasyTierNode): Promise<[string, string, number][]> {
  return (await et.metrics()).filter((m) => m['name'] === 'TcpProxyConnect').map((m) => {
    const l = Object.fromEntries((m['labels'] as { labels: { key: string; value: string }[] }).labels.map((x) => [x.key, x.value]));
    return [l['dst_ip']!, l['protocol']!, Number(m['value'])];
  });
}

/** Whether EasyTier's route to our node shows kcp_input, once it has our info with the proxy's flags (bounded poll). */
async function kcpInputSeen(et: EasyTierNode): Promise<boolean> {
  let seen = false;
  for (let i = 0; i < 50 && !seen; i++) {
    const r = (await et.routes()).find((x) => x.hostname === 'ts-a');
    seen = r?.feature_flag?.['kcp_input'] === true;
    if (!seen) await et.proc.waitForLine(/never/, 100).catch(() => undefined);
  }
  return seen;
}

/** tstier's proxy rows for `dst`. */
async function rows(ns: Namespace, dst: string): Promise<ProxyRow[]> {
  return (await cliJson<ProxyRow>(ns, ['proxy'])).filter((r) => r.dst === dst);
}

/**
 * Every proxy row `ns` lists while `work` runs (by role, source and destination; the latest state
 * of each): a closed flow leaves the table 10 s after it ends, so the table is read as it goes.
 */
async function rowsDuring(ns: Namespace, work: Promise<unknown>): Promise<ProxyRow[]> {
  const seen = new Map<string, ProxyRow>();
  let done = false;
  const finished = work.finally(() => (done = true));
  while (!done) for (const r of await cliJson<ProxyRow>(ns, ['proxy'])) seen.set(`${r.role}|${r.src}|${r.dst}`, r);
  await finished;
  for (const r of await cliJson<ProxyRow>(ns, ['proxy'])) seen.set(`${r.role}|${r.src}|${r.dst}`, r);
  return [...seen.values()];
}

async function pair(t: Parameters<typeof Netns.create>[1], tag: string, subnet: number, ts: string[], et: { disableKcpInput?: boolean }): Promise<{ a: Namespace; b: Namespace; node: CoreNode; et: EasyTierNode }> {
  const net = await Netns.create(`tg8k-${tag}`, t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  await net.link(a, b, `198.18.${subnet}.1/24`, `198.18.${subnet}.2/24`);
  const etNode = await startEasyTier(b, etConfig({ ...NET, ipv4: `10.${subnet}.0.2/24`, hostname: 'et-b', listeners: ['udp://0.0.0.0:11010'], enableKcpProxy: true, ...et }));
  const node = await core(a, `10.${subnet}.0.1`, ['-p', `udp://198.18.${subnet}.2:11010`, ...ts]);
  await etNode.waitRoutes([node.peerId]);
  return { a, b, node, et: etNode };
}

test(`the KCP proxy between easytier-core and EasyTier, both ways at once: ${FLOWS} flows each way, 16 MiB each way`, { skip: SKIP ?? false, timeout: 240_000 }, async (t) => {
  const { a, b, et } = await pair(t, 'both', 82, [], {});
  assert.equal(await kcpInputSeen(et), true, 'EasyTier sees our kcp_input');
  const seen = await rowsDuring(a, Promise.all([flows(b, a, '10.82.0.2', 5301), flows(a, b, '10.82.0.1', 5300)]));
  const out = seen.filter((r) => r.dst === '10.82.0.2:5301');
  assert.ok(out.length === FLOWS && out.every((r) => r.transport_type === 'Kcp' && r.role !== 'dst'), JSON.stringify(out));
  const inbound = seen.filter((r) => r.dst === '10.82.0.1:5300' && r.role === 'dst');
  assert.ok(inbound.length >= FLOWS && inbound.every((r) => r.transport_type === 'Kcp'), JSON.stringify(inbound));
  assert.deepEqual(await etConnects(et), [['10.82.0.1', 'KCP', FLOWS]]);
  await et.stop();
});

test('--disable-kcp-input is honoured both ways: tstier falls back from EasyTier, EasyTier from tstier', { skip: SKIP ?? false, timeout: 240_000 }, async (t) => {
  await t.test('EasyTier takes no KCP input: tstier sends plain packets', async (t2) => {
    const { a, b, et } = await pair(t2, 'etno', 83, [], { disableKcpInput: true });
    const out = (await rowsDuring(a, flows(b, a, '10.83.0.2', 5301))).filter((r) => r.dst === '10.83.0.2:5301');
    assert.ok(out.length === FLOWS && out.every((r) => r.transport_type === 'Tcp'), JSON.stringify(out));
    await et.stop();
  });
  await t.test('tstier takes no KCP input: EasyTier sends plain packets', async (t2) => {
    const { a, b, et } = await pair(t2, 'tsno', 84, ['--disable-kcp-input'], {});
    assert.equal(await kcpInputSeen(et), false);
    await flows(a, b, '10.84.0.1', 5300);
    assert.deepEqual(await etConnects(et), [], 'EasyTier proxied nothing over KCP');
    assert.deepEqual((await rows(a, '10.84.0.1:5300')).filter((r) => r.role === 'dst'), [], 'we accepted nothing');
    await et.stop();
  });
});
