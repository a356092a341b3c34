//! Shared helpers of the detector tests: a broadcast segment feeding `Engine::process`
//! with numbered frames, and NBNS name registrations (RFC 1002 §4.2.2).
#![allow(dead_code, clippy::unwrap_used)]

use nbdgm_capture::Timestamp;
use nbdgm_watch::{Alert, Engine, Packet, WatchConfig};
use nbdgm_wire::nbns::{self, NbAddress, RData, Record, CLASS_IN, TYPE_NB};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddr};

/// The segment's broadcast address, every packet's destination.
pub const BROADCAST: &str = "198.51.100.255";

/// An engine and the frame counter of the packets fed to it.
pub struct Net {
    pub e: Engine,
    frame: u64,
}

impl Net {
    pub fn new() -> Net {
        Net::with(WatchConfig::default())
    }

    pub fn with(cfg: WatchConfig) -> Net {
        Net {
            e: Engine::new(cfg),
            frame: 0,
        }
    }

    /// A broadcast from `src:port` to port `port`, with an Ethernet source if given.
    pub fn send_from(
        &mut self,
        secs: i64,
        src: &str,
        port: u16,
        mac: Option<[u8; 6]>,
        payload: &[u8],
    ) -> Vec<Alert> {
        self.frame += 1;
        let p = Packet {
            frame: self.frame,
            time: Timestamp { secs, nanos: 0 },
            src: SocketAddr::new(src.parse().unwrap(), port),
            dst: SocketAddr::new(BROADCAST.parse().unwrap(), port),
            src_mac: mac,
            payload,
        };
        let mut out = Vec::new();
        self.e.process(&p, &mut out);
        out
    }

    /// A broadcast on `port`, no Ethernet source.
    pub fn send_port(&mut self, secs: i64, src: &str, port: u16, payload: &[u8]) -> Vec<Alert> {
        self.send_from(secs, src, port, None, payload)
    }

    /// A broadcast on 138.
    pub fn send(&mut self, secs: i64, src: &str, payload: &[u8]) -> Vec<Alert> {
        self.send_port(secs, src, 138, payload)
    }
}

/// A broadcast NAME REGISTRATION REQUEST of `name<suffix>` for `addr` (group or unique).
pub fn nbns_registration(name: &str, suffix: u8, addr: &str, group: bool) -> Vec<u8> {
    let mut p = nbns::Packet::request(
        1,
        0x2800 | nbns::FLAG_RD | nbns::FLAG_B,
        Name::new(name, suffix).unwrap(),
        TYPE_NB,
    );
    p.additional.push(Record {
        name: Name::new(name, suffix).unwrap(),
        rr_type: TYPE_NB,
        rr_class: CLASS_IN,
        ttl: 300_000,
        rdata: RData::Nb(vec![NbAddress {
            flags: if group { nbns::NB_GROUP } else { 0 },
            ip: addr.parse::<Ipv4Addr>().unwrap(),
        }]),
    });
    p.to_bytes().unwrap()
}
