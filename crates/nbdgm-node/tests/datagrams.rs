//! Datagram service on the simulated subnet (RFC 1002 §5.3; RFC 1001 §17; DIGEST §2.7, §3).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_node::sim::{Sim, SimConfig, WirePacket};
use nbdgm_node::{
    DropReason, Event, LookupError, LookupTarget, MsgType, NodeConfig, ReassemblyLimits, SendError,
    SendInfo, SendMode, SendRequest, Service, SourceIpPolicy,
};
use nbdgm_wire::datagram::{Datagram, NodeType};
use nbdgm_wire::mailslot::MailslotWrite;

fn req(source: &str, dest: &str, mode: SendMode, data: Vec<u8>) -> SendRequest {
    SendRequest {
        source: name(source),
        destination: name(dest),
        mode,
        data,
    }
}

fn payload(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

/// A subnet of `n` nodes; node i holds HOSTi<00>, nodes 0 and 2 also WG<00> (group).
fn lan(n: u8, cfg: SimConfig) -> Sim {
    let mut sim = net_with(n, cfg);
    for i in 0..n as usize {
        sim.register(i, &format!("HOST{i}<00>"), false).unwrap();
        if i % 2 == 0 {
            sim.register(i, "WG<00>", true).unwrap();
        }
    }
    sim.run_for(secs(1.0));
    sim
}

fn dgm_packets(sim: &Sim) -> Vec<WirePacket> {
    sim.wire
        .iter()
        .filter(|w| w.service == Service::Datagram)
        .cloned()
        .collect()
}

fn send_done(sim: &Sim, i: usize) -> Vec<Result<SendInfo, SendError>> {
    sim.events(i)
        .iter()
        .filter_map(|e| match e {
            Event::SendDone { result, .. } => Some(result.clone()),
            _ => None,
        })
        .collect()
}

fn datagram(t: MsgType, flags: u8, src_ip: u8, source: &str, dest: &str, data: &[u8]) -> Vec<u8> {
    let mut d = Datagram::data(
        t,
        NodeType::B,
        0x1111,
        (ip(src_ip), 138),
        name(source),
        name(dest),
        data,
    );
    d.flags = nbdgm_wire::datagram::Flags::from_byte(flags);
    d.to_bytes().unwrap()
}

#[test]
fn direct_unique_resolves_and_unicasts() {
    let mut sim = lan(2, SimConfig::default());
    let data = payload(100, 1);
    let id = sim
        .send(
            1,
            req("HOST1<00>", "HOST0<00>", SendMode::Unique, data.clone()),
        )
        .unwrap();
    sim.run_for(secs(0.1));
    let got = sim.delivered(0);
    assert_eq!(got.len(), 1);
    let d = &got[0];
    assert_eq!(d.msg_type, MsgType::DirectUnique);
    assert_eq!((d.from, d.header_source), (sock(2, 138), sock(2, 138)));
    assert_eq!(
        (d.source.to_string(), d.destination.to_string()),
        ("HOST1<00>".into(), "HOST0<00>".into())
    );
    assert!(d.for_us && !d.broadcast);
    assert_eq!(
        (d.fragments, &d.data[..], &d.mailslot),
        (1, &data[..], &None)
    );
    assert!(sim.events(1).contains(&Event::SendDone {
        id,
        result: Ok(SendInfo {
            to: sock(1, 138),
            fragments: 1
        })
    }));
    let w = dgm_packets(&sim);
    assert_eq!(w.len(), 1);
    assert!(!w[0].broadcast);
    assert_eq!(&w[0].bytes[..2], &[0x10, 0x02]);
    assert_eq!(&w[0].bytes[4..10], &[10, 0, 0, 2, 0, 138]);
    // Second send: the name is cached, so no new query.
    let queries = with_flags(&sim, 0x0110).len();
    sim.send(1, req("HOST1<00>", "HOST0<00>", SendMode::Unique, vec![1]))
        .unwrap();
    assert_eq!(with_flags(&sim, 0x0110).len(), queries);
    // Sending to one of our own names is delivered locally.
    sim.send(1, req("HOST1<00>", "HOST1<00>", SendMode::Unique, vec![9]))
        .unwrap();
    assert_eq!(sim.delivered(1).last().unwrap().data, vec![9]);
}

#[test]
fn group_and_broadcast_datagrams_reach_members() {
    let mut sim = lan(4, SimConfig::default());
    let slot = MailslotWrite::new("\\MAILSLOT\\BROWSE", vec![1, 2, 3])
        .to_bytes()
        .unwrap();
    sim.send(1, req("HOST1<00>", "WG<00>", SendMode::Group, slot.clone()))
        .unwrap();
    sim.run_for(secs(0.1));
    let w = dgm_packets(&sim);
    assert_eq!(w.len(), 1);
    assert!(w[0].broadcast);
    assert_eq!(w[0].to, sock(255, 138));
    assert_eq!(w[0].bytes[0], 0x11);
    for i in [0, 2] {
        let d = sim.delivered(i);
        assert_eq!(d.len(), 1, "node {i}");
        assert!(d[0].for_us && d[0].broadcast);
        assert_eq!(d[0].msg_type, MsgType::DirectGroup);
        assert_eq!(d[0].mailslot.as_deref(), Some("\\MAILSLOT\\BROWSE"));
        assert_eq!(d[0].data, slot);
    }
    // Node 3 is not a member: delivered with for_us = false, and no error (broadcast).
    let d = sim.delivered(3);
    assert_eq!(d.len(), 1);
    assert!(!d[0].for_us);
    assert_eq!(sim.node(3).stats().datagrams_not_for_us, 1);
    assert_eq!(sim.node(3).stats().datagram_errors_sent, 0);
    // The sender ignored its own looped-back copy.
    assert!(sim.delivered(1).is_empty());
    assert!(sim.node(1).stats().dropped.own_packet > 0);

    sim.send(
        3,
        req("HOST3<00>", "IGNORED<00>", SendMode::Broadcast, vec![7; 10]),
    )
    .unwrap();
    sim.run_for(secs(0.1));
    let w = dgm_packets(&sim);
    assert_eq!(w.last().unwrap().bytes[0], 0x12);
    for i in 0..3 {
        let d = sim.delivered(i);
        let d = d.last().unwrap();
        assert_eq!(d.msg_type, MsgType::Broadcast);
        assert!(d.destination.is_wildcard());
        assert!(d.for_us, "node {i}");
    }
}

#[test]
fn not_for_us_can_be_dropped_instead() {
    let mut sim = lan(2, SimConfig::default());
    let cfg = NodeConfig {
        deliver_not_for_us: false,
        ..sim.node(0).config().clone()
    };
    sim.node_mut(0).set_config(cfg).unwrap();
    let dg = datagram(MsgType::DirectGroup, 0x02, 9, "X<00>", "OTHER<00>", b"hi");
    sim.inject(0, sock(9, 138), Service::Datagram, true, &dg);
    assert!(sim.delivered(0).is_empty());
    assert_eq!(sim.node(0).stats().dropped.not_owned, 1);
}

#[test]
fn datagram_error_only_for_unicast_direct_unique_to_unknown_names() {
    let mut sim = lan(2, SimConfig::default());
    // Header SOURCE_IP 10.0.0.77 differs from the UDP source: the error goes to the UDP source.
    let dg = datagram(
        MsgType::DirectUnique,
        0x02,
        77,
        "X<00>",
        "NOBODY<00>",
        b"data",
    );
    let before = sim.wire.len();
    sim.inject(0, sock(9, 138), Service::Datagram, false, &dg);
    let out: Vec<_> = sim.wire[before..].to_vec();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, sock(9, 138));
    assert_eq!(
        out[0].bytes,
        vec![0x13, 0x00, 0x11, 0x11, 10, 0, 0, 1, 0, 138, 0x82]
    );
    assert_eq!(out[0].reply_to, Some(dg.len()));
    // Broadcast arrival, DIRECT_GROUP, or the option off: no error.
    sim.inject(0, sock(9, 138), Service::Datagram, true, &dg);
    let g = datagram(
        MsgType::DirectGroup,
        0x02,
        9,
        "X<00>",
        "NOBODY<00>",
        b"data",
    );
    sim.inject(0, sock(9, 138), Service::Datagram, false, &g);
    assert_eq!(sim.wire.len(), before + 1);
    let cfg = NodeConfig {
        datagram_error_on_unknown: false,
        ..sim.node(0).config().clone()
    };
    sim.node_mut(0).set_config(cfg).unwrap();
    sim.inject(0, sock(9, 138), Service::Datagram, false, &dg);
    assert_eq!(sim.wire.len(), before + 1);
    assert_eq!(sim.node(0).stats().datagram_errors_sent, 1);
    // On again with NOBODY<00> passive (listened for, not held): no error for it, and
    // it stays not for us; another unknown name still gets one.
    let cfg = NodeConfig {
        datagram_error_on_unknown: true,
        passive_names: vec![name("NOBODY<00>")],
        ..sim.node(0).config().clone()
    };
    sim.node_mut(0).set_config(cfg).unwrap();
    sim.inject(0, sock(9, 138), Service::Datagram, false, &dg);
    assert_eq!(sim.wire.len(), before + 1);
    assert!(!sim.delivered(0).last().unwrap().for_us);
    let other = datagram(MsgType::DirectUnique, 0x02, 9, "X<00>", "OTHER<00>", b"d");
    sim.inject(0, sock(9, 138), Service::Datagram, false, &other);
    assert_eq!(sim.wire.len(), before + 2);
    assert_eq!(sim.node(0).stats().datagram_errors_sent, 2);

    // A received DATAGRAM ERROR flushes the cache entry of that node.
    sim.lookup(1, "HOST0<00>", LookupTarget::Broadcast).unwrap();
    sim.run_for(secs(1.5));
    assert_eq!(sim.node(1).cache().len(), 1);
    let err = [0x13, 0x00, 0x11, 0x11, 10, 0, 0, 1, 0, 138, 0x82];
    sim.inject(1, sock(1, 138), Service::Datagram, false, &err);
    assert!(sim.node(1).cache().is_empty());
    assert_eq!(sim.node(1).stats().datagram_errors_received, 1);
    // A name in conflict does not exist for delivery (RFC 1002 §5.3.3).
    let demand = response(
        1,
        0xAD87,
        &name("HOST0<00>"),
        0,
        std::net::Ipv4Addr::UNSPECIFIED,
    );
    sim.inject(0, sock(9, 137), Service::Name, false, &demand);
    let dg = datagram(MsgType::DirectUnique, 0x02, 9, "X<00>", "HOST0<00>", b"x");
    sim.inject(0, sock(9, 138), Service::Datagram, true, &dg);
    assert!(!sim.delivered(0).last().unwrap().for_us);
}

#[test]
fn fragments_a_3000_byte_datagram_and_reassembles_it_exactly() {
    let mut sim = lan(2, SimConfig::default());
    let data = payload(3000, 7);
    let id = sim
        .send(
            1,
            req("HOST1<00>", "HOST0<00>", SendMode::Unique, data.clone()),
        )
        .unwrap();
    sim.run_for(secs(0.5));
    let frags = dgm_packets(&sim);
    assert_eq!(frags.len(), 6);
    assert!(frags.iter().all(|w| w.bytes.len() + 28 <= 576));
    assert_eq!(frags[0].bytes[1], 0x03); // F | M
    assert_eq!(frags[1].bytes[1], 0x01); // M
    assert_eq!(frags[5].bytes[1], 0x00);
    let got = sim.delivered(0);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, data);
    assert_eq!(got[0].fragments, 6);
    assert!(got[0].for_us);
    assert!(sim.events(1).contains(&Event::SendDone {
        id,
        result: Ok(SendInfo {
            to: sock(1, 138),
            fragments: 6
        })
    }));
    assert_eq!(sim.node(0).stats().datagrams_reassembled, 1);
    assert_eq!(sim.node(0).stats().reassembly_pending, 0);
    assert_eq!(sim.node(0).stats().reassembly_bytes, 0);
}

/// Capture the fragments of one 3000-byte send from node 1 to node 0.
fn captured_fragments(sim: &mut Sim, salt: u8) -> (Vec<u8>, Vec<WirePacket>) {
    let data = payload(3000, salt);
    sim.capture = true;
    sim.captured.clear();
    sim.send(
        1,
        req("HOST1<00>", "HOST0<00>", SendMode::Unique, data.clone()),
    )
    .unwrap();
    sim.capture = false;
    let frags: Vec<_> = sim.captured.drain(..).collect();
    assert_eq!(frags.len(), 6);
    (data, frags)
}

#[test]
fn reassembly_tolerates_reordering_and_duplicates() {
    let mut sim = lan(2, SimConfig::default());
    sim.lookup(1, "HOST0<00>", LookupTarget::Broadcast).unwrap();
    sim.run_for(secs(1.5));
    let (data, frags) = captured_fragments(&mut sim, 3);
    // Reversed, with every fragment twice.
    for f in frags.iter().rev() {
        sim.replay(f);
        sim.replay(f);
    }
    sim.run_for(secs(0.1));
    let got = sim.delivered(0);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, data);
    let st = sim.node(0).stats();
    // The first fragment came last and completed the set; its duplicate starts a new set.
    assert_eq!(st.dropped.fragment_duplicate, 5);
    sim.run_for(secs(2.5));
    assert_eq!(sim.node(0).stats().dropped.fragment_timeout, 1);
    assert_eq!(sim.delivered(0).len(), 1);

    // Shuffled order.
    let (data, frags) = captured_fragments(&mut sim, 4);
    for k in [3, 0, 5, 1, 4, 2] {
        sim.replay(&frags[k]);
    }
    sim.run_for(secs(0.1));
    assert_eq!(sim.delivered(0).last().unwrap().data, data);
}

#[test]
fn lost_fragment_expires_after_fragment_timeout() {
    let mut sim = lan(2, SimConfig::default());
    sim.lookup(1, "HOST0<00>", LookupTarget::Broadcast).unwrap();
    sim.run_for(secs(1.5));
    let (_, frags) = captured_fragments(&mut sim, 5);
    for (k, f) in frags.iter().enumerate() {
        if k != 3 {
            sim.replay(f);
        }
    }
    sim.run_for(secs(1.9));
    assert!(sim.delivered(0).is_empty());
    assert_eq!(sim.node(0).stats().reassembly_pending, 1);
    assert!(sim.node(0).stats().reassembly_bytes > 2000);
    sim.run_for(secs(0.2));
    let st = sim.node(0).stats();
    assert_eq!(st.dropped.fragment_timeout, 1);
    assert_eq!((st.reassembly_pending, st.reassembly_bytes), (0, 0));
    assert!(sim.events(0).contains(&Event::Dropped {
        reason: DropReason::FragmentTimeout,
        from: sock(2, 138)
    }));
}

#[test]
fn lossy_reordering_network_delivers_exact_payloads() {
    let cfg = SimConfig {
        seed: 42,
        reorder: 0.5,
        reorder_window: secs(0.05),
        duplicate: 0.1,
        ..SimConfig::default()
    };
    let mut sim = lan(3, cfg);
    let mut sent = Vec::new();
    for k in 0..20u8 {
        let data = payload(200 + 150 * k as usize, k);
        sim.send(
            1,
            req("HOST1<00>", "HOST0<00>", SendMode::Unique, data.clone()),
        )
        .unwrap();
        sent.push(data);
        sim.run_for(secs(0.05));
    }
    sim.run_for(secs(3.0));
    let got = sim.delivered(0);
    for d in &got {
        assert!(
            sent.iter().any(|s| d.data == *s),
            "a delivery that was never sent"
        );
    }
    for s in &sent {
        assert!(
            got.iter().any(|d| d.data == *s),
            "payload of {} bytes lost",
            s.len()
        );
    }
    // Nothing left behind.
    assert_eq!(sim.node(0).stats().reassembly_pending, 0);

    // With 30 % loss some sets stay incomplete; they all expire.
    let cfg = SimConfig {
        seed: 7,
        loss: 0.3,
        ..SimConfig::default()
    };
    let mut sim = lan(2, cfg);
    sim.lookup(1, "HOST0<00>", LookupTarget::Broadcast).unwrap();
    sim.run_for(secs(2.0));
    for k in 0..10u8 {
        let _ = sim.send(
            1,
            req("HOST1<00>", "HOST0<00>", SendMode::Unique, payload(3000, k)),
        );
    }
    sim.run_for(secs(3.0));
    let st = sim.node(0).stats();
    assert!(st.dropped.fragment_timeout > 0);
    assert_eq!(st.reassembly_pending, 0);
    for d in sim.delivered(0) {
        assert_eq!(d.data.len(), 3000);
    }
}

#[test]
fn reassembly_flood_stays_under_the_caps() {
    let mut sim = net(1);
    let limits = ReassemblyLimits {
        max_pending: 32,
        max_bytes_per_source: 8 * 1024,
        max_total_bytes: 64 * 1024,
        max_datagram_bytes: 65_535,
    };
    let cfg = NodeConfig {
        reassembly: limits,
        ..sim.node(0).config().clone()
    };
    sim.node_mut(0).set_config(cfg).unwrap();
    let chunk = vec![0xAB; 500];
    for src in 0..200u16 {
        let from = std::net::SocketAddrV4::new(
            std::net::Ipv4Addr::new(10, 1, (src >> 8) as u8, src as u8),
            138,
        );
        for id in 0..20u16 {
            // Middle fragments only: never complete.
            let mut b = vec![0x11, 0x01];
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&from.ip().octets());
            b.extend_from_slice(&138u16.to_be_bytes());
            b.extend_from_slice(&4000u16.to_be_bytes());
            b.extend_from_slice(&(1000 + id).to_be_bytes());
            b.extend_from_slice(&chunk);
            sim.inject(0, from, Service::Datagram, false, &b);
            let st = sim.node(0).stats();
            assert!(st.reassembly_bytes <= limits.max_total_bytes as u64);
            assert!(st.reassembly_pending <= limits.max_pending as u64);
        }
    }
    let st = sim.node(0).stats().clone();
    assert_eq!(st.fragments_received, 4000);
    assert!(st.reassembly_bytes_peak <= limits.max_total_bytes as u64);
    assert!(st.dropped.fragment_evicted >= 4000 - limits.max_pending as u64);
    // The event queue is bounded too.
    assert!(sim.node(0).stats().events_dropped == 0 || sim.events(0).len() <= 2048);
    sim.run_for(secs(2.1));
    let st = sim.node(0).stats();
    assert_eq!((st.reassembly_pending, st.reassembly_bytes), (0, 0));
}

#[test]
fn source_ip_policy() {
    for policy in [
        SourceIpPolicy::Accept,
        SourceIpPolicy::Log,
        SourceIpPolicy::Drop,
    ] {
        let mut sim = lan(1, SimConfig::default());
        let cfg = NodeConfig {
            source_ip_policy: policy,
            ..sim.node(0).config().clone()
        };
        sim.node_mut(0).set_config(cfg).unwrap();
        let dg = datagram(
            MsgType::DirectUnique,
            0x02,
            99,
            "X<00>",
            "HOST0<00>",
            b"spoof",
        );
        sim.inject(0, sock(9, 138), Service::Datagram, false, &dg);
        let delivered = sim.delivered(0);
        let logged = sim.events(0).iter().any(|e| {
            *e == Event::SourceIpMismatch {
                from: sock(9, 138),
                header: sock(99, 138),
            }
        });
        let st = sim.node(0).stats();
        assert_eq!(st.source_ip_mismatches, 1);
        match policy {
            SourceIpPolicy::Accept => assert!(delivered.len() == 1 && !logged),
            SourceIpPolicy::Log => assert!(delivered.len() == 1 && logged),
            SourceIpPolicy::Drop => {
                assert!(delivered.is_empty() && !logged);
                assert_eq!(st.dropped.source_ip_mismatch, 1);
            }
        }
        if let Some(d) = delivered.first() {
            assert_eq!((d.from, d.header_source), (sock(9, 138), sock(99, 138)));
        }
    }
}

#[test]
fn own_looped_back_datagrams_are_ignored_but_not_everything_from_our_ip() {
    let mut sim = lan(1, SimConfig::default());
    sim.send(0, req("HOST0<00>", "*", SendMode::Broadcast, vec![1]))
        .unwrap();
    sim.run_for(secs(0.1));
    // Only the local copy (issue 17 §2): the looped-back packet is dropped.
    let d = sim.delivered(0);
    assert_eq!(d.len(), 1);
    assert!(d[0].local_copy.is_some());
    assert!(sim.events(0).contains(&Event::Dropped {
        reason: DropReason::OwnPacket,
        from: sock(1, 138)
    }));
    // Another process on our own address (other port) is heard.
    let dg = datagram(
        MsgType::DirectUnique,
        0x02,
        1,
        "X<00>",
        "HOST0<00>",
        b"local",
    );
    sim.inject(0, sock(1, 40000), Service::Datagram, false, &dg);
    assert_eq!(sim.delivered(0).len(), 2);
}

#[test]
fn send_errors() {
    let mut sim = lan(2, SimConfig::default());
    // Not our name.
    assert!(sim
        .send(1, req("HOST0<00>", "HOST1<00>", SendMode::Unique, vec![]))
        .is_err());
    // Too big.
    assert!(sim
        .send(
            1,
            req("HOST1<00>", "WG<00>", SendMode::Group, vec![0; 70_000])
        )
        .is_err());
    // Unresolvable: SendDone error after the broadcast retries.
    sim.send(1, req("HOST1<00>", "NOBODY<00>", SendMode::Unique, vec![1]))
        .unwrap();
    sim.run_for(secs(1.0));
    assert_eq!(
        send_done(&sim, 1).last().cloned(),
        Some(Err(SendError::Unresolved(LookupError::NoResponse)))
    );
    // Standalone tools may send under an unregistered name.
    let cfg = NodeConfig {
        allow_unregistered_source: true,
        ..sim.node(1).config().clone()
    };
    sim.node_mut(1).set_config(cfg).unwrap();
    sim.send(1, req("TOOL<00>", "WG<00>", SendMode::Group, vec![2]))
        .unwrap();
    sim.run_for(secs(0.1));
    assert_eq!(sim.delivered(0).last().unwrap().source, name("TOOL<00>"));
}

#[test]
fn nbdd_queries_are_ignored_and_counted() {
    let mut sim = lan(1, SimConfig::default());
    let before = sim.wire.len();
    for t in [0x14u8, 0x15, 0x16] {
        let mut b = vec![t, 0x02, 0, 1, 10, 0, 0, 9, 0, 138];
        name("HOST0<00>").emit(&mut b);
        sim.inject(0, sock(9, 138), Service::Datagram, false, &b);
    }
    assert_eq!(sim.wire.len(), before);
    assert_eq!(sim.node(0).stats().dropped.nbdd_query, 3);
}

#[test]
fn announce_address_and_explicit_targets() {
    // Node 1 sits behind NAT: its registrations and datagram headers carry 203.0.113.5.
    let mut sim = Sim::new(SimConfig::default());
    sim.add("10.0.0.1/24");
    let mut c = NodeConfig::new(nbdgm_node::Interface::parse("10.0.0.2/24").unwrap());
    c.announce_address = Some("203.0.113.5".parse().unwrap());
    sim.add_node(c).unwrap();
    sim.register(0, "HOST0<00>", false).unwrap();
    sim.register(1, "HOST1<00>", false).unwrap();
    sim.run_for(secs(1.0));
    let regs: Vec<nbdgm_wire::nbns::Packet> = sim
        .wire
        .iter()
        .filter(|w| w.from.ip() == &ip(2) && w.service == Service::Name)
        .filter_map(nbns)
        .collect();
    assert!(!regs.is_empty());
    for p in &regs {
        let rr = p.additional.first().expect("registration record");
        let nbdgm_wire::nbns::RData::Nb(entries) = &rr.rdata else {
            panic!("{rr:?}")
        };
        assert_eq!(entries[0].ip.to_string(), "203.0.113.5");
    }
    // UniqueAt: DIRECT_UNIQUE straight to the address, no name query.
    let queries = with_flags(&sim, 0x0110).len();
    sim.send(
        1,
        req(
            "HOST1<00>",
            "HOST0<00>",
            SendMode::UniqueAt(sock(1, 138)),
            vec![7],
        ),
    )
    .unwrap();
    sim.run_for(secs(0.1));
    assert_eq!(with_flags(&sim, 0x0110).len(), queries, "no lookup");
    let d = sim.delivered(0).last().unwrap().clone();
    assert_eq!(d.msg_type, MsgType::DirectUnique);
    assert_eq!(d.from, sock(2, 138));
    assert_eq!(d.header_source, "203.0.113.5:138".parse().unwrap());
    // GroupAt: DIRECT_GROUP by unicast.
    sim.send(
        1,
        req(
            "HOST1<00>",
            "WG<1d>",
            SendMode::GroupAt(sock(1, 138)),
            vec![8],
        ),
    )
    .unwrap();
    sim.run_for(secs(0.1));
    let w = dgm_packets(&sim);
    let last = w.last().unwrap();
    assert!(!last.broadcast);
    assert_eq!(last.to, sock(1, 138));
    assert_eq!(last.bytes[0], 0x11);
}
