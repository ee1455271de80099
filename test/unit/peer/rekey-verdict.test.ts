/**
 * A peer that rekeys without waiting for us (it closes its old link as soon as its own side of the new
 * session is up) is not taken for a dead one: the listening manager sees its only live session end with
 * a goodbye while the next one is still being taken up, and waits for that one before any verdict. The
 * peer here is a hand-driven PeerSession over real loopback UDP links, so the test decides when the
 * new session's first sealed packet (its key confirmation) leaves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nowMs } from '../../../daemon/io/clock.js';
import { derivePsk } from '../../../daemon/peer/handshake.js';
import { PeerManager } from '../../../daemon/peer/peer-manager.js';
import { PeerSession } from '../../../daemon/peer/session.js';
import { parseUnderlayUri, type UnderlayLink } from '../../../daemon/peer/underlay/link.js';
import { dialUdp } from '../../../daemon/peer/underlay/udp.js';
import { FAST_PEER, quietLog, until } from './helpers.js';

const PEER_ID = 0x5eed;

/** A session of ours over a new link to `uri`; what it queues stays queued until `send()`. */
async function dialSession(uri: string): Promise<{ link: UnderlayLink; session: PeerSession; send: () => void }> {
  const link = await dialUdp(uri, parseUnderlayUri(uri, 'peers'));
  const session = PeerSession.initiate(derivePsk('n1', 'sesame'), PEER_ID, link.headroom, nowMs(), FAST_PEER.timers, Date.now());
  link.onPacket = (pkt) => void session.input(pkt, nowMs());
  const send = (): void => {
    for (let p = session.pollTransmit(); p; p = session.pollTransmit()) link.send(p);
  };
  return { link, session, send };
}

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<{ b: PeerManager; uri: string; events: string[] }> {
  const b = new PeerManager({ networkName: 'n1', networkSecret: 'sesame', log: quietLog, ...FAST_PEER,
    local: { hostname: 'b', ipv4: 0x0a000002, prefix: 24, proxyCidrs: [], features: 0 } });
  t.after(() => b.close());
  const events: string[] = [];
  for (const ev of ['peer-up', 'peer-down', 'peer-gone'] as const) b.on(ev, () => events.push(ev));
  return { b, uri: await b.listen('udp://127.0.0.1:0'), events };
}

/** Our first session, up at both ends; then a rekey's, answered by B but not yet confirmed to it. */
async function rekeyHalfway(uri: string, events: string[]): Promise<{ old: UnderlayLink; next: Awaited<ReturnType<typeof dialSession>> }> {
  const first = await dialSession(uri);
  first.send();
  await until('our first session up', () => first.session.state === 'up');
  first.send(); // its key confirmation: B takes the session up
  await until('B has the peer up', () => events.includes('peer-up'));
  const next = await dialSession(uri);
  next.send();
  await until('B answered the rekey', () => next.session.state === 'up');
  return { old: first.link, next };
}

test('the old link\'s goodbye while the new session is being taken up: no peer gone, the peer stays', async (t) => {
  const { b, uri, events } = await setup(t);
  const { old, next } = await rekeyHalfway(uri, events);
  old.close();
  await until('B saw the goodbye', () => events.includes('peer-down'));
  next.send();
  await until('B took the new session up', () => b.peerConns().length === 1 && events.at(-1) === 'peer-up');
  assert.deepEqual(events, ['peer-up', 'peer-down', 'peer-up'], 'never peer-gone');
  next.link.close();
});

test('... and if the new session is never taken up, the peer is gone once it fails', async (t) => {
  const { uri, events } = await setup(t);
  const { old, next } = await rekeyHalfway(uri, events);
  old.close();
  await until('B saw the goodbye', () => events.includes('peer-down'));
  assert.ok(!events.includes('peer-gone'), 'not while the new session may still come up');
  await until('the new session timed out: peer gone', () => events.includes('peer-gone'), 3000);
  next.link.close();
});
