/**
 * The TCP listener at its descriptor limit. Counting descriptors takes one (a readdir of /proc), so
 * when an accept has taken the last one the count itself fails with EMFILE; that failure must read
 * as "exhausted", not as "cannot tell". Run in a child under `prlimit --nofile`, which Node cannot
 * set on itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./descriptor-limit-child.js', import.meta.url));

test('an accept that takes the last descriptor: the listener warns and sheds the half-open stream', async (t) => {
  const child = spawn('prlimit', ['--nofile=96:96', process.execPath, CHILD, 'run'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill());
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const r = await lines.next();
    assert.ok(!r.done, 'the child ended early');
    return r.value;
  };
  const { port } = JSON.parse(await next()) as { port: number };
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  t.after(() => socket.destroy());
  const warnings: string[] = [];
  for (let line = await next(); ; line = await next()) {
    if (!line.startsWith('WARN ')) {
      assert.deepEqual(JSON.parse(line), { descriptorPressure: 1, shed: 1 });
      break;
    }
    warnings.push(line);
  }
  assert.ok(warnings.includes('WARN descriptors nearly exhausted; shedding half-open connections'), warnings.join('\n'));
});
