/**
 * kcptun features beyond the byte path: a lossy path (the impairment relay), multiport listen/dial,
 * --conn with --autoexpire and the scavenger, -c JSON config, --snmplog and --log files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startRelay } from '../../bench/relay.js';
import {
  connectWithRetry, freePort, parseSnmpDump, SinkSource, snmpOf, startKcptun, startTstier, transferAndCheck, waitReady, type Proc,
} from './harness.js';

const MIB = 1 << 20;

/** Polls `check` every 50 ms, at most `tries` times (for effects that have no event to wait on). */
async function eventually(check: () => boolean | Promise<boolean>, tries = 200): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** A sink/source target, a list of processes killed after the test, and free server/client ports. */
async function prepare(t: { after(fn: () => Promise<void> | void): void }) {
  const target = new SinkSource();
  const procs: Proc[] = [];
  t.after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    await target.close();
  });
  return { target, procs, tport: await target.listen(), sport: await freePort(), cport: await freePort() };
}

test('kcptun-client → tstier server through the relay at 5% loss each way with jitter: 16 MiB each way on 50 streams', { timeout: 90_000 }, async (t) => {
  const { target, procs, tport, sport, cport } = await prepare(t);
  const relay = await startRelay({
    targetHost: '127.0.0.1', targetPort: sport, seed: 11,
    up: { loss: 0.05, delay: 3, jitter: 2 }, down: { loss: 0.05, delay: 3, jitter: 2 },
  });
  t.after(() => relay.close());
  const flags = ['--key', 'lossy', '--quiet', '--mode', 'fast2'];
  const server = startTstier('server', ['-l', `127.0.0.1:${sport}`, '-t', `127.0.0.1:${tport}`, ...flags]);
  procs.push(server);
  const client = startKcptun('client', ['-l', `127.0.0.1:${cport}`, '-r', `127.0.0.1:${relay.port}`, '--sndwnd', '1024', ...flags]);
  procs.push(client);
  await waitReady(server);
  await waitReady(client);
  assert.deepEqual(await transferAndCheck(cport, target, 50, 16 * MIB, 16 * MIB), []);
  assert.ok(relay.up.dropped > 0 && relay.down.dropped > 0, 'the relay dropped datagrams both ways');
  const snmp = await snmpOf(server);
  assert.ok(snmp.RetransSegs! > 0, 'losses were repaired by retransmission');
  assert.ok(snmp.FECRecovered! > 0, 'and by FEC');
});

test('multiport: the server listens on every port of a range; clients dial random ports of it; -c JSON config; --ratelimit', { timeout: 60_000 }, async (t) => {
  const { target, procs, tport, cport } = await prepare(t);
  // Find 4 consecutive free ports.
  let base = 0;
  for (let i = 0; i < 50 && !base; i++) {
    const p = await freePort();
    if (p + 3 > 65535) continue;
    const probes = await Promise.all([1, 2, 3].map((d) => new Promise<boolean>((res) => {
      const s = createSocket('udp4');
      s.once('error', () => res(false));
      s.bind(p + d, '127.0.0.1', () => s.close(() => res(true)));
    })));
    if (probes.every(Boolean)) base = p;
  }
  assert.ok(base > 0);
  const range = `127.0.0.1:${base}-${base + 3}`;
  const dir = mkdtempSync(join(tmpdir(), 'kcptun-json-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cfgPath = join(dir, 'client.json');
  // Keys in odd case: Go's encoding/json matches them case-insensitively.
  writeFileSync(cfgPath, JSON.stringify({ LocalAddr: `127.0.0.1:${cport}`, remoteaddr: range, Key: 'multi', crypt: 'salsa20', conn: 4, unknown: true }));
  // --ratelimit paces the server's datagrams; the transfer must stay byte-exact under it.
  const server = startTstier('server', ['-l', range, '-t', `127.0.0.1:${tport}`, '--key', 'multi', '--crypt', 'salsa20', '--quiet', '--ratelimit', '8000000']);
  procs.push(server);
  const client = startTstier('client', ['-c', cfgPath, '--quiet']);
  procs.push(client);
  await waitReady(server);
  await waitReady(client);
  assert.match(server.output(), new RegExp(`listening on: 127\\.0\\.0\\.1:${base}-${base + 3}`));
  // Every port of the range is taken by the server.
  for (let d = 0; d <= 3; d++) {
    const taken = await new Promise<boolean>((res) => {
      const s = createSocket('udp4');
      s.once('error', () => res(true));
      s.bind(base + d, '127.0.0.1', () => s.close(() => res(false)));
    });
    assert.ok(taken, `port ${base + d} is bound`);
  }
  assert.deepEqual(await transferAndCheck(cport, target, 20, 4 * MIB, 4 * MIB), []);
  const snmp = await snmpOf(client);
  assert.equal(snmp.ActiveOpens, 4, '--conn 4 dialled four sessions');
});

test('--autoexpire retires sessions for new streams and the scavenger closes them; --snmplog and --log files', { timeout: 60_000 }, async (t) => {
  const { target, procs, tport, sport, cport } = await prepare(t);
  const dir = mkdtempSync(join(tmpdir(), 'kcptun-files-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const snmpLayout = join(dir, 'snmp-20060102.log');
  const logFile = join(dir, 'client.log');
  const server = startTstier('server', ['-l', `127.0.0.1:${sport}`, '-t', `127.0.0.1:${tport}`, '--key', 'exp',
    '--snmplog', snmpLayout, '--snmpperiod', '1']);
  procs.push(server);
  const client = startTstier('client', ['-l', `127.0.0.1:${cport}`, '-r', `127.0.0.1:${sport}`, '--key', 'exp',
    '--autoexpire', '1', '--scavengettl', '1', '--log', logFile]);
  procs.push(client);
  await waitReady(server);
  assert.ok(
    await eventually(() => client.child.exitCode !== null || (existsSync(logFile) && readFileSync(logFile, 'utf8').includes('key derivation done')), 600),
    'client logs to --log',
  );
  assert.equal(client.child.exitCode, null, client.output());
  assert.deepEqual(await transferAndCheck(cport, target, 5, MIB, MIB, 1), []);
  // After the first session expired (1 s), new streams need a new session.
  const firstExpiry = Date.now() + 1100;
  await new Promise((r) => setTimeout(r, Math.max(0, firstExpiry - Date.now())));
  assert.deepEqual(await transferAndCheck(cport, target, 5, MIB, MIB, 100), []);
  const log = () => readFileSync(logFile, 'utf8');
  assert.match(log(), /stream opened/);
  // Two sessions dialled; the scavenger closes the expired one a second after its expiry.
  client.child.kill('SIGUSR1');
  assert.ok(await eventually(() => /ActiveOpens:2 /.test(log())), log());
  assert.ok(await eventually(() => {
    client.child.kill('SIGUSR1');
    return parseSnmpDump(log()).CurrEstab === 1;
  }), 'the scavenger closed the expired session');
  // --snmplog: kcptun's header, then rows with the server's counters.
  const d = new Date();
  const snmpPath = join(dir, `snmp-${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, '0')}${String(d.getDate()).padStart(2, '0')}.log`);
  const rows = (): string[] => (existsSync(snmpPath) ? readFileSync(snmpPath, 'utf8').trim().split('\n') : []);
  const passiveOpens = (): number => {
    const r = rows();
    return r.length < 2 ? 0 : Number(r.at(-1)!.split(',')[r[0]!.split(',').indexOf('PassiveOpens')]);
  };
  // Rows are cumulative: the newest one, written at most a period after the second dial, shows both.
  assert.ok(await eventually(() => passiveOpens() >= 2), rows().join('\n'));
  const [header, ...data] = rows();
  assert.ok(header!.startsWith('Unix,BytesSent,BytesReceived,MaxConn,ActiveOpens,PassiveOpens,CurrEstab,'));
  assert.equal(header!.split(',').length, 25);
  for (const row of data) assert.equal(row.split(',').length, 25, row);
});

/** Starts a tstier server (forwarding to tport) and client with defaults; returns the client's TCP port. */
async function startTstierPair(t: { after(fn: () => Promise<void>): void }, tport: number, key: string): Promise<number> {
  return startTstierPairFor(t, tport, key, () => undefined);
}

/** startTstierPair, also handing the client process to `onClient`. */
async function startTstierPairFor(
  t: { after(fn: () => Promise<void>): void },
  tport: number,
  key: string,
  onClient: (client: Proc) => void,
): Promise<number> {
  const sport = await freePort();
  const cport = await freePort();
  const server = startTstier('server', ['-l', `127.0.0.1:${sport}`, '-t', `127.0.0.1:${tport}`, '--key', key, '--quiet']);
  const client = startTstier('client', ['-l', `127.0.0.1:${cport}`, '-r', `127.0.0.1:${sport}`, '--key', key, '--quiet']);
  onClient(client);
  t.after(async () => {
    await Promise.all([server.kill(), client.kill()]);
  });
  await waitReady(server);
  await waitReady(client);
  return cport;
}

/** A TCP target that accepts one connection and reads nothing until resume(). */
class PausedTarget {
  private readonly server = createServer((s) => this.onConnection(s));
  private sock: Socket | undefined;
  private readonly hash = createHash('sha256');
  received = 0;
  private wanted = -1;
  private done: (() => void) | undefined;

  async listen(): Promise<number> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as { port: number }).port;
  }

  private onConnection(s: Socket): void {
    this.sock = s;
    s.pause();
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      this.hash.update(d);
      this.received += d.length;
      if (this.received === this.wanted) this.done?.();
    });
  }

  /** Starts reading; resolves with the sha256 once `total` bytes arrived. */
  resume(total: number): Promise<string> {
    this.wanted = total;
    const all = new Promise<void>((res) => (this.done = res));
    if (this.received === total) this.done!();
    this.sock!.resume();
    return all.then(() => this.hash.digest('hex'));
  }

  close(): void {
    this.sock?.destroy();
    this.server.close();
  }
}

test('back-pressure: while the target does not read, the tunnel stops taking bytes; then every byte arrives', { timeout: 60_000 }, async (t) => {
  const paused = new PausedTarget();
  t.after(() => paused.close());
  const cport = await startTstierPair(t, await paused.listen(), 'bp');
  const sock = await connectWithRetry(cport);
  sock.on('error', () => undefined);
  const sent = createHash('sha256');
  let sentBytes = 0;
  // Write until the tunnel stops draining: no 'drain' for 1.5 s (or, without back-pressure, the cap).
  const CAP = 256 * MIB;
  while (sentBytes < CAP) {
    const chunk = randomBytes(256 * 1024);
    sent.update(chunk);
    sentBytes += chunk.length;
    if (!sock.write(chunk)) {
      const drained = await Promise.race([
        once(sock, 'drain').then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 1500)),
      ]);
      if (!drained) break;
    }
  }
  // Kernel socket buffers on both TCP legs, smux's 4 MiB bucket and the KCP windows hold a few
  // tens of MiB at most; without back-pressure the tunnel would have taken the whole cap.
  assert.ok(sentBytes < 64 * MIB, `the tunnel took ${sentBytes} bytes while the target read nothing`);
  assert.ok(sentBytes > MIB);
  const digest = paused.resume(sentBytes);
  sock.end();
  assert.equal(await digest, sent.digest('hex'));
});

test('half-close: a client that shuts down its write side still gets the whole reply (tstier both ends)', { timeout: 60_000 }, async (t) => {
  // The target reads the request to EOF, then answers with its sha256 and 1 MiB, then closes.
  const reply = randomBytes(MIB);
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    const h = createHash('sha256');
    s.on('data', (d: Buffer) => h.update(d));
    s.on('end', () => {
      s.write(h.digest());
      s.end(reply);
    });
    s.on('error', () => undefined);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.after(() => srv.close());
  const cport = await startTstierPair(t, (srv.address() as { port: number }).port, 'hc');
  const request = randomBytes(3 * MIB);
  const sock = await connectWithRetry(cport);
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  const ended = once(sock, 'end');
  sock.end(request);
  await ended;
  const got = Buffer.concat(chunks);
  assert.equal(got.length, 32 + reply.length);
  assert.deepEqual(got.subarray(0, 32), createHash('sha256').update(request).digest());
  assert.ok(got.subarray(32).equals(reply));
  sock.destroy();
});

test('the client accepts datagrams only from the server it dialled (others count as InErrs)', { timeout: 60_000 }, async (t) => {
  const target = new SinkSource();
  t.after(() => target.close());
  let clientProc: Proc | undefined;
  const cport = await startTstierPairFor(t, await target.listen(), 'src', (client) => (clientProc = client));
  assert.deepEqual(await transferAndCheck(cport, target, 2, 64 * 1024, 64 * 1024, 1), []);
  // The client's session socket, found by its owner pid (it binds an ephemeral port per dial).
  const pid = clientProc!.child.pid!;
  const ss = execFileSync('ss', ['-uanpH'], { encoding: 'utf8' });
  const line = ss.split('\n').find((l) => l.includes(`pid=${pid},`));
  assert.ok(line, ss);
  const local = line.trim().split(/\s+/)[3]!; // State Recv-Q Send-Q Local:Port Peer:Port Process
  const port = Number(local.slice(local.lastIndexOf(':') + 1));
  const stranger = createSocket('udp4');
  t.after(() => new Promise<void>((res) => stranger.close(() => res())));
  const FORGED = 50;
  for (let i = 0; i < FORGED; i++) {
    await new Promise<void>((res) => stranger.send(randomBytes(100 + i), port, '127.0.0.1', () => res()));
  }
  assert.ok(await eventually(async () => (await snmpOf(clientProc!)).InErrs! >= FORGED), 'stranger datagrams counted');
  assert.deepEqual(await transferAndCheck(cport, target, 2, 64 * 1024, 64 * 1024, 10), []);
});

test('--closewait: a half-closed pair whose other side never ends is closed after the wait', { timeout: 60_000 }, async (t) => {
  // The target takes the connection and never answers nor closes.
  const held: Socket[] = [];
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    held.push(s);
    s.on('error', () => undefined);
    s.resume();
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.after(() => {
    held.forEach((s) => s.destroy());
    srv.close();
  });
  const { procs, sport, cport } = await prepare(t);
  const tport = (srv.address() as { port: number }).port;
  const server = startTstier('server', ['-l', `127.0.0.1:${sport}`, '-t', `127.0.0.1:${tport}`, '--key', 'cw', '--closewait', '1']);
  procs.push(server);
  const client = startTstier('client', ['-l', `127.0.0.1:${cport}`, '-r', `127.0.0.1:${sport}`, '--key', 'cw']);
  procs.push(client);
  await waitReady(server);
  await waitReady(client);
  const sock = await connectWithRetry(cport);
  sock.on('error', () => undefined);
  sock.on('data', () => undefined);
  const ended = once(sock, 'end');
  sock.end(randomBytes(1000)); // half-close: the target gets our FIN but never sends its own
  await ended; // the server gave up on the pair after --closewait and sent the stream's FIN
  assert.match(server.output(), /stream closed/);
});
