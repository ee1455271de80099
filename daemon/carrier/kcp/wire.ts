/**
 * What the KCP carrier puts on the peer channel: each payload starts with a kind byte, and the
 * carrier's output is a list of (peer, packet type, bytes). Shared by the carrier and its flows.
 */

/** The payload is KCP segments of one conversation. */
export const KIND_SEGMENTS = 0;
/** The flow was reset: the conversation is gone (conv follows). */
export const KIND_RESET = 1;
/** The flow ended cleanly and was forgotten (conv follows). */
export const KIND_CLOSED = 2;
/**
 * The payload is KCP segments of several conversations, each segment's header naming its own
 * (ACKs of many flows to one peer in one datagram, see ack-bundle.ts). Only toward a peer announcing
 * the route feature KcpBundle. Kinds 3-5 are FEC's (path-fec.ts).
 */
export const KIND_BUNDLE = 6;

/** Packet types on the peer channel (the peer layer's numbers). */
export interface CarrierPacketTypes {
  fromInitiator: number;
  fromAcceptor: number;
}

export interface CarrierTransmit {
  peerId: number;
  type: number;
  data: Uint8Array;
}
