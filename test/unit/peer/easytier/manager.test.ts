/**
 * easytier-core's peer layer on EasyTier's wire (daemon/peer/easytier/manager.ts) over loopback
 * sockets: A-B-C in a line over udp:// (Syn/Sack) and tcp://; a tstier carrier packet crosses the
 * relay as its private type and reaches the handler registered under tstier's number; EasyTier's own
 * KcpSrc reaches the kcp-sys hook instead; a stranger's garbage and a wrong secret are refused
 * without a link; a closed node's goodbye is a peer-gone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { EtPeerManager } from '../../../../daemon/peer/easytier/manager.js';
import { EtPacketType, TstierPacketType } from '../../../../daemon/peer/easytier/pm.js';
import { Feature } from '../../../../daemon/peer/route-record.js';
import { PacketType } from '../../../../daemon/peer/wire.js';
import { quietLog, until } from '../helpers.js';

function manager(hostname: string, ip: number, secret = 'sesame', proxyCidrs: string[] = []): EtPeerManager {
  return new EtPeerManager({ networkName: 'n1', networkSecret: secret, encryption: 'aes-gcm', log: quietLog,
    backoff: { baseMs: 50, maxMs: 200 }, local: { hostname, ipv4: ip, prefix: 24, proxyCidrs, features: Feature.KcpInput } });
}

test('A-B-C over udp:// and tcp://: routes, relayed carrier packets, the kcp-sys hook, goodbye', async (t) => {
  const [a, b, c] = [manager('a', 0x0a000001), manager('b', 0x0a000002, 'sesame', ['192.168.9.0/24->172.20.0.0/16']), manager('c', 0x0a000003)];
  t.after(() => Promise.all([a.close(), b.close(), c.close()]));
  const bUdp = await b.listen('udp://127.0.0.1:0');
  const bTcp = await b.listen('tcp://127.0.0.1:0');
  a.connect(bUdp);
  c.connect(bTcp);
  await until('A routes to C via B', () => a.routes.nextHop(c.peerId) === b.peerId && c.routes.nextHop(a.peerId) === b.peerId);
  assert.equal(a.routes.lookupIpv4(0x0a000003), c.peerId);
  assert.equal(a.routes.lookupProxy(0xac140001), b.peerId, 'B\'s range, announced as its mapped CIDR');
  assert.equal(a.routes.lookupProxy(0xc0a80901), undefined, 'the real one behind the mapping is not announced');
  assert.equal(a.routes.lookupIpv4(0x0a000001), a.peerId, 'our own address answers with our id');
  const rc = a.routes.record(c.peerId)!;
  assert.deepEqual([rc.hostname, rc.softwareVersion, rc.features], ['c', '2.6.4-tstier', Feature.KcpInput]);
  assert.equal(a.routes.advertised(c.peerId), 0, 'EasyTier\'s own kcp_input stays off: we speak no kcp-sys yet');

  // tstier's KCP carrier (registered as tstier's KcpSrc) crosses B as the private type.
  const carrier: string[] = [];
  const kcpSys: string[] = [];
  c.onPacket(PacketType.KcpSrc, (from, p) => carrier.push(`${from}:${p.toString()}`));
  c.onEasyTierPacket(EtPacketType.KcpSrc, (from, p) => kcpSys.push(`${from}:${p.toString()}`));
  assert.equal(a.sendTo(c.peerId, PacketType.KcpSrc, Buffer.from('tstier carrier')), true);
  assert.equal(a.sendEasyTier(c.peerId, EtPacketType.KcpSrc, Buffer.from('kcp-sys')), true);
  await until('both reach C', () => carrier.length === 1 && kcpSys.length === 1);
  assert.deepEqual([carrier, kcpSys], [[`${a.peerId}:tstier carrier`], [`${a.peerId}:kcp-sys`]]);
  assert.equal(b.stats.forwarded, 2);
  assert.notEqual(TstierPacketType.KcpSrc, EtPacketType.KcpSrc);

  // Turning EasyTier's kcp_input on reaches the others as a new info version.
  c.advertiseEasyTierInput({ kcpInput: true, quicInput: false });
  await until('A sees C\'s kcp_input', () => (a.routes.advertised(c.peerId) ?? 0) === Feature.KcpInput);

  // C closes: its TCP link ends, which B reports as gone (the process, not just an outage).
  const gone: number[] = [];
  b.on('peer-gone', (id: number) => gone.push(id));
  const cId = c.peerId;
  await c.close();
  await until('B: C is gone', () => gone.includes(cId));
  await until('A forgets the route to C', () => a.routes.nextHop(cId) === undefined);
});

test('strangers get nothing: garbage and a wrong secret are refused without a link', async (t) => {
  const b = manager('b', 0x0a000002);
  const intruder = manager('x', 0x0a000009, 'wrong');
  t.after(() => Promise.all([b.close(), intruder.close()]));
  const uri = await b.listen('udp://127.0.0.1:0');
  const port = Number(new URL(uri).port);
  const sock = createSocket('udp4');
  t.after(() => sock.close());
  // A Data datagram (conn_id 7) holding 40 bytes that are no handshake.
  const junk = Buffer.alloc(48);
  junk.writeUInt32LE(7, 0);
  junk[4] = 3;
  junk.writeUInt16LE(40, 6);
  await new Promise<void>((r) => sock.send(junk, port, '127.0.0.1', () => r()));
  await until('junk refused', () => b.stats.rejectedLinks === 1);
  intruder.connect(uri);
  await until('wrong secret refused', () => b.stats.rejectedLinks >= 2);
  assert.deepEqual([b.peerConns(), intruder.peerConns(), [...b.routes.reachable()]], [[], [], []]);
});

test('a handler that throws closes the link the packet came on, not the process; the peer comes back', async (t) => {
  const [a, b, c] = [manager('a', 0x0a000001), manager('b', 0x0a000002), manager('c', 0x0a000003)];
  t.after(() => Promise.all([a.close(), b.close(), c.close()]));
  const uri = await b.listen('tcp://127.0.0.1:0');
  a.connect(uri);
  c.connect(uri);
  await until('A and C up at B', () => b.peerConns().length === 2);
  const downs: number[] = [];
  b.on('peer-down', (peer: number) => downs.push(peer));
  b.onPacket(PacketType.KcpSrc, (from) => {
    if (from === a.peerId) throw new Error('a bug in some handler');
  });
  assert.equal(a.sendTo(b.peerId, PacketType.KcpSrc, Buffer.from('boom')), true);
  await until('B closed the session with A', () => b.stats.sessionFaults === 1 && downs.length === 1);
  assert.deepEqual(downs, [a.peerId]);
  assert.deepEqual(b.peerConns().map((p) => p.peerId), [c.peerId], 'C is untouched');
  // A's connector notices (its TCP link ended) and dials again.
  await until('A back at B', () => b.peerConns().length === 2 && a.routes.nextHop(b.peerId) === b.peerId);
  assert.equal(b.stats.sessionFaults, 1);
});
