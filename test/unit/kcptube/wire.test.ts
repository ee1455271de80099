import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, getCiphers } from 'node:crypto';
import { OPEN_FORGED, OPEN_SHORT, TunnelCipher, type KcptubeCipher } from '../../../daemon/kcptube/crypt.js';
import { hchacha20 } from '../../../daemon/kcptube/hchacha20.js';
import {
  R_DATA, R_FIN, RECORD_HEADER_SIZE, RecordReader, decodeHello, decodeHelloReply, encodeHello, encodeHelloReply,
  writeRecordHeader,
} from '../../../daemon/kcptube/wire.js';
import { Rng } from '../../sim/world.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/[\s:]/g, ''), 'hex'));

test('HChaCha20 matches draft-irtf-cfrg-xchacha §2.2.1', () => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => i);
  const nonce = hex('000000090000004a0000000031415927');
  const out = new Uint8Array(32);
  hchacha20(key, nonce, 0, out);
  assert.equal(Buffer.from(out).toString('hex'), '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc');
});

test('XChaCha20-Poly1305 = chacha20-poly1305 under the HChaCha20 subkey (draft §A.3 vector)', () => {
  const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
  const nonce = hex('404142434445464748494a4b4c4d4e4f5051525354555657');
  const aad = hex('50515253c0c1c2c3c4c5c6c7');
  const plain = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
  const sub = new Uint8Array(32);
  hchacha20(key, nonce, 0, sub);
  const iv = new Uint8Array(12);
  iv.set(nonce.subarray(16), 4);
  const c = createCipheriv('chacha20-poly1305', sub, iv, { authTagLength: 16 });
  c.setAAD(aad, { plaintextLength: plain.length });
  const ct = Buffer.concat([c.update(plain), c.final()]);
  assert.equal(ct.subarray(0, 16).toString('hex'), 'bd6d179d3e83d43b9576579493c0e939');
  assert.equal(c.getAuthTag().toString('hex'), 'c0875924c1c7987947deafd8780acf49');
  const d = createDecipheriv('chacha20-poly1305', sub, iv, { authTagLength: 16 });
  d.setAAD(aad, { plaintextLength: plain.length });
  d.setAuthTag(c.getAuthTag());
  assert.deepEqual(Buffer.concat([d.update(ct), d.final()]), plain);
});

const CIPHERS: KcptubeCipher[] = ['none', 'aes-gcm', 'aes-ocb', 'chacha20', 'xchacha20'];

test('Node has the ciphers kcptube names', () => {
  const have = getCiphers();
  for (const c of ['aes-256-gcm', 'aes-256-ocb', 'chacha20-poly1305']) assert.ok(have.includes(c), c);
});

test('every cipher: seal/open round trip; wrong key, flipped bit and short datagrams are refused', () => {
  const rng = new Rng(5);
  for (const name of CIPHERS) {
    const a = TunnelCipher.fromPassword(name, 'pw');
    const wrong = TunnelCipher.fromPassword(name, 'other');
    for (let len = 0; len < 200; len += 37) {
      const payload = Uint8Array.from({ length: len }, () => rng.int(256));
      const buf = new Uint8Array(a.headerSize + len);
      buf.set(payload, a.headerSize);
      const n = a.seal(buf, buf.length);
      const copy = buf.slice(0, n);
      const off = a.open(copy, n);
      assert.equal(off, a.headerSize, name);
      assert.deepEqual(copy.subarray(off), payload, name);
      if (name !== 'none') assert.equal(wrong.open(buf.slice(0, n), n), OPEN_FORGED, `${name} wrong key`);
      const flipped = buf.slice(0, n);
      flipped[n - 1]! ^= 0x01;
      if (len > 0) assert.equal(a.open(flipped, n), OPEN_FORGED, `${name} flipped`);
    }
    if (a.headerSize > 0) assert.equal(a.open(new Uint8Array(a.headerSize - 1), a.headerSize - 1), OPEN_SHORT);
  }
});

test('random bytes never open as a forged AEAD datagram, and never throw', () => {
  const rng = new Rng(9);
  for (const name of CIPHERS) {
    const a = TunnelCipher.fromPassword(name, 'pw');
    for (let i = 0; i < 300; i++) {
      const b = Uint8Array.from({ length: rng.int(120) }, () => rng.int(256));
      const r = a.open(b, b.length);
      if (name !== 'none') assert.ok(r < 0);
    }
  }
});

test('HELLO and HELLO_REPLY round trip; short or bad ones decode to null', () => {
  const h = { version: 1, outboundBps: 100 * 1024 * 1024, inboundBps: 2 ** 40 + 3 };
  assert.deepEqual(decodeHello(encodeHello(h)), h);
  const r = { portStart: 3000, portEnd: 3010, outboundBps: 1e9, inboundBps: 0 };
  assert.deepEqual(decodeHelloReply(encodeHelloReply(r)), r);
  assert.equal(decodeHello(new Uint8Array(5)), null);
  assert.equal(decodeHelloReply(new Uint8Array(19)), null);
  assert.equal(decodeHelloReply(encodeHelloReply({ ...r, portStart: 3011 })), null);
});

/** Feeds a byte stream to a RecordReader in random cuts; returns the records. */
function readAll(stream: Uint8Array, rng: Rng): { records: { kind: number; conn: number; payload: Uint8Array }[]; failed: boolean } {
  const reader = new RecordReader();
  const records: { kind: number; conn: number; payload: Uint8Array }[] = [];
  let pos = 0;
  while (pos < stream.length) {
    const space = reader.space();
    const n = Math.min(space.length, stream.length - pos, 1 + rng.int(9000));
    space.set(stream.subarray(pos, pos + n));
    reader.commit(n);
    pos += n;
    for (let r = reader.next(); r !== null; r = reader.next()) records.push({ kind: r.kind, conn: r.conn, payload: r.payload });
    if (reader.failed) break;
  }
  return { records, failed: reader.failed };
}

test('records survive any split of the stream, and earlier payload views are never overwritten', () => {
  const rng = new Rng(3);
  const parts: Uint8Array[] = [];
  const want: { kind: number; conn: number; payload: Uint8Array }[] = [];
  for (let i = 0; i < 400; i++) {
    const len = rng.int(4) === 0 ? rng.int(65536) : rng.int(100);
    const payload = Uint8Array.from({ length: len }, () => rng.int(256));
    const kind = i % 7 === 6 ? R_FIN : R_DATA;
    const hdr = new Uint8Array(RECORD_HEADER_SIZE);
    writeRecordHeader(hdr, 0, kind, i, kind === R_FIN ? 0 : len);
    parts.push(hdr);
    if (kind !== R_FIN) parts.push(payload);
    want.push({ kind, conn: i, payload: kind === R_FIN ? new Uint8Array(0) : payload });
  }
  const stream = Buffer.concat(parts);
  const got = readAll(stream, rng);
  assert.equal(got.failed, false);
  assert.equal(got.records.length, want.length);
  for (let i = 0; i < want.length; i++) {
    assert.equal(got.records[i]!.kind, want[i]!.kind);
    assert.equal(got.records[i]!.conn, want[i]!.conn);
    assert.deepEqual(got.records[i]!.payload, want[i]!.payload, `record ${i}`);
  }
});

test('garbage streams never throw: an unknown kind fails the reader', () => {
  const rng = new Rng(11);
  let failures = 0;
  for (let i = 0; i < 200; i++) {
    const b = Uint8Array.from({ length: rng.int(3000) }, () => rng.int(256));
    const r = readAll(b, rng);
    if (r.failed) failures++;
  }
  assert.ok(failures > 100, 'most random streams hit a bad kind');
});
