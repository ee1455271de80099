/**
 * Shared steps of the proxy benches (proxy-compare, quic-proxy): run flow-tool clients in a
 * namespace, measure latency probes then bulk throughput with the daemons' CPU around it, put the
 * impairment relay in front of an underlay endpoint, wait for a route, read how a flow was carried.
 */
import type { Namespace, NsProcess } from '../../test/netns/lib/netns.js';
import { cliJson } from '../../test/netns/lib/core.js';
import { cpuSeconds } from './proc-stat.js';

const TOOL = new URL('./flow-tool.js', import.meta.url);
const RELAY = new URL('../relay.js', import.meta.url);

export interface MeasureOptions {
  /** Bulk run length. */
  seconds: number;
  /** Length of each latency probe. */
  probeSeconds: number;
  rrMax: number;
  cfbMax: number;
}

export interface Measured {
  /** Connect-to-first-byte of the very first flow (it pays for any per-peer carrier set-up, e.g. a QUIC handshake), ms. */
  firstCfb: number;
  mbps: number;
  cpuPerGiB: number;
  rrP50: number;
  rrP99: number;
  cfbP50: number;
  cfbP99: number;
  /** Connect-to-first-byte attempts abandoned after 5 s (they count at 5 s in the quantiles). */
  cfbStalls: number;
}

/** Runs one flow-tool client mode in `ns` and returns its result event (or throws its error). */
export async function tool<T>(ns: Namespace, mode: string, host: string, port: number, extra: string[], timeoutMs: number): Promise<T> {
  const p = ns.node(TOOL, [mode, host, String(port), ...extra]);
  const m = await p.waitForLine(new RegExp(`^\\{"event":"(${mode}|error)"`), timeoutMs);
  const ev = JSON.parse(m.input!) as T & { event: string; message?: string };
  if (ev.event === 'error') throw new Error(`${mode} to ${host}:${port}: ${ev.message}`);
  return ev;
}

/** Starts flow-tool's server in `ns`. */
export async function serveTool(ns: Namespace, port: number): Promise<NsProcess> {
  const p = ns.node(TOOL, ['serve', '0.0.0.0', String(port)]);
  await p.waitForLine(/listening/);
  return p;
}

/**
 * The first flow alone, then latency probes while nothing is queued, then the bulk run with the CPU
 * of `pids` around it.
 */
export async function measure(ns: Namespace, host: string, port: number, pids: number[], o: MeasureOptions): Promise<Measured> {
  const timeout = (o.seconds * 4 + 30) * 1000;
  const first = await tool<{ p50: number }>(ns, 'cfb', host, port, ['10', '1'], timeout);
  const cfb = await tool<{ p50: number; p99: number; stalls: number }>(ns, 'cfb', host, port, [String(o.probeSeconds), String(o.cfbMax)], timeout);
  const rr = await tool<{ p50: number; p99: number }>(ns, 'rr', host, port, [String(o.probeSeconds), String(o.rrMax)], timeout);
  const cpu0 = pids.map(cpuSeconds);
  const bulk = await tool<{ bytes: number; mbps: number }>(ns, 'bulk', host, port, [String(o.seconds)], timeout);
  const cpu = pids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - cpu0[i]!, 0);
  return {
    firstCfb: first.p50,
    mbps: bulk.mbps,
    cpuPerGiB: pids.length ? cpu / (bulk.bytes / 2 ** 30) : NaN,
    rrP50: rr.p50,
    rrP99: rr.p99,
    cfbP50: cfb.p50,
    cfbP99: cfb.p99,
    cfbStalls: cfb.stalls,
  };
}

/** Starts the impairment relay in `ns`, from `listen` to `target` (host:port each). */
export async function startRelay(ns: Namespace, listen: string, target: string, impair: string[]): Promise<NsProcess> {
  const r = ns.node(RELAY, ['--listen', listen, '--target', target, ...impair]);
  await r.waitForLine(/relay listening/);
  return r;
}

/** Waits (bounded) until `ns`'s node routes to the virtual address `vip`. */
export async function waitRoute(ns: Namespace, vip: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const rows = await cliJson<{ ipv4: string }>(ns, ['route']).catch(() => []);
    if (rows.some((r) => r.ipv4.startsWith(`${vip}/`))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${ns.name} never learned a route to ${vip}`);
}

/** How `ns`'s proxy table lists the flow to `dst` that moved the most bytes (the bulk run), or null. */
export async function bulkTransport(ns: Namespace, dst: string): Promise<string | null> {
  const rows = await cliJson<{ dst: string; transport_type: string; tx_bytes: number }>(ns, ['proxy']);
  const mine = rows.filter((r) => r.dst === dst).sort((x, y) => y.tx_bytes - x.tx_bytes);
  return mine[0]?.transport_type ?? null;
}

export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
