//! Queries to an NBNS that answers with a WACK (RFC 1002 §4.2.16, §5.1.2: wait the
//! TTL longer, bounded by `wack_limit`) or a REDIRECT NAME QUERY RESPONSE (§4.2.15:
//! ask the NBNS at NSD_IP_ADDR; bounded hops, loop-safe). Quoted bytes, with the test
//! acting as the NBNSs on the simulated subnet.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_node::sim::Sim;
use nbdgm_node::{Event, Interface, LookupError, LookupTarget, NodeConfig, NodeType, Service};
use nbdgm_wire::nbns::Packet;
use std::net::{Ipv4Addr, SocketAddrV4};

const NBNS: u8 = 100;

/// REDIRECT NAME QUERY RESPONSE for TARGET<20> naming NBNS2<20> at 10.0.0.101, as laid
/// out in RFC 1002 §4.2.15 (flags 0x8100: R, opcode 0, RD; NSCOUNT 1, ARCOUNT 1; the
/// A record's RR_NAME is a pointer to NSD_NAME at offset 0x38). Id 0, patched.
const REDIRECT_TO_101: &str = concat!(
    "0000810000000000000100012046454542464345484546464543414341434143",
    "41434143414341434143414341000002000100000000002220454f4543454f46",
    "4444434341434143414341434143414341434143414341434100c03800010001",
    "0000000000040a000065",
);

/// WACK (opcode 7, flags 0xBC00) for TARGET<20> with TTL 0x0000000a (10 s); RDATA the
/// request's flags 0x0100. Id 0, patched.
const WACK_10S: &str = concat!(
    "0000bc0000000001000000002046454542464345484546464543414341434143",
    "4143414341434143414341434100002000010000000a00020100",
);

fn hex(s: &str, id: u16) -> Vec<u8> {
    let mut b: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    b[..2].copy_from_slice(&id.to_be_bytes());
    b
}

/// A redirect like REDIRECT_TO_101 but to `target`.
fn redirect(id: u16, target: Ipv4Addr) -> Vec<u8> {
    let mut b = hex(REDIRECT_TO_101, id);
    let n = b.len();
    b[n - 4..].copy_from_slice(&target.octets());
    b
}

fn p_node(sim: &mut Sim) -> usize {
    let c = NodeConfig {
        node_type: NodeType::P,
        nbns: vec![ip(NBNS)],
        ..NodeConfig::new(Interface::parse("10.0.0.2/24").unwrap())
    };
    sim.add_node(c).unwrap()
}

/// The name-service requests the node sent to `to`.
fn queries_to(sim: &Sim, to: SocketAddrV4) -> Vec<Packet> {
    sim.wire
        .iter()
        .filter(|w| w.to == to)
        .filter_map(nbns)
        .filter(|p| !p.is_response())
        .collect()
}

fn lookups(sim: &Sim, i: usize) -> Vec<Result<Vec<Ipv4Addr>, LookupError>> {
    sim.events(i)
        .iter()
        .filter_map(|e| match e {
            Event::LookupDone { result, .. } => {
                Some(result.clone().map(|v| v.iter().map(|a| a.addr).collect()))
            }
            _ => None,
        })
        .collect()
}

fn answer(id: u16, addr: Ipv4Addr) -> Vec<u8> {
    response(id, 0x8580, &name("TARGET<20>"), 0, addr)
}

#[test]
fn the_quoted_packets_parse_as_the_rfc_lays_them_out() {
    let r = Packet::parse(&hex(REDIRECT_TO_101, 7)).unwrap();
    assert_eq!((r.flags, r.answers.len()), (0x8100, 0));
    assert_eq!(r.authority[0].rr_type, 0x0002);
    assert_eq!(r.additional[0].rr_type, 0x0001);
    let w = Packet::parse(&hex(WACK_10S, 7)).unwrap();
    assert_eq!(w.answers[0].ttl, 10);
    assert_eq!(w.answers[0].name, name("TARGET<20>"));
}

#[test]
fn redirect_is_followed_to_the_named_nbns() {
    let mut sim = net(0);
    let p = p_node(&mut sim);
    sim.lookup(p, "TARGET<20>", LookupTarget::Broadcast)
        .unwrap();
    sim.run_for(secs(0.01));
    let q = queries_to(&sim, sock(NBNS, 137)).pop().unwrap();
    sim.inject(
        p,
        sock(NBNS, 137),
        Service::Name,
        false,
        &hex(REDIRECT_TO_101, q.id),
    );
    let q2 = queries_to(&sim, sock(101, 137))
        .pop()
        .expect("re-asked at 10.0.0.101");
    assert_eq!(q2.flags, 0x0100);
    assert_eq!(q2.questions[0].name, name("TARGET<20>"));
    // The first NBNS is no longer asked: its answer now would be from the wrong source.
    let there = Ipv4Addr::new(192, 0, 2, 9);
    sim.inject(
        p,
        sock(101, 137),
        Service::Name,
        false,
        &answer(q2.id, there),
    );
    assert_eq!(lookups(&sim, p), vec![Ok(vec![there])]);
    assert_eq!(sim.node(p).stats().nbns_redirects_followed, 1);
}

#[test]
fn redirect_loops_and_long_chains_are_refused() {
    let mut sim = net(0);
    let p = p_node(&mut sim);
    sim.lookup(p, "TARGET<20>", LookupTarget::Broadcast)
        .unwrap();
    sim.run_for(secs(0.01));
    // 100 → 101 → 100: a loop, refused; the P-node has no other step: NoResponse.
    let q = queries_to(&sim, sock(NBNS, 137)).pop().unwrap();
    sim.inject(
        p,
        sock(NBNS, 137),
        Service::Name,
        false,
        &redirect(q.id, ip(101)),
    );
    let q2 = queries_to(&sim, sock(101, 137)).pop().unwrap();
    sim.inject(
        p,
        sock(101, 137),
        Service::Name,
        false,
        &redirect(q2.id, ip(NBNS)),
    );
    assert_eq!(lookups(&sim, p), vec![Err(LookupError::NoResponse)]);
    let s = sim.node(p).stats();
    assert_eq!(
        (s.nbns_redirects_followed, s.nbns_redirects_refused),
        (1, 1)
    );

    // A chain 100 → 101 → 102 → 103 → 104: three hops followed, the fourth refused.
    sim.lookup(p, "TARGET<20>", LookupTarget::Broadcast)
        .unwrap();
    sim.run_for(secs(0.01));
    let mut at = NBNS;
    for next in 101..=104u8 {
        let q = queries_to(&sim, sock(at, 137)).pop().unwrap();
        sim.inject(
            p,
            sock(at, 137),
            Service::Name,
            false,
            &redirect(q.id, ip(next)),
        );
        at = next;
    }
    assert!(queries_to(&sim, sock(104, 137)).is_empty(), "no fourth hop");
    assert_eq!(lookups(&sim, p).len(), 2);
    let s = sim.node(p).stats();
    assert_eq!(
        (s.nbns_redirects_followed, s.nbns_redirects_refused),
        (4, 2)
    );

    // A redirect to a broadcast address is refused too; one from a stranger is dropped.
    sim.lookup(p, "TARGET<20>", LookupTarget::Broadcast)
        .unwrap();
    sim.run_for(secs(0.01));
    let q = queries_to(&sim, sock(NBNS, 137)).pop().unwrap();
    sim.inject(
        p,
        sock(77, 137),
        Service::Name,
        false,
        &redirect(q.id, ip(101)),
    );
    assert_eq!(sim.node(p).stats().nbns_redirects_followed, 4);
    sim.inject(
        p,
        sock(NBNS, 137),
        Service::Name,
        false,
        &redirect(q.id, Ipv4Addr::BROADCAST),
    );
    assert_eq!(sim.node(p).stats().nbns_redirects_refused, 3);
}

#[test]
fn wack_extends_a_query_within_the_limit() {
    let mut sim = net(0);
    let c = NodeConfig {
        node_type: NodeType::P,
        nbns: vec![ip(NBNS)],
        wack_limit: secs(15.0),
        ..NodeConfig::new(Interface::parse("10.0.0.2/24").unwrap())
    };
    let p = sim.add_node(c).unwrap();
    sim.lookup(p, "TARGET<20>", LookupTarget::Broadcast)
        .unwrap();
    sim.run_for(secs(0.01));
    let q = queries_to(&sim, sock(NBNS, 137)).pop().unwrap();
    sim.inject(
        p,
        sock(NBNS, 137),
        Service::Name,
        false,
        &hex(WACK_10S, q.id),
    );
    assert_eq!(sim.node(p).stats().wacks_received, 1);
    // Without the WACK the query would be retransmitted after 1.5 s; now it waits 10 s.
    sim.run_for(secs(9.5));
    assert_eq!(queries_to(&sim, sock(NBNS, 137)).len(), 1);
    assert!(lookups(&sim, p).is_empty());
    // Another WACK of 10 s cannot push past 15 s after the first one.
    sim.inject(
        p,
        sock(NBNS, 137),
        Service::Name,
        false,
        &hex(WACK_10S, q.id),
    );
    sim.run_for(secs(5.4));
    assert_eq!(queries_to(&sim, sock(NBNS, 137)).len(), 1);
    sim.run_for(secs(0.2));
    assert_eq!(
        queries_to(&sim, sock(NBNS, 137)).len(),
        2,
        "retransmitted at the cap"
    );
    // The answer still completes the query.
    sim.inject(
        p,
        sock(NBNS, 137),
        Service::Name,
        false,
        &answer(q.id, ip(9)),
    );
    assert_eq!(lookups(&sim, p), vec![Ok(vec![ip(9)])]);
    // A WACK for a query that does not exist is dropped, not counted as a WACK.
    sim.inject(
        p,
        sock(NBNS, 137),
        Service::Name,
        false,
        &hex(WACK_10S, q.id ^ 1),
    );
    assert_eq!(sim.node(p).stats().wacks_received, 2);
}
