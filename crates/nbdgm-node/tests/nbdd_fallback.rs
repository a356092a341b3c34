//! The RFC's alternative after an NBDD refusal (RFC 1001 §17.2; RFC 1002 §5.3.2): with
//! `nbdd_refused_unicast` the sender resolves the group itself and unicasts one copy
//! per member, bounded in members and rate-gated; off (the default), the refusal
//! behaves as before (M/H broadcast, P fails).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_node::sim::Sim;
use nbdgm_node::{
    Event, Interface, NodeConfig, NodeType, SendError, SendMode, SendRequest, Service,
};
use nbdgm_wire::datagram::{Datagram, Flags, MsgType};
use nbdgm_wire::nbns::{NbAddress, Packet, RData, Record, CLASS_IN, TYPE_NB};
use std::net::{Ipv4Addr, SocketAddrV4};

const NBNS: u8 = 100;

fn add(sim: &mut Sim, last: u8, t: NodeType, on: bool) -> usize {
    let c = NodeConfig {
        node_type: t,
        nbns: vec![ip(NBNS)],
        allow_unregistered_source: true,
        nbdd_refused_unicast: on,
        nbdd_refused_unicast_max_members: 2,
        nbdd_refused_unicast_per_s: 1,
        ..NodeConfig::new(Interface::parse(&format!("10.0.0.{last}/24")).unwrap())
    };
    sim.add_node(c).unwrap()
}

fn send_group(sim: &mut Sim, i: usize) {
    sim.send(
        i,
        SendRequest {
            source: name("SENDER<00>"),
            destination: name("TEAM<00>"),
            mode: SendMode::Group,
            data: b"hello".to_vec(),
        },
    )
    .unwrap();
}

/// Datagrams on the wire sent by node `i`, with their destinations.
fn dgms_by(sim: &Sim, i: usize) -> Vec<(SocketAddrV4, Datagram)> {
    sim.sent_by(i)
        .into_iter()
        .filter(|w| w.service == Service::Datagram)
        .map(|w| (w.to, Datagram::parse(&w.bytes).unwrap()))
        .collect()
}

/// Answer node `i`'s latest DATAGRAM QUERY REQUEST with NEGATIVE.
fn refuse(sim: &mut Sim, i: usize) {
    let (_, q) = dgms_by(sim, i)
        .into_iter()
        .rfind(|(_, d)| d.msg_type == MsgType::QueryRequest)
        .unwrap();
    let d: Datagram = Datagram {
        msg_type: MsgType::NegativeQueryResponse,
        flags: Flags::single(NodeType::B),
        id: q.id,
        source_ip: ip(NBNS),
        source_port: 138,
        body: q.body.clone(),
    };
    let b = d.to_bytes().unwrap();
    sim.inject(i, sock(NBNS, 138), Service::Datagram, false, &b);
}

/// NAME QUERY requests node `i` sent to the NBNS.
fn name_queries(sim: &Sim, i: usize) -> Vec<Packet> {
    sim.sent_by(i)
        .iter()
        .filter(|w| w.to == sock(NBNS, 137))
        .filter_map(nbns)
        .collect()
}

/// The NBNS answers node `i`'s latest query: TEAM<00> is a group at `members`.
fn answer_group(sim: &mut Sim, i: usize, members: &[Ipv4Addr]) {
    let q = name_queries(sim, i).pop().unwrap();
    let p = Packet {
        id: q.id,
        flags: 0x8580,
        questions: vec![],
        answers: vec![Record {
            name: name("TEAM<00>"),
            rr_type: TYPE_NB,
            rr_class: CLASS_IN,
            ttl: 300,
            rdata: RData::Nb(
                members
                    .iter()
                    .map(|&ip| NbAddress { flags: 0x8000, ip })
                    .collect(),
            ),
        }],
        authority: vec![],
        additional: vec![],
        trailing: vec![],
    };
    let b = p.to_bytes().unwrap();
    sim.inject(i, sock(NBNS, 137), Service::Name, false, &b);
}

fn sends(sim: &Sim, i: usize) -> Vec<Result<SocketAddrV4, SendError>> {
    sim.events(i)
        .iter()
        .filter_map(|e| match e {
            Event::SendDone { result, .. } => Some(result.clone().map(|s| s.to)),
            _ => None,
        })
        .collect()
}

#[test]
fn refused_group_datagram_is_unicast_to_the_members() {
    let mut sim = net(0);
    let p = add(&mut sim, 2, NodeType::P, true);
    send_group(&mut sim, p);
    refuse(&mut sim, p);
    assert_eq!(
        name_queries(&sim, p).len(),
        1,
        "the node resolves the group"
    );
    // Ourselves and the limited broadcast are skipped; three members, two kept.
    let members = [ip(2), ip(9), Ipv4Addr::BROADCAST, ip(7), ip(8), ip(7)];
    answer_group(&mut sim, p, &members);
    let copies: Vec<_> = dgms_by(&sim, p)
        .into_iter()
        .filter(|(_, d)| d.msg_type == MsgType::DirectGroup)
        .collect();
    let to: Vec<_> = copies.iter().map(|(t, _)| *t).collect();
    assert_eq!(to, vec![sock(7, 138), sock(8, 138)]);
    for (_, d) in &copies {
        assert_eq!(d.destination_name(), Some(&name("TEAM<00>")));
        assert_eq!(d.user_data(), Some(&b"hello"[..]));
    }
    assert_eq!(sends(&sim, p), vec![Ok(sock(7, 138))]);
    let s = sim.node(p).stats();
    assert_eq!((s.nbdd_member_fanouts, s.nbdd_member_copies), (1, 2));
    assert_eq!(s.nbdd_member_truncated, 1);
    assert!(sim.sent_by(p).iter().all(|w| !w.broadcast));

    // Again at once: the burst (2 copies) is spent, so the rate gate sends it the
    // usual way, which for a P-node is a failure.
    send_group(&mut sim, p);
    refuse(&mut sim, p);
    if name_queries(&sim, p).len() == 2 {
        answer_group(&mut sim, p, &members);
    }
    assert_eq!(sim.node(p).stats().nbdd_member_rate_limited, 1);
    assert_eq!(
        sends(&sim, p).last(),
        Some(&Err(SendError::NbddUnavailable))
    );
    assert_eq!(sim.node(p).stats().nbdd_member_copies, 2);
}

#[test]
fn without_the_option_or_members_the_refusal_falls_back() {
    let mut sim = net(0);
    // Off (the default): P fails, M broadcasts; no name query, no unicast copy.
    let p = add(&mut sim, 2, NodeType::P, false);
    let m = add(&mut sim, 3, NodeType::M, false);
    assert!(!NodeConfig::new(Interface::parse("10.0.0.9/24").unwrap()).nbdd_refused_unicast);
    for i in [p, m] {
        send_group(&mut sim, i);
        refuse(&mut sim, i);
        assert!(name_queries(&sim, i).is_empty());
    }
    assert_eq!(sends(&sim, p), vec![Err(SendError::NbddUnavailable)]);
    assert_eq!(sends(&sim, m), vec![Ok(sock(255, 138))]);
    // On, but the NBNS answers with the broadcast address only (WINS for most
    // groups): nobody to unicast to, so the M-node broadcasts.
    let m2 = add(&mut sim, 4, NodeType::M, true);
    send_group(&mut sim, m2);
    refuse(&mut sim, m2);
    sim.run_for(secs(0.8)); // an M-node asks by broadcast first, then the NBNS
    answer_group(&mut sim, m2, &[Ipv4Addr::BROADCAST]);
    assert_eq!(sends(&sim, m2), vec![Ok(sock(255, 138))]);
    let s = sim.node(m2).stats();
    assert_eq!((s.nbdd_member_none, s.nbdd_member_fanouts), (1, 0));
    assert_eq!(s.nbdd_fallbacks, 1);
}
