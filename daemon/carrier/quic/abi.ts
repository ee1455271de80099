/**
 * The QUIC core's numeric ABI, named: what `event_next`, `event_code`, `conn_stats` and the
 * settings arguments of wasm/quic mean (its `EventKind`, `LostReason`, `Congestion` and stats
 * layout in wasm/quic/src/core.rs). One module, so that constants generated from the Rust enums can
 * replace it whole; nothing else in TypeScript spells these numbers.
 */
export { OpError } from './wasm.js';

/** What `event_next()` returned (0: no more events). */
export const EventKind = {
  none: 0,
  connected: 1,
  connectionLost: 2,
  streamOpened: 3,
  streamReadable: 4,
  streamWritable: 5,
  streamFinished: 6,
  streamStopped: 7,
  streamsAvailable: 8,
  streamReset: 9,
} as const;

/** `event_code()` of a `connected` event: the connection is one we opened. */
export const CONNECTED_OUTGOING = 1;

/** `event_code()` of a `connectionLost` event: why it ended. */
export const LostReasonCode = {
  timedOut: 1,
  reset: 2,
  applicationClosed: 3,
  connectionClosed: 4,
  locallyClosed: 5,
  transportError: 6,
  versionMismatch: 7,
  cidsExhausted: 8,
} as const;

/** `endpoint_create`'s congestion argument. */
export const CongestionCode = { bbr: 0, cubic: 1, newreno: 2 } as const;

/** Slots of the f64 array `conn_stats` fills at `stats_ptr()`. */
export const StatIndex = {
  rttMicros: 0,
  minRttMicros: 1,
  cwnd: 2,
  congestionEvents: 3,
  lostPackets: 4,
  lostBytes: 5,
  sentPackets: 6,
  datagramsOut: 7,
  bytesOut: 8,
  datagramsIn: 9,
  bytesIn: 10,
  mtu: 11,
} as const;

export const STATS_LEN = 12;
