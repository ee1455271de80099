/**
 * Fake TCP against UDP, clean and impaired, in network namespaces ("bfk-*"):
 *
 *   c ──veth 10.132.0.0/24 (clean)────────────────────────── s
 *   c ──packet-relay TUN pair 10.131.0.0/24 (loss, delay)─── s     (bench/packet-relay.ts)
 *
 * Cells: tstier-kcptun and kcptun 20210922 pairs, each over UDP and over --tcp; and two easytier-core
 * nodes over udp:// and faketcp:// carrying a KCP-proxied flow. For each: one bulk stream client →
 * server for --seconds (bench/lib/flow-tool.ts, counted at the sink), and CPU seconds per GiB of both
 * tunnel processes (from /proc). Prints a table.
 *
 *   node dist/bench/faketcp-compare.js [--seconds 6] [--loss 0.05] [--delay 20]
 */
import { fileURLToPath } from 'node:url';
import { Netns, type Namespace, type NsProcess } from '../test/netns/lib/netns.js';
import { startCore } from '../test/netns/lib/core.js';
import { TSTIER_KCPTUN } from '../test/interop/harness.js';
import { benchArgs } from './lib/args.js';
import { cpuSeconds } from './lib/proc-stat.js';

const { opt } = benchArgs('faketcp-compare', 'node dist/bench/faketcp-compare.js [--seconds 6] [--loss 0.05] [--delay 20]',
  ['seconds', 'loss', 'delay']);
const SECONDS = Number(opt('seconds', '6'));
const LOSS = opt('loss', '0.05');
const DELAY = opt('delay', '20');
const FLOW_TOOL = fileURLToPath(new URL('./lib/flow-tool.js', import.meta.url));
const RELAY = fileURLToPath(new URL('./packet-relay.js', import.meta.url));

interface Path {
  name: string;
  server: string;
}
interface Cell {
  path: string;
  what: string;
  mbps: number;
  cpuPerGiB: number;
}

async function bulk(c: Namespace, host: string, port: number, pids: number[]): Promise<{ mbps: number; cpuPerGiB: number }> {
  const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  const r = await c.node(FLOW_TOOL, ['bulk', host, String(port), String(SECONDS)])
    .waitForEvent<{ bytes: number; secs: number; mbps: number }>('bulk', (SECONDS + 60) * 1000);
  const cpu = pids.reduce((s, p) => s + cpuSeconds(p), 0) - cpu0;
  return { mbps: r.mbps, cpuPerGiB: cpu / (r.bytes / 2 ** 30) };
}

/** Waits until a process's output (stdout lines or stderr) matches. */
async function waitOutput(p: NsProcess, re: RegExp): Promise<void> {
  for (let i = 0; i < 100 && !re.test(p.stderr) && !p.lines.some((l) => re.test(l)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function kcptunCell(c: Namespace, s: Namespace, path: Path, impl: 'tstier' | 'kcptun', tcp: boolean, n: number): Promise<Cell> {
  const port = 4000 + n;
  const common = ['--key', 'bench', '--crypt', 'aes', '--quiet', ...(tcp ? ['--tcp'] : [])];
  const server = impl === 'kcptun'
    ? s.spawn(['kcptun-server', '-l', `${path.server}:${port}`, '-t', '127.0.0.1:7000', ...common])
    : s.spawn([process.execPath, TSTIER_KCPTUN, 'server', '-l', `${path.server}:${port}`, '-t', '127.0.0.1:7000', ...common]);
  await waitOutput(server, /listening on/);
  const local = 6000 + n;
  const client = impl === 'kcptun'
    ? c.spawn(['kcptun-client', '-l', `127.0.0.1:${local}`, '-r', `${path.server}:${port}`, ...common])
    : c.spawn([process.execPath, TSTIER_KCPTUN, 'client', '-l', `127.0.0.1:${local}`, '-r', `${path.server}:${port}`, ...common]);
  await waitOutput(client, /listening on|key derivation done/);
  const r = await bulk(c, '127.0.0.1', local, [client.child.pid!, server.child.pid!]);
  await client.stop(3000);
  await server.stop(3000);
  return { path: path.name, what: `${impl === 'kcptun' ? 'kcptun 20210922' : 'tstier-kcptun'} ${tcp ? '--tcp' : 'udp'}`, ...r };
}

async function nodeCell(c: Namespace, s: Namespace, path: Path, scheme: 'udp' | 'faketcp', n: number): Promise<Cell> {
  const common = (ip: string, host: string): string[] => ['--network-name', 'bfk', '--network-secret', 'bfk', '-i', ip,
    '--hostname', host, '--dev-name', 'bfktun', '--enable-kcp-proxy', '--log-level', 'info'];
  const port = 11100 + n;
  const ns = await startCore(s, [...common('10.144.132.2', 'bfk-s'), '-l', `${scheme}://${path.server}:${port}`]);
  const nc = await startCore(c, [...common('10.144.132.1', 'bfk-c'), '--no-listener', '-p', `${scheme}://${path.server}:${port}`]);
  for (let i = 0; i < 100; i++) {
    const r = await c.exec(['ping', '-c', '1', '-W', '1', '10.144.132.2'], { allowFailure: true });
    if (r.code === 0) break;
  }
  const r = await bulk(c, '10.144.132.2', 7000, [nc.proc.child.pid!, ns.proc.child.pid!]);
  await nc.proc.stop(3000);
  await ns.proc.stop(3000);
  return { path: path.name, what: `easytier-core ${scheme}:// (KCP proxy)`, ...r };
}

const net = await Netns.create('bfk');
try {
  const [c, s] = [await net.ns('c'), await net.ns('s')];
  await net.link(c, s, '10.132.0.1/24', '10.132.0.2/24');
  const relay = c.spawn([process.execPath, RELAY, '--peer-ns', s.name, '--a', '10.131.0.1/24', '--b', '10.131.0.2/24',
    '--loss', LOSS, '--delay', DELAY, '--seed', '7']);
  await relay.waitForLine(/ready/);
  await s.node(FLOW_TOOL, ['serve', '0.0.0.0', '7000']).waitForEvent('listening');
  const paths: Path[] = [
    { name: 'clean veth', server: '10.132.0.2' },
    { name: `packet relay ${Number(LOSS) * 100}% loss each way, ${DELAY} ms`, server: '10.131.0.2' },
  ];
  const cells: Cell[] = [];
  let n = 0;
  for (const path of paths) {
    for (const impl of ['tstier', 'kcptun'] as const) {
      for (const tcp of [false, true]) cells.push(await kcptunCell(c, s, path, impl, tcp, n++));
    }
    for (const scheme of ['udp', 'faketcp'] as const) cells.push(await nodeCell(c, s, path, scheme, n++));
  }
  console.log(`\none bulk stream client -> server, ${SECONDS} s per cell; CPU of both tunnel processes\n`);
  console.log('| path | carrier | MB/s | CPU s/GiB |');
  console.log('|---|---|---:|---:|');
  for (const x of cells) console.log(`| ${x.path} | ${x.what} | ${x.mbps.toFixed(2)} | ${x.cpuPerGiB.toFixed(1)} |`);
} finally {
  await net.destroy();
}
