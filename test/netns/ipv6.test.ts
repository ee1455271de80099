/**
 * IPv6 on the virtual network, with real TUNs in namespaces: nodes A - B - C in a line (veths A-B
 * and B-C only), each with -i and --ipv6. Proves:
 *  - route sync carries the IPv6 addresses (`easytier-cli route`/`node` show them, C's through B);
 *  - `ping -6` works to a direct peer and through a relay;
 *  - with --enable-kcp-proxy --use-smoltcp on A, a TCP flow to B's virtual IPv6 ends in A's userspace
 *    stack, is carried over KCP and arrives byte-exact (sha256 both ends), and both tables list it as
 *    Kcp with bracketed IPv6 endpoints;
 *  - the same through B's relay to C's virtual IPv6;
 *  - a closed IPv6 port is ECONNREFUSED through the proxy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason } from './lib/netns.js';
import { cliJson, startCore } from './lib/core.js';
import { FLOWS, connectResult, runFlows, waitRows, type ProxyRow } from './lib/proxy.js';

const SKIP = unavailableReason();

const common = (n: number): string[] =>
  ['--network-name', 'tt15net', '--network-secret', 'v6-secret', '-i', `10.144.175.${n}`, '--ipv6', `fd00:15::${n}`,
    '--hostname', `node-${n}`, '--dev-name', 'tt15tun'];

interface RouteRow { hostname: string; ipv4: string; ipv6: string; cost: number }

async function waitIpv6Routes(ns: { name: string }, rows: () => Promise<RouteRow[]>, n: number): Promise<RouteRow[]> {
  let last: RouteRow[] = [];
  for (let i = 0; i < 100; i++) {
    last = await rows().catch(() => []);
    if (last.filter((r) => r.ipv6 !== '').length >= n) return last;
  }
  assert.fail(`${ns.name}: never saw ${n} IPv6 routes: ${JSON.stringify(last)}`);
}

test('IPv6 virtual addresses: route sync, ping -6 direct and relayed, KCP-proxied TCP over smoltcp',
  { skip: SKIP ?? false, timeout: 90_000 }, async (t) => {
    const net = await Netns.create('tt15-v6', t);
    const [a, b, c] = [await net.ns('a'), await net.ns('b'), await net.ns('c')];
    await net.link(a, b, '10.253.15.1/24', '10.253.15.2/24');
    await net.link(b, c, '10.253.16.1/24', '10.253.16.2/24');
    await startCore(b, [...common(2), '-l', 'udp://0.0.0.0:11010']);
    await startCore(c, [...common(3), '--no-listener', '-p', 'udp://10.253.16.1:11010']);
    await startCore(a, [...common(1), '--no-listener', '--enable-kcp-proxy', '--use-smoltcp', '-p', 'udp://10.253.15.2:11010']);
    const server = b.node(FLOWS, ['serve', '::', '7000']);
    await server.waitForEvent('listening');
    await c.node(FLOWS, ['serve', 'fd00:15::3', '7000']).waitForEvent('listening');

    await t.test('route sync carries IPv6: A lists B and C (through B) with their addresses', async () => {
      const rows = await waitIpv6Routes(a, () => cliJson<RouteRow>(a, ['route']), 2);
      const brief = rows.map((r) => [r.hostname, r.ipv6, r.cost]).sort();
      assert.deepEqual(brief, [['node-2', 'fd00:15::2/64', 1], ['node-3', 'fd00:15::3/64', 2]]);
      const [me] = await cliJson<{ ipv6: string }>(a, ['node']);
      assert.equal(me?.ipv6, 'fd00:15::1/64');
    });

    await t.test('ping -6 to a direct peer and through a relay', async () => {
      for (const dst of ['fd00:15::2', 'fd00:15::3']) {
        const r = await a.exec(['ping', '-6', '-c', '2', '-i', '0.2', '-W', '5', dst]);
        assert.match(r.stdout, / 0% packet loss/, `${dst}: ${r.stdout}`);
      }
    });

    await t.test('TCP to B\'s virtual IPv6 from the smoltcp stack: byte-exact over KCP, listed as Kcp', async () => {
      const r = await runFlows(a, 'fd00:15::2', 7000, 3, 2 << 20, 2 << 20, false, 15);
      assert.deepEqual([r.ok, r.failed, r.errors], [3, 0, []]);
      for (let i = 0; i < 3; i++) {
        // The server compared what arrived with what was sent, byte for byte (the client did the same).
        const conn = await server.waitForEvent<{ ok: boolean; bytes: number }>('conn', 10_000);
        assert.deepEqual([conn.ok, conn.bytes], [true, 2 << 20]);
      }
      const fromA = (rs: ProxyRow[]): ProxyRow[] => rs.filter((x) => x.src.startsWith('[fd00:15::1]:') && x.dst === '[fd00:15::2]:7000');
      const srcRows = fromA(await waitRows(a, 'A lists the IPv6 flows', (rs) => fromA(rs).length >= 3));
      assert.ok(srcRows.every((x) => x.transport_type === 'Kcp' && x.role === 'src'), JSON.stringify(srcRows));
      const dstRows = fromA(await waitRows(b, 'B lists the IPv6 flows', (rs) => fromA(rs).length >= 3));
      assert.ok(dstRows.every((x) => x.transport_type === 'Kcp' && x.role === 'dst'), JSON.stringify(dstRows));
    });

    await t.test('TCP to C\'s virtual IPv6 through B\'s relay: byte-exact, listed on A as Kcp', async () => {
      const r = await runFlows(a, 'fd00:15::3', 7000, 2, 1 << 20, 1 << 20, true, 25);
      assert.deepEqual([r.ok, r.failed, r.errors], [2, 0, []]);
      const toC = (rs: ProxyRow[]): ProxyRow[] => rs.filter((x) => x.dst === '[fd00:15::3]:7000');
      const rows = toC(await waitRows(a, 'A lists the relayed IPv6 flows', (rs) => toC(rs).length >= 2));
      assert.ok(rows.every((x) => x.transport_type === 'Kcp'), JSON.stringify(rows));
    });

    await t.test('a closed IPv6 port is ECONNREFUSED', async () => {
      assert.deepEqual(await connectResult(a, 'fd00:15::2', 7999, 10_000), { event: 'connect', result: 'ECONNREFUSED' });
    });
  });
