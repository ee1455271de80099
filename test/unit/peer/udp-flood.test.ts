/**
 * A UDP listener under a flood of strangers from many source ports keeps no state for them:
 * garbage, handshakes forged without the secret (a wrong digest, and the all-zero digest EasyTier
 * would take by name alone), and one genuine handshake replayed from 250 other ports. Real sockets,
 * the real EasyTier peer manager and its accept path.
 *
 * EasyTier's plain handshake carries no challenge, so a replayed genuine one is taken as EasyTier
 * takes it: the link comes up, but the replayer holds no key to answer a ping, and every such link
 * is gone at the ping deadline with nothing left behind. (--secure-mode's Noise handshake is the
 * defence against replays; secure-conn.test.ts and test/netns/secure-mode.test.ts cover it.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { etCipher } from '../../../daemon/peer/easytier/cipher.js';
import { encodeHandshake, ourHandshake } from '../../../daemon/peer/easytier/handshake.js';
import { secretDigest } from '../../../daemon/peer/easytier/identity.js';
import { EtPeerManager } from '../../../daemon/peer/easytier/manager.js';
import { buildPm, EtPacketType, ORIGIN_FORWARD_COUNTER } from '../../../daemon/peer/easytier/pm.js';
import { etConnTimers } from '../../../daemon/node/peer-layer.js';
import { UDP_HEADER_LEN } from '../../../daemon/peer/underlay/udp.js';
import { FAST_PEER, quietLog, until } from './helpers.js';

const SOURCES = 250;
const PER_SOURCE = 24;
const NET = 'net';

/** A HandShake from peer 77 proving `digest`, as a UDP-underlay datagram for `connId`. */
function handshakeDatagram(digest: Uint8Array, connId: number): Buffer {
  const body = encodeHandshake(ourHandshake({ peerId: 77, networkName: NET, digest }));
  const pm = buildPm({ from: 77, to: 0, type: EtPacketType.HandShake, flags: 0, forwardCounter: ORIGIN_FORWARD_COUNTER },
    body, etCipher('none', ''));
  return withHeader(Buffer.concat([Buffer.alloc(UDP_HEADER_LEN), pm]), connId);
}

function withHeader(d: Buffer, connId: number): Buffer {
  d.writeUInt32LE(connId, 0);
  d[4] = 3; // data
  d[5] = 0;
  d.writeUInt16LE(d.length - UDP_HEADER_LEN, 6);
  return d;
}

test('a flood of garbage, forged and replayed handshakes from 250 source ports leaves no state behind', async (t) => {
  const listener = new EtPeerManager({ networkName: NET, networkSecret: 'secret', encryption: 'aes-gcm', log: quietLog,
    timers: etConnTimers(FAST_PEER.timers), backoff: FAST_PEER.backoff,
    local: { hostname: 'l', ipv4: 0x0a000001, prefix: 24, proxyCidrs: [], features: 0 } });
  let ups = 0;
  listener.on('peer-up', () => ups++);
  const uri = await listener.listen('udp://127.0.0.1:0');
  const port = Number(uri.split(':').pop());
  const sockets: Socket[] = [];
  t.after(async () => {
    for (const s of sockets) s.close();
    await listener.close();
  });
  for (let i = 0; i < SOURCES; i++) {
    const s = createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    sockets.push(s);
  }
  const wrong = secretDigest(NET, 'guess');
  const zero = new Uint8Array(32);
  let refused = 0;
  for (let round = 0; round < PER_SOURCE - 1; round++) {
    await Promise.all(sockets.map((s, i) => {
      const connId = 1000 + round * SOURCES + i;
      const d = round % 3 === 0 ? withHeader(Buffer.concat([Buffer.alloc(UDP_HEADER_LEN), randomBytes(100)]), connId)
        : handshakeDatagram(round % 3 === 1 ? wrong : zero, connId);
      refused++;
      return new Promise<void>((resolve) => s.send(d, port, '127.0.0.1', () => resolve()));
    }));
    // Paced by rounds, so the flood is not lost in the socket buffer but reaches the accept path.
    await until(`round ${round} refused`, () => listener.stats.rejectedLinks === refused);
  }
  assert.equal(refused, SOURCES * (PER_SOURCE - 1));
  assert.equal(listener.peerConns().length, 0, 'garbage and forgeries: no link, no state');
  assert.equal(ups, 0);

  // The last round: one genuine handshake, replayed from every port.
  const genuine = handshakeDatagram(secretDigest(NET, 'secret'), 1);
  await Promise.all(sockets.map((s, i) => new Promise<void>((resolve) =>
    s.send(withHeader(Buffer.from(genuine), 900_000 + i), port, '127.0.0.1', () => resolve()))));
  await until('the replays taken, as EasyTier takes them', () => listener.peerConns().length > 0);
  // Nobody answers their pings: every replayed link closes at the ping deadline, and nothing is left.
  await until('every replayed link gone', () => listener.peerConns().length === 0, 10_000);
  assert.equal(listener.stats.rejectedLinks, refused, 'a genuine handshake is not counted as refused');
  assert.deepEqual(listener.routes.routes(), [], 'no route to the replayer remains');
});
