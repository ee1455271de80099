/**
 * kcptube's way out of a dgram socket (udp-out.ts): a tick's equal-size datagrams to one address leave
 * in one GSO run, which a GRO reader takes as one message, and a dgram reader (kcptube's own) as the
 * same datagrams, byte for byte and in order; a send to another address keeps the order. Each
 * datagram the addon sent goes back to the tunnel that sent it, for its buffer to be reused.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { TubeSender } from '../../../daemon/kcptube/udp-out.js';
import { BatchUdpSocket } from '../../../daemon/peer/underlay/udp-batch.js';
import { GSO_SENDS } from '../../../daemon/peer/underlay/udp-gso.js';
import { peerAddon } from '../../../daemon/peer/native.js';

/** `n` dgram sockets bound on loopback, closed when the test ends. */
async function boundSockets(t: TestContext, n: number): Promise<Socket[]> {
  const sockets = Array.from({ length: n }, () => createSocket('udp4').bind(0, '127.0.0.1'));
  t.after(() => sockets.forEach((s) => s.close()));
  await Promise.all(sockets.map((s) => once(s, 'listening')));
  return sockets;
}

test('kcptube: a tick\'s datagrams leave in a GSO run, read whole with GRO and one by one by dgram', async (t) => {
  const gro = BatchUdpSocket.open('127.0.0.1', 0, { maxDatagram: 1500, recvBufferSize: 1 << 20, sendBufferSize: 0, gro: true });
  if (!gro) return t.skip('no peer addon');
  t.after(() => gro.close());
  const [plain, tx] = await boundSockets(t, 2);
  const errors: Error[] = [];
  const out = new TubeSender(tx, (e) => errors.push(e));
  // 40 datagrams of 1,200 bytes and a 300-byte tail to each reader, all in one tick.
  const sent = [...Array.from({ length: 40 }, () => randomBytes(1200)), randomBytes(300)];
  const toGro: Buffer[] = [];
  const toPlain: Buffer[] = [];
  const groDone = new Promise<void>((resolve) => gro.on('message', (d) => {
    if (toGro.push(Buffer.from(d)) === sent.length) resolve();
  }));
  const plainDone = new Promise<void>((resolve) => plain.on('message', (d) => {
    if (toPlain.push(d) === sent.length) resolve();
  }));
  for (const d of sent) out.send(d, gro.address().port, '127.0.0.1');
  for (const d of sent) out.send(d, plain.address().port, '127.0.0.1');
  await Promise.all([groDone, plainDone]);
  assert.deepEqual(toGro, sent);
  assert.deepEqual(toPlain, sent);
  assert.deepEqual(errors, []);
  if (GSO_SENDS && peerAddon()!.udpOffloads(gro.fd, false) & 1) assert.ok(gro.messages < gro.datagrams, 'the run was read as one GRO message');
});

test('kcptube: each datagram a batch took goes back to its own sender, and the reader gets them all in order', async (t) => {
  if (!peerAddon()) return t.skip('no peer addon');
  const [rx, tx] = await boundSockets(t, 2);
  const out = new TubeSender(tx, (e) => assert.fail(e));
  // Two tunnels behind one listening socket, sending to one address, their datagrams interleaved.
  const back: Uint8Array[][] = [[], []];
  const senders = [(d: Uint8Array) => back[0]!.push(d), (d: Uint8Array) => back[1]!.push(d)];
  const sent = Array.from({ length: 12 }, (_, i) => randomBytes(400 + i));
  const got: Buffer[] = [];
  const done = new Promise<void>((resolve) => rx.on('message', (d) => {
    if (got.push(d) === sent.length) resolve();
  }));
  // The first send binds nothing new (tx is bound), so every datagram can go through the addon.
  sent.forEach((d, i) => out.send(d, rx.address().port, '127.0.0.1', senders[i % 3 === 0 ? 0 : 1]));
  await done;
  assert.deepEqual(got, sent);
  assert.deepEqual(back[0], sent.filter((_, i) => i % 3 === 0), 'the first tunnel got back exactly its own');
  assert.deepEqual(back[1], sent.filter((_, i) => i % 3 !== 0), 'the second tunnel got back exactly its own');
  for (const [i, d] of sent.entries()) assert.ok(back[i % 3 === 0 ? 0 : 1]!.includes(d), 'the same buffer, not a copy');
});
