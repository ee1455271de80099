/** Underlay framing, the PM header, ping/pong and the forward counter, on the spec's captured bytes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpFrameDecoder, UdpMsgType, decodeUdp, encodeUdp, tcpFrame, udpSyn } from '../../../../daemon/peer/easytier/underlay.js';
import { EtPacketType, PmFlag, buildPing, forwardInPlace, pingSeq, pongFor, readPmHeader, splitPm } from '../../../../daemon/peer/easytier/pm.js';
import { TstierError } from '../../../../daemon/errors.js';

const h = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('udp:// Syn, Sack and a Ping in Data: the captured datagrams', () => {
  const connId = 0xaddf665b;
  const magic = h('225d37f98498fddd');
  assert.deepEqual(Buffer.from(udpSyn(connId, magic)), h('5b66dfad 01 00 0800 225d37f98498fddd'));
  assert.deepEqual(Buffer.from(udpSyn(connId, magic, UdpMsgType.Sack)), h('5b66dfad 02 00 0800 225d37f98498fddd'));

  const captured = h('5b66dfad 03 00 1400 b93ab16c bbe6d188 04 00 01 00 04000000 00000000');
  const ping = buildPing(0x6cb13ab9, 0x88d1e6bb, 0);
  assert.deepEqual(Buffer.from(encodeUdp(connId, UdpMsgType.Data, ping)), captured);

  const d = decodeUdp(captured)!;
  assert.equal(d.connId, connId);
  assert.equal(d.msgType, UdpMsgType.Data);
  const pm = splitPm(d.body)!;
  assert.deepEqual(pm.header, { from: 0x6cb13ab9, to: 0x88d1e6bb, type: EtPacketType.Ping, flags: 0, forwardCounter: 1, len: 4 });
  assert.equal(pingSeq(pm), 0);
  // A datagram whose len field disagrees with its size is dropped, as EasyTier drops it.
  assert.equal(decodeUdp(captured.subarray(0, captured.length - 1)), null);
  assert.equal(decodeUdp(captured.subarray(0, 7)), null);
  assert.throws(() => udpSyn(connId, magic.subarray(0, 7)), TstierError);
});

test('Pong is the Ping with only the type changed; from/to stay as they were', () => {
  const ping = buildPing(7, 9, 0xfffffffe);
  const pong = pongFor(ping);
  assert.equal(pong[8], EtPacketType.Pong);
  assert.deepEqual(Buffer.from(pong.subarray(9)), Buffer.from(ping.subarray(9)));
  assert.deepEqual(Buffer.from(pong.subarray(0, 8)), Buffer.from(ping.subarray(0, 8)));
  assert.equal(pingSeq(splitPm(pong)!), 0xfffffffe);
  assert.equal(ping[8], EtPacketType.Ping, 'the ping itself is untouched');
});

test('tcp:// frames: u32 LE length of the PM packet; any split of the stream; bad lengths end it', () => {
  const pm = new Uint8Array(16 + 77).fill(3); // the size of the captured first frame (93)
  const framed = tcpFrame(pm);
  assert.deepEqual(Buffer.from(framed.subarray(0, 4)), h('5d000000'));
  const stream = Buffer.concat([framed, tcpFrame(buildPing(1, 2, 3)), framed]);
  for (const cut of [1, 3, 4, 5, 50, 97, 98, stream.length - 1]) {
    const dec = new TcpFrameDecoder();
    const got = [...dec.push(stream.subarray(0, cut)), ...dec.push(stream.subarray(cut))];
    assert.deepEqual(got.map((g) => g.length), [93, 20, 93], `cut at ${cut}`);
    assert.equal(readPmHeader(got[1]!).type, EtPacketType.Ping);
  }
  const tooLong = Buffer.alloc(8);
  tooLong.writeUInt32LE(2001);
  assert.throws(() => new TcpFrameDecoder().push(tooLong), (e: TstierError) => e.code === 'TSTIER_E_PROTOCOL');
  const tooShort = Buffer.alloc(8);
  tooShort.writeUInt32LE(15);
  assert.throws(() => new TcpFrameDecoder().push(tooShort), (e: TstierError) => e.code === 'TSTIER_E_PROTOCOL');
  assert.equal(new TcpFrameDecoder().push(h('d0070000')).length, 0, '2000 is allowed, and waits for its bytes');
});

test('forwarding: +1 per hop, dropped past 7, LATENCY_FIRST cleared past 2, payload untouched', () => {
  const p = buildPing(1, 2, 5);
  p[9] = PmFlag.LatencyFirst | PmFlag.Encrypted;
  const payload = Buffer.from(p.subarray(16));
  const seen: number[] = [];
  while (forwardInPlace(p) === 'forward') seen.push(p[10]!);
  assert.deepEqual(seen, [2, 3, 4, 5, 6, 7, 8]);
  assert.equal(p[10], 8);
  assert.equal(p[9], PmFlag.Encrypted, 'LATENCY_FIRST cleared, ENCRYPTED kept');
  assert.deepEqual(Buffer.from(p.subarray(16)), payload);
  const q = buildPing(1, 2, 5);
  q[9] = PmFlag.LatencyFirst;
  q[10] = 2;
  forwardInPlace(q);
  assert.equal(q[9], PmFlag.LatencyFirst, 'kept at counter 2');
});
