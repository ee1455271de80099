/**
 * EasyTier's peer RPC envelope: the PM payload of RpcReq/RpcResp is one `common.RpcPacket`, whose
 * body is an encoded RpcRequest/RpcResponse, sliced into pieces so that each encoded RpcPacket fits
 * 1248 bytes. Services are keyed by (domain = network name, service name, proto name) and the
 * method's 1-based index.
 *
 * We advertise accepted_algo None, so EasyTier never compresses toward us; a piece with algo Zstd
 * is refused. Reassembly is bounded in pieces, in partial calls, and in time.
 */
import { ProtoWriter, i64, protoFields, str, u32 } from './proto.js';
import { TstierError } from '../../errors.js';

export const CompressionAlgo = { Invalid: 0, None: 1, Zstd: 2 } as const;

/** 1300 − 8 (UDP header) − 16 (PM header) − 28 (AEAD tail): the budget for one encoded RpcPacket. */
export const RPC_PIECE_BUDGET = 1248;
/** EasyTier rejects more; we are stricter (a route sync of a few hundred nodes stays far below). */
export const MAX_RPC_PIECES = 256;
/** Partial calls are dropped after this long. */
export const RPC_REASSEMBLY_TIMEOUT_MS = 10_000;
/** At most this many calls in reassembly at once; the oldest is dropped beyond it. */
export const MAX_PARTIAL_CALLS = 64;

export interface RpcDescriptor {
  domainName: string;
  protoName: string;
  serviceName: string;
  /** 1-based, in .proto order. */
  methodIndex: number;
}

export interface RpcPacket {
  fromPeer: number;
  toPeer: number;
  transactionId: bigint;
  descriptor?: RpcDescriptor;
  body: Uint8Array;
  isRequest: boolean;
  totalPieces: number;
  pieceIdx: number;
  traceId: number;
  compression?: { algo: number; acceptedAlgo: number };
}

const encodeDescriptor = (d: RpcDescriptor): Uint8Array =>
  new ProtoWriter().string(1, d.domainName).string(2, d.protoName).string(3, d.serviceName).uint(4, d.methodIndex).finish();

function decodeDescriptor(buf: Uint8Array): RpcDescriptor {
  const d: RpcDescriptor = { domainName: '', protoName: '', serviceName: '', methodIndex: 0 };
  for (const f of protoFields(buf)) {
    if (f.no === 1) d.domainName = str(f);
    else if (f.no === 2) d.protoName = str(f);
    else if (f.no === 3) d.serviceName = str(f);
    else if (f.no === 4) d.methodIndex = u32(f);
  }
  return d;
}

export function encodeRpcPacket(p: RpcPacket): Uint8Array {
  const w = new ProtoWriter().uint(1, p.fromPeer).uint(2, p.toPeer).uint(3, p.transactionId);
  if (p.descriptor) w.message(4, encodeDescriptor(p.descriptor));
  w.bytes(5, p.body).bool(6, p.isRequest).uint(7, p.totalPieces).uint(8, p.pieceIdx).uint(9, p.traceId);
  if (p.compression) w.message(10, new ProtoWriter().uint(1, p.compression.algo).uint(2, p.compression.acceptedAlgo).finish());
  return w.finish();
}

export function decodeRpcPacket(buf: Uint8Array): RpcPacket {
  const p: RpcPacket = { fromPeer: 0, toPeer: 0, transactionId: 0n, body: new Uint8Array(0), isRequest: false, totalPieces: 0, pieceIdx: 0, traceId: 0 };
  for (const f of protoFields(buf)) {
    if (f.no === 1) p.fromPeer = u32(f);
    else if (f.no === 2) p.toPeer = u32(f);
    else if (f.no === 3) p.transactionId = i64(f);
    else if (f.no === 4) p.descriptor = decodeDescriptor(f.bytes);
    else if (f.no === 5) p.body = f.bytes;
    else if (f.no === 6) p.isRequest = f.varint !== 0n;
    else if (f.no === 7) p.totalPieces = u32(f);
    else if (f.no === 8) p.pieceIdx = u32(f);
    else if (f.no === 9) p.traceId = Number(BigInt.asIntN(32, f.varint));
    else if (f.no === 10) {
      const c = { algo: 0, acceptedAlgo: 0 };
      for (const g of protoFields(f.bytes)) {
        if (g.no === 1) c.algo = u32(g);
        else if (g.no === 2) c.acceptedAlgo = u32(g);
      }
      p.compression = c;
    }
  }
  return p;
}

/** What a whole call carries before slicing. */
export interface RpcCall {
  fromPeer: number;
  toPeer: number;
  transactionId: bigint;
  descriptor: RpcDescriptor;
  isRequest: boolean;
  /** The encoded RpcRequest or RpcResponse. */
  body: Uint8Array;
}

/**
 * Slices a call into encoded RpcPackets of at most RPC_PIECE_BUDGET bytes each. The body is sent
 * uncompressed (algo None), so the descriptor rides on every piece, as EasyTier does for None;
 * compression_info (accepting None only) rides on piece 0.
 */
export function sliceRpcCall(call: RpcCall): Uint8Array[] {
  const compression = { algo: CompressionAlgo.None, acceptedAlgo: CompressionAlgo.None };
  // The largest header any piece can have: piece fields at their widest, compression info, and
  // the body's tag and a 2-byte length.
  const widest = encodeRpcPacket({ ...call, body: new Uint8Array(0), totalPieces: MAX_RPC_PIECES, pieceIdx: MAX_RPC_PIECES, traceId: 0, compression });
  const slice = RPC_PIECE_BUDGET - widest.length - 3;
  const total = Math.max(1, Math.ceil(call.body.length / slice));
  if (total > MAX_RPC_PIECES) throw new TstierError('TSTIER_E_PROTOCOL', `rpc body of ${call.body.length} bytes needs ${total} pieces`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < total; i++) {
    out.push(
      encodeRpcPacket({
        ...call,
        body: call.body.subarray(i * slice, (i + 1) * slice),
        totalPieces: total,
        pieceIdx: i,
        traceId: 0,
        ...(i === 0 ? { compression } : {}),
      }),
    );
  }
  return out;
}

/** A whole call, reassembled. */
export interface ReassembledCall {
  fromPeer: number;
  toPeer: number;
  transactionId: bigint;
  isRequest: boolean;
  descriptor: RpcDescriptor;
  /** The caller's accepted_algo (what a response may use); None if it did not say. */
  acceptedAlgo: number;
  body: Uint8Array;
}

interface Partial {
  pieces: (Uint8Array | undefined)[];
  have: number;
  first?: RpcPacket;
  descriptor?: RpcDescriptor;
  startedAt: number;
}

/**
 * Collects pieces (in any order) into calls. Sans-IO: `now` is the caller's monotonic ms.
 * A malformed piece throws TstierError(TSTIER_E_BAD_PACKET); the caller counts and drops it.
 */
export class RpcReassembler {
  readonly #partial = new Map<string, Partial>();

  /** Adds one piece; returns the call when it is complete. */
  input(p: RpcPacket, now: number): ReassembledCall | null {
    this.expire(now);
    const total = p.totalPieces === 0 ? 1 : p.totalPieces; // 0 with piece 0: legacy, unfragmented
    if (total > MAX_RPC_PIECES || p.pieceIdx >= total) throw bad(`piece ${p.pieceIdx} of ${p.totalPieces}`);
    if (p.compression && p.compression.algo !== CompressionAlgo.None) throw bad(`compression algo ${p.compression.algo} not accepted`);
    const key = `${p.fromPeer}:${p.toPeer}:${p.transactionId}:${p.isRequest ? 1 : 0}`;
    let part = this.#partial.get(key);
    if (!part) {
      if (this.#partial.size >= MAX_PARTIAL_CALLS) this.#partial.delete(this.#partial.keys().next().value!);
      part = { pieces: new Array<Uint8Array | undefined>(total), have: 0, startedAt: now };
      this.#partial.set(key, part);
    }
    if (part.pieces.length !== total) throw bad('total_pieces changed within a call');
    if (part.pieces[p.pieceIdx] === undefined) {
      part.pieces[p.pieceIdx] = p.body;
      part.have++;
    }
    if (p.pieceIdx === 0) part.first = p;
    part.descriptor ??= p.descriptor;
    if (part.have < total) return null;
    this.#partial.delete(key);
    if (!part.descriptor) throw bad('no piece carried the descriptor');
    const body = new Uint8Array(part.pieces.reduce((n, s) => n + s!.length, 0));
    let at = 0;
    for (const s of part.pieces) {
      body.set(s!, at);
      at += s!.length;
    }
    return {
      fromPeer: p.fromPeer,
      toPeer: p.toPeer,
      transactionId: p.transactionId,
      isRequest: p.isRequest,
      descriptor: part.descriptor,
      acceptedAlgo: part.first?.compression?.acceptedAlgo || CompressionAlgo.None,
      body,
    };
  }

  /** Drops partial calls older than the timeout. */
  expire(now: number): void {
    for (const [key, part] of this.#partial) {
      if (now - part.startedAt >= RPC_REASSEMBLY_TIMEOUT_MS) this.#partial.delete(key);
    }
  }

  get pending(): number {
    return this.#partial.size;
  }
}

const bad = (what: string): TstierError => new TstierError('TSTIER_E_BAD_PACKET', `rpc: ${what}`);

// ---- RpcRequest / RpcResponse ----

export interface RpcRequest {
  request: Uint8Array;
  /** Never 0: EasyTier's handler would time out at its first pending poll. */
  timeoutMs: number;
}

export const encodeRpcRequest = (r: RpcRequest): Uint8Array => new ProtoWriter().bytes(2, r.request).uint(3, r.timeoutMs).finish();

export function decodeRpcRequest(buf: Uint8Array): RpcRequest {
  const r: RpcRequest = { request: new Uint8Array(0), timeoutMs: 0 };
  for (const f of protoFields(buf)) {
    if (f.no === 2) r.request = f.bytes;
    else if (f.no === 3) r.timeoutMs = Number(BigInt.asIntN(32, f.varint));
  }
  return r;
}

/** `error.Error`'s oneof, as far as a peer needs it: which case, and its text. */
export interface RpcError {
  /** 1 other, 2 invalid_method_index, 3 invalid_service, 4 prost_decode, 5 prost_encode, 6 execute, 7 malformat_rpc_packet, 8 timeout. */
  kind: number;
  text: string;
}

export interface RpcResponse {
  response?: Uint8Array;
  error?: RpcError;
  runtimeUs?: bigint;
}

/** The answer for a service we do not implement; EasyTier tolerates it for its optional services. */
export function invalidServiceResponse(serviceName: string): RpcResponse {
  return { error: { kind: 3, text: serviceName } };
}

export function encodeRpcResponse(r: RpcResponse): Uint8Array {
  const w = new ProtoWriter();
  if (r.response) w.message(1, r.response);
  if (r.error) {
    // Every error case is a message whose field 1 is a string (service name or msg), except the
    // two prost cases, which are empty.
    const inner = r.error.kind === 4 || r.error.kind === 5 ? new Uint8Array(0) : new ProtoWriter().string(1, r.error.text).finish();
    w.message(2, new ProtoWriter().message(r.error.kind, inner).finish());
  }
  return w.uint(3, r.runtimeUs ?? 0n).finish();
}

export function decodeRpcResponse(buf: Uint8Array): RpcResponse {
  const r: RpcResponse = {};
  for (const f of protoFields(buf)) {
    if (f.no === 1) r.response = f.bytes;
    else if (f.no === 3) r.runtimeUs = f.varint;
    else if (f.no === 2) {
      for (const e of protoFields(f.bytes)) {
        let text = '';
        for (const g of protoFields(e.bytes)) if (g.no === 1 && g.bytes.length > 0) text = str(g);
        r.error = { kind: e.no, text };
      }
    }
  }
  return r;
}
