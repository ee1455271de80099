/**
 * `--socks5` end to end: A runs with --no-tun and a SOCKS5 server on its loopback; B has a TUN, an
 * HTTP server (Python's http.server) and a UDP echo server on its virtual address, and a proxied
 * range with no host behind it. Proves: curl through the SOCKS server fetches a file byte-exact
 * over KCP and A's proxy table lists the flow as Kcp; a refused port gets reply 05, a dead proxied
 * host 04, an unowned virtual address 04, an address outside the network 02; garbage and unknown
 * auth methods get 05 FF; UDP ASSOCIATE echoes datagrams of many sizes from B's virtual address;
 * and the node is still serving afterwards. A's KCP carrier is tuned by flags (fast2, a 256-segment
 * send window, 1000-byte datagrams): `easytier-cli node` shows them as the carrier holds them.
 * B runs a SOCKS server too, with a password and no carrier enabled: its CONNECT to A takes the
 * plain path, a kernel connection over B's TUN (A, --no-tun, terminates it and dials its loopback).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns, unavailableReason, type Namespace } from './lib/netns.js';
import { cliJson, startCore, waitPeers, waitRows } from './lib/core.js';

const CLIENT = new URL('./fixtures/socks-client.js', import.meta.url);
const SKIP = unavailableReason();
const SOCKS = ['127.0.0.1', '1080'] as const;

const common = (ip: string, host: string): string[] =>
  ['--network-name', 'th9net', '--network-secret', 'socks-secret', '-i', ip, '--hostname', host, '--log-level', 'info'];

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Greeting (no auth) + CONNECT to ip:port, as hex. */
function connectHex(ip: string, port: number): string {
  const addr = Buffer.from(ip.split('.').map(Number)).toString('hex');
  return `050100` + `05010001${addr}${port.toString(16).padStart(4, '0')}`;
}

async function raw(ns: Namespace, hex: string): Promise<{ hex: string; closed: boolean }> {
  const r = await ns.node(CLIENT, ['raw', ...SOCKS, hex]).waitForEvent<{ hex: string; closed: boolean }>('reply', 20_000);
  return { hex: r.hex, closed: r.closed };
}

test('SOCKS5 on a --no-tun node: CONNECT over KCP, replies, bad input, UDP ASSOCIATE', { skip: SKIP ?? false, timeout: 180_000 }, async (t) => {
  const net = await Netns.create('th9s5', t);
  const [a, b] = [await net.ns('a'), await net.ns('b')];
  await net.link(a, b, '10.253.9.1/24', '10.253.9.2/24');
  await startCore(b, [...common('10.144.160.2', 'node-b'), '-l', 'udp://0.0.0.0:11010', '--dev-name', 'th9tun',
    '-n', '10.99.7.0/24', '--socks5', 'socks5://alice:s3cret@127.0.0.1:1080']);
  const na = await startCore(a, [...common('10.144.160.1', 'node-a'), '--no-listener', '--no-tun', '--enable-kcp-proxy',
    '--kcp-mode', 'fast2', '--kcp-sndwnd', '256', '--kcp-mtu', '1000', '--socks5', `${SOCKS[0]}:${SOCKS[1]}`, '-p', 'udp://10.253.9.2:11010']);
  await waitPeers(a, 1);

  const dir = mkdtempSync(join(tmpdir(), 'th9s5-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const blob = randomBytes(3 << 20);
  writeFileSync(join(dir, 'blob'), blob);
  const http = b.spawn(['/usr/bin/python3', '-u', '-m', 'http.server', '8000', '--bind', '10.144.160.2', '--directory', dir]);
  await http.waitForLine(/Serving HTTP/, 15_000);

  await t.test('curl through --socks5 fetches a file byte-exact, and the proxy table lists it as Kcp', async () => {
    const out = join(dir, 'fetched');
    await a.exec(['curl', '-sS', '--fail', '--max-time', '60', '--socks5', SOCKS.join(':'),
      'http://10.144.160.2:8000/blob', '-o', out]);
    assert.equal(sha256(readFileSync(out)), sha256(blob));
    const rows = await waitRows(a, 'the SOCKS flow is listed', (rs) => rs.some((r) => r.dst === '10.144.160.2:8000'));
    const row = rows.find((r) => r.dst === '10.144.160.2:8000')!;
    assert.equal(row.transport_type, 'Kcp', JSON.stringify(row));
    assert.match(row.reason ?? '', /^socks5; peer accepts kcp/);
    assert.match(row.src, /^127\.0\.0\.1:\d+$/);
    const summary = await cliJson<{ transport_type: string; state: string; role: string; count: number }>(a, ['proxy', '--summary']);
    const kcp = summary.filter((r) => r.transport_type === 'Kcp' && r.role === 'src');
    assert.equal(kcp.reduce((n, r) => n + r.count, 0), rows.filter((r) => r.transport_type === 'Kcp' && r.role === 'src').length, JSON.stringify(summary));
  });

  await t.test('on a TUN node without carriers, SOCKS (with a password) takes the plain path over the TUN, byte-exact', async () => {
    const http2 = a.spawn(['/usr/bin/python3', '-u', '-m', 'http.server', '8001', '--bind', '127.0.0.1', '--directory', dir]);
    await http2.waitForLine(/Serving HTTP/, 15_000);
    const out = join(dir, 'fetched-plain');
    await b.exec(['curl', '-sS', '--fail', '--max-time', '60', '-x', 'socks5://alice:s3cret@127.0.0.1:1080',
      'http://10.144.160.1:8001/blob', '-o', out]);
    assert.equal(sha256(readFileSync(out)), sha256(blob));
    const rows = await waitRows(b, 'B lists the SOCKS flow', (rs) => rs.some((r) => r.dst === '10.144.160.1:8001'));
    const row = rows.find((r) => r.dst === '10.144.160.1:8001')!;
    assert.equal(row.transport_type, 'Tcp', JSON.stringify(row));
    assert.match(row.reason ?? '', /^socks5; proxy disabled/);
    const wrong = await b.exec(['curl', '-sS', '--max-time', '20', '-x', 'socks5://alice:nope@127.0.0.1:1080',
      'http://10.144.160.1:8001/blob', '-o', '/dev/null'], { allowFailure: true });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /authentication failed|User was rejected/i);
  });

  await t.test('a refused port: 05 "connection refused"', async () => {
    const r = await raw(a, connectHex('10.144.160.2', 7999));
    assert.deepEqual(r, { hex: '0500' + '05050001000000000000', closed: true });
  });

  await t.test('a proxied host the far node cannot reach: 04 "host unreachable"', async () => {
    const r = await raw(a, connectHex('10.99.7.5', 80));
    assert.deepEqual(r, { hex: '0500' + '05040001000000000000', closed: true });
  });

  await t.test('a virtual address no node owns: 04; an address outside the network: 02', async () => {
    assert.deepEqual(await raw(a, connectHex('10.144.160.77', 80)), { hex: '0500' + '05040001000000000000', closed: true });
    assert.deepEqual(await raw(a, connectHex('192.0.2.1', 80)), { hex: '0500' + '05020001000000000000', closed: true });
  });

  await t.test('garbage, unknown auth methods, BIND: the right SOCKS errors', async () => {
    assert.deepEqual(await raw(a, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n').toString('hex')), { hex: '05ff', closed: true });
    assert.deepEqual(await raw(a, '0503037f80'), { hex: '05ff', closed: true });
    assert.deepEqual(await raw(a, '050100' + '05020001' + '0a900002' + '0050'), { hex: '0500' + '05070001000000000000', closed: true });
  });

  await t.test('UDP ASSOCIATE carries datagrams to a virtual address and back', async () => {
    await b.node(CLIENT, ['udp-echo', '10.144.160.2', '7007']).waitForEvent('listening');
    const r = await a.node(CLIENT, ['udp-assoc', ...SOCKS, '10.144.160.2', '7007', '20']).waitForEvent<Record<string, unknown>>('udp', 90_000);
    assert.deepEqual({ ok: r.ok, mismatches: r.mismatches, from: r.from }, { ok: 20, mismatches: 0, from: ['10.144.160.2:7007'] });
  });

  await t.test('the node is still serving, with the KCP settings its flags asked for', async () => {
    const rows = await cliJson<{ peer_id: number; kcp_settings: string }>(a, ['node']);
    assert.equal(rows[0]?.peer_id, na.peerId);
    assert.equal(rows[0]?.kcp_settings, 'mode=fast2 nodelay=1 interval=20 resend=2 nc=1 sndwnd=256 rcvwnd=1024 mtu=1000');
    const [bNode] = await cliJson<{ kcp_settings: string }>(b, ['node']);
    assert.equal(bNode?.kcp_settings, 'mode=default nodelay=1 interval=10 resend=2 nc=1 sndwnd=1024 rcvwnd=1024 mtu=1380');
    assert.equal(na.proc.child.exitCode, null);
  });
});
