/**
 * The KCP proxy against its alternatives, in network namespaces, in one run. Bench only (needs root,
 * kcptun, a built tree); prints a markdown table.
 *
 * Two namespaces A and B joined by a veth. From A to a TCP server in B, four paths:
 *  - proxy:  easytier-core pair, A --enable-kcp-proxy; the flow crosses as a KCP stream (checked: A's
 *            proxy table lists the bulk flow as Kcp);
 *  - plain:  the same daemons, restarted with A lacking --enable-kcp-proxy; the kernel's TCP packets
 *            cross the peer link as plain forwarded packets (checked: A's proxy table lacks the flow);
 *  - kcptun: Debian's kcptun-client in A, kcptun-server in B: fast3 (nodelay 1, interval 10, resend 2,
 *            nc 1), mtu 1200 and windows 1024/1024 like the proxy's KCP, --nocomp, --crypt aes (the
 *            peer link is AES-256-GCM), --ds 0 --ps 0 (the proxy has no FEC);
 *  - bare:   TCP over the veth itself.
 * Each on a clean veth and on a lossy path: the userspace relay (bench/relay.ts) in A between the
 * UDP underlay endpoints, 5% loss each way and 20 ms one-way delay. The kernel has no netem, and the
 * relay only carries UDP, so bare TCP has no lossy row.
 *
 * Metrics: bulk throughput A→B (one stream, SECONDS, as the sink counted it); 64-byte request/response
 * p50/p99; connect-to-first-byte (connect, send one byte, first byte back) p50/p99; CPU seconds per GiB
 * moved in the bulk run (utime+stime of the two daemons, or of kcptun's two processes).
 *
 *   node dist/bench/proxy-compare.js [--seconds 6] [--profile DIR]
 * --profile DIR: after the table, one more clean-link proxy bulk run with both daemons under
 * `node --cpu-prof`, profiles written to DIR, and the top self-time functions printed.
 */
import { resolve } from 'node:path';
import { Netns, type Namespace, type NsProcess } from '../test/netns/lib/netns.js';
import { CORE, startCore, type CoreNode } from '../test/netns/lib/core.js';
import { topSelfTime } from './lib/cpu-profile.js';
import { benchArgs } from './lib/args.js';
import { bulkTransport, fmt, measure as measureAt, type Measured, serveTool, startRelay, tool, waitRoute } from './lib/proxy-bench.js';

const { opt } = benchArgs('proxy-compare', 'node dist/bench/proxy-compare.js [--seconds 6] [--profile DIR]',
  ['seconds', 'profile']);
const SECONDS = Number(opt('seconds', '6'));
const PROBE_SECONDS = 4;
const RR_MAX = 5000;
const CFB_MAX = 200;
const PROFILE_DIR = opt('profile', '');

const UNDERLAY_A = '10.254.0.1';
const UNDERLAY_B = '10.254.0.2';
const VIP_A = '10.144.160.1';
const VIP_B = '10.144.160.2';
const TARGET_PORT = 7000;
const KCPTUN_FLAGS = ['--key', 'bench', '--crypt', 'aes', '--mode', 'fast3', '--nocomp', '--ds', '0', '--ps', '0',
  '--mtu', '1200', '--sndwnd', '1024', '--rcvwnd', '1024', '--quiet'];

interface Condition {
  name: string;
  /** Relay flags, or null for the clean veth. */
  impair: string[] | null;
}
const CONDITIONS: Condition[] = [
  { name: 'clean veth', impair: null },
  { name: 'lossy (relay: 5% loss each way, 20 ms one-way)', impair: ['--loss', '0.05', '--delay', '20', '--seed', '11'] },
];

type PathName = 'proxy' | 'plain' | 'kcptun' | 'bare';

interface Result extends Measured {
  /** What we checked about the path, e.g. how A lists the bulk flow; empty when nothing to check. */
  check: string;
}

interface Env {
  a: Namespace;
  b: Namespace;
}

const measure = (a: Namespace, host: string, port: number, pids: number[]): Promise<Measured> =>
  measureAt(a, host, port, pids, { seconds: SECONDS, probeSeconds: PROBE_SECONDS, rrMax: RR_MAX, cfbMax: CFB_MAX });

/** Starts the relay in A towards B's `port`, or returns null on a clean link. */
function relay(env: Env, cond: Condition, listenPort: number, targetPort: number): Promise<NsProcess> | null {
  return cond.impair ? startRelay(env.a, `127.0.0.1:${listenPort}`, `${UNDERLAY_B}:${targetPort}`, cond.impair) : null;
}

/**
 * startCore, or with a profile directory the same daemon under `node --cpu-prof` (a flag Node does
 * not accept in NODE_OPTIONS, so it has to be on the command line).
 */
async function startNode(ns: Namespace, args: string[], profileDir: string, name: string): Promise<CoreNode> {
  if (!profileDir) return startCore(ns, args);
  const argv = [process.execPath, '--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`, CORE, ...args];
  const proc = ns.spawn(['sh', '-c', `exec ${argv.map((a) => `'${a}'`).join(' ')} 2>&1`]);
  const m = await proc.waitForLine(/node ready peer_id=(\d+)/);
  return { proc, peerId: Number(m[1]) };
}

/** Starts B, then A (with or without the KCP proxy), and waits until A routes to B. */
async function startPair(env: Env, cond: Condition, kcpProxy: boolean, profileDir = ''): Promise<CoreNode[]> {
  const common = (vip: string, host: string): string[] => ['--network-name', 'ttpc', '--network-secret', 'bench', '-i', vip,
    '--hostname', host, '--dev-name', 'ttpc0', '--log-level', 'info'];
  const nodes: CoreNode[] = [];
  nodes.push(await startNode(env.b, [...common(VIP_B, 'node-b'), '-l', 'udp://0.0.0.0:11010'], profileDir, 'node-b'));
  const peer = cond.impair ? 'udp://127.0.0.1:12000' : `udp://${UNDERLAY_B}:11010`;
  nodes.push(await startNode(env.a, [...common(VIP_A, 'node-a'), '--no-listener', ...(kcpProxy ? ['--enable-kcp-proxy'] : []),
    '-p', peer], profileDir, 'node-a'));
  await waitRoute(env.a, VIP_B);
  return nodes;
}

async function runPath(env: Env, cond: Condition, path: PathName): Promise<Result | null> {
  if (path === 'bare') {
    if (cond.impair) return null;
    return { ...(await measure(env.a, UNDERLAY_B, TARGET_PORT, [])), check: '' };
  }
  if (path === 'kcptun') {
    const r = await relay(env, cond, 12001, 29900);
    const server = env.b.spawn(['sh', '-c', `exec kcptun-server -l ${UNDERLAY_B}:29900 -t 127.0.0.1:${TARGET_PORT} ${KCPTUN_FLAGS.join(' ')} 2>&1`]);
    const remote = cond.impair ? '127.0.0.1:12001' : `${UNDERLAY_B}:29900`;
    const client = env.a.spawn(['sh', '-c', `exec kcptun-client -l 127.0.0.1:7100 -r ${remote} ${KCPTUN_FLAGS.join(' ')} 2>&1`]);
    try {
      await server.waitForLine(/key derivation done/);
      await client.waitForLine(/key derivation done/);
      return { ...(await measure(env.a, '127.0.0.1', 7100, [client.child.pid!, server.child.pid!])), check: '' };
    } finally {
      await Promise.all([client.stop(), server.stop(), r?.stop()]);
    }
  }
  const r = await relay(env, cond, 12000, 11010);
  const nodes = await startPair(env, cond, path === 'proxy');
  try {
    const result = await measure(env.a, VIP_B, TARGET_PORT, nodes.map((n) => n.proc.child.pid!));
    const transport = await bulkTransport(env.a, `${VIP_B}:${TARGET_PORT}`);
    if (path === 'proxy' && transport !== 'Kcp') throw new Error(`proxy path: A lists the bulk flow as ${transport ?? 'nothing'}, not Kcp`);
    if (path === 'plain' && transport !== null) throw new Error(`plain path: A proxied the bulk flow (${transport})`);
    return { ...result, check: `A's proxy table: bulk flow ${transport ?? 'not listed (plain packets)'}` };
  } finally {
    await Promise.all([...nodes.map((n) => n.proc.stop()), r?.stop()]);
  }
}

const ratio = (x: number | undefined, y: number | undefined, digits = 2): string =>
  x !== undefined && y !== undefined && Number.isFinite(x / y) ? (x / y).toFixed(digits) : 'n/a';

function table(rows: Array<{ cond: string; path: string; r: Result | null }>): string {
  const head = ['link', 'path', 'bulk MB/s', 'CPU s/GiB', 'RR p50 ms', 'RR p99 ms', 'conn+1st byte p50 ms', 'p99 ms', 'check'];
  const lines = [head, head.map(() => '---')];
  for (const { cond, path, r } of rows) {
    lines.push(r
      ? [cond, path, fmt(r.mbps), fmt(r.cpuPerGiB), fmt(r.rrP50, 2), fmt(r.rrP99, 2), fmt(r.cfbP50, 2), fmt(r.cfbP99, 2),
        [r.check, r.cfbStalls ? `${r.cfbStalls} connects stalled > 5 s` : ''].filter(Boolean).join('; ')]
      : [cond, path, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'no netem; the relay is UDP-only']);
  }
  const byCond = new Map<string, Partial<Record<string, Result | null>>>();
  for (const { cond, path, r } of rows) byCond.set(cond, { ...byCond.get(cond), [path]: r });
  for (const [cond, m] of byCond) {
    for (const other of ['plain', 'kcptun']) {
      const p = m.proxy ?? undefined;
      const o = m[other] ?? undefined;
      lines.push([cond, `proxy/${other}`, ratio(p?.mbps, o?.mbps), ratio(p?.cpuPerGiB, o?.cpuPerGiB), ratio(p?.rrP50, o?.rrP50),
        ratio(p?.rrP99, o?.rrP99), ratio(p?.cfbP50, o?.cfbP50), ratio(p?.cfbP99, o?.cfbP99), 'ratio']);
    }
  }
  return lines.map((l) => `| ${l.join(' | ')} |`).join('\n');
}

async function profileRun(env: Env): Promise<void> {
  const dir = resolve(PROFILE_DIR);
  const clean = CONDITIONS[0]!;
  const nodes = await startPair(env, clean, true, dir);
  try {
    await tool(env.a, 'bulk', VIP_B, TARGET_PORT, [String(SECONDS)], (SECONDS * 4 + 30) * 1000);
  } finally {
    await Promise.all(nodes.map((n) => n.proc.stop()));
  }
  for (const name of ['node-a', 'node-b']) {
    console.log(`\nTop self time, ${name} (${dir}/${name}.cpuprofile), clean-link proxy bulk:\n`);
    console.log('| self ms | share | function |\n| --- | --- | --- |');
    for (const f of topSelfTime(`${dir}/${name}.cpuprofile`)) {
      console.log(`| ${f.ms.toFixed(0)} | ${(f.share * 100).toFixed(1)}% | ${f.where.replace(/\|/g, '\\|')} |`);
    }
  }
}

async function main(): Promise<void> {
  const net = await Netns.create('ttpc');
  try {
    const env: Env = { a: await net.ns('a'), b: await net.ns('b') };
    await net.link(env.a, env.b, `${UNDERLAY_A}/24`, `${UNDERLAY_B}/24`);
    await serveTool(env.b, TARGET_PORT);
    const rows: Array<{ cond: string; path: string; r: Result | null }> = [];
    const t0 = performance.now();
    for (const cond of CONDITIONS) {
      for (const path of ['proxy', 'plain', 'kcptun', 'bare'] as const) {
        const r = await runPath(env, cond, path);
        process.stderr.write(`${cond.name} / ${path}: ${r ? `${fmt(r.mbps)} MB/s` : 'skipped'} (${fmt((performance.now() - t0) / 1000, 0)} s)\n`);
        rows.push({ cond: cond.name, path, r });
      }
    }
    console.log(table(rows));
    if (PROFILE_DIR) await profileRun(env);
  } finally {
    await net.destroy();
  }
}

await main();
