import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IKCP_CMD_PUSH, IKCP_CMD_WINS, IKCP_OVERHEAD, encodeSegment, parseSegmentHeader, writeSegmentHeader,
} from '../../../daemon/transport/kcp/segment.js';
import { Kcp } from '../../../daemon/transport/kcp/kcp.js';
import { kcpModeParams } from '../../../daemon/transport/kcp/modes.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

// docs/kcptun-wire.md §4 lays the fields out. The KCP part of the first client→server datagram captured from kcptun 2021,
// written field by field in wire order.
const GOLDEN = hex(
  'cdd8982b 51 00 0002 240a0000 00000000 00000000 12000000 ' +
  'ff060000734e61507059 010c0000 4439ac2f',
);

test('header fields are little-endian at the documented offsets', () => {
  const b = new Uint8Array(IKCP_OVERHEAD + 2);
  const end = writeSegmentHeader(b, 2, 0x04030201, IKCP_CMD_WINS, 7, 0x0a09, 0x0e0d0c0b, 0x1211100f, 0x16151413, 0x1a191817);
  assert.equal(end, 2 + IKCP_OVERHEAD);
  assert.deepEqual(
    [...b.subarray(2)],
    [1, 2, 3, 4, 84, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26],
  );
  assert.deepEqual(parseSegmentHeader(b, 2), {
    conv: 0x04030201, cmd: 84, frg: 7, wnd: 0x0a09, ts: 0x0e0d0c0b, sn: 0x1211100f, una: 0x16151413, len: 0x1a191817,
  });
  assert.equal(parseSegmentHeader(b, 3), null, 'fewer than 24 bytes left');
});

test('encodeSegment round-trips with u32 extremes', () => {
  const data = Uint8Array.of(1, 2, 3);
  const seg = encodeSegment({ conv: 0xffffffff, cmd: IKCP_CMD_PUSH, frg: 255, wnd: 0xffff, ts: 0xfffffffe, sn: 0x80000000, una: 1 }, data);
  assert.equal(seg.length, IKCP_OVERHEAD + 3);
  assert.deepEqual(parseSegmentHeader(seg), {
    conv: 0xffffffff, cmd: IKCP_CMD_PUSH, frg: 255, wnd: 0xffff, ts: 0xfffffffe, sn: 0x80000000, una: 1, len: 3,
  });
  assert.deepEqual([...seg.subarray(IKCP_OVERHEAD)], [1, 2, 3]);
});

test('golden: the captured first kcptun client datagram decodes as the spec lists', () => {
  assert.deepEqual(parseSegmentHeader(GOLDEN), {
    conv: 0x2b98d8cd, cmd: 81, frg: 0, wnd: 512, ts: 0x0a24, sn: 0, una: 0, len: 18,
  });
  assert.equal(GOLDEN.length, IKCP_OVERHEAD + 18);
});

test('golden: a kcptun-2021-configured client engine emits exactly the captured bytes', () => {
  // kcptun client defaults: MTU 1350, aes + FEC → 28 bytes headroom, sndwnd 128, rcvwnd 512, fast mode.
  const kcp = new Kcp({
    conv: 0x2b98d8cd, mtu: 1350, headroom: 28, sndWnd: 128, rcvWnd: 512, streamMode: true, ...kcpModeParams('fast'),
  });
  kcp.send(GOLDEN.subarray(IKCP_OVERHEAD));
  kcp.flush(0x0a24);
  const d = kcp.pollTransmit();
  assert.ok(d !== null);
  assert.equal(d.length, 28 + GOLDEN.length);
  assert.deepEqual(Buffer.from(d.subarray(28)).toString('hex'), Buffer.from(GOLDEN).toString('hex'));
  assert.equal(kcp.pollTransmit(), null);
});

test('golden: a server engine accepts the captured datagram, delivers its data and acks it', () => {
  const kcp = new Kcp({ conv: 0x2b98d8cd, mtu: 1350, headroom: 28, sndWnd: 1024, rcvWnd: 1024, streamMode: true });
  assert.equal(kcp.input(GOLDEN, 5000), 0);
  assert.equal(kcp.remoteWindow, 512);
  assert.deepEqual(kcp.recv(), GOLDEN.subarray(IKCP_OVERHEAD));
  kcp.flush(5001);
  const ack = kcp.pollTransmit();
  assert.ok(ack !== null);
  assert.deepEqual(parseSegmentHeader(ack, 28), {
    conv: 0x2b98d8cd, cmd: 82, frg: 0, wnd: 1024, ts: 0x0a24, sn: 0, una: 1, len: 0,
  });
});
