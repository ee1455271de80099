/**
 * hostDrops(): the kernel's own count of datagrams a node's UDP underlay socket dropped unread (its
 * receive buffer full), through the peer addon's udpDrops. A real socket is flooded over loopback
 * while the event loop cannot read it, so the kernel must drop. udpDropTotals(), the metrics' count,
 * keeps a closed socket's drops.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { peerAddon } from '../../../daemon/peer/native.js';
import { hostDrops, udpDropTotals, watchDrops } from '../../../daemon/peer/underlay/udp-drops.js';
import { dgramFd } from '../../../daemon/peer/underlay/udp-gso.js';

const bound = (s: Socket): Promise<void> => new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve()));

test('a flooded socket\'s drops are counted, by the socket and in hostDrops; a closed one no longer counts there, only in the metrics\' totals', { skip: !peerAddon() && 'no peer addon' }, async () => {
  const addon = peerAddon()!;
  const rx = createSocket({ type: 'udp4', recvBufferSize: 4096 });
  const tx = createSocket('udp4');
  await bound(rx);
  await bound(tx);
  watchDrops(rx);
  const fd = dgramFd(rx)!;
  assert.equal(addon.udpDrops(fd), 0, 'a fresh socket has dropped nothing');
  const before = hostDrops();
  const totalBefore = udpDropTotals().receive;
  const batch = Array.from({ length: 64 }, () => new Uint8Array(1000));
  // All in one turn of the event loop: nothing reads rx meanwhile, and a 4 KB buffer holds a few.
  let sent = 0;
  for (let i = 0; i < 16; i++) sent += Math.max(0, addon.udpSendMany(dgramFd(tx)!, batch, 0, batch.length, '127.0.0.1', rx.address().port));
  const dropped = addon.udpDrops(fd);
  assert.ok(sent > 500, `sent ${sent}`);
  assert.ok(dropped > sent / 2 && dropped <= sent, `dropped ${dropped} of ${sent}`);
  assert.equal(hostDrops() - before, dropped);
  await new Promise<void>((resolve) => rx.close(() => resolve()));
  assert.equal(hostDrops(), before, 'a closed socket takes its count along');
  assert.equal(udpDropTotals().receive - totalBefore, dropped, 'but the metrics keep it');
  tx.close();
});
