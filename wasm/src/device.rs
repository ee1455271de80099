//! The IP-medium device smoltcp talks to: one inbound slot and a bounded outbound queue.
//!
//! The wrapper demultiplexes packets itself and hands smoltcp exactly one packet at a time,
//! so receive needs one slot, not a queue. Outbound buffers are recycled through a pool,
//! so steady traffic allocates nothing.

use std::collections::VecDeque;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

pub struct QueueDevice {
    mtu: usize,
    rx: Vec<u8>,
    rx_ready: bool,
    out: VecDeque<Vec<u8>>,
    pool: Vec<Vec<u8>>,
    out_limit: usize,
    /// The packet most recently handed to JS; kept alive until the next `next_transmit`.
    current: Vec<u8>,
    pub tx_dropped: u64,
}

impl QueueDevice {
    pub fn new(mtu: usize, out_limit: usize) -> Self {
        QueueDevice {
            mtu,
            rx: Vec::with_capacity(mtu),
            rx_ready: false,
            out: VecDeque::new(),
            pool: Vec::new(),
            out_limit,
            current: Vec::new(),
            tx_dropped: 0,
        }
    }

    /// The buffer the next inbound packet is written into; `arm_rx` makes it visible to smoltcp.
    pub fn rx_buffer(&mut self) -> &mut Vec<u8> {
        self.rx.clear();
        self.rx_ready = false;
        &mut self.rx
    }

    /// The packet last written by `rx_buffer` (e.g. to hold a SYN).
    pub fn rx_buffer_view(&self) -> &[u8] {
        &self.rx
    }

    pub fn arm_rx(&mut self) {
        self.rx_ready = true;
    }

    pub fn current_transmit(&self) -> &[u8] {
        &self.current
    }

    /// Moves the oldest outbound packet to the "current" slot and returns it (empty: none).
    pub fn next_transmit(&mut self) -> &[u8] {
        let previous = std::mem::take(&mut self.current);
        if previous.capacity() > 0 {
            self.pool.push(previous);
        }
        if let Some(packet) = self.out.pop_front() {
            self.current = packet;
        }
        &self.current
    }

}

pub struct RxToken<'a> {
    packet: &'a [u8],
}

pub struct TxToken<'a> {
    mtu: usize,
    out: &'a mut VecDeque<Vec<u8>>,
    pool: &'a mut Vec<Vec<u8>>,
    out_limit: usize,
    dropped: &'a mut u64,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.packet)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = self.pool.pop().unwrap_or_else(|| Vec::with_capacity(self.mtu));
        buf.clear();
        buf.resize(len, 0);
        let result = f(&mut buf);
        // Replies produced while receiving (RST, ACK) bypass `transmit`'s room check; a full
        // queue drops them like a full NIC ring would, and TCP recovers.
        if self.out.len() < self.out_limit {
            self.out.push_back(buf);
        } else {
            *self.dropped += 1;
            self.pool.push(buf);
        }
        result
    }
}

impl phy::Device for QueueDevice {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        if !self.rx_ready {
            return None;
        }
        self.rx_ready = false;
        let tx = TxToken {
            mtu: self.mtu,
            out: &mut self.out,
            pool: &mut self.pool,
            out_limit: self.out_limit,
            dropped: &mut self.tx_dropped,
        };
        Some((RxToken { packet: &self.rx }, tx))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        if self.out.len() >= self.out_limit {
            return None;
        }
        Some(TxToken {
            mtu: self.mtu,
            out: &mut self.out,
            pool: &mut self.pool,
            out_limit: self.out_limit,
            dropped: &mut self.tx_dropped,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}
