/**
 * The process's descriptor limit, for sizing what a flood may hold. Node has no getrlimit, but on
 * Linux /proc/self/limits has it; Node itself raises the soft limit to the hard one at start-up,
 * so this is the raised value.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** The soft RLIMIT_NOFILE, or undefined where it cannot be read (not Linux) or is unlimited. */
export function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Descriptors the process has open, or undefined where /proc/self/fd cannot be read. */
export function openFileCount(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}
