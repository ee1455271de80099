/**
 * Fake TCP (`--tcp`) interop with Debian's kcptun 20210922 (xtaci/tcpraw), in network namespaces
 * (names start with "tf12k") where nftables drops every UDP datagram both ways, so only fake TCP passes:
 *
 *   c (client, stream driver) ──10.112.0.0/24── s (server, sink/source target)
 *
 * Each run moves 16 MiB up and 16 MiB down on 20 concurrent streams, sha256 at both ends: our client
 * against kcptun-server --tcp and kcptun-client --tcp against our server, with aes + FEC and with
 * none and no FEC. Our side's nftables table exists while it runs and is gone after its SIGTERM.
 * Then --conn and multiport: kcptun-client --tcp --conn 4 against our server, and our client --conn 3
 * against our server listening on a range of ports (kcptun 2021 has no multiport), 4 MiB each way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Netns, unavailableReason, type Namespace, type NsProcess } from '../netns/lib/netns.js';
import { TSTIER_KCPTUN } from './harness.js';

const SKIP = unavailableReason();
const MIB = 1 << 20;
const STREAMS = 20;
const FIXTURE = fileURLToPath(new URL('./fixtures/streams.js', import.meta.url));
const SERVER = '10.112.0.2';
const PORT = 4000;

const DROP_UDP = `table inet tf12k_drop_udp {
  chain input { type filter hook input priority 0; meta l4proto udp counter drop; }
  chain output { type filter hook output priority 0; meta l4proto udp counter drop; }
}
`;

/** Resolves when the process's stderr (kcptun's log) matches; rejects if it exits first. */
function waitStderr(p: NsProcess, re: RegExp): Promise<void> {
  if (re.test(p.stderr)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onData = (): void => {
      if (re.test(p.stderr)) {
        p.child.stderr!.off('data', onData);
        resolve();
      }
    };
    p.child.stderr!.on('data', onData);
    void p.exited.then(() => reject(new Error(`${p.argv.slice(4).join(' ')} exited: ${p.stderr.slice(-2000)}`)));
  });
}

async function ourTables(ns: Namespace): Promise<string[]> {
  const r = await ns.exec(['nft', 'list', 'tables', 'inet']);
  return [...r.stdout.matchAll(/tstier_faketcp_\d+/g)].map((m) => m[0]);
}

interface Run {
  name: string;
  ours: 'client' | 'server' | 'both';
  crypt: string;
  fec: boolean;
  /** MiB each way. */
  mib?: number;
  clientExtra?: string[];
  /** The server's listen ports, e.g. "4000" or "4010-4012". */
  ports?: string;
}

const RUNS: Run[] = [
  { name: 'our client -> kcptun-server --tcp, aes + FEC', ours: 'client', crypt: 'aes', fec: true },
  { name: 'kcptun-client --tcp -> our server, aes + FEC', ours: 'server', crypt: 'aes', fec: true },
  { name: 'our client -> kcptun-server --tcp, none, no FEC', ours: 'client', crypt: 'none', fec: false },
  { name: 'kcptun-client --tcp -> our server, none, no FEC', ours: 'server', crypt: 'none', fec: false },
  { name: 'kcptun-client --tcp --conn 4 -> our server', ours: 'server', crypt: 'aes', fec: true, mib: 4, clientExtra: ['--conn', '4'] },
  { name: 'our client --tcp --conn 3 -> our server on ports 4010-4012', ours: 'both', crypt: 'aes', fec: true, mib: 4,
    clientExtra: ['--conn', '3'], ports: '4010-4012' },
];

test('fake TCP interop with kcptun --tcp, UDP dropped', { skip: SKIP ?? false, timeout: 300_000 }, async (t) => {
  const net = await Netns.create('tf12k', t);
  const [c, s] = [await net.ns('c'), await net.ns('s')];
  await net.link(c, s, '10.112.0.1/24', `${SERVER}/24`);
  for (const ns of [c, s]) await ns.exec(['nft', '-f', '-'], { input: DROP_UDP });
  const sink = s.node(FIXTURE, ['sink']);
  const { port: target } = await sink.waitForEvent<{ port: number }>('ready');
  let firstId = 1;

  for (const run of RUNS) {
    await t.test(run.name, async () => {
      const common = ['--key', 'tf12k-secret', '--crypt', run.crypt, '--tcp', ...(run.fec ? [] : ['--ds', '0', '--ps', '0'])];
      const ports = run.ports ?? String(PORT);
      const serverArgs = ['-l', `${SERVER}:${ports}`, '-t', `127.0.0.1:${target}`, ...common];
      const server = run.ours !== 'client'
        ? s.spawn([process.execPath, TSTIER_KCPTUN, 'server', ...serverArgs])
        : s.spawn(['kcptun-server', ...serverArgs]);
      await waitStderr(server, /listening on/);
      const clientArgs = ['-l', '127.0.0.1:6000', '-r', `${SERVER}:${ports}`, ...common, ...(run.clientExtra ?? [])];
      const client = run.ours !== 'server'
        ? c.spawn([process.execPath, TSTIER_KCPTUN, 'client', ...clientArgs])
        : c.spawn(['kcptun-client', ...clientArgs]);
      const ours = run.ours === 'client' ? client : server;
      const oursNs = run.ours === 'client' ? c : s;

      const bytes = String((run.mib ?? 16) * MIB);
      const driver = c.node(FIXTURE, ['drive', '6000', String(STREAMS), bytes, bytes, String(firstId)]);
      const done = await Promise.race([
        driver.waitForEvent<{ results: { id: number; upHash: string; downHash: string }[] }>('results', 240_000),
        driver.waitForEvent<{ error: string }>('failed', 240_000).then((f) => assert.fail(`streams failed: ${f.error}`)),
      ]);
      assert.ok(await ourTables(oursNs).then((names) => names.includes(`tstier_faketcp_${ours.child.pid}`)),
        'our nftables table is in place while we run');
      // Every stream's close must have crossed before the tunnel stops: a kcptun client killed at once
      // still holds FINs in its KCP queue (up to an interval), and the server rightly resets streams
      // that were never closed when its session ends (docs/kcptun.md).
      sink.send('idle');
      await sink.waitForEvent('idle', 30_000);
      sink.send('records');
      const { records, errors } = await sink.waitForEvent<{ records: Record<string, { upHash: string; downHash: string }>; errors: string[] }>('records');
      assert.deepEqual(errors, [], 'every target connection was closed, none reset');
      assert.equal(done.results.length, STREAMS);
      for (const r of done.results) {
        assert.equal(records[r.id]?.upHash, r.upHash, `stream ${r.id}: upload sha256`);
        assert.equal(records[r.id]?.downHash, r.downHash, `stream ${r.id}: download sha256`);
      }
      firstId += STREAMS;
      if (run.clientExtra?.includes('--conn')) {
        // Each session has a fake connection of its own: count the kernel connections to the server.
        const conns = await c.exec(['ss', '-Htn', 'state', 'established', 'dst', SERVER]);
        const want = Number(run.clientExtra[run.clientExtra.indexOf('--conn') + 1]);
        assert.equal(conns.stdout.trim().split('\n').length, want, conns.stdout);
        if (run.ports) {
          const used = new Set(conns.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).at(-1)!.split(':')[1]));
          assert.ok([...used].every((p) => Number(p) >= 4010 && Number(p) <= 4012), [...used].join());
        }
      }
      await client.stop(5000);
      await server.stop(5000);
      sink.send('records');
      const after = await sink.waitForEvent<{ errors: string[] }>('records');
      assert.deepEqual(after.errors, [], 'stopping the tunnel reset no target connection');
      assert.equal(ours.child.signalCode ?? 'exited', 'exited', 'ours exits on SIGTERM by itself');
      assert.deepEqual(await ourTables(oursNs), [], 'no table of ours is left after SIGTERM');
    });
  }
});
