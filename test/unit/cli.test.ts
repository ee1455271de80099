/** The real easytier-cli binary, run as a child process against the real gRPC server and a stub node. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startRpcServer, type RpcServer } from '../../daemon/rpc/server.js';
import { STUB_NODE, STUB_PEERS, STUB_PROXY, STUB_ROUTES, stubSource } from './rpc-stub.js';

const CLI = fileURLToPath(new URL('../../../bin/easytier-cli', import.meta.url));

interface Run { code: number; stdout: string; stderr: string }

// Async on purpose: the server under test lives in this process and must keep answering.
function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, TZ: 'UTC' }, timeout: 20_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}

/** What `YYYY-MM-DD HH:MM:SS` local time must read with TZ=UTC. */
const utc = (unixMs: number): string => new Date(unixMs).toISOString().slice(0, 19).replace('T', ' ');

describe('easytier-cli against a live rpc server', () => {
  let server: RpcServer;
  before(async () => { server = await startRpcServer(stubSource, '127.0.0.1:0'); });
  after(() => server.close());

  it('proxy -o json prints the rows as an array', async () => {
    const run = await cli('-p', server.address, '-o', 'json', 'proxy');
    assert.equal(run.stderr, '');
    assert.equal(run.code, 0);
    assert.deepEqual(JSON.parse(run.stdout), STUB_PROXY.map((e) => ({
      src: e.src, dst: e.dst, start_time: utc(e.startTime * 1000), state: e.state, transport_type: e.transportType,
      role: e.role, tx_bytes: e.txBytes, rx_bytes: e.rxBytes, rtt_ms: e.rttMs, retransmits: e.retransmits, duplicates: e.duplicates,
      reason: e.reason,
    })));
  });

  it('proxy as a table shows EasyTier-style cells', async () => {
    const run = await cli('--rpc-portal', server.address, 'proxy');
    assert.equal(run.code, 0);
    const lines = run.stdout.split('\n');
    const header = lines.find((l) => l.includes('src'));
    assert.ok(header !== undefined);
    for (const column of ['src', 'dst', 'start_time', 'state', 'transport_type', 'role', 'tx_bytes', 'rx_bytes', 'rtt_ms', 'retransmits']) {
      assert.ok(header.includes(column), column);
    }
    const first = lines.find((l) => l.includes('10.144.144.1:40001'));
    assert.ok(first !== undefined, run.stdout);
    for (const cell of ['192.168.7.10:80', '2023-11-14 22:13:20', 'Connected', 'Kcp', 'src', '1048576', '12.5']) {
      assert.ok(first.includes(cell), `${cell} in ${first}`);
    }
    assert.match(run.stdout, /ConnectingDst.*Quic.*dst/);
    assert.match(run.stdout, /ClosingDst.*Tcp/);
    assert.doesNotMatch(run.stdout, /\x1b\[/, 'no ANSI colours');
  });

  it('node, peer and route', async () => {
    const [node, peer, route, nodeTable] = await Promise.all([
      cli('-p', server.address, '-o', 'json', 'node'),
      cli('-p', server.address, '-o', 'json', 'peer', 'list'),
      cli('-p', server.address, '-o', 'json', 'route'),
      cli('-p', server.address, 'node'),
    ]);
    assert.deepEqual(JSON.parse(node.stdout), [{
      peer_id: STUB_NODE.peerId, instance_name: STUB_NODE.instanceName, hostname: STUB_NODE.hostname,
      network_name: STUB_NODE.networkName, ipv4: STUB_NODE.ipv4, ipv6: STUB_NODE.ipv6, proxy_cidrs: STUB_NODE.proxyCidrs.join(', '),
      listeners: STUB_NODE.listeners.join(', '), kcp_input: true, quic_input: false, no_relay_kcp: true, no_relay_quic: false, version: STUB_NODE.version,
      rpc_portal: STUB_NODE.rpcPortal, kcp_settings: STUB_NODE.kcpSettings,
    }]);
    assert.deepEqual(JSON.parse(peer.stdout), STUB_PEERS.map((p) => ({
      peer_id: p.peerId, remote: p.remoteUri, direction: p.outbound ? 'out' : 'in', rtt_ms: p.rttMs, tx_bytes: p.txBytes,
      rx_bytes: p.rxBytes, tx_packets: p.txPackets, rx_packets: p.rxPackets, established: utc(p.establishedAt),
      tcp_transport: p.tcpTransport, tcp_reason: p.tcpReason, hostname: p.hostname ?? '', version: p.version ?? '',
    })));
    assert.deepEqual(JSON.parse(route.stdout), STUB_ROUTES.map((r) => ({
      peer_id: r.peerId, hostname: r.hostname, ipv4: r.ipv4, ipv6: r.ipv6, proxy_cidrs: r.proxyCidrs.join(', '), next_hop: r.nextHopPeerId,
      cost: r.cost, kcp_input: r.features.kcpInput, quic_input: r.features.quicInput,
      no_relay_kcp: r.features.noRelayKcp ?? false, no_relay_quic: r.features.noRelayQuic ?? false,
      tcp_transport: r.tcpTransport, tcp_reason: r.tcpReason, version: r.version ?? '',
    })));
    assert.match(nodeTable.stdout, /network_name\s*│\s*stubnet/);
  });
});

describe('easytier-cli and hostile strings from the daemon', () => {
  // A peer picks its own hostname; this one would clear the screen, retitle the terminal and
  // reverse the text after it if printed raw.
  const EVIL = 'evil\x1b[2J\x1b]0;pwned\x07\r\n\u202eoof\x9b';
  const evilSource = { ...stubSource, routes: () => STUB_ROUTES.map((r) => ({ ...r, hostname: EVIL })) };
  let server: RpcServer;
  before(async () => { server = await startRpcServer(evilSource, '127.0.0.1:0'); });
  after(() => server.close());

  it('a table escapes control characters; JSON carries the exact string', async () => {
    const [table, json] = await Promise.all([cli('-p', server.address, 'route'), cli('-p', server.address, '-o', 'json', 'route')]);
    assert.equal(table.code, 0, table.stderr);
    assert.doesNotMatch(table.stdout, /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/, 'no control character but newlines');
    assert.ok(table.stdout.includes('evil\\x1b[2J\\x1b]0;pwned\\x07\\x0d\\x0a\\u202eoof\\x9b'), table.stdout);
    assert.equal(json.code, 0, json.stderr);
    const rows = JSON.parse(json.stdout) as { hostname: string }[];
    assert.deepEqual(rows.map((r) => r.hostname), STUB_ROUTES.map(() => EVIL));
  });
});

describe('easytier-cli failures', () => {
  it('a daemon that is not running: exit 1, one line, no stack trace', async () => {
    // Take a free port and release it, so nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const run = await cli('-p', `127.0.0.1:${port}`, '-o', 'json', 'proxy');
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.equal(run.stderr.trimEnd().split('\n').length, 1, run.stderr);
    assert.match(run.stderr, new RegExp(`^easytier-cli: cannot reach easytier-core at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
  });

  it('bad usage: exit 2 with a one-line message', async () => {
    for (const args of [['frobnicate'], ['-o', 'xml', 'proxy'], ['--bogus', 'proxy'], [], ['-p', 'nowhere', 'proxy']]) {
      const run = await cli(...args);
      assert.equal(run.code, 2, args.join(' '));
      assert.equal(run.stderr.trimEnd().split('\n').length, 1, run.stderr);
      assert.match(run.stderr, /^easytier-cli: /);
    }
  });

  it('--help lists the subcommands', async () => {
    const run = await cli('--help');
    assert.equal(run.code, 0);
    for (const name of ['node', 'peer', 'route', 'proxy']) assert.match(run.stdout, new RegExp(`^  ${name} `, 'm'));
  });
});
