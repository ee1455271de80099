/**
 * The KCP proxy under its tuning flags (`--kcp-mode`, windows, MTU), and the QUIC proxy beside it,
 * in network namespaces. Bench only (needs root, a built tree); prints a markdown table for
 * docs/tuning.md.
 *
 * Two namespaces A and B joined by a veth; from A to a TCP server on B's virtual address, through an
 * easytier-core pair with the same tuning flags on both nodes (the receive window that matters for
 * A→B bulk is B's). Each setting on a clean veth and through the userspace relay (bench/relay.ts) at
 * two impairments. Metrics as in proxy-compare: bulk MB/s, 64-byte request/response p50/p99,
 * connect-to-first-byte p50, CPU seconds per GiB; the bulk flow's transport is checked in A's table.
 *
 * With --fec: instead, the kcptun front (Debian's kcptun-client to kcptun-server, fast3, windows
 * 1024, mtu 1200, --crypt aes, --nocomp, as proxy-compare runs it) through the same impaired links,
 * with FEC 10/3 and without, since the proxy's carrier has no FEC and this is where FEC lives.
 *
 *   node dist/bench/kcp-tuning.js [--seconds 5] [--fec]
 */
import { Netns, type Namespace, type NsProcess } from '../test/netns/lib/netns.js';
import { startCore, type CoreNode } from '../test/netns/lib/core.js';
import { bulkTransport, fmt, measure, type Measured, serveTool, startRelay, waitRoute } from './lib/proxy-bench.js';

const args = process.argv.slice(2);
const SECONDS = Number(args[args.indexOf('--seconds') + 1] ?? 5) || 5;
const UNDERLAY_B = '10.254.1.2';
const VIP_A = '10.144.170.1';
const VIP_B = '10.144.170.2';
const PORT = 7000;

const SETTINGS: Array<{ name: string; flags: string[]; transport: 'Kcp' | 'Quic' }> = [
  { name: 'default (fast3, wnd 1024, mtu 1200)', flags: ['--enable-kcp-proxy'], transport: 'Kcp' },
  { name: '--kcp-mode fast2', flags: ['--enable-kcp-proxy', '--kcp-mode', 'fast2'], transport: 'Kcp' },
  { name: '--kcp-mode normal', flags: ['--enable-kcp-proxy', '--kcp-mode', 'normal'], transport: 'Kcp' },
  { name: 'wnd 256', flags: ['--enable-kcp-proxy', '--kcp-sndwnd', '256', '--kcp-rcvwnd', '256'], transport: 'Kcp' },
  { name: 'wnd 4096', flags: ['--enable-kcp-proxy', '--kcp-sndwnd', '4096', '--kcp-rcvwnd', '4096'], transport: 'Kcp' },
  { name: 'mtu 1400', flags: ['--enable-kcp-proxy', '--kcp-mtu', '1400'], transport: 'Kcp' },
  { name: 'QUIC (--enable-quic-proxy)', flags: ['--enable-quic-proxy'], transport: 'Quic' },
];

const CONDITIONS: Array<{ name: string; impair: string[] | null }> = [
  { name: 'clean veth', impair: null },
  { name: '1% loss, 40 ms one-way', impair: ['--loss', '0.01', '--delay', '40', '--seed', '5'] },
  { name: '5% loss, 20 ms one-way', impair: ['--loss', '0.05', '--delay', '20', '--seed', '11'] },
];

async function run(a: Namespace, b: Namespace, impair: string[] | null, flags: string[], want: string): Promise<Measured> {
  const common = (vip: string, host: string): string[] => ['--network-name', 'th9kt', '--network-secret', 'bench', '-i', vip,
    '--hostname', host, '--dev-name', 'th9kt0', '--log-level', 'info', ...flags];
  const relay: NsProcess | null = impair ? await startRelay(a, '127.0.0.1:12000', `${UNDERLAY_B}:11010`, impair) : null;
  const nodes: CoreNode[] = [];
  try {
    nodes.push(await startCore(b, [...common(VIP_B, 'node-b'), '-l', 'udp://0.0.0.0:11010']));
    nodes.push(await startCore(a, [...common(VIP_A, 'node-a'), '--no-listener', '-p', impair ? 'udp://127.0.0.1:12000' : `udp://${UNDERLAY_B}:11010`]));
    await waitRoute(a, VIP_B);
    const r = await measure(a, VIP_B, PORT, nodes.map((n) => n.proc.child.pid!), { seconds: SECONDS, probeSeconds: 2, rrMax: 2000, cfbMax: 100 });
    const got = await bulkTransport(a, `${VIP_B}:${PORT}`);
    if (got !== want) throw new Error(`A lists the bulk flow as ${got ?? 'nothing'}, not ${want}`);
    return r;
  } finally {
    await Promise.all([...nodes.map((n) => n.proc.stop()), relay?.stop()]);
  }
}

const KCPTUN = ['--key', 'bench', '--crypt', 'aes', '--mode', 'fast3', '--nocomp', '--mtu', '1200', '--sndwnd', '1024',
  '--rcvwnd', '1024', '--quiet'];

async function runKcptun(a: Namespace, b: Namespace, impair: string[] | null, fec: string[]): Promise<Measured> {
  const relay: NsProcess | null = impair ? await startRelay(a, '127.0.0.1:12001', `${UNDERLAY_B}:29900`, impair) : null;
  const flags = [...KCPTUN, ...fec].join(' ');
  const server = b.spawn(['sh', '-c', `exec kcptun-server -l ${UNDERLAY_B}:29900 -t 127.0.0.1:${PORT} ${flags} 2>&1`]);
  const client = a.spawn(['sh', '-c', `exec kcptun-client -l 127.0.0.1:7100 -r ${impair ? '127.0.0.1:12001' : `${UNDERLAY_B}:29900`} ${flags} 2>&1`]);
  try {
    await server.waitForLine(/key derivation done/);
    await client.waitForLine(/key derivation done/);
    return await measure(a, '127.0.0.1', 7100, [client.child.pid!, server.child.pid!], { seconds: SECONDS, probeSeconds: 2, rrMax: 2000, cfbMax: 100 });
  } finally {
    await Promise.all([client.stop(), server.stop(), relay?.stop()]);
  }
}

const row = (link: string, what: string, r: Measured | Error): string => (r instanceof Error ? `| ${link} | ${what} | failed: ${r.message} | | | |`
  : `| ${link} | ${what} | ${fmt(r.mbps)} | ${fmt(r.rrP50, 2)} / ${fmt(r.rrP99, 2)} | ${fmt(r.cfbP50, 2)} | ${fmt(r.cpuPerGiB)} |`);

async function main(): Promise<void> {
  const net = await Netns.create('th9kt');
  try {
    const [a, b] = [await net.ns('a'), await net.ns('b')];
    await net.link(a, b, '10.254.1.1/24', `${UNDERLAY_B}/24`);
    await serveTool(b, PORT);
    const lines = ['| link | setting | bulk MB/s | rr p50 / p99 ms | cfb p50 ms | CPU s/GiB |', '|---|---|---|---|---|---|'];
    for (const cond of CONDITIONS) {
      const runs: Array<[string, () => Promise<Measured>]> = args.includes('--fec')
        ? [['kcptun, no FEC', () => runKcptun(a, b, cond.impair, ['--ds', '0', '--ps', '0'])],
          ['kcptun, FEC 10/3', () => runKcptun(a, b, cond.impair, ['--ds', '10', '--ps', '3'])]]
        : SETTINGS.map((s) => [s.name, () => run(a, b, cond.impair, s.flags, s.transport)]);
      for (const [name, go] of runs) {
        const line = row(cond.name, name, await go().catch((e: Error) => e));
        process.stderr.write(`${line}\n`);
        lines.push(line);
      }
    }
    console.log(lines.join('\n'));
  } finally {
    await net.destroy();
  }
}

await main();
