/**
 * Running the real easytier-core and easytier-cli inside test namespaces.
 */
import { fileURLToPath } from 'node:url';
import type { Namespace, NsProcess } from './netns.js';

const root = (p: string): string => fileURLToPath(new URL(`../../../../${p}`, import.meta.url));
export const CORE = root('bin/easytier-core');
export const CLI = root('bin/easytier-cli');

export interface CoreNode {
  proc: NsProcess;
  peerId: number;
}

/**
 * Starts easytier-core in `ns` and waits for its ready line (its log, on stderr, is merged into the
 * lines). `env`: extra environment variables for the core (e.g. a test-only knob); `nodeArgs`: flags
 * for node itself (e.g. --cpu-prof, which Node does not accept in NODE_OPTIONS).
 */
export async function startCore(ns: Namespace, args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<CoreNode> {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const quoted = [...(vars.length > 0 ? ['env', ...vars] : []), process.execPath, ...nodeArgs, CORE, ...args].map((a) => `'${a}'`).join(' ');
  const proc = ns.spawn(['sh', '-c', `exec ${quoted} 2>&1`]);
  const m = await proc.waitForLine(/node ready peer_id=(\d+)/).catch((e: Error) => {
    throw new Error(`${e.message}\noutput:\n${proc.lines.join('\n')}`);
  });
  return { proc, peerId: Number(m[1]) };
}

/** Runs easytier-cli in `ns` with `-o json` and parses its rows. */
export async function cliJson<T>(ns: Namespace, args: string[]): Promise<T[]> {
  const r = await ns.exec([process.execPath, CLI, ...args, '-o', 'json']);
  return JSON.parse(r.stdout) as T[];
}

/** One row of `easytier-cli proxy -o json`, as the tests read it. */
export interface ProxyRow {
  src: string;
  dst: string;
  state: string;
  transport_type: string;
  role?: string;
  start_time?: string;
  reason?: string;
  /** KCP segments / QUIC packets this flow retransmitted. */
  retransmits?: number;
}

/** Polls the proxy table until `ok` holds (bounded: each poll is one CLI round trip); fails naming `what`. */
export async function waitRows(ns: Namespace, what: string, ok: (rows: ProxyRow[]) => boolean): Promise<ProxyRow[]> {
  let rows: ProxyRow[] = [];
  for (let i = 0; i < 50; i++) {
    rows = await cliJson<ProxyRow>(ns, ['proxy']).catch(() => []);
    if (ok(rows)) return rows;
  }
  throw new Error(`${ns.name}: ${what}; last rows: ${JSON.stringify(rows.slice(0, 5))}`);
}

/**
 * Watches `ns`'s proxy table while a load runs: every `everyMs` it records each row to `dst` as
 * src → describe(row) (its transport_type unless told). A closed row lingers 10 s, so polling more often than that sees every flow.
 * stop() (idempotent) ends the polling and returns what was seen.
 */
export function watchCarriers(ns: Namespace, dst: string, everyMs = 2_000,
  describe: (row: ProxyRow) => string = (row) => row.transport_type): { stop: () => Promise<Map<string, string>> } {
  const seen = new Map<string, string>();
  let running = true;
  let wake: (() => void) | null = null;
  const loop = (async (): Promise<void> => {
    while (running) {
      for (const r of await cliJson<ProxyRow>(ns, ['proxy']).catch(() => [])) if (r.dst === dst) seen.set(r.src, describe(r));
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, everyMs);
      });
    }
  })();
  let stopped: Promise<Map<string, string>> | null = null;
  const finish = async (): Promise<Map<string, string>> => {
    running = false;
    wake?.();
    await loop;
    // One last look: flows that ended since the previous poll are still listed (lingering).
    for (const r of await cliJson<ProxyRow>(ns, ['proxy']).catch(() => [])) if (r.dst === dst) seen.set(r.src, describe(r));
    return seen;
  };
  return { stop: () => (stopped ??= finish()) };
}

/** Polls the route table until it lists at least `n` nodes (bounded). */
export async function waitPeers(ns: Namespace, n: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const rows = await cliJson<{ ipv4: string }>(ns, ['route']).catch(() => []);
    if (rows.length >= n) return;
  }
  throw new Error(`${ns.name}: routes never reached ${n}`);
}

/** One row of `easytier-cli route`, as far as the route waits read it. */
export interface RouteRow { peer_id: number; cost: number }

/** Polls the route table until `ok` holds (bounded); fails naming `what` with the last rows. */
export async function waitRouteRows(ns: Namespace, what: string, ok: (rows: RouteRow[]) => boolean): Promise<void> {
  let rows: RouteRow[] = [];
  for (let i = 0; i < 100; i++) {
    rows = await cliJson<RouteRow>(ns, ['route']).catch(() => []);
    if (ok(rows)) return;
  }
  throw new Error(`${ns.name}: ${what} never held; last routes: ${JSON.stringify(rows)}`);
}
