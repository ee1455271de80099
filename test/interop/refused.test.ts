/**
 * tstier-kcptun with a target that refuses: every stream ends at once (the application sees EOF or
 * RST), nothing leaks on the client, and a client out of descriptors recovers once the target is back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertLoggedOnce, attempt, attempts, eventually, fdCount, freePort, SinkSource, startProc, startTstier,
  transferAndCheck, TSTIER_KCPTUN, waitReady,
} from './harness.js';

const ATTEMPTS = 2000;
/** The application must learn that its stream is over within this. */
const END_WITHIN_MS = 1000;
/** Descriptors the client may hold above its baseline once the attempts are over. */
const FD_SLACK = 4;

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
  const tally = await attempts(cport, ATTEMPTS, END_WITHIN_MS);
  assert.equal(tally.eof + tally.rst, ATTEMPTS, `every attempt reached the client and ended: ${JSON.stringify(tally)}`);
  assert.ok(await eventually(() => fdCount(client) <= baseline + FD_SLACK),
    `client descriptors back to baseline ${baseline} (+${FD_SLACK}): ${fdCount(client)}`);
  assertLoggedOnce(server.output(), /dial 127\.0\.0\.1:\d+: connect ECONNREFUSED 127\.0\.0\.1:\d+/);
});

test('a client out of descriptors (nofile 64) keeps serving, logs why, and recovers once the target is back', { timeout: 120_000 }, async (t) => {
  const { server, client, cport, refusedPort } = await tunnel(t, ['prlimit', '--nofile=64:64']);
  const tally = await attempts(cport, 500, END_WITHIN_MS);
  assert.equal(tally.refused, 0, `the client kept listening: ${JSON.stringify(tally)}`);
  await client.waitFor(/accept: connection from .* closed: \d+ open, the most the descriptor limit allows/);
  assertLoggedOnce(server.output(), /dial 127\.0\.0\.1:\d+: connect ECONNREFUSED 127\.0\.0\.1:\d+/);
  // The target comes back on the refused port: a flow moves byte-exact.
  const target = new SinkSource();
  t.after(() => target.close());
  await target.listen(refusedPort);
  assert.deepEqual(await transferAndCheck(cport, target, 4, 256 * 1024, 256 * 1024), []);
  assert.ok(fdCount(client) < 64);
});
