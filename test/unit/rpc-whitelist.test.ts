import assert from 'node:assert/strict';
import { test } from 'node:test';
import { callRpc } from '../../cli/client.js';
import { loadNodeConfig } from '../../daemon/config/load.js';
import { startRpcServer } from '../../daemon/rpc/server.js';
import { peerAddress, portalRisk } from '../../daemon/rpc/whitelist.js';
import { stubSource } from './rpc-stub.js';

test('--rpc-portal-whitelist: callers outside it get PERMISSION_DENIED, inside it an answer', async () => {
  const denied = await startRpcServer(stubSource, '127.0.0.1:0', ['10.0.0.0/8', 'fd00::/8']);
  const open = await startRpcServer(stubSource, '127.0.0.1:0', ['127.0.0.1/32']);
  try {
    await assert.rejects(callRpc(denied.address, 'NodeInfoRpc', 'ShowNodeInfo'), /NodeInfoRpc failed: 127\.0\.0\.1:\d+ is not in --rpc-portal-whitelist/);
    await assert.rejects(callRpc(denied.address, 'PortForwardRpc', 'AddPortForward', { spec: 'tcp://127.0.0.1:1/10.0.0.1:1' }), /not in --rpc-portal-whitelist/);
    const ok = await callRpc(open.address, 'NodeInfoRpc', 'ShowNodeInfo') as { node_info: { hostname: string } };
    assert.equal(ok.node_info.hostname, 'stub-host');
  } finally {
    await denied.close();
    await open.close();
  }
});

test('peer strings, the risk warning, and the flag', () => {
  assert.equal(peerAddress('ipv4:10.1.2.3:5555'), '10.1.2.3');
  assert.equal(peerAddress('ipv6:[::1]:5555'), '::1');
  assert.equal(peerAddress('ipv6:[::ffff:10.0.0.1]:1'), '10.0.0.1');
  assert.equal(peerAddress('127.0.0.1:443'), '127.0.0.1');
  assert.equal(peerAddress('[fd00::2]:443'), 'fd00::2');
  assert.equal(peerAddress('unix:/x'), null);
  assert.equal(portalRisk('127.0.0.1:15888', undefined), null);
  assert.equal(portalRisk('[::1]:15888', []), null);
  assert.equal(portalRisk('0.0.0.0:15888', ['10.0.0.0/8']), null);
  assert.match(portalRisk('0.0.0.0:15888', [])!, /not on loopback and has no --rpc-portal-whitelist: anyone who can reach it/);
  const r = loadNodeConfig(['--rpc-portal-whitelist', '10.0.0.0/8,fd00::/8', '--rpc-portal-whitelist', '192.168.1.5'], {});
  assert.deepEqual(r.kind === 'config' && r.config.rpcPortalWhitelist, ['10.0.0.0/8', 'fd00::/8', '192.168.1.5/32']);
  assert.throws(() => loadNodeConfig(['--rpc-portal-whitelist', '10.0.0.0/33'], {}), /--rpc-portal-whitelist: must be an integer in 0\.\.32/);
  assert.throws(() => loadNodeConfig(['--rpc-portal-whitelist', 'example.com'], {}), /--rpc-portal-whitelist: must be a CIDR/);
});
