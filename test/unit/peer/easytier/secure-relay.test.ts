/**
 * Relay sessions (Noise IK on types 20/21) between two nodes that are not neighbours, sans-IO and
 * on a virtual clock: packets wait for the handshake and then go sealed; both ends starting at once
 * settle on one session (the lower peer id initiates); an initiator whose static key is not the one
 * route sync announced is refused; an unanswered handshake is retried and then given up, counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecureRelay, RELAY_HANDSHAKE_TIMEOUT_MS } from '../../../../daemon/peer/easytier/secure-relay.js';
import { SecureSessionStore } from '../../../../daemon/peer/easytier/secure-session-store.js';
import { x25519Generate } from '../../../../daemon/peer/easytier/secure-noise.js';
import { secretDigest } from '../../../../daemon/peer/easytier/identity.js';
import { EtPacketType, PmFlag, splitPm } from '../../../../daemon/peer/easytier/pm.js';
import type { SecureIdentity } from '../../../../daemon/peer/easytier/secure-handshake.js';

function ident(peerId: number): SecureIdentity {
  return { peerId, networkName: 'rel-net', networkSecret: 's', digest: secretDigest('rel-net', 's'), staticKey: x25519Generate(), algorithm: 'aes-gcm', sessions: new SecureSessionStore() };
}

/** Two relays that know each other's static keys (as route sync would tell them). */
function pair(idA = 10, idC = 30): { a: SecureRelay; c: SecureRelay; ia: SecureIdentity; ic: SecureIdentity } {
  const ia = ident(idA);
  const ic = ident(idC);
  const keys = new Map([[idA, ia.staticKey.publicKey], [idC, ic.staticKey.publicKey]]);
  return { a: new SecureRelay(ia, (id) => keys.get(id)), c: new SecureRelay(ic, (id) => keys.get(id)), ia, ic };
}

/** Delivers `pms` to `to`; returns what it sends back and what it opened. */
function deliver(to: SecureRelay, pms: Uint8Array[], now = 0): { back: Uint8Array[]; opened: string[] } {
  const back: Uint8Array[] = [];
  const opened: string[] = [];
  for (const pm of pms) {
    const p = splitPm(pm)!;
    const r = to.input(p.header, p.body, now);
    if ('send' in r) back.push(...r.send);
    else if ('payload' in r) opened.push(Buffer.from(r.payload).toString());
  }
  return { back, opened };
}

test('packets wait for the IK handshake (types 20, 21), then go sealed and open at the far end', () => {
  const { a, c } = pair();
  const first = a.send(EtPacketType.Data, 30, Buffer.from('one'), 1, 0);
  assert.deepEqual(first.map((pm) => pm[8]), [EtPacketType.RelayHandshake]);
  assert.deepEqual(a.send(EtPacketType.Data, 30, Buffer.from('two'), 1, 0), [], 'queued behind the handshake');
  const ack = deliver(c, first).back;
  assert.deepEqual(ack.map((pm) => pm[8]), [EtPacketType.RelayHandshakeAck]);
  const queued = deliver(a, ack).back;
  assert.equal(queued.length, 2);
  assert.ok(queued.every((pm) => pm[8] === EtPacketType.Data && (pm[9]! & PmFlag.Encrypted) !== 0));
  assert.deepEqual(deliver(c, queued).opened, ['one', 'two']);
  assert.deepEqual(deliver(a, c.send(EtPacketType.Data, 10, Buffer.from('back'), 1, 0)).opened, ['back'], 'the session works both ways at once');
  assert.deepEqual(deliver(c, queued).opened, [], 'replays are dropped');
  assert.equal(c.drops.replayed, 2);
});

test('both ends start at once: the lower peer id stays initiator, and both queues arrive', () => {
  const { a, c } = pair(10, 30);
  const fromA = a.send(EtPacketType.Data, 30, Buffer.from('a1'), 1, 0);
  const fromC = c.send(EtPacketType.Data, 10, Buffer.from('c1'), 1, 0);
  assert.deepEqual(deliver(a, fromC).back, [], 'A (lower) ignores C\'s msg1');
  const r = deliver(c, fromA); // C yields: answers A and sends its queue in the new session
  assert.deepEqual(r.back.map((pm) => pm[8]), [EtPacketType.RelayHandshakeAck, EtPacketType.Data]);
  const atA = deliver(a, r.back);
  assert.deepEqual(atA.opened, ['c1']);
  assert.deepEqual(deliver(c, atA.back).opened, ['a1']);
});

test('an initiator whose static key is not the announced one is refused; an unanswered handshake is retried, then dropped', () => {
  const { c, ic } = pair();
  const stranger = new SecureRelay(ident(10), () => ic.staticKey.publicKey);
  assert.deepEqual(deliver(c, stranger.send(EtPacketType.Data, 30, Buffer.from('x'), 1, 0)).back, []);
  assert.equal(c.drops['relay-handshake-failed'], 1);

  const { a } = pair();
  a.send(EtPacketType.Data, 30, Buffer.from('lost'), 1, 0);
  const retries: number[] = [];
  for (let i = 0; i < 10; i++) {
    const now = a.pollTimeout()!;
    const out = a.handleTimeout(now);
    if (out.length > 0) retries.push(now);
    if (a.drops['relay-handshake-failed'] > 0) break;
  }
  assert.equal(retries.length, 2, 'three attempts in all');
  assert.ok(retries[0]! >= RELAY_HANDSHAKE_TIMEOUT_MS);
  assert.equal(a.drops['relay-handshake-failed'], 1);
});
