/**
 * What a QUIC-carried flow's stream holds before its raw bytes: its head. Two framings share the
 * carrier (carrier.ts):
 * - tstier's, between tstier nodes: the initiator's OPEN frame, answered by the acceptor's STATUS
 *   (how its dial went), so a held SYN learns "refused" or "unreachable";
 * - EasyTier 2.6's (peer/easytier/quic-heads.ts): a connect message from the initiator and no
 *   answer at all; a failed dial over there just ends the stream.
 */
import { decodeOpen, type DialStatus, encodeOpen, FRAME_HEADER, FrameType, type OpenRequest } from '../flow-frames.js';

export type QuicFlowRole = 'initiator' | 'acceptor';

/** A parsed head: the acceptor reads a request, the initiator a status; `length` bytes it took. */
export type ParsedHead = { request: OpenRequest; status?: undefined; length: number } | { request?: undefined; status: DialStatus; length: number };

export interface FlowHeads {
  /** Whether the acceptor answers every open with a head of its own (STATUS). */
  readonly answers: boolean;
  /** The initiator's head for a flow to `req`; null if this framing cannot carry it. */
  open(req: OpenRequest): Uint8Array | null;
  /** The head a peer in `role` sent, from its first bytes: null while incomplete, 'error' if it cannot be one. */
  parse(acc: Uint8Array, role: QuicFlowRole): ParsedHead | null | 'error';
}

/** The largest OPEN frame payload accepted (two IPv6 addresses need 40). */
const MAX_HEAD_PAYLOAD = 512;

export const TSTIER_HEADS: FlowHeads = {
  answers: true,
  open: encodeOpen,
  parse(acc, role) {
    if (acc.length < FRAME_HEADER) return null;
    const type = acc[0]!;
    const len = (acc[1]! << 8) | acc[2]!;
    const want = role === 'acceptor' ? FrameType.Open : FrameType.Status;
    if (type !== want || len > MAX_HEAD_PAYLOAD || (want === FrameType.Status && len !== 1)) return 'error';
    const length = FRAME_HEADER + len;
    if (acc.length < length) return null;
    if (want === FrameType.Status) return { status: acc[FRAME_HEADER] as DialStatus, length };
    const request = decodeOpen(acc.subarray(FRAME_HEADER, length));
    return request ? { request, length } : 'error';
  },
};
