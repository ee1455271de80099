/**
 * tstier-kcptun with a target that refuses: every stream ends at once (the application sees EOF or
 * RST), nothing leaks on the client, and a client out of descriptors recovers once the target is back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import {
  freePort, SinkSource, startProc, startTstier, transferAndCheck, TSTIER_KCPTUN, waitReady, type Proc,
} from './harness.js';

const ATTEMPTS = 2000;
const BATCH = 100;
/** The application must learn that its stream is over within this. */
const END_WITHIN_MS = 1000;
/** Descriptors the client may hold above its baseline once the attempts are over. */
const FD_SLACK = 4;

/** How one application connection ended. */
type Ending = 'eof' | 'rst' | 'refused';

/** Connects, sends a line, and resolves with how the connection ended; rejects if it is still open after `ms`. */
function attempt(port: number, ms: number): Promise<Ending> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`still open after ${ms} ms`));
    }, ms);
    const done = (how: Ending): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(how);
    };
    s.on('connect', () => s.write('hello\n'));
    s.on('data', () => undefined);
    s.on('end', () => done('eof'));
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'refused' : 'rst'));
    s.on('close', () => done('eof'));
  });
}

/** `n` attempts, `BATCH` at a time; returns how many ended each way. */
async function attempts(port: number, n: number): Promise<Record<Ending, number>> {
  const tally: Record<Ending, number> = { eof: 0, rst: 0, refused: 0 };
  for (let i = 0; i < n; i += BATCH) {
    const ends = await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, () => attempt(port, END_WITHIN_MS)));
    for (const e of ends) tally[e]++;
  }
  return tally;
}

function fdCount(p: Proc): number {
  return readdirSync(`/proc/${p.child.pid}/fd`).length;
}

/** Polls `check` every 50 ms, at most `tries` times (descriptor counts have no event to wait on). */
async function eventually(check: () => boolean, tries = 100): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

async function tunnel(t: { after(fn: () => Promise<void> | void): void }, clientPrefix: string[] = []) {
  const refusedPort = await freePort(); // nothing listens here
  const sport = await freePort();
  const cport = await freePort();
  const flags = ['--key', 'refused', '--quiet'];
  const server = startTstier('server', ['-l', `127.0.0.1:${sport}`, '-t', `127.0.0.1:${refusedPort}`, ...flags]);
  const clientArgs = [TSTIER_KCPTUN, 'client', '-l', `127.0.0.1:${cport}`, '-r', `127.0.0.1:${sport}`, ...flags];
  const client = clientPrefix.length > 0
    ? startProc(clientPrefix[0]!, [...clientPrefix.slice(1), process.execPath, ...clientArgs])
    : startProc(process.execPath, clientArgs);
  t.after(async () => {
    await client.kill();
    await server.kill();
  });
  await waitReady(server);
  await waitReady(client);
  return { server, client, cport, refusedPort };
}

test(`refused target: each stream ends within ${END_WITHIN_MS} ms, and after ${ATTEMPTS} refusals the client holds no more descriptors`, { timeout: 120_000 }, async (t) => {
  const { server, client, cport } = await tunnel(t);
  // Warm up: the first attempt dials the session and its UDP socket, which stay.
  assert.equal(await attempt(cport, END_WITHIN_MS), 'eof', 'the application sees the stream end');
  await server.waitFor(/dial 127\.0\.0\.1:\d+: connect ECONNREFUSED/);
  const baseline = fdCount(client);
  const tally = await attempts(cport, ATTEMPTS);
  assert.equal(tally.eof + tally.rst, ATTEMPTS, `every attempt reached the client and ended: ${JSON.stringify(tally)}`);
  assert.ok(await eventually(() => fdCount(client) <= baseline + FD_SLACK),
    `client descriptors back to baseline ${baseline} (+${FD_SLACK}): ${fdCount(client)}`);
  assert.equal(server.output().match(/dial 127\.0\.0\.1:\d+: connect ECONNREFUSED/g)?.length, 1,
    'the refusal is logged once, not per stream');
});

test('a client out of descriptors (nofile 64) keeps serving, logs why, and recovers once the target is back', { timeout: 120_000 }, async (t) => {
  const { server, client, cport, refusedPort } = await tunnel(t, ['prlimit', '--nofile=64:64']);
  const tally = await attempts(cport, 500);
  assert.equal(tally.refused, 0, `the client kept listening: ${JSON.stringify(tally)}`);
  await client.waitFor(/accept: connection from .* closed: \d+ open, the most the descriptor limit allows/);
  assert.equal(server.output().match(/ECONNREFUSED/g)?.length, 1, 'the server logged the refusal once');
  // The target comes back on the refused port: a flow moves byte-exact.
  const target = new SinkSource();
  t.after(() => target.close());
  await target.listen(refusedPort);
  assert.deepEqual(await transferAndCheck(cport, target, 4, 256 * 1024, 256 * 1024), []);
  assert.ok(fdCount(client) < 64);
});
