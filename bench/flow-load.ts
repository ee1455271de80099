/**
 * A thousand flows at once through each TCP path of the daemon, in one run: the KCP proxy, the QUIC
 * proxy and plain forwarded packets. Bench only (needs root and a built tree); prints a markdown table.
 *
 * Two namespaces A and B joined by a clean veth, an easytier-core in each (restarted per path, A with
 * --enable-kcp-proxy --proxy-redirect false (`kcp`: kernel NAT termination), --enable-quic-proxy or
 * neither; `kcp-redirect` is the KCP proxy with the default redirect, its flows terminated outside A's TUN). From A, `--flows` concurrent connections each
 * send `--bytes` to a sink in B, which answers with the sha256 of what it got; every flow is checked
 * (test/netns/fixtures/many-flows.ts). Paths run interleaved, `--reps` rounds.
 *
 * Figures per path: wall time of the whole load (first connect to last digest), aggregate MB/s, CPU
 * seconds per GiB of the two daemons (utime+stime; then A's and B's shares), each daemon's peak RSS (VmHWM), how A's proxy
 * table listed the flows (polled more often than a closed row lingers), the flows that failed, and the
 * underlay's packets each way per MiB carried (from the veth's counters: what each datagram costs,
 * sealing, a syscall share, the far side's receive, is paid this many times), and the datagrams each
 * namespace's UDP sockets dropped for a full receive buffer (RcvbufErrors: the host's own drops, which
 * a carrier cannot tell from path loss unless told).
 *
 * A second table per path says where the wall time went: each flow's connect and completion (its digest)
 * as percentiles from the load's start, so a straggler tail reads apart from a uniformly slow load; and,
 * for the carriers, the retransmissions A's proxy table listed (the last count seen per flow), in all
 * and for the slowest tenth of the flows against the rest; and the packets A's TUN dropped because its
 * daemon fell behind reading it, with the TCP retransmission timeouts in A's namespace: each such drop
 * costs the application's own TCP a recovery, and a run of them an RTO that backs off (a flow stalled).
 *
 * `--cpu-prof DIR` runs both daemons under `node --cpu-prof`, writing one .cpuprofile per daemon into DIR
 * and printing each one's top functions by self time after the path's row.
 *
 * `--node-flags FLAGS`: extra Node flags for both daemons, space-separated (e.g. `--trace-gc`, a heap
 * size, or `--import FILE` to preload a sampler: docs/benchmarks.md, "Memory at 1,000 flows").
 *
 * The daemons inherit the environment: `TSTIER_TUN_OFFLOAD=off` runs them without TUN offloads (the A/B
 * of docs/kcp-proxy-measured.md, "TUN offloads").
 *
 *   node dist/bench/flow-load.js [--flows 1000] [--bytes 1048576] [--reps 1] [--paths kcp,quic,plain,kcp-redirect] [--cpu-prof DIR] [--netns PREFIX] [--node-flags FLAGS]
 */
import { fileURLToPath } from 'node:url';
import { Netns, type Namespace, type NsProcess } from '../test/netns/lib/netns.js';
import { startCore, watchCarriers, type CoreNode } from '../test/netns/lib/core.js';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { benchArgs } from './lib/args.js';
import { cpuSeconds, peakRssKiB } from './lib/proc-stat.js';
import { topSelfTime } from './lib/cpu-profile.js';
import { fmt, waitRoute } from './lib/proxy-bench.js';

const { opt, words } = benchArgs('flow-load',
  'node dist/bench/flow-load.js [--flows 1000] [--bytes 1048576] [--reps 1] [--paths kcp,quic,plain,kcp-redirect] [--cpu-prof DIR] [--netns PREFIX] [--node-flags FLAGS]',
  ['flows', 'bytes', 'reps', 'paths', 'cpu-prof', 'netns', 'node-flags']);
/** The namespaces' prefix: Netns.create deletes every namespace with it, so two runs need two. */
const PREFIX = opt('netns', 'tf4b');
const FLOWS = Number(opt('flows', '1000'));
const BYTES = Number(opt('bytes', String(1 << 20)));
const REPS = Number(opt('reps', '1'));
const PROF_DIR = opt('cpu-prof', '');
/** The profiler writes its file when the daemon exits normally (it does on SIGTERM). */
const nodeArgs = [...(PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] : []), ...words('node-flags')];

const TOOL = fileURLToPath(new URL('../test/netns/fixtures/many-flows.js', import.meta.url));
/** A socket per flow on each side, with room to spare (a shell's default of 1024 would not do). */
const NOFILE = '--nofile=16384:16384';
const UNDERLAY_B = '10.254.4.2';
const VIP_A = '10.144.170.1';
const VIP_B = '10.144.170.2';
const PORT = 7100;
/**
 * A flow without progress this long is failed by the load tool. Progress is its bytes leaving and the
 * answer arriving, and the answer comes only once the sink has had every byte: under --proxy-redirect
 * a flow's 1 MiB leaves into loopback socket buffers in its first second, so the tool's 60 s default
 * failed every flow of a load longer than a minute that was still moving.
 */
const STALL_SECS = 300;

const PATHS = {
  kcp: ['--enable-kcp-proxy', '--proxy-redirect', 'false'],
  quic: ['--enable-quic-proxy'],
  plain: [],
  'kcp-redirect': ['--enable-kcp-proxy', '--proxy-redirect'],
} as const;
type PathName = keyof typeof PATHS;
const chosen = opt('paths', 'kcp,quic,plain').split(',') as PathName[];
for (const p of chosen) if (!(p in PATHS)) throw new Error(`--paths: unknown path ${p} (${Object.keys(PATHS).join(', ')})`);

interface Row {
  path: PathName;
  secs: number;
  ok: number;
  cpuPerGiB: number;
  /** Each daemon's share of cpuPerGiB. */
  cpuA: number;
  cpuB: number;
  rssA: number;
  rssB: number;
  listed: string;
  /** Underlay packets A→B and B→A per MiB of load. */
  pktsAB: number;
  pktsBA: number;
  /** UDP datagrams dropped on a full socket receive buffer in A and in B. */
  dropsA: number;
  dropsB: number;
  /** Per flow, ms from the load's start: connect and digest (completion). */
  connectMs: number[];
  doneMs: number[];
  /** Retransmissions A's proxy table listed, in all and per flow in the slowest tenth and in the rest. */
  resends: number;
  resendsSlow: number;
  resendsRest: number;
  /** Packets A's TUN dropped, and the TCP retransmission timeouts in A's namespace (the applications' TCP). */
  tunDropsA: number;
  tcpTimeoutsA: number;
}

/** One flow as the load tool reports it: local port, ms to connect, ms to digest (-1: never). */
type FlowTimes = [number, number, number];

/** The p-quantile (0..1) of ascending `xs`, NaN when empty. */
function quantile(xs: number[], p: number): number {
  return xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]! : NaN;
}

/**
 * Each flow's retransmission count as A's table last listed it (rows are "transport|retransmits"),
 * in all, and per flow among the slowest tenth of the flows and among the rest.
 */
function resendsByPace(flows: FlowTimes[], listed: Map<string, string>): { all: number; slow: number; rest: number } {
  const byPort = new Map<number, number>();
  let all = 0;
  for (const [src, row] of listed) {
    const n = Number(row.split('|')[1] ?? 0);
    all += n;
    byPort.set(Number(src.slice(src.lastIndexOf(':') + 1)), n);
  }
  const done = flows.filter((f) => f[2] >= 0).sort((x, y) => y[2] - x[2]);
  const tenth = Math.max(1, Math.floor(done.length / 10));
  const mean = (fs: FlowTimes[]): number => fs.reduce((sum, f) => sum + (byPort.get(f[0]) ?? 0), 0) / fs.length;
  return { all, slow: mean(done.slice(0, tenth)), rest: mean(done.slice(tenth)) };
}

/** Packets the namespace's end of the veth has sent. */
async function txPackets(ns: Namespace, ifname: string): Promise<number> {
  return Number((await ns.exec(['cat', `/sys/class/net/${ifname}/statistics/tx_packets`])).stdout.trim());
}

/** The namespace's UDP receive-buffer overflows so far (/proc/net/snmp, per namespace). */
async function rcvbufErrors(ns: Namespace): Promise<number> {
  const lines = (await ns.exec(['cat', '/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const [names, values] = lines.map((l) => l.trim().split(/\s+/));
  return Number(values?.[names?.indexOf('RcvbufErrors') ?? -1] ?? NaN);
}

/** Packets the namespace's TUN could not hand to its daemon (tx_dropped: the daemon fell behind reading it). */
async function tunDrops(ns: Namespace): Promise<number> {
  return Number((await ns.exec(['cat', `/sys/class/net/${PREFIX}0/statistics/tx_dropped`])).stdout.trim());
}

/** The namespace's TCP retransmission timeouts so far (/proc/net/netstat TcpExt TCPTimeouts). */
async function tcpTimeouts(ns: Namespace): Promise<number> {
  const lines = (await ns.exec(['cat', '/proc/net/netstat'])).stdout.split('\n').filter((l) => l.startsWith('TcpExt:'));
  const [names, values] = lines.map((l) => l.trim().split(/\s+/));
  return Number(values?.[names?.indexOf('TCPTimeouts') ?? -1] ?? NaN);
}

function tool(ns: Namespace, argv: string[]): NsProcess {
  return ns.spawn(['prlimit', NOFILE, process.execPath, TOOL, ...argv]);
}

async function runPath(a: Namespace, b: Namespace, veth: string, path: PathName): Promise<Row> {
  const common = (vip: string, host: string): string[] => ['--network-name', PREFIX, '--network-secret', 'bench', '-i', vip,
    '--hostname', host, '--dev-name', `${PREFIX}0`, '--log-level', 'info'];
  const nodes: CoreNode[] = [];
  try {
    nodes.push(await startCore(b, [...common(VIP_B, 'node-b'), '-l', 'udp://0.0.0.0:11010'], {}, nodeArgs));
    nodes.push(await startCore(a, [...common(VIP_A, 'node-a'), '--no-listener', ...PATHS[path], '-p', `udp://${UNDERLAY_B}:11010`], {}, nodeArgs));
    const pids = nodes.map((n) => n.proc.child.pid!);
    for (const pid of pids) await a.exec(['prlimit', `--pid=${pid}`, NOFILE]);
    await waitRoute(a, VIP_B);
    const watch = watchCarriers(a, `${VIP_B}:${PORT}`, 2_000, (r) => `${r.transport_type}|${r.retransmits ?? 0}`);
    const cpu0 = pids.map(cpuSeconds);
    const tx0 = [await txPackets(a, veth), await txPackets(b, veth)];
    const drops0 = [await rcvbufErrors(a), await rcvbufErrors(b)];
    const tun0 = await tunDrops(a);
    const rto0 = await tcpTimeouts(a);
    const done = await tool(a, ['load', VIP_B, String(PORT), String(FLOWS), String(BYTES), '7000', String(STALL_SECS)])
      .waitForEvent<{ ok: number; secs: number; flows: FlowTimes[]; errors: string[] }>('done', 30 * 60_000).finally(() => watch.stop());
    if (done.ok < FLOWS) {
      console.log(`${path}: ${FLOWS - done.ok} flows failed, the first: ${done.errors.join('; ')}`);
      // What A's daemon warned of meanwhile (its log is kept in memory), to tell why.
      for (const line of nodes[1]!.proc.lines.filter((l) => /WARN|ERROR/.test(l)).slice(-20)) console.log(`  A: ${line}`);
    }
    const cpus = pids.map((pid, i) => cpuSeconds(pid) - cpu0[i]!);
    const gib = (FLOWS * BYTES) / 2 ** 30;
    const mib = (FLOWS * BYTES) / 2 ** 20;
    const pktsAB = ((await txPackets(a, veth)) - tx0[0]!) / mib;
    const pktsBA = ((await txPackets(b, veth)) - tx0[1]!) / mib;
    const dropsA = (await rcvbufErrors(a)) - drops0[0]!;
    const dropsB = (await rcvbufErrors(b)) - drops0[1]!;
    const tunDropsA = (await tunDrops(a)) - tun0;
    const tcpTimeoutsA = (await tcpTimeouts(a)) - rto0;
    const listed = await watch.stop();
    const kinds = new Map<string, number>();
    for (const row of listed.values()) {
      const kind = row.split('|')[0]!;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    const resends = resendsByPace(done.flows, listed);
    const ascending = (i: 1 | 2): number[] => done.flows.map((f) => f[i]).filter((t) => t >= 0).sort((x, y) => x - y);
    return {
      path,
      secs: done.secs,
      ok: done.ok,
      cpuPerGiB: (cpus[0]! + cpus[1]!) / gib,
      cpuA: cpus[1]! / gib,
      cpuB: cpus[0]! / gib,
      rssA: peakRssKiB(pids[1]!) / 1024,
      rssB: peakRssKiB(pids[0]!) / 1024,
      listed: kinds.size ? [...kinds].map(([k, n]) => `${n} ${k}`).join(', ') : 'none (plain packets)',
      pktsAB,
      pktsBA,
      dropsA,
      dropsB,
      connectMs: ascending(1),
      doneMs: ascending(2),
      resends: resends.all,
      resendsSlow: resends.slow,
      resendsRest: resends.rest,
      tunDropsA,
      tcpTimeoutsA,
    };
  } finally {
    await Promise.all(nodes.map((n) => n.proc.stop()));
    if (PROF_DIR) printProfiles(path, nodes.map((n) => n.proc.child.pid!));
  }
}

/** Each daemon's top functions by self time, from the .cpuprofile its pid wrote into PROF_DIR. */
function printProfiles(path: PathName, pids: number[]): void {
  for (const [i, pid] of pids.entries()) {
    const file = readdirSync(PROF_DIR).find((f) => f.includes(`.${pid}.`) && f.endsWith('.cpuprofile'));
    if (!file) continue;
    console.log(`\n${path}, node ${i === 0 ? 'B' : 'A'} (${join(PROF_DIR, file)}):`);
    for (const t of topSelfTime(join(PROF_DIR, file), 25)) console.log(`  ${fmt(t.share * 100, 1).padStart(5)}%  ${fmt(t.ms, 0).padStart(6)} ms  ${t.where}`);
  }
}

function table(rows: Row[]): string {
  const head = ['path', 'wall s', 'MB/s', 'CPU s/GiB', 'A / B', 'peak RSS A MiB', 'peak RSS B MiB', 'flows ok', 'A listed',
    'packets/MiB A→B', 'B→A', 'socket drops A / B'];
  const lines = [head, head.map(() => '---')];
  for (const r of rows) {
    lines.push([r.path, fmt(r.secs), fmt((FLOWS * BYTES) / 1e6 / r.secs), fmt(r.cpuPerGiB), `${fmt(r.cpuA)} / ${fmt(r.cpuB)}`, fmt(r.rssA, 0), fmt(r.rssB, 0),
      `${r.ok}/${FLOWS}`, r.listed, fmt(r.pktsAB, 0), fmt(r.pktsBA, 0), `${r.dropsA} / ${r.dropsB}`]);
  }
  return lines.map((l) => `| ${l.join(' | ')} |`).join('\n');
}

/** Where the wall time went: connect and completion percentiles (s from the load's start), and A's resends. */
function paceTable(rows: Row[]): string {
  const pct = (xs: number[]): string => [0.5, 0.9, 0.99, 1].map((p) => fmt(quantile(xs, p) / 1000, 2)).join(' / ');
  const head = ['path', 'connect s p50 / p90 / p99 / max', 'done s p50 / p90 / p99 / max', 'A resends', 'per flow: slowest tenth / rest',
    'A TUN drops', 'A TCP timeouts'];
  const lines = [head, head.map(() => '---')];
  for (const r of rows) {
    const carried = r.path !== 'plain';
    lines.push([r.path, pct(r.connectMs), pct(r.doneMs), carried ? String(r.resends) : '-',
      carried ? `${fmt(r.resendsSlow)} / ${fmt(r.resendsRest)}` : '-', String(r.tunDropsA), String(r.tcpTimeoutsA)]);
  }
  return lines.map((l) => `| ${l.join(' | ')} |`).join('\n');
}

async function main(): Promise<void> {
  const net = await Netns.create(PREFIX);
  try {
    const [a, b] = [await net.ns('a'), await net.ns('b')];
    const veth = await net.link(a, b, '10.254.4.1/24', `${UNDERLAY_B}/24`);
    await tool(b, ['sink', '0.0.0.0', String(PORT)]).waitForLine(/listening/);
    const rows: Row[] = [];
    for (let rep = 0; rep < REPS; rep++) for (const path of chosen) rows.push(await runPath(a, b, veth, path));
    console.log(`\n${FLOWS} concurrent flows x ${BYTES} B, clean veth, ${REPS} round(s), paths interleaved:\n`);
    console.log(table(rows));
    console.log(`\n${paceTable(rows)}`);
    const median = (p: PathName): number => {
      const s = rows.filter((r) => r.path === p).map((r) => r.secs).sort((x, y) => x - y);
      return s[Math.floor(s.length / 2)] ?? NaN;
    };
    if (chosen.includes('plain')) {
      console.log('');
      for (const p of chosen) if (p !== 'plain') console.log(`${p} wall time / plain: ${fmt(median(p) / median('plain'), 2)}`);
    }
  } finally {
    await net.destroy();
  }
}

await main();
