//! Multihomed P/M/H nodes (MS-NBTE §2.2.2, §3.1.4.1, §3.2.5.3): unique names are
//! registered with the NBNS by MULTIHOMED NAME REGISTRATION REQUEST (opcode 0xF), and
//! the NBNS's unicast query challenge is answered with all the host's addresses. The
//! test acts as the NBNS.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_node::sim::{Sim, WirePacket};
use nbdgm_node::{ConflictReason, Event, Interface, NameState, NodeConfig, NodeType, Service};
use nbdgm_wire::nbns::{NbAddress, Opcode, Packet, RData, Record, CLASS_IN, TYPE_NB};
use std::net::{Ipv4Addr, SocketAddrV4};

const NBNS: u8 = 100;

fn other(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 7, last)
}

fn add(sim: &mut Sim, last: u8, t: NodeType, multihomed: Vec<Ipv4Addr>) -> usize {
    let c = NodeConfig {
        node_type: t,
        nbns: vec![ip(NBNS)],
        refresh_min: secs(10.0),
        multihomed,
        ..NodeConfig::new(Interface::parse(&format!("10.0.0.{last}/24")).unwrap())
    };
    sim.add_node(c).unwrap()
}

/// Name-service packets on the wire to `to`.
fn to_ns(sim: &Sim, to: SocketAddrV4) -> Vec<(WirePacket, Packet)> {
    sim.wire
        .iter()
        .filter(|w| w.to == to)
        .filter_map(|w| nbns(w).map(|p| (w.clone(), p)))
        .collect()
}

fn requests_to_nbns(sim: &Sim) -> Vec<Packet> {
    to_ns(sim, sock(NBNS, 137))
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| !p.is_response())
        .collect()
}

fn ns_answer(id: u16, flags: u16, n: &str, ttl: u32, addr: Ipv4Addr) -> Vec<u8> {
    Packet {
        id,
        flags,
        questions: vec![],
        answers: vec![Record {
            name: name(n),
            rr_type: TYPE_NB,
            rr_class: CLASS_IN,
            ttl,
            rdata: RData::Nb(vec![NbAddress { flags: 0, ip: addr }]),
        }],
        authority: vec![],
        additional: vec![],
        trailing: vec![],
    }
    .to_bytes()
    .unwrap()
}

fn wack(id: u16, n: &str, ttl: u32) -> Vec<u8> {
    Packet {
        id,
        flags: 0xBC00,
        questions: vec![],
        answers: vec![Record {
            name: name(n),
            rr_type: TYPE_NB,
            rr_class: CLASS_IN,
            ttl,
            rdata: RData::Wack(0x7900),
        }],
        authority: vec![],
        additional: vec![],
        trailing: vec![],
    }
    .to_bytes()
    .unwrap()
}

fn from_nbns(sim: &mut Sim, i: usize, bytes: &[u8]) {
    sim.inject(i, sock(NBNS, 137), Service::Name, false, bytes);
}

fn nb_addrs(r: &Record) -> Vec<(u16, Ipv4Addr)> {
    match &r.rdata {
        RData::Nb(list) => list.iter().map(|a| (a.flags, a.ip)).collect(),
        other => panic!("not NB rdata: {other:?}"),
    }
}

/// The last request for `n` sent to the NBNS.
fn last_request(sim: &Sim, n: &str) -> Packet {
    requests_to_nbns(sim)
        .into_iter()
        .rfind(|p| p.questions.first().is_some_and(|q| q.name == name(n)))
        .unwrap()
}

#[test]
fn p_and_h_nodes_register_unique_names_by_multihomed_registration() {
    for (t, ont) in [(NodeType::P, 0x2000u16), (NodeType::H, 0x6000)] {
        let mut sim = net(0);
        let n = add(&mut sim, 1, t, vec![other(1), other(2)]);
        sim.register(n, "HOST<00>", false).unwrap();
        sim.register(n, "WORKGROUP<00>", true).unwrap();
        sim.run_for(secs(0.01));

        let uniq = last_request(&sim, "HOST<00>");
        assert_eq!(uniq.flags, 0x7900, "{t:?}: opcode 0xF, RD, no B");
        assert_eq!(uniq.opcode(), Opcode::MultiHomedRegistration);
        assert_eq!(uniq.additional.len(), 1);
        assert_eq!(
            nb_addrs(&uniq.additional[0]),
            vec![(ont, ip(1))],
            "{t:?}: only this interface's address is registered"
        );
        assert_eq!(uniq.additional[0].ttl, 300_000);

        let grp = last_request(&sim, "WORKGROUP<00>");
        assert_eq!(grp.flags, 0x2900, "{t:?}: group names keep opcode 5");
        assert_eq!(nb_addrs(&grp.additional[0]), vec![(ont | 0x8000, ip(1))]);

        // No broadcast registration on P/H with a reachable NBNS.
        assert!(sim.sent_by(n).iter().all(|w| !w.broadcast), "{t:?}");

        // WACK, then positive (echoing opcode 0xF): active.
        from_nbns(&mut sim, n, &wack(uniq.id, "HOST<00>", 5));
        sim.run_for(secs(2.0));
        let host_reqs = requests_to_nbns(&sim)
            .into_iter()
            .filter(|p| p.questions[0].name == name("HOST<00>"))
            .count();
        assert_eq!(host_reqs, 1, "{t:?}: the WACK stopped retransmission");
        from_nbns(
            &mut sim,
            n,
            &ns_answer(uniq.id, 0xFD80, "HOST<00>", 40, ip(1)),
        );
        from_nbns(
            &mut sim,
            n,
            &ns_answer(grp.id, 0xAD80, "WORKGROUP<00>", 40, ip(1)),
        );
        assert_eq!(state(&sim, n, "HOST<00>"), Some(NameState::Active), "{t:?}");
        assert_eq!(state(&sim, n, "WORKGROUP<00>"), Some(NameState::Active));
        let st = sim.node(n).stats();
        assert_eq!(st.multihomed_registrations_sent, 1, "{t:?}");
        // WORKGROUP<00> was retransmitted once (no WACK for it).
        assert_eq!(st.nbns_registration_requests_sent, 3);
        assert_eq!(st.nbns_registrations_accepted, 2);
        assert_eq!(st.wacks_received, 1);

        // Refresh stays a NAME REFRESH REQUEST (opcode 8) with our address only.
        sim.run_for(secs(21.0));
        let refresh = last_request(&sim, "HOST<00>");
        assert_eq!(refresh.flags, 0x4000, "{t:?}: refresh keeps opcode 8");
        assert_eq!(nb_addrs(&refresh.additional[0]), vec![(ont, ip(1))]);
        from_nbns(
            &mut sim,
            n,
            &ns_answer(refresh.id, 0xC580, "HOST<00>", 40, ip(1)),
        );
        assert_eq!(sim.node(n).stats().refreshes_succeeded, 1, "{t:?}");
        assert_eq!(sim.node(n).stats().multihomed_registrations_sent, 1);
    }
}

#[test]
fn a_positive_answer_with_opcode_5_or_naming_another_of_our_addresses_activates() {
    let mut sim = net(0);
    let n = add(&mut sim, 1, NodeType::P, vec![other(1)]);
    sim.register(n, "HOST<00>", false).unwrap();
    sim.run_for(secs(0.01));
    let req = last_request(&sim, "HOST<00>");
    // Without RA, naming our other address: not an END-NODE CHALLENGE.
    from_nbns(
        &mut sim,
        n,
        &ns_answer(req.id, 0xAD00, "HOST<00>", 40, other(1)),
    );
    assert_eq!(state(&sim, n, "HOST<00>"), Some(NameState::Active));
    assert_eq!(sim.node(n).stats().challenges_received, 0);
}

#[test]
fn negative_multihomed_registration_is_a_conflict() {
    for t in [NodeType::P, NodeType::H] {
        let mut sim = net(0);
        let n = add(&mut sim, 1, t, vec![other(1)]);
        sim.register(n, "HOST<00>", false).unwrap();
        sim.run_for(secs(0.01));
        let req = last_request(&sim, "HOST<00>");
        assert_eq!(req.flags, 0x7900);
        from_nbns(
            &mut sim,
            n,
            &ns_answer(req.id, 0xFD86, "HOST<00>", 0, ip(9)),
        );
        assert_eq!(
            state(&sim, n, "HOST<00>"),
            Some(NameState::Conflict),
            "{t:?}"
        );
        assert!(sim.events(n).iter().any(|e| matches!(
            e,
            Event::NameConflict {
                reason: ConflictReason::RegistrationRefused,
                ..
            }
        )));
        assert_eq!(sim.node(n).stats().nbns_registrations_refused, 1);
        // H: a refusal is final, no broadcast fallback.
        assert!(sim.sent_by(n).iter().all(|w| !w.broadcast), "{t:?}");
    }
}

#[test]
fn m_node_broadcasts_opcode_5_then_registers_multihomed_with_the_nbns() {
    let mut sim = net(0);
    let m = add(&mut sim, 3, NodeType::M, vec![other(3)]);
    sim.register(m, "MHOST<00>", false).unwrap();
    sim.run_for(secs(1.0));
    let bcast: Vec<Packet> = sim
        .sent_by(m)
        .iter()
        .filter(|w| w.broadcast)
        .filter_map(nbns)
        .collect();
    assert!(!bcast.is_empty());
    assert!(
        bcast.iter().all(|p| p.flags == 0x2910),
        "broadcast stays opcode 5"
    );
    let req = last_request(&sim, "MHOST<00>");
    assert_eq!(req.flags, 0x7900);
    from_nbns(
        &mut sim,
        m,
        &ns_answer(req.id, 0xFD80, "MHOST<00>", 40, ip(3)),
    );
    assert_eq!(state(&sim, m, "MHOST<00>"), Some(NameState::Active));
}

/// Register `n` (unique) and accept it.
fn register_accepted(sim: &mut Sim, i: usize, n: &str) {
    sim.register(i, n, false).unwrap();
    sim.run_for(secs(0.01));
    let req = last_request(sim, n);
    let me = sim.node(i).config().interface.addr;
    from_nbns(sim, i, &ns_answer(req.id, 0xFD80, n, 40, me));
    assert_eq!(state(sim, i, n), Some(NameState::Active));
}

fn responses_to(sim: &Sim, to: SocketAddrV4, id: u16) -> Vec<Packet> {
    to_ns(sim, to)
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| p.is_response() && p.id == id)
        .collect()
}

#[test]
fn the_nbns_query_challenge_is_answered_with_all_addresses() {
    for t in [NodeType::P, NodeType::H] {
        let mut sim = net(0);
        let n = add(&mut sim, 1, t, vec![other(1), ip(1), other(2), other(1)]);
        register_accepted(&mut sim, n, "HOST<20>");
        sim.register(n, "WORKGROUP<00>", true).unwrap();
        sim.run_for(secs(0.01));
        let grp = last_request(&sim, "WORKGROUP<00>");
        from_nbns(
            &mut sim,
            n,
            &ns_answer(grp.id, 0xAD80, "WORKGROUP<00>", 40, ip(1)),
        );
        let ont = if t == NodeType::P { 0x2000 } else { 0x6000 };

        // Unicast challenge from the NBNS (RD clear, as WINS sends it).
        from_nbns(
            &mut sim,
            n,
            &query(0x5151, 0x0000, &name("HOST<20>"), false),
        );
        let r = responses_to(&sim, sock(NBNS, 137), 0x5151);
        assert_eq!(r.len(), 1, "{t:?}");
        assert_eq!(r[0].flags, 0x8580);
        assert_eq!(
            nb_addrs(&r[0].answers[0]),
            vec![(ont, ip(1)), (ont, other(1)), (ont, other(2))],
            "{t:?}: own address first, then the others, without duplicates"
        );
        assert_eq!(sim.node(n).stats().multihomed_query_answers, 1);

        // A unicast query with RD from anyone else is answered the same way.
        sim.inject(
            n,
            sock(7, 40000),
            Service::Name,
            false,
            &query(0x5252, 0x0100, &name("HOST<20>"), false),
        );
        let r = responses_to(&sim, sock(7, 40000), 0x5252);
        assert_eq!(nb_addrs(&r[0].answers[0]).len(), 3, "{t:?}");

        // Broadcast query (H only: a P-node ignores broadcasts): our own address only.
        if t == NodeType::H {
            sim.inject(
                n,
                sock(7, 137),
                Service::Name,
                true,
                &query(0x5353, 0x0110, &name("HOST<20>"), false),
            );
            let r = responses_to(&sim, sock(7, 137), 0x5353);
            assert_eq!(r.len(), 1, "{t:?}");
            assert_eq!(nb_addrs(&r[0].answers[0]), vec![(ont, ip(1))]);
        }
        // Group name: our own address only.
        from_nbns(
            &mut sim,
            n,
            &query(0x5454, 0x0000, &name("WORKGROUP<00>"), false),
        );
        let r = responses_to(&sim, sock(NBNS, 137), 0x5454);
        assert_eq!(nb_addrs(&r[0].answers[0]), vec![(ont | 0x8000, ip(1))]);
        assert_eq!(sim.node(n).stats().multihomed_query_answers, 2);
    }
}

#[test]
fn the_challenge_answer_is_cut_to_the_reply_cap() {
    let mut sim = net(0);
    let many: Vec<Ipv4Addr> = (1..=24).map(other).collect();
    let c = NodeConfig {
        node_type: NodeType::P,
        nbns: vec![ip(NBNS)],
        multihomed: many,
        reply_limit_factor: 2,
        ..NodeConfig::new(Interface::parse("10.0.0.1/24").unwrap())
    };
    let n = sim.add_node(c).unwrap();
    register_accepted(&mut sim, n, "HOST<20>");
    let q = query(0x6161, 0x0000, &name("HOST<20>"), false);
    from_nbns(&mut sim, n, &q);
    let sent: Vec<WirePacket> = sim
        .wire
        .iter()
        .filter(|w| w.to == sock(NBNS, 137))
        .cloned()
        .collect();
    let w = sent.last().unwrap();
    assert!(w.bytes.len() <= 2 * q.len());
    let r = Packet::parse(&w.bytes).unwrap();
    assert_eq!(r.id, 0x6161);
    let addrs = nb_addrs(&r.answers[0]);
    assert!(addrs.len() > 1 && addrs.len() < 25, "{}", addrs.len());
    assert_eq!(addrs[0].1, ip(1));
    assert_eq!(addrs[1].1, other(1));
    assert_eq!(sim.node(n).stats().dropped.total(), 0);
}

#[test]
fn without_multihomed_nothing_changes() {
    for t in [NodeType::P, NodeType::H] {
        let mut sim = net(0);
        let n = add(&mut sim, 1, t, vec![]);
        sim.register(n, "HOST<00>", false).unwrap();
        sim.run_for(secs(0.01));
        let req = last_request(&sim, "HOST<00>");
        assert_eq!(req.flags, 0x2900, "{t:?}");
        from_nbns(
            &mut sim,
            n,
            &ns_answer(req.id, 0xAD80, "HOST<00>", 40, ip(1)),
        );
        from_nbns(
            &mut sim,
            n,
            &query(0x7171, 0x0000, &name("HOST<00>"), false),
        );
        let r = responses_to(&sim, sock(NBNS, 137), 0x7171);
        assert_eq!(nb_addrs(&r[0].answers[0]).len(), 1);
        let st = sim.node(n).stats();
        assert_eq!(st.multihomed_registrations_sent, 0);
        assert_eq!(st.multihomed_query_answers, 0);
    }
    // Only our own address in `multihomed`: single-homed.
    let mut sim = net(0);
    let n = add(&mut sim, 1, NodeType::P, vec![ip(1)]);
    sim.register(n, "HOST<00>", false).unwrap();
    sim.run_for(secs(0.01));
    assert_eq!(last_request(&sim, "HOST<00>").flags, 0x2900);
}

#[test]
fn b_nodes_and_h_nodes_without_nbns_ignore_multihomed() {
    for t in [NodeType::B, NodeType::H] {
        let mut sim = net(0);
        let c = NodeConfig {
            node_type: t,
            multihomed: vec![other(1)],
            ..NodeConfig::new(Interface::parse("10.0.0.1/24").unwrap())
        };
        let n = sim.add_node(c).unwrap();
        register_all(&mut sim, n, &[("BHOST<00>", false)]);
        assert!(with_flags(&sim, 0x7900).is_empty(), "{t:?}");
        assert!(!with_flags(&sim, 0x2910).is_empty());
        sim.inject(
            n,
            sock(7, 137),
            Service::Name,
            false,
            &query(0x8181, 0x0000, &name("BHOST<00>"), false),
        );
        let r = responses_to(&sim, sock(7, 137), 0x8181);
        let addrs = nb_addrs(&r[0].answers[0]);
        assert_eq!(addrs.len(), 1, "{t:?}");
        assert_eq!(addrs[0].1, ip(1));
    }
}
