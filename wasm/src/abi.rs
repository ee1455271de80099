//! The wasm ABI of the stack: the numbers its exports return and take. wasm/gen-abi.mjs turns
//! these enums into TypeScript constants (daemon/wasm/abi/stack.ts), so the two sides cannot drift;
//! keep each a plain `pub enum` with one `Variant = value,` per line.

use smoltcp::socket::tcp::State;

/// What `event_next` reports (0: no event).
#[repr(i32)]
#[derive(Clone, Copy)]
pub enum Event {
    NewFlow = 1,
    Readable = 2,
    Writable = 3,
    Fin = 4,
    Closed = 5,
    Reset = 6,
}

/// What `input` did with a packet; JS counts these.
#[repr(i32)]
pub enum InputOutcome {
    Delivered = 0,
    NewFlow = 1,
    Malformed = 2,
    NotTcp = 3,
    Fragment = 4,
    NoFlow = 5,
    OverLimit = 6,
    HeldSynRefreshed = 7,
}

#[repr(i32)]
#[derive(Debug)]
pub enum OpError {
    UnknownFlow = -1,
    InvalidState = -2,
    Eof = -3,
    /// No stack: `stack_init` was not called.
    NoStack = -4,
}

/// `flow_state` values: smoltcp's TCP states, and `Pending` for a flow whose SYN is held.
#[repr(i32)]
#[derive(Clone, Copy)]
pub enum FlowState {
    Closed = 0,
    Listen = 1,
    SynSent = 2,
    SynReceived = 3,
    Established = 4,
    FinWait1 = 5,
    FinWait2 = 6,
    CloseWait = 7,
    Closing = 8,
    LastAck = 9,
    TimeWait = 10,
    Pending = 11,
}

/// The counters `stack_stat` reads, by index.
#[repr(u32)]
#[derive(Clone, Copy)]
pub enum Stat {
    PacketsIn = 0,
    Malformed = 1,
    NotTcp = 2,
    /// Fragments received.
    Fragments = 3,
    /// Segments of no flow (answered with RST).
    NoFlow = 4,
    /// SYNs over the flow limits.
    OverLimit = 5,
    /// Outbound packets dropped (queue full).
    TxDropped = 6,
    OpenFlows = 7,
    PendingFlows = 8,
}

impl From<State> for FlowState {
    fn from(state: State) -> FlowState {
        match state {
            State::Closed => FlowState::Closed,
            State::Listen => FlowState::Listen,
            State::SynSent => FlowState::SynSent,
            State::SynReceived => FlowState::SynReceived,
            State::Established => FlowState::Established,
            State::FinWait1 => FlowState::FinWait1,
            State::FinWait2 => FlowState::FinWait2,
            State::CloseWait => FlowState::CloseWait,
            State::Closing => FlowState::Closing,
            State::LastAck => FlowState::LastAck,
            State::TimeWait => FlowState::TimeWait,
        }
    }
}
