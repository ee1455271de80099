/**
 * The process's descriptor limit and use, for sizing what a flood may hold. Node has no getrlimit,
 * but on Linux /proc/self/limits has it; Node itself raises the soft limit to the hard one at
 * start-up, so this is the raised value.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** The soft RLIMIT_NOFILE, or undefined where it cannot be read (not Linux, or no descriptor left) or is unlimited. */
export function openFileLimit(): number | undefined {
  try {
    return readLimit();
  } catch {
    return undefined;
  }
}

export interface DescriptorUse {
  used: number;
  limit: number;
}

/**
 * Descriptors open against the limit. 'exhausted' when not even one is left to look with: reading
 * /proc takes a descriptor, so at the limit the look fails with EMFILE (or ENFILE, the system's
 * table full), and that failure is the answer. Undefined where it cannot be read or is unlimited.
 */
export function descriptorUse(): DescriptorUse | 'exhausted' | undefined {
  try {
    const used = readdirSync('/proc/self/fd').length;
    const limit = readLimit();
    return limit === undefined ? undefined : { used, limit };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'EMFILE' || code === 'ENFILE' ? 'exhausted' : undefined;
  }
}

function readLimit(): number | undefined {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : undefined;
}
