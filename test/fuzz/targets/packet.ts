/**
 * IP/TCP/UDP/ICMP views (daemon/packet/): they return a PacketError for bad bytes and never throw.
 * Beyond "no exception", the oracle catches silent out-of-bounds reads (which in JS yield undefined,
 * not an error): the packet is parsed once alone and once inside a larger buffer with random bytes
 * before and after it, bounded by (start, end); everything the views report must be identical, and
 * every offset they give must lie within [start, end]. The TCP flow key (packet/flow-key.ts) read
 * from the same bytes must agree with the views: a key only for a whole TCP segment, its fields
 * within the packet.
 */
import { buildIcmpEchoPacket, buildTcpPacket, buildUdpPacket } from '../../../daemon/packet/build.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IcmpView } from '../../../daemon/packet/icmp.js';
import { isIpFragment, readTcpFlowKey, TcpFlowKey } from '../../../daemon/packet/flow-key.js';
import { Ipv4View } from '../../../daemon/packet/ipv4.js';
import { Ipv6View } from '../../../daemon/packet/ipv6.js';
import { IPPROTO_TCP, TCP_ACK, TCP_SYN, TcpView, type TcpOptions } from '../../../daemon/packet/tcp.js';
import { IPPROTO_UDP, UdpView } from '../../../daemon/packet/udp.js';
import type { Rng } from '../../sim/world.js';
import type { FuzzTarget } from '../engine.js';

const v4 = new Ipv4View();
const v6 = new Ipv6View();
const tcp = new TcpView();
const udp = new UdpView();
const icmp = new IcmpView();
const key = new TcpFlowKey();

function inRange(what: string, at: number, start: number, end: number): number {
  if (!(at >= start && at <= end)) throw new Error(`${what} ${at} outside [${start}, ${end}]`);
  return at - start;
}

/** Everything the views say about buf[start, end), offsets relative to start. */
function describe(buf: Uint8Array, start: number, end: number): string {
  const out: unknown[] = [];
  const version = end > start ? buf[start]! >> 4 : -1;
  let ipEnd: number;
  let ts: number;
  let proto: number;
  let transport: boolean;
  if (version === 4) {
    const err = v4.wrap(buf, start, end);
    if (err) return err;
    ipEnd = v4.end;
    ts = v4.transportStart;
    proto = v4.transportProtocol;
    transport = v4.hasTransportHeader;
    const r = v4.toRepr();
    out.push(v4.headerLength, v4.totalLength, v4.ident, v4.ttl, v4.fragmentOffset, v4.moreFragments, v4.verifyChecksum(),
      [...r.src, ...r.dst], r.payloadLength, r.dscpEcn, r.dontFragment);
  } else if (version === 6) {
    const err = v6.wrap(buf, start, end);
    if (err) return err;
    ipEnd = v6.end;
    ts = v6.transportStart;
    proto = v6.transportProtocol;
    transport = v6.hasTransportHeader;
    const r = v6.toRepr();
    out.push(v6.payloadLength, v6.fragmentOffset, v6.moreFragments, v6.fragmentIdent, [...r.src, ...r.dst], r.nextHeader,
      r.hopLimit, r.trafficClass, r.flowLabel);
  } else {
    return `${Ipv4View.check(buf, start, end)} ${Ipv6View.check(buf, start, end)}`;
  }
  out.push(inRange('IP end', ipEnd, start, end), inRange('transport start', ts, start, ipEnd), proto, transport);
  if (!transport) return JSON.stringify(out);
  if (proto === IPPROTO_TCP) {
    const err = tcp.wrap(buf, ts, ipEnd);
    out.push(err);
    if (!err) {
      const opts: TcpOptions = {};
      const r = tcp.toRepr();
      out.push(tcp.seq, tcp.ack, tcp.flags, tcp.window, tcp.urgent, tcp.verifyChecksum(start), tcp.parseOptions(opts), opts,
        inRange('TCP payload', tcp.payloadStart, ts, ipEnd), tcp.payloadLength,
        typeof r === 'string' ? r : [r.srcPort, r.dstPort, r.payload.length, r.options]);
    }
  } else if (proto === IPPROTO_UDP) {
    const err = udp.wrap(buf, ts, ipEnd);
    out.push(err);
    if (!err) {
      const r = udp.toRepr();
      out.push(udp.srcPort, udp.dstPort, udp.length, inRange('UDP end', udp.end, ts, ipEnd), udp.verifyChecksum(start), r.payload.length);
    }
  } else if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) {
    const err = icmp.wrap(buf, ts, ipEnd, start);
    out.push(err);
    if (!err) {
      const r = icmp.toEchoRepr();
      out.push(icmp.type, icmp.code, icmp.isEcho, icmp.verifyChecksum(), r.ident, r.seq, r.payload.length);
    }
  }
  return JSON.stringify(out);
}

/** Fixed junk, so the padded parse differs from the plain one only if a view reads outside its bounds. */
const JUNK = Uint8Array.from({ length: 128 }, (_, i) => (i * 151 + 7) & 0xff);
let padded = new Uint8Array(0);

function corpus(rng: Rng): Uint8Array[] {
  const v4a = Uint8Array.of(10, 0, 0, 1);
  const v4b = Uint8Array.of(10, 0, 0, 2);
  const v6a = Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0xfd : i));
  const v6b = Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0xfd : 16 - i));
  const out: Uint8Array[] = [];
  for (const [src, dst] of [[v4a, v4b], [v6a, v6b]] as const) {
    const options: TcpOptions = { mss: 1400, windowScale: 7, sackPermitted: true, timestamps: [1, 2] };
    out.push(buildTcpPacket({ src, dst }, {
      srcPort: 1000, dstPort: 80, seq: 1, ack: 0, flags: TCP_SYN, window: 65535, urgent: 0, options, payload: new Uint8Array(0),
    }));
    out.push(buildTcpPacket({ src, dst }, {
      srcPort: 1000, dstPort: 80, seq: 5, ack: 9, flags: TCP_ACK, window: 512, urgent: 0,
      options: { sackBlocks: [[1, 2], [3, 4]] }, payload: rng.bytes(rng.int(200)),
    }));
    out.push(buildUdpPacket({ src, dst }, { srcPort: 53, dstPort: 5353, payload: rng.bytes(rng.int(100)) }));
    out.push(buildIcmpEchoPacket({ src, dst }, { type: src.length === 4 ? 8 : 128, ident: 7, seq: 1, payload: rng.bytes(32) }));
  }
  // An IPv6 packet behind a hop-by-hop and a fragment header, to give the chain walker something to walk.
  const inner = buildUdpPacket({ src: v6a, dst: v6b }, { srcPort: 1, dstPort: 2, payload: rng.bytes(20) });
  const ext = new Uint8Array(inner.length + 16);
  ext.set(inner.subarray(0, 40));
  ext[6] = 0; // hop-by-hop
  ext.set([44, 0, 1, 4, 0, 0, 0, 0], 40); // → fragment, padding option
  ext.set([17, 0, 0, 0, 0, 0, 0, 9], 48); // → UDP, offset 0, ident 9
  ext.set(inner.subarray(40), 56);
  ext[4] = (inner.length - 40 + 16) >> 8;
  ext[5] = (inner.length - 40 + 16) & 0xff;
  out.push(ext);
  return out;
}

/** A flow key exactly for an unfragmented TCP segment the views accept, with every field inside the packet. */
function checkFlowKey(input: Uint8Array): void {
  if (!readTcpFlowKey(input, key)) return;
  const ip = key.family === 4 ? v4 : v6;
  if (ip.wrap(input) !== null || ip.transportProtocol !== IPPROTO_TCP || isIpFragment(ip)) throw new Error('a flow key for a packet that is no whole TCP segment');
  inRange('source address', key.srcAt + key.addrLen, 0, input.length);
  inRange('destination address', key.dstAt + key.addrLen, 0, input.length);
  if (tcp.wrap(input, ip.transportStart, ip.end) !== null || tcp.srcPort !== key.srcPort || tcp.dstPort !== key.dstPort
    || tcp.flags !== key.flags) throw new Error('the flow key disagrees with the TCP view');
}

export const packetTarget: FuzzTarget = {
  name: 'packet',
  maxLength: 1600,
  corpus,
  run(input) {
    const alone = describe(input, 0, input.length);
    const n = input.length;
    const lead = n % 61;
    if (padded.length < lead + n + JUNK.length) padded = new Uint8Array(lead + n + JUNK.length + 2048);
    padded.set(JUNK.subarray(0, lead));
    padded.set(input, lead);
    padded.set(JUNK, lead + n);
    const inside = describe(padded, lead, lead + n);
    if (inside !== alone) throw new Error(`views read outside their bounds: alone ${alone}, padded ${inside}`);
    checkFlowKey(input);
  },
};
