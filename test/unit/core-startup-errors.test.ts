/**
 * The real easytier-core binary failing to start: every case exits 2 with exactly one line on
 * stderr naming the flag, file or listener at fault — no stack, no "internal error".
 * Cases that would touch interfaces run in a private network namespace (`unshare -n`) that dies
 * with the process.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

const CORE = fileURLToPath(new URL('../../../bin/easytier-core', import.meta.url));
const ROOT = process.getuid?.() === 0;
const dir = mkdtempSync(join(tmpdir(), 'tstier-startup-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const GARBAGE_ADDON = join(dir, 'broken.node');
writeFileSync(GARBAGE_ADDON, 'not an ELF file\n');

interface Run { code: number | null; stderr: string }

/**
 * Runs easytier-core (quiet: --log-level error), optionally in a fresh network namespace, and
 * optionally as user nobody without capabilities.
 */
function core(args: string[], opts: { env?: NodeJS.ProcessEnv; isolated?: boolean; nobody?: boolean } = {}): Promise<Run> {
  const unprivileged = opts.nobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'] : [];
  const argv = [...unprivileged, process.execPath, CORE, '--log-level', 'error', ...args];
  // A new namespace starts with loopback down, where the kernel lets any address be bound.
  const [bin, ...rest] = opts.isolated ? ['unshare', '-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', ...argv] : argv;
  return new Promise((resolve) => {
    execFile(bin!, rest, { env: { ...process.env, ...opts.env }, timeout: 20_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr }));
  });
}

/** Exit 2 and one line, which matches `line`. */
function failsWith(r: Run, line: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, line);
  assert.doesNotMatch(lines[0]!, /internal error|bug:|Error:/);
}

const NO_NODE = ['--no-tun', '--no-listener', '-r', '127.0.0.1:0'];

describe('easytier-core start-up errors: exit 2, one line naming the culprit', () => {
  it('a config file that is a device, a FIFO-like non-file, or too large', async () => {
    failsWith(await core(['-c', '/dev/zero']), /^easytier-core: --config-file: "\/dev\/zero" is not a regular file$/);
    failsWith(await core(['-c', dir]), /^easytier-core: --config-file: ".*" is not a regular file$/);
    const big = join(dir, 'big.toml');
    writeFileSync(big, `# ${'x'.repeat(1024 * 1024)}\n`);
    failsWith(await core([], { env: { ET_CONFIG_FILE: big } }), /^easytier-core: ET_CONFIG_FILE: ".*big\.toml" is \d+ bytes; a config file may have at most 1048576$/);
  });

  it('a network name over 1024 bytes, a hostname over 255', async () => {
    failsWith(await core([...NO_NODE, '--network-name', 'n'.repeat(1025)]),
      /^easytier-core: --network-name: must be at most 1024 bytes \(UTF-8\), got 1025$/);
    failsWith(await core([...NO_NODE, '--hostname', 'h'.repeat(256)]), /^easytier-core: --hostname: must be at most 255 bytes/);
  });

  it('-i that is no host address', async () => {
    for (const ip of ['255.255.255.255', '127.0.0.1', '0.0.0.0', '224.0.0.5', '10.20.30.0/24', '10.20.30.255', '10.20.0.0/16']) {
      failsWith(await core([...NO_NODE, '-i', ip]), new RegExp(`^easytier-core: -i: "${ip.replace(/\./g, '\\.')}" is `));
    }
  });

  it('a listener port already in use (UDP and TCP)', async (t) => {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const tcp = createServer();
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      udp.close();
      tcp.close();
    });
    const up = udp.address().port;
    const tp = (tcp.address() as { port: number }).port;
    failsWith(await core(['--no-tun', '-r', '127.0.0.1:0', '-l', `udp://127.0.0.1:${up}`]),
      new RegExp(`^easytier-core: listener udp://127\\.0\\.0\\.1:${up}: address already in use$`));
    failsWith(await core(['--no-tun', '-r', '127.0.0.1:0', '-l', `tcp://127.0.0.1:${tp}`]),
      new RegExp(`^easytier-core: listener tcp://127\\.0\\.0\\.1:${tp}: address already in use$`));
  });

  it('a listener address that is not on this host (EADDRNOTAVAIL)', { skip: ROOT ? false : 'unshare -n needs root' }, async () => {
    for (const scheme of ['udp', 'tcp']) {
      failsWith(await core(['--no-tun', '-l', `${scheme}://192.0.2.1:11010`], { isolated: true }),
        new RegExp(`^easytier-core: listener ${scheme}://192\\.0\\.2\\.1:11010: address not available on this host \\(EADDRNOTAVAIL\\)$`));
    }
  });

  it('a privileged listener port without CAP_NET_BIND_SERVICE (EACCES)', { skip: ROOT ? false : 'setpriv and unshare need root' }, async () => {
    for (const scheme of ['udp', 'tcp']) {
      failsWith(await core(['--no-tun', '-r', '127.0.0.1:0', '-l', `${scheme}://127.0.0.1:7`], { isolated: true, nobody: true }),
        new RegExp(`^easytier-core: listener ${scheme}://127\\.0\\.0\\.1:7: permission denied \\(EACCES; `));
    }
  });

  it('a corrupt .node addon (peer, TUN) or wasm module (smoltcp), named with the file', { skip: ROOT ? false : 'unshare -n needs root' }, async () => {
    failsWith(await core(NO_NODE, { env: { TSTIER_PEER_ADDON: GARBAGE_ADDON } }),
      /^easytier-core: peer addon .*broken\.node \(from TSTIER_PEER_ADDON\): cannot load: /);
    failsWith(await core(['--no-listener', '-i', '10.144.160.1'], { env: { TSTIER_TUN_ADDON: GARBAGE_ADDON }, isolated: true }),
      /^easytier-core: TUN addon .*broken\.node \(from TSTIER_TUN_ADDON\): cannot load: /);
    failsWith(await core(['--no-listener', '-r', '127.0.0.1:0', '-i', '10.144.160.1', '--enable-kcp-proxy', '--use-smoltcp'],
      { env: { TSTIER_SMOLTCP_WASM: GARBAGE_ADDON }, isolated: true }),
    /^easytier-core: smoltcp module .*broken\.node: cannot load: /);
  });
});
