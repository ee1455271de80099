/**
 * The TUN addon's offload functions (daemon/tun/native/src/offload.c) against the TypeScript
 * checksums, which share no code with them: a TCP super-packet cut into segments (IPv4 and IPv6),
 * a partial checksum finished, and a super-packet NAT-rewritten with its checksum still partial
 * (packet/rewrite.ts, `partial`) that verifies once finished or cut. No device needed.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { buildTcpPacket } from '../../../daemon/packet/build.js';
import { internetChecksum, pseudoHeaderSum } from '../../../daemon/packet/checksum.js';
import { Ipv4View } from '../../../daemon/packet/ipv4.js';
import { Ipv6View } from '../../../daemon/packet/ipv6.js';
import { rewriteAddress, rewritePort } from '../../../daemon/packet/rewrite.js';
import { TCP_ACK, TCP_CWR, TCP_FIN, TCP_PSH } from '../../../daemon/packet/tcp.js';
import { loadAddon, type OffloadFunctions } from '../../../daemon/tun/tun-device.js';
import { Rng } from '../../sim/world.js';

const addon: OffloadFunctions = loadAddon();
const v4 = new Ipv4View();
const v6 = new Ipv6View();

function view(pkt: Uint8Array): Ipv4View | Ipv6View {
  const v = pkt[0]! >> 4 === 4 ? v4 : v6;
  assert.equal(v.wrap(pkt), null);
  return v;
}

/** Every checksum recomputed from scratch by the TypeScript code. */
function checksumsValid(pkt: Uint8Array): boolean {
  const v = view(pkt);
  if (v instanceof Ipv4View && !v.verifyChecksum()) return false;
  return internetChecksum(pkt, v.transportStart, v.end, pseudoHeaderSum(pkt, v.start, 6, v.end - v.transportStart)) === 0;
}

/**
 * A super-packet as the kernel hands it over with TSO: one IP/TCP header over `payload`, the TCP
 * checksum field holding the pseudo-header's sum only (not complemented).
 */
function superPacket(family: 4 | 6, payload: Uint8Array, flags: number, rng: Rng): Buffer {
  const len = family === 4 ? 4 : 16;
  const pkt = Buffer.from(buildTcpPacket({ src: rng.bytes(len), dst: rng.bytes(len), ident: 0xfffe },
    { srcPort: 40000, dstPort: 7000, seq: 0xffffff00, ack: 12345, flags, window: 500, urgent: 0,
      options: { timestamps: [1, 2] }, payload }));
  const v = view(pkt);
  const pseudo = pseudoHeaderSum(pkt, v.start, 6, v.end - v.transportStart);
  pkt.writeUInt16BE(pseudo, v.transportStart + 16);
  return pkt;
}

function cut(pkt: Uint8Array, mss: number, max = 64): Buffer[] {
  const out = Buffer.alloc(80_000);
  const offsets = new Uint32Array(max);
  const lengths = new Uint32Array(max);
  const n = addon.segment(pkt, mss, out, offsets, lengths);
  return n < 0 ? [] : Array.from({ length: n }, (_, i) => out.subarray(offsets[i]!, offsets[i]! + lengths[i]!));
}

for (const family of [4, 6] as const) {
  test(`IPv${family}: a super-packet is cut into valid segments: lengths, ids, sequence numbers, flags, bytes`, () => {
    const rng = new Rng(family);
    for (const [size, mss] of [[10_000, 1000], [10_500, 1000], [65_000 - 100, 1340], [1, 1340], [0, 1340]] as const) {
      const payload = rng.bytes(size);
      const pkt = superPacket(family, payload, TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR, rng);
      const hdr = pkt.length - size;
      const segs = cut(pkt, mss);
      assert.equal(segs.length, Math.max(1, Math.ceil(size / mss)));
      segs.forEach((s, i) => {
        assert.ok(checksumsValid(s), `segment ${i} of ${size}/${mss}: checksums`);
        const v = view(s);
        assert.equal(v.end, s.length);
        if (v instanceof Ipv4View) assert.equal(v.ident, (0xfffe + i) & 0xffff);
        const addrs = family === 4 ? [12, 20] : [8, 40];
        assert.deepEqual(s.subarray(addrs[0], addrs[1]), pkt.subarray(addrs[0], addrs[1]), 'addresses');
        const tcp = v.transportStart;
        assert.equal(s.readUInt32BE(tcp + 4), (0xffffff00 + i * mss) >>> 0, 'sequence number, wrapping');
        const last = i === segs.length - 1;
        assert.equal(s[tcp + 13], TCP_ACK | (last ? TCP_PSH | TCP_FIN : 0) | (i === 0 ? TCP_CWR : 0), `flags of ${i}`);
        assert.deepEqual(s.subarray(tcp + 20, hdr), pkt.subarray(tcp + 20, hdr), 'TCP options kept');
      });
      assert.deepEqual(Buffer.concat(segs.map((s) => s.subarray(hdr))), Buffer.from(payload));
    }
  });
}

test('what is no TCP super-packet, or does not fit, is refused (-1)', () => {
  const rng = new Rng(7);
  const pkt = superPacket(4, rng.bytes(5000), TCP_ACK, rng);
  assert.equal(cut(pkt, 1000, 4).length, 0, 'five segments, room for four');
  assert.equal(cut(pkt.subarray(0, 3000), 1000).length, 0, 'IP length beyond the bytes');
  assert.equal(cut(pkt, 0).length, 0, 'segment size 0');
  const udp = Buffer.from(pkt);
  udp[9] = 17;
  assert.equal(cut(udp, 1000).length, 0, 'UDP');
  const fragment = Buffer.from(pkt);
  fragment[6] = 0x20; // more fragments
  assert.equal(cut(fragment, 1000).length, 0, 'a fragment');
  const out = Buffer.alloc(100);
  assert.equal(addon.segment(pkt, 1000, out, new Uint32Array(8), new Uint32Array(8)), -1, 'output too small');
});

test('finishChecksum completes a partial checksum, and refuses offsets past the packet', () => {
  const rng = new Rng(11);
  for (const family of [4, 6] as const) {
    for (const size of [0, 1, 999, 1340]) {
      const pkt = superPacket(family, rng.bytes(size), TCP_ACK, rng);
      const tcp = view(pkt).transportStart;
      assert.equal(addon.finishChecksum(pkt, tcp, 16), 0);
      assert.ok(checksumsValid(pkt), `IPv${family} ${size} bytes`);
      assert.equal(addon.finishChecksum(pkt, tcp, pkt.length), -1);
    }
  }
});

test('a super-packet NAT-rewritten with its checksum partial verifies once finished, and once cut', () => {
  const rng = new Rng(13);
  for (let round = 0; round < 50; round++) {
    const pkt = superPacket(4, rng.bytes(1 + rng.int(20_000)), TCP_ACK, rng);
    const v = view(pkt) as Ipv4View;
    rewriteAddress(v, 'src', rng.bytes(4), true);
    rewritePort(v, 'src', rng.int(65536), true);
    rewriteAddress(v, 'dst', rng.bytes(4), true);
    rewritePort(v, 'dst', rng.int(65536), true);
    assert.ok(v.verifyChecksum(), 'the IPv4 header checksum is a full one, kept valid');
    for (const s of cut(pkt, 1340)) assert.ok(checksumsValid(s), `round ${round}: a segment`);
    assert.equal(addon.finishChecksum(pkt, v.transportStart, 16), 0);
    assert.ok(checksumsValid(pkt), `round ${round}: finished`);
  }
});
