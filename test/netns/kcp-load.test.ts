/**
 * A thousand flows at once through the KCP proxy, on a clean veth between two real nodes: 1,000
 * concurrent connections × 1 MiB from A (--enable-kcp-proxy) to a sink behind B. Proves: every flow
 * arrives byte-exact (sha256 at both ends); every flow was carried by KCP (none fell back to plain
 * packets: the proxy table, polled more often than a closed row lingers, never lists one as Tcp); and
 * afterwards no row is left behind on either node (the tables drain to empty).
 */
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { cliJson, startCore, waitPeers, watchCarriers, type ProxyRow } from './lib/core.js';

const TOOL = new URL('./fixtures/many-flows.js', import.meta.url);
/**
 * About 90 s on an idle 2-core machine (170 s when it is shared), the suite's longest file.
 * (Flows used to stall here after 80-96 KiB: the TUN's queue to the daemon, 4096 packets, overflowed and
 * the applications' TCP backed off past the stall limit; the queue is 32768 now, see docs/tun.md.)
 * The stall limit is generous because a flow whose bytes all sit in socket buffers shows the tool no
 * progress while a thousand flows share the path: at about 7 KB/s each, a few hundred KiB of backlog
 * takes over a minute. A real hang still ends the run.
 */
const SKIP = unavailableReason();
const FLOWS = 1000;
const BYTES = 1 << 20;
/** Descriptors a process needs here: a socket per flow on each side, with room to spare. */
const NOFILE = '--nofile=8192:8192';

const common = (ip: string, host: string): string[] =>
  ['--network-name', 'tf4k', '--network-secret', 'load-secret', '-i', ip, '--hostname', host, '--dev-name', 'tf4ktun',
    '--log-level', 'info'];

interface LoadDone { ok: number; failed: number; errors: string[]; secs: number }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the flow tool under a raised descriptor limit (the shell's default may be 1024). */
function tool(ns: Namespace, args: string[]): ReturnType<Namespace['spawn']> {
  return ns.spawn(['prlimit', NOFILE, process.execPath, fileURLToPath(TOOL), ...args]);
}

test('KCP proxy: 1,000 concurrent flows x 1 MiB, byte-exact, all over KCP, no row left behind', { skip: SKIP ?? false, timeout: 900_000 }, async (t) => {
  const net = await Netns.create('tf4k-load', t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  await net.link(a, b, '10.253.1.1/24', '10.253.1.2/24');
  const nb = await startCore(b, [...common('10.144.160.2', 'node-b'), '-l', 'udp://0.0.0.0:11010']);
  const na = await startCore(a, [...common('10.144.160.1', 'node-a'), '--no-listener', '--enable-kcp-proxy',
    '-p', 'udp://10.253.1.2:11010']);
  // `ip netns exec` and `sh -c exec` replace themselves, so the child's pid is the daemon's.
  for (const n of [na, nb]) await a.exec(['prlimit', `--pid=${n.proc.child.pid}`, NOFILE]);
  await waitPeers(a, 1);
  await tool(b, ['sink', '0.0.0.0', '7100']).waitForLine(/listening/);

  const watch = watchCarriers(a, '10.144.160.2:7100');
  const load = tool(a, ['load', '10.144.160.2', '7100', String(FLOWS), String(BYTES), '4000', '180']);
  const done = await load.waitForEvent<LoadDone>('done', 600_000).finally(() => watch.stop());
  const seen = await watch.stop();
  t.diagnostic(`${FLOWS} x ${BYTES} B in ${done.secs.toFixed(1)} s`);
  assert.deepEqual([done.ok, done.failed, done.errors], [FLOWS, 0, []]);

  assert.equal(seen.size, FLOWS, 'every flow was listed on A');
  const plain = [...seen].filter(([, kind]) => kind !== 'Kcp');
  assert.deepEqual(plain, [], 'flows that did not go over KCP');

  // Nothing half-open: once the lingering Closed rows are swept (10 s), both tables are empty. A row
  // stuck ConnectingDst or Connected would never go.
  for (const [name, ns] of [['A', a], ['B', b]] as const) {
    let rows: ProxyRow[] = [];
    for (let i = 0; i < 30; i++) {
      rows = await cliJson<ProxyRow>(ns, ['proxy']);
      if (rows.length === 0) break;
      await sleep(1_000);
    }
    assert.deepEqual(rows.slice(0, 3), [], `${name}'s proxy table did not drain (${rows.length} rows)`);
  }
});
