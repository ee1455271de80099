/** The systemd unit: the directives that matter are there, and systemd itself accepts the file. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const UNIT = fileURLToPath(new URL('../../../systemd/easytier@.service', import.meta.url));
const CORE = fileURLToPath(new URL('../../../bin/easytier-core', import.meta.url));
const ANALYZE = '/usr/bin/systemd-analyze';
const text = readFileSync(UNIT, 'utf8');
const directive = (name: string): string[] =>
  text.split('\n').filter((l) => l.startsWith(`${name}=`)).map((l) => l.slice(name.length + 1));

describe('systemd/easytier@.service', () => {
  it('runs the instance config, restarts always, keeps only network capabilities', () => {
    assert.deepEqual(directive('ExecStart'), ['/usr/local/bin/easytier-core -c /etc/easytier/%i.toml']);
    assert.deepEqual(directive('Restart'), ['always']);
    assert.deepEqual(directive('CapabilityBoundingSet'), ['CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE']);
    assert.deepEqual(directive('AmbientCapabilities'), directive('CapabilityBoundingSet'));
    assert.deepEqual(directive('DeviceAllow'), ['/dev/net/tun rw']);
    assert.deepEqual(directive('DevicePolicy'), ['closed']);
    assert.deepEqual(directive('NoNewPrivileges'), ['yes']);
    assert.deepEqual(directive('ProtectSystem'), ['strict']);
  });

  it('does not restart after a start-up error (exit 2), gives up on a crash loop, and is bounded', () => {
    assert.deepEqual(directive('RestartPreventExitStatus'), ['2']);
    assert.deepEqual(directive('StartLimitIntervalSec'), ['300']);
    assert.deepEqual(directive('StartLimitBurst'), ['10']);
    assert.deepEqual(directive('MemoryMax'), ['1G']);
    assert.deepEqual(directive('TasksMax'), ['64']);
    assert.deepEqual(directive('SystemCallFilter'), ['@system-service pkey_alloc pkey_free pkey_mprotect']);
    assert.deepEqual(directive('SystemCallErrorNumber'), ['EPERM']);
  });

  it('systemd-analyze verify accepts it', { skip: existsSync(ANALYZE) ? false : 'no systemd-analyze' }, async (t) => {
    // verify checks that ExecStart exists; point it at this checkout's binary instead of /usr/local/bin.
    const dir = mkdtempSync(join(tmpdir(), 'tstier-unit-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const unit = join(dir, 'easytier@test.service');
    writeFileSync(unit, text.replace('/usr/local/bin/easytier-core', CORE));
    const result = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(ANALYZE, ['verify', unit], { timeout: 30_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, out: stdout + stderr }));
    });
    assert.equal(result.code, 0, result.out);
    assert.equal(result.out.trim(), '', result.out);
  });
});
