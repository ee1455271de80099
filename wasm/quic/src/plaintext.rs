//! EasyTier 2.6's QUIC crypto (the quinn-plaintext scheme), so tstier's QUIC proxy can talk to
//! EasyTier nodes: no header protection, no packet encryption, and an 8-byte integrity tag on
//! every packet. Safe for the same reason as crypto.rs: the datagrams travel inside the peer
//! layer, which authenticates and encrypts them.
//!
//! The tag is SeaHash (default seeds) over `u64_le(len(H)) | H | u64_le(len(P)) | P`, written
//! big-endian, where H is the header through the packet number and P the frames: what hashing
//! two byte slices with Rust's `Hash` gives on a 64-bit host. The keys are the same for every
//! packet space and every connection.
//!
//! The handshake carries only the raw transport parameters, no TLS messages, no ALPN:
//!   client: its parameters (CRYPTO, Initial space); at once Handshake, then 1-RTT keys
//!   server: on the client's parameters: Handshake keys (its Initial carries only an ACK), then
//!           its parameters (CRYPTO, Handshake space) and 1-RTT keys
//! Each side's `write_handshake` hands out one key upgrade per call, which is what makes quinn
//! place the parameters in those spaces.
//!
//! Tested from JS (test/unit/quic/plaintext.test.ts): every packet's tag against an independent
//! SeaHash checked on the reference vector. The crate builds for wasm only (its clock is a shim).

use std::any::Any;
use std::sync::Arc;

use bytes::BytesMut;
use quinn_proto::crypto::{
    self, CryptoError, ExportKeyingMaterialError, HeaderKey, KeyPair, Keys, PacketKey,
    UnsupportedVersion,
};
use quinn_proto::transport_parameters::TransportParameters;
use quinn_proto::{ConnectError, ConnectionId, Side, TransportError, TransportErrorCode};

const TAG_LEN: usize = 8;

/// SeaHash's default seeds and its diffusion prime.
const SEEDS: [u64; 4] = [0x16f1_1fe8_9b0d_677c, 0xb480_a793_d8e6_c86c, 0x6fe2_e5aa_f078_ebc9, 0x14f9_94a4_c525_9381];
const PRIME: u64 = 0x6eed_0e9d_a4d9_4a4f;

fn diffuse(mut x: u64) -> u64 {
    x = x.wrapping_mul(PRIME);
    x ^= (x >> 32) >> (x >> 60);
    x.wrapping_mul(PRIME)
}

/// SeaHash over a stream of byte slices: 8-byte little-endian words dealt round-robin to four
/// lanes, a short last word zero-padded, then the lanes and the total length folded together.
struct SeaHasher {
    lanes: [u64; 4],
    lane: usize,
    word: [u8; 8],
    fill: usize,
    len: u64,
}

impl SeaHasher {
    fn new() -> Self {
        Self { lanes: SEEDS, lane: 0, word: [0; 8], fill: 0, len: 0 }
    }

    fn push_word(&mut self, w: u64) {
        self.lanes[self.lane] = diffuse(self.lanes[self.lane] ^ w);
        self.lane = (self.lane + 1) & 3;
    }

    fn write(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.fill > 0 {
            let take = (8 - self.fill).min(bytes.len());
            self.word[self.fill..self.fill + take].copy_from_slice(&bytes[..take]);
            self.fill += take;
            bytes = &bytes[take..];
            if self.fill < 8 {
                return;
            }
            self.push_word(u64::from_le_bytes(self.word));
            self.fill = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.push_word(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        self.word[..rest.len()].copy_from_slice(rest);
        self.fill = rest.len();
    }

    /// A slice as Rust's `Hash` feeds it on 64-bit hosts: its length as a u64, then its bytes.
    fn write_slice(&mut self, bytes: &[u8]) {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }

    fn finish(mut self) -> u64 {
        if self.fill > 0 {
            self.word[self.fill..].fill(0);
            let w = u64::from_le_bytes(self.word);
            self.push_word(w);
        }
        let [a, b, c, d] = self.lanes;
        diffuse(a ^ b ^ c ^ d ^ self.len)
    }
}

/// The 8-byte tag of a packet with header `header` and frames `payload`.
pub fn packet_tag(header: &[u8], payload: &[u8]) -> [u8; TAG_LEN] {
    let mut h = SeaHasher::new();
    h.write_slice(header);
    h.write_slice(payload);
    h.finish().to_be_bytes()
}

struct PlainHeaderKey;

impl HeaderKey for PlainHeaderKey {
    fn decrypt(&self, _pn_offset: usize, _packet: &mut [u8]) {}
    fn encrypt(&self, _pn_offset: usize, _packet: &mut [u8]) {}
    /// No sample: EasyTier's packets are not padded for one (a 1-byte packet number in clear).
    fn sample_size(&self) -> usize {
        0
    }
}

struct PlainPacketKey;

impl PacketKey for PlainPacketKey {
    fn encrypt(&self, _packet: u64, buf: &mut [u8], header_len: usize) {
        let body_end = buf.len() - TAG_LEN;
        let tag = packet_tag(&buf[..header_len], &buf[header_len..body_end]);
        buf[body_end..].copy_from_slice(&tag);
    }

    fn decrypt(&self, _packet: u64, header: &[u8], payload: &mut BytesMut) -> Result<(), CryptoError> {
        let body = payload.len().checked_sub(TAG_LEN).ok_or(CryptoError)?;
        if payload[body..] != packet_tag(header, &payload[..body]) {
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

fn packet_keys() -> KeyPair<Box<dyn PacketKey>> {
    KeyPair { local: Box::new(PlainPacketKey), remote: Box::new(PlainPacketKey) }
}

fn plain_keys() -> Keys {
    Keys { header: KeyPair { local: Box::new(PlainHeaderKey), remote: Box::new(PlainHeaderKey) }, packet: packet_keys() }
}

pub struct PlainSession {
    side: Side,
    local_params: TransportParameters,
    peer_params: Option<TransportParameters>,
    wrote_params: bool,
    /// Key upgrades handed out so far: Handshake, then 1-RTT.
    upgrades: u8,
}

impl PlainSession {
    fn new(side: Side, params: &TransportParameters) -> Self {
        Self { side, local_params: *params, peer_params: None, wrote_params: false, upgrades: 0 }
    }
}

impl crypto::Session for PlainSession {
    fn initial_keys(&self, _dst_cid: &ConnectionId, _side: Side) -> Keys {
        plain_keys()
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
        Some(false)
    }

    fn is_handshaking(&self) -> bool {
        self.peer_params.is_none() || (!self.wrote_params && self.upgrades < 2)
    }

    /// The peer's parameters come whole in its first CRYPTO bytes (a few hundred bytes, one
    /// packet); anything after them is ignored, as EasyTier does.
    fn read_handshake(&mut self, mut buf: &[u8]) -> Result<bool, TransportError> {
        if self.peer_params.is_some() {
            return Ok(false);
        }
        let params = TransportParameters::read(self.side, &mut buf).map_err(|e| {
            let mut err = TransportError::from(e);
            err.code = TransportErrorCode::TRANSPORT_PARAMETER_ERROR;
            err
        })?;
        self.peer_params = Some(params);
        Ok(true)
    }

    fn transport_parameters(&self) -> Result<Option<TransportParameters>, TransportError> {
        Ok(self.peer_params)
    }

    fn write_handshake(&mut self, buf: &mut Vec<u8>) -> Option<Keys> {
        // The client speaks first, in the Initial space; the server answers in the Handshake one.
        let params_now = match self.side {
            Side::Client => self.upgrades == 0,
            Side::Server => self.upgrades == 1,
        };
        if params_now && !self.wrote_params {
            self.local_params.write(buf);
            self.wrote_params = true;
        }
        if self.upgrades >= 2 {
            return None;
        }
        self.upgrades += 1;
        Some(plain_keys())
    }

    fn next_1rtt_keys(&mut self) -> Option<KeyPair<Box<dyn PacketKey>>> {
        Some(packet_keys())
    }

    fn is_valid_retry(&self, _orig_dst_cid: &ConnectionId, _header: &[u8], _payload: &[u8]) -> bool {
        false // we never ask for Retry, and EasyTier does not send it
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

pub struct PlainClientConfig;

impl crypto::ClientConfig for PlainClientConfig {
    fn start_session(
        self: Arc<Self>,
        _version: u32,
        _server_name: &str,
        params: &TransportParameters,
    ) -> Result<Box<dyn crypto::Session>, ConnectError> {
        Ok(Box::new(PlainSession::new(Side::Client, params)))
    }
}

pub struct PlainServerConfig;

impl crypto::ServerConfig for PlainServerConfig {
    fn initial_keys(&self, _version: u32, _dst_cid: &ConnectionId) -> Result<Keys, UnsupportedVersion> {
        Ok(plain_keys())
    }

    fn retry_tag(&self, _version: u32, _orig_dst_cid: &ConnectionId, _packet: &[u8]) -> [u8; 16] {
        [0; 16]
    }

    fn start_session(self: Arc<Self>, _version: u32, params: &TransportParameters) -> Box<dyn crypto::Session> {
        Box::new(PlainSession::new(Side::Server, params))
    }
}
