/** The namespace harness itself (test/netns/lib/netns.ts), which other areas' netns tests build on. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import test from 'node:test';
import { Netns, run, unavailableReason } from './lib/netns.js';

const skip = unavailableReason() ?? false;

async function namespaces(): Promise<string[]> {
  return (await run(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

test('two namespaces linked by a veth reach each other over IPv4 and IPv6', { skip }, async (t) => {
  const net = await Netns.create('tt4-h1', t);
  const a = await net.ns('a');
  const b = await net.ns('b');
  assert.deepEqual([a.name, b.name], ['tt4-h1-a', 'tt4-h1-b']);
  const ifname = await net.link(a, b, '10.210.0.1/24', '10.210.0.2/24', { mtu: 1400 });
  await net.link(a, b, 'fd42:210::1/64', 'fd42:210::2/64');
  await a.exec(['ping', '-c', '1', '-W', '5', '10.210.0.2']);
  await b.exec(['ping', '-6', '-c', '1', '-W', '5', 'fd42:210::1']);
  const shown = JSON.parse((await b.exec(['ip', '-j', 'link', 'show', ifname])).stdout)[0];
  assert.equal(shown.mtu, 1400);
  // The host namespace does not see the interfaces.
  assert.notEqual((await run(['ip', 'link', 'show', ifname], { allowFailure: true })).code, 0);
  const failed = await a.exec(['ip', 'link', 'show', 'nonexistent0'], { allowFailure: true });
  assert.notEqual(failed.code, 0);
  await assert.rejects(a.exec(['ip', 'link', 'show', 'nonexistent0']), /nonexistent0/);
});

test('spawned processes: lines are awaited in order, exit is observed, destroy stops them', { skip }, async (t) => {
  const net = await Netns.create('tt4-h2', t);
  const a = await net.ns('a');
  const script = 'console.log("one"); console.log("two 2"); process.stdin.on("data", (d) => console.log("got " + d.toString().trim()));';
  const p = a.spawn([process.execPath, '-e', script]);
  assert.equal((await p.waitForLine(/two (\d)/))[1], '2');
  p.send('ping');
  await p.waitForLine(/^got ping$/);
  // Earlier lines are not returned twice.
  await assert.rejects(p.waitForLine(/one/, 200), /timed out/);

  const quick = a.spawn([process.execPath, '-e', 'console.error("bye"); process.exit(3)']);
  await assert.rejects(quick.waitForLine(/never/), /exit 3.*bye/s);
  assert.equal((await quick.exited).code, 3);

  await net.destroy();
  assert.notEqual((await p.exited).signal, null, 'destroy stopped the long-running process');
  assert.ok(!(await namespaces()).includes('tt4-h2-a'));
});

test('leftovers of a crashed run with the same prefix are removed, processes included', { skip }, async (t) => {
  await run(['ip', 'netns', 'add', 'tt4-h3-stale']);
  const stale = spawn('ip', ['netns', 'exec', 'tt4-h3-stale', 'sleep', '300'], { stdio: 'ignore' });
  const exited = once(stale, 'exit');
  await once(stale, 'spawn');
  // Wait until the sleep is really inside the namespace (ip execs into it).
  await run(['sh', '-c', `until ip netns pids tt4-h3-stale | grep -qx ${stale.pid}; do sleep 0.02; done`], { timeoutMs: 5000 });
  await Netns.create('tt4-h3', t);
  assert.ok(!(await namespaces()).includes('tt4-h3-stale'));
  assert.deepEqual(await exited, [null, 'SIGKILL']);
});
