/**
 * easytier-core's TCP proxy over EasyTier 2.6's QUIC (quinn-plaintext crypto, QuicSrc/QuicDst peer
 * packets, the length-prefixed connect message) with the real EasyTier 2.6.4 core, each with a real
 * TUN in its own namespace (no default route): both ways at once, FLOWS full-duplex flows each way
 * (16 MiB each way in all), byte-exact at both ends. tstier's proxy table says Quic for the flows it
 * originated and accepted; EasyTier's TcpProxyConnect counter says protocol=QUIC for the ones it
 * originated. With KCP enabled as well, tstier's flows to EasyTier take KCP (KCP first).
 * A SOCKS5 flow through tstier to EasyTier then rides EasyTier's QUIC too. --disable-quic-input on
 * either side is honoured by the other: plain packets instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { cliJson, startCore, type ProxyRow } from './lib/core.js';
import { easytierUnavailable, etConfig, startEasyTier, type EasyTierNode } from './lib/easytier.js';

const SKIP = unavailableReason() ?? easytierUnavailable();
const NET = { name: 'th3q-net', secret: 'th3q-secret' };
const FLOWS_FIXTURE = new URL('./fixtures/duplex-flows.js', import.meta.url);
const FLOWS = 20;
const FLOW_BYTES = Math.ceil((16 * 1024 * 1024) / FLOWS);

/** `count` full-duplex flows of `bytes` each way from `srcNs` to `ip:port` (served in `sinkNs`), each end checking what it got. */
async function flows(sinkNs: Namespace, srcNs: Namespace, ip: string, port: number, count = FLOWS, bytes = FLOW_BYTES): Promise<void> {
  const server = sinkNs.node(FLOWS_FIXTURE, ['serve', ip, String(port)]);
  await server.waitForEvent('listening');
  const client = srcNs.node(FLOWS_FIXTURE, ['flows', ip, String(port), String(count), String(bytes), String(bytes)]);
  const done = await client.waitForEvent<{ ok: number; errors: string[] }>('done', 120_000);
  assert.deepEqual([done.ok, done.errors], [count, []], `${ip}:${port}: every downstream byte-exact`);
  for (let i = 0; i < count; i++) {
    const c = await server.waitForEvent<{ ok: boolean; bytes: number }>('conn');
    assert.deepEqual([c.ok, c.bytes], [true, bytes], `${ip}:${port}: an upstream arrived whole`);
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

/**
 * EasyTier's view of our quic_input, once it has our info with the proxy's flags: they come in one
 * update with kcp_input, which our node always takes here (bounded poll).
 */
async function quicInputSeen(et: EasyTierNode): Promise<boolean | undefined> {
  for (let i = 0; i < 50; i++) {
    const flags = (await et.routes()).find((x) => x.hostname === 'ts-a')?.feature_flag;
    if (flags?.['kcp_input'] === true) return flags['quic_input'] === true;
    await et.proc.waitForLine(/never/, 100).catch(() => undefined);
  }
  return undefined;
}

/** Every proxy row `ns` lists while `work` runs (closed rows leave the table, so it is read as it goes). */
async function rowsDuring(ns: Namespace, work: Promise<unknown>): Promise<ProxyRow[]> {
  const seen = new Map<string, ProxyRow>();
  let done = false;
  const finished = work.finally(() => (done = true));
  while (!done) for (const r of await cliJson<ProxyRow>(ns, ['proxy'])) seen.set(`${r.role}|${r.src}|${r.dst}`, r);
  await finished;
  for (const r of await cliJson<ProxyRow>(ns, ['proxy'])) seen.set(`${r.role}|${r.src}|${r.dst}`, r);
  return [...seen.values()];
}

/** A SOCKS5 flow through `a`'s SOCKS5 server (127.0.0.1:1080) to an HTTP server at `ip` in `b`: byte-exact, carried as Quic. */
async function socksOverQuic(t: { after(fn: () => void): void }, a: Namespace, b: Namespace, ip: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'th3q-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const blob = randomBytes(1 << 20);
  writeFileSync(join(dir, 'blob'), blob);
  const http = b.spawn(['/usr/bin/python3', '-u', '-m', 'http.server', '8000', '--bind', ip, '--directory', dir]);
  await http.waitForLine(/Serving HTTP/, 15_000);
  const sha = (d: Uint8Array): string => createHash('sha256').update(d).digest('hex');
  const seen = await rowsDuring(a, a.exec(['curl', '-sS', '--fail', '--max-time', '60', '--socks5', '127.0.0.1:1080',
    `http://${ip}:8000/blob`, '-o', join(dir, 'fetched')]));
  assert.equal(sha(readFileSync(join(dir, 'fetched'))), sha(blob));
  const row = seen.find((r) => r.dst === `${ip}:8000`);
  assert.ok(row?.transport_type === 'Quic' && /^socks5; peer accepts quic/.test(row.reason ?? ''), JSON.stringify(row));
  await http.stop();
}

async function pair(t: Parameters<typeof Netns.create>[1], tag: string, subnet: number, ts: string[], etFlags: { disableQuicInput?: boolean } = {}): Promise<{ a: Namespace; b: Namespace; et: EasyTierNode }> {
  const net = await Netns.create(`th3q-${tag}`, t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  await net.link(a, b, `198.18.${subnet}.1/24`, `198.18.${subnet}.2/24`);
  const et = await startEasyTier(b, etConfig({ ...NET, ipv4: `10.${subnet}.0.2/24`, hostname: 'et-b', listeners: ['udp://0.0.0.0:11010'], enableQuicProxy: true, ...etFlags }));
  const node = await startCore(a, ['--peer-protocol', 'easytier', '--network-name', NET.name, '--network-secret', NET.secret,
    '-i', `10.${subnet}.0.1`, '--hostname', 'ts-a', '--dev-name', 'th3qtun', '-p', `udp://198.18.${subnet}.2:11010`, ...ts]);
  await et.waitRoutes([node.peerId]);
  return { a, b, et };
}

test(`the QUIC proxy between easytier-core and EasyTier, both ways at once: ${FLOWS} flows each way, 16 MiB each way; then SOCKS5 over it`, { skip: SKIP ?? false, timeout: 240_000 }, async (t) => {
  const { a, b, et } = await pair(t, 'both', 86, ['--enable-quic-proxy', '--socks5', '127.0.0.1:1080']);
  assert.equal(await quicInputSeen(et), true, 'EasyTier sees our quic_input');
  const seen = await rowsDuring(a, Promise.all([flows(b, a, '10.86.0.2', 5301), flows(a, b, '10.86.0.1', 5300)]));
  const out = seen.filter((r) => r.dst === '10.86.0.2:5301');
  assert.ok(out.length === FLOWS && out.every((r) => r.transport_type === 'Quic' && r.role !== 'dst'), JSON.stringify(out));
  const inbound = seen.filter((r) => r.dst === '10.86.0.1:5300' && r.role === 'dst');
  assert.ok(inbound.length >= FLOWS && inbound.every((r) => r.transport_type === 'Quic'), JSON.stringify(inbound));
  assert.deepEqual(await etConnects(et), [['10.86.0.1', 'QUIC', FLOWS]]);
  await socksOverQuic(t, a, b, '10.86.0.2');
  await et.stop();
});

test('KCP keeps precedence: with both proxies on, tstier sends KCP to an EasyTier node that takes both', { skip: SKIP ?? false, timeout: 120_000 }, async (t) => {
  const { a, b, et } = await pair(t, 'kcp1', 87, ['--enable-kcp-proxy', '--enable-quic-proxy']);
  const out = (await rowsDuring(a, flows(b, a, '10.87.0.2', 5301, 2, 64 * 1024))).filter((r) => r.dst === '10.87.0.2:5301');
  assert.ok(out.length === 2 && out.every((r) => r.transport_type === 'Kcp'), JSON.stringify(out));
  await et.stop();
});

test('--disable-quic-input is honoured both ways: tstier falls back from EasyTier, EasyTier from tstier', { skip: SKIP ?? false, timeout: 120_000 }, async (t) => {
  await t.test('EasyTier takes no QUIC input: tstier sends plain packets', async (t2) => {
    const { a, b, et } = await pair(t2, 'etno', 88, ['--enable-quic-proxy'], { disableQuicInput: true });
    const out = (await rowsDuring(a, flows(b, a, '10.88.0.2', 5301, 2, 64 * 1024))).filter((r) => r.dst === '10.88.0.2:5301');
    assert.ok(out.length === 2 && out.every((r) => r.transport_type === 'Tcp'), JSON.stringify(out));
    await et.stop();
  });
  await t.test('tstier takes no QUIC input: EasyTier sends plain packets', async (t2) => {
    const { a, b, et } = await pair(t2, 'tsno', 89, ['--disable-quic-input']);
    assert.equal(await quicInputSeen(et), false);
    const inbound = (await rowsDuring(a, flows(a, b, '10.89.0.1', 5300, 2, 64 * 1024))).filter((r) => r.role === 'dst');
    assert.deepEqual(inbound, [], 'we accepted nothing');
    assert.deepEqual(await etConnects(et), [], 'EasyTier proxied nothing over QUIC');
    await et.stop();
  });
});
