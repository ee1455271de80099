/**
 * An impairment relay is a link, not a contestant: netem runs in the kernel's softirq, a relay runs as
 * a process that shares the CPU with the pair under test. At normal priority, on a loaded 2-core host,
 * the packet relay was starved with the pair and queued on its own: its p99 delay beside tstier's pair
 * was 255-313 ms (the link's is 20), beside EasyTier's 29-46 ms, so the pair that needed more CPU was
 * also given a worse link (docs/forwarding-latency.md). Ahead of the pair in the scheduler, a relay
 * delays what it is told to, for any pair.
 */
import { setPriority } from 'node:os';

const RELAY_NICE = -10;

/** Raises this process's priority (root), or says on stderr why it cannot. */
export function runAheadOfPair(name: string): void {
  try {
    setPriority(RELAY_NICE);
  } catch (e) {
    process.stderr.write(`${name}: cannot raise its priority (${(e as Error).message}); its own scheduling delay adds to the link's\n`);
  }
}
