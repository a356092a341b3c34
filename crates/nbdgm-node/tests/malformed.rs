//! Hostile and malformed input (DIGEST §2.9, §4.1): every kind is counted under its
//! reason, nothing panics, nothing is answered, and memory stays bounded.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_node::sim::Sim;
use nbdgm_node::{DropReason, Event, Incoming, Node, NodeConfig, Service};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn valid_datagram() -> Vec<u8> {
    let mut b = vec![0x11, 0x02, 0x12, 0x34, 10, 0, 0, 9, 0, 138, 0, 72, 0, 0];
    name("FRED<00>").emit(&mut b);
    name("HOST0<00>").emit(&mut b);
    b.extend_from_slice(b"data");
    b
}

fn host() -> Sim {
    let mut sim = net(1);
    register_all(&mut sim, 0, &[("HOST0<00>", false), ("WG<00>", true)]);
    sim
}

#[test]
fn malformed_datagrams_of_each_kind_are_counted() {
    let mut sim = host();
    let good = valid_datagram();
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x11],
        good[..9].to_vec(),
        good[..13].to_vec(),                      // no PACKET_OFFSET
        good[..30].to_vec(),                      // half a source name
        vec![0x13, 0, 0, 1, 10, 0, 0, 9, 0, 138], // ERROR without its code
    ];
    let mut t = good.clone();
    t[0] = 0x17; // unknown MSG_TYPE
    cases.push(t);
    let mut lower = good.clone();
    lower[15] = b'e'; // lower-case first-level character
    cases.push(lower);
    let mut label = good.clone();
    label[14] = 31; // first label not 32 bytes
    cases.push(label);
    let mut ptr = good.clone();
    ptr[48] = 0xC0; // compression pointer in a datagram
    ptr[49] = 0x0E;
    cases.push(ptr);
    let n = cases.len() as u64;
    let before = sim.wire.len();
    for c in &cases {
        sim.inject(0, sock(9, 138), Service::Datagram, false, c);
    }
    assert_eq!(sim.node(0).stats().dropped.malformed_datagram, n);
    assert_eq!(sim.wire.len(), before, "nothing answered");
    assert!(sim.delivered(0).is_empty());
    // Odd but tolerated: DGM_LENGTH wrong, reserved flag bits, empty user data.
    let mut odd = good.clone();
    odd[10] = 0xFF;
    odd[1] |= 0xF0;
    sim.inject(0, sock(9, 138), Service::Datagram, false, &odd);
    let mut empty = good.clone();
    empty.truncate(good.len() - 4);
    sim.inject(0, sock(9, 138), Service::Datagram, false, &empty);
    assert_eq!(sim.delivered(0).len(), 2);
    assert_eq!(sim.node(0).stats().dgm_length_mismatches, 2);
    // A zero-length middle fragment is malformed.
    let mut z = good[..14].to_vec();
    z[1] = 0x01;
    z[13] = 100;
    sim.inject(0, sock(9, 138), Service::Datagram, false, &z);
    assert_eq!(sim.node(0).stats().dropped.malformed_datagram, n + 1);
}

#[test]
fn malformed_name_packets_of_each_kind_are_counted() {
    let mut sim = host();
    let q = query(1, 0x0110, &name("HOST0<00>"), false);
    let mut cases: Vec<Vec<u8>> =
        vec![vec![], q[..11].to_vec(), q[..30].to_vec(), q[..48].to_vec()];
    let mut big = q.clone();
    big[4..6].copy_from_slice(&[0xFF, 0xFF]); // QDCOUNT beyond the data
    cases.push(big);
    let mut fwd = q.clone();
    fwd[12] = 0xC0; // forward pointer
    fwd[13] = 0x20;
    cases.push(fwd);
    let mut self_ptr = q[..12].to_vec();
    self_ptr.extend_from_slice(&[0xC0, 0x0C, 0, 0x20, 0, 1]); // pointer to itself
    cases.push(self_ptr);
    let mut rd = response(1, 0xAD86, &name("HOST0<00>"), 0, ip(9));
    let n = rd.len();
    rd[n - 8] = 0xFF; // RDLENGTH past the end
    cases.push(rd);
    let mut noq = q.clone();
    noq[4..6].copy_from_slice(&[0, 0]); // a query with no question
    noq.truncate(12);
    cases.push(noq);
    let count = cases.len() as u64;
    let before = sim.wire.len();
    for c in &cases {
        sim.inject(0, sock(9, 137), Service::Name, false, c);
    }
    assert_eq!(sim.node(0).stats().dropped.malformed_name_packet, count);
    assert_eq!(sim.wire.len(), before);
    // Unknown opcodes and WACKs are counted separately.
    let mut op = q.clone();
    op[2] = 0x50; // opcode 10
    sim.inject(0, sock(9, 137), Service::Name, false, &op);
    let mut wack = response(1, 0xBC00, &name("HOST0<00>"), 0, ip(9));
    wack[2] = 0xBC;
    sim.inject(0, sock(9, 137), Service::Name, false, &wack);
    assert_eq!(sim.node(0).stats().dropped.unsupported_opcode, 2);
    // Unsolicited responses are counted and never answered.
    for flags in [0x8500u16, 0x8400, 0xAD86] {
        sim.inject(
            0,
            sock(9, 137),
            Service::Name,
            false,
            &response(0x7777, flags, &name("X<00>"), 0, ip(9)),
        );
    }
    assert!(sim.node(0).stats().dropped.unsolicited_response >= 2);
    assert_eq!(sim.wire.len(), before);
    // Trailing bytes after a query are allowed (Samba's padding): answered.
    let mut pad = q.clone();
    pad.extend_from_slice(&[0; 4]);
    sim.inject(0, sock(9, 137), Service::Name, true, &pad);
    assert_eq!(sim.wire.len(), before + 1);
}

#[test]
fn queues_are_bounded() {
    let mut sim = host();
    let cfg = NodeConfig {
        max_events: 8,
        max_transmits: 4,
        ..sim.node(0).config().clone()
    };
    sim.node_mut(0).set_config(cfg).unwrap();
    // Drive the node directly so nothing drains its queues.
    let now = sim.now();
    let node = sim.node_mut(0);
    for k in 0..100u16 {
        node.handle(
            now,
            Incoming {
                from: sock(9, 137),
                service: Service::Name,
                broadcast: false,
                bytes: &[k as u8],
            },
        );
        node.handle(
            now,
            Incoming {
                from: sock(9, 5000 + k),
                service: Service::Name,
                broadcast: false,
                bytes: &query(k, 0x0100, &name("HOST0<00>"), false),
            },
        );
    }
    let st = node.stats().clone();
    assert_eq!(st.transmits_dropped, 96);
    assert!(st.events_dropped >= 92);
    let mut events = 0;
    while node.poll_event().is_some() {
        events += 1;
    }
    let mut tx = 0;
    while node.poll_transmit().is_some() {
        tx += 1;
    }
    assert_eq!((events, tx), (8, 4));
}

#[test]
fn stats_serialize_with_every_counter_named() {
    let sim = host();
    let json = serde_json::to_value(sim.node(0).stats()).unwrap();
    for r in DropReason::ALL {
        assert!(json["dropped"].get(r.as_str()).is_some());
    }
    for k in [
        "names_registered",
        "reassembly_bytes",
        "events_dropped",
        "cache_evictions",
    ] {
        assert!(json.get(k).is_some(), "{k}");
    }
    assert_eq!(json["names_registered"], 2);
}

fn fuzz_node() -> (Node, Instant) {
    let now = Instant::now();
    let mut node = Node::new(NodeConfig::new("10.0.0.1/24".parse().unwrap()), now).unwrap();
    node.register(now, name("HOST0<00>"), false).unwrap();
    node.register(now, name("WG<00>"), true).unwrap();
    let mut later = now;
    for _ in 0..4 {
        later += Duration::from_millis(250);
        node.handle_timeout(later);
    }
    assert!(node
        .names()
        .iter()
        .all(|n| n.state == nbdgm_node::NameState::Active));
    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}
    (node, later)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..700),
        name_service in any::<bool>(),
        broadcast in any::<bool>(),
        port in any::<u16>(),
    ) {
        let (mut node, now) = fuzz_node();
        let service = if name_service { Service::Name } else { Service::Datagram };
        node.handle(now, Incoming { from: sock(9, port), service, broadcast, bytes: &bytes });
        node.handle_timeout(now + Duration::from_secs(3));
        while let Some(t) = node.poll_transmit() {
            // Replies only, and never larger than the amplification cap.
            prop_assert!(t.reply_to.is_some());
            prop_assert!(t.bytes.len() <= 12 * bytes.len());
        }
        while let Some(e) = node.poll_event() {
            if let Event::Delivered(d) = e {
                prop_assert!(d.data.len() <= bytes.len());
            }
        }
    }

    #[test]
    fn mutated_valid_packets_never_panic(
        flips in proptest::collection::vec((0usize..80, any::<u8>()), 1..6),
        which in 0usize..4,
        cut in 0usize..90,
    ) {
        let (mut node, now) = fuzz_node();
        let base = match which {
            0 => valid_datagram(),
            1 => query(3, 0x0110, &name("HOST0<00>"), false),
            2 => query(3, 0x0000, &nbdgm_node::Name::wildcard(), true),
            _ => response(3, 0xAD87, &name("HOST0<00>"), 0, ip(9)),
        };
        let mut b = base.clone();
        for (i, v) in flips {
            if let Some(x) = b.get_mut(i) {
                *x ^= v;
            }
        }
        b.truncate(cut.max(1).min(b.len()));
        let service = if which == 0 { Service::Datagram } else { Service::Name };
        node.handle(now, Incoming { from: sock(9, 138), service, broadcast: false, bytes: &b });
        while node.poll_transmit().is_some() {}
        while node.poll_event().is_some() {}
    }

    #[test]
    fn random_fragments_stay_bounded(
        frags in proptest::collection::vec((0u8..4, 0u16..4, any::<bool>(), any::<bool>(), 0u16..3000, 0usize..600), 1..60),
    ) {
        let (mut node, now) = fuzz_node();
        let limits = node.config().reassembly;
        for (src, id, first, more, offset, len) in frags {
            let mut b = vec![0x10, u8::from(more) | (u8::from(first) << 1)];
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&[10, 0, 0, 20 + src, 0, 138, 0x10, 0]);
            b.extend_from_slice(&(if first { 0 } else { offset }).to_be_bytes());
            if first {
                name("X<00>").emit(&mut b);
                name("HOST0<00>").emit(&mut b);
            }
            b.extend(std::iter::repeat_n(src, len));
            node.handle(now, Incoming { from: sock(20 + src, 138), service: Service::Datagram, broadcast: false, bytes: &b });
            prop_assert!(node.stats().reassembly_bytes <= limits.max_total_bytes as u64);
            prop_assert!(node.stats().reassembly_pending <= limits.max_pending as u64);
        }
        node.handle_timeout(now + Duration::from_secs(2));
        prop_assert_eq!(node.stats().reassembly_pending, 0);
        prop_assert_eq!(node.stats().reassembly_bytes, 0);
    }
}

#[test]
fn reflection_sources_are_never_answered() {
    let mut sim = host();
    let q = query(5, 0x0100, &name("HOST0<00>"), false);
    let before = sim.wire.len();
    for from in [
        std::net::SocketAddrV4::new(std::net::Ipv4Addr::BROADCAST, 137),
        sock(255, 137),
        std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(224, 0, 0, 1), 137),
        std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 137),
        sock(9, 0),
    ] {
        sim.inject(0, from, Service::Name, false, &q);
    }
    assert_eq!(sim.wire.len(), before);
    assert_eq!(sim.node(0).stats().dropped.bad_source, 5);
}

#[test]
fn events_serialize_with_a_tag() {
    let sim = host();
    let ev = sim
        .events(0)
        .iter()
        .find(|e| matches!(e, Event::NameRegistered { .. }))
        .cloned()
        .unwrap();
    let json = serde_json::to_value(&ev).unwrap();
    assert_eq!(json["event"], "name_registered");
    assert_eq!(json["name"], "HOST0<00>");
    let d = Event::Dropped {
        reason: DropReason::BadSource,
        from: sock(1, 2),
    };
    assert_eq!(
        serde_json::to_string(&d).unwrap(),
        r#"{"event":"dropped","reason":"bad_source","from":"10.0.0.1:2"}"#
    );
}
