/**
 * The transport addon against the TypeScript reference: the same bytes for CRC-32/CRC-32C, the GF(2^8)
 * multiply-add (single and per row), and the CFB datagram framing in both directions, including the
 * captured kcptun datagram from the spec. Skipped only where the addon is not built (bin/setup builds it).
 */
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { describe, it } from 'node:test';
import { crc32cJs, crc32IeeeJs } from '../../../daemon/transport/checksum/crc32.js';
import { newDatagramCrypt } from '../../../daemon/transport/crypt/datagram.js';
import { newBlockCrypt, OPENSSL_CFB } from '../../../daemon/transport/crypt/factory.js';
import { NativeFramedCrypt } from '../../../daemon/transport/crypt/native-framed.js';
import { KCP_IV } from '../../../daemon/transport/crypt/types.js';
import { mulAddIntoJs } from '../../../daemon/transport/fec/galois.js';
import { transportAddon } from '../../../daemon/transport/native.js';
import { Rng } from '../../sim/world.js';

const addon = transportAddon();
const skip = addon === null && 'transport addon not built (or TSTIER_TRANSPORT_ADDON=off)';
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex'));
const TESTKEY_PASS = hex('9edba19032fc09503ebdfefeb1cb266424b539e9bdc67c1aa922bff833ac5274');

describe('transport addon = TypeScript reference', { skip }, () => {
  const a = addon!;

  it('CRC-32/IEEE and CRC-32C over 400 random spans, lengths 0..3000', () => {
    const rng = new Rng(11);
    const data = rng.bytes(4096);
    for (let i = 0; i < 400; i++) {
      const start = rng.range(0, 1000);
      const end = start + rng.range(0, 3000);
      assert.equal(a.crc32(data, start, end, false), crc32IeeeJs(data, start, end), `ieee [${start}, ${end})`);
      assert.equal(a.crc32(data, start, end, true), crc32cJs(data, start, end), `crc32c [${start}, ${end})`);
    }
    assert.equal(a.crc32(new TextEncoder().encode('123456789'), 0, 9, false), 0xcbf43926);
    assert.equal(a.crc32(new TextEncoder().encode('123456789'), 0, 9, true), 0xe3069283);
  });

  it('CRC-32/IEEE at every length 0..320 and odd offsets (the folded body from 64 bytes, its 16-byte steps, the tail)', () => {
    const data = new Rng(13).bytes(400);
    for (let len = 0; len <= 320; len++) {
      for (const start of [0, 3, 17]) {
        assert.equal(a.crc32(data, start, start + len, false), crc32IeeeJs(data, start, start + len), `ieee [${start}, +${len})`);
      }
    }
  });

  it('gfMulAdd: every coefficient, odd lengths and offsets (the SIMD body and its tail)', () => {
    const rng = new Rng(12);
    const src = rng.bytes(2000);
    for (let c = 0; c < 256; c++) {
      const n = rng.range(0, 1500);
      const sOff = rng.range(0, 300);
      const dOff = rng.range(0, 300);
      const base = rng.bytes(2000);
      const js = base.slice();
      const native = base.slice();
      mulAddIntoJs(c, src, sOff, js, dOff, n);
      a.gfMulAdd(c, src, sOff, native, dOff, n);
      assert.deepEqual(native, js, `c=${c} n=${n}`);
    }
  });

  it('gfMulAddRows accumulates each row as gfMulAdd would', () => {
    const rng = new Rng(13);
    const src = rng.bytes(1400);
    const coeffs = Uint8Array.of(0x81, 0x96, 0xbf, 1, 0);
    const stride = 1500;
    const js = rng.bytes(stride * coeffs.length);
    const native = js.slice();
    a.gfMulAddRows(coeffs, src, 7, 1343, native, 28, stride);
    coeffs.forEach((c, k) => mulAddIntoJs(c, src, 7, js, 28 + k * stride, 1343));
    assert.deepEqual(native, js);
    assert.throws(() => a.gfMulAddRows(coeffs, src, 7, 1343, native.subarray(0, stride * 4), 28, stride), RangeError);
    assert.throws(() => a.gfMulAdd(2, src, 100, native, 0, 1350), RangeError);
  });

  it('opens the captured kcptun 2021 datagram (aes, key "testkey")', () => {
    const c = new NativeFramedCrypt('aes', false, a, 'aes-256-cfb', TESTKEY_PASS);
    const buf = hex('cbc39d9f6d82236f6c0e26f8d73379dc4db9181933a97912960d052a31ddac209c01879fb5f16e4880631f0a2025af865cebc79065eac8cf2986541b3a2e3d6117a1ef4ed444');
    assert.equal(c.open(buf, buf.length), 20);
    assert.equal(Buffer.from(buf.subarray(16)).toString('hex'),
      'a572f3d200000000f1002c002b98d8cd51000002240a0000000000000000000012000000ff060000734e61507059010c00004439ac2f');
  });

  for (const [name, [algorithm, keyLen]] of Object.entries(OPENSSL_CFB)) {
    it(`${name}: native seal is fixed-IV ${algorithm} with the reference CRC; the reference's datagrams open natively`, () => {
      const key = TESTKEY_PASS.subarray(0, keyLen);
      const iv = KCP_IV.subarray(0, algorithm === 'des-ede3-cfb' ? 8 : 16);
      const native = new NativeFramedCrypt(name as keyof typeof OPENSSL_CFB, false, a, algorithm, key);
      const rng = new Rng(14);
      for (const len of [20, 21, 35, 36, 37, 100, 1349, 1350]) {
        const payload = rng.bytes(len - 20);
        // Native → reference: decipher from the fixed IV, check the CRC, then re-encipher: identical bytes.
        const sealed = new Uint8Array(len);
        sealed.set(payload, 20);
        native.seal(sealed, len);
        const plain = createDecipheriv(algorithm, key, iv).update(sealed);
        assert.deepEqual(plain.subarray(20), Buffer.from(payload), `${name} ${len}: payload`);
        assert.equal(plain.readUInt32LE(16), crc32IeeeJs(payload), `${name} ${len}: CRC`);
        assert.deepEqual(createCipheriv(algorithm, key, iv).update(plain), Buffer.from(sealed), `${name} ${len}: ciphertext`);
        // Reference → native.
        const ref = Buffer.alloc(len);
        rng.bytes(16).forEach((b, i) => (ref[i] = b));
        ref.writeUInt32LE(crc32IeeeJs(payload), 16);
        ref.set(payload, 20);
        const wire = createCipheriv(algorithm, key, iv).update(ref);
        assert.equal(native.open(wire, len), 20, `${name} ${len}: open`);
        assert.deepEqual(wire.subarray(20), Buffer.from(payload));
        // A flipped payload bit is a bad CRC, a short datagram too short.
        const bad = createCipheriv(algorithm, key, iv).update(ref);
        bad[len - 1] ^= 1;
        if (len > 20) assert.equal(native.open(bad, len), -2);
        assert.equal(native.open(new Uint8Array(19), 19), -1);
      }
    });
  }

  it('sealMany = seal one by one: node:crypto deciphers each datagram (more than one batch, lengths that end mid-block)', () => {
    const rng = new Rng(16);
    for (const [name, [algorithm, keyLen]] of Object.entries(OPENSSL_CFB)) {
      const key = TESTKEY_PASS.subarray(0, keyLen);
      const iv = KCP_IV.subarray(0, algorithm === 'des-ede3-cfb' ? 8 : 16);
      const native = new NativeFramedCrypt(name as keyof typeof OPENSSL_CFB, false, a, algorithm, key);
      // 150 datagrams (the addon takes 64 per lane batch), 20..1419 bytes, views into one shared buffer.
      const lens = Array.from({ length: 150 }, (_, i) => 20 + ((i * 97) % 1400));
      const arena = new Uint8Array(lens.reduce((x, y) => x + y + 5, 0));
      let at = 0;
      const views = lens.map((len) => {
        const v = arena.subarray(at + 3, at + 3 + len);
        at += len + 5;
        return v;
      });
      const payloads = views.map((v) => {
        const p = rng.bytes(v.length - 20);
        v.set(p, 20);
        return p;
      });
      const untouched = arena.slice();
      native.sealMany(views, views.length - 1); // the last one is left alone
      views.forEach((v, i) => {
        if (i === views.length - 1) return assert.deepEqual(v, untouched.subarray(v.byteOffset, v.byteOffset + v.length));
        const plain = createDecipheriv(algorithm, key, iv).update(v);
        assert.deepEqual(plain.subarray(20), Buffer.from(payloads[i]!), `${name} #${i} (${v.length} bytes): payload`);
        assert.equal(plain.readUInt32LE(16), crc32IeeeJs(payloads[i]!), `${name} #${i}: CRC`);
      });
      // The bytes between the views are not written.
      for (let i = 0, o = 0; i < lens.length; o += lens[i]! + 5, i++) {
        assert.deepEqual([arena[o], arena[o + 1], arena[o + 2]], [untouched[o], untouched[o + 1], untouched[o + 2]]);
      }
      assert.throws(() => native.sealMany([new Uint8Array(19)], 1), /shorter than its header/);
    }
  });

  it('the TypeScript framing (NodeCfbCrypt + JS CRC, the fallback) and the addon read each other, several datagrams in a row', () => {
    const rng = new Rng(15);
    for (const [name, [algorithm, keyLen]] of Object.entries(OPENSSL_CFB)) {
      const js = newBlockCrypt(name, TESTKEY_PASS);
      assert.equal(js.fellBack, false);
      const native = new NativeFramedCrypt(name as keyof typeof OPENSSL_CFB, false, a, algorithm, TESTKEY_PASS.subarray(0, keyLen));
      for (const len of [20, 33, 1350, 21, 700]) {
        const payload = rng.bytes(len - 20);
        // JS seal (its long-lived stream) → native open.
        const fromJs = new Uint8Array(len);
        fromJs.set(rng.bytes(16));
        new DataView(fromJs.buffer).setUint32(16, crc32IeeeJs(payload), true);
        fromJs.set(payload, 20);
        js.block.encrypt(fromJs, len);
        assert.equal(native.open(fromJs, len), 20, `${name} ${len}: native opens the JS datagram`);
        assert.deepEqual(fromJs.subarray(20), payload);
        // Native seal → JS open.
        const fromNative = new Uint8Array(len);
        fromNative.set(payload, 20);
        native.seal(fromNative, len);
        js.block.decrypt(fromNative, len);
        assert.equal(new DataView(fromNative.buffer).getUint32(16, true), crc32IeeeJs(payload), `${name} ${len}: JS checks the CRC`);
        assert.deepEqual(fromNative.subarray(20), payload);
      }
    }
  });

  it('the datagram layer picks the addon for the OpenSSL names and the fallback', () => {
    for (const name of Object.keys(OPENSSL_CFB)) assert.ok(newDatagramCrypt(name, TESTKEY_PASS) instanceof NativeFramedCrypt, name);
    const fallback = newDatagramCrypt('no-such-cipher', TESTKEY_PASS);
    assert.ok(fallback instanceof NativeFramedCrypt);
    assert.equal(fallback.name, 'aes');
    assert.equal(fallback.fellBack, true);
    assert.ok(!(newDatagramCrypt('salsa20', TESTKEY_PASS) instanceof NativeFramedCrypt));
  });
});
