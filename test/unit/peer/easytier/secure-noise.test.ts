/**
 * The Noise XX handshake against the published cacophony test vectors for
 * Noise_XX_25519_ChaChaPoly_SHA256 (fixed static and ephemeral keys, prologue "John Galt"): every
 * handshake message byte for byte, the final handshake hash, and what a tampered message does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NoiseError, NoiseHandshake, x25519FromPrivate, x25519Generate } from '../../../../daemon/peer/easytier/secure-noise.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const V = {
  prologue: hex('4a6f686e2047616c74'),
  initStatic: hex('e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1'),
  initEphemeral: hex('893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a'),
  respStatic: hex('4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893'),
  respEphemeral: hex('bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b'),
  handshakeHash: 'c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e',
  messages: [
    ['4c756477696720766f6e204d69736573', 'ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573'],
    [
      '4d757272617920526f746862617264',
      '95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884381cbad1f276e038c48378ffce2b65285e08d6b68aaa3629a5a8639392490e5b9bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b5c412f8a0db50f8814c7194e83f23dbd8d162c9326ad',
    ],
    ['462e20412e20486179656b', 'c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a80ae475b9df0f169ae80a89be0865b57f58c9fea0d4ec82a286427402f113e4b6ae769a1d95941d49b25030'],
  ],
};

function pair(): { i: NoiseHandshake; r: NoiseHandshake } {
  const i = new NoiseHandshake({ pattern: 'XX', initiator: true, prologue: V.prologue, staticKey: x25519FromPrivate(V.initStatic), ephemeralKey: x25519FromPrivate(V.initEphemeral) });
  const r = new NoiseHandshake({ pattern: 'XX', initiator: false, prologue: V.prologue, staticKey: x25519FromPrivate(V.respStatic), ephemeralKey: x25519FromPrivate(V.respEphemeral) });
  return { i, r };
}

test('cacophony XX_25519_ChaChaPoly_SHA256: the three handshake messages byte for byte, and the handshake hash', () => {
  const { i, r } = pair();
  for (const [n, [payload, ciphertext]] of V.messages.entries()) {
    const [writer, reader] = n === 1 ? [r, i] : [i, r];
    const wire = writer.writeMessage(hex(payload!));
    assert.equal(Buffer.from(wire).toString('hex'), ciphertext, `message ${n + 1}`);
    assert.equal(Buffer.from(reader.readMessage(wire)).toString('hex'), payload, `message ${n + 1} read back`);
  }
  assert.ok(i.complete && r.complete);
  assert.equal(Buffer.from(i.handshakeHash).toString('hex'), V.handshakeHash);
  assert.equal(Buffer.from(r.handshakeHash).toString('hex'), V.handshakeHash);
  assert.deepEqual(i.remoteStatic, x25519FromPrivate(V.respStatic).publicKey);
  assert.deepEqual(r.remoteStatic, x25519FromPrivate(V.initStatic).publicKey);
});

test('a flipped bit in message 2 or 3 fails authentication; messages out of turn are refused', () => {
  for (const bad of [1, 2]) {
    const { i, r } = pair();
    let m = i.writeMessage(new Uint8Array(0));
    r.readMessage(m);
    m = r.writeMessage(new Uint8Array(0));
    if (bad === 1) {
      m[40] ^= 1;
      assert.throws(() => i.readMessage(m), NoiseError);
      continue;
    }
    i.readMessage(m);
    m = i.writeMessage(hex('00'));
    m[m.length - 1] ^= 1;
    assert.throws(() => r.readMessage(m), NoiseError);
  }
  const { i } = pair();
  assert.throws(() => i.readMessage(new Uint8Array(32)), NoiseError);
  const fresh = new NoiseHandshake({ pattern: 'XX', initiator: false, prologue: V.prologue, staticKey: x25519Generate() });
  assert.throws(() => fresh.readMessage(new Uint8Array(10)), /too short/);
});

test('cacophony IK_25519_ChaChaPoly_SHA256: both handshake messages byte for byte, and the handshake hash', () => {
  const rs = x25519FromPrivate(V.respStatic);
  const i = new NoiseHandshake({ pattern: 'IK', initiator: true, prologue: V.prologue, staticKey: x25519FromPrivate(V.initStatic), ephemeralKey: x25519FromPrivate(V.initEphemeral), remoteStatic: rs.publicKey });
  const r = new NoiseHandshake({ pattern: 'IK', initiator: false, prologue: V.prologue, staticKey: rs, ephemeralKey: x25519FromPrivate(V.respEphemeral) });
  const ik = [
    ['4c756477696720766f6e204d69736573', 'ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944718da798efbcd91528520204f904b9bd6c7413dccdc214d951e15253e39987f18146e8cd0873654207148333479d4d16c289f0294b29960a72f48e0b7bba2e89083169825e59642148d492020664ccf7'],
    ['4d757272617920526f746862617264', '95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088435361e70b2ed446e6c9ec387d1d6b3b840f194e373979d241b203c4acafccf5'],
  ];
  for (const [n, [payload, ciphertext]] of ik.entries()) {
    const [writer, reader] = n === 0 ? [i, r] : [r, i];
    const wire = writer.writeMessage(hex(payload!));
    assert.equal(Buffer.from(wire).toString('hex'), ciphertext, `message ${n + 1}`);
    assert.equal(Buffer.from(reader.readMessage(wire)).toString('hex'), payload);
  }
  assert.ok(i.complete && r.complete);
  assert.equal(Buffer.from(r.handshakeHash).toString('hex'), '0b0f68fb0c27e03ce9b97565995ed4838cc0581b762ef72b062f6a546419fad7');
  assert.deepEqual(r.remoteStatic, x25519FromPrivate(V.initStatic).publicKey);
});
