import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FrameReader, MAX_FRAME } from '../../../daemon/peer/underlay/tcp-frames.js';

function framed(payloads: Buffer[]): Buffer {
  return Buffer.concat(payloads.flatMap((p) => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(p.length);
    return [len, p];
  }));
}

function readAll(chunks: Buffer[]): { frames: Buffer[]; ok: boolean } {
  const r = new FrameReader();
  const frames: Buffer[] = [];
  const ok = chunks.every((c) => r.feed(c, (f) => frames.push(Buffer.from(f))));
  return { frames, ok };
}

test('frames come out whole wherever the stream is cut, including inside a length prefix', () => {
  const payloads = [randomBytes(0), randomBytes(1), randomBytes(5), randomBytes(1400), randomBytes(3)];
  const stream = framed(payloads);
  for (let a = 0; a <= stream.length; a++) {
    for (const b of [a, a + 1, a + 2, a + 7, stream.length]) {
      const cut = Math.min(b, stream.length);
      const { frames, ok } = readAll([stream.subarray(0, a), stream.subarray(a, cut), stream.subarray(cut)]);
      assert.ok(ok);
      assert.deepEqual(frames, payloads, `cut at ${a} and ${cut}`);
    }
  }
});

test('a stream fed a byte at a time, and a max-size frame across several chunks', () => {
  const small = [randomBytes(9), randomBytes(0), randomBytes(300)];
  const bytewise = readAll([...framed(small)].map((x) => Buffer.from([x])));
  assert.deepEqual(bytewise, { frames: small, ok: true });
  const payloads = [randomBytes(MAX_FRAME), randomBytes(2), randomBytes(70)];
  const stream = framed(payloads);
  const pieces = [];
  for (let at = 0; at < stream.length; at += 30_000) pieces.push(stream.subarray(at, at + 30_000));
  assert.deepEqual(readAll(pieces), { frames: payloads, ok: true });
});

test('a length over MAX_FRAME stops the reader, whole or split', () => {
  const bad = Buffer.alloc(8);
  bad.writeUInt32LE(MAX_FRAME + 1);
  const good = framed([randomBytes(10)]);
  assert.deepEqual(readAll([Buffer.concat([good, bad])]), { frames: [good.subarray(4)], ok: false });
  assert.equal(readAll([bad.subarray(0, 2), bad.subarray(2)]).ok, false);
});

test('a lowered maxFrame refuses a longer announcement before buffering any of it; raising it between frames works', () => {
  const r = new FrameReader(112);
  const frames: Buffer[] = [];
  const small = randomBytes(100);
  assert.ok(r.feed(framed([small]).subarray(0, 50), (f) => frames.push(Buffer.from(f))));
  assert.equal(r.buffered, 100, 'a split frame holds exactly its announced size');
  assert.ok(r.feed(framed([small]).subarray(50), (f) => {
    frames.push(Buffer.from(f));
    r.maxFrame = MAX_FRAME;
  }));
  assert.deepEqual(frames, [small]);
  assert.equal(r.buffered, 0);
  const big = randomBytes(5000);
  assert.ok(r.feed(framed([big]), (f) => frames.push(Buffer.from(f))), 'raised');
  const strict = new FrameReader(112);
  const huge = Buffer.alloc(4);
  huge.writeUInt32LE(MAX_FRAME);
  assert.equal(strict.feed(huge.subarray(0, 3), () => {}), true);
  assert.equal(strict.feed(huge.subarray(3), () => {}), false);
  assert.equal(strict.buffered, 0);
});
