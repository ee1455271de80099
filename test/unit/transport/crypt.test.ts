import assert from 'node:assert/strict';
import { createDecipheriv } from 'node:crypto';
import { describe, it } from 'node:test';
import { crc32Ieee } from '../../../daemon/transport/checksum/crc32.js';
import {
  newDatagramCrypt,
  OPEN_BAD_CRC,
  OPEN_BAD_TAG,
  OPEN_TOO_SHORT,
} from '../../../daemon/transport/crypt/datagram.js';
import { deriveKcptunKey } from '../../../daemon/transport/crypt/kdf.js';
import { KCP_IV } from '../../../daemon/transport/crypt/types.js';
import { Rng } from '../../sim/world.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Deterministic payload bytes. */
const pseudoRandom = (n: number, seed: number): Uint8Array => new Rng(seed).bytes(n);

const TESTKEY_PASS = hex('9edba19032fc09503ebdfefeb1cb266424b539e9bdc67c1aa922bff833ac5274');

describe('deriveKcptunKey', () => {
  it('matches both spec vectors', () => {
    assert.equal(toHex(deriveKcptunKey("it's a secrect")), '25d7d7bd51050742d8d791f2b653c6c8b2366b7e25a124cf7a2e12eaf4ffa444');
    assert.equal(toHex(deriveKcptunKey('testkey')), toHex(TESTKEY_PASS));
  });
});

describe('captured kcptun 2021 datagram (aes, key "testkey")', () => {
  const cipher = hex(
    'cbc39d9f6d82236f6c0e26f8d73379dc4db9181933a97912960d052a31ddac209c01879fb5f16e4880631f0a2025af865cebc79065eac8cf2986541b3a2e3d6117a1ef4ed444',
  );
  const plain = hex(
    '0b1346c4995821efacc53f2b98411058 a572f3d2 00000000 f100 2c00 2b98d8cd 51 00 0002 240a0000 00000000 00000000 12000000 ff060000734e61507059 010c0000 4439ac2f',
  );

  it('opens with a valid CRC and yields the listed plaintext after the nonce', () => {
    const c = newDatagramCrypt('aes', TESTKEY_PASS);
    const buf = cipher.slice();
    assert.equal(c.open(buf, buf.length), 20);
    assert.equal(toHex(buf.subarray(16)), toHex(plain.subarray(16)));
  });

  it('the plaintext is fixed-IV AES-256-CFB from byte 0 (the reference the spec checked)', () => {
    const d = createDecipheriv('aes-256-cfb', TESTKEY_PASS, KCP_IV);
    assert.equal(toHex(d.update(cipher)), toHex(plain));
  });
});

describe('datagram seal/open', () => {
  const LENGTHS = [1, 15, 16, 17, 1350];

  for (const name of ['aes', 'aes-128', 'aes-192', '3des', 'sm4', 'salsa20', 'blowfish', 'twofish', 'cast5', 'tea', 'xtea', 'xor', 'none']) {
    it(`${name}: round trip over odd lengths, several datagrams in a row`, () => {
      const tx = newDatagramCrypt(name, TESTKEY_PASS);
      const rx = newDatagramCrypt(name, TESTKEY_PASS);
      assert.equal(tx.name, name);
      assert.equal(tx.fellBack, false);
      assert.equal(tx.headerSize, 20);
      for (let round = 0; round < 3; round++) {
        for (const n of LENGTHS) {
          const payload = pseudoRandom(n, n * 7 + round);
          // Odd rounds leave spare bytes behind the datagram (the one-call path of the OpenSSL stream).
          const buf = new Uint8Array(20 + n + (round % 2) * 37);
          buf.set(payload, 20);
          const wireLen = tx.seal(buf, 20 + n);
          assert.equal(wireLen, 20 + n);
          // Under a random nonce one ciphered byte equals its plain byte 1 time in 256, so only a payload
          // of 16 bytes or more can show that nothing travels in clear.
          if (name !== 'none' && n >= 16) {
            assert.notEqual(toHex(buf.subarray(20, 20 + n)), toHex(payload), 'payload must not travel in clear');
          }
          assert.equal(rx.open(buf, wireLen), 20);
          assert.equal(toHex(buf.subarray(20, wireLen)), toHex(payload));
          assert.ok(buf.subarray(wireLen).every((b) => b === 0), 'bytes past the datagram stay untouched');
        }
      }
    });
  }

  it('none keeps the payload in clear but still writes nonce and CRC', () => {
    const c = newDatagramCrypt('none', TESTKEY_PASS);
    const payload = pseudoRandom(100, 1);
    const buf = new Uint8Array(120);
    buf.set(payload, 20);
    c.seal(buf, 120);
    assert.deepEqual(buf.subarray(20), payload);
    assert.equal(buf[16] | (buf[17] << 8) | (buf[18] << 16) | (buf[19] << 24), crc32Ieee(payload) | 0);
  });

  it('aes datagrams from the long-lived stream decrypt with a fresh fixed-IV CFB (as kcp-go does)', () => {
    const tx = newDatagramCrypt('aes', TESTKEY_PASS);
    for (const [n, spare] of [[17, 0], [5, 40], [1350, 0], [33, 7], [1001, 16]]) {
      const payload = pseudoRandom(n, n);
      const buf = new Uint8Array(20 + n + spare);
      buf.set(payload, 20);
      tx.seal(buf, 20 + n);
      const plain = createDecipheriv('aes-256-cfb', TESTKEY_PASS, KCP_IV).update(buf.subarray(0, 20 + n));
      assert.deepEqual(new Uint8Array(plain.subarray(20)), payload);
      assert.equal(plain.readUInt32LE(16), crc32Ieee(payload));
    }
  });

  it('two seals of the same payload differ (fresh nonce)', () => {
    const c = newDatagramCrypt('aes', TESTKEY_PASS);
    const a = new Uint8Array(60);
    const b = new Uint8Array(60);
    c.seal(a, 60);
    c.seal(b, 60);
    assert.notEqual(toHex(a), toHex(b));
  });

  it('aes-128-gcm: round trip, 12-byte header, tag in the tailroom', () => {
    const tx = newDatagramCrypt('aes-128-gcm', TESTKEY_PASS);
    const rx = newDatagramCrypt('aes-128-gcm', TESTKEY_PASS);
    assert.equal(tx.headerSize, 12);
    assert.equal(tx.tailroom, 16);
    for (const n of LENGTHS) {
      const payload = pseudoRandom(n, n + 3);
      const buf = new Uint8Array(12 + n + 16);
      buf.set(payload, 12);
      const wireLen = tx.seal(buf, 12 + n);
      assert.equal(wireLen, 12 + n + 16);
      assert.equal(rx.open(buf, wireLen), 12);
      assert.deepEqual(buf.subarray(12, wireLen - 16), payload);
    }
  });

  it('null: no header, identity', () => {
    const c = newDatagramCrypt('null', TESTKEY_PASS);
    assert.equal(c.headerSize, 0);
    const buf = pseudoRandom(40, 9);
    const copy = buf.slice();
    assert.equal(c.seal(buf, 40), 40);
    assert.equal(c.open(buf, 40), 0);
    assert.deepEqual(buf, copy);
  });

  it('an unknown name falls back to aes and says so', () => {
    const c = newDatagramCrypt('aes-512', TESTKEY_PASS);
    assert.equal(c.name, 'aes');
    assert.equal(c.fellBack, true);
    const ref = newDatagramCrypt('aes', TESTKEY_PASS);
    const buf = new Uint8Array(50);
    buf.fill(7, 20);
    c.seal(buf, 50);
    assert.equal(ref.open(buf, 50), 20);
  });
});

describe('open() on bad input', () => {
  const NAMES = ['aes', 'aes-128', 'aes-192', '3des', 'sm4', 'salsa20', 'blowfish', 'twofish', 'cast5', 'tea', 'xtea', 'xor', 'none', 'aes-128-gcm'];

  for (const name of NAMES) {
    it(`${name}: garbage, truncation and bit flips are errors, never exceptions`, () => {
      const tx = newDatagramCrypt(name, TESTKEY_PASS);
      const rx = newDatagramCrypt(name, TESTKEY_PASS);
      const headerSize = tx.headerSize;
      const tooShort = headerSize + tx.tailroom - 1;
      for (let n = 0; n <= tooShort; n++) assert.equal(rx.open(pseudoRandom(n, n + 1), n), OPEN_TOO_SHORT);
      let rejected = 0;
      for (let seed = 1; seed <= 200; seed++) {
        const g = pseudoRandom(headerSize + tx.tailroom + (seed % 60), seed);
        const r = rx.open(g, g.length);
        assert.ok(r === headerSize || r < 0);
        if (r < 0) rejected++;
      }
      assert.ok(rejected >= 195, `random garbage should almost never pass the check (${rejected}/200 rejected)`);

      const payload = pseudoRandom(100, 5);
      const sealed = new Uint8Array(headerSize + 100 + tx.tailroom);
      sealed.set(payload, headerSize);
      const wireLen = tx.seal(sealed, headerSize + 100);
      const flipped = sealed.slice();
      flipped[wireLen - 1 - tx.tailroom] ^= 0x01;
      assert.equal(rx.open(flipped, wireLen), name === 'aes-128-gcm' ? OPEN_BAD_TAG : OPEN_BAD_CRC);
      const cut = sealed.slice();
      assert.ok(rx.open(cut, wireLen - 3) < 0);
    });
  }

  it('a wrong key is a bad CRC', () => {
    const tx = newDatagramCrypt('aes', TESTKEY_PASS);
    const rx = newDatagramCrypt('aes', deriveKcptunKey('other'));
    const buf = new Uint8Array(80);
    tx.seal(buf, 80);
    assert.equal(rx.open(buf, 80), OPEN_BAD_CRC);
  });
});
