//! The wasm ABI of the QUIC core: the numbers its exports return and take. wasm/gen-abi.mjs turns
//! these into TypeScript constants (daemon/wasm/abi/quic.ts), so the two sides cannot drift; keep
//! each a plain `pub enum` with one `Variant = value,` per line.

/// The congestion controller (`endpoint_create`'s argument).
#[derive(Clone, Copy)]
pub enum Congestion {
    Bbr = 0,
    Cubic = 1,
    NewReno = 2,
}

/// The QUIC crypto (`endpoint_create`'s argument): tstier's own null crypto between tstier
/// nodes, or EasyTier 2.6's quinn-plaintext scheme toward EasyTier nodes (plaintext.rs).
#[derive(Clone, Copy)]
pub enum CryptoScheme {
    Tstier = 0,
    Plaintext = 1,
}

/// What JS learns from `event_next` (codes are part of the wasm ABI; 0: no event).
#[derive(Clone, Copy)]
pub enum EventKind {
    Connected = 1,
    ConnectionLost = 2,
    StreamOpened = 3,
    StreamReadable = 4,
    StreamWritable = 5,
    StreamFinished = 6,
    StreamStopped = 7,
    StreamsAvailable = 8,
    /// The peer reset the stream (RESET_STREAM, code in `code`); its unread data is gone.
    StreamReset = 9,
}

/// Why a connection ended (`ConnectionLost`'s reason; part of the wasm ABI).
#[derive(Clone, Copy)]
pub enum LostReason {
    TimedOut = 1,
    Reset = 2,
    ApplicationClosed = 3,
    ConnectionClosed = 4,
    LocallyClosed = 5,
    TransportError = 6,
    VersionMismatch = 7,
    CidsExhausted = 8,
}

/// Failures of a JS call (negative return values; part of the wasm ABI).
#[derive(Clone, Copy, Debug)]
pub enum OpError {
    UnknownConnection = -1,
    /// No stream can be opened now: handshake not done or the peer's stream limit reached.
    StreamsExhausted = -3,
    /// The peer stopped the stream (STOP_SENDING); the code is in `last_code`.
    Stopped = -4,
    /// The peer reset the stream (RESET_STREAM); the code is in `last_code`.
    Reset = -5,
    /// The stream already ended in this direction (finished, reset, or fully read).
    Closed = -6,
    /// Nothing to read yet / the send window is full; wait for a readable/writable event.
    Blocked = -7,
    /// The peer finished its side: every byte has been read.
    Finished = -8,
    BadArgument = -9,
    ConnectFailed = -10,
    /// No endpoint: `endpoint_create` was not called (or failed).
    NoEndpoint = -100,
}

/// `Connected`'s code for a connection we opened (0: the peer opened it).
pub const CONNECTED_OUTGOING: u64 = 1;

/// The slots of the stats region `conn_stats` fills (part of the wasm ABI).
#[derive(Clone, Copy)]
pub enum Stat {
    RttMicros = 0,
    MinRttMicros = 1,
    Cwnd = 2,
    CongestionEvents = 3,
    LostPackets = 4,
    LostBytes = 5,
    SentPackets = 6,
    DatagramsOut = 7,
    BytesOut = 8,
    DatagramsIn = 9,
    BytesIn = 10,
    Mtu = 11,
}

pub const STATS_LEN: usize = 12;
