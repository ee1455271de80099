/**
 * Secure mode on one EasyTier link, sans-IO, two EtPeerConns back to back: the Noise handshake
 * and its proofs, sealed traffic both ways, a replayed packet dropped and counted, a second link
 * that joins the first one's session, and each refusal (wrong secret, other network, mode mismatch).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EtPeerConn, type CloseReason } from '../../../../daemon/peer/easytier/conn.js';
import { EtNodeCore } from '../../../../daemon/peer/easytier/node-core.js';
import { etCipher } from '../../../../daemon/peer/easytier/cipher.js';
import { secretDigest } from '../../../../daemon/peer/easytier/identity.js';
import { EtPacketType, PmFlag, splitPm } from '../../../../daemon/peer/easytier/pm.js';
import { SecureSessionStore } from '../../../../daemon/peer/easytier/secure-session-store.js';
import { x25519Generate } from '../../../../daemon/peer/easytier/secure-noise.js';
import type { SecureIdentity } from '../../../../daemon/peer/easytier/secure-handshake.js';

function ident(peerId: number, secret = 's3cret', networkName = 'sec-net'): SecureIdentity {
  return { peerId, networkName, networkSecret: secret, digest: secretDigest(networkName, secret), staticKey: x25519Generate(), algorithm: 'aes-gcm', sessions: new SecureSessionStore() };
}

function conn(role: 'dialler' | 'listener', id: SecureIdentity, secure = true): EtPeerConn {
  const me = { peerId: id.peerId, networkName: id.networkName, digest: id.digest };
  return new EtPeerConn({ role, me, cipher: etCipher('aes-gcm', id.networkSecret), now: 0, ...(secure ? { secure: id } : {}) });
}

/** Moves packets both ways until quiet; returns what each side sent, in order. */
function pump(a: EtPeerConn, b: EtPeerConn, now = 0): Uint8Array[] {
  const wire: Uint8Array[] = [];
  for (let moved = true; moved; ) {
    moved = false;
    for (const [from, to] of [[a, b], [b, a]] as const) {
      for (let pm = from.pollTransmit(); pm; pm = from.pollTransmit()) {
        moved = true;
        wire.push(pm);
        to.input(pm, now);
      }
    }
  }
  return wire;
}

function events(c: EtPeerConn): ReturnType<EtPeerConn['pollEvent']>[] {
  const out = [];
  for (let e = c.pollEvent(); e; e = c.pollEvent()) out.push(e);
  return out;
}

const closedWith = (c: EtPeerConn): CloseReason | undefined => {
  const ev = events(c).find((e) => e?.type === 'closed');
  return ev?.type === 'closed' ? ev.reason : undefined;
};

test('secure mode: Noise types 13/14/15, both up, sealed Data both ways, a replay dropped and counted', () => {
  const ia = ident(11);
  const ib = ident(22);
  const a = conn('dialler', ia);
  const b = conn('listener', ib);
  const hs = pump(a, b);
  assert.deepEqual(hs.slice(0, 3).map((pm) => pm[8]), [EtPacketType.NoiseHandshakeMsg1, EtPacketType.NoiseHandshakeMsg2, EtPacketType.NoiseHandshakeMsg3]);
  assert.equal(splitPm(hs[0]!)!.header.to, 0, 'msg1 goes to peer 0');
  assert.equal(a.state, 'up');
  assert.equal(b.state, 'up');
  assert.equal(a.peerId, 22);
  assert.equal(b.peerId, 11);
  events(a);
  events(b);

  const payload = Buffer.from('secure hello');
  a.send(EtPacketType.Data, 22, payload);
  const sealed = a.pollTransmit()!;
  const p = splitPm(sealed)!;
  assert.ok(p.header.flags & PmFlag.Encrypted);
  assert.equal(p.header.len, payload.length);
  assert.equal(p.body.length, payload.length + 28, 'ciphertext, tag 16, nonce 12');
  assert.deepEqual([...p.body.subarray(p.body.length - 12)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 'epoch 0, seq 0');
  b.input(sealed, 1);
  const got = events(b).find((e) => e?.type === 'packet');
  assert.ok(got?.type === 'packet');
  assert.deepEqual(Buffer.from(got.payload), payload);

  b.input(sealed, 2);
  assert.equal(events(b).length, 0, 'the replay is not handed up');
  assert.equal(b.drops.replayed, 1);

  b.send(EtPacketType.Data, 11, Buffer.from('back'));
  pump(a, b, 3);
  const back = events(a).find((e) => e?.type === 'packet');
  assert.ok(back?.type === 'packet' && Buffer.from(back.payload).toString() === 'back');

  // A packet a farther node originated cannot be sent on this link (no relay session), nor taken.
  a.send(EtPacketType.Data, 33, payload);
  assert.equal(a.pollTransmit(), undefined);
  assert.equal(a.drops['secure-no-relay'], 1);
});

test('secure mode: a second link between the same pair syncs to the first one\'s session; both carry data', () => {
  const ia = ident(11);
  const ib = ident(22);
  const [a1, b1] = [conn('dialler', ia), conn('listener', ib)];
  pump(a1, b1);
  const [b2, a2] = [conn('dialler', ib), conn('listener', ia)];
  pump(b2, a2);
  assert.equal(b2.state, 'up');
  assert.equal(ia.sessions.size, 1);
  assert.equal(ib.sessions.size, 1);
  for (const [from, to, id] of [[a1, b1, 22], [a2, b2, 22], [b1, a1, 11], [b2, a2, 11]] as const) {
    events(to);
    from.send(EtPacketType.Data, id, Buffer.from('x'));
    pump(a1, b1);
    pump(a2, b2);
    assert.equal(events(to).filter((e) => e?.type === 'packet').length, 1);
  }
  a1.close();
  a2.close();
  assert.equal(ia.sessions.size, 0, 'the last link to go takes the session');
});

test('secure mode refusals: wrong secret, other network, and either mode mismatch', () => {
  let a = conn('dialler', ident(11, 'right'));
  let b = conn('listener', ident(22, 'wrong'));
  pump(a, b);
  assert.equal(closedWith(a), 'wrong-secret', 'the dialler checks the listener\'s proof first');
  assert.notEqual(b.state, 'up');

  a = conn('dialler', ident(11, 's', 'net-a'));
  b = conn('listener', ident(22, 's', 'net-b'));
  pump(a, b);
  assert.equal(closedWith(b), 'other-network');

  a = conn('dialler', ident(11));
  b = conn('listener', ident(22), false);
  pump(a, b);
  assert.equal(closedWith(b), 'secure-mode-mismatch');

  a = conn('dialler', ident(11), false);
  b = conn('listener', ident(22));
  pump(a, b);
  assert.equal(closedWith(b), 'secure-mode-mismatch');
});

test('secure mode: both sides dial at once (the two Creates cross) and still agree on one root key', () => {
  for (const [idA, idB] of [[11, 22], [22, 11]]) {
    const ia = ident(idA);
    const ib = ident(idB);
    const [a1, b1, b2, a2] = [conn('dialler', ia), conn('listener', ib), conn('dialler', ib), conn('listener', ia)];
    // Both msg1s arrive before either msg2: each responder creates a session of its own.
    b1.input(a1.pollTransmit()!, 0);
    a2.input(b2.pollTransmit()!, 0);
    pump(a1, b1);
    pump(b2, a2);
    for (const c of [a1, b1, a2, b2]) assert.equal(c.state, 'up');
    for (const [from, to, id] of [[a1, b1, idB], [b1, a1, idA], [a2, b2, idB], [b2, a2, idA]] as const) {
      events(to);
      from.send(EtPacketType.Data, id, Buffer.from('x'));
      pump(a1, b1);
      pump(a2, b2);
      assert.equal(events(to).filter((e) => e?.type === 'packet').length, 1, `${from.peerId === idB ? 'A' : 'B'} opens`);
    }
  }
});

test('secure mode in the node core: a link whose underlay ends lets go of its session', () => {
  const ids = [ident(11), ident(22)];
  const cores = ids.map((id) => new EtNodeCore({
    me: { peerId: id.peerId, networkName: id.networkName, digest: id.digest }, cipher: etCipher('aes-gcm', id.networkSecret), now: 0, secure: id,
    info: { peerId: id.peerId, instId: new Uint8Array(16), networkLength: 24, proxyCidrs: [], udpNatType: 0, version: 1, easytierVersion: 't', featureFlag: {}, peerRouteId: 1n },
  }));
  cores[1]!.addConn('l', 'listener', 0);
  cores[0]!.addConn('l', 'dialler', 0);
  for (let moved = true; moved; ) {
    moved = false;
    for (const [from, to] of [[0, 1], [1, 0]] as const) {
      for (let out = cores[from]!.pollTransmit(); out; out = cores[from]!.pollTransmit()) {
        moved = true;
        cores[to]!.input('l', out.pm, 0);
      }
    }
  }
  assert.equal(cores[0]!.conn('l')?.state, 'up');
  assert.deepEqual(ids.map((id) => id.sessions.size), [1, 1]);
  for (const c of cores) c.connClosed('l', 1);
  assert.deepEqual(ids.map((id) => id.sessions.size), [0, 0]);
});
