/**
 * tstier-kcptun vs Debian's kcptun 20210922, same settings, same run.
 *
 * For each path (loopback; the impairment relay at 10% loss each way and 20 ms one-way delay) and each
 * implementation (client + server pair of the same kind), it measures:
 *  - bulk throughput up (client → target) and down, one stream, each for a fixed time window;
 *  - CPU seconds per GiB moved (utime+stime of both tunnel processes from /proc/<pid>/stat);
 *  - 64-byte request/response latency p50/p99 on one stream;
 *  - peak RSS (VmHWM) of each process.
 * Then prints a table with ours/kcptun ratios. Bounded in time: ~BULK_SECONDS×2 + RR_SECONDS per cell.
 *
 *   node dist/bench/kcptun-compare.js [--seconds 6] [--rr-seconds 4] [--profile DIR] [-- extra kcptun flags]
 * --profile writes V8 CPU profiles of our client and server (node --cpu-prof) into DIR.
 */
import { createServer, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { freePort, REPO_ROOT, startProc, TSTIER_KCPTUN, connectWithRetry, waitReady, type Proc } from '../test/interop/harness.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : dflt;
};
const BULK_SECONDS = Number(opt('seconds', '6'));
const RR_SECONDS = Number(opt('rr-seconds', '4'));
const RR_MAX = 5000;
const PROFILE_DIR = opt('profile', '');
const dashdash = args.indexOf('--');
const EXTRA = dashdash >= 0 ? args.slice(dashdash + 1) : [];
const CLK_TCK = 100;

type Impl = 'kcptun' | 'tstier';
interface PathSpec {
  name: string;
  relay: string[] | null;
}

const PATHS: PathSpec[] = [
  { name: 'loopback', relay: null },
  { name: 'relay 10% loss, 20 ms', relay: ['--loss', '0.1', '--delay', '20', '--seed', '7'] },
];

interface Result {
  upMBps: number;
  downMBps: number;
  cpuSecPerGiB: number;
  p50: number;
  p99: number;
  rssClientMiB: number;
  rssServerMiB: number;
}

/** CPU seconds (user+system) a process has used. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * The target: the first byte picks the mode. 'U' sink (counts bytes), 'D' source (sends until the
 * peer closes), 'P' echo (64-byte request/response).
 */
class Target {
  received = 0;
  private readonly server = createServer((s) => this.handle(s));
  private readonly sockets = new Set<Socket>();
  private readonly block = randomBytes(1 << 20);

  async listen(): Promise<number> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as { port: number }).port;
  }

  private handle(s: Socket): void {
    this.sockets.add(s);
    s.setNoDelay(true);
    s.on('error', () => undefined);
    s.on('close', () => this.sockets.delete(s));
    s.once('data', (first: Buffer) => {
      const mode = String.fromCharCode(first[0]!);
      if (mode === 'U') {
        this.received += first.length - 1;
        s.on('data', (d: Buffer) => (this.received += d.length));
      } else if (mode === 'D') {
        const pump = (): void => {
          while (!s.destroyed && s.write(this.block));
        };
        s.on('drain', pump);
        pump();
      } else {
        s.write(first.subarray(1));
        s.on('data', (d: Buffer) => s.write(d));
      }
    });
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

async function bulkUp(port: number, target: Target, pids: number[]): Promise<{ mbps: number; cpu: number; bytes: number }> {
  const s = await connectWithRetry(port);
  s.on('error', () => undefined);
  s.write('U');
  const block = randomBytes(1 << 20);
  let stop = false;
  const pump = (): void => {
    while (!stop && s.write(block));
  };
  s.on('drain', pump);
  pump();
  // Let the window open before measuring.
  await new Promise((r) => setTimeout(r, 500));
  const b0 = target.received;
  const c0 = pids.map(cpuSeconds);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, BULK_SECONDS * 1000));
  const bytes = target.received - b0;
  const secs = (performance.now() - t0) / 1000;
  const cpu = pids.reduce((a, p, i) => a + cpuSeconds(p) - c0[i]!, 0);
  stop = true;
  s.destroy();
  return { mbps: bytes / secs / 1e6, cpu, bytes };
}

async function bulkDown(port: number, pids: number[]): Promise<{ mbps: number; cpu: number; bytes: number }> {
  const s = await connectWithRetry(port);
  s.on('error', () => undefined);
  let got = 0;
  s.on('data', (d: Buffer) => (got += d.length));
  s.write('D');
  await new Promise((r) => setTimeout(r, 500));
  const b0 = got;
  const c0 = pids.map(cpuSeconds);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, BULK_SECONDS * 1000));
  const bytes = got - b0;
  const secs = (performance.now() - t0) / 1000;
  const cpu = pids.reduce((a, p, i) => a + cpuSeconds(p) - c0[i]!, 0);
  s.destroy();
  return { mbps: bytes / secs / 1e6, cpu, bytes };
}

async function requestResponse(port: number): Promise<{ p50: number; p99: number }> {
  const s = await connectWithRetry(port);
  s.setNoDelay(true);
  s.on('error', () => undefined);
  const msg = randomBytes(64);
  const samples: number[] = [];
  let pending = 0;
  let resolveOne: (() => void) | null = null;
  s.on('data', (d: Buffer) => {
    pending -= d.length;
    if (pending <= 0 && resolveOne) {
      const r = resolveOne;
      resolveOne = null;
      r();
    }
  });
  s.write('P');
  const deadline = performance.now() + RR_SECONDS * 1000;
  while (performance.now() < deadline && samples.length < RR_MAX) {
    const t = performance.now();
    pending = 64;
    const answered = new Promise<void>((r) => (resolveOne = r));
    s.write(msg);
    const timedOut = await Promise.race([answered.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 5000).unref())]);
    if (timedOut) break;
    samples.push(performance.now() - t);
  }
  s.destroy();
  samples.sort((a, b) => a - b);
  const q = (p: number): number => (samples.length ? samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]! : NaN);
  return { p50: q(0.5), p99: q(0.99) };
}

function startImpl(impl: Impl, role: 'client' | 'server', a: string[], tag: string): Proc {
  if (impl === 'kcptun') return startProc(role === 'client' ? 'kcptun-client' : 'kcptun-server', a);
  const nodeArgs = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${resolve(PROFILE_DIR)}`, `--cpu-prof-name=${tag}-${role}.cpuprofile`] : [];
  return startProc(process.execPath, [...nodeArgs, TSTIER_KCPTUN, role, ...a]);
}

async function measure(impl: Impl, path: PathSpec): Promise<Result> {
  const target = new Target();
  const tport = await target.listen();
  const sport = await freePort();
  const cport = await freePort();
  const procs: Proc[] = [];
  try {
    const common = ['--key', 'bench', '--quiet', ...EXTRA];
    const server = startImpl(impl, 'server', ['-l', `127.0.0.1:${sport}`, '-t', `127.0.0.1:${tport}`, ...common], path.relay ? 'lossy' : 'loopback');
    procs.push(server);
    let dialPort = sport;
    if (path.relay) {
      const rport = await freePort();
      const relay = startProc(process.execPath, [resolve(REPO_ROOT, 'dist/bench/relay.js'), '--listen', `127.0.0.1:${rport}`, '--target', `127.0.0.1:${sport}`, ...path.relay]);
      procs.push(relay);
      await relay.waitFor('relay listening');
      dialPort = rport;
    }
    const client = startImpl(impl, 'client', ['-l', `127.0.0.1:${cport}`, '-r', `127.0.0.1:${dialPort}`, ...common], path.relay ? 'lossy' : 'loopback');
    procs.push(client);
    await waitReady(server);
    await waitReady(client);
    const pids = [client.child.pid!, server.child.pid!];
    // Latency first, while no bulk data is still draining through the session.
    const rr = await requestResponse(cport);
    const up = await bulkUp(cport, target, pids);
    const down = await bulkDown(cport, pids);
    const gib = (up.bytes + down.bytes) / 2 ** 30;
    return {
      upMBps: up.mbps,
      downMBps: down.mbps,
      cpuSecPerGiB: (up.cpu + down.cpu) / gib,
      p50: rr.p50,
      p99: rr.p99,
      rssClientMiB: peakRssMiB(pids[0]!),
      rssServerMiB: peakRssMiB(pids[1]!),
    };
  } finally {
    // SIGTERM lets node write its CPU profile.
    await Promise.all(procs.map((p) => p.kill()));
    target.close();
  }
}

function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

async function main(): Promise<void> {
  const rows: string[][] = [['path', 'metric', 'tstier', 'kcptun', 'ours/kcptun']];
  for (const path of PATHS) {
    const k = await measure('kcptun', path);
    const t = await measure('tstier', path);
    const line = (metric: string, a: number, b: number, digits = 1): void => {
      rows.push([path.name, metric, fmt(a, digits), fmt(b, digits), fmt(a / b, 2)]);
    };
    line('bulk up MB/s', t.upMBps, k.upMBps);
    line('bulk down MB/s', t.downMBps, k.downMBps);
    line('CPU s/GiB (both procs)', t.cpuSecPerGiB, k.cpuSecPerGiB);
    line('64B RR p50 ms', t.p50, k.p50, 2);
    line('64B RR p99 ms', t.p99, k.p99, 2);
    line('peak RSS client MiB', t.rssClientMiB, k.rssClientMiB);
    line('peak RSS server MiB', t.rssServerMiB, k.rssServerMiB);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
}

void main();
