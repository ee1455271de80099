/**
 * Two peer sessions over a virtual link that loses, duplicates, reorders and corrupts datagrams,
 * on a virtual clock, for many seeds. Whatever the link does: the sessions come up (redialling as
 * a connector would), nothing throws, every payload delivered is one that was sent, unaltered, and
 * none is delivered twice. A failing seed prints itself as SIM_SEED=n (SIM_SESSION_SEEDS=n sets the
 * count, default 1500).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { derivePsk, HandshakeResponder } from '../../daemon/peer/handshake.js';
import { PeerSession } from '../../daemon/peer/session.js';
import { PacketType } from '../../daemon/peer/wire.js';
import { seedsFor, sweep } from './seeds.js';

const HEADROOM = 8;
const T0 = 1_700_000_000_000;
const psk = derivePsk('sim', 'secret');

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

interface InFlight { at: number; to: 'a' | 'b'; bytes: Buffer }

function runSeed(seed: number): { delivered: number; sent: number } {
  const rand = rng(seed);
  const loss = rand() * 0.3;
  const dup = rand() * 0.2;
  const corrupt = rand() * 0.1;
  let now = T0;
  const wire: InFlight[] = [];
  const responder = new HandshakeResponder(psk, 2);
  let a = PeerSession.initiate(psk, 1, HEADROOM, now);
  let b: PeerSession | null = null;
  const sentPayloads = new Map<number, Buffer>();
  const seen = new Set<number>();
  let nextId = 0;

  const put = (to: 'a' | 'b', out: Buffer): void => {
    if (rand() < loss) return;
    const copies = rand() < dup ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const bytes = Buffer.from(out.subarray(HEADROOM));
      if (rand() < corrupt) bytes[Math.floor(rand() * bytes.length)]! ^= 1 << Math.floor(rand() * 8);
      wire.push({ at: now + 1 + Math.floor(rand() * 40), to, bytes });
    }
  };
  const drain = (): void => {
    for (let p = a.pollTransmit(); p; p = a.pollTransmit()) put('b', p);
    for (let p = b?.pollTransmit(); p; p = b?.pollTransmit()) put('a', p);
  };
  const receive = (payload: Buffer | null): void => {
    if (!payload) return;
    const id = payload.readUInt32LE(0);
    assert.ok(sentPayloads.has(id), `delivered a payload never sent`);
    assert.deepEqual(payload, sentPayloads.get(id), `payload ${id} altered`);
    assert.ok(!seen.has(id), `payload ${id} delivered twice`);
    seen.add(id);
  };

  for (let step = 0; step < 20_000 && now < T0 + 120_000; step++) {
    if (a.state === 'up' && nextId < 300 && rand() < 0.5) {
      const payload = Buffer.alloc(4 + Math.floor(rand() * 200));
      for (let i = 4; i < payload.length; i++) payload[i] = Math.floor(rand() * 256);
      payload.writeUInt32LE(nextId);
      sentPayloads.set(nextId++, payload);
      const out = a.seal(1, 2, PacketType.Data, 0, 1, payload);
      if (out) put('b', out);
    }
    drain();
    wire.sort((x, y) => x.at - y.at);
    const next = Math.min(wire[0]?.at ?? Infinity, a.pollTimeout(), b?.pollTimeout() ?? Infinity, now + 5);
    now = Math.max(now, next);
    while (wire.length > 0 && wire[0]!.at <= now) {
      const m = wire.shift()!;
      if (m.to === 'a') {
        a.input(m.bytes, now);
      } else if (b && b.state !== 'closed') {
        receive(b.input(m.bytes, now));
      } else {
        // A listener offers a packet of an unknown link to accept(); only a fresh, valid init passes.
        b = PeerSession.accept(responder, 2, HEADROOM, m.bytes, now);
      }
    }
    if (a.pollTimeout() <= now) a.handleTimeout(now);
    if (b && b.pollTimeout() <= now) b.handleTimeout(now);
    // The connector: a failed or dead session is replaced by a new dial (and a new link at B).
    if (a.state === 'closed') {
      a = PeerSession.initiate(psk, 1, HEADROOM, now);
      b = null;
    }
    if (nextId >= 300 && wire.length === 0) break;
  }
  assert.equal(a.state, 'up', `(loss ${loss.toFixed(2)}): A never came up`);
  return { delivered: seen.size, sent: nextId };
}

test('sessions over a lossy, duplicating, reordering, corrupting link (seeded)', (t) => {
  let delivered = 0;
  let sent = 0;
  sweep(t, 'peer session', seedsFor('SIM_SESSION_SEEDS', 1500), (seed) => {
    const r = runSeed(seed);
    delivered += r.delivered;
    sent += r.sent;
    return null;
  });
  assert.ok(sent > 0 && delivered > 0);
  assert.ok(delivered <= sent);
});
