/**
 * TUN offloads end to end (docs/tun.md, "Offloads"): A (--enable-kcp-proxy --proxy-redirect false) and B, each with -i and
 * --ipv6, over a clean veth. Proves, with offloads on (the default):
 * - a large flow each way through the KCP proxy's kernel termination is byte-exact, and A's counters
 *   show its super-packets were written back whole (one NAT rewrite per super-packet, not per segment);
 * - plain forwarding (B's flows to A: B has no proxy) is byte-exact, IPv4 and IPv6 TCP, and B's
 *   counters show super-packets cut into segments for it;
 * - ping, IPv4 and IPv6, fragmented sizes included, is answered;
 * - with TSTIER_TUN_OFFLOAD=off the node reads no super-packet and the same transfer is byte-exact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { startCore, waitPeers, waitRows, type CoreNode } from './lib/core.js';

const FLOWS = new URL('./fixtures/proxy-flows.js', import.meta.url);
const SKIP = unavailableReason();

interface Done { ok: number; failed: number; errors: string[] }

/** A's proxy, terminated by kernel NAT (not the default redirect): the super-packets it rewrites are the subject. */
const KERNEL_PROXY = ['--no-listener', '--enable-kcp-proxy', '--proxy-redirect', 'false'];

const common = (n: number): string[] => ['--network-name', 't20anet', '--network-secret', 'offload', '-i', `10.144.120.${n}`,
  '--ipv6', `fd00:120::${n}`, '--hostname', `node-${n}`, '--dev-name', 't20atun', '--log-level', 'info', '--metrics-listen', '9100'];

async function flows(ns: Namespace, host: string, count: number, up: number, down: number, seed: number): Promise<Done> {
  const p = ns.node(FLOWS, ['flows', host, '7000', String(count), String(up), String(down), '0', String(seed)]);
  return p.waitForEvent<Done>('done', 120_000);
}

/** The node's TUN offload counters, from its /metrics. */
async function offload(ns: Namespace): Promise<Record<string, number>> {
  const text = (await ns.exec(['curl', '-sS', '--fail', '--max-time', '10', 'http://127.0.0.1:9100/metrics'])).stdout;
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^tstier_tun_offload_packets_total\{kind="(\w+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

const delta = (after: Record<string, number>, before: Record<string, number>, k: string): number => (after[k] ?? 0) - (before[k] ?? 0);

test('TUN offloads: kernel termination writes super-packets whole; plain, IPv6 and ping stay byte-exact',
  { skip: SKIP ?? false, timeout: 240_000 }, async (t) => {
    const net = await Netns.create('t20a-off', t);
    const [a, b] = [await net.ns('a'), await net.ns('b')];
    await net.link(a, b, '10.253.120.1/24', '10.253.120.2/24');
    await startCore(b, [...common(2), '-l', 'udp://0.0.0.0:11010']);
    let na: CoreNode = await startCore(a, [...common(1), ...KERNEL_PROXY, '-p', 'udp://10.253.120.2:11010']);
    await waitPeers(a, 1);
    for (const ns of [a, b]) await ns.node(FLOWS, ['serve', '::', '7000']).waitForEvent('listening');
    assert.ok(!na.proc.lines.some((l) => /offloads refused/.test(l)), 'the kernel took the offload ioctls');

    await t.test('a large flow each way through the KCP proxy is byte-exact, its super-packets written whole', async (tt) => {
      const before = await offload(a);
      const r = await flows(a, '10.144.120.2', 1, 8 << 20, 8 << 20, 1);
      assert.deepEqual([r.ok, r.failed, r.errors], [1, 0, []]);
      const after = await offload(a);
      const rows = await waitRows(a, 'the flow is listed', (rs) => rs.some((x) => x.dst === '10.144.120.2:7000'));
      assert.ok(rows.every((x) => x.transport_type === 'Kcp'), JSON.stringify(rows));
      // 16 MiB crossed A's TUN twice (app -> NAT -> listener, and back): by 1,340-byte segments that
      // is ~25,000 packets; written whole, a few hundred super-packets of up to 64 KB.
      const whole = delta(after, before, 'whole_written');
      tt.diagnostic(`A: ${JSON.stringify(after)}`);
      assert.ok(whole > 0, `super-packets written whole: ${whole}`);
      assert.ok(whole < 6_000, `super-packets written whole: ${whole} (per segment would be ~25,000)`);
      assert.equal(delta(after, before, 'segments_cut'), 0, 'nothing of the proxied flow was cut');
    });

    await t.test('plain forwarding with offloads: IPv4 and IPv6 flows from B are byte-exact, cut into segments', async (tt) => {
      const before = await offload(b);
      const [v4, v6] = await Promise.all([flows(b, '10.144.120.1', 3, 2 << 20, 1 << 20, 10), flows(b, 'fd00:120::1', 3, 2 << 20, 1 << 20, 20)]);
      assert.deepEqual([v4.ok, v4.failed, v4.errors], [3, 0, []]);
      assert.deepEqual([v6.ok, v6.failed, v6.errors], [3, 0, []]);
      const after = await offload(b);
      tt.diagnostic(`B: ${JSON.stringify(after)}`);
      assert.ok(delta(after, before, 'super_read') > 0, 'B read super-packets');
      assert.ok(delta(after, before, 'segments_cut') > delta(after, before, 'super_read'), 'and cut them into segments');
    });

    await t.test('ping with offloads, IPv4 and IPv6, fragmented sizes too', async () => {
      for (const size of ['56', '4000']) {
        await a.exec(['ping', '-c', '2', '-i', '0.2', '-W', '5', '-s', size, '10.144.120.2']);
        await a.exec(['ping', '-6', '-c', '2', '-i', '0.2', '-W', '5', '-s', size, 'fd00:120::2']);
      }
    });

    await t.test('TSTIER_TUN_OFFLOAD=off: no super-packet, the same transfer byte-exact', async () => {
      await na.proc.stop();
      na = await startCore(a, [...common(1), ...KERNEL_PROXY, '-p', 'udp://10.253.120.2:11010'],
        { TSTIER_TUN_OFFLOAD: 'off' });
      await waitPeers(a, 1);
      const r = await flows(a, '10.144.120.2', 1, 4 << 20, 4 << 20, 2);
      assert.deepEqual([r.ok, r.failed, r.errors], [1, 0, []]);
      assert.equal((await offload(a)).super_read, 0);
    });
  });
