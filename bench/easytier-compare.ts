/**
 * tstier against the real EasyTier 2.6.4 (the easytier-pyo3 wheel in build/venv, see
 * test/interop/easytier/setup.sh), in one run, on the same links. Bench only (needs root, the venv
 * and a built tree); prints markdown tables.
 *
 * Namespaces A and B ("ttec-*", no default route), joined twice: a veth (the clean link) and the
 * packet-level impairment relay (bench/packet-relay.ts), restarted for each cell of an impaired condition, with
 * the veth down meanwhile (EasyTier dials every address a peer listens on, and would bypass the relay):
 *  - clean veth;
 *  - 1 %, 5 % and 20 % random loss each way, 20 ms one-way;
 *  - a 100 Mbit/s bottleneck each way (drop-tail queue of 50 ms) with 10 % loss and 20 ms one-way.
 * For each condition and mode, a tstier pair (easytier-core, TUN in each namespace) and an EasyTier
 * pair (test/interop/easytier/node.py, TUN in each namespace), one after the other; B listens on
 * udp://, A dials it; A carries flows from A to a TCP server in B in one of three modes, checked:
 *  - plain: no proxy; the kernel's TCP packets cross as forwarded IP packets (tstier's proxy table
 *    lacks the flow; EasyTier counted no TcpProxyConnect);
 *  - kcp:   A --enable-kcp-proxy (tstier lists the bulk flow as Kcp; EasyTier's TcpProxyConnect
 *           metric says protocol=KCP);
 *  - quic:  A --enable-quic-proxy (Quic; protocol=QUIC).
 * Mixed pairs too, tstier (on EasyTier's wire) with EasyTier: "tstier→EasyTier" has the tstier node in
 * A, the flows' source, and EasyTier in B; "EasyTier→tstier" the other way round. Each is checked
 * by its source's account (tstier's table, or EasyTier's metric).
 *
 * Figures, per cell: 64-byte request/response p50/p99 on one connection with nothing else queued
 * (after a warm-up, at least PROBE seconds and RR_COUNT round trips, see --rr-count), with the CPU per
 * round trip of each node and A's underlay UDP datagrams per round trip; one bulk stream A→B for SECONDS, goodput as the sink counted the bytes; CPU seconds
 * per GiB of both node processes over the bulk run (utime+stime from /proc, every thread); retransmitted
 * carrier segments/packets (tstier's proxy table; EasyTier exposes no such counter); apart from them the
 * spurious ones (KCP segments B received twice, B's proxy table; tstier pair only); the UDP datagrams
 * each namespace dropped on a full socket receive buffer (RcvbufErrors: a resend after one is needed,
 * not spurious); and the inner TCP's RetransSegs in A (from A's /proc/net/snmp) during the bulk run. On the rate-capped link also RR
 * p50/p99 while a second bulk stream runs (is the bottleneck queue kept short?).
 *
 *   node dist/bench/easytier-compare.js [--quick] [--seconds 6] [--probe 4] [--rr-count 1000] [--rr-cap 90] [--rr-warm 5]
 *     [--only TEXT] [--mode plain|kcp|quic[,...]] [--pair P[,P]] [--rr-only]
 * --quick: clean and 5 % only (with --pair also 20 %), 3 s bulk, 2 s probes of at least 200 round trips: a smoke run.
 * --probe: the least seconds of RR samples (4). --rr-count: the least RR samples (1,000), so a p99 is the
 *   10th largest, not the largest: on a lossy link the probe runs on past --probe until it has them, for
 *   at most --rr-cap seconds (90). At 20 % loss a round trip that meets a loss costs a resend timeout, so
 *   4 s held only ~20 samples and p99 was one timeout; 1,000 take ~45 s at 1-5 % and the cap at 20 %.
 *   With the warm-up that makes a full run about 65 min (20 with --rr-count 100), the clean link ~2 min of it.
 * --rr-warm: seconds of round trips on the probe's connection before samples count (5), for both
 *   implementations alike. A freshly started tstier node runs its per-packet code unoptimised for its
 *   first few thousand round trips: on the clean link at load 8-10, after 1-2 s of warm-up a KCP round
 *   trip still cost each node 460-660 µs of CPU (p50 0.8-0.9 ms), after 4-15 s 78-112 µs (p50 0.19-0.24).
 *   EasyTier (native code) needs none: 46-76 µs from the start.
 * --only TEXT: only the conditions whose name contains TEXT (e.g. "20%"), to repeat one.
 * --mode: only that mode, or a comma-separated list (e.g. plain,kcp).
 * --pair: only that pair: tstier, EasyTier, tstier→EasyTier or EasyTier→tstier; "mixed", both mixed pairs; or a
 *   comma-separated list (e.g. tstier,EasyTier).
 * --rr-only: only the RR probes, no bulk run (goodput, CPU and retransmissions read n/a): a quick,
 *   repeatable look at latency (e.g. `--only clean --rr-only`).
 * --repeat N: each cell N times, the pairs interleaved (tstier, EasyTier, tstier, ...); the goodput and CPU
 *   ratios use each cell's median-goodput run, the RR ratios each cell's median p50 and median p99 (with
 *   --rr-only there is no goodput to rank runs by). At 20 % loss one run ranks the pairs by chance (BBR's policer detector,
 *   docs/forwarding-latency.md): give it 8 or more there.
 * --netns PREFIX: the namespaces' prefix (default ttec), so two runs on one machine keep apart.
 * --cpu-prof DIR: the tstier nodes run under `node --cpu-prof`, one .cpuprofile per node and cell in DIR
 *   (bench/lib/cpu-profile.ts ranks one by self time).
 * --node-flags FLAGS: extra Node flags for the tstier nodes, space-separated (e.g. `--trace-gc`, a heap size).
 */
import { loadavg } from 'node:os';
import { readFileSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Netns, type Namespace, type NsProcess } from '../test/netns/lib/netns.js';
import { CORE, cliJson } from '../test/netns/lib/core.js';
import { etConfig, startEasyTier, easytierUnavailable, type EasyTierNode } from '../test/netns/lib/easytier.js';
import { benchArgs } from './lib/args.js';
import { cpuSeconds } from './lib/proc-stat.js';
import { fmt, serveTool, tool, waitRoute } from './lib/proxy-bench.js';

const { opt, flag, words } = benchArgs('easytier-compare',
  'node dist/bench/easytier-compare.js [--quick] [--seconds 6] [--probe 4] [--rr-count 1000] [--rr-cap 90] [--rr-warm 5] ' +
  '[--only TEXT] [--mode plain|kcp|quic[,...]] [--pair P[,P]] [--rr-only] [--repeat N] [--netns PREFIX] [--cpu-prof DIR] [--node-flags FLAGS] (the file\'s header explains each)',
  ['seconds', 'probe', 'rr-count', 'rr-cap', 'rr-warm', 'only', 'mode', 'pair', 'repeat', 'netns', 'cpu-prof', 'node-flags'], ['quick', 'rr-only']);
const QUICK = flag('quick');
const RR_ONLY = flag('rr-only');
const SECONDS = Number(opt('seconds', QUICK ? '3' : '6'));
const PROBE = Number(opt('probe', QUICK ? '2' : '4'));
const RR_COUNT = Number(opt('rr-count', QUICK ? '200' : '1000'));
const RR_CAP = Number(opt('rr-cap', QUICK ? '20' : '90'));
const RR_WARM = Number(opt('rr-warm', '5'));
const RR_MAX = 20_000;
const REPEAT = Number(opt('repeat', '1'));
const RELAY = fileURLToPath(new URL('./packet-relay.js', import.meta.url));
const TOOL = new URL('./lib/flow-tool.js', import.meta.url);

const VETH = ['10.132.0.1', '10.132.0.2'] as const;
const RELAYED = ['10.131.0.1', '10.131.0.2'] as const;
const VIP_A = '10.144.181.1';
const VIP_B = '10.144.181.2';
const PORT = 7000;
const NET = { name: 'ttec', secret: 'bench' };

interface Condition {
  name: string;
  /** packet-relay flags, or null for the clean veth. */
  relay: string[] | null;
  /** Also measure RR while a bulk stream fills the link. */
  loaded: boolean;
  /** The relay's round trip (twice its one-way delay), ms; 0 on the veth. */
  rttMs: number;
}
const ALL_CONDITIONS: Condition[] = [
  { name: 'clean veth', relay: null, loaded: false, rttMs: 0 },
  { name: '1% loss, 20 ms', relay: ['--loss', '0.01', '--delay', '20', '--seed', '31'], loaded: false, rttMs: 40 },
  { name: '5% loss, 20 ms', relay: ['--loss', '0.05', '--delay', '20', '--seed', '32'], loaded: false, rttMs: 40 },
  { name: '20% loss, 20 ms', relay: ['--loss', '0.2', '--delay', '20', '--seed', '33'], loaded: false, rttMs: 40 },
  { name: '100 Mbit/s, 10% loss, 20 ms', relay: ['--rate', '100', '--queue-ms', '50', '--loss', '0.1', '--delay', '20', '--seed', '34'], loaded: true, rttMs: 40 },
];
const ONLY = opt('only', '');
/** A --pair run is short enough to take the heavy-loss condition too, where a pair's sender is most likely to stall. */
const QUICK_NAMES = opt('pair', '') ? ['clean', '5%', '20%'] : ['clean', '5%'];
const CONDITIONS = ALL_CONDITIONS.filter((c) => (QUICK ? QUICK_NAMES.some((n) => c.name.startsWith(n)) : true) && c.name.includes(ONLY));
if (CONDITIONS.length === 0) {
  process.stderr.write(`easytier-compare: --only ${ONLY} matches no condition (${ALL_CONDITIONS.map((c) => c.name).join('; ')})\n`);
  process.exit(2);
}

type Mode = 'plain' | 'kcp' | 'quic';
const ALL_MODES: Mode[] = ['plain', 'kcp', 'quic'];
const MODE = opt('mode', '');
const MODES = ALL_MODES.filter((m) => !MODE || MODE.split(',').includes(m));
if (MODES.length === 0 || MODE.split(',').some((m) => m && !ALL_MODES.includes(m as Mode))) {
  process.stderr.write(`easytier-compare: --mode ${MODE} is none of ${ALL_MODES.join(', ')}\n`);
  process.exit(2);
}
/** Mixed pairs, source (A) first: tstier speaks EasyTier's wire there. */
type Mixed = 'tstier→EasyTier' | 'EasyTier→tstier';
type Impl = 'tstier' | 'EasyTier' | Mixed;
const PAIR = opt('pair', '');
const IMPLS = (['tstier', 'EasyTier', 'tstier→EasyTier', 'EasyTier→tstier'] as Impl[])
  .filter((p) => !PAIR || PAIR.split(',').includes(p) || (PAIR === 'mixed' && p.includes('→')));
if (IMPLS.length === 0) {
  process.stderr.write(`easytier-compare: --pair ${PAIR} is none of tstier, EasyTier, tstier→EasyTier, EasyTier→tstier, mixed\n`);
  process.exit(2);
}
if (!Number.isInteger(REPEAT) || REPEAT < 1 || REPEAT > 50) {
  process.stderr.write(`easytier-compare: --repeat ${opt('repeat', '')} is not a whole number from 1 to 50\n`);
  process.exit(2);
}
/** How each implementation names the transport that carried a flow (null: not proxied); a mixed pair, as its source does. */
const LISTED: Record<Mode, { tstier: string | null; EasyTier: string | null }> = {
  plain: { tstier: null, EasyTier: null },
  kcp: { tstier: 'Kcp', EasyTier: 'KCP' },
  quic: { tstier: 'Quic', EasyTier: 'QUIC' },
};

interface Figures {
  mbps: number;
  cpuPerGiB: number;
  rrP50: number;
  rrP99: number;
  /** RR samples, each node's CPU per round trip over them (µs; A, B), and A's underlay datagrams per round trip. */
  rrCount: number;
  rrCpuUs: number[];
  rrDatagrams: number;
  loadedP50: number;
  loadedP99: number;
  /** Retransmitted KCP segments / QUIC packets of the proxied flows to B, or NaN where not exposed. */
  carrierRetrans: number;
  /** KCP segments B received twice (spurious resends: B had them already), counted apart from the resends, or NaN. */
  spurious: number;
  /** UDP datagrams each node's namespace dropped on a full socket receive buffer during the bulk run (A, B). */
  socketDrops: number[];
  /** RetransSegs of A's kernel TCP during the bulk run. */
  tcpRetrans: number;
}

interface Row {
  cond: string;
  impl: Impl;
  mode: Mode;
  f: Figures | null;
  check: string;
}

/** A running pair: the pids whose CPU we count, how to read what carried the flows, and how to stop. */
interface Pair {
  pids: number[];
  /** The transport A lists for flows to B (null: not proxied), the carrier retransmissions, and how many B got twice. */
  carried(): Promise<Carried>;
  stop(): Promise<unknown>;
  /** Log lines of the nodes that say a peer went down or something failed (tstier only), for the progress output. */
  trouble(): string[];
}

/** The pid must be the node itself (not a shell or `ip` around it), or its CPU would read as zero. */
function nodePid(proc: NsProcess, comm: RegExp): number {
  const pid = proc.child.pid!;
  const name = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  if (!comm.test(name)) throw new Error(`pid ${pid} is ${name}, not the node`);
  return pid;
}

/**
 * startCore, but with a start-up allowance for a loaded machine, and a core that never says it is
 * ready is stopped (startCore does not hand it back), so the next cell finds the ports and TUN name free.
 */
const PROF_DIR = opt('cpu-prof', '');
const NODE_FLAGS = words('node-flags');
async function startTs(ns: Namespace, argv: string[]): Promise<NsProcess> {
  const prof = PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] : [];
  const proc = ns.spawn(['sh', '-c', `exec ${[process.execPath, ...NODE_FLAGS, ...prof, CORE, ...argv].map((x) => `'${x}'`).join(' ')} 2>&1`]);
  try {
    await proc.waitForLine(/node ready peer_id=\d+/, 60_000);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return proc;
}

async function startTstier(a: Namespace, b: Namespace, mode: Mode, server: string): Promise<Pair> {
  const common = (vip: string, host: string): string[] => ['--network-name', NET.name, '--network-secret', NET.secret,
    '-i', vip, '--hostname', host, '--dev-name', 'tsc0', '--log-level', 'info'];
  const flags = { plain: [], kcp: ['--enable-kcp-proxy'], quic: ['--enable-quic-proxy'] }[mode];
  const nb = await startTs(b, [...common(VIP_B, 'ts-b'), '-l', 'udp://0.0.0.0:11010']);
  const na = await startTs(a, [...common(VIP_A, 'ts-a'), '--no-listener', ...flags, '-p', `udp://${server}:11010`])
    .catch(async (e: Error) => {
      await nb.stop();
      throw e;
    });
  const pair: Pair = {
    pids: [nodePid(na, /node/), nodePid(nb, /node/)],
    carried: () => tstierCarried(a, b),
    stop: () => Promise.all([na.stop(), nb.stop()]),
    trouble: () => [...na.lines.map((l) => `A: ${l}`), ...nb.lines.map((l) => `B: ${l}`)].filter((l) => /peer down|WARN|ERROR/i.test(l)),
  };
  await waitRoute(a, VIP_B).catch(async (e: Error) => {
    await pair.stop();
    throw e;
  });
  return pair;
}

interface Carried {
  listed: string | null;
  retrans: number;
  spurious: number;
}

type ProxyRow = { dst: string; transport_type: string; tx_bytes: number; retransmits: number; duplicates: number };

/** How tstier's node in A carried the flows to B (its proxy table), and, when B is tstier too, the segments B got twice (its table). */
async function tstierCarried(a: Namespace, b?: Namespace): Promise<Carried> {
  const rows = (await cliJson<ProxyRow>(a, ['proxy'])).filter((r) => r.dst === `${VIP_B}:${PORT}`);
  const bulk = [...rows].sort((x, y) => y.tx_bytes - x.tx_bytes)[0];
  const atB = b ? (await cliJson<ProxyRow>(b, ['proxy'])).filter((r) => r.dst === `${VIP_B}:${PORT}`) : null;
  return {
    listed: bulk?.transport_type ?? null,
    retrans: rows.reduce((s, r) => s + (r.retransmits ?? 0), 0),
    spurious: atB ? atB.reduce((s, r) => s + (r.duplicates ?? 0), 0) : NaN,
  };
}

/** How EasyTier's node in A carried the flows to B (its TcpProxyConnect metric). */
async function easyTierCarried(ea: EasyTierNode): Promise<Carried> {
  const connects = (await ea.metrics()).filter((m) => m['name'] === 'TcpProxyConnect').map(labels).filter((l) => l['dst_ip'] === VIP_B);
  const protocols = [...new Set(connects.map((l) => l['protocol']))];
  if (protocols.length > 1) throw new Error(`EasyTier carried flows to B over ${protocols.join(' and ')}`);
  // EasyTier 2.6.4 counts no KCP or QUIC retransmissions.
  return { listed: protocols[0] ?? null, retrans: NaN, spurious: NaN };
}

/** A metric's labels as a plain object. */
const labels = (m: Record<string, unknown>): Record<string, string> =>
  Object.fromEntries((m['labels'] as { labels: { key: string; value: string }[] }).labels.map((l) => [l.key, l.value]));

async function startEt(a: Namespace, b: Namespace, mode: Mode, server: string): Promise<Pair> {
  const eb = await startEasyTier(b, etConfig({ ...NET, ipv4: `${VIP_B}/24`, hostname: 'et-b', devName: 'etc0', listeners: ['udp://0.0.0.0:11010'] }));
  let ea: EasyTierNode;
  try {
    ea = await startEasyTier(a, etConfig({ ...NET, ipv4: `${VIP_A}/24`, hostname: 'et-a', devName: 'etc0', peers: [`udp://${server}:11010`],
      enableKcpProxy: mode === 'kcp', enableQuicProxy: mode === 'quic' }));
  } catch (e) {
    await eb.stop();
    throw e;
  }
  const pair: Pair = {
    pids: [nodePid(ea.proc, /python/), nodePid(eb.proc, /python/)],
    carried: () => easyTierCarried(ea),
    stop: () => Promise.all([ea.stop(), eb.stop()]),
    trouble: () => [],
  };
  await ea.waitRoutes([eb.peerId]).catch(async (e: Error) => {
    await pair.stop();
    throw e;
  });
  return pair;
}

/**
 * A mixed pair: B listens, A (the flows' source, with the mode's proxy) dials; the tstier node speaks
 * EasyTier's wire. Ready once A routes to B and, for a proxy mode, the source has B's input flag.
 */
async function startMixed(a: Namespace, b: Namespace, mode: Mode, server: string, kind: Mixed): Promise<Pair> {
  const tsSrc = kind === 'tstier→EasyTier';
  const ts = (ns: Namespace, vip: string, host: string, rest: string[]): Promise<NsProcess> => startTs(ns, ['--peer-protocol', 'easytier',
    '--network-name', NET.name, '--network-secret', NET.secret, '-i', vip, '--hostname', host, '--dev-name', 'tsc0', '--log-level', 'info', ...rest]);
  const et = (ns: Namespace, vip: string, host: string, rest: object): Promise<EasyTierNode> =>
    startEasyTier(ns, etConfig({ ...NET, ipv4: `${vip}/24`, hostname: host, devName: 'etc0', ...rest }));
  const stops: Array<() => Promise<unknown>> = [];
  const stop = (): Promise<unknown> => Promise.all(stops.map((f) => f()));
  let tsNode: NsProcess;
  let etNode: EasyTierNode;
  try {
    if (tsSrc) {
      etNode = await et(b, VIP_B, 'et-b', { listeners: ['udp://0.0.0.0:11010'] });
      stops.push(() => etNode.stop());
      tsNode = await ts(a, VIP_A, 'ts-a', ['--no-listener', ...{ plain: [], kcp: ['--enable-kcp-proxy'], quic: ['--enable-quic-proxy'] }[mode], '-p', `udp://${server}:11010`]);
    } else {
      tsNode = await ts(b, VIP_B, 'ts-b', ['-l', 'udp://0.0.0.0:11010']);
      stops.push(() => tsNode.stop());
      etNode = await et(a, VIP_A, 'et-a', { peers: [`udp://${server}:11010`], enableKcpProxy: mode === 'kcp', enableQuicProxy: mode === 'quic' });
    }
    stops.push(() => (tsSrc ? tsNode : etNode).stop());
    await waitRoute(tsSrc ? a : b, tsSrc ? VIP_B : VIP_A);
    if (!tsSrc && mode !== 'plain') await etSeesInput(etNode, 'ts-b', `${mode}_input`);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    pids: [nodePid(tsNode, /node/), nodePid(etNode.proc, /python/)],
    carried: () => (tsSrc ? tstierCarried(a) : easyTierCarried(etNode)),
    stop,
    trouble: () => tsNode.lines.filter((l) => /peer down|WARN|ERROR/i.test(l)),
  };
}

/** Waits (bounded) until EasyTier's route to `host` carries the feature flag `flag` (e.g. quic_input). */
async function etSeesInput(et: EasyTierNode, host: string, flag: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await et.routes()).find((r) => r.hostname === host)?.feature_flag?.[flag] === true) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`EasyTier never saw ${flag} from ${host}`);
}

/** Waits (bounded) until A reaches B's virtual address: a listed route is not yet a working TUN path. */
async function waitPing(a: Namespace): Promise<void> {
  for (let i = 0; i < 20; i++) {
    if ((await a.exec(['ping', '-c', '1', '-W', '1', VIP_B], { allowFailure: true })).code === 0) return;
  }
  throw new Error(`A never reached ${VIP_B}`);
}

/** A counter of /proc/net/snmp text (e.g. Tcp RetransSegs, Udp OutDatagrams). */
function snmpField(text: string, proto: 'Tcp' | 'Udp', name: string): number {
  const lines = text.split('\n').filter((l) => l.startsWith(`${proto}:`));
  const [head, values] = [lines[0]!.split(/\s+/), lines[1]!.split(/\s+/)];
  return Number(values[head.indexOf(name)]);
}
/** The counter in the namespace of process `pid`. */
const snmpOf = (pid: number, proto: 'Tcp' | 'Udp', name: string): number => snmpField(readFileSync(`/proc/${pid}/net/snmp`, 'utf8'), proto, name);
const tcpRetransSegs = async (ns: Namespace): Promise<number> => snmpField((await ns.exec(['cat', '/proc/net/snmp'])).stdout, 'Tcp', 'RetransSegs');

interface Rr {
  p50: number;
  p99: number;
  count: number;
  cpuUs: number[];
  datagrams: number;
}

/** The idle RR probe: warm-up, then samples, with each node's CPU over the samples alone. */
async function probeRr(a: Namespace, pair: Pair): Promise<Rr> {
  const timeout = (RR_WARM + RR_CAP + 60) * 1000;
  const p = a.node(TOOL, ['rr', VIP_B, String(PORT), String(PROBE), String(RR_MAX), String(RR_WARM), String(RR_COUNT), String(RR_CAP)]);
  try {
    await p.waitForLine(/^\{"event":"(warm|error)"/, timeout);
    // A's UDP datagrams both ways (the underlay's: the probe's own TCP is not UDP), so extra ACKs or
    // parity show. Read through a pid in A, at once: an `ip netns exec` took up to a second on a loaded
    // host, and missed that many round trips. A's node, not the probe, which may have exited by the
    // second read.
    const netnsOf = (pid: number): string => readlinkSync(`/proc/${pid}/ns/net`);
    const inA = pair.pids.find((pid) => netnsOf(pid) === netnsOf(p.child.pid!)) ?? p.child.pid!;
    const udp = (): number => snmpOf(inA, 'Udp', 'InDatagrams') + snmpOf(inA, 'Udp', 'OutDatagrams');
    const [cpu0, udp0] = [pair.pids.map(cpuSeconds), udp()];
    const m = await p.waitForLine(/^\{"event":"(rr|error)"/, timeout);
    const [cpu, datagrams] = [pair.pids.map((pid, i) => cpuSeconds(pid) - cpu0[i]!), udp() - udp0];
    const ev = JSON.parse(m.input!) as { event: string; message?: string; p50: number; p99: number; count: number };
    if (ev.event === 'error') throw new Error(`rr to ${VIP_B}:${PORT}: ${ev.message}`);
    return { p50: ev.p50, p99: ev.p99, count: ev.count, cpuUs: cpu.map((c) => (c / ev.count) * 1e6), datagrams: datagrams / ev.count };
  } finally {
    await p.stop();
  }
}

async function measure(a: Namespace, pair: Pair, loaded: boolean): Promise<Figures> {
  const timeout = (SECONDS * 4 + PROBE + 30) * 1000;
  const rr = await probeRr(a, pair);
  const idle = { rrP50: rr.p50, rrP99: rr.p99, rrCount: rr.count, rrCpuUs: rr.cpuUs, rrDatagrams: rr.datagrams };
  if (RR_ONLY) return { mbps: NaN, cpuPerGiB: NaN, ...idle, loadedP50: NaN, loadedP99: NaN, carrierRetrans: NaN, spurious: NaN, socketDrops: [NaN, NaN], tcpRetrans: NaN };
  // Most carrier resends on a clean link follow these drops (a datagram the receiving node never read).
  const drops = (): number[] => pair.pids.map((pid) => snmpOf(pid, 'Udp', 'RcvbufErrors'));
  const [cpu0, drops0] = [pair.pids.map(cpuSeconds), drops()];
  const tcp0 = await tcpRetransSegs(a);
  const bulk = await tool<{ bytes: number; mbps: number }>(a, 'bulk', VIP_B, PORT, [String(SECONDS)], timeout);
  const perNode = pair.pids.map((pid, i) => cpuSeconds(pid) - cpu0[i]!);
  const socketDrops = drops().map((d, i) => d - drops0[i]!);
  const cpu = perNode.reduce((sum, s) => sum + s, 0);
  // Which node is the busier one (a single-threaded node at its core's limit sets the goodput).
  process.stderr.write(`  CPU s/GiB per node (A, B): ${perNode.map((s) => fmt(s / (bulk.bytes / 2 ** 30), 1)).join(', ')}\n`);
  const tcpRetrans = (await tcpRetransSegs(a)) - tcp0;
  let under = { p50: NaN, p99: NaN };
  if (loaded) {
    // The RR probe starts once the bulk stream has had a second to fill the queue, and ends before it does.
    const load = tool(a, 'bulk', VIP_B, PORT, [String(PROBE + 2)], timeout);
    await new Promise((r) => setTimeout(r, 1000));
    under = await tool<{ p50: number; p99: number }>(a, 'rr', VIP_B, PORT, [String(PROBE), String(RR_MAX)], timeout);
    await load;
  }
  return {
    mbps: bulk.mbps, cpuPerGiB: cpu / (bulk.bytes / 2 ** 30), ...idle,
    loadedP50: under.p50, loadedP99: under.p99, carrierRetrans: NaN, spurious: NaN, socketDrops, tcpRetrans,
  };
}

async function runCell(a: Namespace, b: Namespace, cond: Condition, impl: Impl, mode: Mode): Promise<Row> {
  const server = cond.relay ? RELAYED[1] : VETH[1];
  const pair = await (impl === 'tstier' ? startTstier(a, b, mode, server) : impl === 'EasyTier' ? startEt(a, b, mode, server)
    : startMixed(a, b, mode, server, impl));
  try {
    await waitPing(a);
    const f = await measure(a, pair, cond.loaded);
    const { listed, retrans, spurious } = await pair.carried();
    // A round trip cannot beat the relay's two one-way delays: if it does, the flows went round it.
    if (cond.rttMs && f.rrP50 < cond.rttMs) throw new Error(`RR p50 ${fmt(f.rrP50, 2)} ms is below the link RTT: the flows bypassed the relay`);
    const want = LISTED[mode][impl === 'tstier→EasyTier' ? 'tstier' : impl === 'EasyTier→tstier' ? 'EasyTier' : impl];
    if (listed !== want) throw new Error(`${mode}: A carried the flows as ${listed ?? 'plain packets'}, not ${want ?? 'plain packets'}`);
    f.carrierRetrans = mode === 'plain' ? NaN : retrans;
    f.spurious = mode === 'plain' ? NaN : spurious;
    return { cond: cond.name, impl, mode, f, check: listed ?? 'plain packets' };
  } finally {
    const trouble = pair.trouble();
    if (trouble.length) process.stderr.write(`  ${trouble.length} log lines of trouble, first: ${trouble.slice(0, 3).join(' | ')}\n`);
    await pair.stop();
  }
}

async function startRelayLink(a: Namespace, b: Namespace, flags: string[]): Promise<NsProcess> {
  const relay = a.node(RELAY, ['--peer-ns', b.name, '--a', `${RELAYED[0]}/24`, '--b', `${RELAYED[1]}/24`, ...flags]);
  await relay.waitForLine(/^ready$/);
  return relay;
}

const count = (n: number): string => (Number.isFinite(n) ? String(n) : 'n/a');
const ratio = (x: number | undefined, y: number | undefined): string =>
  x !== undefined && y !== undefined && Number.isFinite(x / y) ? (x / y).toFixed(2) : 'n/a';
const md = (lines: string[][]): string => lines.map((l) => `| ${l.join(' | ')} |`).join('\n');

/** The median of one figure over a cell's repetitions (NaN figures left out; the lower middle of an even count). */
function median(cell: Row[], figure: (f: Figures) => number): number | undefined {
  const xs = cell.flatMap((r) => (r.f && !Number.isNaN(figure(r.f)) ? [figure(r.f)] : [])).sort((x, y) => x - y);
  return xs[(xs.length - 1) >> 1];
}

/** The figures of the run with the median goodput among a cell's repetitions. */
function medianRun(cell: Row[]): Figures | undefined {
  const runs = cell.flatMap((r) => (r.f ? [r.f] : [])).sort((x, y) => x.mbps - y.mbps);
  return runs[(runs.length - 1) >> 1];
}

function tables(rows: Row[]): string {
  const anyLoaded = CONDITIONS.some((c) => c.loaded);
  const head = ['link', 'pair', 'mode', 'goodput MB/s', 'CPU s/GiB (A+B)', 'RR p50 ms', 'RR p99 ms', 'RR n, CPU µs/RT A / B, datagrams/RT',
    ...(anyLoaded ? ['RR p50 / p99 ms under bulk'] : []), 'carrier resends', 'segments B got twice', 'UDP socket drops A / B', 'inner TCP retrans', 'carried as'];
  const main = [head, head.map(() => '---')];
  for (const { cond, impl, mode, f, check } of rows) {
    const loadedCell = anyLoaded ? [f && Number.isFinite(f.loadedP50) ? `${fmt(f.loadedP50, 1)} / ${fmt(f.loadedP99, 1)}` : ''] : [];
    main.push(f
      ? [cond, impl, mode, fmt(f.mbps, 2), fmt(f.cpuPerGiB), fmt(f.rrP50, 2), fmt(f.rrP99, 2), `${f.rrCount}, ${f.rrCpuUs.map((c) => fmt(c, 0)).join(' / ')}, ${fmt(f.rrDatagrams)}`, ...loadedCell, count(f.carrierRetrans), count(f.spurious), f.socketDrops.map(count).join(' / '), count(f.tcpRetrans), check]
      : [cond, impl, mode, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', ...loadedCell, 'n/a', 'n/a', 'n/a', 'n/a', check]);
  }
  const rhead = ['link', 'mode', 'goodput', 'CPU s/GiB', 'RR p50', 'RR p99'];
  const ratios = [rhead, rhead.map(() => '---')];
  for (const cond of CONDITIONS) {
    for (const mode of MODES) {
      const cell = (impl: Impl): Row[] => rows.filter((r) => r.cond === cond.name && r.impl === impl && r.mode === mode);
      const [t, e] = [medianRun(cell('tstier')), medianRun(cell('EasyTier'))];
      const rr = (fig: (f: Figures) => number): string => ratio(median(cell('tstier'), fig), median(cell('EasyTier'), fig));
      ratios.push([cond.name, mode, ratio(t?.mbps, e?.mbps), ratio(t?.cpuPerGiB, e?.cpuPerGiB), rr((f) => f.rrP50), rr((f) => f.rrP99)]);
    }
  }
  return `${md(main)}\n\nRatios tstier / EasyTier (goodput: higher is better; the rest: lower is better):\n\n${md(ratios)}`;
}

async function main(): Promise<void> {
  const skip = easytierUnavailable();
  if (skip) {
    process.stderr.write(`easytier-compare: ${skip}\n`);
    process.exit(2);
  }
  const load0 = loadavg();
  const net = await Netns.create(opt('netns', 'ttec'));
  try {
    const [a, b] = [await net.ns('a'), await net.ns('b')];
    const veth = await net.link(a, b, `${VETH[0]}/24`, `${VETH[1]}/24`);
    await serveTool(b, PORT);
    const cc = (await a.exec(['sysctl', '-n', 'net.ipv4.tcp_congestion_control'])).stdout.trim();
    const rows: Row[] = [];
    const t0 = performance.now();
    for (const cond of CONDITIONS) {
      // On an impaired condition the veth is down: EasyTier's direct connector would otherwise find
      // B's veth address among its listeners' addresses and bypass the relay.
      for (const ns of [a, b]) await ns.exec(['ip', 'link', 'set', veth, cond.relay ? 'down' : 'up']);
      for (const mode of MODES) {
        // The two implementations back to back, so both see the same load on the shared machine.
        for (const impl of Array.from({ length: REPEAT }, () => IMPLS).flat()) {
          // A fresh relay per cell: each pair meets the same seeded loss draws from its first packet.
          // With one relay per condition the first pair always met the start of the sequence and the
          // next one whatever the bulk runs left over: a fixed stroke of luck for one of them, every run.
          const relay = cond.relay ? await startRelayLink(a, b, cond.relay) : null;
          try {
            const row = await runCell(a, b, cond, impl, mode).catch((e: Error) =>
              ({ cond: cond.name, impl, mode, f: null, check: `failed: ${e.message.split('\n')[0]}` }));
            process.stderr.write(`${cond.name} / ${impl} / ${mode}: ${row.f ? `${fmt(row.f.mbps, 2)} MB/s` : row.check} ` +
              `(${fmt((performance.now() - t0) / 1000, 0)} s, load ${loadavg()[0]!.toFixed(1)})\n`);
            rows.push(row);
          } finally {
            await relay?.stop();
            if (relay) process.stderr.write(`  ${relay.stderr.trim()}\n`);
          }
        }
      }
    }
    const load1 = loadavg();
    const la = (l: number[]): string => l.map((x) => x.toFixed(1)).join(' / ');
    console.log(`tstier vs EasyTier 2.6.4 (easytier-pyo3), ${new Date().toISOString().slice(0, 16)} UTC${QUICK ? ', --quick' : ''}: ` +
      `one bulk stream of ${SECONDS} s, RR probes of ${PROBE} s and ${RR_COUNT} round trips or more (at most ${RR_CAP} s) after ${RR_WARM} s of warm-up, inner TCP ${cc}${REPEAT > 1 ? `, ${REPEAT} interleaved repetitions (goodput and CPU ratios from each cell's median-goodput run, RR ratios from its median p50 and p99)` : ''}; load average (1/5/15 min) ${la(load0)} at the start, ${la(load1)} at the end.\n`);
    console.log(tables(rows));
    console.log('\nMixed pairs: the tstier node speaks EasyTier\'s wire; the pair is named source→destination. ' +
      'EasyTier 2.6.4 exposes no KCP/QUIC retransmission counter.');
  } finally {
    await net.destroy();
  }
}

await main();
