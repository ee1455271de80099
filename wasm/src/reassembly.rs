//! IPv4 and IPv6 fragment reassembly, before the wrapper picks a flow (which needs the TCP
//! ports only the first fragment carries). Bounded: a few datagrams at a time, the oldest
//! evicted when full, each dropped after `TIMEOUT_MS`; overlapping fragments (RFC 5722) drop
//! their datagram. smoltcp's own reassembly cannot be used: it runs after our demultiplexing.
//!
//! Datagrams are limited to a jumbo frame: the MSS the stack advertises keeps legitimate
//! segments far smaller, and equal-sized pooled buffers keep memory flat under fragment floods.

use smoltcp::wire::{Ipv4Packet, Ipv6Packet};

const MAX_PARTIALS: usize = 16;
/// Largest reassembled IP payload.
const MAX_PAYLOAD: usize = 9216;
const MAX_DATAGRAM: usize = 65535;
const TIMEOUT_MS: i64 = 10_000;
const IPV6_HEADER_LEN: usize = 40;
const IPV6_FRAGMENT: u8 = 44;

/// family, src (16), dst (16), identification (4), protocol (IPv4 only).
type Key = [u8; 38];

struct Partial {
    key: Key,
    started: i64,
    /// The IP header to rebuild the datagram with, from the fragment at offset 0.
    header: Vec<u8>,
    data: Vec<u8>,
    /// Received byte ranges of `data`, disjoint.
    ranges: Vec<(usize, usize)>,
    /// Payload length, known once the last fragment arrived.
    total: Option<usize>,
}

struct Fragment<'a> {
    key: Key,
    /// The header a whole datagram would carry (flags cleared later), when offset is 0.
    header: &'a [u8],
    offset: usize,
    more: bool,
    data: &'a [u8],
    v6_next_header: u8,
}

#[derive(Default)]
pub struct Reassembler {
    partials: Vec<Partial>,
    /// Data buffers of finished datagrams, each of capacity MAX_PAYLOAD.
    pool: Vec<Vec<u8>>,
}

impl Reassembler {
    /// Adds a fragment (`packet` was already found to be one). Returns the whole datagram once
    /// complete, as an unfragmented packet; `Err` for a malformed fragment.
    pub fn push(&mut self, packet: &[u8], now_ms: i64) -> Result<Option<Vec<u8>>, ()> {
        let mut i = 0;
        while i < self.partials.len() {
            let p = &self.partials[i];
            if now_ms - p.started >= TIMEOUT_MS || p.started > now_ms {
                self.discard(i);
            } else {
                i += 1;
            }
        }
        let frag = match packet.first().map(|b| b >> 4) {
            Some(4) => parse_v4(packet)?,
            Some(6) => parse_v6(packet)?,
            _ => return Err(()),
        };
        let end = frag.offset + frag.data.len();
        if end > MAX_PAYLOAD || (frag.more && frag.data.len() % 8 != 0) || frag.data.is_empty() {
            return Err(());
        }
        let index = match self.partials.iter().position(|p| p.key == frag.key) {
            Some(i) => i,
            None => {
                if self.partials.len() >= MAX_PARTIALS {
                    self.discard(0); // the oldest
                }
                let mut data = self.pool.pop().unwrap_or_else(|| Vec::with_capacity(MAX_PAYLOAD));
                data.clear();
                self.partials.push(Partial {
                    key: frag.key,
                    started: now_ms,
                    header: Vec::new(),
                    data,
                    ranges: Vec::new(),
                    total: None,
                });
                self.partials.len() - 1
            }
        };
        let partial = &mut self.partials[index];
        if partial.ranges.iter().any(|&(s, e)| (s, e) == (frag.offset, end)) {
            return Ok(None); // a duplicate
        }
        let overlaps = partial.ranges.iter().any(|&(s, e)| frag.offset < e && s < end);
        let beyond_total = partial.total.is_some_and(|t| end > t || (!frag.more && end != t));
        let before_last = !frag.more && partial.ranges.iter().any(|&(_, e)| e > end);
        if overlaps || beyond_total || before_last {
            self.discard(index);
            return Ok(None);
        }
        if partial.data.len() < end {
            partial.data.resize(end, 0);
        }
        partial.data[frag.offset..end].copy_from_slice(frag.data);
        partial.ranges.push((frag.offset, end));
        if frag.offset == 0 {
            partial.header = frag.header.to_vec();
            if frag.key[0] == 6 {
                partial.header[6] = frag.v6_next_header;
            }
        }
        if !frag.more {
            partial.total = Some(end);
        }
        let Some(total) = partial.total else { return Ok(None) };
        if partial.ranges.iter().map(|&(s, e)| e - s).sum::<usize>() != total || partial.header.is_empty() {
            return Ok(None);
        }
        let partial = self.partials.remove(index);
        let datagram = rebuild(&partial, total);
        self.pool.push(partial.data);
        Ok(datagram)
    }

    fn discard(&mut self, index: usize) {
        let partial = self.partials.remove(index);
        self.pool.push(partial.data);
    }
}

fn rebuild(partial: &Partial, total: usize) -> Option<Vec<u8>> {
    let header_len = partial.header.len();
    if header_len + total > MAX_DATAGRAM {
        return None;
    }
    let mut packet = Vec::with_capacity(header_len + total);
    packet.extend_from_slice(&partial.header);
    packet.extend_from_slice(&partial.data[..total]);
    if partial.key[0] == 4 {
        let mut ip = Ipv4Packet::new_unchecked(&mut packet[..]);
        ip.set_total_len((header_len + total) as u16);
        ip.set_more_frags(false);
        ip.set_frag_offset(0);
        ip.fill_checksum();
    } else {
        Ipv6Packet::new_unchecked(&mut packet[..]).set_payload_len(total as u16);
    }
    Some(packet)
}

fn parse_v4(packet: &[u8]) -> Result<Fragment<'_>, ()> {
    let ip = Ipv4Packet::new_checked(packet).map_err(|_| ())?;
    let mut key = [0u8; 38];
    key[0] = 4;
    key[1..5].copy_from_slice(&ip.src_addr().octets());
    key[17..21].copy_from_slice(&ip.dst_addr().octets());
    key[33..35].copy_from_slice(&ip.ident().to_be_bytes());
    key[37] = u8::from(ip.next_header());
    Ok(Fragment {
        key,
        header: &packet[..ip.header_len() as usize],
        offset: ip.frag_offset() as usize,
        more: ip.more_frags(),
        data: ip.payload(),
        v6_next_header: 0,
    })
}

fn parse_v6(packet: &[u8]) -> Result<Fragment<'_>, ()> {
    let ip = Ipv6Packet::new_checked(packet).map_err(|_| ())?;
    let end = IPV6_HEADER_LEN + ip.payload_len() as usize;
    let mut next = u8::from(ip.next_header());
    let mut at = IPV6_HEADER_LEN;
    // Headers before the Fragment header belong to the unfragmentable part; classification
    // ignores them anyway, so the rebuilt datagram carries only the fixed header.
    while next != IPV6_FRAGMENT {
        if at + 8 > end {
            return Err(());
        }
        let len = match next {
            0 | 43 | 60 => (packet[at + 1] as usize + 1) * 8,
            51 => (packet[at + 1] as usize + 2) * 4,
            _ => return Err(()),
        };
        next = packet[at];
        at += len;
    }
    if at + 8 > end {
        return Err(());
    }
    let offset_flags = u16::from_be_bytes([packet[at + 2], packet[at + 3]]);
    let mut key = [0u8; 38];
    key[0] = 6;
    key[1..17].copy_from_slice(&ip.src_addr().octets());
    key[17..33].copy_from_slice(&ip.dst_addr().octets());
    key[33..37].copy_from_slice(&packet[at + 4..at + 8]);
    Ok(Fragment {
        key,
        header: &packet[..IPV6_HEADER_LEN],
        offset: (offset_flags & 0xfff8) as usize,
        more: offset_flags & 1 == 1,
        data: &packet[at + 8..end],
        v6_next_header: packet[at],
    })
}
