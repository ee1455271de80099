//! The flow table around one smoltcp interface.
//!
//! Every flow owns a one-socket `SocketSet`, and the wrapper routes each packet to its flow by
//! 4-tuple. smoltcp's own `poll` walks every socket in a set, so one shared set would make each
//! packet and each poll cost O(open flows); with one set per flow, an idle flow costs nothing
//! until its own timer (kept in `timers`) is due.
//!
//! A flow starts `Pending`: its SYN is held, unanswered, until JS has dialled the real
//! destination and calls `accept` (SYN-ACK) or `reject` (RST).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, RecvError, State};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpListenEndpoint, Ipv4Address, Ipv6Address};

use crate::abi::{Event, FlowState, InputOutcome, OpError};
use crate::device::QueueDevice;
use crate::inbound::{self, Discard, FlowKey, Segment};
use crate::reassembly::Reassembler;

pub struct Settings {
    pub ipv4: Ipv4Address,
    pub ipv6: Ipv6Address,
    pub mtu: usize,
    pub rx_buffer: usize,
    pub tx_buffer: usize,
    pub max_flows: usize,
    pub max_pending: usize,
    pub timeout_ms: u32,
    pub keep_alive_ms: u32,
    pub seed: u64,
    pub first_id: u32,
}

/// Segments one flow may emit per service before yielding to the next poll.
const EGRESS_BURST: usize = 64;
const OUT_QUEUE_LIMIT: usize = 4096;

enum Phase {
    Pending { syn: Vec<u8> },
    Open { set: SocketSet<'static>, handle: SocketHandle },
}

struct Flow {
    key: FlowKey,
    phase: Phase,
    /// The entry this flow has in `timers`, if any.
    deadline: Option<i64>,
    dirty: bool,
    last_state: State,
    readable_armed: bool,
    writable_armed: bool,
    peer_fin: bool,
    fin_reported: bool,
    closed_reported: bool,
    /// Set by `abort`: the flow vanishes silently once its RST is out.
    aborted: bool,
}

pub struct Stack {
    settings: Settings,
    iface: Interface,
    device: QueueDevice,
    reassembler: Reassembler,
    /// Packets that match no flow go through this empty set, so smoltcp answers them with RST.
    no_flow: SocketSet<'static>,
    by_key: BTreeMap<FlowKey, u32>,
    flows: BTreeMap<u32, Flow>,
    timers: BTreeSet<(i64, u32)>,
    dirty: Vec<u32>,
    due: Vec<u32>,
    events: VecDeque<(Event, u32)>,
    next_id: u32,
    /// The flow the last `input` went to (the new one, for `NewFlow`); 0 for none.
    pub input_flow: u32,
    pending: usize,
    now: Instant,
    pub stats: Stats,
}

#[derive(Default)]
pub struct Stats {
    pub packets_in: u64,
    pub malformed: u64,
    pub not_tcp: u64,
    pub fragments: u64,
    pub no_flow: u64,
    pub over_limit: u64,
}

impl Stack {
    pub fn new(settings: Settings, now_ms: i64) -> Stack {
        let now = Instant::from_millis(now_ms);
        let mut device = QueueDevice::new(settings.mtu, OUT_QUEUE_LIMIT);
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = settings.seed;
        let mut iface = Interface::new(config, &mut device, now);
        iface.update_ip_addrs(|addrs| {
            // Two slots, two addresses: these pushes cannot fail.
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(settings.ipv4), 32));
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv6(settings.ipv6), 128));
        });
        // Any-IP: a destination is accepted when its route points at one of our addresses.
        let _ = iface.routes_mut().add_default_ipv4_route(settings.ipv4);
        let _ = iface.routes_mut().add_default_ipv6_route(settings.ipv6);
        iface.set_any_ip(true);
        Stack {
            next_id: settings.first_id.max(1),
            input_flow: 0,
            settings,
            iface,
            device,
            reassembler: Reassembler::default(),
            no_flow: SocketSet::new(Vec::new()),
            by_key: BTreeMap::new(),
            flows: BTreeMap::new(),
            timers: BTreeSet::new(),
            dirty: Vec::new(),
            due: Vec::new(),
            events: VecDeque::new(),
            pending: 0,
            now,
            stats: Stats::default(),
        }
    }

    pub fn input(&mut self, packet: &[u8], now_ms: i64) -> InputOutcome {
        self.now = Instant::from_millis(now_ms);
        self.stats.packets_in += 1;
        self.input_flow = 0;
        self.input_datagram(packet, true)
    }

    /// `packet` is a whole datagram or, if `reassemble`, possibly a fragment of one.
    fn input_datagram(&mut self, packet: &[u8], reassemble: bool) -> InputOutcome {
        let segment = match inbound::classify(packet, self.device.rx_buffer()) {
            Ok(segment) => segment,
            Err(Discard::Fragment) if reassemble => {
                self.stats.fragments += 1;
                return match self.reassembler.push(packet, self.now.total_millis()) {
                    Ok(Some(datagram)) => self.input_datagram(&datagram, false),
                    Ok(None) => InputOutcome::Fragment,
                    Err(()) => {
                        self.stats.malformed += 1;
                        InputOutcome::Malformed
                    }
                };
            }
            Err(Discard::Malformed) => {
                self.stats.malformed += 1;
                return InputOutcome::Malformed;
            }
            Err(Discard::NotTcp) => {
                self.stats.not_tcp += 1;
                return InputOutcome::NotTcp;
            }
            // A fragment inside a reassembled datagram: nested fragmentation is not a thing.
            Err(Discard::Fragment) => {
                self.stats.malformed += 1;
                return InputOutcome::Malformed;
            }
        };
        let existing = self.by_key.get(&segment.key).copied();
        let held_or_new = match existing {
            Some(id) => matches!(self.flows.get(&id), Some(Flow { phase: Phase::Pending { .. }, .. })),
            None => segment.syn,
        };
        // Open flows and strays are checked by smoltcp; what touches a held SYN is checked here,
        // so a corrupt segment never creates, refreshes or kills a pending flow.
        if held_or_new && !segment.checksum_ok(self.device.rx_buffer_view()) {
            self.stats.malformed += 1;
            return InputOutcome::Malformed;
        }
        match existing {
            Some(id) => self.input_to_flow(id, &segment),
            None if segment.syn => self.open_pending(&segment),
            None => {
                self.stats.no_flow += 1;
                self.answer_without_flow();
                InputOutcome::NoFlow
            }
        }
    }

    fn input_to_flow(&mut self, id: u32, segment: &Segment) -> InputOutcome {
        let Some(flow) = self.flows.get_mut(&id) else {
            return InputOutcome::NoFlow;
        };
        self.input_flow = id;
        match &mut flow.phase {
            Phase::Pending { syn } => {
                if segment.syn {
                    // A retransmitted SYN replaces the held one; JS already knows the flow.
                    syn.clear();
                    syn.extend_from_slice(self.device.rx_buffer_view());
                    InputOutcome::HeldSynRefreshed
                } else if segment.rst {
                    // The client gave up before we answered.
                    self.forget(id);
                    self.events.push_back((Event::Reset, id));
                    InputOutcome::Delivered
                } else {
                    InputOutcome::NoFlow
                }
            }
            Phase::Open { .. } => {
                self.device.arm_rx();
                self.service(id, true);
                InputOutcome::Delivered
            }
        }
    }

    fn open_pending(&mut self, segment: &Segment) -> InputOutcome {
        if !acceptable_endpoint(&segment.src, segment.src_port)
            || !acceptable_endpoint(&segment.dst, segment.dst_port)
        {
            self.stats.malformed += 1;
            return InputOutcome::Malformed;
        }
        if self.flows.len() >= self.settings.max_flows || self.pending >= self.settings.max_pending {
            self.stats.over_limit += 1;
            self.answer_without_flow();
            return InputOutcome::OverLimit;
        }
        let id = self.allocate_id();
        let syn = self.device.rx_buffer_view().to_vec();
        self.flows.insert(
            id,
            Flow {
                key: segment.key,
                phase: Phase::Pending { syn },
                deadline: None,
                dirty: false,
                last_state: State::Listen,
                readable_armed: true,
                writable_armed: true,
                peer_fin: false,
                fin_reported: false,
                closed_reported: false,
                aborted: false,
            },
        );
        self.by_key.insert(segment.key, id);
        self.input_flow = id;
        self.pending += 1;
        self.events.push_back((Event::NewFlow, id));
        InputOutcome::NewFlow
    }

    fn allocate_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            if !self.flows.contains_key(&id) {
                return id;
            }
        }
    }

    /// Lets smoltcp answer the packet in the rx slot with no socket to match: an RST.
    fn answer_without_flow(&mut self) {
        self.device.arm_rx();
        self.iface.poll(self.now, &mut self.device, &mut self.no_flow);
    }

    pub fn accept(&mut self, id: u32) -> Result<(), OpError> {
        let flow = self.flows.get_mut(&id).ok_or(OpError::UnknownFlow)?;
        let Phase::Pending { syn } = &mut flow.phase else {
            return Err(OpError::InvalidState);
        };
        let syn = std::mem::take(syn);
        let (addr, port) = listen_endpoint_of(&flow.key);
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; self.settings.rx_buffer]),
            tcp::SocketBuffer::new(vec![0u8; self.settings.tx_buffer]),
        );
        // smoltcp counts the timeout from the peer's last segment even on an idle flow, so it
        // only detects dead peers safely together with keep-alive probes that a live peer answers.
        if self.settings.timeout_ms > 0 {
            socket.set_timeout(Some(Duration::from_millis(self.settings.timeout_ms as u64)));
        }
        if self.settings.keep_alive_ms > 0 {
            socket.set_keep_alive(Some(Duration::from_millis(self.settings.keep_alive_ms as u64)));
        }
        // Ports and addresses were checked when the flow was created.
        let _ = socket.listen(IpListenEndpoint { addr: Some(addr), port });
        let mut set = SocketSet::new(Vec::with_capacity(1));
        let handle = set.add(socket);
        flow.phase = Phase::Open { set, handle };
        self.pending -= 1;
        let rx = self.device.rx_buffer();
        rx.extend_from_slice(&syn);
        self.device.arm_rx();
        self.service(id, true);
        Ok(())
    }

    pub fn reject(&mut self, id: u32) -> Result<(), OpError> {
        let flow = self.flows.get_mut(&id).ok_or(OpError::UnknownFlow)?;
        let Phase::Pending { syn } = &mut flow.phase else {
            return Err(OpError::InvalidState);
        };
        let syn = std::mem::take(syn);
        self.forget(id);
        self.device.rx_buffer().extend_from_slice(&syn);
        self.answer_without_flow();
        Ok(())
    }

    pub fn forget_pending(&mut self, id: u32) -> Result<(), OpError> {
        let flow = self.flows.get(&id).ok_or(OpError::UnknownFlow)?;
        if !matches!(flow.phase, Phase::Pending { .. }) {
            return Err(OpError::InvalidState);
        }
        self.forget(id);
        Ok(())
    }

    pub fn send(&mut self, id: u32, data: &[u8]) -> Result<usize, OpError> {
        let flow = open_flow(&mut self.flows, id)?;
        let socket = socket_of(&mut flow.phase)?;
        if socket.state() == State::SynReceived {
            // Data from the remote can arrive before the client's handshake ACK; the caller
            // keeps it and retries on the Writable event that establishment brings.
            flow.writable_armed = true;
            return Ok(0);
        }
        let accepted = socket.send_slice(data).map_err(|_| OpError::InvalidState)?;
        if accepted < data.len() {
            flow.writable_armed = true;
        }
        mark_dirty(flow, id, &mut self.dirty);
        Ok(accepted)
    }

    pub fn recv(&mut self, id: u32, buf: &mut [u8]) -> Result<usize, OpError> {
        let flow = open_flow(&mut self.flows, id)?;
        let socket = socket_of(&mut flow.phase)?;
        let result = socket.recv_slice(buf);
        let drained = socket.recv_queue() == 0;
        match result {
            Ok(n) => {
                if drained {
                    flow.readable_armed = true;
                }
                if n > 0 {
                    // The window opened (smoltcp may owe a window update), and a drained
                    // buffer may complete FIN or close: the next poll services the flow.
                    mark_dirty(flow, id, &mut self.dirty);
                }
                Ok(n)
            }
            Err(RecvError::Finished) => Err(OpError::Eof),
            Err(RecvError::InvalidState) if flow.peer_fin => Err(OpError::Eof),
            Err(RecvError::InvalidState) => Err(OpError::InvalidState),
        }
    }

    pub fn shutdown_write(&mut self, id: u32) -> Result<(), OpError> {
        let flow = open_flow(&mut self.flows, id)?;
        socket_of(&mut flow.phase)?.close();
        mark_dirty(flow, id, &mut self.dirty);
        Ok(())
    }

    pub fn abort(&mut self, id: u32) -> Result<(), OpError> {
        let flow = open_flow(&mut self.flows, id)?;
        if matches!(flow.phase, Phase::Pending { .. }) {
            return self.reject(id);
        }
        socket_of(&mut flow.phase)?.abort();
        flow.aborted = true;
        self.service(id, false);
        Ok(())
    }

    pub fn state(&mut self, id: u32) -> Result<i32, OpError> {
        let flow = open_flow(&mut self.flows, id)?;
        Ok(match &mut flow.phase {
            Phase::Pending { .. } => FlowState::Pending,
            Phase::Open { set, handle } => FlowState::from(set.get::<tcp::Socket>(*handle).state()),
        } as i32)
    }

    /// (family, src, dst, src port, dst port) as stored in the key.
    pub fn flow_key(&self, id: u32) -> Option<&FlowKey> {
        self.flows.get(&id).map(|f| &f.key)
    }

    /// Runs the stack's timers and flushes flows touched by send/recv/shutdown.
    pub fn poll(&mut self, now_ms: i64) -> usize {
        self.now = Instant::from_millis(now_ms);
        let mut work = std::mem::take(&mut self.due);
        work.clear();
        work.append(&mut self.dirty);
        while let Some(&(deadline, id)) = self.timers.first() {
            if deadline > now_ms {
                break;
            }
            self.timers.pop_first();
            if let Some(flow) = self.flows.get_mut(&id) {
                flow.deadline = None;
            }
            work.push(id);
        }
        for &id in &work {
            if let Some(flow) = self.flows.get_mut(&id) {
                flow.dirty = false;
                self.service(id, false);
            }
        }
        let serviced = work.len();
        self.due = work;
        serviced
    }

    /// When `poll` must next run, in ms; None when nothing is scheduled.
    pub fn poll_at(&self) -> Option<i64> {
        if !self.dirty.is_empty() {
            return Some(self.now.total_millis());
        }
        self.timers.first().map(|&(deadline, _)| deadline)
    }

    /// Lets smoltcp process the armed rx packet (if `ingress`) and emit what the flow owes,
    /// then reports events, reschedules its timer and frees it once closed.
    fn service(&mut self, id: u32, ingress: bool) {
        let now = self.now;
        let Some(flow) = self.flows.get_mut(&id) else { return };
        let Phase::Open { set, handle } = &mut flow.phase else { return };
        if ingress {
            self.iface.poll(now, &mut self.device, set);
        }
        for _ in 0..EGRESS_BURST {
            if self.iface.poll_egress(now, &mut self.device, set) == PollResult::None {
                break;
            }
        }
        let next = self.iface.poll_at(now, set).map(|at| at.total_millis());
        let seen = Observed::of(set.get::<tcp::Socket>(*handle));
        let finished = report(flow, &seen, id, &mut self.events);
        if let Some(old) = flow.deadline.take() {
            self.timers.remove(&(old, id));
        }
        if finished {
            self.forget(id);
            return;
        }
        if let Some(at) = next {
            flow.deadline = Some(at);
            self.timers.insert((at, id));
        }
    }

    fn forget(&mut self, id: u32) {
        if let Some(flow) = self.flows.remove(&id) {
            self.by_key.remove(&flow.key);
            if let Some(at) = flow.deadline {
                self.timers.remove(&(at, id));
            }
            if matches!(flow.phase, Phase::Pending { .. }) {
                self.pending -= 1;
            }
        }
    }

    pub fn next_event(&mut self) -> Option<(Event, u32)> {
        self.events.pop_front()
    }

    pub fn next_transmit(&mut self) -> &[u8] {
        self.device.next_transmit()
    }

    pub fn current_transmit(&self) -> &[u8] {
        self.device.current_transmit()
    }

    pub fn tx_dropped(&self) -> u64 {
        self.device.tx_dropped
    }

    pub fn counts(&self) -> (usize, usize) {
        (self.flows.len() - self.pending, self.pending)
    }
}

/// What `report` needs from a socket, copied out so the flow can be updated meanwhile.
struct Observed {
    state: State,
    unread: usize,
    writable: bool,
}

impl Observed {
    fn of(socket: &tcp::Socket) -> Observed {
        Observed {
            state: socket.state(),
            unread: socket.recv_queue(),
            // Half the buffer free, so a writer woken up moves a useful amount at once.
            writable: socket.may_send() && socket.send_queue() <= socket.send_capacity() / 2,
        }
    }
}

/// Emits the events a socket's new state calls for. Returns true when the flow can be freed.
fn report(flow: &mut Flow, seen: &Observed, id: u32, events: &mut VecDeque<(Event, u32)>) -> bool {
    let state = seen.state;
    let previous = flow.last_state;
    flow.last_state = state;
    if flow.aborted {
        // abort() sets Closed at once; the RST goes out on the service that follows.
        return state == State::Closed;
    }
    let reset = match state {
        // SYN-RECEIVED falls back to LISTEN on a client RST; nothing else returns there.
        State::Listen => true,
        State::Closed => !matches!(previous, State::LastAck | State::TimeWait | State::Closing | State::Closed),
        _ => false,
    };
    if reset {
        events.push_back((Event::Reset, id));
        return true;
    }
    if matches!(state, State::CloseWait | State::LastAck | State::Closing | State::TimeWait | State::Closed) {
        flow.peer_fin = true;
    }
    let unread = seen.unread;
    if flow.readable_armed && unread > 0 {
        flow.readable_armed = false;
        events.push_back((Event::Readable, id));
    }
    if flow.writable_armed && seen.writable {
        flow.writable_armed = false;
        events.push_back((Event::Writable, id));
    }
    if flow.peer_fin && unread == 0 && !flow.fin_reported {
        flow.fin_reported = true;
        events.push_back((Event::Fin, id));
    }
    // TIME-WAIT is done from the application's view, but the socket stays to answer late
    // segments; Closed (after TIME-WAIT, LAST-ACK, or a timeout) frees it.
    if !flow.closed_reported && matches!(state, State::TimeWait | State::Closed) && unread == 0 {
        flow.closed_reported = true;
        events.push_back((Event::Closed, id));
    }
    state == State::Closed && unread == 0
}

/// A flow the application may still operate on (an aborted one is already gone for it).
fn open_flow(flows: &mut BTreeMap<u32, Flow>, id: u32) -> Result<&mut Flow, OpError> {
    match flows.get_mut(&id) {
        Some(flow) if !flow.aborted => Ok(flow),
        _ => Err(OpError::UnknownFlow),
    }
}

fn socket_of(phase: &mut Phase) -> Result<&mut tcp::Socket<'static>, OpError> {
    match phase {
        Phase::Open { set, handle } => Ok(set.get_mut::<tcp::Socket>(*handle)),
        Phase::Pending { .. } => Err(OpError::InvalidState),
    }
}

fn mark_dirty(flow: &mut Flow, id: u32, dirty: &mut Vec<u32>) {
    if !flow.dirty {
        flow.dirty = true;
        dirty.push(id);
    }
}

fn acceptable_endpoint(addr: &IpAddress, port: u16) -> bool {
    port != 0 && addr.is_unicast()
}

fn listen_endpoint_of(key: &FlowKey) -> (IpAddress, u16) {
    let port = u16::from_be_bytes([key[35], key[36]]);
    let addr = if key[0] == 4 {
        IpAddress::Ipv4(Ipv4Address::new(key[17], key[18], key[19], key[20]))
    } else {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&key[17..33]);
        IpAddress::Ipv6(Ipv6Address::from(octets))
    };
    (addr, port)
}
