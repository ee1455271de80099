/** The one flow key of a TCP packet (both families), the one fragment rule, and the map keyed by it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowKeyMap } from '../../../daemon/intercept/flow-key-map.js';
import { parseIpv6Address } from '../../../daemon/packet/address.js';
import { buildTcpPacket, buildUdpPacket } from '../../../daemon/packet/build.js';
import { formatSocketAddr, ipVersion, isIpFragment, readTcpFlowKey, TcpFlowKey } from '../../../daemon/packet/flow-key.js';
import { Ipv4View } from '../../../daemon/packet/ipv4.js';
import { Ipv6View } from '../../../daemon/packet/ipv6.js';
import { TCP_ACK, TCP_SYN } from '../../../daemon/packet/tcp.js';

const ip = (a: number, b: number, c: number, d: number): Uint8Array => Uint8Array.of(a, b, c, d);
const seg = (srcPort: number, dstPort: number, flags = TCP_SYN, payload = 0) => ({
  srcPort, dstPort, seq: 1, ack: 0, flags, window: 1000, urgent: 0, options: { mss: 1460 }, payload: new Uint8Array(payload),
});
const v6src = parseIpv6Address('fd00::1')!;
const v6dst = parseIpv6Address('fd00:15::2')!;

test('flow key: an IPv4 SYN gives family, address bytes and numbers, ports and flags', () => {
  const syn = buildTcpPacket({ src: ip(10, 0, 0, 2), dst: ip(192, 168, 1, 9) }, seg(40000, 443));
  const k = new TcpFlowKey();
  assert.equal(readTcpFlowKey(syn, k), true);
  assert.deepEqual([k.family, k.src4, k.dst4, k.srcPort, k.dstPort, k.ports, k.flags],
    [4, 0x0a000002, 0xc0a80109, 40000, 443, ((40000 << 16) | 443) >>> 0, TCP_SYN]);
  assert.deepEqual(k.srcAddr(), { ip: ip(10, 0, 0, 2), port: 40000 });
  assert.equal(formatSocketAddr(k.dstAddr()), '192.168.1.9:443');
  assert.equal(k.tcp.headerLength, 24, 'the TCP view stays bound (options included)');
});

test('flow key: an IPv6 SYN gives the 16-byte addresses; extension headers are followed', () => {
  const syn = buildTcpPacket({ src: v6src, dst: v6dst }, seg(40000, 7000, TCP_SYN | TCP_ACK));
  const k = new TcpFlowKey();
  assert.equal(readTcpFlowKey(syn, k), true);
  assert.deepEqual([k.family, k.src4, k.srcPort, k.dstPort, k.flags], [6, 0, 40000, 7000, TCP_SYN | TCP_ACK]);
  assert.deepEqual(k.dstAddr().ip, v6dst);
  assert.equal(formatSocketAddr(k.srcAddr()), '[fd00::1]:40000');
  // The same segment behind an 8-byte destination-options header.
  const opts = new Uint8Array(syn.length + 8);
  opts.set(syn.subarray(0, 40));
  opts[6] = 60; // next header: destination options
  opts[40] = 6; // ... then TCP
  opts.set(syn.subarray(40), 48);
  opts[5] = syn[5]! + 8; // payload length
  const k2 = new TcpFlowKey();
  assert.equal(readTcpFlowKey(opts, k2), true);
  assert.equal(k2.text(), k.text());
});

test('flow key: UDP, truncation, other versions and every fragment are not flow packets', () => {
  const k = new TcpFlowKey();
  const udp = buildUdpPacket({ src: ip(10, 0, 0, 2), dst: ip(10, 0, 0, 3) }, { srcPort: 1, dstPort: 2, payload: new Uint8Array(4) });
  assert.equal(readTcpFlowKey(udp, k), false);
  const syn = buildTcpPacket({ src: ip(10, 0, 0, 2), dst: ip(10, 0, 0, 3) }, seg(1, 2));
  assert.equal(readTcpFlowKey(syn.subarray(0, 30), k), false);
  const v5 = syn.slice(); v5[0] = 0x55;
  assert.equal(readTcpFlowKey(v5, k), false);
  assert.equal(ipVersion(v5), 0);
  assert.equal(ipVersion(syn.subarray(0, 19)), 0);
  assert.equal(ipVersion(syn), 4);
});

test('the fragment rule: MF set or a non-zero offset, in both families (the first fragment is one too)', () => {
  const v4 = new Ipv4View();
  const syn = buildTcpPacket({ src: ip(10, 0, 0, 2), dst: ip(10, 0, 0, 3) }, seg(1, 2, TCP_SYN, 64));
  const cases: Array<[number, number, boolean, string]> = [
    [0x00, 0x00, false, 'whole'], [0x40, 0x00, false, 'DF only'], [0x20, 0x00, true, 'first (MF)'],
    [0x20, 0x10, true, 'middle (MF, offset)'], [0x00, 0x10, true, 'last (offset)'], [0x01, 0x00, true, 'last (high offset bit)'],
  ];
  const k = new TcpFlowKey();
  for (const [b6, b7, fragment, what] of cases) {
    const p = syn.slice();
    p[6] = b6; p[7] = b7;
    assert.equal(v4.wrap(p), null, what);
    assert.equal(isIpFragment(v4), fragment, what);
    assert.equal(readTcpFlowKey(p, k), !fragment, what);
  }
  // IPv6: a fragment header with M=1 and offset 0 (first), then with an offset (later).
  const base = buildTcpPacket({ src: v6src, dst: v6dst }, seg(1, 2));
  for (const [offFlags, fragment] of [[0x0001, true], [0x0010, true], [0x0000, false]] as const) {
    const p = new Uint8Array(base.length + 8);
    p.set(base.subarray(0, 40));
    p[6] = 44;
    p[40] = 6;
    p[42] = offFlags >> 8; p[43] = offFlags & 0xff;
    p.set(base.subarray(40), 48);
    p[5] = base[5]! + 8;
    const v6 = new Ipv6View();
    assert.equal(v6.wrap(p), null);
    assert.equal(isIpFragment(v6), fragment, `IPv6 fragment field ${offFlags}`);
    assert.equal(readTcpFlowKey(p, k), !fragment);
  }
});

test('FlowKeyMap: both families, set/get/delete by stored key, size and values', () => {
  const m = new FlowKeyMap<string>();
  const k = new TcpFlowKey();
  const put = (pkt: Uint8Array, v: string) => (assert.equal(readTcpFlowKey(pkt, k), true), m.set(k, v));
  const a = put(buildTcpPacket({ src: ip(1, 0, 0, 1), dst: ip(2, 0, 0, 2) }, seg(3, 4)), 'a');
  const b = put(buildTcpPacket({ src: ip(1, 0, 0, 1), dst: ip(2, 0, 0, 2) }, seg(3, 5)), 'b');
  const c = put(buildTcpPacket({ src: v6src, dst: v6dst }, seg(3, 4)), 'c');
  put(buildTcpPacket({ src: ip(1, 0, 0, 1), dst: ip(2, 0, 0, 2) }, seg(3, 4, TCP_ACK)), 'a2'); // same flow, later packet
  assert.equal(m.size, 3);
  assert.equal(m.get(k), 'a2');
  assert.equal(m.getStored(c), 'c');
  readTcpFlowKey(buildTcpPacket({ src: v6dst, dst: v6src }, seg(3, 4)), k);
  assert.equal(m.get(k), undefined, 'the reverse direction is another key');
  m.delete(a);
  m.delete(a);
  assert.equal(m.size, 2);
  assert.deepEqual([...m.values()].sort(), ['b', 'c']);
  m.delete(b);
  m.delete(c);
  assert.equal(m.size, 0);
  assert.deepEqual([...m.values()], []);
});
