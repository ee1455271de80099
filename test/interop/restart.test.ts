/**
 * tstier-kcptun after its server is killed and restarted at once: the client learns within the
 * smux keepalive timeout (30 s after the old server's last frame) that its session is dead, and the
 * next flow dials a new session. With kcp-go's rules both ends (kcptun 20210922) this took 87 s:
 * the new server opened a session for the old conversation that acknowledged everything and
 * delivered nothing, and its keepalive NOPs kept the client's smux alive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, runStream, SinkSource, startTstier, waitReady } from './harness.js';

/** kcptun's smux keepalive timeout, which the docs promise. */
const KEEPALIVE_TIMEOUT_MS = 30_000;
/** A new session's dial and one small flow, on a shared CPU. */
const SLACK_MS = 3000;

test(`after a server restart a new flow works within the ${KEEPALIVE_TIMEOUT_MS / 1000} s keepalive timeout`, { timeout: 60_000 }, async (t) => {
  const target = new SinkSource();
  const tport = await target.listen();
  const sport = await freePort();
  const cport = await freePort();
  const serverArgs = ['-l', `127.0.0.1:${sport}`, '-t', `127.0.0.1:${tport}`, '--key', 'restart'];
  let server = startTstier('server', serverArgs);
  const client = startTstier('client', ['-l', `127.0.0.1:${cport}`, '-r', `127.0.0.1:${sport}`, '--key', 'restart']);
  t.after(async () => {
    await client.kill();
    await server.kill();
    await target.close();
  });
  await waitReady(server);
  await waitReady(client);
  await runStream(cport, 1, 1000, 1000);
  const oldConv = /remote address: \S+ conv: (\d+)/.exec(server.output())![1]!;

  server.child.kill('SIGKILL');
  await server.exited;
  const killedAt = performance.now();
  server = startTstier('server', serverArgs);
  await waitReady(server);

  // Flows opened while the client still trusts its dead session end when it gives up on it.
  const deadline = killedAt + KEEPALIVE_TIMEOUT_MS + SLACK_MS;
  let id = 2;
  let failed = 0;
  for (;;) {
    const left = deadline - performance.now();
    assert.ok(left > 0, `no flow worked within ${KEEPALIVE_TIMEOUT_MS + SLACK_MS} ms of the restart (${failed} failed)`);
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([
      runStream(cport, id++, 1000, 1000).then(() => true, () => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), left))),
    ]);
    clearTimeout(timer);
    if (ok) break;
    failed++;
  }
  const took = performance.now() - killedAt;
  assert.ok(took <= KEEPALIVE_TIMEOUT_MS + SLACK_MS, `took ${Math.round(took)} ms`);
  assert.match(client.output(), /session closed: smux: keepalive timeout/);
  assert.doesNotMatch(server.output(), new RegExp(`conv: ${oldConv}\\b`), 'the new server opened no session for the old conversation');
  assert.match(server.output(), /remote address: \S+ conv: \d+/, 'but one for the new');
});
