/**
 * Why does the inner TCP go slower (or a round trip take longer) through one implementation than
 * through another? One pair (tstier or EasyTier 2.6.4) across the packet-level impairment relay, or a
 * bare veth with --clean, carrying A's flows to B as plain forwarded packets or, with --mode kcp|quic,
 * through that proxy. RR probes first, then one bulk stream A→B, watched from both ends:
 *  - `ss -ti` in A every 100 ms (cwnd, pacing and delivery rate, RTT, retransmits, BBR's model);
 *  - with --pcap DIR: tcpdump on the TUN in A and B (the inner TCP) and at the relay's two ends (the
 *    peer datagrams), all on the host's clock, for `python3 bench/pcap-delays.py DIR tstier|easytier`;
 *    and every RR sample in DIR/IMPL-MODE-rr.txt;
 *  - CPU per GiB of each node and the relay over the bulk run, the system share, and per thread;
 *  - the TUN queue length and drops in each namespace.
 *  - nstat in each namespace over the bulk run: timeouts, spurious RTOs, loss probes, SACK reordering, OFO queueing.
 * Bench only (root, tcpdump for --pcap, a built tree, the EasyTier venv for --impl easytier).
 *
 *   node dist/bench/plain-diag.js [--impl tstier|easytier] [--mode plain|kcp|quic] [--clean]
 *        [--loss 0.05] [--delay 20] [--seed 32] [--seconds 8] [--rr 3] [--pcap DIR] [--ns h7pd]
 * tstier's peer wire follows ET_PEER_PROTOCOL (tstier's own by default); BENCH_CPU_PROF=DIR profiles its nodes.
 * docs/forwarding-latency.md has what it found.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Netns, type Namespace, type NsProcess } from '../test/netns/lib/netns.js';
import { CORE } from '../test/netns/lib/core.js';
import { etConfig, startEasyTier } from '../test/netns/lib/easytier.js';
import { serveTool, tool, waitRoute } from './lib/proxy-bench.js';
import { benchArgs } from './lib/args.js';
import { cpuSeconds } from './lib/proc-stat.js';

const { opt, flag } = benchArgs('plain-diag', 'node dist/bench/plain-diag.js [--impl tstier|easytier] [--mode plain|kcp|quic] [--clean] [--loss 0.05] [--delay 20] [--seed 32] [--seconds 8] [--rr 3] [--pcap DIR] [--ns h7pd]',
  ['impl', 'mode', 'loss', 'delay', 'seconds', 'seed', 'ns', 'pcap', 'rr'], ['clean']);
const IMPL = opt('impl', 'tstier');
const SECONDS = Number(opt('seconds', '8'));
const RR = Number(opt('rr', '3'));
const PCAP = opt('pcap', '');
const RELAY = fileURLToPath(new URL('./packet-relay.js', import.meta.url));
const RELAYED = ['10.131.0.1', '10.131.0.2'] as const;
const VIP_A = '10.144.181.1';
const VIP_B = '10.144.181.2';
const PORT = 7000;
/** nstat counters that say how the inner TCP recovered from loss: by SACK, by timeout, spuriously, and what reordering it saw. */
const NSTAT = ['TcpOutSegs', 'TcpRetransSegs', 'TcpExtTCPTimeouts', 'TcpExtTCPSpuriousRTOs', 'TcpExtTCPLossProbes', 'TcpExtTCPLossProbeRecovery',
  'TcpExtTCPSACKReorder', 'TcpExtTCPSackRecovery', 'TcpExtTCPOFOQueue', 'TcpExtTCPDSACKRecv', 'TcpExtTCPDSACKOfoRecv', 'TcpExtTCPFastRetrans',
  'TcpExtTCPLostRetransmit', 'TcpExtTCPSpuriousRtxHostQueues'];
const DEV = IMPL === 'tstier' ? 'tsc0' : 'etc0';
/** plain (forwarded packets), kcp or quic (A proxies the flows). */
const MODE = opt('mode', 'plain');
/** A bare veth instead of the relay. */
const CLEAN = flag('clean');
const SERVER = CLEAN ? '10.132.0.2' : RELAYED[1];

/** Starts the pair; returns the node pids, A's then B's. */
async function startPair(a: Namespace, b: Namespace): Promise<number[]> {
  let pids: number[];
  if (IMPL === 'tstier') {
    const common = (vip: string, host: string): string[] => ['--network-name', 'ttec', '--network-secret', 'bench',
      '-i', vip, '--hostname', host, '--dev-name', DEV, '--log-level', 'info'];
    const start = async (ns: Namespace, argv: string[]): Promise<NsProcess> => {
      const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
      const p = ns.spawn(['sh', '-c', `exec ${[process.execPath, ...prof, CORE, ...argv].map((x) => `'${x}'`).join(' ')} 2>&1`]);
      await p.waitForLine(/node ready peer_id=\d+/, 60_000);
      return p;
    };
    const nb = await start(b, [...common(VIP_B, 'ts-b'), '-l', 'udp://0.0.0.0:11010']);
    const na = await start(a, [...common(VIP_A, 'ts-a'), '--no-listener', '-p', `udp://${SERVER}:11010`, ...({ plain: [], kcp: ['--enable-kcp-proxy'], quic: ['--enable-quic-proxy'] }[MODE] ?? [])]);
    pids = [na.child.pid!, nb.child.pid!];
    await waitRoute(a, VIP_B);
  } else {
    const NET = { name: 'ttec', secret: 'bench' };
    const eb = await startEasyTier(b, etConfig({ ...NET, ipv4: `${VIP_B}/24`, hostname: 'et-b', devName: DEV, listeners: ['udp://0.0.0.0:11010'] }));
    const ea = await startEasyTier(a, etConfig({ ...NET, ipv4: `${VIP_A}/24`, hostname: 'et-a', devName: DEV, peers: [`udp://${SERVER}:11010`],
      enableKcpProxy: MODE === 'kcp', enableQuicProxy: MODE === 'quic' }));
    await ea.waitRoutes([eb.peerId]);
    pids = [ea.proc.child.pid!, eb.proc.child.pid!];
  }
  for (let i = 0; i < 20; i++) if ((await a.exec(['ping', '-c', '1', '-W', '1', VIP_B], { allowFailure: true })).code === 0) return pids;
  throw new Error('no ping');
}

/** NSTAT's counters in `ns`, absolute (nstat -a), without touching nstat's history (-s). */
async function counters(ns: Namespace): Promise<Map<string, number>> {
  const out = (await ns.exec(['nstat', '-asz', ...NSTAT], { allowFailure: true })).stdout;
  const m = new Map(NSTAT.map((k) => [k, 0]));
  for (const [, k, v] of out.matchAll(/^(\w+)\s+(\d+)/gm)) m.set(k!, Number(v));
  return m;
}

async function main(): Promise<void> {
  const net = await Netns.create(opt('ns', 'h7pd'));
  try {
    const [a, b] = [await net.ns('a'), await net.ns('b')];
    let relay: NsProcess | null = null;
    if (CLEAN) {
      await net.link(a, b, '10.132.0.1/24', '10.132.0.2/24');
    } else {
      relay = a.node(RELAY, ['--peer-ns', b.name, '--a', `${RELAYED[0]}/24`, '--b', `${RELAYED[1]}/24`,
        '--loss', opt('loss', '0.05'), '--delay', opt('delay', '20'), '--seed', opt('seed', '32')]);
      await relay.waitForLine(/^ready$/);
    }
    const pids = [...await startPair(a, b), ...(relay ? [relay.child.pid!] : [])];
    await serveTool(b, PORT);
    const timeout = (SECONDS * 4 + 30) * 1000;
    if (RR > 0) {
      if (PCAP) process.env.FLOW_TOOL_RR_SAMPLES = `${PCAP}/${IMPL}-${MODE}-rr.txt`;
      const rr = await tool<{ p50: number; p90: number; p99: number; p999: number; max: number; count: number }>(a, 'rr', VIP_B, PORT, [String(RR), '20000'], timeout);
      delete process.env.FLOW_TOOL_RR_SAMPLES;
      console.log(`rr: n=${rr.count} p50=${rr.p50.toFixed(3)} p90=${rr.p90.toFixed(3)} p99=${rr.p99.toFixed(3)} p999=${rr.p999.toFixed(3)} max=${rr.max.toFixed(3)} ms`);
    }
    // The inner TCP on each TUN, and the peer datagrams where they enter and leave the relay.
    const dumps = PCAP && !CLEAN ? [
      ...[a, b].map((ns, i) => ns.spawn(['tcpdump', '-i', DEV, '-s', '96', '-U', '-w', `${PCAP}/${IMPL}-${'ab'[i]}.pcap`, 'tcp'])),
      ...[a, b].map((ns, i) => ns.spawn(['tcpdump', '-i', `pr${'AB'[i]}0`, '-s', '128', '-U', '-w', `${PCAP}/${IMPL}-r${'ab'[i]}.pcap`, 'udp'])),
    ] : [];
    if (dumps.length) await new Promise((r) => setTimeout(r, 500));
    const samples: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const r = await a.exec(['ss', '-tiH', 'dst', VIP_B], { allowFailure: true });
        samples.push(`${performance.now().toFixed(0)} ${r.stdout.replace(/\s+/g, ' ').trim()}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    })();
    const sys = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[12]) / 100;
    const threads = (pid: number): Map<string, number> => {
      const m = new Map<string, number>();
      for (const t of readdirSync(`/proc/${pid}/task`)) {
        const st = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
        const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        m.set(`${name}#${t}`, (Number(f[11]) + Number(f[12])) / 100);
      }
      return m;
    };
    // The inner TCP's loss-recovery counters in each namespace, absolute (nstat's history file is one
    // per user, not per namespace, so its deltas would mix A's and B's counters).
    const nstat0 = await Promise.all([a, b].map(counters));
    const th0 = pids.map(threads);
    const cpu0 = pids.map(cpuSeconds);
    const sys0 = pids.map(sys);
    const bulk = await tool<{ bytes: number; mbps: number }>(a, 'bulk', VIP_B, PORT, [String(SECONDS)], timeout);
    const cpu = pids.map((p, i) => cpuSeconds(p) - cpu0[i]!);
    pids.forEach((p, i) => {
      const busy = [...threads(p)].map(([k, v]) => [k.replace(/#\d+$/, ''), v - (th0[i]!.get(k) ?? 0)] as const).filter(([, v]) => v > 0.02);
      console.log(`threads of ${['A', 'B', 'relay'][i]}: ${busy.map(([k, v]) => `${k} ${v.toFixed(2)}s`).join(', ')}`);
    });
    const sysShare = pids.map((p, i) => `${(((sys(p) - sys0[i]!) / cpu[i]!) * 100).toFixed(0)}%`);
    sampling = false;
    await sampler;
    for (const d of dumps) d.kill('SIGINT');
    await Promise.all(dumps.map((d) => d.exited));
    const nstat1 = await Promise.all([a, b].map(counters));
    nstat1.forEach((now, i) => console.log(`nstat ${'AB'[i]}: ${NSTAT.map((k) => `${k.replace(/^Tcp(Ext)?/, '')} ${now.get(k)! - nstat0[i]!.get(k)!}`).join(', ')}`));
    const perGiB = (c: number): string => (c / (bulk.bytes / 2 ** 30)).toFixed(1);
    for (const ns of [a, b]) {
      const link = (await ns.exec(['ip', '-s', 'link', 'show', DEV])).stdout;
      const qlen = /qlen (\d+)/.exec(link)?.[1];
      const [rx, tx] = [...link.matchAll(/[RT]X:.*\n\s+(.*)/g)].map((m) => m[1]!.trim().split(/\s+/));
      console.log(`${ns.name} ${DEV}: qlen ${qlen}; rx packets ${rx?.[1]} dropped ${rx?.[3]}; tx packets ${tx?.[1]} dropped ${tx?.[3]}`);
    }
    console.log(`bulk: ${bulk.mbps.toFixed(2)} MB/s; CPU s/GiB node A ${perGiB(cpu[0]!)}, node B ${perGiB(cpu[1]!)}, relay ${relay ? perGiB(cpu[2]!) : '-'}; system time ${sysShare.join(' / ')}`);
    if (PCAP) writeFileSync(`${PCAP}/${IMPL}-ss.txt`, samples.join('\n') + '\n');
    if (relay) {
      relay.kill('SIGTERM');
      await relay.exited;
      console.log(relay.stderr.trim());
    }
  } finally {
    await net.destroy();
  }
}

await main();
