/**
 * The peer addon's batch-read UDP socket (udp-batch.ts, native/src/udp_recv.c), on loopback: datagrams
 * arrive whole and in order with their source addresses (IPv4 and a dual-stack IPv6 socket), each in
 * a Buffer of its own, with GRO on or off; GSO runs reach a GRO socket as one read each and leave it
 * as their exact datagrams, short last segments included; the socket's drop count rides on the
 * datagrams read after a drop; an ICMP port unreachable is an error of that socket only, after which
 * it keeps reading.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { peerAddon } from '../../../daemon/peer/native.js';
import { BatchUdpSocket, type BatchUdpOptions, type DatagramFrom } from '../../../daemon/peer/underlay/udp-batch.js';
import { DatagramBatcher } from '../../../daemon/peer/underlay/udp-gso.js';

const skip = !peerAddon() && 'no peer addon';
const OPTS = { maxDatagram: 2048, recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 };

function open(host: string, opts: BatchUdpOptions = OPTS): BatchUdpSocket {
  const s = BatchUdpSocket.open(host, 0, opts);
  assert.ok(s, 'the addon makes sockets');
  return s;
}

function datagram(i: number): Buffer {
  const d = Buffer.alloc(16 + (i % 1400));
  d.writeUInt32LE(i, 0);
  d.fill(i & 0xff, 4);
  return d;
}

test('datagrams arrive whole, in order, with their source, each in a Buffer of its own (GRO on or off)', { skip }, async () => {
  for (const gro of [false, true]) for (const [rxHost, txHost, to, seen] of [['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1'], ['::', '127.0.0.1', '127.0.0.1', '::ffff:127.0.0.1'], ['::1', '::1', '::1', '::1']]) {
    const rx = open(rxHost!, { ...OPTS, gro });
    const tx = open(txHost!);
    const got: { msg: Buffer; from: DatagramFrom }[] = [];
    const all = new Promise<void>((resolve) => rx.on('message', (msg, from) => {
      got.push({ msg, from });
      if (got.length === 300) resolve();
    }));
    for (let i = 0; i < 300; i++) tx.send(datagram(i), rx.address().port, to!);
    await all;
    got.forEach(({ msg, from }, i) => {
      assert.deepEqual(msg, datagram(i), `datagram ${i} intact (a later batch did not overwrite it)`);
      assert.equal(from.address, seen);
      assert.equal(from.port, tx.address().port);
    });
    assert.equal(rx.stats()[0], 300, 'the addon read them');
    rx.close();
    tx.close();
  }
});

test('the drop count rides on the datagrams read after a drop', { skip }, async () => {
  const rx = open('127.0.0.1', { ...OPTS, recvBufferSize: 4096 });
  const tx = open('127.0.0.1');
  // All in one turn of the event loop: nothing reads rx meanwhile, and a 4 KB buffer holds a few.
  for (let i = 0; i < 200; i++) tx.send(datagram(1000), rx.address().port, '127.0.0.1');
  const dropped = peerAddon()!.udpDrops(rx.fd);
  assert.ok(dropped > 100, `dropped ${dropped}`);
  let n = 0;
  const late = new Promise<void>((resolve) => rx.on('message', () => {
    if (++n === 1) tx.send(datagram(1), rx.address().port, '127.0.0.1'); // after the queue was read
    if (rx.drops > 0) resolve();
  }));
  await late;
  assert.equal(rx.drops, dropped);
  rx.close();
  tx.close();
});

test('a refused port is an error of that socket, which keeps reading', { skip }, async () => {
  const rx = open('127.0.0.1');
  const dead = open('127.0.0.1');
  const deadPort = dead.address().port;
  dead.close();
  const c = open('127.0.0.1');
  c.connect('127.0.0.1', deadPort);
  const errors: string[] = [];
  const refused = new Promise<void>((resolve) => c.on('error', (e) => {
    errors.push(e.code!);
    resolve();
  }));
  c.on('message', () => {});
  c.send(Buffer.from('anyone?'));
  await refused;
  assert.deepEqual(errors, ['ECONNREFUSED']);
  // The same socket, connected elsewhere, still reads.
  c.connect('127.0.0.1', rx.address().port);
  const back = new Promise<Buffer>((resolve) => c.on('message', (m) => resolve(m)));
  rx.on('message', (m, from) => rx.send(m, from.port, from.address));
  c.send(Buffer.from('echo'));
  assert.equal((await back).toString(), 'echo');
  for (const s of [rx, c]) s.close();
});

test('bind errors carry their errno code', { skip }, () => {
  const a = open('127.0.0.1');
  assert.throws(() => BatchUdpSocket.open('127.0.0.1', a.address().port, OPTS), { code: 'EADDRINUSE' });
  a.close();
});

test('GSO runs out of a batch socket reach a batch socket (GRO off) as their datagrams, whole and in order', { skip }, async () => {
  const rx = open('127.0.0.1');
  const tx = open('127.0.0.1', { ...OPTS, gsoSends: true });
  const gso = tx.gso()!;
  assert.equal(peerAddon()!.udpOffloads(rx.fd, false) & 2, 0, 'the probe leaves GRO off when not asked');
  // Whatever TSTIER_UDP_GSO says: where the kernel takes GSO sends, they are on for this socket.
  if (peerAddon()!.udpOffloads(tx.fd, false) & 1) gso.maxSegment = 0xffff;
  const sent = Array.from({ length: 150 }, (_, i) => Buffer.alloc(1200, i)); // two full runs of 64 and one of 22
  const got: Buffer[] = [];
  const all = new Promise<void>((resolve) => rx.on('message', (msg) => got.push(msg) === sent.length && resolve()));
  const fellBack: Buffer[] = [];
  const b = new DatagramBatcher(gso, '127.0.0.1', rx.address().port, (buf) => fellBack.push(buf));
  for (const d of sent) b.push(d);
  await new Promise<void>((resolve) => process.nextTick(resolve));
  assert.equal(fellBack.length, 0, 'every run went in one send');
  await all;
  assert.deepEqual(got, sent);
  assert.equal(rx.stats()[0], sent.length, 'one slot a datagram: the kernel cut the runs up');
  rx.close();
  tx.close();
});

test('GSO runs reach a GRO batch socket as one read each and leave it as their exact datagrams', { skip }, async () => {
  const rx = open('::', { ...OPTS, gro: true });
  const tx = open('127.0.0.1', { ...OPTS, gsoSends: true });
  const gso = tx.gso()!;
  if (!(peerAddon()!.udpOffloads(tx.fd, false) & 1)) return; // no GSO sends on this kernel: nothing to coalesce
  gso.maxSegment = 0xffff; // whatever TSTIER_UDP_GSO says
  // Runs as the batcher cuts them: 64 full segments; 30 and a short last one; a lone datagram; 5 of 700 and
  // a 1-byte tail; sizes changing mid-queue start a new run. Each datagram's bytes say which one it is.
  const sizes = [...Array(64).fill(1000), ...Array(30).fill(1000), 517, 40, ...Array(5).fill(700), 1, ...Array(70).fill(1200)] as number[];
  const sent = sizes.map((n, i) => {
    const d = Buffer.alloc(n, i & 0xff);
    if (n >= 2) d.writeUInt16LE(i, 0);
    return d;
  });
  const got: Buffer[] = [];
  const from: DatagramFrom[] = [];
  const all = new Promise<void>((resolve) => rx.on('message', (msg, f) => {
    from.push(f);
    if (got.push(msg) === sent.length) resolve();
  }));
  const fellBack: Buffer[] = [];
  const b = new DatagramBatcher(gso, '127.0.0.1', rx.address().port, (buf) => {
    fellBack.push(buf);
    tx.send(buf, rx.address().port, '127.0.0.1');
  });
  for (const d of sent) b.push(d);
  await new Promise<void>((resolve) => process.nextTick(resolve));
  assert.deepEqual(fellBack.map((d) => d.length), [40], 'every run went in one GSO send, the lone datagram alone');
  await all;
  assert.deepEqual(got.map((m) => m.length), sizes, 'boundaries: each datagram its own length, short tails included');
  assert.deepEqual(got, sent, 'bytes intact, in order (a later read did not overwrite a kept view)');
  assert.ok(from.every((f) => f.address === '::ffff:127.0.0.1' && f.port === tx.address().port), 'each datagram has its run\'s source');
  assert.ok(rx.messages <= 12, `runs read whole: ${rx.messages} messages for 6 GSO sends and a lone datagram`);
  assert.equal(rx.stats()[0], sent.length, 'the addon counts datagrams, not reads');
  assert.equal(rx.stats()[4], 0, 'nothing truncated');
  // The kernel counts a dropped GRO message as one drop: each counts as a run of the average read.
  assert.equal(rx.datagrams, sent.length);
  const run = sent.length / rx.messages;
  assert.ok(run > 10, `${rx.messages} messages for ${sent.length} datagrams`);
  assert.equal(rx.droppedDatagrams(0), 0);
  assert.equal(rx.droppedDatagrams(3), Math.round(3 * run));
  assert.equal(rx.droppedDatagrams(3), Math.round(3 * run), 'a drop is counted once');
  assert.equal(rx.droppedDatagrams(4), Math.round(3 * run) + Math.round(run));
  rx.close();
  tx.close();
});
