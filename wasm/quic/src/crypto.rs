//! Null QUIC crypto: no packet or header protection, a fixed tag, and a four-message handshake
//! that only exchanges transport parameters.
//!
//! Why that is enough: tstier carries these datagrams inside the peer layer, which already
//! authenticates and encrypts every packet (EasyTier 2.6 does the same with quinn-plaintext).
//! The tag is not a MAC of the contents. It binds the packet number and the connection: Initial
//! packets use `INITIAL_TAG`, Handshake and 1-RTT packets a tag mixed from two nonces the hellos
//! exchange, and both are mixed with the full packet number (see `NullPacketKey::packet_tag`). Identical keys for every
//! connection would let a "ghost" connection's packets in: a late duplicate or retransmitted
//! Initial can make the server start a second connection with the same connection ids, and
//! without per-connection keys the client would accept that ghost's ACKs and frames as its own
//! (and die of "unsent packet acked"). A datagram that is not ours, or a truncated one, fails
//! to "decrypt" and is dropped like any undecryptable packet.
//!
//! The handshake mirrors TLS 1.3's shape, because quinn-proto's key schedule expects it:
//!   client: Hello(params)                       Initial space
//!   server: Hello(params)                       Initial space, then Handshake keys
//!   server: Finished                            Handshake space, then 1-RTT keys
//!   client: Finished                            Handshake space, then 1-RTT keys, done
//! Each message is `type u8 | length u16 BE | body`; a hello body is `MAGIC | nonce u64 | params`.

use std::any::Any;
use std::io::Cursor;
use std::sync::Arc;

use bytes::BytesMut;
use quinn_proto::crypto::{
    self, CryptoError, ExportKeyingMaterialError, HeaderKey, KeyPair, Keys, PacketKey,
    UnsupportedVersion,
};
use quinn_proto::transport_parameters::TransportParameters;
use quinn_proto::{ConnectError, ConnectionId, Side, TransportError, TransportErrorCode};

const INITIAL_TAG: [u8; 8] = *b"tstierQ1";
const TAG_LEN: usize = 8;
const NONCE_LEN: usize = 8;
/// Names this protocol in both hellos, so a QUIC peer speaking anything else fails the handshake.
const MAGIC: &[u8; 8] = b"tstier/q";
const MSG_CLIENT_HELLO: u8 = 1;
const MSG_SERVER_HELLO: u8 = 2;
const MSG_SERVER_FINISHED: u8 = 3;
const MSG_CLIENT_FINISHED: u8 = 4;
/// Header-protection sample length quinn reserves room for; the usual AEAD value.
const SAMPLE_SIZE: usize = 16;
/// TLS alert "handshake_failure", reported as a QUIC CRYPTO_ERROR.
const ALERT_HANDSHAKE_FAILURE: u8 = 40;

struct NullHeaderKey;

impl HeaderKey for NullHeaderKey {
    fn decrypt(&self, _pn_offset: usize, _packet: &mut [u8]) {}
    fn encrypt(&self, _pn_offset: usize, _packet: &mut [u8]) {}
    fn sample_size(&self) -> usize {
        SAMPLE_SIZE
    }
}

#[derive(Clone, Copy)]
struct NullPacketKey {
    tag: [u8; TAG_LEN],
}

impl NullPacketKey {
    /// The tag also binds the full packet number. The wire carries it truncated and, without
    /// header protection's AEAD, nothing else checks how the receiver expanded it: a packet
    /// delayed past half the number window would be taken for a different number, and the ACK
    /// for that number would kill the connection ("unsent packet acked").
    fn packet_tag(&self, packet: u64) -> [u8; TAG_LEN] {
        (u64::from_le_bytes(self.tag) ^ mix(packet)).to_le_bytes()
    }
}

impl PacketKey for NullPacketKey {
    fn encrypt(&self, packet: u64, buf: &mut [u8], _header_len: usize) {
        let len = buf.len();
        buf[len - TAG_LEN..].copy_from_slice(&self.packet_tag(packet));
    }

    fn decrypt(&self, packet: u64, _header: &[u8], payload: &mut BytesMut) -> Result<(), CryptoError> {
        let Some(body) = payload.len().checked_sub(TAG_LEN) else {
            return Err(CryptoError);
        };
        if payload[body..] != self.packet_tag(packet) {
            return Err(CryptoError);
        }
        payload.truncate(body);
        Ok(())
    }

    fn tag_len(&self) -> usize {
        TAG_LEN
    }

    // No cipher wears out, so never force a key update.
    fn confidentiality_limit(&self) -> u64 {
        u64::MAX
    }
    fn integrity_limit(&self) -> u64 {
        u64::MAX
    }
}

fn null_keys(tag: [u8; TAG_LEN]) -> Keys {
    Keys {
        header: KeyPair { local: Box::new(NullHeaderKey), remote: Box::new(NullHeaderKey) },
        packet: KeyPair { local: Box::new(NullPacketKey { tag }), remote: Box::new(NullPacketKey { tag }) },
    }
}

/// splitmix64's finaliser: every input bit affects every output bit.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The tag of one connection's Handshake and 1-RTT packets, before the packet number.
fn connection_tag(client_nonce: u64, server_nonce: u64) -> [u8; TAG_LEN] {
    mix(client_nonce ^ server_nonce.rotate_left(32)).to_le_bytes()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    /// Client: hello not written yet. Server: waiting for the client's hello.
    Start,
    /// Client: waiting for the server's hello.
    AwaitServerHello,
    /// Client: got the server's hello; the next write switches to Handshake keys.
    /// Server: got the client's hello; the next write answers it.
    GotHello,
    /// Client: waiting for the server's Finished. Server: hello sent; next write sends Finished.
    HandshakeKeys,
    /// Client: got the server's Finished; the next write sends ours.
    GotServerFinished,
    /// Server: waiting for the client's Finished.
    AwaitClientFinished,
    Done,
}

pub struct NullSession {
    side: Side,
    step: Step,
    local_params: Vec<u8>,
    local_nonce: u64,
    peer_nonce: u64,
    peer_params: Option<TransportParameters>,
    /// Handshake bytes received but not yet forming a whole message.
    pending: Vec<u8>,
}

fn failure(reason: &str) -> TransportError {
    TransportError {
        code: TransportErrorCode::crypto(ALERT_HANDSHAKE_FAILURE),
        frame: None,
        reason: reason.into(),
    }
}

impl NullSession {
    fn new(side: Side, params: &TransportParameters) -> Self {
        let mut local_params = Vec::with_capacity(128);
        params.write(&mut local_params);
        Self {
            side,
            step: Step::Start,
            local_params,
            local_nonce: crate::rng::next_u64(),
            peer_nonce: 0,
            peer_params: None,
            pending: Vec::new(),
        }
    }

    fn connection_keys(&self) -> Keys {
        null_keys(self.tag())
    }

    fn tag(&self) -> [u8; TAG_LEN] {
        match self.side {
            Side::Client => connection_tag(self.local_nonce, self.peer_nonce),
            Side::Server => connection_tag(self.peer_nonce, self.local_nonce),
        }
    }

    fn write_message(buf: &mut Vec<u8>, kind: u8, body: &[&[u8]]) {
        let len: usize = body.iter().map(|part| part.len()).sum();
        buf.push(kind);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
        for part in body {
            buf.extend_from_slice(part);
        }
    }

    fn on_message(&mut self, kind: u8, body: &[u8]) -> Result<bool, TransportError> {
        match (self.side, self.step, kind) {
            (Side::Server, Step::Start, MSG_CLIENT_HELLO) | (Side::Client, Step::AwaitServerHello, MSG_SERVER_HELLO) => {
                let rest = body.strip_prefix(MAGIC.as_slice()).ok_or_else(|| failure("not a tstier QUIC peer"))?;
                if rest.len() < NONCE_LEN {
                    return Err(failure("hello too short"));
                }
                let (nonce, params) = rest.split_at(NONCE_LEN);
                self.peer_nonce = u64::from_be_bytes(nonce.try_into().expect("split at NONCE_LEN"));
                let params = TransportParameters::read(self.side, &mut Cursor::new(params))
                    .map_err(TransportError::from)?;
                self.peer_params = Some(params);
                self.step = Step::GotHello;
                Ok(true)
            }
            (Side::Client, Step::HandshakeKeys, MSG_SERVER_FINISHED) if body.is_empty() => {
                self.step = Step::GotServerFinished;
                Ok(false)
            }
            (Side::Server, Step::AwaitClientFinished, MSG_CLIENT_FINISHED) if body.is_empty() => {
                self.step = Step::Done;
                Ok(false)
            }
            _ => Err(failure("unexpected handshake message")),
        }
    }
}

impl crypto::Session for NullSession {
    fn initial_keys(&self, _dst_cid: &ConnectionId, _side: Side) -> Keys {
        null_keys(INITIAL_TAG)
    }

    fn handshake_data(&self) -> Option<Box<dyn Any>> {
        self.peer_params.as_ref().map(|_| Box::new(()) as Box<dyn Any>)
    }

    fn peer_identity(&self) -> Option<Box<dyn Any>> {
        None
    }

    fn early_crypto(&self) -> Option<(Box<dyn HeaderKey>, Box<dyn PacketKey>)> {
        None
    }

    fn early_data_accepted(&self) -> Option<bool> {
        match self.side {
            Side::Client => Some(false),
            Side::Server => None,
        }
    }

    fn is_handshaking(&self) -> bool {
        self.step != Step::Done
    }

    fn read_handshake(&mut self, buf: &[u8]) -> Result<bool, TransportError> {
        self.pending.extend_from_slice(buf);
        let mut ready = false;
        loop {
            if self.pending.len() < 3 {
                return Ok(ready);
            }
            let len = u16::from_be_bytes([self.pending[1], self.pending[2]]) as usize;
            if self.pending.len() < 3 + len {
                return Ok(ready);
            }
            let message: Vec<u8> = self.pending.drain(..3 + len).collect();
            ready |= self.on_message(message[0], &message[3..])?;
        }
    }

    fn transport_parameters(&self) -> Result<Option<TransportParameters>, TransportError> {
        Ok(self.peer_params)
    }

    fn write_handshake(&mut self, buf: &mut Vec<u8>) -> Option<Keys> {
        match (self.side, self.step) {
            (Side::Client, Step::Start) => {
                Self::write_message(buf, MSG_CLIENT_HELLO, &[MAGIC, &self.local_nonce.to_be_bytes(), &self.local_params]);
                self.step = Step::AwaitServerHello;
                None
            }
            (Side::Client, Step::GotHello) => {
                self.step = Step::HandshakeKeys;
                Some(self.connection_keys())
            }
            (Side::Client, Step::GotServerFinished) => {
                Self::write_message(buf, MSG_CLIENT_FINISHED, &[]);
                self.step = Step::Done;
                Some(self.connection_keys())
            }
            (Side::Server, Step::GotHello) => {
                Self::write_message(buf, MSG_SERVER_HELLO, &[MAGIC, &self.local_nonce.to_be_bytes(), &self.local_params]);
                self.step = Step::HandshakeKeys;
                Some(self.connection_keys())
            }
            (Side::Server, Step::HandshakeKeys) => {
                Self::write_message(buf, MSG_SERVER_FINISHED, &[]);
                self.step = Step::AwaitClientFinished;
                Some(self.connection_keys())
            }
            _ => None,
        }
    }

    fn next_1rtt_keys(&mut self) -> Option<KeyPair<Box<dyn PacketKey>>> {
        let key = NullPacketKey { tag: self.tag() };
        Some(KeyPair { local: Box::new(key), remote: Box::new(key) })
    }

    fn is_valid_retry(&self, _orig_dst_cid: &ConnectionId, _header: &[u8], _payload: &[u8]) -> bool {
        false // tstier never sends Retry
    }

    fn export_keying_material(
        &self,
        _output: &mut [u8],
        _label: &[u8],
        _context: &[u8],
    ) -> Result<(), ExportKeyingMaterialError> {
        Err(ExportKeyingMaterialError)
    }
}

pub struct NullClientConfig;

impl crypto::ClientConfig for NullClientConfig {
    fn start_session(
        self: Arc<Self>,
        _version: u32,
        _server_name: &str,
        params: &TransportParameters,
    ) -> Result<Box<dyn crypto::Session>, ConnectError> {
        Ok(Box::new(NullSession::new(Side::Client, params)))
    }
}

pub struct NullServerConfig;

impl crypto::ServerConfig for NullServerConfig {
    fn initial_keys(&self, _version: u32, _dst_cid: &ConnectionId) -> Result<Keys, UnsupportedVersion> {
        Ok(null_keys(INITIAL_TAG))
    }

    fn retry_tag(&self, _version: u32, _orig_dst_cid: &ConnectionId, _packet: &[u8]) -> [u8; 16] {
        [0; 16]
    }

    fn start_session(self: Arc<Self>, _version: u32, params: &TransportParameters) -> Box<dyn crypto::Session> {
        Box::new(NullSession::new(Side::Server, params))
    }
}

/// Keyed hash for stateless-reset tokens (quinn signs connection ids with it). Not a real HMAC:
/// a forged reset could at worst close a connection, and forging needs access to the
/// authenticated peer channel in the first place.
pub struct ResetKey {
    key: [u64; 2],
}

impl ResetKey {
    pub fn new(key: [u64; 2]) -> Self {
        Self { key }
    }

    fn mix(&self, data: &[u8], lane: u64) -> u64 {
        let mut h = self.key[0] ^ lane.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for &b in data {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= self.key[1];
        mix(h)
    }
}

impl crypto::HmacKey for ResetKey {
    fn sign(&self, data: &[u8], signature_out: &mut [u8]) {
        for (lane, chunk) in signature_out.chunks_mut(8).enumerate() {
            let word = self.mix(data, lane as u64).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    fn signature_len(&self) -> usize {
        32
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        let mut expected = [0u8; 32];
        self.sign(data, &mut expected);
        if signature.len() == expected.len() && signature == expected {
            Ok(())
        } else {
            Err(CryptoError)
        }
    }
}

/// Validation and retry tokens are off in tstier (every peer is already authenticated), so the
/// token key can never be asked to open anything; it refuses if it is.
pub struct NoTokenKey;

struct NoTokenAead;

impl crypto::AeadKey for NoTokenAead {
    fn seal(&self, _data: &mut Vec<u8>, _additional_data: &[u8]) -> Result<(), CryptoError> {
        Err(CryptoError)
    }

    fn open<'a>(&self, _data: &'a mut [u8], _additional_data: &[u8]) -> Result<&'a mut [u8], CryptoError> {
        Err(CryptoError)
    }
}

impl crypto::HandshakeTokenKey for NoTokenKey {
    fn aead_from_hkdf(&self, _random_bytes: &[u8]) -> Box<dyn crypto::AeadKey> {
        Box::new(NoTokenAead)
    }
}
