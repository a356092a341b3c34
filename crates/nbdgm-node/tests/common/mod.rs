//! Helpers shared by the simulator tests.
#![allow(dead_code)]

use nbdgm_node::sim::{Sim, SimConfig, WirePacket};
use nbdgm_node::{Event, Name, NameState, Service};
use nbdgm_wire::nbns::{Packet, Question, RData, Record, CLASS_IN, TYPE_NB, TYPE_NBSTAT};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

pub fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, last)
}

pub fn sock(last: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip(last), port)
}

pub fn name(s: &str) -> Name {
    s.parse().unwrap()
}

/// `n` nodes 10.0.0.1 .. 10.0.0.n on 10.0.0.0/24.
pub fn net(n: u8) -> Sim {
    net_with(n, SimConfig::default())
}

pub fn net_with(n: u8, cfg: SimConfig) -> Sim {
    let mut sim = Sim::new(cfg);
    for i in 1..=n {
        sim.add(&format!("10.0.0.{i}/24"));
    }
    sim
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Register names on node `i` and run until they are active.
pub fn register_all(sim: &mut Sim, i: usize, names: &[(&str, bool)]) {
    for (n, g) in names {
        sim.register(i, n, *g).unwrap();
    }
    sim.run_for(secs(1.0));
    for (n, _) in names {
        assert_eq!(state(sim, i, n), Some(NameState::Active), "{n} on node {i}");
    }
}

pub fn state(sim: &Sim, i: usize, n: &str) -> Option<NameState> {
    let n = name(n);
    sim.node(i)
        .names()
        .into_iter()
        .find(|e| e.name == n)
        .map(|e| e.state)
}

pub fn nbns(p: &WirePacket) -> Option<Packet> {
    (p.service == Service::Name)
        .then(|| Packet::parse(&p.bytes).ok())
        .flatten()
}

/// Name-service packets on the wire with this flags word.
pub fn with_flags(sim: &Sim, flags: u16) -> Vec<(WirePacket, Packet)> {
    sim.wire
        .iter()
        .filter_map(|w| nbns(w).map(|p| (w.clone(), p)))
        .filter(|(_, p)| p.flags == flags)
        .collect()
}

pub fn query(id: u16, flags: u16, n: &Name, nbstat: bool) -> Vec<u8> {
    Packet {
        id,
        flags,
        questions: vec![Question {
            name: n.clone(),
            qtype: if nbstat { TYPE_NBSTAT } else { TYPE_NB },
            qclass: CLASS_IN,
        }],
        answers: vec![],
        authority: vec![],
        additional: vec![],
        trailing: vec![],
    }
    .to_bytes()
    .unwrap()
}

pub fn response(id: u16, flags: u16, n: &Name, nb_flags: u16, addr: Ipv4Addr) -> Vec<u8> {
    Packet {
        id,
        flags,
        questions: vec![],
        answers: vec![Record {
            name: n.clone(),
            rr_type: TYPE_NB,
            rr_class: CLASS_IN,
            ttl: 0,
            rdata: RData::Nb(vec![nbdgm_wire::nbns::NbAddress {
                flags: nb_flags,
                ip: addr,
            }]),
        }],
        authority: vec![],
        additional: vec![],
        trailing: vec![],
    }
    .to_bytes()
    .unwrap()
}

pub fn conflicts(sim: &Sim, i: usize) -> Vec<Event> {
    sim.events(i)
        .iter()
        .filter(|e| matches!(e, Event::NameConflict { .. }))
        .cloned()
        .collect()
}
