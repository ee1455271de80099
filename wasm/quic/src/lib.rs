//! tstier's QUIC core: quinn-proto behind plain `extern "C"` exports for wasm32, driven
//! sans-IO from JS (daemon/carrier/quic/).
//!
//! One wasm instance holds one endpoint. Buffers cross the boundary through one I/O region
//! (`io_ptr`/`io_capacity`) that JS fills before `input`/`stream_write` and reads after
//! `stream_read`; an outgoing datagram is read from `tx_ptr` right after `poll_transmit`.
//! Times are milliseconds as f64 (i64 would cost a BigInt in JS); stream ids and codes are f64
//! too, exact up to 2^53. Negative return values are `OpError` codes. A panic aborts, which traps
//! in wasm: the JS binding then treats the whole instance as dead.

mod abi;
mod core;
mod crypto;
mod plaintext;
mod rng;

use std::cell::UnsafeCell;

use crate::abi::{Congestion, CryptoScheme, OpError, STATS_LEN};
use crate::core::{instant, Core, Settings};

struct Global<T>(UnsafeCell<T>);
// SAFETY: wasm32-unknown-unknown without the atomics feature has exactly one thread.
unsafe impl<T> Sync for Global<T> {}

static CORE: Global<Option<Core>> = Global(UnsafeCell::new(None));
/// Input datagrams, data to write, data read: JS copies through this region.
static IO: Global<Vec<u8>> = Global(UnsafeCell::new(Vec::new()));
static STATS: Global<[f64; STATS_LEN]> = Global(UnsafeCell::new([0.0; STATS_LEN]));
static EVENT: Global<Option<core::Event>> = Global(UnsafeCell::new(None));

const IO_CAPACITY: usize = 64 * 1024;
const NO_ENDPOINT: i32 = OpError::NoEndpoint as i32;

fn with_core<R>(absent: R, f: impl FnOnce(&mut Core) -> R) -> R {
    // SAFETY: single thread, and no export re-enters another, so this is the only borrow.
    match unsafe { &mut *CORE.0.get() } {
        Some(core) => f(core),
        None => absent,
    }
}

fn io() -> &'static mut Vec<u8> {
    // SAFETY: as for `with_core`; the region is only touched inside one export at a time.
    let io = unsafe { &mut *IO.0.get() };
    if io.len() != IO_CAPACITY {
        io.resize(IO_CAPACITY, 0);
    }
    io
}

fn status(result: Result<(), OpError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => e as i32,
    }
}

fn stream_id(stream: f64) -> Option<u64> {
    (stream >= 0.0 && stream <= 9_007_199_254_740_992.0 && stream.fract() == 0.0).then_some(stream as u64)
}

#[no_mangle]
pub extern "C" fn io_ptr() -> *mut u8 {
    io().as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn io_capacity() -> u32 {
    IO_CAPACITY as u32
}

/// Creates (or replaces) the endpoint. `congestion`: 0 BBR, 1 Cubic, 2 NewReno; `crypto`: a
/// `CryptoScheme`. Windows are bytes; timeouts ms (0 = off). The seed feeds every random choice quinn makes. Connection ids
/// count up from `first_conn` (> 0). The stateless-reset key (16 bytes, `reset_key_len` must
/// say so) is read from the start of the I/O region.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn endpoint_create(
    max_udp_payload: u32,
    congestion: u32,
    crypto: u32,
    accept_incoming: u32,
    idle_timeout_ms: u32,
    keep_alive_ms: u32,
    max_bidi_streams: u32,
    stream_window: u32,
    connection_window: u32,
    send_window: u32,
    seed_lo: u32,
    seed_hi: u32,
    first_conn: u32,
    reset_key_len: u32,
    now_ms: f64,
) -> i32 {
    let congestion = match congestion {
        0 => Congestion::Bbr,
        1 => Congestion::Cubic,
        2 => Congestion::NewReno,
        _ => return OpError::BadArgument as i32,
    };
    let crypto = match crypto {
        0 => CryptoScheme::Tstier,
        1 => CryptoScheme::Plaintext,
        _ => return OpError::BadArgument as i32,
    };
    if !(1200..=65527).contains(&max_udp_payload) || stream_window == 0 || connection_window == 0 || reset_key_len != 16 {
        return OpError::BadArgument as i32;
    }
    let io = io();
    let word = |at: usize| u64::from_le_bytes(io[at..at + 8].try_into().expect("8 bytes"));
    let reset_key = [word(0), word(8)];
    let settings = Settings {
        max_udp_payload: max_udp_payload as u16,
        congestion,
        crypto,
        accept_incoming: accept_incoming != 0,
        idle_timeout_ms,
        keep_alive_ms,
        max_bidi_streams,
        stream_window,
        connection_window,
        send_window,
        seed: (u64::from(seed_hi) << 32) | u64::from(seed_lo),
        first_conn,
        reset_key,
    };
    match Core::new(&settings, instant(now_ms)) {
        Ok(core) => {
            // SAFETY: single thread; no borrow of CORE is live during an export call.
            unsafe { *CORE.0.get() = Some(core) };
            0
        }
        Err(e) => e as i32,
    }
}

/// Opens a connection to `peer` (nonzero); returns its connection id (> 0) or an error.
#[no_mangle]
pub extern "C" fn connect(peer: u32, now_ms: f64) -> f64 {
    with_core(f64::from(NO_ENDPOINT), |c| match c.connect(peer, instant(now_ms)) {
        Ok(id) => f64::from(id),
        Err(e) => f64::from(e as i32),
    })
}

/// A datagram from `peer`, `len` bytes at the start of the I/O region. `from_initiator` (0/1):
/// it travelled on a connection the peer initiated (EasyTier's PM type QuicSrc).
#[no_mangle]
pub extern "C" fn input(peer: u32, from_initiator: u32, len: u32, now_ms: f64) -> i32 {
    let io = io();
    let len = (len as usize).min(io.len());
    with_core(NO_ENDPOINT, |c| {
        c.input(peer, from_initiator != 0, &io[..len], instant(now_ms));
        0
    })
}

/// Length of the next datagram to send (0: none); read it from `tx_ptr`, send it to `tx_peer`.
#[no_mangle]
pub extern "C" fn poll_transmit() -> i32 {
    with_core(NO_ENDPOINT, |c| c.poll_transmit() as i32)
}

#[no_mangle]
pub extern "C" fn tx_ptr() -> *const u8 {
    with_core(std::ptr::null(), |c| c.tx.as_ptr())
}

#[no_mangle]
pub extern "C" fn tx_peer() -> u32 {
    with_core(0, |c| c.tx_peer)
}

/// 1 if that datagram belongs to a connection we initiated (send as QuicSrc), 0 otherwise.
#[no_mangle]
pub extern "C" fn tx_from_initiator() -> u32 {
    with_core(0, |c| u32::from(c.tx_from_initiator))
}

/// Time (ms on the caller's clock) of the next wanted `handle_timeout`; -1: none.
#[no_mangle]
pub extern "C" fn poll_timeout() -> f64 {
    with_core(-1.0, |c| match c.poll_timeout() {
        // Rounded up to whole µs (timers such as pacing fall between µs): a caller who passes
        // this back as `now` must find the timer expired, or it would spin.
        Some(at) => at.since_origin().as_nanos().div_ceil(1000) as f64 / 1000.0,
        None => -1.0,
    })
}

#[no_mangle]
pub extern "C" fn handle_timeout(now_ms: f64) -> i32 {
    with_core(NO_ENDPOINT, |c| {
        c.handle_timeout(instant(now_ms));
        0
    })
}

/// Kind of the next event (0: none); its fields are then read with `event_*`.
#[no_mangle]
pub extern "C" fn event_next() -> i32 {
    let event = with_core(None, |c| c.poll_event());
    // SAFETY: single thread.
    unsafe { *EVENT.0.get() = event };
    event.map_or(0, |e| e.kind as i32)
}

fn current_event() -> Option<core::Event> {
    // SAFETY: single thread.
    unsafe { *EVENT.0.get() }
}

#[no_mangle]
pub extern "C" fn event_conn() -> u32 {
    current_event().map_or(0, |e| e.conn)
}

#[no_mangle]
pub extern "C" fn event_peer() -> u32 {
    current_event().map_or(0, |e| e.peer)
}

#[no_mangle]
pub extern "C" fn event_stream() -> f64 {
    current_event().map_or(0.0, |e| e.stream as f64)
}

#[no_mangle]
pub extern "C" fn event_code() -> f64 {
    current_event().map_or(0.0, |e| e.code as f64)
}

/// Opens a bidirectional stream on a connection; returns its stream id (>= 0) or an error.
#[no_mangle]
pub extern "C" fn stream_open(conn: u32) -> f64 {
    with_core(f64::from(NO_ENDPOINT), |c| match c.open_stream(conn) {
        Ok(id) => id as f64,
        Err(e) => f64::from(e as i32),
    })
}

/// Writes `len` bytes from the I/O region; returns how many were accepted (> 0) or an error.
#[no_mangle]
pub extern "C" fn stream_write(conn: u32, stream: f64, len: u32) -> i32 {
    let Some(stream) = stream_id(stream) else { return OpError::BadArgument as i32 };
    let io = io();
    let len = (len as usize).min(io.len());
    with_core(NO_ENDPOINT, |c| match c.write(conn, stream, &io[..len]) {
        Ok(n) => n as i32,
        Err(e) => e as i32,
    })
}

/// Reads up to `max` bytes into the I/O region; returns how many (> 0) or an error
/// (`Blocked`, `Finished`, `Reset`, ...).
#[no_mangle]
pub extern "C" fn stream_read(conn: u32, stream: f64, max: u32) -> i32 {
    let Some(stream) = stream_id(stream) else { return OpError::BadArgument as i32 };
    let io = io();
    let max = (max as usize).min(io.len());
    with_core(NO_ENDPOINT, |c| match c.read(conn, stream, &mut io[..max]) {
        Ok(n) => n as i32,
        Err(e) => e as i32,
    })
}

#[no_mangle]
pub extern "C" fn stream_finish(conn: u32, stream: f64) -> i32 {
    let Some(stream) = stream_id(stream) else { return OpError::BadArgument as i32 };
    with_core(NO_ENDPOINT, |c| status(c.finish(conn, stream)))
}

#[no_mangle]
pub extern "C" fn stream_reset(conn: u32, stream: f64, code: f64) -> i32 {
    let (Some(stream), Some(code)) = (stream_id(stream), stream_id(code)) else { return OpError::BadArgument as i32 };
    with_core(NO_ENDPOINT, |c| status(c.reset(conn, stream, code)))
}

#[no_mangle]
pub extern "C" fn stream_stop(conn: u32, stream: f64, code: f64) -> i32 {
    let (Some(stream), Some(code)) = (stream_id(stream), stream_id(code)) else { return OpError::BadArgument as i32 };
    with_core(NO_ENDPOINT, |c| status(c.stop(conn, stream, code)))
}

/// The code of the last `Stopped`/`Reset` a stream call returned.
#[no_mangle]
pub extern "C" fn last_code() -> f64 {
    with_core(0.0, |c| c.last_code as f64)
}

/// Copies the text of the last connection loss into the I/O region; returns its length.
#[no_mangle]
pub extern "C" fn lost_detail() -> u32 {
    let io = io();
    with_core(0, |c| {
        let text = c.lost_detail.as_bytes();
        let n = text.len().min(io.len());
        io[..n].copy_from_slice(&text[..n]);
        n as u32
    })
}

#[no_mangle]
pub extern "C" fn conn_close(conn: u32, code: f64, now_ms: f64) -> i32 {
    let Some(code) = stream_id(code) else { return OpError::BadArgument as i32 };
    with_core(NO_ENDPOINT, |c| status(c.close(conn, code, instant(now_ms))))
}

/// Fills the stats region (`stats_ptr`, STATS_LEN f64s, order in `Core::stats`).
#[no_mangle]
pub extern "C" fn conn_stats(conn: u32) -> i32 {
    // SAFETY: single thread.
    let out = unsafe { &mut *STATS.0.get() };
    with_core(NO_ENDPOINT, |c| status(c.stats(conn, out)))
}

#[no_mangle]
pub extern "C" fn stats_ptr() -> *const f64 {
    STATS.0.get() as *const f64
}

#[no_mangle]
pub extern "C" fn conn_count() -> u32 {
    with_core(0, |c| c.connection_count() as u32)
}

/// Traps on purpose, so the binding's recovery path can be tested.
#[no_mangle]
pub extern "C" fn debug_panic() {
    panic!("debug_panic called");
}
