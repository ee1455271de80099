/**
 * Interop with Debian's kcptun 20210922 (kcptun-client / kcptun-server) on loopback.
 *
 * Every run moves 16 MiB up and 16 MiB down on 50 concurrent streams, checked with sha256 at both
 * ends. Together the runs cover all 13 ciphers of the 2021 binary and every combination of FEC
 * on/off × compression on/off × smux v1/v2, alternating which side is ours.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import {
  connectWithRetry, freePort, SinkSource, snmpOf, startKcptun, startTstier, transferAndCheck, waitReady, type Proc,
} from './harness.js';

const MIB = 1 << 20;
const STREAMS = 50;

interface Run {
  crypt: string;
  /** Which side is ours. */
  ours: 'client' | 'server';
  fec: boolean;
  comp: boolean;
  smux: 1 | 2;
}

const RUNS: Run[] = [
  { crypt: 'aes', ours: 'client', fec: true, comp: true, smux: 1 },
  { crypt: 'aes-128', ours: 'server', fec: true, comp: true, smux: 1 },
  { crypt: 'aes-192', ours: 'client', fec: false, comp: false, smux: 1 },
  { crypt: 'salsa20', ours: 'server', fec: false, comp: false, smux: 1 },
  { crypt: 'blowfish', ours: 'client', fec: true, comp: false, smux: 2 },
  { crypt: 'twofish', ours: 'server', fec: true, comp: false, smux: 2 },
  { crypt: 'cast5', ours: 'client', fec: false, comp: true, smux: 2 },
  { crypt: '3des', ours: 'server', fec: false, comp: true, smux: 2 },
  { crypt: 'tea', ours: 'client', fec: true, comp: true, smux: 2 },
  { crypt: 'xtea', ours: 'server', fec: true, comp: true, smux: 2 },
  { crypt: 'xor', ours: 'client', fec: false, comp: false, smux: 2 },
  { crypt: 'sm4', ours: 'server', fec: true, comp: false, smux: 1 },
  { crypt: 'none', ours: 'client', fec: false, comp: true, smux: 1 },
];

function flags(r: Run, key: string): string[] {
  const f = ['--key', key, '--crypt', r.crypt, '--smuxver', String(r.smux), '--quiet'];
  if (!r.fec) f.push('--ds', '0', '--ps', '0');
  if (!r.comp) f.push('--nocomp');
  return f;
}

/** Starts target, server and client for one run; returns what the test needs and a cleanup. */
async function setup(r: Run, t: { after(fn: () => Promise<void>): void }) {
  const target = new SinkSource();
  const procs: Proc[] = [];
  t.after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    await target.close();
  });
  const tport = await target.listen();
  const sport = await freePort();
  const cport = await freePort();
  const serverArgs = ['-l', `127.0.0.1:${sport}`, '-t', `127.0.0.1:${tport}`, ...flags(r, 'interop-key')];
  const clientArgs = ['-l', `127.0.0.1:${cport}`, '-r', `127.0.0.1:${sport}`, ...flags(r, 'interop-key')];
  const server = r.ours === 'server' ? startTstier('server', serverArgs) : startKcptun('server', serverArgs);
  procs.push(server);
  const client = r.ours === 'client' ? startTstier('client', clientArgs) : startKcptun('client', clientArgs);
  procs.push(client);
  await waitReady(server);
  await waitReady(client);
  return { target, server, client, sport, cport, procs };
}

for (const r of RUNS) {
  const name = `${r.ours === 'client' ? 'tstier client → kcptun-server' : 'kcptun-client → tstier server'}: ` +
    `crypt ${r.crypt}, FEC ${r.fec ? 'on' : 'off'}, compression ${r.comp ? 'on' : 'off'}, smux v${r.smux}`;
  test(name, { timeout: 60_000 }, async (t) => {
    const { target, cport, server, client } = await setup(r, t);
    const problems = await transferAndCheck(cport, target, STREAMS, 16 * MIB, 16 * MIB);
    assert.deepEqual(problems, []);
    const ours = r.ours === 'server' ? server : client;
    const snmp = await snmpOf(ours);
    assert.ok(snmp.BytesReceived! >= 16 * MIB, `our side read ${snmp.BytesReceived} bytes from KCP`);
    // kcptun's own sm4 (tjfoc/gmsm) corrupts a few datagrams under load: kcptun-server counts
    // CRC errors from kcptun-client too. Every other cipher must be clean.
    if (r.crypt !== 'sm4') assert.equal(snmp.InCsumErrors, 0);
  });
}

test('forged datagrams and a wrongly keyed kcptun-client are counted and dropped; the server keeps serving', { timeout: 60_000 }, async (t) => {
  const r: Run = { crypt: 'aes', ours: 'server', fec: true, comp: true, smux: 1 };
  const { target, cport, sport, server, procs } = await setup(r, t);
  // Garbage of every length up to 1500 bytes, from one socket.
  const udp = createSocket('udp4');
  t.after(() => new Promise<void>((res) => udp.close(() => res())));
  const FORGED = 300;
  for (let i = 0; i < FORGED; i++) {
    await new Promise<void>((res, rej) => udp.send(randomBytes(i * 5), sport, '127.0.0.1', (e) => (e ? rej(e) : res())));
  }
  // A kcptun-client with another key: its datagrams fail the CRC after decryption.
  const wrongPort = await freePort();
  const wrong = startKcptun('client', ['-l', `127.0.0.1:${wrongPort}`, '-r', `127.0.0.1:${sport}`, ...flags(r, 'not-the-key')]);
  procs.push(wrong);
  await waitReady(wrong);
  const s = await connectWithRetry(wrongPort);
  s.on('error', () => undefined);
  s.write(randomBytes(1000));
  // The server counts every forged datagram (each is too short or fails the CRC) and the wrongly
  // keyed ones; wait until the wrong client's first datagrams are counted too.
  let snmp = await snmpOf(server);
  for (let i = 0; i < 100 && snmp.InCsumErrors! + snmp.InErrs! < FORGED + 1; i++) {
    await new Promise((res) => setTimeout(res, 50));
    snmp = await snmpOf(server);
  }
  s.destroy();
  assert.ok(snmp.InCsumErrors! + snmp.InErrs! >= FORGED + 1, JSON.stringify(snmp));
  assert.equal(snmp.CurrEstab, 0, 'no session was opened by forged or wrongly keyed datagrams');
  // Still serving the right key.
  const problems = await transferAndCheck(cport, target, 10, 2 * MIB, 2 * MIB, 1000);
  assert.deepEqual(problems, []);
  assert.equal(server.child.exitCode, null);
});

test('bad flags, an unwritable --log and a taken port are one-line errors naming them, exit status 2', async () => {
  const cases: [string[], RegExp][] = [
    [['client', '--bogus'], /--bogus/],
    [['server', '--mtu', 'huge'], /--mtu/],
    [['client', '--crypt', 'rot13'], /--crypt/],
    [['server', '--smuxver', '7'], /--smuxver/],
    // kcptun exits when it cannot open its --log; a log silently going nowhere would be worse.
    [['client', '--log', '/proc/tstier-kcptun.log'], /^tstier-kcptun: --log: cannot open \/proc\/tstier-kcptun\.log: ENOENT/],
    [['server', '--log', '/'], /^tstier-kcptun: --log: cannot open \/: EISDIR/],
  ];
  for (const [args, re] of cases) {
    const p = startTstier(args[0] as 'client' | 'server', args.slice(1));
    const code = await p.exited;
    assert.equal(code, 2, args.join(' '));
    const lines = p.output().trim().split('\n');
    assert.equal(lines.length, 1, p.output());
    assert.match(lines[0]!, re);
  }
  const taken = createSocket('udp4');
  const port = await new Promise<number>((res) => taken.bind(0, '127.0.0.1', () => res(taken.address().port)));
  try {
    const p = startTstier('server', ['-l', `127.0.0.1:${port}`, '-t', '127.0.0.1:9']);
    assert.equal(await p.exited, 2);
    assert.match(p.output(), /port already in use/);
  } finally {
    taken.close();
  }
  const tcp = createServer();
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  try {
    const p = startTstier('client', ['-l', `127.0.0.1:${(tcp.address() as { port: number }).port}`, '-r', '127.0.0.1:9']);
    assert.equal(await p.exited, 2);
    assert.match(p.output(), /port already in use: tcp/);
  } finally {
    tcp.close();
  }
});
