/**
 * Helpers for proxy tests: run the proxy-flows fixture, read the proxy and route tables through
 * easytier-cli, each poll bounded.
 */
import assert from 'node:assert/strict';
import type { Namespace } from './netns.js';
import { cliJson, waitRows as waitCoreRows, type ProxyRow as CoreProxyRow } from './core.js';

export const FLOWS = new URL('../fixtures/proxy-flows.js', import.meta.url);

/** A proxy table row with the byte counters these tests read. */
export type ProxyRow = CoreProxyRow & { tx_bytes?: number; rx_bytes?: number };
export interface FlowsDone { ok: number; failed: number; errors: string[]; upSha256: string; downSha256: string }

/** Runs `count` flows of the fixture from `ns` to host:port at once and returns its verdict. */
export function runFlows(ns: Namespace, host: string, port: number, count: number, up: number, down: number,
  finFirst: boolean, seed: number, timeoutMs = 120_000): Promise<FlowsDone> {
  const p = ns.node(FLOWS, ['flows', host, String(port), String(count), String(up), String(down), finFirst ? '1' : '0', String(seed)]);
  return p.waitForEvent<FlowsDone>('done', timeoutMs);
}

/** One connect attempt from `ns`: the fixture's event, e.g. {event: 'connect', result: 'ECONNREFUSED'}. */
export function connectResult(ns: Namespace, host: string, port: number, timeoutMs: number): Promise<unknown> {
  return ns.node(FLOWS, ['connect', host, String(port), String(timeoutMs)]).waitForEvent('connect', timeoutMs + 10_000);
}

/** core.ts's waitRows, typed with the byte counters. */
export const waitRows = waitCoreRows as (ns: Namespace, what: string, ok: (rows: ProxyRow[]) => boolean) => Promise<ProxyRow[]>;

/** Waits until route sync lists `n` other nodes (and, when given, `needle` somewhere in the rows, e.g. a CIDR). */
export async function waitRoutes(ns: Namespace, n: number, needle?: string): Promise<void> {
  let rows: unknown[] = [];
  for (let i = 0; i < 100; i++) {
    rows = await cliJson<unknown>(ns, ['route']).catch(() => []);
    if (rows.length >= n && (!needle || JSON.stringify(rows).includes(needle))) return;
  }
  assert.fail(`${ns.name}: routes never reached ${n}${needle ? ` with ${needle}` : ''}: ${JSON.stringify(rows)}`);
}
