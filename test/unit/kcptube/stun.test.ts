import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitHostPort } from '../../../daemon/kcptube/acceptor.js';
import { STUN_MAGIC_COOKIE, buildBindingRequest, isStun, parseBindingResponse } from '../../../daemon/kcptube/stun.js';
import { Rng } from '../../sim/world.js';

const TXID = Uint8Array.from({ length: 12 }, (_, i) => 0xa0 + i);

/** A Binding Success Response carrying the given attributes (type, body). */
function response(attrs: [number, Uint8Array][], txid = TXID): Uint8Array {
  const body = attrs.map(([type, v]) => {
    const a = new Uint8Array(4 + ((v.length + 3) & ~3));
    new DataView(a.buffer).setUint16(0, type);
    new DataView(a.buffer).setUint16(2, v.length);
    a.set(v, 4);
    return a;
  });
  const len = body.reduce((n, a) => n + a.length, 0);
  const b = new Uint8Array(20 + len);
  const v = new DataView(b.buffer);
  v.setUint16(0, 0x0101);
  v.setUint16(2, len);
  v.setUint32(4, STUN_MAGIC_COOKIE);
  b.set(txid, 8);
  let o = 20;
  for (const a of body) {
    b.set(a, o);
    o += a.length;
  }
  return b;
}

function xorV4(ip: number[], port: number): Uint8Array {
  const a = new Uint8Array(8);
  const v = new DataView(a.buffer);
  a[1] = 1;
  v.setUint16(2, port ^ (STUN_MAGIC_COOKIE >>> 16));
  v.setUint32(4, ((ip[0]! << 24) | (ip[1]! << 16) | (ip[2]! << 8) | ip[3]!) ^ STUN_MAGIC_COOKIE);
  return a;
}

test('Binding Request: RFC 5389 header, no attributes', () => {
  const r = buildBindingRequest(TXID);
  assert.equal(Buffer.from(r.subarray(0, 8)).toString('hex'), '000100002112a442');
  assert.deepEqual(r.subarray(8), TXID);
  assert.ok(isStun(r));
});

test('XOR-MAPPED-ADDRESS (IPv4 and IPv6) and the MAPPED-ADDRESS fallback', () => {
  assert.deepEqual(parseBindingResponse(response([[0x0020, xorV4([203, 0, 113, 7], 40000)]]), TXID), { address: '203.0.113.7', port: 40000 });
  const plain = Uint8Array.of(0, 1, 0x1f, 0x90, 10, 0, 0, 1);
  assert.deepEqual(parseBindingResponse(response([[0x8022, Uint8Array.of(1, 2, 3)], [0x0001, plain]]), TXID), { address: '10.0.0.1', port: 8080 });
  // IPv6 2001:db8::1, XORed with the cookie and the transaction id.
  const ip6 = Uint8Array.from(Buffer.from('20010db8000000000000000000000001', 'hex'));
  const key = new Uint8Array(16);
  new DataView(key.buffer).setUint32(0, STUN_MAGIC_COOKIE);
  key.set(TXID, 4);
  const a6 = new Uint8Array(20);
  a6[1] = 2;
  new DataView(a6.buffer).setUint16(2, 3478 ^ (STUN_MAGIC_COOKIE >>> 16));
  for (let i = 0; i < 16; i++) a6[4 + i] = ip6[i]! ^ key[i]!;
  assert.deepEqual(parseBindingResponse(response([[0x0020, a6]]), TXID), { address: '2001:db8::1', port: 3478 });
});

test('other transactions, truncations and garbage give null, never a throw', () => {
  const good = response([[0x0020, xorV4([1, 2, 3, 4], 5)]]);
  assert.equal(parseBindingResponse(good, new Uint8Array(12)), null, 'another transaction');
  for (let n = 0; n < good.length; n++) assert.doesNotThrow(() => parseBindingResponse(good.subarray(0, n), TXID));
  const rng = new Rng(4);
  for (let i = 0; i < 500; i++) {
    const b = rng.bytes(rng.int(80));
    if (b.length >= 8) new DataView(b.buffer).setUint32(4, STUN_MAGIC_COOKIE);
    if (b.length >= 20) b.set(TXID, 8);
    assert.doesNotThrow(() => parseBindingResponse(b, TXID));
  }
});

test('stun_server forms: host, host:port, bare IPv6, [IPv6]:port', () => {
  assert.deepEqual(splitHostPort('stun.example', 3478), { host: 'stun.example', port: 3478 });
  assert.deepEqual(splitHostPort('10.0.0.1:19302', 3478), { host: '10.0.0.1', port: 19302 });
  assert.deepEqual(splitHostPort('2001:db8::1', 3478), { host: '2001:db8::1', port: 3478 });
  assert.deepEqual(splitHostPort('[2001:db8::1]:5349', 3478), { host: '2001:db8::1', port: 5349 });
});
