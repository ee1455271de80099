/**
 * The QUIC proxy against the KCP proxy and plain forwarding, through the same pair of nodes, in
 * network namespaces. Bench only (needs root and a built tree); prints a markdown table.
 *
 * Namespaces A and B joined by a veth; easytier-core in each; a TCP server in B. From A to B's
 * virtual address, three paths, each with the daemons restarted:
 *  - quic:  A --enable-quic-proxy: the flow crosses as a QUIC stream (checked: A lists it as Quic);
 *  - kcp:   A --enable-kcp-proxy: a KCP conversation (checked: Kcp);
 *  - plain: neither: the kernel's TCP packets cross the peer link as plain packets (checked: unlisted).
 * Links: the clean veth, and the userspace relay (bench/relay.ts) in A between the UDP underlay
 * endpoints with 20 ms one-way delay and 5% or 20% loss each way.
 *
 * Metrics: bulk throughput A→B (one stream, SECONDS); 64-byte request/response p50/p99;
 * connect-to-first-byte of the first flow (QUIC's includes its connection handshake) and of the
 * flows after it, p50/p99; CPU seconds per GiB moved in the bulk run (both daemons).
 *
 *   node dist/bench/quic-proxy.js [--seconds 6]
 */
import { Netns, type Namespace, type NsProcess } from '../test/netns/lib/netns.js';
import { startCore, type CoreNode } from '../test/netns/lib/core.js';
import { bulkTransport, fmt, measure, type Measured, serveTool, startRelay, waitRoute } from './lib/proxy-bench.js';

const args = process.argv.slice(2);
const at = args.indexOf('--seconds');
const SECONDS = at >= 0 ? Number(args[at + 1]) : 6;
const OPTS = { seconds: SECONDS, probeSeconds: 4, rrMax: 5000, cfbMax: 200 };

const UNDERLAY_B = '10.249.0.2';
const VIP_A = '10.144.175.1';
const VIP_B = '10.144.175.2';
const PORT = 7000;

const CONDITIONS: Array<{ name: string; impair: string[] | null }> = [
  { name: 'clean veth', impair: null },
  // Delay alone through the relay: what the relay itself costs, before any loss.
  { name: '0% loss, 20 ms', impair: ['--delay', '20', '--seed', '20'] },
  { name: '5% loss, 20 ms', impair: ['--loss', '0.05', '--delay', '20', '--seed', '21'] },
  { name: '20% loss, 20 ms', impair: ['--loss', '0.2', '--delay', '20', '--seed', '22'] },
];

const PATHS = {
  quic: { flags: ['--enable-quic-proxy'], listed: 'Quic' },
  kcp: { flags: ['--enable-kcp-proxy'], listed: 'Kcp' },
  plain: { flags: [], listed: null },
} as const;
type PathName = keyof typeof PATHS;

interface Row {
  cond: string;
  path: PathName;
  /** Null when a step stalled (the check says which). */
  r: Measured | null;
  check: string;
}

async function runPath(a: Namespace, b: Namespace, impair: string[] | null, path: PathName): Promise<Omit<Row, 'cond'>> {
  const common = (vip: string, host: string): string[] => ['--network-name', 'ttqp', '--network-secret', 'bench', '-i', vip,
    '--hostname', host, '--dev-name', 'ttqp0', '--log-level', 'info'];
  let relay: NsProcess | null = null;
  const nodes: CoreNode[] = [];
  try {
    if (impair) relay = await startRelay(a, '127.0.0.1:12000', `${UNDERLAY_B}:11010`, impair);
    nodes.push(await startCore(b, [...common(VIP_B, 'node-b'), '-l', 'udp://0.0.0.0:11010']));
    nodes.push(await startCore(a, [...common(VIP_A, 'node-a'), '--no-listener', ...PATHS[path].flags,
      '-p', impair ? 'udp://127.0.0.1:12000' : `udp://${UNDERLAY_B}:11010`]));
    await waitRoute(a, VIP_B);
    const r = await measure(a, VIP_B, PORT, nodes.map((n) => n.proc.child.pid!), OPTS);
    const listed = await bulkTransport(a, `${VIP_B}:${PORT}`);
    if (listed !== PATHS[path].listed) throw new Error(`${path}: A lists the bulk flow as ${listed ?? 'nothing'}`);
    return { path, r, check: listed ?? 'unlisted (plain packets)' };
  } finally {
    await Promise.all([...nodes.map((n) => n.proc.stop()), relay?.stop()]);
  }
}

function table(rows: Row[]): string {
  const head = ['link', 'path', 'bulk MB/s', 'CPU s/GiB', 'RR p50 ms', 'RR p99 ms', 'first flow conn+1st byte ms',
    'then p50 ms', 'p99 ms', 'A lists'];
  const lines = [head, head.map(() => '---')];
  for (const { cond, path, r, check } of rows) {
    if (!r) lines.push([cond, path, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', check]);
    else lines.push([cond, path, fmt(r.mbps), fmt(r.cpuPerGiB), fmt(r.rrP50, 2), fmt(r.rrP99, 2), fmt(r.firstCfb, 1), fmt(r.cfbP50, 2), fmt(r.cfbP99, 2),
      [check, r.cfbStalls ? `${r.cfbStalls} connects stalled > 5 s` : ''].filter(Boolean).join('; ')]);
  }
  return lines.map((l) => `| ${l.join(' | ')} |`).join('\n');
}

async function main(): Promise<void> {
  const net = await Netns.create('ttqp');
  try {
    const [a, b] = [await net.ns('a'), await net.ns('b')];
    await net.link(a, b, '10.249.0.1/24', `${UNDERLAY_B}/24`);
    await serveTool(b, PORT);
    const rows: Row[] = [];
    const t0 = performance.now();
    for (const cond of CONDITIONS) {
      for (const path of Object.keys(PATHS) as PathName[]) {
        const row: Row = await runPath(a, b, cond.impair, path).then((x) => ({ cond: cond.name, ...x }),
          (e: Error) => ({ cond: cond.name, path, r: null, check: `stalled: ${e.message.split('\n')[0]}` }));
        process.stderr.write(`${cond.name} / ${path}: ${row.r ? `${fmt(row.r.mbps)} MB/s` : row.check} (${fmt((performance.now() - t0) / 1000, 0)} s)\n`);
        rows.push(row);
      }
    }
    console.log(table(rows));
  } finally {
    await net.destroy();
  }
}

await main();
