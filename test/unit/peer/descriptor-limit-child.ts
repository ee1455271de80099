/**
 * Run by tcp-listener-fds.test.ts under `prlimit --nofile`: a TCP listener in a process that has
 * taken every descriptor but one. Prints {port}, then the listener's warnings, then, once the test's
 * connection took that last descriptor, {descriptorPressure, shed}.
 * Without arguments (the test runner loads every file under dist/test) it does nothing.
 */
import { closeSync, openSync } from 'node:fs';
import { TcpListener } from '../../../daemon/peer/underlay/tcp.js';
import { quietLog } from './helpers.js';

if (process.argv[2] === 'run') {
  const log = { ...quietLog, warn: (message: string) => process.stdout.write(`WARN ${message}\n`) };
  // A deadline far off: only the check on accept can close the stream within the test.
  const listener = await TcpListener.open('tcp://127.0.0.1:0', { scheme: 'tcp', host: '127.0.0.1', port: 0 }, () => {},
    { log, maxFirstPacket: 112, halfOpen: { deadlineMs: 60_000, perSource: 8, global: 8, quietMs: 1000 } });
  let last = -1;
  try {
    for (;;) last = openSync('/dev/null', 'r');
  } catch { /* EMFILE: the process is at its limit */ }
  closeSync(last);
  process.stdout.write(`${JSON.stringify({ port: Number(listener.boundUri.split(':').pop()) })}\n`);
  const { halfOpen } = listener;
  const poll = (): void => {
    if (halfOpen.stats.admitted === 0) {
      setTimeout(poll, 5);
      return;
    }
    process.stdout.write(`${JSON.stringify({ descriptorPressure: listener.stats.descriptorPressure, shed: halfOpen.stats.shed })}\n`);
    process.exit(0);
  };
  poll();
}
