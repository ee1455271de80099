/**
 * Throughput (iperf3, one TCP stream) and ping RTT through a pair of easytier-core nodes, against
 * the same over the bare veth between their namespaces. Bench only; needs root, iperf3, a built
 * tree. Run: node dist/bench/node-throughput.js [seconds] [rounds]
 *
 * On a busy machine throughput mostly says how much CPU the nodes were given, so each round also
 * reports what the transfer cost: CPU seconds (user + system, from /proc) each node spent per GB
 * delivered, the sender (seals) and the receiver (opens) apart. Rounds give best-of-N.
 * BENCH_CPU_PROF=<dir> writes a V8 CPU profile of every node process into <dir>;
 * TSTIER_PEER_ADDON=off measures the nodes on their node:crypto/dgram fallback.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Netns, type Namespace, type NsProcess } from '../test/netns/lib/netns.js';

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 1);
const CORE = fileURLToPath(new URL('../../bin/easytier-core', import.meta.url));
const profDir = process.env.BENCH_CPU_PROF;

interface Result {
  bps: number;
  rtt: number;
  /** CPU seconds per GB received, for the sending and the receiving node. */
  txCpu?: number;
  rxCpu?: number;
}

async function iperf(client: Namespace, server: Namespace, ip: string): Promise<number> {
  const srv = server.spawn(['iperf3', '-s', '-1', '--forceflush', '-B', ip]);
  // iperf3 prints its banner on stdout once listening.
  await srv.waitForLine(/Server listening/);
  const r = await client.exec(['iperf3', '-J', '-c', ip, '-t', String(seconds)], { timeoutMs: (seconds + 20) * 1000 });
  await srv.exited;
  return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
}

async function pingRtt(client: Namespace, ip: string): Promise<number> {
  const r = await client.exec(['ping', '-q', '-c', '50', '-i', '0.02', ip]);
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  if (!m) throw new Error(`no RTT in: ${r.stdout}`);
  return Number(m[1]);
}

/** user + system CPU seconds of a process so far (the node is exec'd in place by ip netns exec and sh). */
function cpuSeconds(p: NsProcess): number {
  const stat = readFileSync(`/proc/${p.child.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
}

function best(results: Result[]): Result {
  const min = (f: (r: Result) => number | undefined): number | undefined => {
    const v = results.map(f).filter((x): x is number => x !== undefined);
    return v.length ? Math.min(...v) : undefined;
  };
  return { bps: Math.max(...results.map((r) => r.bps)), rtt: min((r) => r.rtt)!, txCpu: min((r) => r.txCpu),
    rxCpu: min((r) => r.rxCpu) };
}

async function nodePair(a: Namespace, b: Namespace, scheme: string): Promise<Result> {
  const node = (ns: Namespace, ip: string, rest: string): NsProcess => {
    const prof = profDir ? `--cpu-prof --cpu-prof-dir=${profDir} ` : '';
    return ns.spawn(['sh', '-c', `exec ${process.execPath} ${prof}${CORE} --network-name bench --network-secret b`
      + ` -i ${ip} --dev-name tt5tun ${rest} 2>&1`]);
  };
  const nb = node(b, '10.144.0.2', `-l ${scheme}://0.0.0.0:11010`);
  const na = node(a, '10.144.0.1', `--no-listener -p ${scheme}://10.252.0.2:11010`);
  try {
    await nb.waitForLine(/peer up/);
    await na.waitForLine(/peer up/);
    const [a0, b0] = [cpuSeconds(na), cpuSeconds(nb)];
    const bps = await iperf(a, b, '10.144.0.2');
    const gb = (bps * seconds) / 8e9;
    const [txCpu, rxCpu] = [(cpuSeconds(na) - a0) / gb, (cpuSeconds(nb) - b0) / gb];
    return { bps, rtt: await pingRtt(a, '10.144.0.2'), txCpu, rxCpu };
  } finally {
    await Promise.all([na.stop(), nb.stop()]);
  }
}

async function main(): Promise<void> {
  const net = await Netns.create('tt5-bench');
  try {
    const a = await net.ns('a');
    const b = await net.ns('b');
    await net.link(a, b, '10.252.0.1/24', '10.252.0.2/24');
    const runs = new Map<string, Result[]>([['bare veth', []], ['node pair (udp)', []], ['node pair (tcp)', []]]);
    for (let round = 0; round < rounds; round++) {
      runs.get('bare veth')!.push({ bps: await iperf(a, b, '10.252.0.2'), rtt: await pingRtt(a, '10.252.0.2') });
      for (const scheme of ['udp', 'tcp']) runs.get(`node pair (${scheme})`)!.push(await nodePair(a, b, scheme));
    }
    const bare = best(runs.get('bare veth')!);
    console.log(`best of ${rounds} x ${seconds} s; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    console.log('path               Mbit/s   ratio   RTT ms   ratio   tx CPU s/GB   rx CPU s/GB');
    for (const [name, rs] of runs) {
      const r = best(rs);
      const cpu = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(1)).padStart(13);
      console.log(`${name.padEnd(18)} ${(r.bps / 1e6).toFixed(0).padStart(7)} ${(r.bps / bare.bps).toFixed(3).padStart(7)}`
        + ` ${r.rtt.toFixed(3).padStart(8)} ${(r.rtt / bare.rtt).toFixed(1).padStart(7)} ${cpu(r.txCpu)} ${cpu(r.rxCpu)}`);
    }
  } finally {
    await net.destroy();
  }
}

await main();
