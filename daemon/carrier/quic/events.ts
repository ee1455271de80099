/**
 * What the QUIC core reports, as objects: its numeric events (abi.ts) decoded into QuicEvent, and
 * its per-connection statistics into QuicConnectionStats. QuicEndpoint reads the numbers out of
 * wasm memory and hands them here.
 */
import { CONNECTED_OUTGOING, EventKind, LostReasonCode, StatIndex } from './abi.js';

/** Why a connection ended. `crashed`: the wasm instance trapped. */
export type QuicLostReason =
  | 'timed-out'
  | 'reset'
  | 'application-closed'
  | 'connection-closed'
  | 'locally-closed'
  | 'transport-error'
  | 'version-mismatch'
  | 'cids-exhausted'
  | 'crashed';

const LOST_REASONS: Record<number, QuicLostReason> = {
  [LostReasonCode.timedOut]: 'timed-out',
  [LostReasonCode.reset]: 'reset',
  [LostReasonCode.applicationClosed]: 'application-closed',
  [LostReasonCode.connectionClosed]: 'connection-closed',
  [LostReasonCode.locallyClosed]: 'locally-closed',
  [LostReasonCode.transportError]: 'transport-error',
  [LostReasonCode.versionMismatch]: 'version-mismatch',
  [LostReasonCode.cidsExhausted]: 'cids-exhausted',
};

export type QuicEvent =
  /** Handshake done; `outgoing` is true for connections we opened. */
  | { type: 'connected'; conn: number; peerId: number; outgoing: boolean }
  /**
   * The connection and all its streams are gone. `errorCode`: the QUIC (transport or
   * application) code, 0 if none; `detail`: quinn's description, for logs.
   */
  | { type: 'connection-lost'; conn: number; peerId: number; reason: QuicLostReason; errorCode: number; detail: string }
  /** The peer opened a stream: read it (its data may already be there). */
  | { type: 'stream-opened'; conn: number; peerId: number; stream: number }
  | { type: 'readable'; conn: number; peerId: number; stream: number }
  /** `write` may accept bytes again. */
  | { type: 'writable'; conn: number; peerId: number; stream: number }
  /** Everything we wrote, FIN included, was acknowledged. */
  | { type: 'finished'; conn: number; peerId: number; stream: number }
  /** The peer no longer reads (STOP_SENDING). */
  | { type: 'stopped'; conn: number; peerId: number; stream: number; code: number }
  /** The peer abandoned its sending side (RESET_STREAM); unread data is dropped. */
  | { type: 'reset'; conn: number; peerId: number; stream: number; code: number }
  /** `openStream` may succeed again on this connection. */
  | { type: 'streams-available'; conn: number; peerId: number };

/** One event as the core reports it: `event_next()`'s kind and the `event_*()` fields. */
export interface RawEvent {
  kind: number;
  conn: number;
  peerId: number;
  /** Stream id; for a lost connection, its QUIC error code. */
  stream: number;
  /** Stop/reset code, lost reason, or CONNECTED_OUTGOING. */
  code: number;
}

/**
 * The event object for a raw one; null for a kind this build does not know. `detail` is asked for
 * only by a lost connection (it reads quinn's description out of wasm memory).
 */
export function decodeEvent(e: RawEvent, detail: () => string): QuicEvent | null {
  const { conn, peerId, stream, code } = e;
  switch (e.kind) {
    case EventKind.connected:
      return { type: 'connected', conn, peerId, outgoing: code === CONNECTED_OUTGOING };
    case EventKind.connectionLost:
      return { type: 'connection-lost', conn, peerId, reason: LOST_REASONS[code] ?? 'transport-error', errorCode: stream, detail: detail() };
    case EventKind.streamOpened:
      return { type: 'stream-opened', conn, peerId, stream };
    case EventKind.streamReadable:
      return { type: 'readable', conn, peerId, stream };
    case EventKind.streamWritable:
      return { type: 'writable', conn, peerId, stream };
    case EventKind.streamFinished:
      return { type: 'finished', conn, peerId, stream };
    case EventKind.streamStopped:
      return { type: 'stopped', conn, peerId, stream, code };
    case EventKind.streamsAvailable:
      return { type: 'streams-available', conn, peerId };
    case EventKind.streamReset:
      return { type: 'reset', conn, peerId, stream, code };
    default:
      return null;
  }
}

export interface QuicConnectionStats {
  rttMs: number;
  minRttMs: number;
  /** Congestion window, bytes. */
  cwnd: number;
  congestionEvents: number;
  lostPackets: number;
  lostBytes: number;
  sentPackets: number;
  datagramsOut: number;
  bytesOut: number;
  datagramsIn: number;
  bytesIn: number;
  mtu: number;
}

/** The statistics in `conn_stats`'s array (StatIndex). */
export function decodeStats(s: Float64Array): QuicConnectionStats {
  return {
    rttMs: s[StatIndex.rttMicros]! / 1000,
    minRttMs: s[StatIndex.minRttMicros]! / 1000,
    cwnd: s[StatIndex.cwnd]!,
    congestionEvents: s[StatIndex.congestionEvents]!,
    lostPackets: s[StatIndex.lostPackets]!,
    lostBytes: s[StatIndex.lostBytes]!,
    sentPackets: s[StatIndex.sentPackets]!,
    datagramsOut: s[StatIndex.datagramsOut]!,
    bytesOut: s[StatIndex.bytesOut]!,
    datagramsIn: s[StatIndex.datagramsIn]!,
    bytesIn: s[StatIndex.bytesIn]!,
    mtu: s[StatIndex.mtu]!,
  };
}
