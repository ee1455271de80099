/**
 * The 1,000-flow load between two real nodes, for the KCP and QUIC proxy tests: a sink behind B, a
 * thousand concurrent flows from A (test/netns/fixtures/many-flows.ts, memory-bounded, sha256 at both
 * ends), the proxy table on A watched all along (which carrier took each flow), and afterwards both
 * tables drained (nothing half-open is left behind).
 */
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { Netns, type Namespace } from './netns.js';
import { cliJson, startCore, waitPeers, watchCarriers, type ProxyRow } from './core.js';

const TOOL = new URL('../fixtures/many-flows.js', import.meta.url);
/** Descriptors a process needs here: a socket per flow on each side, with room to spare. */
const NOFILE = '--nofile=8192:8192';

/**
 * A flow's stall limit under the redirect termination (the default): the application's whole
 * megabyte leaves into loopback socket buffers in its first second, so the tool sees no progress
 * until the answer, however steadily the flow moves (at load 10-13 a QUIC run's last flows took
 * over 180 s). A hang still fails the run.
 */
export const REDIRECT_STALL_SECS = 300;

export interface LoadDone { ok: number; failed: number; errors: string[]; secs: number }

export interface LoadRun {
  done: LoadDone;
  /** Each flow seen on A's table: its source address → transport_type. */
  seen: Map<string, string>;
  /** What was left in each node's table once the closed rows should have gone (empty when clean). */
  leftA: ProxyRow[];
  leftB: ProxyRow[];
}

export interface LoadSpec {
  /** Namespace prefix (unique per test file) and the /24 of the veth and of the virtual network. */
  prefix: string;
  veth: string;
  vnet: string;
  /** A's proxy flag: --enable-kcp-proxy or --enable-quic-proxy. */
  proxyFlag: string;
  flows: number;
  bytes: number;
  /** A flow with no progress for this long is reported as stalled (the tool's hang bound). */
  stallSecs: number;
  /** The whole load's bound, ms. */
  timeoutMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the flow tool under a raised descriptor limit (the shell's default may be 1024). */
function tool(ns: Namespace, args: string[]): ReturnType<Namespace['spawn']> {
  return ns.spawn(['prlimit', NOFILE, process.execPath, fileURLToPath(TOOL), ...args]);
}

/** Polls a node's proxy table until it is empty (closed rows linger 10 s), for at most 30 s. */
async function drained(ns: Namespace): Promise<ProxyRow[]> {
  let rows: ProxyRow[] = [];
  for (let i = 0; i < 30; i++) {
    rows = await cliJson<ProxyRow>(ns, ['proxy']);
    if (rows.length === 0) break;
    await sleep(1_000);
  }
  return rows;
}

export async function runFlowLoad(t: TestContext, spec: LoadSpec): Promise<LoadRun> {
  const net = await Netns.create(spec.prefix, t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  await net.link(a, b, `${spec.veth}.1/24`, `${spec.veth}.2/24`);
  const common = (ip: string, host: string): string[] =>
    ['--network-name', `${spec.prefix}-net`, '--network-secret', 'load-secret', '-i', ip, '--hostname', host,
      '--dev-name', `${spec.prefix.slice(0, 8)}tun`, '--log-level', 'info'];
  const nb = await startCore(b, [...common(`${spec.vnet}.2`, 'node-b'), '-l', 'udp://0.0.0.0:11010']);
  const na = await startCore(a, [...common(`${spec.vnet}.1`, 'node-a'), '--no-listener', spec.proxyFlag,
    '-p', `udp://${spec.veth}.2:11010`]);
  // `ip netns exec` and `sh -c exec` replace themselves, so the child's pid is the daemon's.
  for (const n of [na, nb]) await a.exec(['prlimit', `--pid=${n.proc.child.pid}`, NOFILE]);
  await waitPeers(a, 1);
  await tool(b, ['sink', '0.0.0.0', '7100']).waitForLine(/listening/);

  const dst = `${spec.vnet}.2:7100`;
  const watch = watchCarriers(a, dst);
  const load = tool(a, ['load', `${spec.vnet}.2`, '7100', String(spec.flows), String(spec.bytes), '4000', String(spec.stallSecs)]);
  const done = await load.waitForEvent<LoadDone>('done', spec.timeoutMs).finally(() => watch.stop());
  const seen = await watch.stop();
  return { done, seen, leftA: await drained(a), leftB: await drained(b) };
}
