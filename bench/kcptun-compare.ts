/**
 * tstier-kcptun vs Debian's kcptun 20210922, same settings, same run.
 *
 * Conditions: clean loopback; the impairment relay at 5 % and at 20 % loss each way with 20 ms one-way
 * delay; and a bidirectional echo on loopback. For each condition and each implementation (client +
 * server pair of the same kind), it measures:
 *  - bulk throughput up (client → target) and down, one stream, each for a fixed time window;
 *  - echo: ECHO_MIB sent through one stream to an echo target and read back at the same time, MiB/s
 *    of one direction (bytes each way / wall time);
 *  - CPU seconds per GiB moved (utime+stime of both tunnel processes from /proc/<pid>/stat; the echo
 *    counts both directions), steady state: before any measured window both implementations move the
 *    same warm-up transfer (--warm SECONDS, half up then half down on a stream of its own, through the
 *    same relay), and a window counts only the bytes and the CPU (each process read at the window's
 *    start and end) inside it. A tunnel runs for hours; without the warm-up, ours pays V8's compilation
 *    (a fixed cost per process, seconds at a few MB/s) inside short windows, which kcptun, compiled ahead
 *    of time, does not. --warm 0 is the old cold measurement;
 *  - 64-byte request/response latency p50/p99 on one stream (clean loopback only);
 *  - peak RSS (VmHWM) of each process.
 * The implementations run interleaved (kcptun, ours, kcptun, ours...) for --rounds rounds, and the
 * table gives medians and ours/kcptun ratios. Bounded: ~(WARM + 2×BULK_SECONDS or one echo) per cell.
 *
 *   node dist/bench/kcptun-compare.js [--seconds 6] [--warm 4] [--rr-seconds 4] [--rounds 3] [--conditions
 *     clean,loss5,loss20,echo] [--impls kcptun,tstier,tstier-js,tstier-base] [--base DIR] [--profile DIR] [--snmp DIR] [--node-flags FLAGS] [-- extra kcptun flags]
 * tstier-js is ours with the transport addon off (TSTIER_TRANSPORT_ADDON=off: crypt, CRC and FEC in JS).
 * tstier-base is ours from another built checkout (--base DIR), for before/after figures in one run.
 * --profile writes V8 CPU profiles of our client and server (node --cpu-prof) into DIR, and their
 * output (where --node-flags traces go) next to them.
 * --snmp has both ends of every implementation write kcp-go's counters (--snmplog) into DIR and adds
 * rows that say what the wire cost per payload byte: datagram bytes sent per byte written into the
 * streams (both ends, whole run), and retransmitted segments per 1,000 segments sent.
 */
import { createServer, type Socket } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { benchArgs } from './lib/args.js';
import { freePort, REPO_ROOT, startProc, TSTIER_KCPTUN, connectWithRetry, waitReady, type Proc } from '../test/interop/harness.js';

const { opt, words, rest } = benchArgs('kcptun-compare',
  'node dist/bench/kcptun-compare.js [--seconds 6] [--warm 4] [--rr-seconds 4] [--rounds 3] [--conditions clean,loss5,loss20,echo] ' +
  '[--impls kcptun,tstier,tstier-js,tstier-base] [--echo-mib 64] [--base DIR] [--profile DIR] [--snmp DIR] [--node-flags FLAGS] ' +
  '[-- extra kcptun flags] (the file\'s header explains each)',
  ['seconds', 'warm', 'rr-seconds', 'rounds', 'conditions', 'impls', 'echo-mib', 'base', 'profile', 'snmp', 'node-flags']);
const BULK_SECONDS = Number(opt('seconds', '6'));
/** The untimed warm-up transfer before every measured window, half up then half down. */
const WARM_SECONDS = Number(opt('warm', '4'));
const RR_SECONDS = Number(opt('rr-seconds', '4'));
const RR_MAX = 5000;
const PROFILE_DIR = opt('profile', '');
const SNMP_DIR = opt('snmp', '');
/** Extra node flags for our processes (e.g. "--trace-deopt"), space-separated. */
const NODE_FLAGS = words('node-flags');
// Both kcptuns read --snmplog as a Go time layout, where digits (and a few words) are replaced by the date.
if (SNMP_DIR && /[0-9]|Jan|Mon|MST|PM|pm/.test(resolve(SNMP_DIR))) throw new Error('--snmp: the directory must hold no digits (a Go time layout)');
let snmpRuns = 0;
/** A digit-free name for each run's files ('a'..'j' for 0..9). */
const letters = (n: number): string => String(n).replace(/\d/g, (d) => String.fromCharCode(97 + Number(d)));
const ROUNDS = Number(opt('rounds', '3'));
const ECHO_MIB = Number(opt('echo-mib', '64'));
const EXTRA = rest;
const CLK_TCK = 100;

const IMPLS = ['kcptun', 'tstier', 'tstier-js', 'tstier-base'] as const;
const BASE_DIR = opt('base', '');
type Impl = (typeof IMPLS)[number];
interface Condition {
  name: string;
  relay: string[] | null;
  /** The bidirectional echo instead of bulk up/down. */
  echo?: boolean;
}

const CONDITIONS: Record<string, Condition> = {
  clean: { name: 'clean loopback', relay: null },
  loss5: { name: '5% loss, 20 ms', relay: ['--loss', '0.05', '--delay', '20', '--seed', '7'] },
  loss20: { name: '20% loss, 20 ms', relay: ['--loss', '0.2', '--delay', '20', '--seed', '7'] },
  echo: { name: `echo ${ECHO_MIB} MiB`, relay: null, echo: true },
};
const chosen = opt('conditions', 'clean,loss5,loss20,echo').split(',').map((c) => {
  const cond = CONDITIONS[c];
  if (!cond) throw new Error(`--conditions: unknown ${c} (${Object.keys(CONDITIONS).join(', ')})`);
  return cond;
});
const impls = opt('impls', 'kcptun,tstier').split(',').map((i) => {
  if (!(IMPLS as readonly string[]).includes(i)) throw new Error(`--impls: unknown ${i} (${IMPLS.join(', ')})`);
  if (i === 'tstier-base' && !BASE_DIR) throw new Error('--impls tstier-base needs --base DIR (a built checkout)');
  return i as Impl;
});

interface Result {
  upMBps: number;
  downMBps: number;
  echoMiBps: number;
  cpuSecPerGiB: number;
  p50: number;
  p99: number;
  rssClientMiB: number;
  rssServerMiB: number;
  wirePerPayload: number;
  retransPerMille: number;
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

async function bulkUp(port: number, target: Target, pids: number[], seconds = BULK_SECONDS): Promise<{ mbps: number; cpu: number; bytes: number }> {
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
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const bytes = target.received - b0;
  const secs = (performance.now() - t0) / 1000;
  const cpu = pids.reduce((a, p, i) => a + cpuSeconds(p) - c0[i]!, 0);
  stop = true;
  s.destroy();
  return { mbps: bytes / secs / 1e6, cpu, bytes };
}

async function bulkDown(port: number, pids: number[], seconds = BULK_SECONDS): Promise<{ mbps: number; cpu: number; bytes: number }> {
  const s = await connectWithRetry(port);
  s.on('error', () => undefined);
  let got = 0;
  s.on('data', (d: Buffer) => (got += d.length));
  s.write('D');
  await new Promise((r) => setTimeout(r, 500));
  const b0 = got;
  const c0 = pids.map(cpuSeconds);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const bytes = got - b0;
  const secs = (performance.now() - t0) / 1000;
  const cpu = pids.reduce((a, p, i) => a + cpuSeconds(p) - c0[i]!, 0);
  s.destroy();
  return { mbps: bytes / secs / 1e6, cpu, bytes };
}

/** ECHO_MIB written to the echo target while its echo is read back; bounded by a 120 s deadline. */
async function echo(port: number, pids: number[]): Promise<{ mibps: number; cpu: number; bytes: number }> {
  const s = await connectWithRetry(port);
  s.on('error', () => undefined);
  const total = ECHO_MIB * 2 ** 20;
  const block = randomBytes(1 << 20);
  const c0 = pids.map(cpuSeconds);
  const t0 = performance.now();
  let got = 0;
  const done = new Promise<void>((r) => s.on('data', (d: Buffer) => {
    got += d.length;
    if (got >= total) r();
  }));
  s.write('P');
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      sent += block.length;
      if (!s.write(block)) return;
    }
  };
  s.on('drain', pump);
  pump();
  await Promise.race([done, new Promise((r) => setTimeout(r, 120_000).unref())]);
  const secs = (performance.now() - t0) / 1000;
  const cpu = pids.reduce((a, p, i) => a + cpuSeconds(p) - c0[i]!, 0);
  s.destroy();
  return { mibps: got / 2 ** 20 / secs, cpu, bytes: got + sent };
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
  const nodeArgs = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${resolve(PROFILE_DIR)}`, `--cpu-prof-name=${impl}-${tag}-${role}.cpuprofile`] : [];
  const bin = impl === 'tstier-base' ? resolve(BASE_DIR, 'bin/tstier-kcptun') : TSTIER_KCPTUN;
  return startProc(process.execPath, [...NODE_FLAGS, ...nodeArgs, bin, role, ...a], impl === 'tstier-js' ? { TSTIER_TRANSPORT_ADDON: 'off' } : {});
}

/** The last --snmplog row of a process, as field → value (empty when it wrote none). */
function lastSnmpRow(path: string): Map<string, number> {
  let lines: string[];
  try {
    lines = readFileSync(path, 'utf8').trim().split('\n');
  } catch {
    return new Map();
  }
  const head = lines[0]!.split(',');
  const row = lines[lines.length - 1]!.split(',').map(Number);
  return new Map(head.map((h, i) => [h, row[i]!]));
}

/** Wire bytes per payload byte and retransmissions per 1,000 segments, both ends together. */
function wireCost(files: string[]): { wirePerPayload: number; retransPerMille: number } {
  const rows = files.map(lastSnmpRow);
  const sum = (f: string): number => rows.reduce((a, r) => a + (r.get(f) ?? NaN), 0);
  return {
    wirePerPayload: sum('OutBytes') / sum('BytesSent'),
    retransPerMille: (1000 * sum('RetransSegs')) / sum('OutSegs'),
  };
}

async function measure(impl: Impl, path: Condition): Promise<Result> {
  const target = new Target();
  const tport = await target.listen();
  const sport = await freePort();
  const cport = await freePort();
  const procs: Proc[] = [];
  const tag = path.name.replace(/\W+/g, '_');
  try {
    const common = ['--key', 'bench', '--quiet', ...EXTRA];
    const run = letters(snmpRuns++);
    const snmpFile = (role: string): string => resolve(SNMP_DIR, `${impl}-${role}-${run}.csv`);
    const snmp = (role: string): string[] => (SNMP_DIR ? ['--snmplog', snmpFile(role), '--snmpperiod', '1'] : []);
    const server = startImpl(impl, 'server', ['-l', `127.0.0.1:${sport}`, '-t', `127.0.0.1:${tport}`, ...common, ...snmp('server')], tag);
    procs.push(server);
    let dialPort = sport;
    if (path.relay) {
      const rport = await freePort();
      const relay = startProc(process.execPath, [resolve(REPO_ROOT, 'dist/bench/relay.js'), '--listen', `127.0.0.1:${rport}`, '--target', `127.0.0.1:${sport}`, ...path.relay]);
      procs.push(relay);
      await relay.waitFor('relay listening');
      dialPort = rport;
    }
    const client = startImpl(impl, 'client', ['-l', `127.0.0.1:${cport}`, '-r', `127.0.0.1:${dialPort}`, ...common, ...snmp('client')], tag);
    procs.push(client);
    await waitReady(server);
    await waitReady(client);
    const pids = [client.child.pid!, server.child.pid!];
    const warm = async (): Promise<void> => {
      if (WARM_SECONDS <= 0) return;
      await bulkUp(cport, target, pids, WARM_SECONDS / 2);
      await bulkDown(cport, pids, WARM_SECONDS / 2);
    };
    // Read after the last row is written (every second), while the processes still run.
    const cost = async (): Promise<{ wirePerPayload: number; retransPerMille: number }> => {
      if (!SNMP_DIR) return { wirePerPayload: NaN, retransPerMille: NaN };
      await new Promise((r) => setTimeout(r, 1100));
      return wireCost([snmpFile('client'), snmpFile('server')]);
    };
    if (path.echo) {
      await warm();
      const e = await echo(cport, pids);
      return { upMBps: NaN, downMBps: NaN, echoMiBps: e.mibps, cpuSecPerGiB: e.cpu / (e.bytes / 2 ** 30), p50: NaN, p99: NaN,
        rssClientMiB: peakRssMiB(pids[0]!), rssServerMiB: peakRssMiB(pids[1]!), ...(await cost()) };
    }
    // Latency first, while no bulk data is still draining through the session.
    // Latency is measured cold, as before the warm-up existed.
    const rr = path.relay ? { p50: NaN, p99: NaN } : await requestResponse(cport);
    await warm();
    const up = await bulkUp(cport, target, pids);
    const down = await bulkDown(cport, pids);
    const gib = (up.bytes + down.bytes) / 2 ** 30;
    return {
      upMBps: up.mbps,
      downMBps: down.mbps,
      echoMiBps: NaN,
      cpuSecPerGiB: (up.cpu + down.cpu) / gib,
      p50: rr.p50,
      p99: rr.p99,
      rssClientMiB: peakRssMiB(pids[0]!),
      rssServerMiB: peakRssMiB(pids[1]!),
      ...(await cost()),
    };
  } finally {
    // SIGTERM lets node write its CPU profile.
    await Promise.all(procs.map((p) => p.kill()));
    if (PROFILE_DIR && impl !== 'kcptun') {
      for (const [p, role] of [[procs[0], 'server'], [procs[procs.length - 1], 'client']] as const) {
        if (p) writeFileSync(resolve(PROFILE_DIR, `${impl}-${tag}-${role}.log`), p.output());
      }
    }
    target.close();
  }
}

function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

function median(xs: number[]): number {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return v.length ? v[Math.floor((v.length - 1) / 2)]! : NaN;
}

const METRICS: [keyof Result, string, number][] = [
  ['upMBps', 'bulk up MB/s', 1],
  ['downMBps', 'bulk down MB/s', 1],
  ['echoMiBps', 'echo MiB/s (each way)', 1],
  ['cpuSecPerGiB', 'CPU s/GiB (both procs)', 1],
  ['p50', '64B RR p50 ms', 2],
  ['p99', '64B RR p99 ms', 2],
  ['rssClientMiB', 'peak RSS client MiB', 1],
  ['rssServerMiB', 'peak RSS server MiB', 1],
  ['wirePerPayload', 'wire B per payload B', 3],
  ['retransPerMille', 'retransmits per 1000 segs', 1],
];

async function main(): Promise<void> {
  const head = ['condition', 'metric', ...impls, ...impls.filter((i) => i !== 'kcptun').map((i) => `${i}/kcptun`)];
  const rows: string[][] = [head];
  for (const cond of chosen) {
    const runs = new Map<Impl, Result[]>(impls.map((i) => [i, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const impl of impls) {
        const res = await measure(impl, cond);
        runs.get(impl)!.push(res);
        console.error(`${cond.name} round ${r + 1} ${impl}: ${JSON.stringify(res, (_k, v: unknown) => typeof v === 'number' ? Number(v.toFixed(2)) : v)}`);
      }
    }
    for (const [key, label, digits] of METRICS) {
      const med = impls.map((i) => median(runs.get(i)!.map((x) => x[key])));
      if (!med.some(Number.isFinite)) continue;
      const k = med[impls.indexOf('kcptun')] ?? NaN;
      rows.push([cond.name, label, ...med.map((m) => fmt(m, digits)), ...impls.flatMap((i, j) => (i === 'kcptun' ? [] : [fmt(med[j]! / k, 2)]))]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
}

void main();
