//! tstier's userspace TCP stack: smoltcp behind plain `extern "C"` exports for wasm32.
//!
//! One wasm instance holds one stack (JS shards or restarts by instantiating the module again).
//! Buffers cross the boundary as (pointer, length) in linear memory, allocated with
//! `buf_alloc`/`buf_free`. Times are milliseconds as f64, because i64 would cost a BigInt in JS.
//! Negative return values are `OpError` codes. A panic aborts, which traps in wasm: the JS
//! binding treats that instance as dead.

mod abi;
mod device;
mod inbound;
mod reassembly;
mod stack;

use std::cell::UnsafeCell;

use smoltcp::wire::{Ipv4Address, Ipv6Address};

use abi::{OpError, Stat};
use stack::{Settings, Stack};

struct Global(UnsafeCell<Option<Stack>>);
// SAFETY: wasm32-unknown-unknown without the atomics feature has exactly one thread.
unsafe impl Sync for Global {}
static STACK: Global = Global(UnsafeCell::new(None));

const NO_STACK: i32 = OpError::NoStack as i32;

fn with_stack<R>(absent: R, f: impl FnOnce(&mut Stack) -> R) -> R {
    // SAFETY: single thread, and no export re-enters another, so this is the only borrow.
    match unsafe { &mut *STACK.0.get() } {
        Some(stack) => f(stack),
        None => absent,
    }
}

fn code(result: Result<(), OpError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => e as i32,
    }
}

/// SAFETY (all exports taking pointers): JS passes regions it obtained from `buf_alloc`.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(ptr, len)
    }
}

#[no_mangle]
pub extern "C" fn buf_alloc(len: usize) -> *mut u8 {
    let mut buf = Vec::<u8>::with_capacity(len.max(1));
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}

/// # Safety
/// `ptr`/`len` must come from one `buf_alloc(len)` call and not be freed twice.
#[no_mangle]
pub unsafe extern "C" fn buf_free(ptr: *mut u8, len: usize) {
    drop(Vec::from_raw_parts(ptr, 0, len.max(1)));
}

/// Creates (or replaces) the stack. `ipv4` is the address as a big-endian u32, `ipv6_ptr`
/// points at 16 bytes. `timeout_ms`: abort a flow whose peer has sent nothing for that long
/// (0: never); `keep_alive_ms`: probe idle flows that often (0: never).
///
/// # Safety
/// `ipv6_ptr` must point at 16 readable bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn stack_init(
    ipv4: u32,
    ipv6_ptr: *const u8,
    mtu: u32,
    rx_buffer: u32,
    tx_buffer: u32,
    max_flows: u32,
    max_pending: u32,
    timeout_ms: u32,
    keep_alive_ms: u32,
    seed_lo: u32,
    seed_hi: u32,
    first_id: u32,
    now_ms: f64,
) -> i32 {
    let mut v6 = [0u8; 16];
    v6.copy_from_slice(bytes(ipv6_ptr, 16));
    let settings = Settings {
        ipv4: Ipv4Address::from(ipv4),
        ipv6: Ipv6Address::from(v6),
        mtu: mtu.clamp(576, 65535) as usize,
        rx_buffer: rx_buffer.max(1024) as usize,
        tx_buffer: tx_buffer.max(1024) as usize,
        max_flows: max_flows.max(1) as usize,
        max_pending: max_pending.max(1) as usize,
        timeout_ms,
        keep_alive_ms,
        seed: (seed_hi as u64) << 32 | seed_lo as u64,
        first_id,
    };
    *STACK.0.get() = Some(Stack::new(settings, now_ms as i64));
    0
}

/// Processes one inbound IP packet; returns an `InputOutcome` code.
///
/// # Safety
/// `ptr`/`len` must be a readable region.
#[no_mangle]
pub unsafe extern "C" fn stack_input(ptr: *const u8, len: usize, now_ms: f64) -> i32 {
    let packet = bytes(ptr, len);
    with_stack(NO_STACK, |s| s.input(packet, now_ms as i64) as i32)
}

/// Runs due timers and flushes flows touched since the last poll; returns how many it serviced.
#[no_mangle]
pub extern "C" fn stack_poll(now_ms: f64) -> i32 {
    with_stack(NO_STACK, |s| s.poll(now_ms as i64) as i32)
}

/// Absolute time (ms) at which `stack_poll` must run next; -1 when nothing is scheduled.
#[no_mangle]
pub extern "C" fn stack_poll_at() -> f64 {
    with_stack(-1.0, |s| s.poll_at().map_or(-1.0, |at| at as f64))
}

/// Length of the next outbound packet (0: none); `transmit_ptr` then points at it until the
/// next call of this function.
#[no_mangle]
pub extern "C" fn transmit_next() -> u32 {
    with_stack(0, |s| s.next_transmit().len() as u32)
}

#[no_mangle]
pub extern "C" fn transmit_ptr() -> *const u8 {
    with_stack(std::ptr::null(), |s| s.current_transmit().as_ptr())
}

/// The flow the last `stack_input` went to: for `NewFlow`, the id of the flow it opened (so JS
/// knows it without matching addresses); 0 when it went to none.
#[no_mangle]
pub extern "C" fn input_flow() -> u32 {
    with_stack(0, |s| s.input_flow)
}

static mut EVENT_FLOW: u32 = 0;

/// Kind of the next event (0: none); `event_flow` then tells which flow.
#[no_mangle]
pub extern "C" fn event_next() -> i32 {
    with_stack(0, |s| match s.next_event() {
        Some((kind, id)) => {
            // SAFETY: single thread.
            unsafe { EVENT_FLOW = id };
            kind as i32
        }
        None => 0,
    })
}

#[no_mangle]
pub extern "C" fn event_flow() -> u32 {
    // SAFETY: single thread.
    unsafe { EVENT_FLOW }
}

/// Writes 38 bytes: family (4|6), 0, src port (BE), dst port (BE), src address (16), dst
/// address (16; IPv4 in the first 4).
///
/// # Safety
/// `out` must point at 38 writable bytes.
#[no_mangle]
pub unsafe extern "C" fn flow_info(id: u32, out: *mut u8) -> i32 {
    with_stack(NO_STACK, |s| match s.flow_key(id) {
        Some(key) => {
            let out = std::slice::from_raw_parts_mut(out, 38);
            out.fill(0);
            out[0] = key[0];
            out[2..4].copy_from_slice(&key[33..35]);
            out[4..6].copy_from_slice(&key[35..37]);
            out[6..22].copy_from_slice(&key[1..17]);
            out[22..38].copy_from_slice(&key[17..33]);
            0
        }
        None => OpError::UnknownFlow as i32,
    })
}

/// Answers the held SYN with a SYN-ACK (the remote dial succeeded).
#[no_mangle]
pub extern "C" fn flow_accept(id: u32) -> i32 {
    with_stack(NO_STACK, |s| code(s.accept(id)))
}

/// Answers the held SYN with an RST (the remote dial failed) and forgets the flow.
#[no_mangle]
pub extern "C" fn flow_reject(id: u32) -> i32 {
    with_stack(NO_STACK, |s| code(s.reject(id)))
}

/// Forgets the held SYN without answering it (the destination is unreachable: the client's own
/// retries then time out, as they would without the proxy; a retried SYN is a new flow).
#[no_mangle]
pub extern "C" fn flow_forget(id: u32) -> i32 {
    with_stack(NO_STACK, |s| code(s.forget_pending(id)))
}

/// Queues bytes for sending; returns how many were accepted (the rest waits for `Writable`).
///
/// # Safety
/// `ptr`/`len` must be a readable region.
#[no_mangle]
pub unsafe extern "C" fn flow_send(id: u32, ptr: *const u8, len: usize) -> i32 {
    let data = bytes(ptr, len);
    with_stack(NO_STACK, |s| s.send(id, data).map_or_else(|e| e as i32, |n| n as i32))
}

/// Reads received bytes; returns the count (0: none yet) or `Eof` once the peer's FIN is read.
///
/// # Safety
/// `ptr`/`cap` must be a writable region.
#[no_mangle]
pub unsafe extern "C" fn flow_recv(id: u32, ptr: *mut u8, cap: usize) -> i32 {
    let buf: &mut [u8] = if cap == 0 { &mut [] } else { std::slice::from_raw_parts_mut(ptr, cap) };
    with_stack(NO_STACK, |s| s.recv(id, buf).map_or_else(|e| e as i32, |n| n as i32))
}

/// Sends FIN once queued data is out (half-close); receiving continues.
#[no_mangle]
pub extern "C" fn flow_shutdown(id: u32) -> i32 {
    with_stack(NO_STACK, |s| code(s.shutdown_write(id)))
}

/// Sends RST and forgets the flow; no further events for it.
#[no_mangle]
pub extern "C" fn flow_abort(id: u32) -> i32 {
    with_stack(NO_STACK, |s| code(s.abort(id)))
}

/// smoltcp's TCP state as 0 (Closed) ..= 10 (TimeWait), 11 for a held SYN, or an error.
#[no_mangle]
pub extern "C" fn flow_state(id: u32) -> i32 {
    with_stack(NO_STACK, |s| s.state(id).unwrap_or_else(|e| e as i32))
}

const STATS: [Stat; 9] = [
    Stat::PacketsIn,
    Stat::Malformed,
    Stat::NotTcp,
    Stat::Fragments,
    Stat::NoFlow,
    Stat::OverLimit,
    Stat::TxDropped,
    Stat::OpenFlows,
    Stat::PendingFlows,
];

/// One counter (`Stat`), or -1 for an unknown index.
#[no_mangle]
pub extern "C" fn stack_stat(index: u32) -> f64 {
    let Some(&stat) = STATS.iter().find(|s| **s as u32 == index) else {
        return -1.0;
    };
    with_stack(-1.0, |s| {
        let (open, pending) = s.counts();
        (match stat {
            Stat::PacketsIn => s.stats.packets_in,
            Stat::Malformed => s.stats.malformed,
            Stat::NotTcp => s.stats.not_tcp,
            Stat::Fragments => s.stats.fragments,
            Stat::NoFlow => s.stats.no_flow,
            Stat::OverLimit => s.stats.over_limit,
            Stat::TxDropped => s.tx_dropped(),
            Stat::OpenFlows => open as u64,
            Stat::PendingFlows => pending as u64,
        }) as f64
    })
}

/// Panics on purpose, so tests can prove a trap is survived.
#[no_mangle]
pub extern "C" fn debug_panic() {
    panic!("debug_panic called");
}
