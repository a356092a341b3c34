//! Builders for synthetic frames and capture files.
#![allow(dead_code)]

use std::io::{self, Read};

pub const A: [u8; 4] = [192, 0, 2, 1];
pub const B: [u8; 4] = [192, 0, 2, 255];
pub const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const B6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn fold(mut acc: u64) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

fn sum16(data: &[u8]) -> u64 {
    data.chunks(2)
        .map(|c| u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

/// A UDP header and payload; the checksum is computed over the pseudo-header of
/// `src`/`dst` (4 or 16 bytes each).
pub fn udp(src: &[u8], dst: &[u8], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut u = Vec::new();
    u.extend(sport.to_be_bytes());
    u.extend(dport.to_be_bytes());
    u.extend(len.to_be_bytes());
    u.extend([0, 0]);
    u.extend(payload);
    let acc = sum16(src) + sum16(dst) + 17 + u64::from(len) + sum16(&u);
    let mut c = !fold(acc);
    if c == 0 {
        c = 0xFFFF;
    }
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// An IPv4 header (no options) followed by `payload`.
pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, id: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend(total.to_be_bytes());
    h.extend(id.to_be_bytes());
    h.extend(frag.to_be_bytes());
    h.extend([64, proto, 0, 0]);
    h.extend(src);
    h.extend(dst);
    let c = !fold(sum16(&h));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend(payload);
    h
}

/// IPv4 + UDP from A to B.
pub fn ipv4_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    ipv4(A, B, 17, 1, 0, &udp(&A, &B, sport, dport, payload))
}

/// An IPv6 header followed by `payload` (which starts with header `nh`).
pub fn ipv6(src: [u8; 16], dst: [u8; 16], nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend((payload.len() as u16).to_be_bytes());
    h.extend([nh, 64]);
    h.extend(src);
    h.extend(dst);
    h.extend(payload);
    h
}

/// IPv6 + UDP from A6 to B6.
pub fn ipv6_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    ipv6(A6, B6, 17, &udp(&A6, &B6, sport, dport, payload))
}

/// An Ethernet frame.
pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 1, 2, 3, 4, 5];
    f.extend(ethertype.to_be_bytes());
    f.extend(payload);
    f
}

/// An Ethernet frame with VLAN tags (TPIDs in order) before `ethertype`.
pub fn eth_vlan(tpids: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 1, 2, 3, 4, 5];
    for (i, t) in tpids.iter().enumerate() {
        f.extend(t.to_be_bytes());
        f.extend((100 + i as u16).to_be_bytes());
    }
    f.extend(ethertype.to_be_bytes());
    f.extend(payload);
    f
}

/// Linux cooked v1 header.
pub fn sll(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 4, 0, 1, 0, 6, 0, 1, 2, 3, 4, 5, 0, 0];
    f.extend(proto.to_be_bytes());
    f.extend(payload);
    f
}

/// Linux cooked v2 header.
pub fn sll2(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(proto.to_be_bytes());
    f.extend([0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 0, 1, 2, 3, 4, 5, 0, 0]);
    f.extend(payload);
    f
}

/// A classic pcap file.
pub struct Pcap {
    pub buf: Vec<u8>,
    be: bool,
}

impl Pcap {
    pub fn new(linktype: u32, big_endian: bool, nanos: bool) -> Pcap {
        let mut p = Pcap {
            buf: Vec::new(),
            be: big_endian,
        };
        let magic = if nanos { 0xA1B2_3C4Du32 } else { 0xA1B2_C3D4 };
        p.u32(magic);
        p.u16(2);
        p.u16(4);
        p.u32(0);
        p.u32(0);
        p.u32(65_535);
        p.u32(linktype);
        p
    }

    fn u32(&mut self, v: u32) {
        if self.be {
            self.buf.extend(v.to_be_bytes())
        } else {
            self.buf.extend(v.to_le_bytes())
        }
    }

    fn u16(&mut self, v: u16) {
        if self.be {
            self.buf.extend(v.to_be_bytes())
        } else {
            self.buf.extend(v.to_le_bytes())
        }
    }

    pub fn record(self, secs: u32, frac: u32, data: &[u8]) -> Pcap {
        self.record_len(secs, frac, data, data.len() as u32)
    }

    pub fn record_len(mut self, secs: u32, frac: u32, data: &[u8], orig: u32) -> Pcap {
        self.u32(secs);
        self.u32(frac);
        self.u32(data.len() as u32);
        self.u32(orig);
        self.buf.extend(data);
        self
    }

    pub fn bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// A pcapng file.
pub struct PcapNg {
    pub buf: Vec<u8>,
    be: bool,
}

impl PcapNg {
    /// Starts with a section header block.
    pub fn new(big_endian: bool) -> PcapNg {
        let mut p = PcapNg {
            buf: Vec::new(),
            be: big_endian,
        };
        p.shb();
        p
    }

    fn w32(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn w16(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// A block of `btype` with `body` (padded to 4 bytes).
    pub fn block(&mut self, btype: u32, body: &[u8]) -> &mut Self {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        let (t, l) = (self.w32(btype), self.w32(len));
        self.buf.extend(t);
        self.buf.extend(l);
        self.buf.extend(body);
        self.buf.extend(std::iter::repeat_n(0, pad));
        self.buf.extend(l);
        self
    }

    pub fn shb(&mut self) -> &mut Self {
        let mut body = Vec::new();
        body.extend(self.w32(0x1A2B_3C4D));
        body.extend(self.w16(1));
        body.extend(self.w16(0));
        body.extend([0xff; 8]);
        self.block(0x0A0D_0D0A, &body)
    }

    /// Interface description; `tsresol` adds the if_tsresol option.
    pub fn idb(&mut self, linktype: u16, snaplen: u32, tsresol: Option<u8>) -> &mut Self {
        let mut body = Vec::new();
        body.extend(self.w16(linktype));
        body.extend([0, 0]);
        body.extend(self.w32(snaplen));
        if let Some(r) = tsresol {
            body.extend(self.w16(9));
            body.extend(self.w16(1));
            body.extend([r, 0, 0, 0]);
            body.extend([0, 0, 0, 0]); // opt_endofopt
        }
        self.block(1, &body)
    }

    pub fn epb(&mut self, if_id: u32, ts: u64, data: &[u8]) -> &mut Self {
        let mut body = Vec::new();
        body.extend(self.w32(if_id));
        body.extend(self.w32((ts >> 32) as u32));
        body.extend(self.w32(ts as u32));
        body.extend(self.w32(data.len() as u32));
        body.extend(self.w32(data.len() as u32));
        body.extend(data);
        let pad = (4 - data.len() % 4) % 4;
        body.extend(std::iter::repeat_n(0, pad));
        self.block(6, &body)
    }

    pub fn spb(&mut self, data: &[u8]) -> &mut Self {
        let mut body = Vec::new();
        body.extend(self.w32(data.len() as u32));
        body.extend(data);
        self.block(3, &body)
    }

    /// The obsolete Packet Block.
    pub fn pb(&mut self, if_id: u16, ts: u64, data: &[u8]) -> &mut Self {
        let mut body = Vec::new();
        body.extend(self.w16(if_id));
        body.extend(self.w16(0));
        body.extend(self.w32((ts >> 32) as u32));
        body.extend(self.w32(ts as u32));
        body.extend(self.w32(data.len() as u32));
        body.extend(self.w32(data.len() as u32));
        body.extend(data);
        self.block(2, &body)
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.buf.clone()
    }
}

/// A reader that returns at most `chunk` bytes per call (a slow pipe).
pub struct Trickle<'a> {
    pub data: &'a [u8],
    pub chunk: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}
