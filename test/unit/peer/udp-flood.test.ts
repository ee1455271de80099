/**
 * A UDP listener under a flood of strangers from many source ports keeps no state for them: garbage,
 * inits forged without the secret, and one genuine init replayed from a thousand other ports. Real
 * sockets, the real responder and session accept path (the peer manager's: refuse what
 * PeerSession.accept turns down).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { derivePsk, HandshakeResponder } from '../../../daemon/peer/handshake.js';
import { PeerSession } from '../../../daemon/peer/session.js';
import { UDP_HEADER_LEN, UdpListener } from '../../../daemon/peer/underlay/udp.js';
import { until } from './helpers.js';

const SOURCES = 250;
const PER_SOURCE = 24;

/** A handshake init as a UDP-underlay datagram for `connId`, sealed with `psk`. */
function initDatagram(psk: Buffer, connId: number): Buffer {
  const d = PeerSession.initiate(psk, 77, UDP_HEADER_LEN, Date.now()).pollTransmit()!;
  return withHeader(d, connId);
}

function withHeader(d: Buffer, connId: number): Buffer {
  d.writeUInt32LE(connId, 0);
  d[4] = 3; // data
  d[5] = 0;
  d.writeUInt16LE(d.length - UDP_HEADER_LEN, 6);
  return d;
}

test('a flood of garbage, forged and replayed inits from 250 source ports leaves no state behind', async (t) => {
  const psk = derivePsk('net', 'secret');
  const responder = new HandshakeResponder(psk, 1);
  const sessions: PeerSession[] = [];
  let offered = 0;
  const listener = await UdpListener.open('udp://127.0.0.1:0', { scheme: 'udp', host: '127.0.0.1', port: 0 }, (link, first) => {
    offered++;
    const s = PeerSession.accept(responder, 1, link.headroom, first, Date.now());
    if (!s) return link.refuse();
    sessions.push(s);
    link.onClose = () => {};
  });
  const port = Number(listener.boundUri.split(':').pop());
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
  const genuine = initDatagram(psk, 1);
  const wrongPsk = derivePsk('net', 'guess');
  let sent = 0;
  for (let round = 0; round < PER_SOURCE; round++) {
    await Promise.all(sockets.map((s, i) => {
      const connId = 1000 + round * SOURCES + i;
      const kind = round % 3;
      const d = kind === 0 ? withHeader(Buffer.concat([Buffer.alloc(UDP_HEADER_LEN), randomBytes(100)]), connId)
        : kind === 1 ? initDatagram(wrongPsk, connId)
          : withHeader(Buffer.from(genuine), connId);
      sent++;
      return new Promise<void>((resolve) => s.send(d, port, '127.0.0.1', () => resolve()));
    }));
    // Paced by rounds, so the flood is not lost in the socket buffer but reaches the accept path.
    await until(`round ${round} offered`, () => offered === sent);
  }
  assert.equal(sent, SOURCES * PER_SOURCE);
  const replays = (PER_SOURCE / 3) * SOURCES;
  // Only the genuine init's first copy became a session; its replays and the forgeries, nothing.
  assert.equal(sessions.length, 1);
  assert.equal(responder.rejected.replay, replays - 1);
  assert.equal(responder.rejected.mac, (PER_SOURCE / 3) * SOURCES);
  assert.equal(listener.linkCount, 1, 'the one half-confirmed link, nothing for the strangers');
  // Unconfirmed, it goes at the handshake deadline like any other.
  sessions[0]!.handleTimeout(Date.now() + 60_000);
  assert.equal(sessions[0]!.pollEvent()?.type, 'down');
});
