//! The endpoint tstier drives: one quinn-proto `Endpoint` (client and server at once) and its
//! connections, addressed by peer id instead of socket address.
//!
//! A peer id travels as a fake IPv4 socket address, the trick EasyTier uses on its virtual UDP
//! socket: address = the peer id, port = the peer-packet type that datagrams to it must carry
//! (EasyTier's QuicSrc 16 for connections we initiated, QuicDst 17 for those we accepted), so
//! every outgoing datagram says which of the two it is. Connections get tstier's own ids (never
//! reused, unlike quinn's slab handles) so JS cannot confuse a dead connection with a new one.
//! Application-visible happenings are queued as `Event`s for JS to poll.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quinn_proto::congestion::{BbrConfig, CubicConfig, NewRenoConfig};
use quinn_proto::{
    ClientConfig, ConnectError, Connection, ConnectionError, ConnectionHandle, DatagramEvent, Dir,
    Endpoint, EndpointConfig, Event as QuinnEvent, HashedConnectionIdGenerator, IdleTimeout, ReadError, ServerConfig, StreamEvent,
    StreamId, TransportConfig, VarInt, WriteError,
};
use web_time::Instant;

use crate::abi::{Congestion, CryptoScheme, EventKind, LostReason, OpError, Stat, CONNECTED_OUTGOING, STATS_LEN};
use crate::crypto::{NoTokenKey, NullClientConfig, NullServerConfig, ResetKey};
use crate::plaintext::{PlainClientConfig, PlainServerConfig};
use crate::rng;

const MAX_RESPONSES: usize = 256;

/// Fake-address port of datagrams on connections we initiated (EasyTier's PM type QuicSrc).
pub const PORT_FROM_INITIATOR: u16 = 16;
/// Fake-address port of datagrams on connections we accepted (EasyTier's PM type QuicDst).
pub const PORT_FROM_ACCEPTOR: u16 = 17;

pub struct Settings {
    pub max_udp_payload: u16,
    pub congestion: Congestion,
    pub crypto: CryptoScheme,
    pub accept_incoming: bool,
    pub idle_timeout_ms: u32,
    pub keep_alive_ms: u32,
    pub max_bidi_streams: u32,
    pub stream_window: u32,
    pub connection_window: u32,
    pub send_window: u32,
    pub seed: u64,
    /// Id of the first connection; a rebuilt instance continues after the dead one's ids.
    pub first_conn: u32,
    /// Key of the stateless-reset tokens. Kept across restarts (JS derives it from stable
    /// secrets), a restarted node can reset its peers' connections to its previous instance at
    /// once instead of leaving them to the idle timeout.
    pub reset_key: [u64; 2],
}

#[derive(Clone, Copy)]
pub struct Event {
    pub kind: EventKind,
    pub conn: u32,
    pub peer: u32,
    /// Stream id; for `ConnectionLost`, the QUIC error code (transport or application).
    pub stream: u64,
    /// Stop/reset code, lost reason, or 1 for an outgoing connection in `Connected`.
    pub code: u64,
}

struct Conn {
    handle: ConnectionHandle,
    inner: Connection,
    peer: u32,
    outgoing: bool,
    lost: bool,
    /// Streams whose FIN was reached by a read that also returned data: quinn has already
    /// freed them, so the next read must report `Finished` from here.
    fin_unreported: HashSet<u64>,
}

pub struct Core {
    endpoint: Endpoint,
    client_config: ClientConfig,
    conns: HashMap<u32, Conn>,
    by_handle: HashMap<ConnectionHandle, u32>,
    next_conn: u32,
    events: VecDeque<Event>,
    /// Datagrams the endpoint itself answered with (version negotiation, stateless reset).
    responses: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Order in which connections get to transmit; rotated so one busy connection can't starve.
    send_order: Vec<u32>,
    send_cursor: usize,
    /// The datagram `poll_transmit` produced last; JS copies it out before the next call.
    pub tx: Vec<u8>,
    pub tx_peer: u32,
    /// Whether that datagram belongs to a connection we initiated.
    pub tx_from_initiator: bool,
    scratch: Vec<u8>,
    now: Instant,
    /// Code of the last stopped/reset stream a call ran into.
    pub last_code: u64,
    /// Text of the last connection loss (quinn's reason, e.g. the transport error's message).
    pub lost_detail: String,
}

pub fn instant(now_ms: f64) -> Instant {
    // Rounded: JS gets timeouts back as µs / 1000, and truncating could land 1 µs early.
    let micros = if now_ms.is_finite() && now_ms > 0.0 { (now_ms * 1000.0).round() as u64 } else { 0 };
    Instant::from_origin(Duration::from_micros(micros))
}

fn peer_addr(peer: u32, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(peer), port))
}

/// quinn reports a received RESET_STREAM only as "readable", and only a read reveals it. A read
/// of zero bytes does, without consuming data: it returns the reset (which quinn delivers on an
/// empty buffer) or, when every byte and the FIN were already read, ends the stream, which is
/// then remembered for the next real read.
fn probe_reset(conn: &mut Conn, id: StreamId) -> Option<u64> {
    let mut recv = conn.inner.recv_stream(id);
    let mut chunks = recv.read(true).ok()?;
    let outcome = chunks.next(0);
    let _ = chunks.finalize();
    match outcome {
        Err(ReadError::Reset(code)) => Some(code.into_inner()),
        Ok(None) => {
            conn.fin_unreported.insert(id.into());
            None
        }
        _ => None,
    }
}

/// Only bidirectional streams exist here. quinn panics when asked to read a unidirectional
/// stream we send on (or write one we receive on), so such ids never reach it.
fn sid(stream: u64) -> Result<StreamId, OpError> {
    let id = VarInt::from_u64(stream).map(StreamId::from).map_err(|_| OpError::BadArgument)?;
    if id.dir() != Dir::Bi {
        return Err(OpError::BadArgument);
    }
    Ok(id)
}

/// The QUIC error code of a closed connection (transport or application), 0 if none.
fn error_code(reason: &ConnectionError) -> u64 {
    match reason {
        ConnectionError::TransportError(e) => u64::from(e.code),
        ConnectionError::ConnectionClosed(c) => u64::from(c.error_code),
        ConnectionError::ApplicationClosed(c) => c.error_code.into_inner(),
        _ => 0,
    }
}

fn lost_reason(reason: &ConnectionError) -> LostReason {
    match reason {
        ConnectionError::TimedOut => LostReason::TimedOut,
        ConnectionError::Reset => LostReason::Reset,
        ConnectionError::ApplicationClosed(_) => LostReason::ApplicationClosed,
        ConnectionError::ConnectionClosed(_) => LostReason::ConnectionClosed,
        ConnectionError::LocallyClosed => LostReason::LocallyClosed,
        ConnectionError::TransportError(_) => LostReason::TransportError,
        ConnectionError::VersionMismatch => LostReason::VersionMismatch,
        ConnectionError::CidsExhausted => LostReason::CidsExhausted,
    }
}

fn transport_config(s: &Settings) -> TransportConfig {
    let mut t = TransportConfig::default();
    t.max_concurrent_bidi_streams(VarInt::from_u32(s.max_bidi_streams))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(s.stream_window))
        .receive_window(VarInt::from_u32(s.connection_window))
        .send_window(u64::from(s.send_window))
        .initial_mtu(s.max_udp_payload)
        .min_mtu(s.max_udp_payload)
        // The peer layer fixes the datagram size; there is no path MTU to discover.
        .mtu_discovery_config(None)
        // One datagram per transmit: each becomes its own peer packet.
        .enable_segmentation_offload(false)
        .datagram_receive_buffer_size(None)
        .max_idle_timeout(if s.idle_timeout_ms == 0 {
            None
        } else {
            Some(IdleTimeout::from(VarInt::from_u32(s.idle_timeout_ms)))
        })
        .keep_alive_interval(if s.keep_alive_ms == 0 {
            None
        } else {
            Some(Duration::from_millis(u64::from(s.keep_alive_ms)))
        });
    match s.congestion {
        Congestion::Bbr => t.congestion_controller_factory(Arc::new(BbrConfig::default())),
        Congestion::Cubic => t.congestion_controller_factory(Arc::new(CubicConfig::default())),
        Congestion::NewReno => t.congestion_controller_factory(Arc::new(NewRenoConfig::default())),
    };
    t
}

impl Core {
    pub fn new(s: &Settings, now: Instant) -> Result<Self, OpError> {
        rng::seed(s.seed);
        let transport = Arc::new(transport_config(s));
        let mut endpoint_config = EndpointConfig::new(Arc::new(ResetKey::new(s.reset_key)));
        // Our connection ids carry a signature the endpoint checks before answering an unknown
        // one with a stateless reset; keyed from the same stable key, ids issued by a previous
        // instance still pass, so that instance's peers get their reset.
        let cid_key = s.reset_key[0] ^ s.reset_key[1].rotate_left(29) ^ 0x7473_7469_6572_4349;
        endpoint_config.cid_generator(move || Box::new(HashedConnectionIdGenerator::from_key(cid_key)));
        endpoint_config.max_udp_payload_size(s.max_udp_payload).map_err(|_| OpError::BadArgument)?;
        let mut endpoint_seed = [0u8; 32];
        rng::fill(&mut endpoint_seed);
        endpoint_config.rng_seed(Some(endpoint_seed));
        let server_config = s.accept_incoming.then(|| {
            let crypto: Arc<dyn quinn_proto::crypto::ServerConfig> = match s.crypto {
                CryptoScheme::Tstier => Arc::new(NullServerConfig),
                CryptoScheme::Plaintext => Arc::new(PlainServerConfig),
            };
            let mut server = ServerConfig::new(crypto, Arc::new(NoTokenKey));
            // Peers are addressed by id, never by path, so a "migration" could only be a mix-up.
            server.transport_config(transport.clone()).migration(false);
            Arc::new(server)
        });
        let mut client_config = match s.crypto {
            CryptoScheme::Tstier => ClientConfig::new(Arc::new(NullClientConfig)),
            CryptoScheme::Plaintext => ClientConfig::new(Arc::new(PlainClientConfig)),
        };
        client_config.transport_config(transport);
        Ok(Self {
            endpoint: Endpoint::new(Arc::new(endpoint_config), server_config, false, None),
            client_config,
            conns: HashMap::new(),
            by_handle: HashMap::new(),
            next_conn: s.first_conn.max(1),
            events: VecDeque::new(),
            responses: VecDeque::new(),
            send_order: Vec::new(),
            send_cursor: 0,
            tx: Vec::with_capacity(usize::from(s.max_udp_payload)),
            tx_peer: 0,
            tx_from_initiator: false,
            scratch: Vec::new(),
            now,
            last_code: 0,
            lost_detail: String::new(),
        })
    }

    fn advance(&mut self, now: Instant) {
        // quinn assumes time never goes back; a caller's clock that does is clamped.
        if now > self.now {
            self.now = now;
        }
        web_time::set_now(self.now.since_origin());
    }

    fn add_conn(&mut self, handle: ConnectionHandle, inner: Connection, peer: u32, outgoing: bool) -> u32 {
        let id = self.next_conn;
        self.next_conn = self.next_conn.wrapping_add(1).max(1);
        self.conns.insert(id, Conn { handle, inner, peer, outgoing, lost: false, fin_unreported: HashSet::new() });
        self.by_handle.insert(handle, id);
        self.send_order.push(id);
        id
    }

    pub fn connect(&mut self, peer: u32, now: Instant) -> Result<u32, OpError> {
        self.advance(now);
        if peer == 0 {
            return Err(OpError::BadArgument); // 0.0.0.0 is "unspecified" to quinn
        }
        let (handle, inner) = self
            .endpoint
            .connect(self.now, self.client_config.clone(), peer_addr(peer, PORT_FROM_INITIATOR), "")
            .map_err(|_: ConnectError| OpError::ConnectFailed)?;
        let id = self.add_conn(handle, inner, peer, true);
        self.service(id);
        Ok(id)
    }

    /// A datagram from `peer`; `from_initiator`: sent on a connection the peer initiated (so our
    /// answers are the acceptor's). A datagram whose side does not match its connection is
    /// dropped by quinn as coming from an unexpected address.
    pub fn input(&mut self, peer: u32, from_initiator: bool, datagram: &[u8], now: Instant) {
        self.advance(now);
        if peer == 0 {
            return;
        }
        let data = BytesMut::from(datagram);
        self.scratch.clear();
        let reply_port = if from_initiator { PORT_FROM_ACCEPTOR } else { PORT_FROM_INITIATOR };
        let from = peer_addr(peer, reply_port);
        let event = self.endpoint.handle(self.now, from, None, None, data, &mut self.scratch);
        match event {
            Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                if let Some(&id) = self.by_handle.get(&handle) {
                    if let Some(conn) = self.conns.get_mut(&id) {
                        conn.inner.handle_event(event);
                    }
                    self.service(id);
                }
            }
            Some(DatagramEvent::NewConnection(incoming)) => {
                self.scratch.clear();
                match self.endpoint.accept(incoming, self.now, &mut self.scratch, None) {
                    Ok((handle, inner)) => {
                        let id = self.add_conn(handle, inner, peer, false);
                        self.service(id);
                    }
                    Err(e) => {
                        if let Some(t) = e.response {
                            self.respond(from, t.size);
                        }
                    }
                }
            }
            Some(DatagramEvent::Response(t)) => self.respond(from, t.size),
            None => {}
        }
    }

    /// Queues an endpoint-level answer (in `scratch`). Bounded: these answer unknown packets,
    /// and a flood of those must not grow memory while JS is not polling.
    fn respond(&mut self, to: SocketAddr, size: usize) {
        if self.responses.len() < MAX_RESPONSES {
            self.responses.push_back((to, self.scratch[..size].to_vec()));
        }
    }

    fn set_destination(&mut self, to: SocketAddr) {
        if let SocketAddr::V4(v4) = to {
            self.tx_peer = u32::from(*v4.ip());
            self.tx_from_initiator = v4.port() == PORT_FROM_INITIATOR;
        }
    }

    /// Moves a connection's internal events along: endpoint bookkeeping (connection ids,
    /// draining) and application events into the queue JS polls.
    fn service(&mut self, id: u32) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        while let Some(ev) = conn.inner.poll_endpoint_events() {
            if let Some(back) = self.endpoint.handle_event(conn.handle, ev) {
                conn.inner.handle_event(back);
            }
        }
        while let Some(ev) = conn.inner.poll() {
            let (kind, stream, code) = match ev {
                QuinnEvent::Connected => (EventKind::Connected, 0, if conn.outgoing { CONNECTED_OUTGOING } else { 0 }),
                QuinnEvent::ConnectionLost { reason } => {
                    conn.lost = true;
                    self.lost_detail = reason.to_string();
                    // The QUIC error code rides in the stream field, which a loss has no use for.
                    (EventKind::ConnectionLost, error_code(&reason), lost_reason(&reason) as u64)
                }
                QuinnEvent::Stream(StreamEvent::Opened { dir: Dir::Bi }) => {
                    while let Some(s) = conn.inner.streams().accept(Dir::Bi) {
                        self.events.push_back(Event {
                            kind: EventKind::StreamOpened,
                            conn: id,
                            peer: conn.peer,
                            stream: s.into(),
                            code: 0,
                        });
                    }
                    continue;
                }
                QuinnEvent::Stream(StreamEvent::Readable { id: s }) => match probe_reset(conn, s) {
                    Some(code) => (EventKind::StreamReset, s.into(), code),
                    None => (EventKind::StreamReadable, s.into(), 0),
                },
                QuinnEvent::Stream(StreamEvent::Writable { id: s }) => (EventKind::StreamWritable, s.into(), 0),
                QuinnEvent::Stream(StreamEvent::Finished { id: s }) => (EventKind::StreamFinished, s.into(), 0),
                QuinnEvent::Stream(StreamEvent::Stopped { id: s, error_code }) => {
                    (EventKind::StreamStopped, s.into(), error_code.into_inner())
                }
                QuinnEvent::Stream(StreamEvent::Available { dir: Dir::Bi }) => (EventKind::StreamsAvailable, 0, 0),
                _ => continue,
            };
            self.events.push_back(Event { kind, conn: id, peer: conn.peer, stream, code });
        }
        if conn.inner.is_drained() {
            let handle = conn.handle;
            self.conns.remove(&id);
            self.by_handle.remove(&handle);
            self.send_order.retain(|&c| c != id);
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Fills `tx` with the next datagram to send; returns its length (0: nothing to send).
    pub fn poll_transmit(&mut self) -> usize {
        if let Some((to, bytes)) = self.responses.pop_front() {
            self.tx.clear();
            self.tx.extend_from_slice(&bytes);
            self.set_destination(to);
            return self.tx.len();
        }
        let count = self.send_order.len();
        for _ in 0..count {
            if self.send_cursor >= self.send_order.len() {
                self.send_cursor = 0;
            }
            let id = self.send_order[self.send_cursor];
            let Some(conn) = self.conns.get_mut(&id) else {
                self.send_cursor += 1;
                continue;
            };
            self.tx.clear();
            let sent = conn.inner.poll_transmit(self.now, 1, &mut self.tx);
            self.service(id);
            match sent {
                Some(t) => {
                    // One datagram per turn: connections to different peers share the sender.
                    self.send_cursor += 1;
                    self.tx.truncate(t.size);
                    self.set_destination(t.destination);
                    return t.size;
                }
                None => self.send_cursor += 1,
            }
        }
        0
    }

    /// Earliest time any connection wants `handle_timeout`, as ms on the caller's clock.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.conns.values_mut().filter_map(|c| c.inner.poll_timeout()).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        let now = self.now;
        let due: Vec<u32> = self
            .conns
            .iter_mut()
            .filter_map(|(&id, c)| c.inner.poll_timeout().is_some_and(|t| t <= now).then_some(id))
            .collect();
        for id in due {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.inner.handle_timeout(self.now);
            }
            self.service(id);
        }
    }

    fn conn(&mut self, id: u32) -> Result<&mut Conn, OpError> {
        self.conns.get_mut(&id).ok_or(OpError::UnknownConnection)
    }

    pub fn open_stream(&mut self, id: u32) -> Result<u64, OpError> {
        let conn = self.conn(id)?;
        if conn.lost {
            return Err(OpError::UnknownConnection);
        }
        conn.inner.streams().open(Dir::Bi).map(u64::from).ok_or(OpError::StreamsExhausted)
    }

    pub fn write(&mut self, id: u32, stream: u64, data: &[u8]) -> Result<usize, OpError> {
        let conn = self.conn(id)?;
        match conn.inner.send_stream(sid(stream)?).write(data) {
            Ok(n) => Ok(n),
            Err(WriteError::Blocked) => Err(OpError::Blocked),
            Err(WriteError::Stopped(code)) => {
                self.last_code = code.into_inner();
                Err(OpError::Stopped)
            }
            Err(WriteError::ClosedStream) => Err(OpError::Closed),
        }
    }

    /// Copies up to `out.len()` bytes in stream order; returns how many.
    pub fn read(&mut self, id: u32, stream: u64, out: &mut [u8]) -> Result<usize, OpError> {
        let conn = self.conns.get_mut(&id).ok_or(OpError::UnknownConnection)?;
        if conn.fin_unreported.remove(&stream) {
            return Err(OpError::Finished);
        }
        let mut recv = conn.inner.recv_stream(sid(stream)?);
        let mut chunks = match recv.read(true) {
            Ok(chunks) => chunks,
            Err(_) => return Err(OpError::Closed),
        };
        let mut filled = 0;
        let mut result = Ok(());
        while filled < out.len() {
            match chunks.next(out.len() - filled) {
                Ok(Some(chunk)) => {
                    out[filled..filled + chunk.bytes.len()].copy_from_slice(&chunk.bytes);
                    filled += chunk.bytes.len();
                }
                Ok(None) => {
                    result = Err(OpError::Finished);
                    break;
                }
                Err(ReadError::Blocked) => {
                    result = Err(OpError::Blocked);
                    break;
                }
                Err(ReadError::Reset(code)) => {
                    self.last_code = code.into_inner();
                    self.events.push_back(Event {
                        kind: EventKind::StreamReset,
                        conn: id,
                        peer: conn.peer,
                        stream,
                        code: self.last_code,
                    });
                    result = Err(OpError::Reset);
                    break;
                }
            }
        }
        // Finalizing hands the freed receive window back (MAX_STREAM_DATA goes out on the next
        // transmit); its return value only says whether that is needed.
        let _ = chunks.finalize();
        match (filled, result) {
            (0, Err(e)) => Err(e),
            (_, Err(OpError::Finished)) => {
                conn.fin_unreported.insert(stream);
                Ok(filled)
            }
            _ => Ok(filled),
        }
    }

    pub fn finish(&mut self, id: u32, stream: u64) -> Result<(), OpError> {
        let conn = self.conn(id)?;
        conn.inner.send_stream(sid(stream)?).finish().map_err(|_| OpError::Closed)
    }

    pub fn reset(&mut self, id: u32, stream: u64, code: u64) -> Result<(), OpError> {
        let code = VarInt::from_u64(code).map_err(|_| OpError::BadArgument)?;
        let conn = self.conn(id)?;
        conn.inner.send_stream(sid(stream)?).reset(code).map_err(|_| OpError::Closed)
    }

    pub fn stop(&mut self, id: u32, stream: u64, code: u64) -> Result<(), OpError> {
        let code = VarInt::from_u64(code).map_err(|_| OpError::BadArgument)?;
        let conn = self.conn(id)?;
        conn.inner.recv_stream(sid(stream)?).stop(code).map_err(|_| OpError::Closed)
    }

    pub fn close(&mut self, id: u32, code: u64, now: Instant) -> Result<(), OpError> {
        self.advance(now);
        let code = VarInt::from_u64(code).map_err(|_| OpError::BadArgument)?;
        let at = self.now;
        let conn = self.conn(id)?;
        conn.inner.close(at, code, Bytes::new());
        self.service(id);
        Ok(())
    }

    /// Fills `out`, indexed by `Stat`.
    pub fn stats(&mut self, id: u32, out: &mut [f64; STATS_LEN]) -> Result<(), OpError> {
        let conn = self.conn(id)?;
        let s = conn.inner.stats();
        out[Stat::RttMicros as usize] = s.path.rtt.as_micros() as f64;
        out[Stat::MinRttMicros as usize] = s.path.min_rtt.as_micros() as f64;
        out[Stat::Cwnd as usize] = s.path.cwnd as f64;
        out[Stat::CongestionEvents as usize] = s.path.congestion_events as f64;
        out[Stat::LostPackets as usize] = s.path.lost_packets as f64;
        out[Stat::LostBytes as usize] = s.path.lost_bytes as f64;
        out[Stat::SentPackets as usize] = s.path.sent_packets as f64;
        out[Stat::DatagramsOut as usize] = s.udp_tx.datagrams as f64;
        out[Stat::BytesOut as usize] = s.udp_tx.bytes as f64;
        out[Stat::DatagramsIn as usize] = s.udp_rx.datagrams as f64;
        out[Stat::BytesIn as usize] = s.udp_rx.bytes as f64;
        out[Stat::Mtu as usize] = f64::from(s.path.current_mtu);
        Ok(())
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }
}

