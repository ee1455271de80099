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
 * lines). `env`: extra environment variables for the core (e.g. a test-only knob).
 */
export async function startCore(ns: Namespace, args: string[], env: Record<string, string> = {}): Promise<CoreNode> {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const quoted = [...(vars.length > 0 ? ['env', ...vars] : []), process.execPath, CORE, ...args].map((a) => `'${a}'`).join(' ');
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
