/** The allocation-free 4-tuple map and key reader the userspace terminator looks packets up with. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTcpPacket, buildUdpPacket } from '../../../daemon/packet/build.js';
import { TCP_SYN } from '../../../daemon/packet/tcp.js';
import { FlowKeyMap, ipv6FlowKey, tcp6FlowKey, tcpFlowKey } from '../../../daemon/intercept/flow-key-map.js';
import { parseIpv6Address } from '../../../daemon/packet/address.js';

const ip = (a: number, b: number, c: number, d: number): Uint8Array => Uint8Array.of(a, b, c, d);

test('tcpFlowKey reads addresses, ports and flags; refuses UDP, fragments and truncation', () => {
  const syn = buildTcpPacket({ src: ip(10, 0, 0, 2), dst: ip(192, 168, 1, 9) }, {
    srcPort: 40000, dstPort: 443, seq: 1, ack: 0, flags: TCP_SYN, window: 1000, urgent: 0, options: {}, payload: new Uint8Array(0),
  });
  const k = { src: 0, dst: 0, ports: 0, flags: 0 };
  assert.equal(tcpFlowKey(syn, k), true);
  assert.deepEqual(k, { src: 0x0a000002, dst: 0xc0a80109, ports: ((40000 << 16) | 443) >>> 0, flags: TCP_SYN });
  const udp = buildUdpPacket({ src: ip(10, 0, 0, 2), dst: ip(10, 0, 0, 3) }, { srcPort: 1, dstPort: 2, payload: new Uint8Array(4) });
  assert.equal(tcpFlowKey(udp, k), false);
  const fragment = syn.slice();
  fragment[6] = 0x20; // more fragments
  assert.equal(tcpFlowKey(fragment, k), false);
  assert.equal(tcpFlowKey(syn.subarray(0, 30), k), false);
});

test('tcp6FlowKey: the same key as ipv6FlowKey from the addresses; refuses IPv4, UDP and truncation', () => {
  const src = parseIpv6Address('fd00::1')!;
  const dst = parseIpv6Address('fd00:15::2')!;
  const syn = Buffer.from(buildTcpPacket({ src, dst }, {
    srcPort: 40000, dstPort: 7000, seq: 1, ack: 0, flags: TCP_SYN, window: 1000, urgent: 0, options: {}, payload: new Uint8Array(0),
  }));
  const k = { ports: 0, flags: 0 };
  const key = tcp6FlowKey(syn, k);
  assert.equal(key, ipv6FlowKey(src, dst, 40000, 7000));
  assert.deepEqual(k, { ports: ((40000 << 16) | 7000) >>> 0, flags: TCP_SYN });
  assert.notEqual(key, ipv6FlowKey(src, dst, 40000, 7001));
  assert.notEqual(key, ipv6FlowKey(dst, src, 40000, 7000));
  const udp = Buffer.from(buildUdpPacket({ src, dst }, { srcPort: 1, dstPort: 2, payload: new Uint8Array(4) }));
  assert.equal(tcp6FlowKey(udp, k), null);
  assert.equal(tcp6FlowKey(syn.subarray(0, 50), k), null);
  const v4 = Buffer.from(buildTcpPacket({ src: ip(10, 0, 0, 2), dst: ip(10, 0, 0, 3) }, {
    srcPort: 1, dstPort: 2, seq: 1, ack: 0, flags: TCP_SYN, window: 1000, urgent: 0, options: {}, payload: new Uint8Array(40),
  }));
  assert.equal(tcp6FlowKey(v4, k), null);
});

test('FlowKeyMap: set, get, delete, size and values over nested keys', () => {
  const m = new FlowKeyMap<string>();
  m.set(1, 2, 3, 'a');
  m.set(1, 2, 4, 'b');
  m.set(1, 5, 3, 'c');
  m.set(1, 2, 3, 'a2');
  assert.equal(m.size, 3);
  assert.equal(m.get(1, 2, 3), 'a2');
  assert.equal(m.get(2, 2, 3), undefined);
  m.delete(1, 2, 3);
  m.delete(1, 2, 3);
  assert.equal(m.size, 2);
  assert.deepEqual([...m.values()].sort(), ['b', 'c']);
  m.delete(1, 2, 4);
  m.delete(1, 5, 3);
  assert.equal(m.size, 0);
  assert.deepEqual([...m.values()], []);
});
