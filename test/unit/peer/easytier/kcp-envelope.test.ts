/** The kcp-sys envelope, its connect message on the captured flow, and the QUIC plaintext tag. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KCP_ENVELOPE_LEN, KcpFlag, decodeKcpConnData, decodeKcpEnvelope, encodeKcpConnData, encodeKcpEnvelope } from '../../../../daemon/peer/easytier/kcp-envelope.js';
import { plaintextTag, seahash } from '../../../../daemon/peer/easytier/quic-plaintext.js';
import { ProtoWriter } from '../../../../daemon/peer/easytier/proto.js';

const ip = (a: number, b: number, c: number, d: number): number => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

test('the captured connect message: 10.77.0.1:53238 -> 10.77.0.2:5201 is 25 bytes', () => {
  const msg = { src: { addr: ip(10, 77, 0, 1), port: 53238 }, dst: { addr: ip(10, 77, 0, 2), port: 5201 } };
  const wire = encodeKcpConnData(msg);
  assert.equal(wire.length, 25);
  assert.deepEqual(decodeKcpConnData(wire), msg);
  // An IPv6 source (another SocketAddr field) is not ours to read yet.
  const v6 = new ProtoWriter().message(1, new ProtoWriter().message(2, Buffer.alloc(4)).finish()).message(4, new ProtoWriter().finish()).finish();
  assert.equal(decodeKcpConnData(v6), null);
});

test('envelope: 14 bytes LE, the flag combinations seen on the wire', () => {
  const env = { conv: 0x01020304, srcSessionId: 0xaabbccdd, dstSessionId: 0x11223344, flag: KcpFlag.Syn | KcpFlag.Ack };
  const wire = encodeKcpEnvelope(env, Buffer.from('xy'));
  assert.equal(Buffer.from(wire.subarray(0, KCP_ENVELOPE_LEN)).toString('hex'), '04030201ddccbbaa443322110300');
  const back = decodeKcpEnvelope(wire)!;
  assert.deepEqual(back.env, env);
  assert.equal(Buffer.from(back.body).toString(), 'xy');
  assert.equal(KcpFlag.Ack | KcpFlag.Data, 0x0a);
  assert.equal(KcpFlag.Ping | KcpFlag.Pong, 0x60);
  assert.equal(decodeKcpEnvelope(wire.subarray(0, 13)), null);
});

test('quinn-plaintext: SeaHash with default seeds, and the tag over length-prefixed header and frames', () => {
  assert.equal(seahash(Buffer.from('to be or not to be')), 1988685042348123509n);
  const h = Buffer.from('c000000001', 'hex');
  const p = Buffer.from('0600', 'hex');
  const msg = Buffer.alloc(16 + h.length + p.length);
  msg.writeBigUInt64LE(BigInt(h.length), 0);
  h.copy(msg, 8);
  msg.writeBigUInt64LE(BigInt(p.length), 8 + h.length);
  p.copy(msg, 16 + h.length);
  assert.equal(Buffer.from(plaintextTag(h, p)).readBigUInt64BE(0), seahash(msg));
  // Every tail length (0..7 bytes past full words) takes its own path through the lanes.
  const seen = new Set<bigint>();
  for (let n = 0; n < 40; n++) seen.add(seahash(Buffer.alloc(n, 1)));
  assert.equal(seen.size, 40);
});
