/**
 * Fake TCP's sans-IO parts: segments we build parse back with a valid checksum (checked against the
 * kernel-captured SYN too), damaged ones are refused, and two flows fed each other's segments keep
 * xtaci/tcpraw's sequence rules through the handshake, loss (ack freezes, the peer resynchronises)
 * and timestamps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTcpFlow, newDataSegment } from '../../../daemon/faketcp/flow.js';
import { formatAddr, newSegmentInfo, parseAddr, parseSegment, SegmentBuilder, type SegmentInfo } from '../../../daemon/faketcp/segment.js';
import { TCP_ACK, TCP_PSH, TCP_SYN } from '../../../daemon/packet/tcp.js';
import { tcp4Syn } from '../packet/captured.js';

const A = parseAddr('10.0.0.1');
const B = parseAddr('10.0.0.2');

/** The IPv4 header the kernel would put in front of a segment we hand the raw socket. */
function onWire(segment: Uint8Array, src: number, dst: number): Uint8Array {
  const p = new Uint8Array(20 + segment.length);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  p[8] = 64;
  p[9] = 6;
  v.setUint32(12, src);
  v.setUint32(16, dst);
  p.set(segment, 20);
  return p;
}

function parsed(packet: Uint8Array): SegmentInfo {
  const info = newSegmentInfo();
  assert.equal(parseSegment(packet, 0, packet.length, info), null);
  return info;
}

test('addresses convert both ways', () => {
  assert.equal(formatAddr(parseAddr('192.168.200.7')), '192.168.200.7');
});

test('the kernel-captured SYN parses, with its timestamp', () => {
  const s = parsed(tcp4Syn);
  assert.equal(formatAddr(s.srcAddr), '10.88.0.1');
  assert.equal(s.dstPort, 8080);
  assert.equal(s.flags, TCP_SYN);
  assert.equal(s.tsVal, 0x31b8d46b);
});

test('a built segment is PSH|ACK with Linux timestamps, a valid checksum, and parses back', () => {
  const flow = new FakeTcpFlow(A, 40000, B, 4000, 0x1234_5678);
  flow.onSegment({ ...newSegmentInfo(), srcAddr: B, dstAddr: A, srcPort: 4000, dstPort: 40000, flags: TCP_SYN | TCP_ACK, seq: 999, ack: 5001, tsVal: 77 });
  const out = newDataSegment();
  flow.next(5, 1000, out);
  const seg = new SegmentBuilder(1500).build(out, Uint8Array.from([1, 2, 3, 4, 5]));
  assert.equal(seg.length, 20 + 12 + 5, 'header, NOP NOP TS, payload');
  const s = parsed(onWire(seg, A, B));
  assert.equal(s.flags, TCP_PSH | TCP_ACK);
  assert.equal(s.seq, 5001, 'seq starts at the SYN-ACK\'s ack');
  assert.equal(s.ack, 1000, 'ack is the peer ISN + 1');
  assert.equal(s.tsVal, (1000 + 0x1234_5678) >>> 0);
  assert.ok(s.tsVal >= 0);
  assert.deepEqual([...onWire(seg, A, B).subarray(s.payloadStart, s.payloadEnd)], [1, 2, 3, 4, 5]);
  assert.equal(out.tsEcr, 77, 'TSecr echoes the peer\'s last TSval');
  assert.ok(out.window >= 501 && out.window <= 516);
});

test('without timestamps in the handshake, segments carry no options', () => {
  const flow = new FakeTcpFlow(A, 40000, B, 4000, 1);
  flow.onSegment({ ...newSegmentInfo(), flags: TCP_SYN | TCP_ACK, seq: 1, ack: 2, tsVal: -1 });
  const out = newDataSegment();
  flow.next(3, 0, out);
  assert.equal(new SegmentBuilder(100).build(out, new Uint8Array(3)).length, 23);
});

test('damaged segments are refused: a flipped payload bit, a truncated header, not TCP', () => {
  const flow = new FakeTcpFlow(A, 1, B, 2, 3);
  const out = newDataSegment();
  flow.next(4, 0, out);
  const good = onWire(new SegmentBuilder(100).build(out, Uint8Array.from([9, 9, 9, 9])), A, B);
  const info = newSegmentInfo();
  const flipped = good.slice();
  flipped[flipped.length - 1]! ^= 1;
  assert.equal(parseSegment(flipped, 0, flipped.length, info), 'bad-checksum');
  const short = good.slice(0, 30);
  new DataView(short.buffer).setUint16(2, 30);
  assert.equal(parseSegment(short, 0, short.length, info), 'malformed');
  const udp = good.slice();
  udp[9] = 17;
  assert.equal(parseSegment(udp, 0, udp.length, info), 'not-ipv4-tcp');
  assert.equal(parseSegment(good, 0, 10, info), 'not-ipv4-tcp');
});

test('two flows exchanging segments: seq follows the peer\'s ack, ack freezes at a loss and the peer resynchronises', () => {
  const builder = new SegmentBuilder(100);
  const client = new FakeTcpFlow(A, 40000, B, 4000, 11);
  const server = new FakeTcpFlow(B, 4000, A, 40000, 22);
  // The kernels' handshake as the raw sockets see it: SYN (server side), SYN-ACK (client side), ACK.
  server.onSegment({ ...newSegmentInfo(), flags: TCP_SYN, seq: 100, tsVal: 5 });
  client.onSegment({ ...newSegmentInfo(), flags: TCP_SYN | TCP_ACK, seq: 700, ack: 101, tsVal: 6 });
  server.onSegment({ ...newSegmentInfo(), flags: TCP_ACK, seq: 101, ack: 701, tsVal: 7 });
  const send = (from: FakeTcpFlow, to: FakeTcpFlow, len: number, deliver = true): SegmentInfo => {
    const out = newDataSegment();
    from.next(len, 0, out);
    const s = parsed(onWire(builder.build(out, new Uint8Array(len)), from.localAddr, from.remoteAddr));
    if (deliver) assert.equal(to.onSegment(s), true);
    return s;
  };
  assert.equal(send(client, server, 10).seq, 101);
  assert.equal(send(client, server, 10).seq, 111);
  const reply = send(server, client, 4);
  assert.deepEqual([reply.seq, reply.ack], [701, 121], 'server acks all 20 bytes in order');
  send(client, server, 10, false); // lost: seq 121
  send(client, server, 10); // seq 131 arrives out of order: delivered, ack stays at 121
  const r2 = send(server, client, 4);
  assert.equal(r2.ack, 121, 'ack frozen at the lost segment');
  assert.equal(send(client, server, 10).seq, 121, 'the client restarts from the acked number');
  assert.equal(send(server, client, 4).ack, 131, 'and the server\'s ack moves again');
});
