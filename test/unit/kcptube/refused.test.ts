/**
 * tstier-kcptube with a destination that refuses: client and server as processes on loopback.
 * Every connection ends at once (the application sees EOF or RST), the server logs the cause once,
 * and the client's descriptors (a UDP socket per tunnel) go back to their baseline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertLoggedOnce, attempts, eventually, fdCount, freePort, startProc } from '../../interop/harness.js';

const BIN = fileURLToPath(new URL('../../../../bin/tstier-kcptube', import.meta.url));
const CRYPT = 'encryption_algorithm=chacha20\nencryption_password=refused\n';
const ATTEMPTS = 300;
/** Each connection is its own KCP session here (kcptun's share one), so fewer open at once. */
const BATCH = 20;
const END_WITHIN_MS = 1000;
/** A finished tunnel waits for its last bytes to be acknowledged, then its socket lingers 1 s. */
const SETTLE_TRIES = 300;

test(`refused destination: ${ATTEMPTS} connections each end within ${END_WITHIN_MS} ms, logged once, no descriptor kept`, { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kcptube-refused-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const refusedPort = await freePort(); // nothing listens here
  const serverPort = await freePort();
  const clientPort = await freePort();
  writeFileSync(join(dir, 'server.conf'), `mode=server\nlisten_on=127.0.0.1\nlisten_port=${serverPort}\ndestination_address=127.0.0.1\ndestination_port=${refusedPort}\n${CRYPT}`);
  writeFileSync(join(dir, 'client.conf'), `mode=client\nlisten_on=127.0.0.1\nlisten_port=${clientPort}\ndestination_address=127.0.0.1\ndestination_port=${serverPort}\n${CRYPT}`);
  const server = startProc(process.execPath, [BIN, join(dir, 'server.conf')]);
  const client = startProc(process.execPath, [BIN, join(dir, 'client.conf')]);
  t.after(async () => {
    await client.kill();
    await server.kill();
  });
  await server.waitFor('tstier-kcptube ready');
  await client.waitFor('tstier-kcptube ready');
  const baseline = fdCount(client);
  const tally = await attempts(clientPort, ATTEMPTS, END_WITHIN_MS, BATCH);
  assert.equal(tally.eof + tally.rst, ATTEMPTS, `every connection reached the client and ended: ${JSON.stringify(tally)}`);
  assert.ok(await eventually(() => fdCount(client) <= baseline, SETTLE_TRIES),
    `client descriptors back to ${baseline}: ${fdCount(client)}`);
  assertLoggedOnce(server.output(), /connect 127\.0\.0\.1:\d+: connect ECONNREFUSED 127\.0\.0\.1:\d+/);
});
