/**
 * Proxied bulk transfers across a link losing 20 % of datagrams each way with 20 ms one-way delay
 * (the userspace impairment relay, bench/relay.ts): one over QUIC and one over KCP, each byte-exact
 * in both directions and never reset. Each source node reaches the destination F only through its
 * own relay; E proxies by QUIC only and K by KCP only, so the rows must say which carried the flow.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { startCore, waitPeers, waitRows, type CoreNode, type ProxyRow } from './lib/core.js';

const FLOWS = new URL('./fixtures/proxy-flows.js', import.meta.url);
const RELAY = new URL('../../bench/relay.js', import.meta.url);
const SKIP = unavailableReason();
/** Per direction: large enough that the transfer sees thousands of losses, small enough for seconds. */
const BULK = 3 << 20;

interface Done { ok: number; failed: number; errors: string[] }

const common = (ip: string, host: string): string[] =>
  ['--network-name', 'tf14l-net', '--network-secret', 'loss-secret', '-i', ip, '--hostname', host, '--dev-name', 'tf14ltun',
    '--log-level', 'info'];

/** A source node in `ns` whose only path to F is a relay dropping 20 % each way, 20 ms each way. */
async function lossySource(ns: Namespace, fAddr: string, ip: string, host: string, proxyFlag: string, seed: number): Promise<CoreNode> {
  const relay = ns.node(RELAY, ['--listen', '127.0.0.1:12000', '--target', `${fAddr}:11010`, '--loss', '0.2', '--delay', '20',
    '--seed', String(seed)]);
  await relay.waitForLine(/relay/i);
  const node = await startCore(ns, [...common(ip, host), '--no-listener', proxyFlag, '-p', 'udp://127.0.0.1:12000']);
  await waitPeers(ns, 1).catch((err: Error) => {
    throw new Error(`${err.message}\n${host}:\n${node.proc.lines.join('\n')}\nrelay:\n${relay.lines.join('\n')}`);
  });
  return node;
}

async function bulk(ns: Namespace, host: string, port: number, seed: number): Promise<Done> {
  const p = ns.node(FLOWS, ['flows', host, String(port), '1', String(BULK), String(BULK), '0', String(seed)]);
  return p.waitForEvent<Done>('done', 120_000);
}

test('proxied bulk transfers at 20 % loss each way, 20 ms: byte-exact, never reset', { skip: SKIP ?? false, timeout: 240_000 }, async (t) => {
  const net = await Netns.create('tf14l', t);
  const [e, k, f] = [await net.ns('e'), await net.ns('k'), await net.ns('f')];
  await net.link(e, f, '10.251.1.1/24', '10.251.1.2/24');
  await net.link(k, f, '10.251.2.1/24', '10.251.2.2/24');
  const nf = await startCore(f, [...common('10.144.181.2', 'node-f'), '-l', 'udp://0.0.0.0:11010']);

  for (const [name, ns, fAddr, ip, flag, transport, port] of [
    ['QUIC', e, '10.251.1.2', '10.144.181.1', '--enable-quic-proxy', 'Quic', 7000],
    ['KCP', k, '10.251.2.2', '10.144.181.3', '--enable-kcp-proxy', 'Kcp', 7001],
  ] as const) {
    await t.test(`${name}: ${BULK >> 20} MiB each way arrive byte-exact`, async () => {
      const server = f.node(FLOWS, ['serve', '0.0.0.0', String(port)]);
      await server.waitForEvent('listening');
      const src = await lossySource(ns, fAddr, ip, `node-${ns.name}`, flag, port);
      const r = await bulk(ns, '10.144.181.2', port, port * 3);
      const logs = (): string => `\nsource:\n${src.proc.lines.slice(-20).join('\n')}\nnode F:\n${nf.proc.lines.slice(-20).join('\n')}`;
      assert.deepEqual([r.ok, r.failed, r.errors], [1, 0, []], logs());
      // Both ends hash: the client checked the download; the server reports the upload's sha256.
      const conn = await server.waitForEvent<{ ok: boolean; bytes: number }>('conn', 10_000);
      assert.deepEqual([conn.ok, conn.bytes], [true, BULK]);
      const dst = `10.144.181.2:${port}`;
      const rows = await waitRows(ns, `${name} lists the flow`, (rs) => rs.some((x) => x.dst === dst));
      const row = rows.find((x: ProxyRow) => x.dst === dst)!;
      assert.equal(row.transport_type, transport, JSON.stringify(row));
      assert.doesNotMatch(row.reason ?? '', /reset/, JSON.stringify(row));
    });
  }
});
