import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TstierError } from '../../../daemon/errors.js';
import { Rng } from '../../sim/world.js';
import { SnappyCompressor, decompress, maxEncodedLength } from '../../../daemon/transport/snappy/block.js';
import {
  MAX_CHUNK_BODY, STREAM_IDENTIFIER, SnappyFrameReader, SnappyFrameWriter, maskedCrc,
} from '../../../daemon/transport/snappy/framing.js';

/** Text-like data: words from a small vocabulary, so it compresses well. */
function compressible(r: Rng, n: number): Uint8Array {
  const words = ['smux', 'kcp ', 'stream ', 'window', ' frame ', '\n', 'snappy', '0123', 'the '];
  const b = new Uint8Array(n);
  let i = 0;
  while (i < n) {
    const w = r.pick(words);
    for (let k = 0; k < w.length && i < n; k++) b[i++] = w.charCodeAt(k);
  }
  return b;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

test('block: round trip of random, compressible and degenerate inputs', () => {
  const r = new Rng(1);
  const c = new SnappyCompressor();
  const inputs: Uint8Array[] = [new Uint8Array(0), Uint8Array.of(7), new Uint8Array(65536), compressible(r, 65536)];
  for (let i = 0; i < 200; i++) {
    const n = r.int(65537);
    inputs.push(i % 2 ? r.bytes(n) : compressible(r, n));
  }
  for (const input of inputs) {
    const block = c.compress(input);
    assert.ok(block.length <= maxEncodedLength(input.length));
    const back = decompress(block);
    assert.ok(back instanceof Uint8Array, String(back));
    assert.deepEqual(back, input);
  }
  // Compressible data really shrinks; zeros shrink to a few bytes per 64-byte copy.
  assert.ok(c.compress(compressible(r, 65536)).length < 65536 / 2);
  assert.ok(c.compress(new Uint8Array(65536)).length < 65536 / 16);
});

test('block: decodes hand-made blocks using every element type', () => {
  // "abcd" literal, copy1 (len 4, off 4), copy2 (len 3, off 2), copy4 (len 2, off 8) -> 13 bytes.
  const block = Uint8Array.of(13, 0x0c, 97, 98, 99, 100, 0x01, 4, 0x0a, 2, 0, 0x07, 8, 0, 0, 0);
  const out = decompress(block);
  assert.ok(out instanceof Uint8Array);
  assert.equal(Buffer.from(out).toString(), 'abcdabcdcdcda');
  // Literal with a 1-byte extended length (tag 60): 61 bytes.
  const lit = new Uint8Array(2 + 1 + 61);
  lit[0] = 61;
  lit[1] = 60 << 2;
  lit[2] = 60;
  lit.fill(0x41, 3);
  const out2 = decompress(lit);
  assert.ok(out2 instanceof Uint8Array);
  assert.equal(out2.length, 61);
});

test('block: malformed input is an error value, never a throw or a big allocation', () => {
  const bad: Uint8Array[] = [
    Uint8Array.of(), // no length
    Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x01), // varint too long
    Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f), // 4 GiB claimed
    Uint8Array.of(0x81, 0x80, 0x04), // 65537 > limit
    Uint8Array.of(4, 0x0c, 1, 2), // literal runs off the input
    Uint8Array.of(2, 0x0c, 1, 2, 3, 4), // literal longer than the decoded length
    Uint8Array.of(8, 0x00, 1, 0x01, 0), // copy offset 0
    Uint8Array.of(8, 0x00, 1, 0x01, 2), // copy offset beyond output
    Uint8Array.of(3, 0x00, 1, 0x01, 1), // copy overruns decoded length
    Uint8Array.of(8, 0x00, 1, 0x02, 1), // truncated copy2
    Uint8Array.of(8, 0x00, 1, 0x03, 1, 0, 0), // truncated copy4
    Uint8Array.of(5, 0x00, 1), // decoded shorter than announced
    Uint8Array.of(5, 0xf0, 1), // truncated extended literal length
  ];
  for (const b of bad) {
    const r = decompress(b);
    assert.ok(r instanceof TstierError, `accepted ${Buffer.from(b).toString('hex')}`);
    assert.equal(r.code, 'TSTIER_E_BAD_PACKET');
  }
  // Random garbage never throws.
  const r = new Rng(2);
  for (let i = 0; i < 2000; i++) decompress(r.bytes(r.int(64)));
});

test('framing: masked CRC matches the spec example', () => {
  assert.equal(maskedCrc(Uint8Array.of(1, 0, 0, 0, 3, 0, 0, 0)), 0x2fac3944);
});

test('framing: writer emits the identifier once, then chunk by chunk', () => {
  const w = new SnappyFrameWriter();
  const syn = Uint8Array.of(1, 0, 0, 0, 3, 0, 0, 0);
  assert.equal(w.write(new Uint8Array(0)).length, 0, 'an empty write sends nothing, not even the identifier');
  const first = w.write(syn);
  assert.deepEqual(first.subarray(0, 10), STREAM_IDENTIFIER);
  assert.equal(Buffer.from(STREAM_IDENTIFIER).toString('hex'), 'ff060000734e61507059');
  // Too small to compress: an uncompressed chunk, body = CRC + 8 bytes.
  assert.equal(Buffer.from(first.subarray(10)).toString('hex'), '010c0000' + '4439ac2f' + '0100000003000000');
  const second = w.write(new Uint8Array(4096));
  assert.equal(second[0], 0x00, 'zeros go in a compressed chunk');
  assert.ok(second.length < 4096 / 16, `${second.length} bytes`);
  const big = w.write((new Rng(3)).bytes(200000));
  assert.equal(big[0], 0x01, 'random data stays uncompressed');
  assert.equal(big.length, 200000 + 4 * 8);
});

test('framing: writeParts emits the bytes write() returns, an uncompressed body as a view of the input', () => {
  const data = concat([new Rng(5).bytes(70000), new Uint8Array(70000), new Rng(6).bytes(100)]);
  const parts: Uint8Array[] = [];
  const views: boolean[] = [];
  new SnappyFrameWriter().writeParts(data, (part) => {
    views.push(part.buffer === data.buffer);
    parts.push(part.slice());
  });
  assert.deepEqual(concat(parts), new SnappyFrameWriter().write(data));
  // identifier, then header + body for each of the three ≤ 64 KiB chunks (random, zeros, random/zeros)
  assert.equal(parts.length, 1 + 3 * 2);
  assert.deepEqual(views, [false, false, true, false, false, false, false], 'the random chunk is not copied');
});

test('framing: round trip with arbitrary splitting', () => {
  const r = new Rng(4);
  const w = new SnappyFrameWriter();
  const rd = new SnappyFrameReader();
  const sent: Uint8Array[] = [];
  const wire: Uint8Array[] = [];
  for (let i = 0; i < 300; i++) {
    const n = i % 50 === 0 ? r.range(70000, 170000) : r.int(9000);
    const d = i % 3 ? compressible(r, n) : r.bytes(n);
    sent.push(d);
    wire.push(w.write(d));
  }
  const stream = concat(wire);
  const got: Uint8Array[] = [];
  for (let p = 0; p < stream.length;) {
    const n = Math.min(stream.length - p, r.range(1, r.chance(0.5) ? 20 : 90000));
    // Copy so the reader's views cannot alias our stream buffer.
    const out = rd.push(stream.slice(p, p + n));
    assert.ok(Array.isArray(out), String(out));
    got.push(...out);
    p += n;
  }
  assert.deepEqual(concat(got), concat(sent));
});

test('framing: skippable chunks and repeated identifiers are accepted', () => {
  const w = new SnappyFrameWriter();
  const a = w.write(Buffer.from('hello'));
  const stream = concat([a, Uint8Array.of(0x80, 2, 0, 0, 9, 9), Uint8Array.of(0xfe, 0, 0, 0), STREAM_IDENTIFIER, w.write(Buffer.from(' world'))]);
  const out = new SnappyFrameReader().push(stream);
  assert.ok(Array.isArray(out));
  assert.equal(Buffer.from(concat(out)).toString(), 'hello world');
});

test('framing: corrupted streams are rejected and stay rejected', () => {
  const good = new SnappyFrameWriter().write(new TextEncoder().encode('some data some data some data'));
  const cases: [string, Uint8Array][] = [
    ['no identifier', good.subarray(10)],
    ['bad identifier', concat([Uint8Array.of(0xff, 6, 0, 0), Buffer.from('sNaPpZ')])],
    ['short identifier', Uint8Array.of(0xff, 5, 0, 0, 0x73, 0x4e, 0x61, 0x50, 0x70)],
    ['reserved type', concat([STREAM_IDENTIFIER, Uint8Array.of(0x02, 0, 0, 0)])],
    ['oversized body', concat([STREAM_IDENTIFIER, Uint8Array.of(0x80, (MAX_CHUNK_BODY + 1) & 0xff, ((MAX_CHUNK_BODY + 1) >> 8) & 0xff, (MAX_CHUNK_BODY + 1) >> 16)])],
    ['short compressed chunk', concat([STREAM_IDENTIFIER, Uint8Array.of(0x00, 3, 0, 0, 1, 2, 3)])],
    ['uncompressed chunk over 64 KiB', (() => {
      const body = new Uint8Array(4 + 65537);
      const b = body.length;
      return concat([STREAM_IDENTIFIER, Uint8Array.of(0x01, b & 0xff, (b >> 8) & 0xff, b >> 16), body]);
    })()],
  ];
  // Flip one bit of the CRC, of the payload, and of the compressed block.
  for (const at of [14, good.length - 1]) {
    const bad = good.slice();
    bad[at]! ^= 1;
    cases.push([`bit flip at ${at}`, bad]);
  }
  for (const [name, bytes] of cases) {
    const rd = new SnappyFrameReader();
    const out = rd.push(bytes);
    assert.ok(out instanceof TstierError, name);
    assert.equal(out.code, 'TSTIER_E_BAD_PACKET');
    assert.ok(rd.push(good) instanceof TstierError, `${name}: stays failed`);
  }
});

test('framing: random corruption never throws and never delivers corrupted data', () => {
  const r = new Rng(5);
  const w = new SnappyFrameWriter();
  const inputs = [compressible(r, 3000), r.bytes(500), compressible(r, 65536), compressible(r, 4464)];
  const stream = concat(inputs.map((d) => w.write(d)));
  const genuine = new Set(inputs.map((d) => Buffer.from(d).toString('base64')));
  let rejected = 0;
  for (let i = 0; i < 300; i++) {
    const bad = stream.slice();
    for (let k = r.range(1, 4); k > 0; k--) bad[r.int(bad.length)]! ^= 1 << r.int(8);
    const rd = new SnappyFrameReader();
    for (let p = 0; p < bad.length; p += 777) {
      const result = rd.push(bad.subarray(p, p + 777));
      if (result instanceof TstierError) {
        rejected++;
        break;
      }
      // A flip may turn a chunk into a skippable one or stretch the last one, but what is delivered is genuine.
      for (const c of result) assert.ok(genuine.has(Buffer.from(c).toString('base64')), `trial ${i}: corrupted chunk delivered`);
    }
  }
  assert.ok(rejected > 150, `only ${rejected} of 300 corrupted streams rejected`);
});
