/**
 * Idle KCP-proxied flows are listed Connected on both nodes (issue 14: 5,000 idle flows showed 1,734
 * rows ConnectingDst while they were connected). A (--enable-kcp-proxy) opens FLOWS connections to a
 * server behind B and sends nothing; once every connect has completed, both proxy tables must list
 * every flow, Connected, over KCP. Closing the connections then drains both tables.
 */
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { Netns, unavailableReason } from './lib/netns.js';
import { cliJson, startCore, waitPeers, type ProxyRow } from './lib/core.js';

const TOOL = fileURLToPath(new URL('./fixtures/many-flows.js', import.meta.url));
const SKIP = unavailableReason();
const FLOWS = Number(process.env.IDLE_FLOWS ?? 500);
const NOFILE = '--nofile=16384:16384';

const common = (ip: string, host: string): string[] =>
  ['--network-name', 'tf14idle', '--network-secret', 'idle-secret', '-i', ip, '--hostname', host, '--dev-name', 'tf14itun',
    '--log-level', 'info'];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Connected { ok: number; failed: number; errors: string[] }

test(`KCP proxy: ${FLOWS} idle flows are listed Connected on both nodes, and drain when closed`, { skip: SKIP ?? false, timeout: 180_000 }, async (t) => {
  const net = await Netns.create('tf14i-idle', t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  await net.link(a, b, '10.253.31.1/24', '10.253.31.2/24');
  const nb = await startCore(b, [...common('10.144.181.2', 'node-b'), '-l', 'udp://0.0.0.0:11010']);
  const na = await startCore(a, [...common('10.144.181.1', 'node-a'), '--no-listener', '--enable-kcp-proxy', '-p', 'udp://10.253.31.2:11010']);
  for (const n of [na, nb]) await a.exec(['prlimit', `--pid=${n.proc.child.pid}`, NOFILE]);
  await waitPeers(a, 1);
  await b.spawn(['prlimit', NOFILE, process.execPath, TOOL, 'sink', '0.0.0.0', '7200']).waitForLine(/listening/);

  const idle = a.spawn(['prlimit', NOFILE, process.execPath, TOOL, 'idle', '10.144.181.2', '7200', String(FLOWS)]);
  const up = await idle.waitForEvent<Connected>('connected', 120_000);
  assert.deepEqual([up.ok, up.failed, up.errors], [FLOWS, 0, []]);

  // Every connect completed, so both sides know every flow; the listings may trail by a moment.
  for (const [name, ns, role] of [['A', a, 'src'], ['B', b, 'dst']] as const) {
    let rows: ProxyRow[] = [];
    for (let i = 0; i < 20; i++) {
      rows = (await cliJson<ProxyRow>(ns, ['proxy'])).filter((r) => r.role === role);
      if (rows.length === FLOWS && rows.every((r) => r.state === 'Connected')) break;
      await sleep(500);
    }
    const states = new Map<string, number>();
    for (const r of rows) states.set(`${r.transport_type}/${r.state}`, (states.get(`${r.transport_type}/${r.state}`) ?? 0) + 1);
    const odd = [...new Set(rows.filter((r) => r.state !== 'Connected' || r.transport_type !== 'Kcp').map((r) => r.reason))].slice(0, 3);
    assert.deepEqual([...states], [['Kcp/Connected', FLOWS]], `${name}'s rows; other reasons: ${JSON.stringify(odd)}`);
  }

  idle.child.stdin!.end();
  for (const [name, ns] of [['A', a], ['B', b]] as const) {
    let open: ProxyRow[] = [];
    for (let i = 0; i < 30; i++) {
      open = (await cliJson<ProxyRow>(ns, ['proxy'])).filter((r) => r.state !== 'Closed');
      if (open.length === 0) break;
      await sleep(500);
    }
    assert.deepEqual(open.slice(0, 3), [], `${name} still lists ${open.length} open rows`);
  }
});
