/**
 * The redirect termination, the default where the kernel terminates, end to end with real TUNs in
 * namespaces: A (no --proxy-redirect flag) redirects the TCP it opens through its TUN to its own
 * listener and carries it to B over KCP, to C (which takes no KCP) by dialling itself, as plain
 * packets. Proves: it is the default; flows arrive byte-exact while A's TUN carries almost none of
 * their bytes (kernel termination moves each byte through it twice); a closed port resets the
 * application (its kernel accepted first); the fallback to plain packets is byte-exact and listed as
 * Tcp, for a port forward's flows too, which pass the rule (one row each, not a second one from the
 * redirect); a half-closed redirected connection keeps its conntrack entry far beyond conntrack's own
 * 60 s; the nftables table goes on exit, and one left by kill -9 is removed at the next start; without
 * nft the default warns once and falls back to kernel NAT, while an explicit --proxy-redirect exits 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { CORE, cliJson, startCore, waitPeers, type CoreNode } from './lib/core.js';
import { runFlows, waitRows, type ProxyRow } from './lib/proxy.js';

const FAULTS = new URL('./fixtures/fault-flows.js', import.meta.url);
const FLOWS = new URL('./fixtures/proxy-flows.js', import.meta.url);
const SKIP = unavailableReason();
const TUN = 't23atun';
/** A's PATH without nft (it lives in /usr/sbin). */
const NO_NFT = { PATH: '/usr/bin:/bin' };

const common = (ip: string, host: string): string[] =>
  ['--network-name', 't23anet', '--network-secret', 'redirect-secret', '-i', ip, '--hostname', host, '--dev-name', TUN,
    '--log-level', 'info'];

/** Our nftables tables in `ns`. */
async function redirectTables(ns: Namespace): Promise<string[]> {
  const r = await ns.exec(['nft', 'list', 'tables', 'ip']);
  return [...r.stdout.matchAll(/^table ip (tstier_redirect_\S+)$/gm)].map((m) => m[1]!);
}

/**
 * The conntrack entry of A's connection from local `port` to B's `dstPort` once it is half-closed
 * (the application's FIN acknowledged): its seconds left and state. Polled, bounded: each poll is one
 * read of /proc. FIN_WAIT is passed over: until the FIN's ACK is seen, conntrack caps any entry with
 * data unacknowledged at its `unacknowledged` timeout (300 s), whatever the policy says.
 */
async function halfClosedEntry(ns: Namespace, port: number, dstPort: number): Promise<{ secs: number; state: string }> {
  const re = new RegExp(`^ipv4\\s+2\\s+tcp\\s+6\\s+(\\d+)\\s+(\\w+)\\s+src=\\S+ dst=\\S+ sport=${port} dport=${dstPort} `, 'm');
  let last = '';
  for (let i = 0; i < 50; i++) {
    last = (await ns.exec(['cat', '/proc/net/nf_conntrack'])).stdout;
    const m = re.exec(last);
    if (m && m[2] !== 'ESTABLISHED' && m[2] !== 'FIN_WAIT') return { secs: Number(m[1]), state: m[2]! };
  }
  throw new Error(`no conntrack entry for port ${port} past FIN_WAIT (its FIN acknowledged):\n${last}`);
}

/** Bytes through A's TUN, both ways. */
async function tunBytes(ns: Namespace): Promise<number> {
  const r = await ns.exec(['ip', '-j', '-s', 'link', 'show', 'dev', TUN]);
  const s = (JSON.parse(r.stdout) as { stats64: { rx: { bytes: number }; tx: { bytes: number } } }[])[0]!.stats64;
  return s.rx.bytes + s.tx.bytes;
}

test('redirect termination: out of the TUN, fidelity, fallback, rules', { skip: SKIP ?? false, timeout: 180_000 }, async (t) => {
  const net = await Netns.create('t23a-redir', t);
  const [a, b, c] = [await net.ns('a'), await net.ns('b'), await net.ns('c')];
  await net.link(a, b, '10.253.1.1/24', '10.253.1.2/24');
  await net.link(a, c, '10.253.2.1/24', '10.253.2.2/24');
  await startCore(b, [...common('10.144.160.2', 'node-b'), '-l', 'udp://0.0.0.0:11010']);
  await startCore(c, [...common('10.144.160.3', 'node-c'), '-l', 'udp://0.0.0.0:11010', '--disable-kcp-input']);
  const argsA = [...common('10.144.160.1', 'node-a'), '--no-listener', '--enable-kcp-proxy',
    '--port-forward', 'tcp://127.0.0.1:9003/10.144.160.3:7001', '-p', 'udp://10.253.1.2:11010', '-p', 'udp://10.253.2.2:11010'];
  let nodeA: CoreNode = await startCore(a, argsA);
  await waitPeers(a, 2);
  for (const ns of [b, c]) await ns.node(FLOWS, ['serve', '0.0.0.0', '7000']).waitForEvent('listening');
  await c.node(FLOWS, ['serve', '0.0.0.0', '7001']).waitForEvent('listening');

  await t.test('without the flag, A terminates in the redirect stack', async () => {
    assert.ok(nodeA.proc.lines.some((l) => /source flows terminated in the redirect stack/.test(l)), nodeA.proc.lines.join('\n'));
  });

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

  await t.test('a port forward\'s plain flow passes the rule: byte-exact, one row each', async () => {
    const r = await runFlows(a, '127.0.0.1', 9003, 3, 100_000, 100_000, false, 30_001);
    assert.deepEqual([r.ok, r.failed, r.errors], [3, 0, []]);
    const rows = await waitRows(a, 'A lists the forwarded flows closed', (rs) =>
      rs.filter((x) => x.dst === '10.144.160.3:7001' && x.state === 'Closed').length >= 3);
    const toC = rows.filter((x) => x.dst === '10.144.160.3:7001');
    // Dialled without the mark, each came back through the listener as a second, redirected flow.
    assert.equal(toC.length, 3, JSON.stringify(toC));
    assert.ok(toC.every((x: ProxyRow) => x.transport_type === 'Tcp' && /^port-forward /.test(x.reason ?? '') &&
      x.rx_bytes === 100_013 && x.tx_bytes === 100_000), JSON.stringify(toC));
  });

  await t.test('a half-closed redirected connection keeps its conntrack entry beyond conntrack\'s 60 s', async () => {
    const server = b.node(FAULTS, ['serve', '0.0.0.0', '7100', '0', '0']);
    await server.waitForEvent('listening');
    const app = a.node(FAULTS, ['halfclose', '10.144.160.2', '7100']);
    const { port } = await app.waitForEvent<{ port: number }>('halfclosed', 20_000);
    assert.deepEqual(await server.waitForEvent('peer', 20_000), { event: 'peer', result: 'FIN' }, 'the FIN crossed');
    const entry = await halfClosedEntry(a, port, 7100);
    // conntrack's defaults: 60 s in CLOSE_WAIT, 120 s in FIN_WAIT and LAST_ACK; the table's policy: 5 days.
    assert.ok(entry.secs > 86_400, `${entry.state}, ${entry.secs} s left`);
    app.kill();
    server.kill();
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

  await t.test('without nft: unasked, one warning and kernel NAT; asked for, exit 2 naming the flag', async () => {
    nodeA = await startCore(a, argsA, NO_NFT);
    assert.ok(nodeA.proc.lines.some((l) => /source flows terminated in the kernel stack/.test(l)), nodeA.proc.lines.join('\n'));
    const warned = nodeA.proc.lines.filter((l) => / WARN /.test(l) && /redirect/.test(l));
    assert.equal(warned.length, 1, nodeA.proc.lines.join('\n'));
    assert.match(warned[0]!, /nft.*; proxied TCP is terminated by kernel NAT instead/);
    await waitPeers(a, 2);
    const r = await runFlows(a, '10.144.160.2', 7000, 2, 50_000, 50_000, false, 40_001);
    assert.deepEqual([r.ok, r.failed, r.errors], [2, 0, []]);
    await nodeA.proc.stop();
    const argv = [process.execPath, CORE, ...argsA, '--proxy-redirect'].map((x) => `'${x}'`).join(' ');
    const asked = a.spawn(['sh', '-c', `exec env PATH=${NO_NFT.PATH} ${argv} 2>&1`]);
    const { code } = await asked.exited;
    assert.equal(code, 2, asked.lines.join('\n'));
    assert.match(asked.lines.join('\n'), /^easytier-core: --proxy-redirect: .*nft/m);
  });
});
