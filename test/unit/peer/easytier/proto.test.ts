/** The hand-written protobuf codec: varints at their edges, and garbage never escapes as anything but a counted error. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ProtoWriter, i64, protoFields, u32 } from '../../../../daemon/peer/easytier/proto.js';
import { decodeHandshake } from '../../../../daemon/peer/easytier/handshake.js';
import { decodeRpcPacket, decodeRpcResponse } from '../../../../daemon/peer/easytier/rpc.js';
import { decodeSyncRouteInfoRequest } from '../../../../daemon/peer/easytier/route-msg.js';
import { decodeKcpConnData } from '../../../../daemon/peer/easytier/kcp-envelope.js';
import { TstierError } from '../../../../daemon/errors.js';

test('varints: magic 0xd1e1a5e1 is e1cb868f0d; a negative int64 takes 10 bytes; zero is omitted', () => {
  assert.equal(Buffer.from(new ProtoWriter().uint(1, 0xd1e1a5e1).finish()).toString('hex'), '08e1cb868f0d');
  const neg = new ProtoWriter().uint(3, -1n).finish();
  assert.equal(neg.length, 11);
  assert.equal(i64([...protoFields(neg)][0]!), -1n);
  assert.equal(new ProtoWriter().uint(1, 0).bool(2, false).string(3, '').finish().length, 0);
  assert.equal(new ProtoWriter().optionalUint(3, 0).finish().length, 2, 'an optional zero is present');
  assert.equal(u32([...protoFields(new ProtoWriter().uint(1, 0xffffffff).finish())][0]!), 0xffffffff);
});

test('truncated and malformed input throws TSTIER_E_BAD_PACKET, never anything else', () => {
  for (const bad of ['08', '0a05aabb', '00', '0f00', '08ffffffffffffffffffff01']) {
    assert.throws(() => [...protoFields(Buffer.from(bad, 'hex'))], (e: TstierError) => e.code === 'TSTIER_E_BAD_PACKET', bad);
  }
  const decoders = [decodeHandshake, decodeRpcPacket, decodeRpcResponse, decodeSyncRouteInfoRequest, decodeKcpConnData];
  for (let i = 0; i < 3000; i++) {
    const junk = randomBytes(1 + (i % 60));
    for (const d of decoders) {
      try {
        d(junk);
      } catch (e) {
        assert.ok(e instanceof TstierError && e.code === 'TSTIER_E_BAD_PACKET', `${d.name}: ${String(e)}`);
      }
    }
  }
});
