/** easytier-cli's argument-taking and summary forms, against the real gRPC server and a stub node. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startRpcServer, type RpcServer } from '../../daemon/rpc/server.js';
import { stubSource } from './rpc-stub.js';

const CLI = fileURLToPath(new URL('../../../bin/easytier-cli', import.meta.url));

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}

describe('easytier-cli --summary, port-forward and stats against a stub node', () => {
  let server: RpcServer;
  before(async () => { server = await startRpcServer(stubSource, '127.0.0.1:0'); });
  after(() => server.close());

  it('proxy --summary counts flows by transport, state and role', async () => {
    const run = await cli('-p', server.address, '-o', 'json', 'proxy', '--summary');
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), [
      { transport_type: 'Kcp', state: 'Connected', role: 'src', count: 1 },
      { transport_type: 'Quic', state: 'ConnectingDst', role: 'dst', count: 1 },
      { transport_type: 'Tcp', state: 'ClosingDst', role: 'src', count: 1 },
    ]);
  });

  it('usage errors are one line, exit 2, before any call', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['peer', '--summary'], /--summary: only for proxy, not peer/],
      [['port-forward', 'add'], /port-forward add: needs exactly one SPEC/],
      [['port-forward', 'move', 'x'], /unknown action "move"/],
      [['port-forward', 'add', 'tcp://1.2.3.4:80'], /port-forward add: "tcp:\/\/1\.2\.3\.4:80": must be PROTO:\/\//],
      [['stats', 'graph'], /stats: unknown action "graph"/],
    ];
    for (const [args, re] of cases) {
      const run = await cli('-p', server.address, ...args);
      assert.equal(run.code, 2, args.join(' '));
      assert.match(run.stderr, re);
      assert.equal(run.stderr.trim().split('\n').length, 1);
    }
  });

  it('a node without port forwarding or metrics says so', async () => {
    const pf = await cli('-p', server.address, 'port-forward', 'list');
    assert.equal(pf.code, 1);
    assert.match(pf.stderr, /PortForwardRpc failed: this node has no port forwarding/);
    const stats = await cli('-p', server.address, 'stats', 'prometheus');
    assert.equal(stats.code, 0);
    assert.equal(stats.stdout, '');
  });
});
