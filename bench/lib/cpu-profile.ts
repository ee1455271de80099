/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and ranks functions by self time, so a bench can say
 * where a process spent its CPU without opening DevTools.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  /** "name (file:line)", with the path shortened to the part after the repository's dist/. */
  where: string;
  ms: number;
  share: number;
}

function label(frame: ProfileNode['callFrame']): string {
  const name = frame.functionName || '(anonymous)';
  if (!frame.url) return name;
  const file = frame.url.replace(/^file:\/\/.*?\/dist\//, '');
  return `${name} (${file}:${frame.lineNumber + 1})`;
}

/** The `top` functions by self time; a sample's time is the delta to the next sample, as DevTools counts. */
export function topSelfTime(path: string, top = 15): SelfTime[] {
  const p = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, label(n.callFrame)]));
  const ms = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    const where = byId.get(p.samples[i]!) ?? '?';
    ms.set(where, (ms.get(where) ?? 0) + dt);
    total += dt;
  }
  return [...ms.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([where, t]) => ({ where, ms: t, share: total ? t / total : 0 }));
}
