/**
 * easytier-core failing to open its SOCKS5, port-forward or metrics listener: exit 2, one line
 * naming the flag or the forward. Runs in a private network namespace (`unshare -n`), where two of
 * our own listeners collide on one port.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const CORE = fileURLToPath(new URL('../../../bin/easytier-core', import.meta.url));
const ROOT = process.getuid?.() === 0;
const BASE = ['--log-level', 'error', '--no-tun', '--no-listener', '-r', '127.0.0.1:0', '-i', '10.144.1.1'];

function core(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const argv = ['unshare', '-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, CORE, ...BASE, ...args];
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { timeout: 20_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr }));
  });
}

describe('front-door listeners that cannot be opened', { skip: ROOT ? false : 'needs root (unshare -n)' }, () => {
  it('--socks5 on a port a port forward holds', async () => {
    const r = await core(['--port-forward', 'tcp://127.0.0.1:1080/10.144.1.2:80', '--socks5', '1080']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, 'easytier-core: --socks5: cannot listen on 127.0.0.1:1080: EADDRINUSE\n');
  });
  it('a second forward on the same local port', async () => {
    const r = await core(['--port-forward', 'udp://127.0.0.1:5353/10.144.1.2:53', '--port-forward', 'udp://127.0.0.1:5353/10.144.1.3:53']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, 'easytier-core: port forward udp://127.0.0.1:5353/10.144.1.3:53: cannot bind the local address: EADDRINUSE\n');
  });
  it('--metrics-listen on the SOCKS port', async () => {
    const r = await core(['--socks5', '1081', '--metrics-listen', '1081']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, 'easytier-core: --metrics-listen: cannot listen on 127.0.0.1:1081: EADDRINUSE\n');
  });
});
