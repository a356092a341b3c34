//! Random traffic never panics the NBDD and never breaks a cap.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_nbdd::{Name, Nbdd, NbddAction, NbddConfig, QueryAnswer, Rate, RelayPolicy, Resolution};
use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
use proptest::prelude::*;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum Op {
    Packet {
        udp_src: u8,
        bytes: Vec<u8>,
    },
    Resolve {
        group: u8,
        members: Vec<u8>,
        kind: u8,
    },
    Verify {
        src: u8,
        ok: bool,
    },
    Tick(u16),
}

fn ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 2, i % 32)
}

fn group(g: u8) -> Name {
    match g % 5 {
        0 => Name::wildcard(),
        k => Name::new(&format!("G{k}"), 0x1e).unwrap(),
    }
}

fn valid(src: u8, kind: u8, g: u8, id: u16, len: usize, more: bool, first: bool) -> Vec<u8> {
    let msg_type = match kind % 5 {
        0 => MsgType::DirectUnique,
        1 | 2 => MsgType::DirectGroup,
        3 => MsgType::Broadcast,
        _ => MsgType::QueryRequest,
    };
    let body = if msg_type == MsgType::QueryRequest {
        Body::Query {
            destination_name: group(g),
        }
    } else {
        Body::Data {
            length: None,
            offset: if first { 0 } else { 100 },
            body: if first {
                DataBody::Names {
                    source_name: Name::new(&format!("N{src}"), 0).unwrap(),
                    destination_name: group(g),
                    user_data: vec![0xAB; len],
                }
            } else {
                DataBody::Continuation {
                    data: vec![0xCD; len],
                }
            },
        }
    };
    Datagram {
        msg_type,
        flags: Flags {
            more,
            first,
            node_type: NodeType::P,
            reserved: 0,
        },
        id: id % 8,
        source_ip: ip(src),
        source_port: 138,
        body,
    }
    .to_bytes()
    .unwrap()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<u16>(), 0usize..1200, any::<bool>(), any::<bool>(), proptest::collection::vec((any::<u16>(), any::<u8>()), 0..3), any::<bool>())
            .prop_map(|(src, kind, g, id, len, more, first, muts, spoof)| {
                let mut bytes = valid(src, kind, g, id, len, more, first);
                for (at, b) in muts {
                    let n = bytes.len();
                    if n > 0 {
                        bytes[usize::from(at) % n] = b;
                    }
                }
                Op::Packet { udp_src: if spoof { src.wrapping_add(1) } else { src }, bytes }
            }),
        1 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..1200))
            .prop_map(|(src, bytes)| Op::Packet { udp_src: src, bytes }),
        2 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40), any::<u8>())
            .prop_map(|(group, members, kind)| Op::Resolve { group, members, kind }),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(src, ok)| Op::Verify { src, ok }),
        2 => any::<u16>().prop_map(Op::Tick),
    ]
}

fn config(registered: bool) -> NbddConfig {
    NbddConfig {
        max_fanout: 8,
        max_pending: 6,
        max_pending_bytes: 4000,
        max_sources: 8,
        max_cached_groups: 3,
        max_cached_sources: 3,
        max_fragment_sets: 4,
        max_fragment_sets_per_source: 2,
        max_transmit_queue: 64,
        max_actions: 5,
        max_events: 16,
        relay_bytes_per_source_per_s: Rate::new(5000.0, 10_000),
        replies_per_source_per_s: Rate::new(5.0, 5),
        query_answer: if registered {
            QueryAnswer::Members
        } else {
            QueryAnswer::AlwaysPositive
        },
        policy: if registered {
            RelayPolicy::RegisteredSources
        } else {
            RelayPolicy::AllowList("10.0.2.0/27".parse().unwrap())
        },
        own_addresses: vec![Ipv4Addr::new(10, 0, 2, 1)],
        peer_nbdds: vec![Ipv4Addr::new(10, 0, 2, 2)],
        ..NbddConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_traffic_keeps_caps(registered in any::<bool>(), ops in proptest::collection::vec(op(), 1..200), drain_every in 1usize..20) {
        let c = config(registered);
        let t0 = Instant::now();
        let mut now = t0;
        let mut n = Nbdd::new(c.clone(), now).unwrap();
        let mut asked: Vec<NbddAction> = Vec::new();
        let mut relay_in = 0u64;
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Packet { udp_src, bytes } => {
                    relay_in += bytes.len() as u64;
                    n.handle(now, SocketAddrV4::new(ip(udp_src), 138), &bytes);
                }
                Op::Resolve { group: g, members, kind } => {
                    let r = match kind % 4 {
                        0 => Resolution::NotFound,
                        1 => Resolution::Failed,
                        _ => Resolution::Members(members.into_iter().map(ip).collect()),
                    };
                    n.members_resolved(now, &group(g), r);
                }
                Op::Verify { src, ok } => {
                    n.source_verified(now, &Name::new(&format!("N{src}"), 0).unwrap(), ip(src), ok);
                }
                Op::Tick(ms) => {
                    now += Duration::from_millis(u64::from(ms) % 3000);
                    if let Some(t) = n.poll_timeout() {
                        if t <= now {
                            n.handle_timeout(now);
                        }
                    }
                }
            }
            prop_assert!(n.pending_len() <= c.max_pending);
            prop_assert!(n.pending_bytes() <= c.max_pending_bytes);
            prop_assert!(n.cached_groups() <= c.max_cached_groups);
            prop_assert!(n.cached_sources() <= c.max_cached_sources);
            prop_assert!(n.fragment_sets() <= c.max_fragment_sets);
            prop_assert!(n.tracked_sources() <= c.max_sources);
            prop_assert!(n.in_flight() <= 2 * c.max_pending);
            if i % drain_every == 0 {
                let mut count = 0;
                while let Some(t) = n.poll_transmit() {
                    count += 1;
                    prop_assert!(t.bytes.len() <= 1300 + 14);
                    prop_assert!(t.to.ip() != &Ipv4Addr::new(10, 0, 2, 1));
                    prop_assert!(t.to.ip() != &Ipv4Addr::new(10, 0, 2, 2));
                }
                prop_assert!(count <= c.max_transmit_queue);
                while let Some(a) = n.poll_action() { asked.push(a); }
                while n.poll_event().is_some() {}
            }
        }
        let s = n.stats();
        // Relayed bytes never exceed what the buckets allow: one burst per source
        // slot (max_sources + the overflow slot) plus the refill over the elapsed time.
        let secs = now.duration_since(t0).as_secs_f64();
        let slots = (c.max_sources + 1) as f64;
        prop_assert!(s.relayed_bytes as f64 <= slots * (10_000.0 + 5000.0 * secs) + 1.0);
        // Replies are never larger than their requests.
        let replies = s.bytes_out - s.relayed_bytes;
        prop_assert!(replies <= relay_in);
        prop_assert_eq!(s.bytes_in, relay_in);
    }
}
