/**
 * What a datagram user (kcptun's client and server, the peer underlay) needs of its socket: the part
 * of node:dgram's Socket they call, so a fake TCP connection or listener stands in for a UDP socket.
 */
/** The largest datagram carried: kcptun's --mtu tops out at 1500. */
export const FAKETCP_MAX_PAYLOAD = 1500;

export interface PacketFrom {
  address: string;
  port: number;
}

export interface PacketSocket {
  send(data: Uint8Array, port: number, host: string): void;
  on(event: 'message', listener: (msg: Buffer, from: PacketFrom) => void): this;
  close(callback?: () => void): void;
  address(): { address: string; port: number };
}

/** Counters of segments read and not delivered (garbage, forged, or for no connection of ours). */
export interface FakeTcpCounters {
  /** Not IPv4 TCP, or a malformed header. */
  malformed: number;
  /** Data segments with a wrong TCP checksum. */
  badChecksum: number;
  /** Well-formed segments to our port from an address and port with no kernel connection of ours. */
  orphans: number;
  /** Segments delivered. */
  delivered: number;
}

export function newCounters(): FakeTcpCounters {
  return { malformed: 0, badChecksum: 0, orphans: 0, delivered: 0 };
}

/** The payload of the segment at buf[start, end) in a Buffer of its own (the read buffer is reused). */
export function copyPayload(buf: Uint8Array, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  out.set(buf.subarray(start, end));
  return out;
}
