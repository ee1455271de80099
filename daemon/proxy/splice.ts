/**
 * Joins two application streams (a kernel socket and a userspace-stack flow) both ways, with
 * back-pressure (a writer that is full pauses the other side's reads), half-close (a FIN is passed
 * on once the bytes before it are written) and reset (one side's abort resets the other).
 */
import type { AppStream } from '../carrier/socket-pipe.js';
import type { FlowCounters } from './flow-table.js';

export type SpliceEnd = 'clean' | 'reset';

/** `counters`, when given, counts a's bytes to b as rxBytes and b's to a as txBytes (a is the client). */
export function splice(a: AppStream, b: AppStream, onDone: (how: SpliceEnd) => void, counters?: FlowCounters): void {
  let ends = 0;
  let done = false;
  const finish = (how: SpliceEnd): void => {
    if (done) return;
    done = true;
    onDone(how);
  };
  const oneWay = (from: AppStream, to: AppStream, field: 'rxBytes' | 'txBytes'): void => {
    from.on('data', (chunk: Buffer) => {
      if (counters) counters[field] += chunk.length;
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => from.resume());
    from.on('end', () => {
      to.end();
      if (++ends === 2) {
        // Both FINs passed: a kernel socket closes once its FIN is out; a Duplex auto-destroys.
        for (const s of [a, b]) if ('destroySoon' in s) s.destroySoon();
        finish('clean');
      }
    });
    from.on('error', () => undefined); // 'close' follows
    from.on('close', () => {
      if (ends === 2) return;
      reset(to);
      finish('reset');
    });
  };
  oneWay(a, b, 'rxBytes');
  oneWay(b, a, 'txBytes');
  a.resume();
  b.resume();
}

/** Aborts a stream so its peer sees an RST. */
function reset(s: AppStream): void {
  if (s.destroyed) return;
  if ('resetAndDestroy' in s) s.resetAndDestroy();
  else s.destroy();
}
