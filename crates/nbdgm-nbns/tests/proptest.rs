//! Random input never panics and never breaks the caps.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use nbdgm_nbns::{NbnsConfig, NbnsServer};
use nbdgm_wire::nbns::Packet;
use proptest::prelude::*;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum Op {
    Raw(Vec<u8>),
    Nb {
        flags: u16,
        name: u8,
        nb_flags: u16,
        addr: u8,
        from: u8,
        ttl: u32,
    },
    Query(u8, u8),
    Answer {
        id: u16,
        name: u8,
        from: u8,
        positive: bool,
    },
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let flags = prop_oneof![
        Just(REG),
        Just(MH_REG),
        Just(REFRESH8),
        Just(REFRESH9),
        Just(RELEASE),
        any::<u16>()
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(Op::Raw),
        (
            flags,
            0u8..6,
            prop_oneof![Just(H), Just(G | H), any::<u16>()],
            1u8..6,
            1u8..6,
            any::<u32>()
        )
            .prop_map(|(flags, name, nb_flags, addr, from, ttl)| Op::Nb {
                flags,
                name,
                nb_flags,
                addr,
                from,
                ttl
            }),
        (0u8..6, 1u8..6).prop_map(|(n, f)| Op::Query(n, f)),
        (any::<u16>(), 0u8..6, 1u8..6, any::<bool>()).prop_map(|(id, name, from, positive)| {
            Op::Answer {
                id,
                name,
                from,
                positive,
            }
        }),
        (0u16..5_000).prop_map(Op::Advance),
    ]
}

fn nm(i: u8) -> nbdgm_wire::Name {
    name(&format!("N{i}"), if i & 1 == 0 { 0x00 } else { 0x1C })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_traffic_keeps_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        let cfg = NbnsConfig {
            max_names: 4,
            max_group_members: 3,
            max_pending_challenges: 2,
            max_queued_transmits: 16,
            max_queued_events: 16,
            min_ttl: 1,
            expiry_grace: Duration::from_secs(1),
            challenge_timeout: Duration::from_millis(300),
            ..Default::default()
        };
        let mut now = Instant::now();
        let mut s = NbnsServer::new(cfg, now).unwrap();
        let mut last_challenge_ids = vec![];
        for op in ops {
            match op {
                Op::Raw(b) => s.handle(now, src(1), &b),
                Op::Nb { flags, name, nb_flags, addr, from, ttl } => {
                    let b = nb_request(7, flags, &nm(name), nb_flags, ip(addr), ttl);
                    s.handle(now, src(from), &b);
                }
                Op::Query(n, f) => s.handle(now, src(f), &query(3, &nm(n))),
                Op::Answer { id, name, from, positive } => {
                    let id = last_challenge_ids.pop().unwrap_or(id);
                    let addrs = positive.then(|| vec![ip(from)]);
                    s.handle(now, src(from), &challenge_answer(id, &nm(name), addrs));
                }
                Op::Advance(ms) => {
                    now += Duration::from_millis(u64::from(ms) * 100);
                    s.handle_timeout(now);
                }
            }
            let st = s.stats().clone();
            prop_assert!(st.names <= 4);
            prop_assert!(st.pending_challenges <= 2);
            for e in s.entries(now) {
                prop_assert!(e.members.len() <= 3);
            }
            if let Some(t) = s.poll_timeout() {
                // Deadlines never go backwards past what handle_timeout just ran.
                prop_assert!(t > now || st.pending_challenges > 0 || st.names > 0);
            }
            let mut n = 0;
            while let Some(t) = s.poll_transmit() {
                n += 1;
                let p = Packet::parse(&t.bytes);
                prop_assert!(p.is_ok());
                let p = p.unwrap();
                if t.reply_to.is_none() {
                    // A challenge query to an owner.
                    prop_assert_eq!(t.to.port(), 137);
                    last_challenge_ids.push(p.id);
                } else {
                    prop_assert!(p.is_response());
                    prop_assert!(t.to.ip().octets()[0] == 10);
                }
            }
            prop_assert!(n <= 16);
            while s.poll_event().is_some() {}
        }
    }

    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600), port in 0u16..3) {
        let now = Instant::now();
        let mut s = NbnsServer::new(NbnsConfig::default(), now).unwrap();
        s.handle(now, SocketAddrV4::new(ip(1), port), &b);
        s.handle_received(now, src(1), &b, true);
        let st = s.stats();
        prop_assert_eq!(st.packets_received, 2);
        while s.poll_transmit().is_some() {}
    }
}
