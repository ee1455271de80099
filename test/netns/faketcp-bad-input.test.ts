/**
 * Fake TCP's bad input, in a namespace (names start with "tf12b") on its loopback:
 *  - without CAP_NET_RAW or CAP_NET_ADMIN (dropped with setpriv), `tstier-kcptun --tcp` and
 *    `easytier-core -l faketcp://` print one line naming the missing capability and exit 2;
 *  - a faketcp port a real TCP listener already holds: one clear line naming the port;
 *  - forged segments (no connection, broken checksum, short header) are counted and dropped, a SYN
 *    flood's pending handshakes stay bounded, and genuine datagrams keep flowing;
 *  - none of these leaves an nftables table of ours behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { CORE } from './lib/core.js';
import { TSTIER_KCPTUN } from '../interop/harness.js';

const SKIP = unavailableReason();
const FORGE = new URL('./fixtures/faketcp-forge.js', import.meta.url);

async function ourTables(ns: Namespace): Promise<string[]> {
  const r = await ns.exec(['nft', 'list', 'tables', 'inet']);
  return [...r.stdout.matchAll(/tstier_faketcp_\d+/g)].map((m) => m[0]);
}

/** Runs argv in ns to its end; exit code and stderr lines. */
async function runToEnd(ns: Namespace, argv: string[]): Promise<{ code: number | null; lines: string[] }> {
  const r = await ns.exec(argv, { allowFailure: true });
  return { code: r.code, lines: r.stderr.split('\n').filter((l) => l.trim() !== '') };
}

/** setpriv without one capability: dropped from the inheritable and bounding sets, so root's exec does not regain it. */
const without = (cap: string): string[] => ['setpriv', `--inh-caps=-${cap}`, `--bounding-set=-${cap}`];

test('fake TCP bad input: missing capabilities, a taken port, forged segments', { skip: SKIP ?? false, timeout: 60_000 }, async (t) => {
  const net = await Netns.create('tf12b', t);
  const ns = await net.ns('x');

  await t.test('without CAP_NET_RAW or CAP_NET_ADMIN: one line naming it, exit 2', async () => {
    for (const [cap, name] of [['net_raw', 'CAP_NET_RAW'], ['net_admin', 'CAP_NET_ADMIN']]) {
      const kcptun = await runToEnd(ns, [...without(cap!), process.execPath, TSTIER_KCPTUN, 'server', '--tcp', '-l', '127.0.0.1:4300', '-t', '127.0.0.1:9']);
      assert.equal(kcptun.code, 2, kcptun.lines.join('\n'));
      assert.equal(kcptun.lines.length, 1, kcptun.lines.join('\n'));
      assert.match(kcptun.lines[0]!, new RegExp(`--tcp: fake TCP needs the ${name} capability`));
      const core = await runToEnd(ns, [...without(cap!), process.execPath, CORE, '-l', 'faketcp://127.0.0.1:4300', '--no-tun']);
      assert.equal(core.code, 2, core.lines.join('\n'));
      assert.equal(core.lines.length, 1, core.lines.join('\n'));
      assert.match(core.lines[0]!, new RegExp(`listeners faketcp://127\\.0\\.0\\.1:4300: fake TCP needs the ${name} capability`));
    }
    assert.deepEqual(await ourTables(ns), []);
  });

  await t.test('a port a real TCP listener holds: a clear error naming it', async () => {
    const holder = ns.spawn(['python3', '-c',
      'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",4301)); s.listen(); print("listening", flush=True); sys.stdin.read()']);
    await holder.waitForLine(/listening/);
    const kcptun = await runToEnd(ns, [process.execPath, TSTIER_KCPTUN, 'server', '--tcp', '-l', '127.0.0.1:4301', '-t', '127.0.0.1:9']);
    assert.equal(kcptun.code, 2, kcptun.lines.join('\n'));
    assert.deepEqual(kcptun.lines, ['tstier-kcptun: --listen: tcp port 127.0.0.1:4301 is already used by another listener; fake TCP needs it for its handshakes']);
    const core = await runToEnd(ns, [process.execPath, CORE, '-l', 'faketcp://127.0.0.1:4301', '--no-tun']);
    assert.equal(core.code, 2, core.lines.join('\n'));
    assert.deepEqual(core.lines.filter((l) => l.startsWith('easytier-core:')),
      ['easytier-core: listener faketcp://127.0.0.1:4301: tcp port 127.0.0.1:4301 is already used by another listener; fake TCP needs it for its handshakes']);
    await holder.stop();
    assert.deepEqual(await ourTables(ns), [], 'the failed starts removed their tables');
  });

  await t.test('forged segments are counted and dropped, a SYN flood stays bounded; genuine datagrams still flow', async () => {
    const p = ns.node(FORGE, ['4302']);
    const done = await p.waitForEvent<{ echoed: number; pending: number; listener: Record<string, number>; client: Record<string, number> }>('done', 30_000);
    assert.equal(done.echoed, 2);
    assert.ok(done.pending > 1000 && done.pending <= 1024, `a SYN flood's pending handshakes fill the table and stay bounded: ${done.pending}`);
    assert.equal(done.listener.badChecksum, 1, JSON.stringify(done));
    assert.equal(done.listener.malformed, 1, JSON.stringify(done));
    assert.ok(done.listener.orphans! >= 1, JSON.stringify(done));
    assert.ok(done.listener.delivered! >= 2 && done.client.delivered! >= 2, JSON.stringify(done));
    await p.exited;
    assert.deepEqual(await ourTables(ns), []);
  });
});
