/** Route sync messages: RoutePeerInfo, the connection bitmap, SyncRouteInfo request and response. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildConnBitmap, connsFromBitmap, decodeRoutePeerInfo, decodeSyncRouteInfoRequest, decodeSyncRouteInfoResponse,
  encodeRoutePeerInfo, encodeSyncRouteInfoRequest, encodeSyncRouteInfoResponse, type RoutePeerInfo,
} from '../../../../daemon/peer/easytier/route-msg.js';
import { ProtoWriter, protoFields, u32 } from '../../../../daemon/peer/easytier/proto.js';

const instId = Buffer.from('f739b91d991b48ea8c0d11223344aabb', 'hex');
const info: RoutePeerInfo = {
  peerId: 0xdeadbeef, instId, ipv4: 172818435, networkLength: 24, proxyCidrs: ['192.168.1.0/24'], hostname: 'ts-a',
  udpNatType: 0, lastUpdate: { seconds: 1_780_000_000n, nanos: 5 }, version: 3, easytierVersion: '2.6.4-tstier',
  featureFlag: { kcpInput: true, quicInput: false }, peerRouteId: 0xfedcba9876543210n,
};

test('RoutePeerInfo: inst_id as four big-endian words, 10.77.0.3 as 172818435, round trip', () => {
  const raw = encodeRoutePeerInfo(info);
  const fields = [...protoFields(raw)];
  const uuid = [...protoFields(fields.find((f) => f.no === 2)!.bytes)].map(u32);
  assert.deepEqual(uuid.slice(0, 2), [0xf739b91d, 0x991b48ea]);
  const ip = [...protoFields(fields.find((f) => f.no === 4)!.bytes)].map(u32);
  assert.deepEqual(ip, [172818435]);
  assert.equal((10 << 24 | 77 << 16 | 3) >>> 0, 172818435);
  const back = decodeRoutePeerInfo(raw);
  const { raw: _raw, ...rest } = back;
  assert.deepEqual({ ...rest, instId: Buffer.from(rest.instId) }, { ...info, featureFlag: { kcpInput: true } });
  // Flags: only kcp_input (field 3) is set; quic_input false is omitted, which reads as false.
  assert.deepEqual([...protoFields(fields.find((f) => f.no === 11)!.bytes)].map((f) => f.no), [3]);
});

test('the captured bitmap: peer_ids [B v3, A v0, C v2], bytes 46 00 = B–A, B–C, C–B', () => {
  const [B, A, C] = [100, 200, 300];
  const bm = buildConnBitmap([{ peerId: A, version: 0 }, { peerId: C, version: 2 }, { peerId: B, version: 3 }], new Map([[B, [A, C]], [C, [B]]]));
  assert.deepEqual(bm.peerIds.map((p) => p.peerId), [B, A, C]);
  assert.deepEqual(Buffer.from(bm.bitmap), Buffer.from([0x46, 0x00]));
  const conns = connsFromBitmap(bm);
  assert.deepEqual(conns.get(B), { version: 3, neighbours: [A, C] });
  assert.deepEqual(conns.get(C), { version: 2, neighbours: [B] });
  assert.equal(conns.has(A), false, 'a version-0 row carries nothing');
});

test('SyncRouteInfo request: relayed infos keep their raw bytes, unknown fields included', () => {
  // An info from a newer node with a field we do not know (18, noise_static_pubkey).
  const foreign = Buffer.concat([Buffer.from(encodeRoutePeerInfo({ ...info, peerId: 5 })), new ProtoWriter().bytes(18, Buffer.alloc(32, 7)).finish()]);
  const relayed = decodeRoutePeerInfo(foreign);
  const req = { myPeerId: 9, mySessionId: 0x8000000000000001n, isInitiator: true, peerInfos: [info, relayed],
    connBitmap: buildConnBitmap([{ peerId: 9, version: 1 }, { peerId: 5, version: 0 }], new Map([[9, [5]]])) };
  const wire = encodeSyncRouteInfoRequest(req);
  assert.ok(Buffer.from(wire).includes(foreign), 'the relayed info is byte-identical');
  const back = decodeSyncRouteInfoRequest(wire);
  assert.equal(back.myPeerId, 9);
  assert.equal(back.mySessionId, 0x8000000000000001n);
  assert.equal(back.isInitiator, true);
  assert.deepEqual(back.peerInfos.map((p) => p.peerId), [0xdeadbeef, 5]);
  assert.deepEqual(back.conns.get(9), { version: 1, neighbours: [5] });
  // The list form (RouteConnPeerList, field 7) reads into the same shape.
  const list = new ProtoWriter().message(1, new ProtoWriter().message(1, new ProtoWriter().uint(1, 9).uint(2, 4).finish()).packed(2, [5, 0xfffffff0]).finish()).finish();
  const viaList = decodeSyncRouteInfoRequest(new ProtoWriter().uint(1, 9).message(7, list).finish());
  assert.deepEqual(viaList.conns.get(9), { version: 4, neighbours: [5, 0xfffffff0] });
});

test('SyncRouteInfo response: field 3 is never written, and a received one is seen', () => {
  const wire = encodeSyncRouteInfoResponse({ isInitiator: true, sessionId: 77n, error: 0 });
  assert.deepEqual([...protoFields(wire)].map((f) => f.no), [1, 2]);
  assert.deepEqual(decodeSyncRouteInfoResponse(wire), { isInitiator: true, sessionId: 77n });
  const withError = new ProtoWriter().uint(2, 77n).optionalUint(3, 0).finish();
  assert.equal(decodeSyncRouteInfoResponse(withError).error, 0, 'a present 0 means DuplicatePeerId');
});
