import assert from 'node:assert/strict';
import test from 'node:test';
import { buildIcmpEchoPacket, buildTcpPacket, buildUdpPacket, type IpRepr } from '../../../daemon/packet/build.js';
import { internetChecksum, pseudoHeaderSum } from '../../../daemon/packet/checksum.js';
import { ICMPV4_ECHO_REQUEST, ICMPV6_ECHO_REQUEST } from '../../../daemon/packet/icmp.js';
import { Ipv4View } from '../../../daemon/packet/ipv4.js';
import { Ipv6View } from '../../../daemon/packet/ipv6.js';
import { rewriteAddress, rewritePort } from '../../../daemon/packet/rewrite.js';
import { Rng } from '../../sim/world.js';

const v4 = new Ipv4View();
const v6 = new Ipv6View();

/** Recomputes every checksum from scratch and says whether all of them verify. */
function allChecksumsValid(pkt: Uint8Array): boolean {
  const view = pkt[0]! >> 4 === 4 ? v4 : v6;
  assert.equal(view.wrap(pkt), null);
  if (view instanceof Ipv4View && !view.verifyChecksum()) return false;
  const p = view.transportProtocol;
  const len = view.end - view.transportStart;
  if (p === 17 && pkt[view.transportStart + 6] === 0 && pkt[view.transportStart + 7] === 0) return view instanceof Ipv4View;
  const pseudo = p === 1 ? 0 : pseudoHeaderSum(pkt, view.start, p, len);
  return internetChecksum(pkt, view.transportStart, view.end, pseudo) === 0;
}

function randomPacket(rng: Rng): Uint8Array {
  const v6family = rng.chance(0.5);
  const ip: IpRepr = { src: rng.bytes(v6family ? 16 : 4), dst: rng.bytes(v6family ? 16 : 4) };
  const payload = rng.bytes(rng.int(300));
  const kind = rng.int(3);
  if (kind === 0) {
    const tcp = { srcPort: rng.int(65536), dstPort: rng.int(65536), seq: rng.next(), ack: rng.next(), flags: rng.int(256), window: 1, urgent: 0 };
    return buildTcpPacket(ip, { ...tcp, options: {}, payload });
  }
  if (kind === 1) return buildUdpPacket(ip, { srcPort: rng.int(65536), dstPort: rng.int(65536), payload });
  return buildIcmpEchoPacket(ip, { type: v6family ? ICMPV6_ECHO_REQUEST : ICMPV4_ECHO_REQUEST, ident: 1, seq: 2, payload });
}

test('address and port rewrites keep every checksum equal to a full recompute', () => {
  const rng = new Rng(5);
  for (let i = 0; i < 3000; i++) {
    const pkt = randomPacket(rng);
    const view = pkt[0]! >> 4 === 4 ? v4 : v6;
    assert.equal(view.wrap(pkt), null);
    const len = view instanceof Ipv4View ? 4 : 16;
    const addr = rng.chance(0.05) ? new Uint8Array(len) : rng.bytes(len);
    rewriteAddress(view, rng.chance(0.5) ? 'src' : 'dst', addr);
    const ported = rewritePort(view, rng.chance(0.5) ? 'src' : 'dst', rng.int(65536));
    assert.equal(ported, view.transportProtocol === 6 || view.transportProtocol === 17);
    assert.ok(allChecksumsValid(pkt), `iteration ${i}`);
  }
});

test('IPv4 UDP without a checksum keeps none after a rewrite', () => {
  const pkt = buildUdpPacket({ src: Uint8Array.of(1, 2, 3, 4), dst: Uint8Array.of(5, 6, 7, 8) }, { srcPort: 1, dstPort: 2, payload: new Uint8Array(3) });
  pkt[26] = 0;
  pkt[27] = 0;
  assert.equal(v4.wrap(pkt), null);
  rewriteAddress(v4, 'dst', Uint8Array.of(9, 9, 9, 9));
  rewritePort(v4, 'dst', 53);
  assert.deepEqual([pkt[26], pkt[27]], [0, 0]);
  assert.equal(v4.verifyChecksum(), true);
  assert.equal(v4.dst, 0x09090909);
});

test('a wrong-size address is refused', () => {
  const pkt = randomPacket(new Rng(6));
  const view = pkt[0]! >> 4 === 4 ? v4 : v6;
  assert.equal(view.wrap(pkt), null);
  assert.throws(() => rewriteAddress(view, 'src', new Uint8Array(5)), RangeError);
});
