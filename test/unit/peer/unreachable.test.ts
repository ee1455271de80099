import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostUnreachableFor } from '../../../daemon/node/unreachable.js';
import { internetChecksum } from '../../../daemon/packet/checksum.js';

/** A minimal IPv4 packet 10.0.0.1 -> dst with `proto` and 8 transport bytes. */
function ipv4(dst: number[], proto: number, first = 0, fragment = 0): Buffer {
  const p = Buffer.alloc(28);
  p[0] = 0x45;
  p.writeUInt16BE(28, 2);
  p.writeUInt16BE(fragment, 6);
  p[8] = 64;
  p[9] = proto;
  p.set([10, 0, 0, 1], 12);
  p.set(dst, 16);
  p[20] = first;
  p.writeUInt16BE(10, 10);
  return p;
}

test('answers a TCP packet with ICMP host unreachable quoting its header, checksums valid', () => {
  const orig = ipv4([10, 0, 0, 9], 6);
  const icmp = hostUnreachableFor(orig)!;
  assert.ok(icmp);
  assert.deepEqual([...icmp.subarray(12, 16)], [10, 0, 0, 9], 'from the unreachable address');
  assert.deepEqual([...icmp.subarray(16, 20)], [10, 0, 0, 1], 'to the sender');
  assert.equal(icmp[9], 1);
  assert.equal(internetChecksum(icmp, 0, 20), 0);
  assert.deepEqual([icmp[20], icmp[21]], [3, 1]);
  assert.equal(internetChecksum(icmp, 20, icmp.length), 0);
  assert.deepEqual(Buffer.from(icmp.subarray(28)), orig);
});

test('never answers ICMP errors, multicast, broadcast, later fragments or garbage', () => {
  assert.equal(hostUnreachableFor(ipv4([10, 0, 0, 9], 1, 3)), null);
  assert.equal(hostUnreachableFor(ipv4([10, 0, 0, 9], 1, 11)), null);
  assert.ok(hostUnreachableFor(ipv4([10, 0, 0, 9], 1, 8)), 'an echo request is answered');
  assert.equal(hostUnreachableFor(ipv4([224, 0, 0, 5], 17)), null);
  assert.equal(hostUnreachableFor(ipv4([10, 0, 0, 255], 17)), null);
  assert.equal(hostUnreachableFor(ipv4([10, 0, 0, 9], 17, 0, 100)), null);
  assert.equal(hostUnreachableFor(ipv4([10, 0, 0, 9], 17, 0, 0x2000)), null, 'a first fragment (MF set) is a fragment too');
  assert.ok(hostUnreachableFor(ipv4([10, 0, 0, 9], 17, 0, 0x4000)), "Don't Fragment alone is no fragment");
  for (let n = 0; n < 40; n++) assert.equal(hostUnreachableFor(Buffer.alloc(n, 0x45)), null);
});
