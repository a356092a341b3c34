//! Cache poisoning by forged answers (issue 12 item 9): NAME_TRN_IDs are random and
//! answers are matched on id AND source AND name.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_node::{Event, Incoming, LookupTarget, Name, Node, NodeConfig, Service};
use nbdgm_wire::nbns::{NbAddress, Packet, RData, Record, CLASS_IN, TYPE_NB};
use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, last)
}

fn node(seed: Option<u64>) -> (Node, Instant) {
    let t0 = Instant::now();
    let cfg = NodeConfig {
        rng_seed: seed,
        ..NodeConfig::new("10.0.0.1/24".parse().unwrap())
    };
    (Node::new(cfg, t0).unwrap(), t0)
}

/// Look `n` up at `server` and return the query's NAME_TRN_ID.
fn ask(node: &mut Node, now: Instant, n: &str, server: Ipv4Addr) -> u16 {
    node.lookup(now, n.parse().unwrap(), LookupTarget::Unicast(server))
        .unwrap();
    let t = node.poll_transmit().expect("a query");
    assert!(node.poll_transmit().is_none());
    u16::from_be_bytes([t.bytes[0], t.bytes[1]])
}

fn positive(id: u16, n: &str, at: Ipv4Addr) -> Vec<u8> {
    let name: Name = n.parse().unwrap();
    Packet {
        id,
        flags: 0x8580,
        questions: Vec::new(),
        answers: vec![Record {
            name,
            rr_type: TYPE_NB,
            rr_class: CLASS_IN,
            ttl: 300,
            rdata: RData::Nb(vec![NbAddress { flags: 0, ip: at }]),
        }],
        authority: Vec::new(),
        additional: Vec::new(),
        trailing: Vec::new(),
    }
    .to_bytes()
    .unwrap()
}

fn feed(node: &mut Node, now: Instant, from: Ipv4Addr, bytes: &[u8]) {
    node.handle(
        now,
        Incoming {
            from: SocketAddrV4::new(from, 137),
            service: Service::Name,
            broadcast: false,
            bytes,
        },
    );
}

fn lookups(node: &mut Node) -> Vec<Result<Vec<Ipv4Addr>, String>> {
    let mut out = Vec::new();
    while let Some(ev) = node.poll_event() {
        if let Event::LookupDone { result, .. } = ev {
            out.push(
                result
                    .map(|a| a.iter().map(|a| a.addr).collect())
                    .map_err(|e| e.to_string()),
            );
        }
    }
    out
}

#[test]
fn forged_answer_from_wrong_source_or_for_wrong_name_is_not_accepted() {
    let (mut n, t) = node(None);
    let id = ask(&mut n, t, "TARGET<20>", ip(9));
    // Right id and name, wrong source.
    feed(&mut n, t, ip(66), &positive(id, "TARGET<20>", ip(66)));
    // Right id and source, another name.
    feed(&mut n, t, ip(9), &positive(id, "OTHER<20>", ip(66)));
    assert!(lookups(&mut n).is_empty(), "nothing accepted yet");
    let d = &n.stats().dropped;
    assert_eq!((d.answer_wrong_source, d.answer_wrong_name), (1, 1));
    // The real answer completes the lookup.
    feed(&mut n, t, ip(9), &positive(id, "TARGET<20>", ip(9)));
    assert_eq!(lookups(&mut n), vec![Ok(vec![ip(9)])]);
}

#[test]
fn forged_broadcast_answer_for_another_name_is_not_cached() {
    let (mut n, t) = node(None);
    n.lookup(t, "VICTIM<00>".parse().unwrap(), LookupTarget::Broadcast)
        .unwrap();
    let q = n.poll_transmit().unwrap();
    let id = u16::from_be_bytes([q.bytes[0], q.bytes[1]]);
    feed(&mut n, t, ip(66), &positive(id, "EVIL<00>", ip(66)));
    assert_eq!(n.stats().dropped.answer_wrong_name, 1);
    assert!(n.cache().is_empty(), "{:?}", n.cache());
    // The query is still open: the real owner's answer is accepted.
    feed(&mut n, t, ip(5), &positive(id, "VICTIM<00>", ip(5)));
    assert_eq!(lookups(&mut n), vec![Ok(vec![ip(5)])]);
}

#[test]
fn query_ids_are_random_distinct_and_reproducible_with_a_seed() {
    let (mut n, mut t) = node(None);
    let mut ids = Vec::new();
    for k in 0..40 {
        ids.push(ask(&mut n, t, &format!("N{k}<20>"), ip(9)));
        t += Duration::from_millis(1);
    }
    let distinct: HashSet<u16> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "no id repeats while outstanding");
    let steps: HashSet<u16> = ids.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    assert!(steps.len() > 30, "steps vary: {steps:?}");
    // Two OS-seeded nodes on the same address do not share a sequence.
    let (mut m, t2) = node(None);
    let other: Vec<u16> = (0..8)
        .map(|k| ask(&mut m, t2, &format!("N{k}<20>"), ip(9)))
        .collect();
    assert_ne!(&ids[..8], &other[..]);
    // A fixed seed gives the same ids (simulations).
    let (mut a, ta) = node(Some(42));
    let (mut b, tb) = node(Some(42));
    for k in 0..8 {
        let name = format!("S{k}<20>");
        assert_eq!(ask(&mut a, ta, &name, ip(9)), ask(&mut b, tb, &name, ip(9)));
    }
}
