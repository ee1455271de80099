/**
 * The KCP proxy's two source-side terminations side by side, in network namespaces (root):
 * the kernel path (NAT + re-injection into kernel listeners) against `--use-smoltcp` (the wasm
 * userspace stack). Node A (--enable-kcp-proxy) reaches node B over a veth; the application runs in
 * A's namespace, the server in B's. Per mode:
 *  - throughput of one bulk flow (N MiB up, then the same down, byte-checked by the fixture);
 *  - CPU seconds per GiB moved, of node A (where the modes differ) and of A + B;
 *  - memory per idle flow: node A's RSS growth with F flows open and idle, divided by F
 *    (node B's shown too: it holds the dialled side, the same in both modes).
 *
 *   node dist/bench/smoltcp-vs-kernel.js [--mib 64] [--flows 10000] [--modes kernel,smoltcp]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Netns, unavailableReason, type Namespace } from '../test/netns/lib/netns.js';
import { cliJson, startCore, type CoreNode } from '../test/netns/lib/core.js';
import { benchArgs } from './lib/args.js';
import { cpuSeconds, rssKiB } from './lib/proc-stat.js';

const FLOWS = new URL('../test/netns/fixtures/proxy-flows.js', import.meta.url);
const { opt } = benchArgs('smoltcp-vs-kernel', 'node dist/bench/smoltcp-vs-kernel.js [--mib 64] [--flows 10000] [--modes kernel,smoltcp]',
  ['mib', 'flows', 'modes']);
const MIB = Number(opt('mib', '64'));
const IDLE_FLOWS = Number(opt('flows', '10000'));
const MODES = opt('modes', 'kernel,smoltcp').split(',');

interface Row {
  mode: string;
  upMiBs: number;
  downMiBs: number;
  cpuA: number;
  cpuAB: number;
  idleKiBA: number;
  idleKiBB: number;
}

const common = (ip: string, host: string): string[] =>
  ['--network-name', 'tt11bench', '--network-secret', 'bench', '-i', ip, '--hostname', host, '--dev-name', 'tt11tun',
    '--log-level', 'info'];

function pidOf(node: CoreNode): number {
  return node.proc.child.pid!;
}

async function waitRoutes(ns: Namespace): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await cliJson(ns, ['route']).catch(() => [])).length >= 1) return;
    await sleep(100);
  }
  throw new Error('no route to B');
}

/** One bulk flow; returns MiB/s and the CPU seconds the two nodes spent. */
async function bulk(a: Namespace, up: number, down: number, pids: number[]): Promise<{ rate: number; cpu: number[] }> {
  const cpu0 = pids.map(cpuSeconds);
  const t0 = performance.now();
  const done = await a.node(FLOWS, ['flows', '10.144.170.2', '7000', '1', String(up), String(down), '0', '7'])
    .waitForEvent<{ ok: number; errors: string[] }>('done', 600_000);
  const secs = (performance.now() - t0) / 1000;
  if (done.ok !== 1) throw new Error(`bulk flow failed: ${done.errors.join('; ')}`);
  return { rate: (up + down) / 2 ** 20 / secs, cpu: pids.map((p, i) => cpuSeconds(p) - cpu0[i]!) };
}

async function measure(mode: string): Promise<Row> {
  const net = await Netns.create('tt11-bench');
  try {
    const [a, b] = [await net.ns('a'), await net.ns('b')];
    await net.link(a, b, '10.254.1.1/24', '10.254.1.2/24');
    const nb = await startCore(b, [...common('10.144.170.2', 'bench-b'), '-l', 'udp://0.0.0.0:11010']);
    const na = await startCore(a, [...common('10.144.170.1', 'bench-a'), '--no-listener', '--enable-kcp-proxy',
      '-p', 'udp://10.254.1.2:11010', ...(mode === 'smoltcp' ? ['--use-smoltcp'] : ['--proxy-redirect', 'false'])]);
    await b.node(FLOWS, ['serve', '0.0.0.0', '7000']).waitForEvent('listening');
    await waitRoutes(a);
    const pids = [pidOf(na), pidOf(nb)];
    const bytes = MIB * 2 ** 20;
    await bulk(a, 4 << 20, 4 << 20, pids); // warm-up: JIT, KCP windows
    const upRun = await bulk(a, bytes, 0, pids);
    const downRun = await bulk(a, 0, bytes, pids);
    const gib = (2 * bytes) / 2 ** 30;
    const cpuA = (upRun.cpu[0]! + downRun.cpu[0]!) / gib;
    const cpuAB = (upRun.cpu[0]! + upRun.cpu[1]! + downRun.cpu[0]! + downRun.cpu[1]!) / gib;

    await sleep(2000); // let the bulk flows' state linger out
    const rss0 = pids.map(rssKiB);
    const holder = a.node(FLOWS, ['hold', '10.144.170.2', '7000', String(IDLE_FLOWS), '500']);
    await holder.waitForEvent('open', 120_000).catch(async (e: Error) => {
      const rows = await cliJson<{ state: string }>(a, ['proxy']).catch(() => []);
      const states = new Map<string, number>();
      for (const r of rows) states.set(r.state, (states.get(r.state) ?? 0) + 1);
      throw new Error(`${e.message}\nholder: ${holder.lines.slice(-5).join('\n')}\nA rows by state: ${JSON.stringify([...states])}`);
    });
    await sleep(3000);
    const rss1 = pids.map(rssKiB);
    holder.send('close');
    await holder.waitForEvent('closed', 600_000);
    return {
      mode, upMiBs: upRun.rate, downMiBs: downRun.rate, cpuA, cpuAB,
      idleKiBA: (rss1[0]! - rss0[0]!) / IDLE_FLOWS, idleKiBB: (rss1[1]! - rss0[1]!) / IDLE_FLOWS,
    };
  } finally {
    await net.destroy();
  }
}

async function main(): Promise<void> {
  const why = unavailableReason();
  if (why) {
    console.error(`smoltcp-vs-kernel: ${why}`);
    process.exitCode = 1;
    return;
  }
  const rows: Row[] = [];
  for (const mode of MODES) {
    console.error(`measuring ${mode} ...`);
    rows.push(await measure(mode));
  }
  const f = (n: number, d = 1): string => n.toFixed(d);
  console.log(`bulk ${MIB} MiB each way; ${IDLE_FLOWS} idle flows\n`);
  console.log('| mode | up MiB/s | down MiB/s | CPU s/GiB node A | CPU s/GiB A+B | idle KiB/flow node A | idle KiB/flow node B |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.mode} | ${f(r.upMiBs)} | ${f(r.downMiBs)} | ${f(r.cpuA, 2)} | ${f(r.cpuAB, 2)} | ${f(r.idleKiBA)} | ${f(r.idleKiBB)} |`);
  }
}

await main();
