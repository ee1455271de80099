import assert from 'node:assert/strict';
import test from 'node:test';
import { formatIpAddress, parseIpAddress } from '../../../daemon/packet/address.js';
import { buildIcmpEchoPacket, buildTcpPacket, buildUdpPacket, emitTcpPacket, type IpRepr } from '../../../daemon/packet/build.js';
import { ICMPV4_ECHO_REQUEST, ICMPV6_ECHO_REQUEST, IcmpView } from '../../../daemon/packet/icmp.js';
import { Ipv4View } from '../../../daemon/packet/ipv4.js';
import { Ipv6View } from '../../../daemon/packet/ipv6.js';
import { TCP_ACK, TCP_PSH, TCP_SYN, type TcpRepr, TcpView } from '../../../daemon/packet/tcp.js';
import { UdpView } from '../../../daemon/packet/udp.js';
import { Rng } from '../../sim/world.js';
import * as cap from './captured.js';

const ip4: IpRepr = { src: parseIpAddress('10.0.0.1')!, dst: parseIpAddress('192.168.7.9')!, ttl: 61, ident: 4321 };
const ip6: IpRepr = { src: parseIpAddress('fd00::1')!, dst: parseIpAddress('2001:db8::abcd:2')!, ttl: 7, flowLabel: 0x12345 };

const v4 = new Ipv4View();
const v6 = new Ipv6View();
const tcp = new TcpView();
const udp = new UdpView();
const icmp = new IcmpView();

/** Binds the right IP view; returns it, failing the test on a parse error. */
function ip(pkt: Uint8Array): Ipv4View | Ipv6View {
  const view = pkt[0]! >> 4 === 4 ? v4 : v6;
  assert.equal(view.wrap(pkt), null);
  return view;
}

test('addresses parse and format both families (RFC 5952 text)', () => {
  for (const s of ['10.0.0.1', '0.0.0.0', '255.255.255.255', '::', '::1', 'fd00::1', '2001:db8::abcd:2', '1:0:0:2::3', '1:2:3:4:5:6:7:8', '::ffff:1.2.3.4']) {
    const bytes = parseIpAddress(s);
    assert.ok(bytes, s);
    assert.equal(formatIpAddress(bytes), s);
  }
  assert.deepEqual([...parseIpAddress('::ffff:1.2.3.4')!.subarray(10)], [0xff, 0xff, 1, 2, 3, 4]);
  assert.equal(formatIpAddress(parseIpAddress('2001:0DB8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1');
  for (const bad of ['', '1.2.3', '1.2.3.256', 'fe80::1%eth0', ':::', 'x']) assert.equal(parseIpAddress(bad), undefined, bad);
});

test('the kernel-captured TCP SYNs parse field by field', () => {
  const view = ip(cap.tcp4Syn) as Ipv4View;
  assert.equal(view.verifyChecksum(), true);
  assert.deepEqual([view.protocol, view.ttl, view.dontFragment, view.totalLength], [6, 64, true, 60]);
  assert.equal(formatIpAddress(view.toRepr().dst), '10.88.0.2');
  assert.equal(tcp.wrap(cap.tcp4Syn, view.transportStart, view.end), null);
  assert.deepEqual([tcp.srcPort, tcp.dstPort, tcp.flags, tcp.window, tcp.payloadLength], [35468, 8080, TCP_SYN, 64240, 0]);
  assert.equal(tcp.verifyChecksum(view.start), true);
  const repr = tcp.toRepr();
  assert.notEqual(typeof repr, 'string');
  assert.deepEqual((repr as TcpRepr).options, { mss: 1460, sackPermitted: true, timestamps: [0x31b8d46b, 0], windowScale: 10 });

  const six = ip(cap.tcp6Syn) as Ipv6View;
  assert.deepEqual([six.transportProtocol, six.transportStart, six.flowLabel, six.hopLimit], [6, 40, 0x30997, 64]);
  assert.equal(formatIpAddress(six.src()), 'fd88::1');
  assert.equal(tcp.wrap(cap.tcp6Syn, six.transportStart, six.end), null);
  assert.equal(tcp.verifyChecksum(0), true);
  assert.equal(tcp.dstPort, 8080);
});

test('the kernel-captured UDP and ICMPv6 packets parse and verify', () => {
  for (const pkt of [cap.udp4, cap.udp6]) {
    const view = ip(pkt);
    assert.equal(udp.wrap(pkt, view.transportStart, view.end), null);
    assert.equal(udp.verifyChecksum(view.start), true);
    assert.equal(udp.dstPort, 5353);
  }
  assert.equal(Buffer.from(udp.toRepr().payload).toString(), 'hello v6');
  const view = ip(cap.icmp6Echo);
  assert.equal(icmp.wrap(cap.icmp6Echo, view.transportStart, view.end, view.start), null);
  assert.deepEqual([icmp.type, icmp.code, icmp.ident, icmp.seq, icmp.isEcho], [ICMPV6_ECHO_REQUEST, 0, 0x378d, 1, true]);
  assert.equal(icmp.verifyChecksum(), true);
});

test('TCP packets round-trip through build and parse, any flags and options, both families', () => {
  const rng = new Rng(3);
  for (let i = 0; i < 300; i++) {
    const family = rng.chance(0.5) ? ip4 : ip6;
    const options: TcpRepr['options'] = {};
    if (rng.chance(0.5)) options.mss = rng.int(65536);
    if (rng.chance(0.5)) options.windowScale = rng.int(15);
    if (rng.chance(0.5)) options.sackPermitted = true;
    if (rng.chance(0.5)) options.timestamps = [rng.next(), rng.next()];
    if (rng.chance(0.3)) options.sackBlocks = [[rng.next(), rng.next()]];
    const repr: TcpRepr = {
      srcPort: rng.int(65536),
      dstPort: rng.int(65536),
      seq: rng.next(),
      ack: rng.next(),
      flags: rng.int(256),
      window: rng.int(65536),
      urgent: rng.int(65536),
      options,
      payload: rng.bytes(rng.int(1400)),
    };
    const pkt = buildTcpPacket(family, repr);
    const view = ip(pkt);
    assert.equal(view.hasTransportHeader, true);
    assert.equal(view.transportProtocol, 6);
    assert.equal(tcp.wrap(pkt, view.transportStart, view.end), null);
    assert.equal(tcp.verifyChecksum(view.start), true);
    assert.deepEqual(tcp.toRepr(), repr);
    if (view instanceof Ipv4View) assert.equal(view.verifyChecksum(), true);
  }
});

test('UDP and ICMP echo round-trip, and emit writes in place at an offset', () => {
  const payload = Uint8Array.from([1, 2, 3, 4, 5]);
  for (const family of [ip4, ip6]) {
    const pkt = buildUdpPacket(family, { srcPort: 1, dstPort: 65535, payload });
    const view = ip(pkt);
    assert.equal(udp.wrap(pkt, view.transportStart, view.end), null);
    assert.equal(udp.verifyChecksum(view.start), true);
    assert.deepEqual(udp.toRepr(), { srcPort: 1, dstPort: 65535, payload });
    assert.notEqual(udp.checksum, 0);

    const type = family === ip4 ? ICMPV4_ECHO_REQUEST : ICMPV6_ECHO_REQUEST;
    const echo = buildIcmpEchoPacket(family, { type, ident: 77, seq: 9, payload });
    const eview = ip(echo);
    assert.equal(eview.transportProtocol, family === ip4 ? 1 : 58);
    assert.equal(icmp.wrap(echo, eview.transportStart, eview.end, eview.start), null);
    assert.equal(icmp.verifyChecksum(), true);
    assert.deepEqual(icmp.toEchoRepr(), { type, ident: 77, seq: 9, payload });
  }
  const big = new Uint8Array(200).fill(0xee);
  const tcpRepr: TcpRepr = { srcPort: 5, dstPort: 6, seq: 1, ack: 2, flags: TCP_ACK | TCP_PSH, window: 3, urgent: 0, options: {}, payload };
  const n = emitTcpPacket(ip4, tcpRepr, big, 17);
  assert.equal(n, 20 + 20 + 5);
  assert.equal(big[16], 0xee);
  assert.equal(big[17 + n], 0xee);
  assert.equal(v4.wrap(big, 17, 17 + n), null);
  assert.equal(tcp.wrap(big, v4.transportStart, v4.end), null);
  assert.equal(tcp.verifyChecksum(17), true);
});

/** IPv6 with hop-by-hop, routing, destination options, AH and a fragment header before UDP. */
function ipv6WithExtensions(fragmentOffset: number): Uint8Array {
  const udpPkt = buildUdpPacket(ip6, { srcPort: 10, dstPort: 20, payload: new Uint8Array(4) });
  const udpPart = udpPkt.subarray(40);
  const ext = [
    [43, 0, 0, 0, 0, 0, 0, 0], // hop-by-hop (next: routing), 8 bytes
    [60, 1, 0, 0, 0, 0, 0, 0, ...new Array(8).fill(0)], // routing (next: dst opts), 16 bytes
    [51, 0, 1, 4, 0, 0, 0, 0], // destination options with PadN (next: AH)
    [44, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // AH, len 2 => (2+2)*4 = 16 bytes (next: fragment)
    [17, 0, fragmentOffset >> 8, (fragmentOffset & 0xf8) | 1, 0xde, 0xad, 0xbe, 0xef], // fragment, M=1 (next: UDP)
  ].flat();
  const pkt = new Uint8Array(40 + ext.length + udpPart.length);
  pkt.set(udpPkt.subarray(0, 40));
  pkt[6] = 0; // next header: hop-by-hop
  const payloadLength = ext.length + udpPart.length;
  pkt[4] = payloadLength >> 8;
  pkt[5] = payloadLength & 0xff;
  pkt.set(ext, 40);
  pkt.set(udpPart, 40 + ext.length);
  return pkt;
}

test('IPv6 extension headers are walked to the transport header', () => {
  const first = ipv6WithExtensions(0);
  assert.equal(v6.wrap(first), null);
  assert.deepEqual([v6.transportProtocol, v6.transportStart, v6.fragmentOffset, v6.moreFragments, v6.fragmentIdent], [17, 96, 0, true, 0xdeadbeef]);
  assert.equal(v6.hasTransportHeader, true);
  assert.equal(udp.wrap(first, v6.transportStart, v6.end), null);
  assert.deepEqual([udp.srcPort, udp.dstPort], [10, 20]);

  const later = ipv6WithExtensions(1480);
  assert.equal(v6.wrap(later), null);
  assert.deepEqual([v6.fragmentOffset, v6.hasTransportHeader], [1480, false]);

  // A chain that claims more bytes than the packet has is rejected, not followed.
  const broken = ipv6WithExtensions(0);
  broken[40 + 8 + 1] = 200; // routing header length
  assert.equal(Ipv6View.check(broken), 'bad-extension-header');
});

test('malformed and truncated input gives an error value, never an exception', () => {
  const samples = [cap.tcp4Syn, cap.tcp6Syn, cap.udp4, cap.udp6, cap.icmp6Echo, ipv6WithExtensions(0)];
  for (const pkt of samples) {
    for (let len = 0; len < pkt.length; len++) {
      const cut = pkt.subarray(0, len);
      assert.notEqual(pkt[0]! >> 4 === 4 ? Ipv4View.check(cut) : Ipv6View.check(cut), null, `length ${len}`);
    }
  }
  assert.equal(Ipv4View.check(Uint8Array.of(0x45, 0, 0, 10, ...new Array(16).fill(0))), 'bad-length');
  assert.equal(Ipv4View.check(Uint8Array.of(0x44, ...new Array(19).fill(0))), 'bad-header-length');
  assert.equal(Ipv4View.check(cap.tcp6Syn), 'bad-version');
  assert.equal(Ipv6View.check(cap.tcp4Syn), 'bad-version');
  assert.equal(TcpView.check(new Uint8Array(19)), 'truncated');
  assert.equal(TcpView.check(new Uint8Array(20)), 'bad-header-length');
  assert.equal(UdpView.check(Uint8Array.of(0, 1, 0, 2, 0, 7, 0, 0)), 'bad-length');
  assert.equal(UdpView.check(Uint8Array.of(0, 1, 0, 2, 0, 9, 0, 0)), 'truncated');

  const badOption = Uint8Array.from(cap.tcp4Syn);
  badOption[20 + 20 + 1] = 9; // MSS option claiming 9 bytes
  assert.equal(v4.wrap(badOption), null);
  assert.equal(tcp.wrap(badOption, v4.transportStart, v4.end), null);
  assert.equal(tcp.toRepr(), 'bad-option');

  // Random garbage and random corruption of real packets: views answer, they do not throw.
  const rng = new Rng(4);
  for (let i = 0; i < 20000; i++) {
    const buf = rng.chance(0.5) ? rng.bytes(rng.int(120)) : Uint8Array.from(rng.pick(samples));
    if (buf.length > 0) buf[rng.int(buf.length)] = rng.next();
    if (buf.length > 0 && rng.chance(0.5)) buf[0] = (rng.chance(0.5) ? 0x40 : 0x60) | (buf[0]! & 0x0f);
    const view = (buf[0] ?? 0) >> 4 === 4 ? v4 : v6;
    if (view.wrap(buf) !== null || !view.hasTransportHeader) continue;
    if (tcp.wrap(buf, view.transportStart, view.end) === null) tcp.toRepr();
    if (udp.wrap(buf, view.transportStart, view.end) === null) udp.verifyChecksum(view.start);
    if (icmp.wrap(buf, view.transportStart, view.end, view.start) === null) icmp.verifyChecksum();
  }
});
