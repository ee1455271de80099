//! Classifies an inbound IP packet before smoltcp sees it: which TCP flow it belongs to,
//! whether it opens one, and the form smoltcp can process.
//!
//! smoltcp only walks the IPv6 Hop-by-Hop header, so other extension headers are stripped
//! here (a terminating endpoint may ignore them). Fragments go to `reassembly` first: the
//! wrapper must see the TCP ports to pick a flow.

use smoltcp::wire::{IpAddress, Ipv4Packet, Ipv6Packet, TcpPacket};

const PROTO_TCP: u8 = 6;
const IPV6_HEADER_LEN: usize = 40;

/// (family, src, dst, src port, dst port) in a fixed-size, ordered form.
pub type FlowKey = [u8; 37];

#[derive(Debug, PartialEq, Eq)]
pub enum Discard {
    Malformed,
    NotTcp,
    Fragment,
}

pub struct Segment {
    pub key: FlowKey,
    pub src: IpAddress,
    pub dst: IpAddress,
    pub src_port: u16,
    pub dst_port: u16,
    /// A connection request: SYN without ACK or RST.
    pub syn: bool,
    pub rst: bool,
    /// Where the TCP header starts in the normalized packet.
    tcp_start: usize,
}

impl Segment {
    /// Verifies the TCP checksum of the normalized packet `classify` wrote. Only packets that
    /// create or change a held flow need this here: smoltcp checks all the others itself.
    pub fn checksum_ok(&self, normalized: &[u8]) -> bool {
        TcpPacket::new_unchecked(&normalized[self.tcp_start..]).verify_checksum(&self.src, &self.dst)
    }
}

pub fn flow_key(src: &IpAddress, src_port: u16, dst: &IpAddress, dst_port: u16) -> FlowKey {
    let mut key = [0u8; 37];
    match (src, dst) {
        (IpAddress::Ipv4(s), IpAddress::Ipv4(d)) => {
            key[0] = 4;
            key[1..5].copy_from_slice(&s.octets());
            key[17..21].copy_from_slice(&d.octets());
        }
        (IpAddress::Ipv6(s), IpAddress::Ipv6(d)) => {
            key[0] = 6;
            key[1..17].copy_from_slice(&s.octets());
            key[17..33].copy_from_slice(&d.octets());
        }
        // A packet never mixes families; keep such a key distinct from every real one.
        _ => key[0] = 0xff,
    }
    key[33..35].copy_from_slice(&src_port.to_be_bytes());
    key[35..37].copy_from_slice(&dst_port.to_be_bytes());
    key
}

/// Parses `packet`, writes the form smoltcp should process into `out`, and returns the segment.
pub fn classify(packet: &[u8], out: &mut Vec<u8>) -> Result<Segment, Discard> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => classify_v4(packet, out),
        Some(6) => classify_v6(packet, out),
        _ => Err(Discard::Malformed),
    }
}

fn classify_v4(packet: &[u8], out: &mut Vec<u8>) -> Result<Segment, Discard> {
    let ip = Ipv4Packet::new_checked(packet).map_err(|_| Discard::Malformed)?;
    if !ip.verify_checksum() {
        return Err(Discard::Malformed);
    }
    if u8::from(ip.next_header()) != PROTO_TCP {
        return Err(Discard::NotTcp);
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Err(Discard::Fragment);
    }
    let src = IpAddress::Ipv4(ip.src_addr());
    let dst = IpAddress::Ipv4(ip.dst_addr());
    let segment = parse_tcp(ip.payload(), src, dst, ip.header_len() as usize)?;
    out.extend_from_slice(&packet[..ip.total_len() as usize]);
    Ok(segment)
}

fn classify_v6(packet: &[u8], out: &mut Vec<u8>) -> Result<Segment, Discard> {
    let ip = Ipv6Packet::new_checked(packet).map_err(|_| Discard::Malformed)?;
    let src = IpAddress::Ipv6(ip.src_addr());
    let dst = IpAddress::Ipv6(ip.dst_addr());
    let mut next = u8::from(ip.next_header());
    let mut rest = ip.payload();
    let mut stripped = false;
    loop {
        let len = match next {
            PROTO_TCP => break,
            // Hop-by-Hop, Routing, Destination Options: (8-octet units) + 1.
            0 | 43 | 60 => ext_len(rest, |l| (l + 1) * 8)?,
            // Authentication Header: (4-octet units) + 2.
            51 => ext_len(rest, |l| (l + 2) * 4)?,
            44 => return Err(Discard::Fragment),
            _ => return Err(Discard::NotTcp),
        };
        next = rest[0];
        rest = &rest[len..];
        stripped = true;
    }
    let segment = parse_tcp(rest, src, dst, IPV6_HEADER_LEN)?;
    if stripped {
        out.extend_from_slice(&packet[..IPV6_HEADER_LEN]);
        out[4..6].copy_from_slice(&(rest.len() as u16).to_be_bytes());
        out[6] = PROTO_TCP;
        out.extend_from_slice(rest);
    } else {
        out.extend_from_slice(&packet[..IPV6_HEADER_LEN + rest.len()]);
    }
    Ok(segment)
}

fn ext_len(rest: &[u8], units: impl Fn(usize) -> usize) -> Result<usize, Discard> {
    if rest.len() < 8 {
        return Err(Discard::Malformed);
    }
    let len = units(rest[1] as usize);
    if len > rest.len() {
        return Err(Discard::Malformed);
    }
    Ok(len)
}

fn parse_tcp(bytes: &[u8], src: IpAddress, dst: IpAddress, tcp_start: usize) -> Result<Segment, Discard> {
    let tcp = TcpPacket::new_checked(bytes).map_err(|_| Discard::Malformed)?;
    let (src_port, dst_port) = (tcp.src_port(), tcp.dst_port());
    Ok(Segment {
        key: flow_key(&src, src_port, &dst, dst_port),
        src,
        dst,
        src_port,
        dst_port,
        syn: tcp.syn() && !tcp.ack() && !tcp.rst(),
        rst: tcp.rst(),
        tcp_start,
    })
}
