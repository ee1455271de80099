/**
 * Known-answer tests for the ciphers written in TypeScript. (kcptun's own use of each,
 * CFB framing and multi-block Salsa20 included, is checked against the real binary in
 * crypt-kcptun.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Blowfish } from '../../../daemon/transport/crypt/blowfish.js';
import { Cast5 } from '../../../daemon/transport/crypt/cast5.js';
import type { BlockEncryptor } from '../../../daemon/transport/crypt/cfb.js';
import { Salsa20 } from '../../../daemon/transport/crypt/salsa20.js';
import { Tea } from '../../../daemon/transport/crypt/tea.js';
import { Twofish } from '../../../daemon/transport/crypt/twofish.js';
import { Xtea } from '../../../daemon/transport/crypt/xtea.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function encryptHex(c: BlockEncryptor, plain: string): string {
  const b = hex(plain);
  c.encryptBlock(b, 0);
  return toHex(b);
}

describe('Blowfish (Eric Young\'s reference vectors)', () => {
  const vectors: [string, string, string][] = [
    ['0000000000000000', '0000000000000000', '4ef997456198dd78'],
    ['ffffffffffffffff', 'ffffffffffffffff', '51866fd5b85ecb8a'],
    ['3000000000000000', '1000000000000001', '7d856f9a613063f2'],
    ['0123456789abcdef', '1111111111111111', '61f9c3802281b096'],
    ['fedcba9876543210', '0123456789abcdef', '0aceab0fc6a0a28d'],
  ];
  for (const [key, plain, cipher] of vectors) {
    it(`key ${key}`, () => assert.equal(encryptHex(new Blowfish(hex(key)), plain), cipher));
  }
  it('a 32-byte key (as kcptun uses) encrypts at an offset without touching neighbours', () => {
    const b = new Uint8Array(12).fill(0xaa);
    b.fill(0, 2, 10);
    new Blowfish(new Uint8Array(32)).encryptBlock(b, 2);
    assert.equal(b[0], 0xaa);
    assert.equal(b[11], 0xaa);
  });
});

describe('CAST-128 (RFC 2144 B.1, 128-bit key)', () => {
  it('single plaintext-key-ciphertext set', () => {
    assert.equal(encryptHex(new Cast5(hex('0123456712345678234567893456789a')), '0123456789abcdef'), '238b4fe5847e44b2');
  });
});

describe('Twofish (the specification\'s KAT)', () => {
  const vectors: [string, string][] = [
    ['00000000000000000000000000000000', '9f589f5cf6122c32b6bfec2f2ae8c35a'],
    ['0123456789abcdeffedcba98765432100011223344556677', 'cfd1d2e5a9be9cdf501f13b892bd2248'],
    ['0123456789abcdeffedcba987654321000112233445566778899aabbccddeeff', '37527be0052334b89f0cfccae87cfa20'],
    ['0000000000000000000000000000000000000000000000000000000000000000', '57ff739d4dc92c1bd7fc01700cc8216f'],
  ];
  for (const [key, cipher] of vectors) {
    it(`${key.length * 4}-bit key ${key.slice(0, 8)}…`, () =>
      assert.equal(encryptHex(new Twofish(hex(key)), '00000000000000000000000000000000'), cipher));
  }
});

describe('TEA', () => {
  it('64 rounds (the cipher as published): all-zero key and block', () => {
    assert.equal(encryptHex(new Tea(new Uint8Array(16), 64), '0000000000000000'), '41ea3a0a94baa940');
  });
  it('rounds must be even', () => {
    assert.throws(() => new Tea(new Uint8Array(16), 15), RangeError);
  });
});

describe('XTEA (vectors shared by mbedTLS and others)', () => {
  const k = '000102030405060708090a0b0c0d0e0f';
  const z = '00000000000000000000000000000000';
  const vectors: [string, string, string][] = [
    [k, '4142434445464748', '497df3d072612cb5'],
    [k, '4141414141414141', 'e78f2d13744341d8'],
    [k, '5a5b6e278948d77f', '4141414141414141'],
    [z, '4142434445464748', 'a0390589f8b8efa5'],
    [z, '4141414141414141', 'ed23375a821a8c2d'],
    [z, '70e1225d6e4e7655', '4141414141414141'],
  ];
  for (const [key, plain, cipher] of vectors) {
    it(`${key.slice(0, 4)}… ${plain}`, () => assert.equal(encryptHex(new Xtea(hex(key)), plain), cipher));
  }
});

describe('Salsa20/20 (eSTREAM 256-bit vector set 1, vector 0)', () => {
  it('key 80 00…00, IV 0: first 64 keystream bytes', () => {
    const key = new Uint8Array(32);
    key[0] = 0x80;
    const buf = new Uint8Array(64);
    new Salsa20(key).xorKeyStream(buf, 0, 64, new Uint8Array(8), 0);
    assert.equal(
      toHex(buf),
      'e3be8fdd8beca2e3ea8ef9475b29a6e7003951e1097a5c38d23b7a5fad9f6844' +
        'b22c97559e2723c7cbbd3fe4fc8d9a0744652a83e72a9c461876af4d7ef1a117',
    );
  });
});
