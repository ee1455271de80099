import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeOpen, DialStatus, encodeControl, encodeOpen, FrameReader, FrameType, writeFrameHeader, FRAME_HEADER,
  MAX_CONTROL_PAYLOAD,
} from '../../../daemon/carrier/flow-frames.js';
import { type SocketAddr, socketAddrOf } from '../../../daemon/packet/flow-key.js';

const sa = (ip: string, port: number): SocketAddr => socketAddrOf(ip, port)!;

test('OPEN round-trips IPv4 and IPv6 addresses and the optimistic flag', () => {
  const cases = [
    { src: sa('10.144.144.1', 40000), dst: sa('10.144.144.3', 80), optimistic: false },
    { src: sa('fd00::1', 1), dst: sa('2001:db8::8:800:200c:417a', 65535), optimistic: true },
    { src: sa('::ffff:1.2.3.4', 5), dst: sa('::', 6), optimistic: false },
  ];
  for (const c of cases) {
    const frame = encodeOpen(c);
    assert.equal(frame[0], FrameType.Open);
    const back = decodeOpen(frame.subarray(FRAME_HEADER));
    assert.deepEqual(back, c);
  }
});

test('OPEN keeps its version-1 wire format: family, address bytes and port per endpoint', () => {
  const frame = encodeOpen({ src: sa('10.0.0.1', 40000), dst: sa('fd00::2', 80), optimistic: true });
  assert.equal(Buffer.from(frame).toString('hex'),
    '01001c' + '0101' + '04' + '0a000001' + '9c40' + '06' + 'fd000000000000000000000000000002' + '0050');
  assert.throws(() => encodeOpen({ src: { ip: new Uint8Array(5), port: 1 }, dst: sa('1.2.3.4', 2), optimistic: false }), RangeError);
});

test('malformed OPEN payloads decode to null, never throw', () => {
  const good = encodeOpen({ src: sa('1.2.3.4', 1), dst: sa('5.6.7.8', 2), optimistic: false })
    .subarray(FRAME_HEADER);
  for (let cut = 0; cut < good.length; cut++) assert.equal(decodeOpen(good.subarray(0, cut)), null);
  const badVersion = good.slice(); badVersion[0] = 9;
  assert.equal(decodeOpen(badVersion), null);
  const badFamily = good.slice(); badFamily[2] = 5;
  assert.equal(decodeOpen(badFamily), null);
  const trailing = new Uint8Array(good.length + 1); trailing.set(good);
  assert.equal(decodeOpen(trailing), null);
});

test('FrameReader parses a stream split at every boundary; DATA is passed through, control frames whole', () => {
  const data = new Uint8Array(1000).map((_, i) => i & 0xff);
  const dataFrame = new Uint8Array(FRAME_HEADER + data.length);
  writeFrameHeader(dataFrame, 0, FrameType.Data, data.length);
  dataFrame.set(data, FRAME_HEADER);
  const open = encodeOpen({ src: sa('10.0.0.1', 1), dst: sa('fd00::9', 2), optimistic: false });
  const stream = Buffer.concat([open, encodeControl(FrameType.Status, DialStatus.Refused), dataFrame, encodeControl(FrameType.Fin)]);
  for (const piece of [1, 2, 3, 7, 500, stream.length]) {
    const r = new FrameReader();
    const control: Array<[number, string]> = [];
    const received: Buffer[] = [];
    for (let off = 0; off < stream.length; off += piece) {
      // Each push is a fresh chunk, as the carrier delivers them; earlier chunks are then overwritten
      // to prove control frames were copied and DATA pieces are consumed before the next push.
      const chunk = new Uint8Array(stream.subarray(off, off + piece));
      r.push(chunk);
      for (let f = r.next(); f !== null; f = r.next()) {
        assert.notEqual(f, 'error');
        if (f === 'error') return;
        if (f.type === FrameType.Data) received.push(Buffer.from(f.payload));
        else control.push([f.type, Buffer.from(f.payload).toString('hex')]);
      }
      chunk.fill(0xee);
    }
    assert.deepEqual(control, [
      [FrameType.Open, Buffer.from(open.subarray(FRAME_HEADER)).toString('hex')],
      [FrameType.Status, '01'],
      [FrameType.Fin, ''],
    ], `piece size ${piece}`);
    assert.deepEqual(Buffer.concat(received), Buffer.from(data), `piece size ${piece}`);
    assert.ok(r.atBoundary);
  }
});

test('an unknown frame type is a stream error', () => {
  const r = new FrameReader();
  r.push(new Uint8Array([0x7f, 0, 0]));
  assert.equal(r.next(), 'error');
});

test('a control frame longer than any real one is a stream error at its header, not buffered (fuzz)', () => {
  // Found by the flow-frames fuzzer: an OPEN declaring 65535 bytes, trickled in, was re-copied whole on
  // every push (quadratic). The longest real control payload is an IPv6 OPEN (40 bytes).
  const open = encodeOpen({ src: sa('fd00::1', 1), dst: sa('fd00::2', 2), optimistic: false });
  assert.ok(open.length - FRAME_HEADER <= MAX_CONTROL_PAYLOAD);
  for (const type of [FrameType.Open, FrameType.Status, FrameType.Fin, FrameType.Rst]) {
    const r = new FrameReader();
    r.push(Uint8Array.of(type, 0xff, 0xff, 1));
    assert.equal(r.next(), 'error', `type ${type}`);
    const split = new FrameReader();
    split.push(Uint8Array.of(type, 0));
    assert.equal(split.next(), null);
    split.push(Uint8Array.of(MAX_CONTROL_PAYLOAD + 1));
    assert.equal(split.next(), 'error', `type ${type}, header split`);
  }
  const data = new FrameReader();
  data.push(Uint8Array.of(FrameType.Data, 0xff, 0xff, 7));
  assert.deepEqual((data.next() as { payload: Uint8Array }).payload, Uint8Array.of(7), 'DATA may be 64 KiB');
});
