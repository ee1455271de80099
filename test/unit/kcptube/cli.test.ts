/**
 * The tstier-kcptube command line, as a user runs it: --check-config lists every bad key of every
 * file and exits non-zero; good files pass; --try reaches a server (loopback) and exits 0, or
 * exits 1 when nothing answers; two configs run in one process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../../bin/tstier-kcptube', import.meta.url));

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Two distinct free UDP ports on loopback (bound together, then released). */
async function freePorts(): Promise<[number, number]> {
  const socks = [createSocket('udp4'), createSocket('udp4')];
  for (const s of socks) {
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
  }
  const ports = socks.map((s) => s.address().port) as [number, number];
  for (const s of socks) s.close();
  return ports;
}

test('--check-config names every bad key in every file and exits non-zero', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kcptube-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = join(dir, 'a.conf');
  const b = join(dir, 'b.conf');
  const good = join(dir, 'good.conf');
  writeFileSync(a, 'mode=client\nlisten_port=5000\ndestination_address=h\ndestination_port=1-2\nkcp=turbo\nfec=1:x\nblast=perhaps\n');
  writeFileSync(b, 'mode=server\nlisten_port=70000\ndestination_address=h\ndestination_port=9\nencryption_algorithm=AES-GCM\nwat=1\n');
  writeFileSync(good, 'mode=server\nlisten_port=3000-3010\ndestination_address=127.0.0.1\ndestination_port=9\n');
  const r = cli(['--check-config', a, b, good]);
  assert.notEqual(r.status, 0);
  for (const [file, key] of [[a, 'kcp'], [a, 'fec'], [a, 'blast'], [b, 'listen_port'], [b, 'encryption_password'], [b, 'wat']]) {
    assert.match(r.stderr, new RegExp(`${file}(:\\d+)?: ${key}: `), `${key} in ${file}`);
  }
  assert.doesNotMatch(r.stderr, /good\.conf/);
  const ok = cli(['--check-config', good]);
  assert.equal(ok.status, 0);
  assert.match(ok.stdout, /good\.conf: OK \(server\)/);
});

test('--try: reaches a running server and exits 0; exits 1 when nothing answers', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kcptube-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [port, port2] = await freePorts();
  const common = 'encryption_algorithm=chacha20\nencryption_password=t\n';
  const server = join(dir, 'server.conf');
  writeFileSync(server, `mode=server\nlisten_on=127.0.0.1\nlisten_port=${port}\ndestination_address=127.0.0.1\ndestination_port=9\n${common}`);
  const server2 = join(dir, 'server2.conf');
  writeFileSync(server2, `mode=server\nlisten_on=127.0.0.1\nlisten_port=${port2}\ndestination_address=127.0.0.1\ndestination_port=9\n${common}`);
  const client = join(dir, 'client.conf');
  writeFileSync(client, `mode=client\nlisten_on=127.0.0.1\nlisten_port=1\ndestination_address=127.0.0.1\ndestination_port=${port}\n${common}`);
  const client2 = join(dir, 'client2.conf');
  writeFileSync(client2, `mode=client\nlisten_on=127.0.0.1\nlisten_port=1\ndestination_address=127.0.0.1\ndestination_port=${port2}\n${common}`);
  // Two configs, one process.
  const proc = spawn(process.execPath, [BIN, server, server2], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => proc.kill());
  await new Promise<void>((resolve, reject) => {
    proc.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    proc.once('exit', () => reject(new Error('server exited')));
  });
  const r = cli(['--try', client]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`server reachable in \\d+ ms, its ports ${port}-${port}`));
  const r2 = cli(['--try', client2]);
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stdout, new RegExp(`its ports ${port2}-${port2}`));
  proc.kill();
  await once(proc, 'exit');
  const none = cli(['--try', client]);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /no answer from the server/);
});

test('a log_path where the log cannot be written is a one-line error naming it, exit status 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kcptube-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [port] = await freePorts();
  const conf = join(dir, 'server.conf');
  // /proc is an existing directory in which no file can be created, even by root.
  writeFileSync(conf, `mode=server\nlisten_on=127.0.0.1\nlisten_port=${port}\ndestination_address=127.0.0.1\ndestination_port=9\nlog_path=/proc\n`);
  const r = cli([conf]);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stdout, '', 'never reported ready');
  assert.match(r.stderr, /^tstier-kcptube: server\.conf: log_path: cannot write \/proc\/server_output\.log: ENOENT[^\n]*\n$/);
});
