/**
 * The peer layer over real loopback sockets: three managers in a line (UDP and TCP links), a
 * relayed packet, a node with the wrong secret, a port already in use, and a relay that leaves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { PeerManager } from '../../../daemon/peer/peer-manager.js';
import { connect } from 'node:net';
import { Feature } from '../../../daemon/peer/route-record.js';
import { PacketType } from '../../../daemon/peer/wire.js';
import { FAST_PEER, quietLog, until } from './helpers.js';


function manager(hostname: string, ip: number, secret = 'sesame', features = 0): PeerManager {
  return new PeerManager({ networkName: 'n1', networkSecret: secret, log: quietLog, ...FAST_PEER,
    local: { hostname, ipv4: ip, prefix: 24, proxyCidrs: [], features } });
}

test('A-B-C in a line over UDP and TCP: routes converge and a packet crosses the relay', async (t) => {
  const [a, b, c] = [manager('a', 0x0a000001), manager('b', 0x0a000002), manager('c', 0x0a000003)];
  t.after(() => Promise.all([a.close(), b.close(), c.close()]));
  const bUdp = await b.listen('udp://127.0.0.1:0');
  const bTcp = await b.listen('tcp://127.0.0.1:0');
  a.connect(bUdp);
  c.connect(bTcp);
  await until('A routes to C via B', () => a.routes.nextHop(c.peerId) === b.peerId && c.routes.nextHop(a.peerId) === b.peerId);
  assert.equal(a.routes.lookupIpv4(0x0a000003), c.peerId);

  const got: Array<{ from: number; data: string }> = [];
  c.onPacket(PacketType.KcpSrc, (from, payload) => got.push({ from, data: payload.toString() }));
  assert.equal(a.sendTo(c.peerId, PacketType.KcpSrc, Buffer.from('through b')), true);
  await until('C receives', () => got.length === 1);
  assert.deepEqual(got, [{ from: a.peerId, data: 'through b' }]);
  assert.equal(b.stats.forwarded, 1);
  assert.equal(a.peerConns().length, 1);
  assert.equal(b.peerConns().length, 2);

  // B leaves: A and C notice (UDP goodbye / TCP close), then B's and each other's records expire.
  await b.close();
  await until('A forgets C', () => a.routes.nextHop(c.peerId) === undefined && a.routes.record(c.peerId) === undefined);
  assert.equal(a.sendTo(c.peerId, PacketType.KcpSrc, Buffer.from('x')), false);
});

test('a node with the wrong secret gets no answer and never appears in a route table', async (t) => {
  const [a, b] = [manager('a', 0x0a000001), manager('b', 0x0a000002)];
  const intruder = manager('x', 0x0a000009, 'wrong');
  t.after(() => Promise.all([a.close(), b.close(), intruder.close()]));
  const bUdp = await b.listen('udp://127.0.0.1:0');
  const bTcp = await b.listen('tcp://127.0.0.1:0');
  a.connect(bUdp);
  intruder.connect(bUdp);
  intruder.connect(bTcp);
  await until('A and B up', () => a.routes.nextHop(b.peerId) === b.peerId);
  await until('intruder tried both', () => b.responder.rejected.mac >= 4);
  assert.equal(intruder.peerConns().length, 0);
  for (const m of [a, b]) assert.equal(m.routes.record(intruder.peerId), undefined);
  assert.equal(intruder.routes.routes().length, 0);
  assert.ok(b.stats.rejectedLinks >= 2);
});

test('a listen port in use is TSTIER_E_ADDR_IN_USE naming the listener', async (t) => {
  const busy = createSocket('udp4');
  await new Promise<void>((r) => busy.bind(0, '127.0.0.1', r));
  const m = manager('a', 1);
  t.after(async () => { busy.close(); await m.close(); });
  const uri = `udp://127.0.0.1:${busy.address().port}`;
  await assert.rejects(m.listen(uri), (e: Error & { code?: string }) =>
    e.code === 'TSTIER_E_ADDR_IN_USE' && e.message.includes(uri));
  const tcpUri = await m.listen('tcp://127.0.0.1:0');
  await assert.rejects(m.listen(tcpUri), (e: Error & { code?: string }) =>
    e.code === 'TSTIER_E_ADDR_IN_USE' && e.message.includes(tcpUri));
});

test('garbage datagrams at a listener never throw; the node keeps working', async (t) => {
  const [a, b] = [manager('a', 1), manager('b', 2)];
  const raw = createSocket('udp4');
  t.after(async () => { raw.close(); await Promise.all([a.close(), b.close()]); });
  const bUdp = await b.listen('udp://127.0.0.1:0');
  const port = Number(bUdp.split(':').pop());
  for (let i = 0; i < 300; i++) {
    const g = Buffer.alloc(i % 90, i);
    if (g.length >= 8) { g.writeUInt16LE(g.length - 8, 6); g[4] = 3 + (i % 2); }
    raw.send(g, port, '127.0.0.1');
  }
  a.connect(bUdp);
  await until('A and B up despite the noise', () => a.routes.nextHop(b.peerId) === b.peerId);
});

test('a relay that advertises no_relay_kcp carries Data but not KCP packets', async (t) => {
  const [a, b, c] = [manager('a', 1), manager('b', 2, 'sesame', Feature.NoRelayKcp), manager('c', 3)];
  t.after(() => Promise.all([a.close(), b.close(), c.close()]));
  const bUdp = await b.listen('udp://127.0.0.1:0');
  a.connect(bUdp);
  c.connect(bUdp);
  await until('A routes to C', () => a.routes.nextHop(c.peerId) === b.peerId);
  assert.equal(a.routes.record(b.peerId)!.features & Feature.NoRelayKcp, Feature.NoRelayKcp);
  const got: number[] = [];
  c.onPacket(PacketType.KcpSrc, () => got.push(PacketType.KcpSrc));
  c.onPacket(PacketType.Data, () => got.push(PacketType.Data));
  a.sendTo(c.peerId, PacketType.KcpSrc, Buffer.from('k'));
  a.sendTo(c.peerId, PacketType.Data, Buffer.from('d'));
  await until('B handled both', () => b.stats.relayRefused + b.stats.forwarded === 2);
  await until('C got the Data', () => got.length === 1);
  assert.deepEqual(got, [PacketType.Data]);
  assert.equal(b.stats.relayRefused, 1);
});

test('garbage on a TCP listener: an oversized frame is closed at once, a bad handshake gets only silence', async (t) => {
  const [a, b] = [manager('a', 1), manager('b', 2)];
  t.after(() => Promise.all([a.close(), b.close()]));
  const bTcp = await b.listen('tcp://127.0.0.1:0');
  const port = Number(bTcp.split(':').pop());
  await new Promise<void>((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => s.write(Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3])));
    s.on('close', () => resolve());
    s.on('error', () => {});
  });
  assert.equal(b.stats.rejectedLinks, 0, 'the oversized frame never became a packet');

  let answered = false;
  const s = connect({ host: '127.0.0.1', port }, () => s.write(Buffer.concat([Buffer.from([40, 0, 0, 0]), Buffer.alloc(40, 2)])));
  s.on('data', () => { answered = true; });
  s.on('end', () => { answered = true; });
  s.on('error', () => {});
  await until('B refuses it', () => b.stats.rejectedLinks === 1);
  a.connect(bTcp);
  await until('A and B up meanwhile', () => a.routes.nextHop(b.peerId) === b.peerId);
  assert.equal(answered, false, 'no byte and no FIN for the refused stream');
  s.destroy();
});

test('forward counter: seven hops arrive, the eighth hop is one too many', async (t) => {
  const line = Array.from({ length: 9 }, (_, i) => manager(`n${i}`, 0x0a000001 + i));
  t.after(() => Promise.all(line.map((m) => m.close())));
  for (let i = 1; i < line.length; i++) line[i]!.connect(await line[i - 1]!.listen('udp://127.0.0.1:0'));
  const [first, last] = [line[0]!, line[8]!];
  await until('routes across eight hops', () => first.routes.routes().find((r) => r.record.peerId === last.peerId)?.cost === 8);
  const got: string[] = [];
  for (const m of line) m.onPacket(PacketType.QuicSrc, (_from, payload) => got.push(payload.toString()));
  first.sendTo(line[7]!.peerId, PacketType.QuicSrc, Buffer.from('seven hops'));
  first.sendTo(last.peerId, PacketType.QuicSrc, Buffer.from('eight hops'));
  await until('the long one dropped', () => line.some((m) => m.stats.hopLimit === 1));
  await until('the short one delivered', () => got.length === 1);
  assert.deepEqual(got, ['seven hops']);
  assert.equal(line[7]!.stats.hopLimit, 1, 'dropped by the seventh relay');
});

test('rekeying replaces sessions make-before-break: routes never drop, packets keep flowing', async (t) => {
  const mk = (hostname: string, ip: number): PeerManager => new PeerManager({ networkName: 'n1', networkSecret: 'sesame',
    log: quietLog, ...FAST_PEER, rekeyMs: 200, local: { hostname, ipv4: ip, prefix: 24, proxyCidrs: [], features: 0 } });
  const [a, b] = [mk('a', 1), mk('b', 2)];
  t.after(() => Promise.all([a.close(), b.close()]));
  const downs: string[] = [];
  a.on('peer-down', () => downs.push('a'));
  b.on('peer-down', () => downs.push('b'));
  for (const [name, uri] of [['udp', await b.listen('udp://127.0.0.1:0')], ['tcp', await b.listen('tcp://127.0.0.1:0')]]) {
    a.connect(uri!);
    await until(`${name} up`, () => a.peerConns().some((r) => r.remoteUri === uri));
  }
  const firstEstablished = Math.max(...a.peerConns().map((r) => r.establishedAt));
  await until('every session replaced, four times in all', () => a.stats.rekeys >= 4
    && a.peerConns().every((r) => r.establishedAt > firstEstablished));
  assert.equal(a.peerConns().length, 2, 'a replaced session leaves as its successor arrives');
  await until('B let the replaced ones go too', () => b.peerConns().length === 2);
  assert.deepEqual(downs, [], 'no peer ever went down');
  const got: string[] = [];
  b.onPacket(PacketType.KcpDst, (_f, p) => got.push(p.toString()));
  a.onPacket(PacketType.KcpDst, (_f, p) => got.push(p.toString()));
  a.sendTo(b.peerId, PacketType.KcpDst, Buffer.from('a->b'));
  b.sendTo(a.peerId, PacketType.KcpDst, Buffer.from('b->a'));
  await until('both delivered', () => got.length === 2);
  assert.deepEqual(got.sort(), ['a->b', 'b->a']);
});

test('an exception while handling one peer\'s packet closes that session only; the peer comes back', async (t) => {
  const [a, b, c] = [manager('a', 0x0a000001), manager('b', 0x0a000002), manager('c', 0x0a000003)];
  t.after(() => Promise.all([a.close(), b.close(), c.close()]));
  const bUdp = await b.listen('udp://127.0.0.1:0');
  a.connect(bUdp);
  c.connect(bUdp);
  await until('B has A and C', () => b.peerConns().length === 2 && a.routes.nextHop(b.peerId) === b.peerId);
  const downs: number[] = [];
  b.on('peer-down', (peer: number) => downs.push(peer));
  b.onPacket(PacketType.KcpSrc, (from) => {
    if (from === a.peerId) throw new Error('a bug in some handler');
  });
  assert.equal(a.sendTo(b.peerId, PacketType.KcpSrc, Buffer.from('boom')), true);
  await until('B closed the session with A', () => b.stats.sessionFaults === 1 && downs.length === 1);
  assert.deepEqual(downs, [a.peerId]);
  assert.deepEqual(b.peerConns().map((p) => p.peerId), [c.peerId], 'C is untouched');
  // A's connector notices (B said goodbye) and dials again.
  await until('A back at B', () => b.peerConns().length === 2 && a.routes.nextHop(b.peerId) === b.peerId);
});
