//! Test helpers: request builders (RFC 1002 §4.2.2–§4.2.12) and a driver that
//! parses what the server sends.
#![allow(dead_code)]

use nbdgm_nbns::{NbnsConfig, NbnsEvent, NbnsServer};
use nbdgm_wire::nbns::{
    NbAddress, Packet, Question, RData, Record, CLASS_IN, TYPE_NB, TYPE_NBSTAT,
};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

pub const REG: u16 = 0x2900; // opcode 5, RD
pub const MH_REG: u16 = 0x7900; // opcode 15, RD
pub const REFRESH8: u16 = 0x4000; // opcode 8
pub const REFRESH9: u16 = 0x4800; // opcode 9
pub const RELEASE: u16 = 0x3000; // opcode 6
pub const H: u16 = 0x6000; // ONT = H
pub const G: u16 = 0x8000;

pub fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, last)
}

pub fn src(last: u8) -> SocketAddrV4 {
    SocketAddrV4::new(ip(last), 137)
}

pub fn name(n: &str, suffix: u8) -> Name {
    Name::new(n, suffix).unwrap()
}

pub fn nb_request(
    id: u16,
    flags: u16,
    name: &Name,
    nb_flags: u16,
    addr: Ipv4Addr,
    ttl: u32,
) -> Vec<u8> {
    Packet {
        id,
        flags,
        questions: vec![Question {
            name: name.clone(),
            qtype: TYPE_NB,
            qclass: CLASS_IN,
        }],
        answers: vec![],
        authority: vec![],
        additional: vec![Record {
            name: name.clone(),
            rr_type: TYPE_NB,
            rr_class: CLASS_IN,
            ttl,
            rdata: RData::Nb(vec![NbAddress {
                flags: nb_flags,
                ip: addr,
            }]),
        }],
        trailing: vec![],
    }
    .to_bytes()
    .unwrap()
}

pub fn query(id: u16, name: &Name) -> Vec<u8> {
    Packet::request(id, 0x0100, name.clone(), TYPE_NB)
        .to_bytes()
        .unwrap()
}

pub fn node_status(id: u16, name: &Name) -> Vec<u8> {
    Packet::request(id, 0x0000, name.clone(), TYPE_NBSTAT)
        .to_bytes()
        .unwrap()
}

/// What an end node answers to a challenge query: positive with `addrs` or NAM_ERR.
pub fn challenge_answer(id: u16, name: &Name, addrs: Option<Vec<Ipv4Addr>>) -> Vec<u8> {
    let (flags, rec) = match addrs {
        Some(a) => (
            0x8500,
            Record {
                name: name.clone(),
                rr_type: TYPE_NB,
                rr_class: CLASS_IN,
                ttl: 300_000,
                rdata: RData::Nb(a.into_iter().map(|ip| NbAddress { flags: H, ip }).collect()),
            },
        ),
        None => (
            0x8503,
            Record {
                name: name.clone(),
                rr_type: nbdgm_wire::nbns::TYPE_NULL,
                rr_class: CLASS_IN,
                ttl: 0,
                rdata: RData::Raw(vec![]),
            },
        ),
    };
    Packet {
        id,
        flags,
        questions: vec![],
        answers: vec![rec],
        authority: vec![],
        additional: vec![],
        trailing: vec![],
    }
    .to_bytes()
    .unwrap()
}

pub struct Harness {
    pub s: NbnsServer,
    pub now: Instant,
}

impl Harness {
    pub fn new(cfg: NbnsConfig) -> Self {
        let now = Instant::now();
        Harness {
            s: NbnsServer::new(cfg, now).unwrap(),
            now,
        }
    }

    pub fn default() -> Self {
        Self::new(NbnsConfig::default())
    }

    /// Feed one packet, return everything sent (parsed).
    pub fn send(&mut self, from: SocketAddrV4, bytes: &[u8]) -> Vec<(SocketAddrV4, Packet)> {
        self.s.handle(self.now, from, bytes);
        self.drain()
    }

    pub fn drain(&mut self) -> Vec<(SocketAddrV4, Packet)> {
        let mut out = vec![];
        while let Some(t) = self.s.poll_transmit() {
            out.push((
                t.to,
                Packet::parse(&t.bytes).expect("server sent a bad packet"),
            ));
        }
        out
    }

    pub fn events(&mut self) -> Vec<NbnsEvent> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    pub fn advance(&mut self, d: Duration) -> Vec<(SocketAddrV4, Packet)> {
        self.now += d;
        self.s.handle_timeout(self.now);
        self.drain()
    }

    /// Register and expect a positive answer.
    pub fn register(&mut self, n: &Name, nb_flags: u16, last: u8) {
        let out = self.send(
            src(last),
            &nb_request(1, REG, n, nb_flags, ip(last), 300_000),
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].1.flags, 0xAD80, "{out:?}");
    }

    pub fn addresses(&self, n: &Name) -> Vec<Ipv4Addr> {
        self.s
            .lookup(n, self.now)
            .map(|e| e.addresses)
            .unwrap_or_default()
    }
}

pub fn nb_addrs(p: &Packet) -> Vec<NbAddress> {
    match &p.answers[0].rdata {
        RData::Nb(v) => v.clone(),
        other => panic!("not NB: {other:?}"),
    }
}
