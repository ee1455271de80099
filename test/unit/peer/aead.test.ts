import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { defaultAeadImpl, packetOpener, packetSealer, type AeadImpl } from '../../../daemon/peer/aead.js';

const HEAD = 8; // an underlay's headroom in front of the packet
const key = randomBytes(32);
const impls: AeadImpl[] = defaultAeadImpl() === 'native' ? ['native', 'node'] : ['node'];

/** A packet as the session lays it out: headroom, header, counter, room for ciphertext and tag. */
function sealWith(impl: AeadImpl, payload: Buffer, counter: number): Buffer {
  const out = Buffer.alloc(HEAD + 24 + payload.length + 16);
  randomBytes(16).copy(out, HEAD);
  out.writeUInt32LE(counter, HEAD + 16);
  packetSealer(key, impl).seal(out, HEAD, payload);
  return out.subarray(HEAD);
}

/** The reference: AES-256-GCM written out with node:crypto, nonce = 4 zero bytes + counter. */
function reference(wire: Buffer, payload: Buffer): Buffer {
  const iv = Buffer.concat([Buffer.alloc(4), wire.subarray(16, 24)]);
  const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
  c.setAAD(wire.subarray(0, 16));
  return Buffer.concat([wire.subarray(0, 24), c.update(payload), c.final(), c.getAuthTag()]);
}

test('every implementation seals to the reference bytes, empty and large payloads too', () => {
  for (const impl of impls) {
    for (const size of [0, 1, 15, 16, 17, 1400, 65_000]) {
      const payload = randomBytes(size);
      const wire = sealWith(impl, payload, size + 7);
      assert.ok(wire.equals(reference(wire, payload)), `${impl} seal, ${size} bytes`);
    }
  }
});

test('every implementation opens what any other sealed, and rejects any flipped bit', (t) => {
  if (impls.length === 1) t.diagnostic('peer addon not built (or TSTIER_PEER_ADDON=off): only node:crypto checked');
  for (const sealer of impls) {
    for (const opener of impls) {
      const open = packetOpener(key, opener);
      const payload = randomBytes(1400);
      const wire = sealWith(sealer, payload, 42);
      for (const at of [3, 17, 30, wire.length - 1]) { // header (AAD), counter (nonce), ciphertext, tag
        const bad = Buffer.from(wire);
        bad[at]! ^= 0x40;
        assert.equal(open.open(bad), null, `${sealer} -> ${opener}: bit flipped at ${at}`);
      }
      assert.equal(packetOpener(randomBytes(32), opener).open(Buffer.from(wire)), null, 'wrong key');
      const plain = open.open(Buffer.from(wire));
      assert.ok(plain?.equals(payload), `${sealer} -> ${opener}: payload back after failures on the same key`);
    }
  }
});
