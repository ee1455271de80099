/** Where the destination side dials: mapped ranges back to real, own services refused, --no-tun on loopback. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeConfig } from '../../../daemon/config/node-config.js';
import { resolveAddresses } from '../../../daemon/config/addresses.js';
import { type SocketAddr, socketAddrOf } from '../../../daemon/packet/flow-key.js';
import { dstDialTarget as targetIn, type DialTarget } from '../../../daemon/proxy/dial-target.js';

const sa = (ip: string, port: number): SocketAddr => socketAddrOf(ip, port)!;
const dstDialTarget = (dst: SocketAddr, c: NodeConfig): DialTarget => targetIn(dst, resolveAddresses(c), c.noTun);

const cfg = (over: Partial<NodeConfig>): NodeConfig => ({
  instanceName: 'default', hostname: 'h', networkName: 'n', networkSecret: 's', listeners: ['udp://0.0.0.0:11010'], peers: [],
  proxyNetworks: [{ cidr: '192.168.12.0/24', mappedCidr: '10.99.12.0/24' }], rpcPortal: '127.0.0.1:15888', devName: '',
  mtu: 1380, noTun: false, useSmoltcp: false, enableKcpProxy: false, disableKcpInput: false, enableQuicProxy: false,
  disableQuicInput: false, disableRelayKcp: false, disableRelayQuic: false, proxyOptimistic: false, proxyFlowTimeout: 30, logLevel: 'info', quicCongestion: 'bbr',
  ipv4: { address: '10.144.1.2', prefix: 24 }, ...over,
});

test('dial target: a mapped address dials the real host, host bits kept', () => {
  assert.deepEqual(dstDialTarget(sa('10.99.12.7', 80), cfg({})), { ok: true, ip: '192.168.12.7' });
  assert.deepEqual(dstDialTarget(sa('192.168.12.7', 80), cfg({})), { ok: true, ip: '192.168.12.7' });
});

test("dial target: the node's own listener and RPC ports are refused", () => {
  assert.equal(dstDialTarget(sa('10.144.1.2', 11010), cfg({})).ok, false);
  assert.equal(dstDialTarget(sa('10.144.1.2', 15888), cfg({ noTun: true })).ok, false);
});

test('dial target: with --no-tun the own address is dialled on loopback; with a TUN as is', () => {
  assert.deepEqual(dstDialTarget(sa('10.144.1.2', 8080), cfg({ noTun: true })), { ok: true, ip: '127.0.0.1' });
  assert.deepEqual(dstDialTarget(sa('10.144.1.2', 8080), cfg({})), { ok: true, ip: '10.144.1.2' });
});

test("dial target: the node's own IPv6 service ports are refused, in any spelling; other IPv6 is dialled as is", () => {
  const v6 = cfg({ ipv6: { address: 'fd00:0:0::2', prefix: 64 } });
  assert.equal(dstDialTarget(sa('fd00::2', 11010), v6).ok, false);
  assert.equal(dstDialTarget(sa('fd00::2', 15888), v6).ok, false);
  assert.deepEqual(dstDialTarget(sa('fd00::2', 8080), v6), { ok: true, ip: 'fd00::2' });
  assert.deepEqual(dstDialTarget(sa('fd00::3', 11010), v6), { ok: true, ip: 'fd00::3' });
  assert.deepEqual(dstDialTarget(sa('fd00::2', 11010), cfg({})), { ok: true, ip: 'fd00::2' }, 'not ours without --ipv6');
});
