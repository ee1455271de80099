import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';

import { SmoltcpStack } from '../../../daemon/intercept/smoltcp/stack.js';
import { Ipv4View } from '../../../daemon/packet/ipv4.js';
import { TCP_ACK, TCP_PSH } from '../../../daemon/packet/tcp.js';
import { Harness, TestClient } from './harness.js';
import { socketAddrOf } from '../../../daemon/packet/flow-key.js';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Splits an unfragmented IPv4 packet into fragments of `size` payload bytes (a multiple of 8). */
function fragmentV4(packet: Uint8Array, size: number, ident: number): Uint8Array[] {
  const headerLength = (packet[0]! & 0x0f) * 4;
  const payload = packet.subarray(headerLength);
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < payload.length; offset += size) {
    const chunk = payload.subarray(offset, offset + size);
    const f = new Uint8Array(headerLength + chunk.length);
    f.set(packet.subarray(0, headerLength));
    f.set(chunk, headerLength);
    const more = offset + size < payload.length;
    const flagsOffset = (more ? 0x2000 : 0) | (offset / 8);
    f[2] = f.length >> 8;
    f[3] = f.length & 0xff;
    f[4] = ident >> 8;
    f[5] = ident & 0xff;
    f[6] = flagsOffset >> 8;
    f[7] = flagsOffset & 0xff;
    const ip = new Ipv4View();
    assert.equal(ip.wrap(f), null);
    ip.fillChecksum();
    out.push(f);
  }
  return out;
}

/** Splits an IPv6 packet (no extension headers) into Fragment-header fragments. */
function fragmentV6(packet: Uint8Array, size: number, ident: number): Uint8Array[] {
  const payload = packet.subarray(40);
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < payload.length; offset += size) {
    const chunk = payload.subarray(offset, offset + size);
    const f = new Uint8Array(48 + chunk.length);
    f.set(packet.subarray(0, 40));
    f[6] = 44;
    f[4] = (8 + chunk.length) >> 8;
    f[5] = (8 + chunk.length) & 0xff;
    const more = offset + size < payload.length;
    const offsetFlags = offset | (more ? 1 : 0);
    f.set([packet[6]!, 0, offsetFlags >> 8, offsetFlags & 0xff, ident >>> 24, (ident >> 16) & 0xff, (ident >> 8) & 0xff, ident & 0xff], 40);
    f.set(chunk, 48);
    out.push(f);
  }
  return out;
}

async function established(src: string, dst: string): Promise<{ h: Harness; c: TestClient; id: number }> {
  const h = new Harness(await SmoltcpStack.create());
  const c = new TestClient(src, 46000, dst, 8080);
  return { h, c, id: h.open(c) };
}

/** Sends `data` as one segment, fragmented and delivered in the given order. */
function sendFragmented(h: Harness, c: TestClient, data: Uint8Array, split: (p: Uint8Array) => Uint8Array[], order: number[]): void {
  const segment = c.packet(TCP_ACK | TCP_PSH, data);
  c.sndNxt = (c.sndNxt + data.length) >>> 0;
  const fragments = split(segment);
  assert.equal(fragments.length, order.length);
  for (const i of order) h.stack.input(fragments[i]!, h.now);
}

test('IPv4: a fragmented SYN opens a flow; fragmented data out of order arrives byte-exact', async () => {
  const h = new Harness(await SmoltcpStack.create());
  const c = h.add(new TestClient('10.0.0.2', 46001, '192.0.2.50', 443));
  const syn = fragmentV4(c.syn(), 16, 0x1111); // TCP header + MSS option: 24 bytes in 2 fragments
  h.stack.input(syn[1]!, h.now);
  h.stack.input(syn[0]!, h.now);
  h.runUntil(() => h.app.ofType('writable').length === 1);
  const flow = h.app.ofType('new')[0]!;
  assert.deepEqual(flow.dst, socketAddrOf('192.0.2.50', 443));
  const data = randomBytes(1000);
  sendFragmented(h, c, data, (p) => fragmentV4(p, 400, 0x2222), [2, 0, 1]);
  h.runUntil(() => h.app.receivedBytes(flow.id).length === data.length);
  assert.equal(sha256(h.app.receivedBytes(flow.id)), sha256(data));
  assert.equal(h.stack.stats().fragments, 5);
});

test('IPv6: fragmented data reassembles byte-exact', async () => {
  const { h, c, id } = await established('fd00::2', '2001:db8::50');
  const data = randomBytes(1000);
  sendFragmented(h, c, data, (p) => fragmentV6(p, 256, 0xabcdef01), [3, 1, 0, 2]);
  h.runUntil(() => h.app.receivedBytes(id).length === data.length);
  assert.equal(sha256(h.app.receivedBytes(id)), sha256(data));
});

test('overlapping fragments drop their datagram; a duplicate fragment does not', async () => {
  const { h, c, id } = await established('10.0.0.3', '192.0.2.51');
  const data = randomBytes(800);
  const segment = c.packet(TCP_ACK | TCP_PSH, data);
  const [a, b] = fragmentV4(segment, 416, 0x3333); // 820 bytes of IP payload: 416 + 404
  assert.equal(b!.length - 20, 404);
  const overlapping = fragmentV4(segment, 408, 0x3333)[1]!; // starts 8 bytes inside `a`
  h.stack.input(a!, h.now);
  h.stack.input(overlapping, h.now);
  h.stack.input(b!, h.now); // the datagram was discarded: this starts a new one that never completes
  h.settle(100);
  assert.equal(h.app.receivedBytes(id).length, 0);

  const [a2, b2] = fragmentV4(segment, 416, 0x4444);
  h.stack.input(a2!, h.now);
  h.stack.input(a2!, h.now);
  h.stack.input(b2!, h.now);
  c.sndNxt = (c.sndNxt + data.length) >>> 0;
  h.runUntil(() => h.app.receivedBytes(id).length === data.length);
  assert.equal(sha256(h.app.receivedBytes(id)), sha256(data));
});
