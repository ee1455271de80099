/**
 * kcptube's way out of a dgram socket (udp-out.ts): a tick's equal-size datagrams to one address leave
 * in one GSO run, which a GRO reader takes as one message, and a dgram reader (kcptube's own) as the
 * same datagrams, byte for byte and in order; a send to another address keeps the order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { TubeSender } from '../../../daemon/kcptube/udp-out.js';
import { BatchUdpSocket } from '../../../daemon/peer/underlay/udp-batch.js';
import { GSO_SENDS } from '../../../daemon/peer/underlay/udp-gso.js';
import { peerAddon } from '../../../daemon/peer/native.js';

test('kcptube: a tick\'s datagrams leave in a GSO run, read whole with GRO and one by one by dgram', async (t) => {
  const gro = BatchUdpSocket.open('127.0.0.1', 0, { maxDatagram: 1500, recvBufferSize: 1 << 20, sendBufferSize: 0, gro: true });
  if (!gro) return t.skip('no peer addon');
  const plain = createSocket('udp4');
  const tx = createSocket('udp4');
  plain.bind(0, '127.0.0.1');
  tx.bind(0, '127.0.0.1');
  await Promise.all([once(plain, 'listening'), once(tx, 'listening')]);
  t.after(() => {
    gro.close();
    plain.close();
    tx.close();
  });
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
