/** Peer RPC: the envelope, slicing into pieces, reassembly in any order, and its bounds. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  CompressionAlgo, MAX_RPC_PIECES, RPC_PIECE_BUDGET, RPC_REASSEMBLY_TIMEOUT_MS, RpcReassembler, decodeRpcPacket,
  decodeRpcRequest, decodeRpcResponse, encodeRpcPacket, encodeRpcRequest, encodeRpcResponse, invalidServiceResponse,
  sliceRpcCall, type RpcCall, type RpcPacket,
} from '../../../../daemon/peer/easytier/rpc.js';
import { TstierError } from '../../../../daemon/errors.js';

const descriptor = { domainName: 'wspec-net', protoName: 'OspfRouteRpc', serviceName: 'OspfRouteRpc', methodIndex: 1 };
// Peer ids above 2^28 and a negative transaction id: the widest varints, as in the capture.
const call: RpcCall = { fromPeer: 0xf1234567, toPeer: 0x9abcdef0, transactionId: -5_000_000_000_000_000_000n, descriptor, isRequest: true, body: randomBytes(2589) };

test('the captured descriptor', () => {
  const p = decodeRpcPacket(encodeRpcPacket({ ...call, body: new Uint8Array(0), totalPieces: 1, pieceIdx: 0, traceId: 0 }));
  assert.deepEqual(p.descriptor, descriptor);
  assert.equal(p.transactionId, call.transactionId);
  assert.equal(p.isRequest, true);
});

test("EasyTier's captured slicing (150 proxy CIDRs): pieces of 1244/1240/334 encoded bytes from bodies 1165/1165/259", () => {
  const compression = { algo: CompressionAlgo.None, acceptedAlgo: CompressionAlgo.Zstd };
  const bodies = [call.body.subarray(0, 1165), call.body.subarray(1165, 2330), call.body.subarray(2330)];
  const pieces: RpcPacket[] = bodies.map((body, i) => ({ ...call, body, totalPieces: 3, pieceIdx: i, traceId: 0, ...(i === 0 ? { compression } : {}) }));
  assert.deepEqual(pieces.map((p) => encodeRpcPacket(p).length), [1244, 1240, 334]);
  // Reassembled in the order seen on the wire (piece 2 first).
  const r = new RpcReassembler();
  assert.equal(r.input(decodeRpcPacket(encodeRpcPacket(pieces[2]!)), 0), null);
  assert.equal(r.input(decodeRpcPacket(encodeRpcPacket(pieces[0]!)), 1), null);
  const whole = r.input(decodeRpcPacket(encodeRpcPacket(pieces[1]!)), 2)!;
  assert.deepEqual(Buffer.from(whole.body), Buffer.from(call.body));
  assert.equal(whole.acceptedAlgo, CompressionAlgo.Zstd);
  assert.deepEqual(whole.descriptor, descriptor);
  assert.equal(r.pending, 0);
});

test('our slicing: every piece within the 1248-byte budget, any arrival order, any body size', () => {
  for (const size of [0, 1, 1100, 1200, 2589, 20_000]) {
    const body = randomBytes(size);
    const pieces = sliceRpcCall({ ...call, body });
    for (const p of pieces) assert.ok(p.length <= RPC_PIECE_BUDGET, `${p.length} > budget`);
    const decoded = pieces.map(decodeRpcPacket);
    assert.equal(decoded[0]!.compression?.algo, CompressionAlgo.None, 'algo None stated explicitly');
    assert.equal(decoded[0]!.compression?.acceptedAlgo, CompressionAlgo.None, 'we accept no zstd');
    for (const d of decoded) assert.deepEqual(d.descriptor, descriptor, 'descriptor on every piece when uncompressed');
    const r = new RpcReassembler();
    let whole = null;
    for (const d of decoded.reverse()) whole = r.input(d, 0) ?? whole;
    assert.deepEqual(Buffer.from(whole!.body), body, `size ${size}`);
  }
});

test('reassembly is bounded: stale partial calls expire, too many pieces and zstd bodies are refused', () => {
  const r = new RpcReassembler();
  const [first] = sliceRpcCall(call).map(decodeRpcPacket);
  assert.equal(r.input(first!, 1000), null);
  assert.equal(r.pending, 1);
  r.expire(1000 + RPC_REASSEMBLY_TIMEOUT_MS);
  assert.equal(r.pending, 0);
  assert.throws(() => r.input({ ...first!, totalPieces: MAX_RPC_PIECES + 1 }, 0), (e: TstierError) => e.code === 'TSTIER_E_BAD_PACKET');
  assert.throws(() => r.input({ ...first!, pieceIdx: 3, totalPieces: 3 }, 0), TstierError);
  assert.throws(() => r.input({ ...first!, compression: { algo: CompressionAlgo.Zstd, acceptedAlgo: 2 } }, 0), TstierError);
  assert.throws(() => r.input({ ...first!, compression: { algo: CompressionAlgo.Invalid, acceptedAlgo: 2 } }, 0), TstierError);
  for (let i = 0; i < 200; i++) r.input({ ...first!, transactionId: BigInt(i) }, 0);
  assert.ok(r.pending <= 64, 'partial calls are capped');
  // A legacy packet (total 0, piece 0) is a whole call by itself.
  assert.ok(new RpcReassembler().input({ ...first!, totalPieces: 0, pieceIdx: 0 }, 0));
});

test('RpcRequest and RpcResponse, with the invalid_service answer', () => {
  const req = decodeRpcRequest(encodeRpcRequest({ request: Buffer.from('abc'), timeoutMs: 3000 }));
  assert.equal(Buffer.from(req.request).toString(), 'abc');
  assert.equal(req.timeoutMs, 3000);
  const resp = decodeRpcResponse(encodeRpcResponse(invalidServiceResponse('PeerCenterRpc')));
  assert.deepEqual(resp.error, { kind: 3, text: 'PeerCenterRpc' });
  assert.equal(resp.response, undefined);
  const ok = decodeRpcResponse(encodeRpcResponse({ response: Buffer.from([8, 1]), runtimeUs: 71n }));
  assert.deepEqual(Buffer.from(ok.response!), Buffer.from([8, 1]));
  assert.equal(ok.runtimeUs, 71n);
  assert.equal(ok.error, undefined);
});
