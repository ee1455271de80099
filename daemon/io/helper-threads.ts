/**
 * Runs this process's helper threads at a lower priority than its JavaScript thread.
 *
 * Every packet and stream byte of a tstier process is handled on its one JavaScript thread. Its other
 * threads are V8's (optimising compiles, GC marking and sweeping) and libuv's pool (file and DNS
 * work): none is on the data path. At normal priority they compete with it for the CPU: on two
 * cores, a node's first seconds of JIT compiles ran on a worker thread for ~18 % of the time during
 * its slowest round trips and ~1.5 % during its usual ones (docs/forwarding-latency.md). Ten nice
 * steps down, the scheduler gives them what the data path leaves idle (CFS weight 110 against 1024).
 *
 * On Linux a thread is a task with a nice value of its own (setpriority on its thread id), and a
 * thread inherits its creator's. libuv makes its pool's threads, all at once, on the first piece of
 * pool work; lowerHelperThreads() does one first, so they exist when it looks.
 */
import { readdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { getPriority, setPriority } from 'node:os';

/** How many nice steps below the JavaScript thread helper threads run. */
export const HELPER_NICE_STEPS = 10;
/** The lowest priority Linux has. */
const NICE_MAX = 19;

/**
 * Sets every thread of this process except the JavaScript thread (whose thread id is the pid)
 * HELPER_NICE_STEPS below it (at most 19): relative, so a unit's Nice= moves both. Where threads
 * cannot be listed (not Linux) or reniced (a sandbox without setpriority) it leaves them: a latency
 * loss, not an error.
 */
export async function lowerHelperThreads(): Promise<void> {
  // A stat through fs/promises is pool work: the pool exists after it.
  await stat('/proc/self').catch(() => undefined);
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return;
  }
  const nice = Math.min(NICE_MAX, getPriority() + HELPER_NICE_STEPS);
  for (const task of tasks) {
    const tid = Number(task);
    if (tid === process.pid) continue;
    try {
      setPriority(tid, nice);
    } catch {
      // The thread exited since the listing, or renicing is not allowed here.
    }
  }
}
