/** The real easytier-core binary as a child process: config errors, --help, and (once the node exists) a full run. */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const CORE = fileURLToPath(new URL('../../../bin/easytier-core', import.meta.url));
const CLI = fileURLToPath(new URL('../../../bin/easytier-cli', import.meta.url));
// daemon/node.ts is the peer helper's; the lifecycle tests need it built.
const NODE_BUILT = existsSync(fileURLToPath(new URL('../../daemon/node.js', import.meta.url)));

interface Run { code: number | null; stdout: string; stderr: string }

function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }));
  });
}

const oneLine = (text: string): string[] => text.trimEnd().split('\n');

describe('easytier-core command line', () => {
  it('a bad flag value: exit 2, one line naming the flag', async () => {
    const r = await run(CORE, ['--mtu', 'abc']);
    assert.equal(r.code, 2);
    assert.deepEqual(oneLine(r.stderr), ['easytier-core: --mtu: must be an integer in 576..9000, got "abc"']);
  });
  it('an unknown flag and a bad env value: exit 2, one line each', async () => {
    const flag = await run(CORE, ['--frobnicate']);
    assert.equal(flag.code, 2);
    assert.deepEqual(oneLine(flag.stderr), ['easytier-core: --frobnicate: unknown flag (see --help)']);
    const env = await run(CORE, [], { ET_IPV4: 'not-an-ip' });
    assert.equal(env.code, 2);
    assert.equal(oneLine(env.stderr).length, 1);
    assert.match(env.stderr, /^easytier-core: ET_IPV4: /);
  });
  it('--help prints usage and exits 0', async () => {
    const r = await run(CORE, ['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: easytier-core/);
    assert.match(r.stdout, /--enable-kcp-proxy/);
  });
});

describe('easytier-core lifecycle', { skip: NODE_BUILT ? false : 'daemon/node.ts not built yet' }, () => {
  it('starts, serves the cli, and exits 0 on SIGTERM', async (t) => {
    const core = spawn(process.execPath, [CORE, '--no-tun', '--no-listener', '-r', '127.0.0.1:0',
      '--hostname', 'lifecycle-test', '--network-name', 'lifecycle-net'], { stdio: ['ignore', 'ignore', 'pipe'] });
    t.after(() => { if (core.exitCode === null) core.kill('SIGKILL'); });
    let stderr = '';
    const portal = await new Promise<string>((resolve, reject) => {
      core.stderr.setEncoding('utf8');
      core.stderr.on('data', (chunk: string) => {
        stderr += chunk;
        const m = /rpc portal listening on (\S+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      core.once('exit', (code) => reject(new Error(`easytier-core exited ${code}: ${stderr}`)));
    });
    const node = await run(CLI, ['-p', portal, '-o', 'json', 'node']);
    assert.equal(node.code, 0, node.stderr);
    const [info] = JSON.parse(node.stdout) as Record<string, unknown>[];
    assert.equal(info!['hostname'], 'lifecycle-test');
    assert.equal(info!['network_name'], 'lifecycle-net');
    const proxy = await run(CLI, ['-p', portal, '-o', 'json', 'proxy']);
    assert.equal(proxy.code, 0, proxy.stderr);
    assert.deepEqual(JSON.parse(proxy.stdout), []);

    const exited = once(core, 'exit');
    core.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /SIGTERM: shutting down/);
  });

  it('an rpc portal already in use: exit 2, one line naming rpc_portal', async (t) => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    t.after(() => squatter.close());
    const port = (squatter.address() as { port: number }).port;
    const r = await run(CORE, ['--no-tun', '--no-listener', '--log-level', 'error', '-r', `127.0.0.1:${port}`]);
    assert.equal(r.code, 2);
    assert.deepEqual(oneLine(r.stderr), [`easytier-core: rpc_portal: 127.0.0.1:${port} is already in use (another easytier-core? pick one with -r)`]);
  });
});
