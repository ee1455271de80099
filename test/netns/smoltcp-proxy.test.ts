/**
 * Userspace termination (--use-smoltcp) and the subnet proxy (-n), end to end with real TUNs in
 * namespaces. Proves:
 *  - firewall: with inbound SYNs on the TUN dropped by nftables, kernel NAT termination's connect times
 *    out (--proxy-redirect false; the default redirect's flows never cross the TUN),
 *    while the smoltcp path carries a large flow byte-exact over KCP (listed as Kcp);
 *  - fidelity on the smoltcp path: ECONNREFUSED for a closed port, half-close in both orders;
 *  - subnet to subnet: LAN host L1 behind router A (--use-smoltcp, -n its LAN) reaches L2 behind B
 *    (-n B's LAN) over KCP, one large and 200 concurrent flows byte-exact, A's table lists them as Kcp;
 *  - the subnet proxy: a node without the KCP proxy reaches L2 by plain packets that B terminates and
 *    re-dials (L2 has no route to the virtual network), and a closed port there is ECONNREFUSED;
 *  - --no-tun: flows to such a node's own address end in its userspace stack and reach loopback;
 *  - a mapped range (-n real->mapped) is reached at the mapped addresses, over KCP and by plain packets;
 *  - an unreachable destination leaves the SYN unanswered (the application's connect times out).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason } from './lib/netns.js';
import { startCore, watchCarriers } from './lib/core.js';
import { FLOWS, connectResult, runFlows as flows, waitRoutes, waitRows, type ProxyRow } from './lib/proxy.js';

const SKIP = unavailableReason();

const common = (ip: string, host: string): string[] =>
  ['--network-name', 'tt11net', '--network-secret', 'smol-secret', '-i', ip, '--hostname', host, '--dev-name', 'tt11tun',
    '--log-level', 'info'];

test('smoltcp termination: a TUN firewall breaks the kernel path, not the userspace one; fidelity',
  { skip: SKIP ?? false, timeout: 120_000 }, async (t) => {
    const net = await Netns.create('tt11-fw', t);
    const [a, b] = [await net.ns('a'), await net.ns('b')];
    await net.link(a, b, '10.253.1.1/24', '10.253.1.2/24');
    await startCore(b, [...common('10.144.160.2', 'node-b'), '-l', 'udp://0.0.0.0:11010']);
    await b.node(FLOWS, ['serve', '0.0.0.0', '7000']).waitForEvent('listening');
    // Drop every inbound SYN on the TUN: what a default-deny host firewall does to the kernel path.
    await a.exec(['nft', '-f', '-'], {
      input: 'table inet tt11 {\n chain input {\n type filter hook input priority 0;\n iifname "tt11tun" tcp flags & (syn | ack) == syn drop\n }\n}\n',
    });
    const aArgs = [...common('10.144.160.1', 'node-a'), '--no-listener', '--enable-kcp-proxy', '-p', 'udp://10.253.1.2:11010'];

    await t.test('kernel path: the injected SYN is dropped, so connect times out', async () => {
      const kernel = await startCore(a, [...aArgs, '--proxy-redirect', 'false']);
      try {
        await waitRoutes(a, 1);
        assert.deepEqual(await connectResult(a, '10.144.160.2', 7000, 3000), { event: 'connect', result: 'timeout' });
      } finally {
        await kernel.proc.stop();
      }
    });

    await startCore(a, [...aArgs, '--use-smoltcp']);
    await waitRoutes(a, 1);

    await t.test('smoltcp path: a large flow each way arrives byte-exact over KCP', async () => {
      const r = await flows(a, '10.144.160.2', 7000, 1, 16 << 20, 16 << 20, false, 1);
      assert.deepEqual([r.ok, r.failed, r.errors], [1, 0, []]);
    });

    await t.test('smoltcp path: open flows are listed as Kcp, Connected', async () => {
      const holder = a.node(FLOWS, ['hold', '10.144.160.2', '7000', '3']);
      const { ports } = await holder.waitForEvent<{ ports: number[] }>('open', 30_000);
      const srcs = ports.map((p) => `10.144.160.1:${p}`).sort();
      const open = (r: ProxyRow): boolean => srcs.includes(r.src) && r.state === 'Connected';
      const rows = (await waitRows(a, 'the held flows are listed', (rs) => rs.filter(open).length === 3)).filter(open);
      assert.ok(rows.every((r) => r.dst === '10.144.160.2:7000' && r.transport_type === 'Kcp'), JSON.stringify(rows));
      holder.send('close');
      await holder.waitForEvent('closed', 30_000);
    });

    await t.test('smoltcp path: a closed port is ECONNREFUSED', async () => {
      assert.deepEqual(await connectResult(a, '10.144.160.2', 7999, 10_000), { event: 'connect', result: 'ECONNREFUSED' });
    });

    await t.test('smoltcp path: half-close in both orders keeps every byte', async () => {
      const [clientFirst, serverFirst] = await Promise.all([
        flows(a, '10.144.160.2', 7000, 20, 50_000, 70_000, false, 100),
        flows(a, '10.144.160.2', 7000, 20, 70_000, 50_000, true, 200),
      ]);
      assert.deepEqual([clientFirst.ok, clientFirst.failed, clientFirst.errors], [20, 0, []]);
      assert.deepEqual([serverFirst.ok, serverFirst.failed, serverFirst.errors], [20, 0, []]);
    });
  });

test('subnet to subnet over KCP, and the subnet proxy for plain packets', { skip: SKIP ?? false, timeout: 120_000 }, async (t) => {
  const net = await Netns.create('tt11-s2s', t);
  const [l1, ra, nb, l2, c, d] = [await net.ns('l1'), await net.ns('ra'), await net.ns('nb'), await net.ns('l2'),
    await net.ns('c'), await net.ns('d')];
  await net.link(l1, ra, '192.168.111.2/24', '192.168.111.1/24');
  await net.link(ra, nb, '10.253.2.1/24', '10.253.2.2/24');
  const lan2 = await net.link(nb, l2, '192.168.112.1/24', '192.168.112.2/24');
  // A second range on the same LAN, exported under a mapped range.
  await nb.exec(['ip', 'addr', 'add', '192.168.113.1/24', 'dev', lan2]);
  await l2.exec(['ip', 'addr', 'add', '192.168.113.2/24', 'dev', lan2]);
  await net.link(c, nb, '10.253.3.1/24', '10.253.3.2/24');
  await net.link(d, nb, '10.253.4.1/24', '10.253.4.2/24');
  await l1.exec(['ip', 'route', 'add', 'default', 'via', '192.168.111.1']);
  await ra.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  // L2 knows only its own LAN: replies can reach a client only because B re-dials from 192.168.112.1.

  await startCore(nb, [...common('10.144.161.2', 'node-b'), '-l', 'udp://0.0.0.0:11010',
    '-n', '192.168.112.0/24,192.168.113.0/24->10.99.113.0/24']);
  await startCore(ra, [...common('10.144.161.1', 'router-a'), '--no-listener', '--enable-kcp-proxy', '--use-smoltcp',
    '-n', '192.168.111.0/24', '-p', 'udp://10.253.2.2:11010']);
  await startCore(c, [...common('10.144.161.3', 'node-c'), '--no-listener', '-p', 'udp://10.253.3.2:11010']);
  // D has no TUN: its own address is served by its userspace stack, which dials loopback.
  await startCore(d, [...common('10.144.161.4', 'node-d'), '--no-listener', '--no-tun', '-p', 'udp://10.253.4.2:11010']);
  await l2.node(FLOWS, ['serve', '0.0.0.0', '7000']).waitForEvent('listening');
  await d.node(FLOWS, ['serve', '127.0.0.1', '7000']).waitForEvent('listening');
  await waitRoutes(ra, 3, '10.99.113.0/24');
  await waitRoutes(c, 3, '10.99.113.0/24');

  await t.test('L1 -> L2: one large flow each way arrives byte-exact', async () => {
    const r = await flows(l1, '192.168.112.2', 7000, 1, 16 << 20, 16 << 20, false, 1);
    assert.deepEqual([r.ok, r.failed, r.errors], [1, 0, []]);
  });

  await t.test('L1 -> L2: 200 concurrent flows arrive byte-exact, listed on A as Kcp', async () => {
    // Watched while they run: a closed row lingers only 10 s, and on a busy machine the load can take longer.
    const watch = watchCarriers(ra, '192.168.112.2:7000', 2_000, (r) => `${r.role} ${r.transport_type}`);
    const [clientFirst, serverFirst] = await Promise.all([
      flows(l1, '192.168.112.2', 7000, 100, 30_000, 40_000, false, 10_000),
      flows(l1, '192.168.112.2', 7000, 100, 40_000, 30_000, true, 20_000),
    ]).finally(() => watch.stop());
    assert.deepEqual([clientFirst.ok, clientFirst.failed, clientFirst.errors], [100, 0, []]);
    assert.deepEqual([serverFirst.ok, serverFirst.failed, serverFirst.errors], [100, 0, []]);
    const mine = [...(await watch.stop())].filter(([src]) => src.startsWith('192.168.111.2:'));
    assert.ok(mine.length >= 200, `A listed ${mine.length} of the 200 L1 flows`);
    assert.ok(mine.every(([, how]) => how === 'src Kcp'), JSON.stringify(mine.find(([, how]) => how !== 'src Kcp')));
  });

  await t.test('C (no KCP proxy) -> L2 by plain packets: B terminates and re-dials; byte-exact', async () => {
    const r = await flows(c, '192.168.112.2', 7000, 10, 200_000, 300_000, false, 30_000);
    assert.deepEqual([r.ok, r.failed, r.errors], [10, 0, []]);
    const rows = await waitRows(nb, 'B lists the subnet-proxied flows',
      (rs) => rs.filter((x) => x.src.startsWith('10.144.161.3:') && x.transport_type === 'Tcp').length >= 10);
    const fromC = rows.filter((x) => x.src.startsWith('10.144.161.3:'));
    assert.ok(fromC.every((x) => x.role === 'dst'), JSON.stringify(fromC[0]));
    // Bytes as B's stack saw them: the 13-byte header and 200 000 up, 300 000 down.
    const closed = await waitRows(nb, 'the subnet-proxied flows close', (rs) =>
      rs.filter((x) => x.src.startsWith('10.144.161.3:') && x.state === 'Closed').length >= 10);
    const counts = closed.filter((x) => x.src.startsWith('10.144.161.3:')).map((x) => [x.rx_bytes, x.tx_bytes]);
    assert.deepEqual(counts, Array.from({ length: 10 }, () => [200_013, 300_000]));
  });

  await t.test('C -> a closed port behind B is ECONNREFUSED', async () => {
    assert.deepEqual(await connectResult(c, '192.168.112.2', 7999, 10_000), { event: 'connect', result: 'ECONNREFUSED' });
  });

  await t.test('C -> D (--no-tun): D terminates flows to its own address and dials loopback; byte-exact', async () => {
    const r = await flows(c, '10.144.161.4', 7000, 5, 100_000, 100_000, true, 40_000);
    assert.deepEqual([r.ok, r.failed, r.errors], [5, 0, []]);
  });

  await t.test('a mapped range (-n real->mapped): L1 over KCP and C by plain packets reach the real host', async () => {
    const [overKcp, plain] = await Promise.all([
      flows(l1, '10.99.113.2', 7000, 5, 50_000, 50_000, false, 50_000),
      flows(c, '10.99.113.2', 7000, 5, 50_000, 50_000, false, 60_000),
    ]);
    assert.deepEqual([overKcp.ok, overKcp.failed, overKcp.errors], [5, 0, []]);
    assert.deepEqual([plain.ok, plain.failed, plain.errors], [5, 0, []]);
    const rows = await waitRows(ra, 'A lists the mapped flows', (rs) => rs.filter((r) => r.dst === '10.99.113.2:7000').length >= 5);
    assert.ok(rows.filter((r) => r.dst === '10.99.113.2:7000').every((r) => r.transport_type === 'Kcp'));
  });

  await t.test('L1 -> an absent LAN address: no SYN-ACK and no RST, so connect times out as without a proxy', async () => {
    assert.deepEqual(await connectResult(l1, '192.168.112.99', 7000, 4000), { event: 'connect', result: 'timeout' });
  });
});
