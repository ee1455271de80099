/**
 * tstier-kcptun with an unreachable target (namespace "tf14k-unreach": loopback only, so the
 * target's network has no route): every stream ends at once, as with a refused target
 * (test/interop/refused.test.ts), and the server says why, once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Netns, unavailableReason } from './lib/netns.js';

const SKIP = unavailableReason();
const KCPTUN = fileURLToPath(new URL('../../../bin/tstier-kcptun', import.meta.url));
const ATTEMPTS = 50;
const END_WITHIN_MS = 1000;

/** Connects ATTEMPTS times (after the client is up) and prints how each connection ended and when. */
const APP = `
import net from 'node:net';
const attempt = () => new Promise((resolve) => {
  const began = performance.now();
  const s = net.connect(12948, '127.0.0.1');
  const timer = setTimeout(() => { s.destroy(); resolve({ how: 'open', ms: ${END_WITHIN_MS} }); }, ${END_WITHIN_MS});
  const done = (how) => { clearTimeout(timer); s.destroy(); resolve({ how, ms: performance.now() - began }); };
  s.on('connect', () => s.write('hello\\n'));
  s.on('data', () => {});
  s.on('end', () => done('eof'));
  s.on('error', (e) => done(e.code));
  s.on('close', () => done('eof'));
});
for (let i = 0; i < 100; i++) {
  const r = await attempt();
  if (r.how !== 'ECONNREFUSED') break;
  await new Promise((r) => setTimeout(r, 50));
}
const results = await Promise.all(Array.from({ length: ${ATTEMPTS} }, attempt));
console.log(JSON.stringify(results));
`;

test('unreachable target: every stream ends within 1 s, and the cause is logged once', { skip: SKIP ?? false, timeout: 60_000 }, async (t) => {
  const net = await Netns.create('tf14k-unreach', t);
  const ns = await net.ns('a');
  const flags = ['--key', 'unreachable', '--quiet'];
  const server = ns.spawn([process.execPath, KCPTUN, 'server', '-l', '127.0.0.1:29900', '-t', '10.9.9.9:80', ...flags]);
  const client = ns.spawn([process.execPath, KCPTUN, 'client', '-l', '127.0.0.1:12948', '-r', '127.0.0.1:29900', ...flags]);
  // The app retries until the client listens; the client's first datagrams are retransmitted until the server is up.
  const out = await ns.exec([process.execPath, '--input-type=module', '-e', APP], { timeoutMs: 30_000 });
  const results = JSON.parse(out.stdout) as { how: string; ms: number }[];
  assert.equal(results.length, ATTEMPTS);
  for (const r of results) {
    assert.ok(r.how === 'eof' || r.how === 'ECONNRESET', `ended with EOF or RST: ${JSON.stringify(r)}`);
    assert.ok(r.ms < END_WITHIN_MS, `within ${END_WITHIN_MS} ms: ${JSON.stringify(r)}`);
  }
  assert.equal(server.stderr.match(/dial 10\.9\.9\.9:80: connect ENETUNREACH/g)?.length, 1, server.stderr);
  assert.equal(client.child.exitCode, null);
});
