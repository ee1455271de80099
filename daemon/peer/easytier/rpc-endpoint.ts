/**
 * Peer RPC for one node, sans-IO: numbers our calls, slices requests and responses into pieces
 * (rpc.ts), reassembles what arrives, and tells requests from responses. Which service answers
 * what is the caller's business (node-core.ts).
 */
import { randomBytes } from 'node:crypto';
import {
  RpcReassembler, decodeRpcPacket, decodeRpcRequest, decodeRpcResponse, encodeRpcRequest, encodeRpcResponse, sliceRpcCall,
  type ReassembledCall, type RpcDescriptor, type RpcRequest, type RpcResponse,
} from './rpc.js';

export type RpcInput =
  | { kind: 'request'; call: ReassembledCall; request: RpcRequest }
  | { kind: 'response'; call: ReassembledCall; response: RpcResponse };

export class EtRpcEndpoint {
  readonly #myPeerId: number;
  readonly #reassembler = new RpcReassembler();
  /** EasyTier starts its transaction counter at a random i64; so do we. */
  #nextTid: bigint;

  constructor(myPeerId: number) {
    this.#myPeerId = myPeerId;
    this.#nextTid = randomBytes(8).readBigInt64LE(0);
  }

  /** The RpcReq payloads (one per piece) of a new call to `to`. */
  request(to: number, descriptor: RpcDescriptor, req: RpcRequest): { tid: bigint; pieces: Uint8Array[] } {
    const tid = this.#nextTid;
    this.#nextTid = BigInt.asIntN(64, tid + 1n);
    const pieces = sliceRpcCall({ fromPeer: this.#myPeerId, toPeer: to, transactionId: tid, descriptor, isRequest: true, body: encodeRpcRequest(req) });
    return { tid, pieces };
  }

  /** The RpcResp payloads answering `call`: from/to swapped, its transaction id and descriptor echoed. */
  respond(call: ReassembledCall, resp: RpcResponse): Uint8Array[] {
    return sliceRpcCall({
      fromPeer: this.#myPeerId,
      toPeer: call.fromPeer,
      transactionId: call.transactionId,
      descriptor: call.descriptor,
      isRequest: false,
      body: encodeRpcResponse(resp),
    });
  }

  /** One RpcReq/RpcResp payload; a whole call once its last piece is in. Throws TSTIER_E_BAD_PACKET on garbage. */
  input(payload: Uint8Array, now: number): RpcInput | null {
    const call = this.#reassembler.input(decodeRpcPacket(payload), now);
    if (!call) return null;
    return call.isRequest
      ? { kind: 'request', call, request: decodeRpcRequest(call.body) }
      : { kind: 'response', call, response: decodeRpcResponse(call.body) };
  }

  expire(now: number): void {
    this.#reassembler.expire(now);
  }
}
