/**
 * The real easytier-core runs its helper threads (V8's compiler and GC workers, libuv's pool) below
 * its JavaScript thread, so they take the CPU the data path leaves idle. It runs in a private network
 * namespace (`unshare -n`) with no TUN and no listener; by the time it says its portal listens, every
 * thread but the JavaScript one (whose thread id is the pid) must be HELPER_NICE_STEPS below it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { HELPER_NICE_STEPS } from '../../../daemon/io/helper-threads.js';

const CORE = fileURLToPath(new URL('../../../../bin/easytier-core', import.meta.url));
const SKIP = process.getuid?.() === 0 ? false : 'needs root for unshare -n';

/** Each thread's nice value (field 19 of /proc/PID/task/TID/stat; the name before it may hold spaces). */
function niceByThread(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), Number(fields[19 - 3]));
  }
  return out;
}

test('easytier-core: every helper thread runs HELPER_NICE_STEPS below the JavaScript thread once the portal listens', { skip: SKIP, timeout: 30_000 }, async (t) => {
  const argv = [process.execPath, CORE, '--network-name', 'nice', '--network-secret', 'nice', '--no-tun', '--no-listener', '--log-level', 'info'];
  const child = spawn('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stderr });
  const seen: string[] = [];
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (l) => {
      seen.push(l);
      if (/rpc portal listening/.test(l)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`easytier-core exited ${code} before its portal listened:\n${seen.join('\n')}`)));
  });
  const nice = niceByThread(child.pid!);
  assert.equal(nice.get(child.pid!), 0, 'the JavaScript thread keeps its priority');
  const helpers = [...nice].filter(([tid]) => tid !== child.pid);
  // Node starts four V8 platform workers, and libuv's pool has four threads by default.
  assert.ok(helpers.length >= 8, `${helpers.length} helper threads`);
  assert.deepEqual(helpers.filter(([, n]) => n !== HELPER_NICE_STEPS), [], 'threads left at another nice value');
});
