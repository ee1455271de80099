import assert from 'node:assert/strict';
import test from 'node:test';
import { adjustChecksum, foldSum, internetChecksum, onesSum, pseudoHeaderSum } from '../../../daemon/packet/checksum.js';
import { Rng } from '../../sim/world.js';
import * as cap from './captured.js';

/** RFC 1071 done the obvious way: 16-bit big-endian words, end-around carry after every add. */
function naiveChecksum(data: Uint8Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i += 2) {
    sum += (data[i]! << 8) | (i + 1 < end ? data[i + 1]! : 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

test('matches the naive checksum for random lengths, offsets and alignments', () => {
  const rng = new Rng(1);
  // One big buffer, so both the cached 32-bit word path (aligned, >= 32 bytes) and the byte path run.
  const buf = rng.bytes(70000);
  for (let i = 0; i < 3000; i++) {
    const start = rng.int(4096);
    const len = rng.pick([0, 1, 2, 3, 31, 32, 33, rng.int(1600), rng.int(65536)]);
    assert.equal(internetChecksum(buf, start, start + len), naiveChecksum(buf, start, start + len), `start ${start} len ${len}`);
  }
  // A subarray whose byteOffset is unaligned must still agree.
  const sub = buf.subarray(3, 2003);
  assert.equal(internetChecksum(sub), naiveChecksum(sub, 0, sub.length));
  // Worst case for the accumulator: all ones over 64 KiB.
  const ones = new Uint8Array(65536).fill(0xff);
  assert.equal(internetChecksum(ones), naiveChecksum(ones, 0, ones.length));
});

test('the well-known IPv4 header example sums to 0xb861', () => {
  assert.equal(internetChecksum(cap.ipv4HeaderExample), cap.ipv4HeaderExampleChecksum);
});

test('checksums of kernel-generated packets verify (pseudo-header over IPv4 and IPv6)', () => {
  const cases: [Uint8Array, number, number][] = [
    [cap.tcp4Syn, 20, 6],
    [cap.udp4, 20, 17],
    [cap.tcp6Syn, 40, 6],
    [cap.udp6, 40, 17],
    [cap.icmp6Echo, 40, 58],
    [cap.icmp6RouterSolicit, 40, 58],
  ];
  for (const [pkt, l4, proto] of cases) {
    const pseudo = pseudoHeaderSum(pkt, 0, proto, pkt.length - l4);
    assert.equal(internetChecksum(pkt, l4, pkt.length, pseudo), 0);
  }
  assert.equal(internetChecksum(cap.tcp4Syn, 0, 20), 0, 'IPv4 header checksum');
});

test('RFC 1624 adjustment equals a full recompute over many random rewrites', () => {
  const rng = new Rng(2);
  for (let i = 0; i < 5000; i++) {
    const data = rng.bytes(2 + rng.int(200) * 2);
    const field = rng.int(data.length / 2 - 1) * 2 + 2; // never the checksum word at 0..2
    const width = Math.min(rng.pick([2, 4, 16]), data.length - field);
    data[0] = 0;
    data[1] = 0;
    const ck = internetChecksum(data);
    const oldSum = onesSum(data, field, field + width);
    data.set(rng.chance(0.1) ? new Uint8Array(width) : rng.bytes(width), field);
    const adjusted = adjustChecksum(ck, oldSum, onesSum(data, field, field + width));
    const full = internetChecksum(data);
    // 0x0000 and 0xffff are the same value in ones' complement; adjustChecksum always says 0xffff.
    assert.equal(adjusted, full === 0 ? 0xffff : full, `iteration ${i}`);
    data[0] = adjusted >> 8;
    data[1] = adjusted & 0xff;
    assert.equal(foldSum(onesSum(data)), 0xffff, `iteration ${i}: receiver check`);
  }
});

test('foldSum carries until 16 bits remain', () => {
  assert.equal(foldSum(0x1fffe), 0xffff);
  assert.equal(foldSum(2 ** 48 + 5), 6); // 2^16 = 1 in ones' complement
  assert.equal(foldSum(0xffff), 0xffff);
});
