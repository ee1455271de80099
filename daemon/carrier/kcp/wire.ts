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
