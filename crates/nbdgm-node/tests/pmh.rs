//! P-, M- and H-nodes on the simulated subnet, with the test acting as the NBNS and
//! the NBDD (RFC 1002 §5.1.2, §5.1.3, §5.3.2; MS-NBTE §3.1; DIGEST §3.2, §3.2a, §4.5).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_node::sim::{Sim, WirePacket};
use nbdgm_node::{
    ConflictReason, Event, Interface, LookupError, LookupTarget, NameState, NodeConfig, NodeType,
    SendError, SendMode, SendRequest, Service,
};
use nbdgm_wire::datagram::{Body, Datagram, Flags, MsgType};
use nbdgm_wire::nbns::{NbAddress, Packet, RData, Record, CLASS_IN, TYPE_NB, TYPE_NULL};
use std::net::{Ipv4Addr, SocketAddrV4};

const NBNS: u8 = 100;
const NBNS2: u8 = 101;

fn add(sim: &mut Sim, last: u8, t: NodeType, nbns: &[u8]) -> usize {
    let c = NodeConfig {
        node_type: t,
        nbns: nbns.iter().map(|&l| ip(l)).collect(),
        refresh_min: secs(10.0),
        allow_unregistered_source: true,
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

fn broadcasts_by(sim: &Sim, i: usize) -> Vec<WirePacket> {
    sim.sent_by(i).into_iter().filter(|w| w.broadcast).collect()
}

fn record(n: &str, ttl: u32, rdata: RData) -> Record {
    Record {
        name: name(n),
        rr_type: TYPE_NB,
        rr_class: CLASS_IN,
        ttl,
        rdata,
    }
}

fn ns_packet(id: u16, flags: u16, answer: Record) -> Vec<u8> {
    Packet {
        id,
        flags,
        questions: vec![],
        answers: vec![answer],
        authority: vec![],
        additional: vec![],
        trailing: vec![],
    }
    .to_bytes()
    .unwrap()
}

/// A registration-type response from the NBNS about `n` at `addr`.
fn ns_answer(id: u16, flags: u16, n: &str, ttl: u32, addr: Ipv4Addr) -> Vec<u8> {
    ns_packet(
        id,
        flags,
        record(n, ttl, RData::Nb(vec![NbAddress { flags: 0, ip: addr }])),
    )
}

fn wack(id: u16, n: &str, ttl: u32) -> Vec<u8> {
    ns_packet(id, 0xBC00, record(n, ttl, RData::Wack(0x2900)))
}

fn from_nbns(sim: &mut Sim, i: usize, server: u8, bytes: &[u8]) {
    sim.inject(i, sock(server, 137), Service::Name, false, bytes);
}

fn events_of<T>(sim: &Sim, i: usize, f: impl Fn(&Event) -> Option<T>) -> Vec<T> {
    sim.events(i).iter().filter_map(f).collect()
}

fn registered(sim: &Sim, i: usize) -> Vec<String> {
    events_of(sim, i, |e| match e {
        Event::NameRegistered { name, .. } => Some(name.to_string()),
        _ => None,
    })
}

fn lookups(sim: &Sim, i: usize) -> Vec<Result<Vec<Ipv4Addr>, LookupError>> {
    events_of(sim, i, |e| match e {
        Event::LookupDone { result, .. } => {
            Some(result.clone().map(|v| v.iter().map(|a| a.addr).collect()))
        }
        _ => None,
    })
}

fn sends(sim: &Sim, i: usize) -> Vec<Result<SocketAddrV4, SendError>> {
    events_of(sim, i, |e| match e {
        Event::SendDone { result, .. } => Some(result.clone().map(|s| s.to)),
        _ => None,
    })
}

/// Register `n` on a P/H node and accept it at once.
fn register_with_nbns(sim: &mut Sim, i: usize, n: &str, ttl: u32) {
    sim.register(i, n, false).unwrap();
    sim.run_for(secs(0.01));
    let (_, req) = to_ns(sim, sock(NBNS, 137)).pop().unwrap();
    let me = sim.node(i).config().interface.addr;
    from_nbns(sim, i, NBNS, &ns_answer(req.id, 0xAD80, n, ttl, me));
    assert_eq!(state(sim, i, n), Some(NameState::Active));
}

#[test]
fn p_node_registration_wack_then_positive_then_refresh() {
    let mut sim = net(0);
    let p = add(&mut sim, 1, NodeType::P, &[NBNS]);
    sim.register(p, "FRED<00>", false).unwrap();
    let reqs = to_ns(&sim, sock(NBNS, 137));
    assert_eq!(reqs.len(), 1);
    let (w, req) = &reqs[0];
    assert!(!w.broadcast);
    assert_eq!(req.flags, 0x2900, "unicast registration: RD, no B");
    let RData::Nb(a) = &req.additional[0].rdata else {
        panic!()
    };
    assert_eq!(a[0].flags, 0x2000, "ONT = P");
    assert_eq!(a[0].ip, ip(1));
    // WACK: keep waiting 5 s instead of retransmitting after 1.5 s.
    sim.run_for(secs(1.0));
    from_nbns(&mut sim, p, NBNS, &wack(req.id, "FRED<00>", 5));
    sim.run_for(secs(4.5));
    assert_eq!(to_ns(&sim, sock(NBNS, 137)).len(), 1);
    assert_eq!(state(&sim, p, "FRED<00>"), Some(NameState::Registering));
    from_nbns(
        &mut sim,
        p,
        NBNS,
        &ns_answer(req.id, 0xAD80, "FRED<00>", 40, ip(1)),
    );
    assert_eq!(state(&sim, p, "FRED<00>"), Some(NameState::Active));
    assert_eq!(registered(&sim, p), vec!["FRED<00>"]);
    let s = sim.node(p).stats();
    assert_eq!(s.wacks_received, 1);
    assert_eq!(s.nbns_registrations_accepted, 1);
    // Refresh after max(TTL/2 = 20 s, refresh_min = 10 s).
    sim.run_for(secs(19.9));
    assert_eq!(to_ns(&sim, sock(NBNS, 137)).len(), 1);
    sim.run_for(secs(0.2));
    let reqs = to_ns(&sim, sock(NBNS, 137));
    assert_eq!(reqs.len(), 2);
    let (_, refresh) = &reqs[1];
    assert_eq!(refresh.flags, 0x4000, "NAME REFRESH REQUEST, opcode 8");
    assert_eq!(refresh.questions[0].name, name("FRED<00>"));
    from_nbns(
        &mut sim,
        p,
        NBNS,
        &ns_answer(refresh.id, 0xAD80, "FRED<00>", 40, ip(1)),
    );
    assert_eq!(sim.node(p).stats().refreshes_succeeded, 1);
    // And again 20 s later.
    sim.run_for(secs(20.1));
    assert_eq!(sim.node(p).stats().refreshes_sent, 2);
    // A P-node never broadcasts.
    assert!(broadcasts_by(&sim, p).is_empty());
    assert_eq!(registered(&sim, p).len(), 1);
}

#[test]
fn negative_registration_and_negative_refresh_are_conflicts() {
    let mut sim = net(0);
    let p = add(&mut sim, 1, NodeType::P, &[NBNS]);
    sim.register(p, "FRED<00>", false).unwrap();
    let (_, req) = to_ns(&sim, sock(NBNS, 137)).pop().unwrap();
    from_nbns(
        &mut sim,
        p,
        NBNS,
        &ns_answer(req.id, 0xAD86, "FRED<00>", 0, ip(9)),
    );
    assert_eq!(state(&sim, p, "FRED<00>"), Some(NameState::Conflict));
    assert_eq!(
        conflicts(&sim, p),
        vec![Event::NameConflict {
            name: name("FRED<00>"),
            by: Some(sock(NBNS, 137)),
            reason: ConflictReason::RegistrationRefused
        }]
    );
    assert_eq!(sim.node(p).stats().nbns_registrations_refused, 1);
    // Refresh refused.
    register_with_nbns(&mut sim, p, "BARNEY<00>", 20);
    sim.run_for(secs(10.5));
    let (_, refresh) = to_ns(&sim, sock(NBNS, 137)).pop().unwrap();
    assert_eq!(refresh.flags, 0x4000);
    from_nbns(
        &mut sim,
        p,
        NBNS,
        &ns_answer(refresh.id, 0xAD86, "BARNEY<00>", 0, ip(9)),
    );
    assert_eq!(state(&sim, p, "BARNEY<00>"), Some(NameState::Conflict));
    assert_eq!(sim.node(p).stats().refreshes_refused, 1);
    // A NAME CONFLICT DEMAND from the NBNS.
    register_with_nbns(&mut sim, p, "WILMA<00>", 0);
    let demand = ns_answer(0x4242, 0xAD87, "WILMA<00>", 0, Ipv4Addr::UNSPECIFIED);
    from_nbns(&mut sim, p, NBNS, &demand);
    assert_eq!(state(&sim, p, "WILMA<00>"), Some(NameState::Conflict));
}

#[test]
fn silent_nbns_secondary_then_per_type_fallback() {
    let mut sim = net(0);
    let p = add(&mut sim, 1, NodeType::P, &[NBNS, NBNS2]);
    let m = add(&mut sim, 2, NodeType::M, &[NBNS, NBNS2]);
    let h = add(&mut sim, 3, NodeType::H, &[NBNS, NBNS2]);
    sim.register(p, "PNODE<00>", false).unwrap();
    sim.register(m, "MNODE<00>", false).unwrap();
    sim.register(h, "HNODE<00>", false).unwrap();
    sim.run_for(secs(12.0));
    for (i, n) in [(p, 1), (m, 2), (h, 3)] {
        // 3 × 1.5 s to the primary, then 3 to the secondary.
        let count = |server| {
            to_ns(&sim, sock(server, 137))
                .iter()
                .filter(|(w, _)| *w.from.ip() == ip(n))
                .count()
        };
        assert_eq!((count(NBNS), count(NBNS2)), (3, 3), "node {n}");
        let s = sim.node(i).stats();
        assert_eq!(s.nbns_failovers, 1);
        assert_eq!(s.nbns_unreachable, 1);
    }
    // P: "NBNS is down. Cannot claim name."
    assert_eq!(state(&sim, p, "PNODE<00>"), Some(NameState::Conflict));
    assert_eq!(
        conflicts(&sim, p),
        vec![Event::NameConflict {
            name: name("PNODE<00>"),
            by: None,
            reason: ConflictReason::NbnsUnavailable
        }]
    );
    assert!(broadcasts_by(&sim, p).is_empty());
    // M: broadcast registration first (it decided), then the NBNS.
    assert_eq!(state(&sim, m, "MNODE<00>"), Some(NameState::Active));
    let mb = broadcasts_by(&sim, m);
    assert_eq!(mb.len(), 3);
    let first_ns = sim
        .sent_by(m)
        .iter()
        .find(|w| !w.broadcast)
        .map(|w| w.at)
        .unwrap();
    assert!(mb.iter().all(|w| w.at < first_ns));
    assert_eq!(nbns(&mb[0]).unwrap().flags, 0x2910);
    // H: the NBNS first, then the B-node broadcast registration.
    assert_eq!(state(&sim, h, "HNODE<00>"), Some(NameState::Active));
    let hb = broadcasts_by(&sim, h);
    assert_eq!(hb.len(), 3);
    let last_ns = sim
        .sent_by(h)
        .iter()
        .filter(|w| !w.broadcast)
        .map(|w| w.at)
        .max()
        .unwrap();
    assert!(hb.iter().all(|w| w.at > last_ns));
    let RData::Nb(a) = &nbns(&hb[0]).unwrap().additional[0].rdata else {
        panic!()
    };
    assert_eq!(a[0].flags, 0x6000, "ONT = H");
    assert_eq!(sim.node(h).stats().broadcast_fallbacks, 1);
    assert_eq!(registered(&sim, h), vec!["HNODE<00>"]);
}

#[test]
fn release_goes_to_the_nbns() {
    let mut sim = net(0);
    let p = add(&mut sim, 1, NodeType::P, &[NBNS]);
    let h = add(&mut sim, 2, NodeType::H, &[NBNS]);
    let m = add(&mut sim, 3, NodeType::M, &[NBNS]);
    register_with_nbns(&mut sim, p, "PNODE<00>", 0);
    register_with_nbns(&mut sim, h, "HNODE<00>", 0);
    sim.register(m, "MNODE<00>", false).unwrap();
    sim.run_for(secs(0.8));
    let (_, req) = to_ns(&sim, sock(NBNS, 137)).pop().unwrap();
    from_nbns(
        &mut sim,
        m,
        NBNS,
        &ns_answer(req.id, 0xAD80, "MNODE<00>", 0, ip(3)),
    );
    assert_eq!(state(&sim, m, "MNODE<00>"), Some(NameState::Active));
    let before: Vec<usize> = [p, h, m]
        .iter()
        .map(|&i| broadcasts_by(&sim, i).len())
        .collect();

    // P: unicast release, positive answer, gone.
    sim.release(p, "PNODE<00>").unwrap();
    let (w, rel) = to_ns(&sim, sock(NBNS, 137)).pop().unwrap();
    assert_eq!(rel.flags, 0x3000);
    assert_eq!(*w.from.ip(), ip(1));
    assert_eq!(state(&sim, p, "PNODE<00>"), Some(NameState::Releasing));
    from_nbns(
        &mut sim,
        p,
        NBNS,
        &ns_answer(rel.id, 0xB400, "PNODE<00>", 0, ip(1)),
    );
    assert_eq!(state(&sim, p, "PNODE<00>"), None);
    assert!(sim.events(p).contains(&Event::NameReleased {
        name: name("PNODE<00>")
    }));

    // H: silent NBNS → the B-node release follows (MS-NBTE §3.1.7).
    sim.release(h, "HNODE<00>").unwrap();
    sim.run_for(secs(4.4));
    assert_eq!(broadcasts_by(&sim, h).len(), before[1]);
    sim.run_for(secs(1.0));
    let hb = broadcasts_by(&sim, h);
    assert_eq!(hb.len(), before[1] + 3);
    assert_eq!(nbns(&hb[before[1]]).unwrap().flags, 0x3010);
    assert_eq!(state(&sim, h, "HNODE<00>"), None);

    // M: positive from the NBNS, and the broadcast release all the same.
    sim.release(m, "MNODE<00>").unwrap();
    let (_, rel) = to_ns(&sim, sock(NBNS, 137)).pop().unwrap();
    assert_eq!(rel.flags, 0x3000);
    from_nbns(
        &mut sim,
        m,
        NBNS,
        &ns_answer(rel.id, 0xB400, "MNODE<00>", 0, ip(3)),
    );
    sim.run_for(secs(1.0));
    assert_eq!(broadcasts_by(&sim, m).len(), before[2] + 3);
    assert_eq!(state(&sim, m, "MNODE<00>"), None);
    assert!(broadcasts_by(&sim, p).is_empty());
}

#[test]
fn queries_follow_the_node_type_order() {
    let mut sim = net(0);
    let b = add(&mut sim, 1, NodeType::B, &[]);
    let p = add(&mut sim, 2, NodeType::P, &[NBNS, NBNS2]);
    let m = add(&mut sim, 3, NodeType::M, &[NBNS]);
    let h = add(&mut sim, 4, NodeType::H, &[NBNS]);
    register_all(&mut sim, b, &[("TARGET<20>", false)]);

    // P: the NBNS list only, then failure; never a broadcast.
    sim.lookup(p, "TARGET<20>", LookupTarget::Broadcast)
        .unwrap();
    sim.run_for(secs(10.0));
    assert_eq!(lookups(&sim, p), vec![Err(LookupError::NoResponse)]);
    let pq: Vec<_> = sim.sent_by(p);
    assert_eq!(pq.len(), 6);
    assert!(pq.iter().all(|w| !w.broadcast));
    assert_eq!(nbns(&pq[0]).unwrap().flags, 0x0100);
    assert_eq!(pq[0].to, sock(NBNS, 137));
    assert_eq!(pq[3].to, sock(NBNS2, 137));

    // H: NBNS silent → broadcast, answered by the B-node.
    sim.lookup(h, "TARGET<20>", LookupTarget::Broadcast)
        .unwrap();
    sim.run_for(secs(4.4));
    assert!(lookups(&sim, h).is_empty());
    assert!(broadcasts_by(&sim, h).is_empty());
    sim.run_for(secs(0.5));
    assert_eq!(lookups(&sim, h), vec![Ok(vec![ip(1)])]);
    assert_eq!(broadcasts_by(&sim, h).len(), 1);
    assert_eq!(sim.node(h).stats().broadcast_fallbacks, 1);
    // Cached now.
    sim.lookup(h, "TARGET<20>", LookupTarget::Broadcast)
        .unwrap();
    assert_eq!(lookups(&sim, h).len(), 2);

    // H: an NBNS "not found" also goes to broadcast at once.
    sim.lookup(h, "OTHER<20>", LookupTarget::Broadcast).unwrap();
    let (_, q) = to_ns(&sim, sock(NBNS, 137)).pop().unwrap();
    let neg = ns_packet(0, 0, record("OTHER<20>", 0, RData::Raw(vec![])));
    let mut negp = Packet::parse(&neg).unwrap();
    negp.id = q.id;
    negp.flags = 0x8583;
    negp.answers[0].rr_type = TYPE_NULL;
    from_nbns(&mut sim, h, NBNS, &negp.to_bytes().unwrap());
    assert_eq!(broadcasts_by(&sim, h).len(), 2);

    // M: broadcast first (nobody has it), then the NBNS, which answers.
    sim.lookup(m, "REMOTE<20>", LookupTarget::Broadcast)
        .unwrap();
    sim.run_for(secs(0.7));
    assert_eq!(broadcasts_by(&sim, m).len(), 3);
    assert!(to_ns(&sim, sock(NBNS, 137))
        .iter()
        .all(|(w, _)| *w.from.ip() != ip(3)));
    sim.run_for(secs(0.1));
    let (w, q) = to_ns(&sim, sock(NBNS, 137)).pop().unwrap();
    assert_eq!(*w.from.ip(), ip(3));
    assert_eq!(q.flags, 0x0100);
    let remote = Ipv4Addr::new(192, 0, 2, 7);
    from_nbns(
        &mut sim,
        m,
        NBNS,
        &ns_answer(q.id, 0x8580, "REMOTE<20>", 300, remote),
    );
    assert_eq!(lookups(&sim, m), vec![Ok(vec![remote])]);
    assert!(sim
        .node(m)
        .cache()
        .iter()
        .any(|e| e.name == name("REMOTE<20>")));
}

fn dgm_query_response(sim: &mut Sim, i: usize, q: &Datagram, positive: bool) {
    let d: Datagram = Datagram {
        msg_type: if positive {
            MsgType::PositiveQueryResponse
        } else {
            MsgType::NegativeQueryResponse
        },
        flags: Flags::single(NodeType::B),
        id: q.id,
        source_ip: ip(NBNS),
        source_port: 138,
        body: q.body.clone(),
    };
    sim.inject(
        i,
        sock(NBNS, 138),
        Service::Datagram,
        false,
        &d.to_bytes().unwrap(),
    );
}

fn dgm_to(sim: &Sim, to: SocketAddrV4) -> Vec<Datagram> {
    sim.wire
        .iter()
        .filter(|w| w.to == to && w.service == Service::Datagram)
        .map(|w| Datagram::parse(&w.bytes).unwrap())
        .collect()
}

fn group_send(sim: &mut Sim, i: usize, mode: SendMode) {
    sim.send(
        i,
        SendRequest {
            source: name("SENDER<00>"),
            destination: name("WORKGROUP<1D>"),
            mode,
            data: b"hello".to_vec(),
        },
    )
    .unwrap();
}

#[test]
fn group_datagram_through_the_nbdd() {
    let mut sim = net(0);
    let m = add(&mut sim, 3, NodeType::M, &[NBNS]);
    group_send(&mut sim, m, SendMode::Group);
    let q = dgm_to(&sim, sock(NBNS, 138));
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].msg_type, MsgType::QueryRequest);
    assert_eq!(q[0].destination_name(), Some(&name("WORKGROUP<1D>")));
    assert_eq!(q[0].flags.node_type, NodeType::M);
    assert!(sends(&sim, m).is_empty());
    dgm_query_response(&mut sim, m, &q[0], true);
    let d = dgm_to(&sim, sock(NBNS, 138));
    assert_eq!(d.len(), 2);
    let d = &d[1];
    assert_eq!(d.msg_type, MsgType::DirectGroup);
    assert_eq!((d.source_ip, d.source_port), (ip(3), 138));
    assert_eq!(d.flags.node_type, NodeType::M, "SNT 10");
    assert_eq!(d.flags.to_byte(), 0x0A);
    assert_eq!(d.user_data(), Some(&b"hello"[..]));
    assert_eq!(sends(&sim, m), vec![Ok(sock(NBNS, 138))]);
    assert!(broadcasts_by(&sim, m).is_empty());
    let s = sim.node(m).stats();
    assert_eq!((s.nbdd_positive, s.nbdd_relayed), (1, 1));

    // NetBIOS broadcast from a P-node with an explicit NBDD and no query.
    let nbdd = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 200), 1138);
    let c = NodeConfig {
        nbdd: Some(nbdd),
        nbdd_query: false,
        ..sim.node(m).config().clone()
    };
    let c = NodeConfig {
        node_type: NodeType::P,
        interface: Interface::parse("10.0.0.4/24").unwrap(),
        ..c
    };
    let p = sim.add_node(c).unwrap();
    group_send(&mut sim, p, SendMode::Broadcast);
    let d = dgm_to(&sim, nbdd);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].msg_type, MsgType::Broadcast);
    assert_eq!(d[0].flags.to_byte(), 0x06, "SNT 01");
}

#[test]
fn nbdd_refusal_or_silence_per_node_type() {
    let mut sim = net(0);
    let m = add(&mut sim, 3, NodeType::M, &[NBNS]);
    let p = add(&mut sim, 2, NodeType::P, &[NBNS]);
    let h = add(&mut sim, 4, NodeType::H, &[NBNS]);
    let hn = {
        let c = NodeConfig {
            nbdd: Some(sock(NBNS2, 138)),
            ..sim.node(h).config().clone()
        };
        let c = NodeConfig {
            interface: Interface::parse("10.0.0.5/24").unwrap(),
            ..c
        };
        sim.add_node(c).unwrap()
    };
    // M: negative → local broadcast, counted.
    group_send(&mut sim, m, SendMode::Group);
    let q = dgm_to(&sim, sock(NBNS, 138)).pop().unwrap();
    dgm_query_response(&mut sim, m, &q, false);
    assert_eq!(sends(&sim, m), vec![Ok(sock(255, 138))]);
    let mb = broadcasts_by(&sim, m);
    assert_eq!(mb.len(), 1);
    let d = Datagram::parse(&mb[0].bytes).unwrap();
    assert_eq!(d.msg_type, MsgType::DirectGroup);
    assert_eq!(sim.node(m).stats().nbdd_fallbacks, 1);
    assert_eq!(sim.node(m).stats().nbdd_negative, 1);
    // P: no answer → SendError.
    group_send(&mut sim, p, SendMode::Group);
    sim.run_for(secs(4.4));
    assert!(sends(&sim, p).is_empty());
    sim.run_for(secs(0.2));
    assert_eq!(sends(&sim, p), vec![Err(SendError::NbddUnavailable)]);
    assert_eq!(sim.node(p).stats().nbdd_queries_sent, 3);
    assert_eq!(sim.node(p).stats().nbdd_timeouts, 1);
    assert!(broadcasts_by(&sim, p).is_empty());
    // H without an NBDD: straight to the broadcast address (DIGEST §3.2a), SNT 11.
    group_send(&mut sim, h, SendMode::Group);
    let hb = broadcasts_by(&sim, h);
    assert_eq!(hb.len(), 1);
    assert_eq!(Datagram::parse(&hb[0].bytes).unwrap().flags.to_byte(), 0x0E);
    assert_eq!(sim.node(h).stats().nbdd_queries_sent, 0);
    // H with an explicit NBDD: like M; silence → broadcast.
    group_send(&mut sim, hn, SendMode::Broadcast);
    assert_eq!(dgm_to(&sim, sock(NBNS2, 138)).len(), 1);
    sim.run_for(secs(5.0));
    assert_eq!(sends(&sim, hn), vec![Ok(sock(255, 138))]);
    assert_eq!(sim.node(hn).stats().nbdd_fallbacks, 1);
}

#[test]
fn unique_datagram_resolved_through_the_nbns() {
    let mut sim = net(0);
    let p = add(&mut sim, 2, NodeType::P, &[NBNS]);
    let b = add(&mut sim, 1, NodeType::B, &[]);
    register_all(&mut sim, b, &[("TARGET<00>", false)]);
    sim.send(
        p,
        SendRequest {
            source: name("SENDER<00>"),
            destination: name("TARGET<00>"),
            mode: SendMode::Unique,
            data: b"x".to_vec(),
        },
    )
    .unwrap();
    let (_, q) = to_ns(&sim, sock(NBNS, 137)).pop().unwrap();
    from_nbns(
        &mut sim,
        p,
        NBNS,
        &ns_answer(q.id, 0x8580, "TARGET<00>", 300, ip(1)),
    );
    sim.run_for(secs(0.1));
    assert_eq!(sends(&sim, p), vec![Ok(sock(1, 138))]);
    let got = sim.delivered(b);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].msg_type, MsgType::DirectUnique);
}

#[test]
fn p_node_ignores_broadcasts() {
    let mut sim = net(0);
    let b = add(&mut sim, 1, NodeType::B, &[]);
    let p = add(&mut sim, 2, NodeType::P, &[NBNS]);
    register_with_nbns(&mut sim, p, "PNODE<00>", 0);
    register_all(&mut sim, b, &[("BNODE<00>", false)]);
    let before = sim.node(p).stats().dropped.broadcast_ignored;
    assert!(before > 0, "B-node registrations were ignored");
    group_send(&mut sim, b, SendMode::Broadcast);
    sim.send(
        b,
        SendRequest {
            source: name("BNODE<00>"),
            destination: name("PNODE<00>"),
            mode: SendMode::UniqueAt(sock(2, 138)),
            data: b"direct".to_vec(),
        },
    )
    .unwrap();
    // A broadcast query for its name goes unanswered too.
    sim.lookup(b, "PNODE<00>", LookupTarget::Broadcast).unwrap();
    sim.run_for(secs(1.0));
    let got = sim.delivered(p);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, &b"direct"[..]);
    assert_eq!(sim.node(p).stats().dropped.broadcast_ignored, before + 4);
    assert_eq!(lookups(&sim, b), vec![Err(LookupError::NoResponse)]);
}

#[test]
fn unsolicited_and_malformed_nbns_packets_are_dropped() {
    let mut sim = net(0);
    let p = add(&mut sim, 2, NodeType::P, &[NBNS]);
    sim.register(p, "PNODE<00>", false).unwrap();
    let (_, req) = to_ns(&sim, sock(NBNS, 137)).pop().unwrap();
    // Wrong TRN, a WACK for nothing, the right TRN from the wrong host, garbage.
    from_nbns(
        &mut sim,
        p,
        NBNS,
        &ns_answer(req.id ^ 1, 0xAD80, "PNODE<00>", 0, ip(2)),
    );
    from_nbns(&mut sim, p, NBNS, &wack(req.id ^ 1, "PNODE<00>", 5));
    sim.inject(
        p,
        sock(77, 137),
        Service::Name,
        false,
        &ns_answer(req.id, 0xAD80, "PNODE<00>", 0, ip(2)),
    );
    from_nbns(
        &mut sim,
        p,
        NBNS,
        &ns_answer(req.id, 0xAD80, "OTHER<00>", 0, ip(2)),
    );
    from_nbns(&mut sim, p, NBNS, &[0x12, 0x34, 0xAD]);
    // A refresh response nobody asked for; a DATAGRAM QUERY RESPONSE nobody asked for.
    from_nbns(
        &mut sim,
        p,
        NBNS,
        &ns_answer(9, 0xC580, "PNODE<00>", 0, ip(2)),
    );
    let q: Datagram = Datagram {
        msg_type: MsgType::QueryRequest,
        flags: Flags::single(NodeType::B),
        id: 5,
        source_ip: ip(NBNS),
        source_port: 138,
        body: Body::Query {
            destination_name: name("X<00>"),
        },
    };
    dgm_query_response(&mut sim, p, &q, true);
    assert_eq!(state(&sim, p, "PNODE<00>"), Some(NameState::Registering));
    let d = &sim.node(p).stats().dropped;
    assert_eq!(d.answer_wrong_name, 1);
    assert_eq!(
        d.unsolicited_response + d.answer_wrong_source + d.answer_wrong_name,
        5
    );
    assert_eq!(d.malformed_name_packet, 1);
    assert_eq!(d.nbdd_query, 1);
    // The genuine answer still works.
    from_nbns(
        &mut sim,
        p,
        NBNS,
        &ns_answer(req.id, 0xAD80, "PNODE<00>", 0, ip(2)),
    );
    assert_eq!(state(&sim, p, "PNODE<00>"), Some(NameState::Active));
}

#[test]
fn nbns_release_request_removes_our_name() {
    let mut sim = net(0);
    let p = add(&mut sim, 2, NodeType::P, &[NBNS]);
    register_with_nbns(&mut sim, p, "PNODE<00>", 0);
    let mut rel = query(0x77, 0x3000, &name("PNODE<00>"), false);
    // Anyone else's release only flushes the cache.
    sim.inject(p, sock(50, 137), Service::Name, false, &rel);
    assert_eq!(state(&sim, p, "PNODE<00>"), Some(NameState::Active));
    rel[1] = 0x78;
    from_nbns(&mut sim, p, NBNS, &rel);
    assert_eq!(state(&sim, p, "PNODE<00>"), None);
    assert_eq!(sim.node(p).stats().names_released_by_nbns, 1);
}

#[test]
fn end_node_challenge_then_overwrite() {
    let mut sim = net(0);
    let p = add(&mut sim, 2, NodeType::P, &[NBNS]);
    sim.register(p, "PNODE<00>", false).unwrap();
    let (_, req) = to_ns(&sim, sock(NBNS, 137)).pop().unwrap();
    // END-NODE CHALLENGE: AA RD, no RA, naming 10.0.0.50 as the owner.
    from_nbns(
        &mut sim,
        p,
        NBNS,
        &ns_answer(req.id, 0xAD00, "PNODE<00>", 0, ip(50)),
    );
    let q = to_ns(&sim, sock(50, 137));
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].1.flags, 0x0100);
    sim.run_for(secs(4.6));
    let (_, ow) = to_ns(&sim, sock(NBNS, 137)).pop().unwrap();
    assert_eq!(ow.flags, 0x2800, "NAME OVERWRITE REQUEST");
    from_nbns(
        &mut sim,
        p,
        NBNS,
        &ns_answer(ow.id, 0xAD80, "PNODE<00>", 0, ip(2)),
    );
    assert_eq!(state(&sim, p, "PNODE<00>"), Some(NameState::Active));
    let s = sim.node(p).stats();
    assert_eq!((s.challenges_received, s.challenges_won), (1, 1));
}

#[test]
fn h_node_without_nbns_is_a_b_node() {
    let mut sim = net(0);
    let h = add(&mut sim, 1, NodeType::H, &[]);
    sim.register(h, "HNODE<00>", false).unwrap();
    sim.run_for(secs(1.0));
    assert_eq!(state(&sim, h, "HNODE<00>"), Some(NameState::Active));
    assert_eq!(broadcasts_by(&sim, h).len(), 3);
    assert!(sim.sent_by(h).iter().all(|w| w.broadcast));
}

#[test]
fn mutated_nbns_and_nbdd_answers_never_panic() {
    let mut rng: u64 = 7;
    let mut next = move || {
        rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut sim = net(0);
    let nodes: Vec<usize> = [NodeType::P, NodeType::M, NodeType::H]
        .iter()
        .enumerate()
        .map(|(k, t)| add(&mut sim, k as u8 + 1, *t, &[NBNS, NBNS2]))
        .collect();
    for round in 0..120u32 {
        for &i in &nodes {
            let n = format!("N{round}<00>");
            let _ = sim.register(i, &n, round % 3 == 0);
            let _ = sim.lookup(i, &format!("Q{round}<20>"), LookupTarget::Broadcast);
            group_send(&mut sim, i, SendMode::Group);
            sim.run_for(secs(0.3));
            let last_ns = to_ns(&sim, sock(NBNS, 137)).pop();
            let last_dg = dgm_to(&sim, sock(NBNS, 138)).pop();
            let id = last_ns.map_or(0, |(_, p)| p.id);
            let flags =
                [0xAD80u16, 0xAD86, 0xBC00, 0xB400, 0xC580, 0x8580, 0xAD00][round as usize % 7];
            let mut b = if flags == 0xBC00 {
                wack(id, &n, (next() % 300) as u32)
            } else {
                ns_answer(id, flags, &n, (next() % 100) as u32, ip((next() % 5) as u8))
            };
            for _ in 0..(next() % 4) {
                let k = (next() as usize) % b.len();
                b[k] ^= next() as u8;
            }
            from_nbns(&mut sim, i, NBNS, &b);
            if let Some(q) = last_dg {
                let mut d = q.to_bytes().unwrap();
                d[0] = 0x15 + (round % 2) as u8;
                if round % 5 == 0 {
                    let k = (next() as usize) % d.len();
                    d[k] ^= next() as u8;
                }
                sim.inject(i, sock(NBNS, 138), Service::Datagram, round % 7 == 0, &d);
            }
            if round % 10 == 0 {
                let _ = sim.release(i, &n);
            }
        }
    }
    for &i in &nodes {
        sim.shutdown(i);
    }
    sim.run_for(secs(120.0));
    for &i in &nodes {
        assert!(sim.node(i).is_shutdown_complete(), "node {i}");
    }
}
