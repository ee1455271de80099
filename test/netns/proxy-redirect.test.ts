/**
 * The redirect termination (--proxy-redirect) end to end with real TUNs in namespaces: A redirects the
 * TCP it opens through its TUN to its own listener and carries it to B over KCP, to C (which takes no
 * KCP) by dialling itself, as plain packets. Proves: flows arrive byte-exact while A's TUN carries
 * almost none of their bytes (kernel termination moves each byte through it twice); a closed port
 * resets the application (its kernel accepted first); the fallback to plain packets is byte-exact and
 * listed as Tcp; the nftables table goes on exit, and one left by kill -9 is removed at the next start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { cliJson, startCore, waitPeers, type CoreNode } from './lib/core.js';
import { runFlows, waitRows, type ProxyRow } from './lib/proxy.js';

const FAULTS = new URL('./fixtures/fault-flows.js', import.meta.url);
const FLOWS = new URL('./fixtures/proxy-flows.js', import.meta.url);
const SKIP = unavailableReason();
const TUN = 't22atun';

const common = (ip: string, host: string): string[] =>
  ['--network-name', 't22anet', '--network-secret', 'redirect-secret', '-i', ip, '--hostname', host, '--dev-name', TUN,
    '--log-level', 'info'];

/** Our nftables tables in `ns`. */
async function redirectTables(ns: Namespace): Promise<string[]> {
  const r = await ns.exec(['nft', 'list', 'tables', 'ip']);
  return [...r.stdout.matchAll(/^table ip (tstier_redirect_\S+)$/gm)].map((m) => m[1]!);
}

/** Bytes through A's TUN, both ways. */
async function tunBytes(ns: Namespace): Promise<number> {
  const r = await ns.exec(['ip', '-j', '-s', 'link', 'show', 'dev', TUN]);
  const s = (JSON.parse(r.stdout) as { stats64: { rx: { bytes: number }; tx: { bytes: number } } }[])[0]!.stats64;
  return s.rx.bytes + s.tx.bytes;
}

test('redirect termination: out of the TUN, fidelity, fallback, rules', { skip: SKIP ?? false, timeout: 180_000 }, async (t) => {
  const net = await Netns.create('t22a-redir', t);
  const [a, b, c] = [await net.ns('a'), await net.ns('b'), await net.ns('c')];
  await net.link(a, b, '10.253.1.1/24', '10.253.1.2/24');
  await net.link(a, c, '10.253.2.1/24', '10.253.2.2/24');
  await startCore(b, [...common('10.144.160.2', 'node-b'), '-l', 'udp://0.0.0.0:11010']);
  await startCore(c, [...common('10.144.160.3', 'node-c'), '-l', 'udp://0.0.0.0:11010', '--disable-kcp-input']);
  const argsA = [...common('10.144.160.1', 'node-a'), '--no-listener', '--enable-kcp-proxy', '--proxy-redirect',
    '-p', 'udp://10.253.1.2:11010', '-p', 'udp://10.253.2.2:11010'];
  let nodeA: CoreNode = await startCore(a, argsA);
  await waitPeers(a, 2);
  for (const ns of [b, c]) await ns.node(FLOWS, ['serve', '0.0.0.0', '7000']).waitForEvent('listening');

  await t.test('flows over KCP arrive byte-exact, and their bytes do not cross A\'s TUN', async () => {
    const before = await tunBytes(a);
    const flows = 20, each = 256 << 10;
    const r = await runFlows(a, '10.144.160.2', 7000, flows, each, each, false, 1);
    assert.deepEqual([r.ok, r.failed, r.errors], [flows, 0, []]);
    const crossed = await tunBytes(a) - before;
    assert.ok(crossed < (flows * each * 2) / 20, `A's TUN carried ${crossed} bytes of ${flows * each * 2}`);
    const rows = await waitRows(a, 'A lists the flows as Kcp', (rs) => rs.filter((x) => x.dst === '10.144.160.2:7000').length >= flows);
    const toB = rows.filter((x) => x.dst === '10.144.160.2:7000');
    assert.ok(toB.every((x) => x.transport_type === 'Kcp' && x.src.startsWith('10.144.160.1:')), JSON.stringify(toB[0]));
  });

  await t.test('a closed port resets the application, which was already connected', async () => {
    const p = a.node(FAULTS, ['fetch', '10.144.160.2', '7999', '1']);
    assert.deepEqual(await p.waitForEvent('peer', 20_000), { event: 'peer', result: 'ECONNRESET' });
  });

  await t.test('a peer that takes no KCP is reached by the daemon\'s own dial, as plain packets', async () => {
    const r = await runFlows(a, '10.144.160.3', 7000, 3, 100_000, 100_000, false, 30_000);
    assert.deepEqual([r.ok, r.failed, r.errors], [3, 0, []]);
    const rows = await waitRows(a, 'A lists the fallback closed', (rs) =>
      rs.filter((x) => x.dst === '10.144.160.3:7000' && x.state === 'Closed').length === 3);
    const toC = rows.filter((x) => x.dst === '10.144.160.3:7000');
    // rx: the application's bytes up (the fixture's 13-byte header first); tx: the server's bytes down.
    assert.ok(toC.every((x: ProxyRow) => x.transport_type === 'Tcp' && x.rx_bytes === 100_013 && x.tx_bytes === 100_000), JSON.stringify(toC));
    assert.equal((await cliJson<ProxyRow>(c, ['proxy'])).length, 0, 'C carried nothing over KCP');
  });

  await t.test('the rule goes on exit; one left by kill -9 is removed at the next start', async () => {
    const first = await redirectTables(a);
    assert.equal(first.length, 1, JSON.stringify(first));
    nodeA.proc.kill('SIGKILL');
    await nodeA.proc.exited;
    assert.deepEqual(await redirectTables(a), first, 'kill -9 leaves the table');
    nodeA = await startCore(a, argsA);
    const second = await redirectTables(a);
    assert.equal(second.length, 1, JSON.stringify(second));
    assert.notEqual(second[0], first[0]);
    await waitPeers(a, 2);
    const r = await runFlows(a, '10.144.160.2', 7000, 2, 50_000, 50_000, false, 40_000);
    assert.deepEqual([r.ok, r.failed, r.errors], [2, 0, []]);
    await nodeA.proc.stop();
    assert.deepEqual(await redirectTables(a), []);
  });
});
