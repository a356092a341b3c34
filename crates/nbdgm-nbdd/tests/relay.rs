//! Behaviour of the NBDD engine (RFC 1002 §5.3.4, RFC 1001 §17.1.2, §17.3).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_nbdd::{
    DropReason, Name, Nbdd, NbddAction, NbddConfig, NbddEvent, PrefixSet, QueryAnswer, Rate,
    RelayPolicy, Resolution, Transmit, UniqueHandling,
};
use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

const NBDD_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const A: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 11);
const C: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 12);
const D: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 13);

fn cfg() -> NbddConfig {
    NbddConfig {
        policy: RelayPolicy::AllowList("10.0.0.0/8".parse().unwrap()),
        own_addresses: vec![NBDD_IP],
        peer_nbdds: vec![PEER],
        ..NbddConfig::default()
    }
}

fn sa(ip: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(ip, 138)
}

fn group() -> Name {
    Name::new("WORKGROUP", 0x1e).unwrap()
}

fn fred() -> Name {
    Name::new("FRED", 0).unwrap()
}

fn datagram(t: MsgType, src: Ipv4Addr, id: u16, dest: &Name, data_len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..data_len).map(|i| (i % 253) as u8).collect();
    Datagram::data(t, NodeType::P, id, (src, 138), fred(), dest.clone(), data)
        .to_bytes()
        .unwrap()
}

fn group_dg(src: Ipv4Addr, id: u16, len: usize) -> Vec<u8> {
    datagram(MsgType::DirectGroup, src, id, &group(), len)
}

fn transmits(n: &mut Nbdd) -> Vec<Transmit> {
    std::iter::from_fn(|| n.poll_transmit()).collect()
}

fn actions(n: &mut Nbdd) -> Vec<NbddAction> {
    std::iter::from_fn(|| n.poll_action()).collect()
}

fn events(n: &mut Nbdd) -> Vec<NbddEvent> {
    std::iter::from_fn(|| n.poll_event()).collect()
}

fn drops(n: &Nbdd, r: DropReason) -> u64 {
    n.stats().drops.get(r)
}

/// Run every timer due up to `until`, the way a runtime would.
fn advance(n: &mut Nbdd, until: Instant) {
    for _ in 0..10_000 {
        match n.poll_timeout() {
            Some(t) if t <= until => n.handle_timeout(t),
            _ => break,
        }
    }
    n.handle_timeout(until);
}

/// An NBDD with the members of `group()` resolved to `members`.
fn with_members(c: NbddConfig, now: Instant, members: &[Ipv4Addr]) -> Nbdd {
    let mut n = Nbdd::new(c, now).unwrap();
    n.members_resolved(now, &group(), Resolution::Members(members.to_vec()));
    n
}

#[test]
fn relays_unchanged_once_per_member_excluding_originator() {
    let now = Instant::now();
    let mut n = Nbdd::new(cfg(), now).unwrap();
    let pkt = group_dg(A, 0x4242, 100);
    n.handle(now, sa(A), &pkt);
    assert_eq!(actions(&mut n), vec![NbddAction::ResolveMembers(group())]);
    assert!(transmits(&mut n).is_empty());
    assert_eq!(n.pending_len(), 1);
    // The originator and duplicates in the member list are skipped.
    n.members_resolved(now, &group(), Resolution::Members(vec![A, B, C, B, D]));
    let tx = transmits(&mut n);
    let mut to: Vec<_> = tx.iter().map(|t| *t.to.ip()).collect();
    to.sort();
    assert_eq!(to, vec![B, C, D]);
    for t in &tx {
        assert_eq!(t.bytes, pkt, "header and data unchanged byte for byte");
        assert_eq!(t.to.port(), 138);
    }
    assert_eq!(n.pending_len(), 0);
    assert_eq!(n.stats().relayed_copies, 3);
    assert_eq!(n.stats().relayed_packets, 1);
    // Cached now: the next one goes out at once, with no new action.
    n.handle(now, sa(A), &pkt);
    assert!(actions(&mut n).is_empty());
    assert_eq!(transmits(&mut n).len(), 3);
    assert!(events(&mut n).iter().any(|e| matches!(
        e,
        NbddEvent::Relayed {
            copies: 3,
            truncated: false,
            ..
        }
    )));
}

#[test]
fn fanout_cap_truncates_and_counts() {
    let now = Instant::now();
    let c = NbddConfig {
        max_fanout: 3,
        ..cfg()
    };
    let members: Vec<Ipv4Addr> = (0..50).map(|i| Ipv4Addr::new(10, 9, 0, i)).collect();
    let mut n = with_members(c, now, &members);
    n.handle(now, sa(A), &group_dg(A, 1, 10));
    assert_eq!(transmits(&mut n).len(), 3);
    assert_eq!(n.stats().fanout_truncated, 1);
    // Exactly max_fanout + the originator: the originator is dropped, nothing truncated.
    let mut n = with_members(
        NbddConfig {
            max_fanout: 3,
            ..cfg()
        },
        now,
        &[A, B, C, D],
    );
    n.handle(now, sa(A), &group_dg(A, 1, 10));
    assert_eq!(transmits(&mut n).len(), 3);
    assert_eq!(n.stats().fanout_truncated, 0);
}

#[test]
fn members_that_are_nbdds_or_invalid_are_skipped() {
    let now = Instant::now();
    let mut n = with_members(
        cfg(),
        now,
        &[
            NBDD_IP,
            PEER,
            Ipv4Addr::BROADCAST,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::new(224, 0, 0, 1),
            B,
        ],
    );
    n.handle(now, sa(A), &group_dg(A, 1, 10));
    let tx = transmits(&mut n);
    assert_eq!(tx.len(), 1);
    assert_eq!(*tx[0].to.ip(), B);
    assert_eq!(n.stats().members_skipped_nbdd, 2);
    assert_eq!(n.stats().members_skipped_invalid, 3);
    // Only the originator left: nothing to relay, counted.
    let mut n = with_members(cfg(), now, &[A, NBDD_IP]);
    n.handle(now, sa(A), &group_dg(A, 1, 10));
    assert!(transmits(&mut n).is_empty());
    assert_eq!(drops(&n, DropReason::NoMembers), 1);
}

#[test]
fn allow_list_policy() {
    let now = Instant::now();
    let c = NbddConfig {
        policy: RelayPolicy::AllowList(PrefixSet::from_nets(&["10.0.1.0/24".parse().unwrap()])),
        ..cfg()
    };
    let mut n = with_members(c, now, &[A, B, C]);
    let outsider = Ipv4Addr::new(192, 0, 2, 7);
    n.handle(now, sa(outsider), &group_dg(outsider, 1, 10));
    assert!(transmits(&mut n).is_empty());
    assert_eq!(drops(&n, DropReason::PolicyDenied), 1);
    n.handle(now, sa(A), &group_dg(A, 1, 10));
    assert_eq!(transmits(&mut n).len(), 2);
    // Empty allow list refuses everyone.
    let mut n = with_members(
        NbddConfig {
            policy: RelayPolicy::AllowList(PrefixSet::empty()),
            ..cfg()
        },
        now,
        &[A, B],
    );
    n.handle(now, sa(A), &group_dg(A, 1, 10));
    assert_eq!(drops(&n, DropReason::PolicyDenied), 1);
}

#[test]
fn registered_sources_verification_flow() {
    let now = Instant::now();
    let c = NbddConfig {
        policy: RelayPolicy::RegisteredSources,
        ..cfg()
    };
    let mut n = Nbdd::new(c, now).unwrap();
    let pkt = group_dg(A, 7, 10);
    n.handle(now, sa(A), &pkt);
    // Both asked at once.
    let a = actions(&mut n);
    assert!(a.contains(&NbddAction::VerifySource(fred(), A)));
    assert!(a.contains(&NbddAction::ResolveMembers(group())));
    n.members_resolved(now, &group(), Resolution::Members(vec![B, C]));
    assert!(
        transmits(&mut n).is_empty(),
        "still waiting for verification"
    );
    n.source_verified(now, &fred(), A, true);
    assert_eq!(transmits(&mut n).len(), 2);
    // Cached: relayed at once.
    n.handle(now, sa(A), &pkt);
    assert!(actions(&mut n).is_empty());
    assert_eq!(transmits(&mut n).len(), 2);

    // Not registered at B: refused, and the refusal is cached.
    let pkt_b = group_dg(B, 8, 10);
    n.handle(now, sa(B), &pkt_b);
    assert_eq!(actions(&mut n), vec![NbddAction::VerifySource(fred(), B)]);
    n.source_verified(now, &fred(), B, false);
    assert!(transmits(&mut n).is_empty());
    n.handle(now, sa(B), &pkt_b);
    assert!(actions(&mut n).is_empty());
    assert_eq!(drops(&n, DropReason::SourceNotRegistered), 2);

    // No answer at all: timed out and counted.
    let pkt_c = group_dg(C, 9, 10);
    n.handle(now, sa(C), &pkt_c);
    assert_eq!(actions(&mut n).len(), 1);
    let later = now + Duration::from_secs(6);
    assert!(n.poll_timeout().unwrap() <= later);
    n.handle_timeout(later);
    assert_eq!(drops(&n, DropReason::VerifyTimeout), 1);
    assert_eq!(n.pending_len(), 0);
}

#[test]
fn recursion_refused() {
    let now = Instant::now();
    let mut n = with_members(cfg(), now, &[A, B, C]);
    // From a peer NBDD (UDP source), even with an innocent SOURCE_IP.
    n.handle(now, sa(PEER), &group_dg(A, 1, 10));
    // From ourselves.
    n.handle(now, sa(NBDD_IP), &group_dg(NBDD_IP, 1, 10));
    // SOURCE_IP is ours (a relay loop through some other box).
    let c2 = NbddConfig {
        require_source_ip_match: false,
        ..cfg()
    };
    let mut m = with_members(c2, now, &[A, B]);
    m.handle(now, sa(A), &group_dg(NBDD_IP, 1, 10));
    assert!(transmits(&mut n).is_empty());
    assert!(transmits(&mut m).is_empty());
    assert_eq!(drops(&n, DropReason::Recursion), 2);
    assert_eq!(drops(&m, DropReason::Recursion), 1);
}

#[test]
fn spoofed_source_ip_refused() {
    let now = Instant::now();
    let mut n = with_members(cfg(), now, &[A, B, C]);
    n.handle(now, sa(A), &group_dg(B, 1, 10));
    assert!(transmits(&mut n).is_empty());
    assert_eq!(drops(&n, DropReason::SourceIpMismatch), 1);
}

#[test]
fn rate_limit_bounds_a_flood() {
    let now = Instant::now();
    let members: Vec<Ipv4Addr> = (1..=10).map(|i| Ipv4Addr::new(10, 9, 0, i)).collect();
    let c = NbddConfig {
        relay_bytes_per_source_per_s: Rate::new(10_000.0, 20_000),
        relay_bytes_total_per_s: None,
        ..cfg()
    };
    let mut n = with_members(c, now, &members);
    let pkt = group_dg(A, 1, 200); // 282 bytes, 10 copies = 2820 bytes per packet
    let mut t = now;
    for i in 0..10_000u32 {
        t = now + Duration::from_micros(u64::from(i) * 100); // 10 000 pkt/s for 1 s
        n.handle(t, sa(A), &pkt);
        transmits(&mut n);
    }
    let s = n.stats();
    let elapsed = t.duration_since(now).as_secs_f64();
    let cap = 20_000.0 + 10_000.0 * elapsed;
    assert!(s.relayed_bytes as f64 <= cap, "{} > {cap}", s.relayed_bytes);
    assert!(s.relayed_bytes > 0);
    assert!(
        s.amplification() < 1.0,
        "amplification {}",
        s.amplification()
    );
    assert!(drops(&n, DropReason::RateLimited) > 9000);
    // Another source is unaffected.
    n.handle(t, sa(B), &group_dg(B, 1, 200));
    assert_eq!(transmits(&mut n).len(), 10);
}

#[test]
fn global_rate_limit() {
    let now = Instant::now();
    let members: Vec<Ipv4Addr> = (1..=10).map(|i| Ipv4Addr::new(10, 9, 0, i)).collect();
    let c = NbddConfig {
        relay_bytes_total_per_s: Some(Rate::new(1.0, 1000)),
        ..cfg()
    };
    let mut n = with_members(c, now, &members);
    n.handle(now, sa(A), &group_dg(A, 1, 200)); // 282 bytes per copy: 3 fit
    assert_eq!(transmits(&mut n).len(), 3);
    assert_eq!(n.stats().copies_rate_limited, 7);
}

#[test]
fn pending_queue_cap_and_resolve_timeout() {
    let now = Instant::now();
    let c = NbddConfig {
        max_pending: 4,
        ..cfg()
    };
    let mut n = Nbdd::new(c, now).unwrap();
    for i in 0..10 {
        n.handle(now, sa(A), &group_dg(A, i, 10));
    }
    assert_eq!(n.pending_len(), 4);
    assert_eq!(drops(&n, DropReason::PendingFull), 6);
    assert_eq!(actions(&mut n).len(), 1, "one resolution for the group");
    // Per-source cap: one source cannot fill the queue.
    let mut p = Nbdd::new(
        NbddConfig {
            max_pending_per_source: 2,
            ..cfg()
        },
        now,
    )
    .unwrap();
    for i in 0..5 {
        p.handle(now, sa(A), &group_dg(A, i, 10));
    }
    p.handle(now, sa(B), &group_dg(B, 1, 10));
    assert_eq!(p.pending_len(), 3);
    assert_eq!(drops(&p, DropReason::PendingFull), 3);
    // Bytes cap too.
    let mut m = Nbdd::new(
        NbddConfig {
            max_pending_bytes: 300,
            ..cfg()
        },
        now,
    )
    .unwrap();
    for i in 0..10 {
        m.handle(now, sa(A), &group_dg(A, i, 100));
    }
    assert!(m.pending_bytes() <= 300);
    assert_eq!(
        drops(&m, DropReason::PendingFull),
        9,
        "182-byte items, 300-byte cap"
    );
    // Timeout drops them all, counted.
    let t = now + Duration::from_secs(5);
    advance(&mut n, t - Duration::from_millis(1));
    assert_eq!(
        n.pending_len(),
        4,
        "still waiting just before resolve_timeout"
    );
    advance(&mut n, t);
    assert_eq!(n.pending_len(), 0);
    assert_eq!(drops(&n, DropReason::ResolveTimeout), 4);
    assert_eq!(n.in_flight(), 0);
    // A late answer is accepted into the cache but relays nothing old.
    n.members_resolved(t, &group(), Resolution::Members(vec![B]));
    assert!(transmits(&mut n).is_empty());
    assert_eq!(n.stats().unsolicited_answers, 1);
}

#[test]
fn resolve_failed_and_not_found() {
    let now = Instant::now();
    let mut n = Nbdd::new(cfg(), now).unwrap();
    n.handle(now, sa(A), &group_dg(A, 1, 10));
    n.members_resolved(now, &group(), Resolution::Failed);
    assert_eq!(drops(&n, DropReason::ResolveFailed), 1);
    assert_eq!(n.cached_groups(), 0);
    n.handle(now, sa(A), &group_dg(A, 2, 10));
    assert_eq!(actions(&mut n).len(), 2, "asked again after the failure");
    n.members_resolved(now, &group(), Resolution::NotFound);
    assert_eq!(drops(&n, DropReason::GroupNotFound), 1);
    // Negative answers are cached.
    n.handle(now, sa(A), &group_dg(A, 3, 10));
    assert!(actions(&mut n).is_empty());
    assert_eq!(drops(&n, DropReason::GroupNotFound), 2);
}

#[test]
fn member_cache_ttl_and_cap() {
    let now = Instant::now();
    let c = NbddConfig {
        member_cache_ttl: Duration::from_secs(10),
        max_cached_groups: 2,
        ..cfg()
    };
    let mut n = with_members(c, now, &[B]);
    n.handle(now, sa(A), &group_dg(A, 1, 10));
    assert!(actions(&mut n).is_empty());
    assert_eq!(transmits(&mut n).len(), 1);
    let later = now + Duration::from_secs(11);
    n.handle(later, sa(A), &group_dg(A, 2, 10));
    assert_eq!(actions(&mut n), vec![NbddAction::ResolveMembers(group())]);
    n.members_resolved(later, &group(), Resolution::Members(vec![C]));
    let tx = transmits(&mut n);
    assert_eq!(tx.len(), 1);
    assert_eq!(*tx[0].to.ip(), C);
    for i in 0..10u8 {
        let g = Name::new(&format!("G{i}"), 0).unwrap();
        n.members_resolved(later, &g, Resolution::Members(vec![B]));
    }
    assert_eq!(n.cached_groups(), 2);
    assert!(n.stats().member_cache_evictions >= 9);
    n.handle_timeout(later + Duration::from_secs(20));
    assert_eq!(n.cached_groups(), 0);
}

fn query(src: Ipv4Addr, id: u16, name: &Name) -> Vec<u8> {
    Datagram::<Vec<u8>> {
        msg_type: MsgType::QueryRequest,
        flags: Flags::single(NodeType::P),
        id,
        source_ip: src,
        source_port: 138,
        body: Body::Query {
            destination_name: name.clone(),
        },
    }
    .to_bytes()
    .unwrap()
}

fn parse(t: &Transmit) -> Datagram {
    Datagram::parse(&t.bytes).unwrap()
}

#[test]
fn query_members_policy() {
    let now = Instant::now();
    let mut n = Nbdd::new(cfg(), now).unwrap();
    let q = query(A, 0xBEEF, &group());
    n.handle(now, sa(A), &q);
    assert_eq!(actions(&mut n), vec![NbddAction::ResolveMembers(group())]);
    n.members_resolved(now, &group(), Resolution::Members(vec![A, B]));
    let tx = transmits(&mut n);
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].to, sa(A));
    let r = parse(&tx[0]);
    assert_eq!(r.msg_type, MsgType::PositiveQueryResponse);
    assert_eq!(r.id, 0xBEEF);
    assert_eq!(r.destination_name(), Some(&group()));
    assert_eq!(r.source_ip, NBDD_IP);
    assert_eq!(tx[0].bytes.len(), q.len());
    // Only the requester is a member: NEGATIVE.
    let other = Name::new("LONELY", 0).unwrap();
    n.members_resolved(now, &other, Resolution::Members(vec![A]));
    n.handle(now, sa(A), &query(A, 2, &other));
    let r = parse(&transmits(&mut n)[0]);
    assert_eq!(r.msg_type, MsgType::NegativeQueryResponse);
    assert_eq!(r.id, 2);
    assert_eq!(r.destination_name(), Some(&other));
    // Unknown name, NBNS says not found: NEGATIVE.
    let unknown = Name::new("NOPE", 0).unwrap();
    n.handle(now, sa(A), &query(A, 3, &unknown));
    n.members_resolved(now, &unknown, Resolution::NotFound);
    assert_eq!(
        parse(&transmits(&mut n)[0]).msg_type,
        MsgType::NegativeQueryResponse
    );
    // No answer from the NBNS: NEGATIVE at the timeout (every query is answered).
    let slow = Name::new("SLOW", 0).unwrap();
    n.handle(now, sa(A), &query(A, 4, &slow));
    n.handle_timeout(now + Duration::from_secs(5));
    let r = parse(&transmits(&mut n)[0]);
    assert_eq!((r.msg_type, r.id), (MsgType::NegativeQueryResponse, 4));
    // Another scope: NEGATIVE at once.
    let scoped = group().with_scope("OTHER.SCOPE").unwrap();
    n.handle(now, sa(A), &query(A, 5, &scoped));
    let r = parse(&transmits(&mut n)[0]);
    assert_eq!(r.msg_type, MsgType::NegativeQueryResponse);
    assert_eq!(r.destination_name(), Some(&scoped));
    assert_eq!(n.stats().queries_positive, 1);
    assert_eq!(n.stats().queries_negative, 4);
}

#[test]
fn query_always_positive_policy() {
    let now = Instant::now();
    let c = NbddConfig {
        query_answer: QueryAnswer::AlwaysPositive,
        ..cfg()
    };
    let mut n = Nbdd::new(c, now).unwrap();
    n.handle(now, SocketAddrV4::new(A, 50_000), &query(A, 77, &group()));
    assert!(actions(&mut n).is_empty());
    let tx = transmits(&mut n);
    assert_eq!(tx[0].to, SocketAddrV4::new(A, 50_000), "UDP source port");
    let r = parse(&tx[0]);
    assert_eq!(r.msg_type, MsgType::PositiveQueryResponse);
    assert_eq!(r.id, 77);
    assert_eq!(r.destination_name(), Some(&group()));
    // A source outside the allow list gets NEGATIVE.
    let outsider = Ipv4Addr::new(192, 0, 2, 1);
    n.handle(now, sa(outsider), &query(outsider, 78, &group()));
    assert_eq!(
        parse(&transmits(&mut n)[0]).msg_type,
        MsgType::NegativeQueryResponse
    );
}

#[test]
fn replies_are_rate_limited() {
    let now = Instant::now();
    let c = NbddConfig {
        query_answer: QueryAnswer::AlwaysPositive,
        replies_per_source_per_s: Rate::new(1.0, 5),
        ..cfg()
    };
    let mut n = Nbdd::new(c, now).unwrap();
    let q = query(A, 1, &group());
    for _ in 0..100 {
        n.handle(now, sa(A), &q);
    }
    assert_eq!(transmits(&mut n).len(), 5);
    assert_eq!(drops(&n, DropReason::ReplyRateLimited), 95);
    assert!(n.stats().bytes_out <= n.stats().bytes_in);
}

#[test]
fn datagram_errors() {
    let now = Instant::now();
    let mut n = Nbdd::new(cfg(), now).unwrap();
    // DIRECT_UNIQUE to the NBDD: 0x82, DGM_ID echoed, to the UDP source.
    let u = datagram(MsgType::DirectUnique, A, 0x1111, &fred(), 20);
    n.handle(now, sa(A), &u);
    let tx = transmits(&mut n);
    assert_eq!(tx.len(), 1);
    let e = parse(&tx[0]);
    assert_eq!(e.msg_type, MsgType::Error);
    assert_eq!(e.body, Body::Error { code: 0x82 });
    assert_eq!(e.id, 0x1111);
    assert!(!e.flags.first && !e.flags.more);
    assert!(tx[0].bytes.len() < u.len());
    // Bad source name (illegal character in the first label): 0x83.
    let mut bad_src = group_dg(A, 0x2222, 10);
    bad_src[15] = b'Z';
    n.handle(now, sa(A), &bad_src);
    let e = parse(&transmits(&mut n)[0]);
    assert_eq!((e.body, e.id), (Body::Error { code: 0x83 }, 0x2222));
    // Bad destination name: 0x84.
    let mut bad_dst = group_dg(A, 0x3333, 10);
    bad_dst[14 + 34 + 1] = b'Z';
    n.handle(now, sa(A), &bad_dst);
    let e = parse(&transmits(&mut n)[0]);
    assert_eq!((e.body, e.id), (Body::Error { code: 0x84 }, 0x3333));
    // Query with a bad name: 0x84.
    let mut bad_q = query(A, 0x4444, &group());
    bad_q[11] = b'Z';
    n.handle(now, sa(A), &bad_q);
    let e = parse(&transmits(&mut n)[0]);
    assert_eq!((e.body, e.id), (Body::Error { code: 0x84 }, 0x4444));
    assert_eq!(n.stats().errors_sent_0x82, 1);
    assert_eq!(n.stats().errors_sent_0x83, 1);
    assert_eq!(n.stats().errors_sent_0x84, 2);
    assert_eq!(drops(&n, DropReason::Malformed), 3);
    // Errors are never answered.
    let err: Datagram = Datagram {
        msg_type: MsgType::Error,
        flags: Flags::single(NodeType::B),
        id: 5,
        source_ip: A,
        source_port: 138,
        body: Body::Error { code: 0x82 },
    };
    n.handle(now, sa(A), &err.to_bytes().unwrap());
    assert!(transmits(&mut n).is_empty());
    assert_eq!(n.stats().errors_received, 1);
    assert!(events(&mut n)
        .iter()
        .any(|e| matches!(e, NbddEvent::ErrorReceived { code: 0x82, .. })));
    // Not for sources outside the allow list, and not when configured off.
    let outsider = Ipv4Addr::new(192, 0, 2, 1);
    n.handle(
        now,
        sa(outsider),
        &datagram(MsgType::DirectUnique, outsider, 1, &fred(), 5),
    );
    assert!(transmits(&mut n).is_empty());
    let mut m = Nbdd::new(
        NbddConfig {
            unique_datagram: UniqueHandling::Drop,
            ..cfg()
        },
        now,
    )
    .unwrap();
    m.handle(now, sa(A), &u);
    assert!(transmits(&mut m).is_empty());
    assert_eq!(drops(&m, DropReason::UniqueDatagram), 1);
}

/// A fragment of a DIRECT_GROUP datagram, built by hand (F, M, offset, total).
fn fragment(
    src: Ipv4Addr,
    id: u16,
    first: bool,
    more: bool,
    offset: u16,
    data: Vec<u8>,
) -> Vec<u8> {
    let flags = Flags {
        more,
        first,
        node_type: NodeType::P,
        reserved: 0,
    };
    let body = if first {
        DataBody::Names {
            source_name: fred(),
            destination_name: group(),
            user_data: data,
        }
    } else {
        DataBody::Continuation { data }
    };
    Datagram {
        msg_type: MsgType::DirectGroup,
        flags,
        id,
        source_ip: src,
        source_port: 138,
        body: Body::Data {
            length: Some(1068),
            offset,
            body,
        },
    }
    .to_bytes()
    .unwrap()
}

#[test]
fn fragments_follow_their_first() {
    let now = Instant::now();
    let mut n = Nbdd::new(cfg(), now).unwrap();
    let f1 = fragment(A, 9, true, true, 0, vec![1; 466]);
    let f2 = fragment(A, 9, false, true, 534, vec![2; 300]);
    let f3 = fragment(A, 9, false, false, 834, vec![3; 234]);
    n.handle(now, sa(A), &f1);
    n.handle(now, sa(A), &f2);
    assert_eq!(n.pending_len(), 2, "continuation waits behind its first");
    n.members_resolved(now, &group(), Resolution::Members(vec![A, B, C]));
    n.handle(now, sa(A), &f3);
    let tx = transmits(&mut n);
    assert_eq!(tx.len(), 6);
    for (i, f) in [&f1, &f1, &f2, &f2, &f3, &f3].iter().enumerate() {
        assert_eq!(&tx[i].bytes, *f, "fragment {i} unchanged and in order");
    }
    assert_eq!(n.fragment_sets(), 0, "purged after the last fragment");
    assert_eq!(n.stats().fragment_sets_completed, 1);
    // An orphan continuation is held for its first fragment (which never comes).
    n.handle(now, sa(A), &fragment(A, 10, false, false, 534, vec![0; 10]));
    assert_eq!(n.held_orphans().0, 1);
    assert_eq!(drops(&n, DropReason::OrphanFragment), 0);
    // A new set is relayed at once (members cached); a duplicate first is refused.
    n.handle(now, sa(A), &fragment(A, 11, true, true, 0, vec![1; 100]));
    n.handle(now, sa(A), &fragment(A, 11, true, true, 0, vec![1; 100]));
    assert_eq!(drops(&n, DropReason::FragmentDuplicate), 1);
    assert_eq!(transmits(&mut n).len(), 2);
    // A continuation from another UDP source is inconsistent.
    n.handle(now, sa(B), &fragment(A, 11, false, false, 168, vec![0; 10]));
    assert_eq!(drops(&n, DropReason::SourceIpMismatch), 1);
    // The set expires after FRAGMENT_TO.
    assert_eq!(n.fragment_sets(), 1);
    n.handle_timeout(now + Duration::from_secs(3));
    assert_eq!(n.fragment_sets(), 0);
    assert_eq!(n.stats().fragment_sets_expired, 1);
    assert_eq!(n.stats().orphans_expired, 1, "the orphan's time is up too");
    assert_eq!(drops(&n, DropReason::OrphanFragment), 1);
    let later = now + Duration::from_secs(3);
    n.handle(
        later,
        sa(A),
        &fragment(A, 11, false, false, 168, vec![0; 10]),
    );
    n.handle_timeout(later + Duration::from_secs(2));
    assert_eq!(drops(&n, DropReason::OrphanFragment), 2);
}

#[test]
fn refused_first_fragment_drops_continuations() {
    let now = Instant::now();
    let mut n = Nbdd::new(cfg(), now).unwrap();
    n.handle(now, sa(A), &fragment(A, 1, true, true, 0, vec![1; 100]));
    n.handle(now, sa(A), &fragment(A, 1, false, true, 168, vec![2; 100]));
    n.members_resolved(now, &group(), Resolution::NotFound);
    assert_eq!(drops(&n, DropReason::GroupNotFound), 1);
    assert_eq!(drops(&n, DropReason::FragmentRefused), 1);
    n.handle(now, sa(A), &fragment(A, 1, false, false, 268, vec![3; 100]));
    assert_eq!(drops(&n, DropReason::FragmentRefused), 2);
    assert_eq!(n.fragment_sets(), 0, "last fragment ends the set");
    assert!(transmits(&mut n).is_empty());
}

#[test]
fn fragment_table_caps() {
    let now = Instant::now();
    let c = NbddConfig {
        max_fragment_sets: 4,
        max_fragment_sets_per_source: 2,
        ..cfg()
    };
    let mut n = with_members(c, now, &[B]);
    for id in 0..5 {
        n.handle(now, sa(A), &fragment(A, id, true, true, 0, vec![1; 10]));
    }
    assert_eq!(n.fragment_sets(), 2);
    for id in 0..5 {
        n.handle(now, sa(C), &fragment(C, id, true, true, 0, vec![1; 10]));
        n.handle(now, sa(D), &fragment(D, id, true, true, 0, vec![1; 10]));
    }
    assert_eq!(n.fragment_sets(), 4);
    // A: 2 of 5; then C and D get one each before the total cap of 4.
    assert_eq!(drops(&n, DropReason::FragmentTableFull), 3 + 4 + 4);
}

#[test]
fn oversize_input_is_refragmented() {
    let now = Instant::now();
    let mut n = with_members(cfg(), now, &[B]);
    let big = group_dg(A, 0x5151, 600); // 14 + 68 + 600 = 682 bytes
    n.handle(now, sa(A), &big);
    let tx = transmits(&mut n);
    assert_eq!(tx.len(), 2);
    let mut section = Vec::new();
    for (i, t) in tx.iter().enumerate() {
        assert!(t.bytes.len() + 28 <= 576);
        assert_eq!(&t.bytes[..1], &big[..1]);
        assert_eq!(
            &t.bytes[2..10],
            &big[2..10],
            "DGM_ID, SOURCE_IP, SOURCE_PORT kept"
        );
        assert_eq!(u16::from_be_bytes([t.bytes[10], t.bytes[11]]), 668);
        let d = parse(t);
        assert_eq!(d.flags.first, i == 0);
        assert_eq!(d.flags.more, i == 0);
        assert_eq!(d.flags.node_type, NodeType::P);
        section.extend_from_slice(&t.bytes[14..]);
    }
    assert_eq!(&section[..], &big[14..]);
    assert_eq!(n.stats().refragmented, 1);
    // Off: relayed unchanged.
    let mut m = with_members(
        NbddConfig {
            refragment: false,
            ..cfg()
        },
        now,
        &[B],
    );
    m.handle(now, sa(A), &big);
    assert_eq!(transmits(&mut m)[0].bytes, big);
}

#[test]
fn broadcast_resolves_wildcard() {
    let now = Instant::now();
    let mut n = Nbdd::new(cfg(), now).unwrap();
    let pkt = datagram(MsgType::Broadcast, A, 3, &Name::wildcard(), 50);
    n.handle(now, sa(A), &pkt);
    assert_eq!(
        actions(&mut n),
        vec![NbddAction::ResolveMembers(Name::wildcard())]
    );
    n.members_resolved(now, &Name::wildcard(), Resolution::Members(vec![A, B, C]));
    let tx = transmits(&mut n);
    assert_eq!(tx.len(), 2);
    assert!(tx.iter().all(|t| t.bytes == pkt));
    let mut m = Nbdd::new(
        NbddConfig {
            relay_broadcast: false,
            ..cfg()
        },
        now,
    )
    .unwrap();
    m.handle(now, sa(A), &pkt);
    assert_eq!(drops(&m, DropReason::BroadcastDisabled), 1);
}

#[test]
fn wrong_scope_and_odd_types() {
    let now = Instant::now();
    let mut n = with_members(cfg(), now, &[B]);
    let scoped = group().with_scope("OTHER").unwrap();
    n.handle(
        now,
        sa(A),
        &datagram(MsgType::DirectGroup, A, 1, &scoped, 5),
    );
    assert_eq!(drops(&n, DropReason::WrongScope), 1);
    let mut resp = query(A, 1, &group());
    resp[0] = 0x15;
    n.handle(now, sa(A), &resp);
    assert_eq!(drops(&n, DropReason::UnexpectedType), 1);
    for junk in [&[][..], &[0x11][..], &[0x17; 20][..], &[0x11; 13][..]] {
        n.handle(now, sa(A), junk);
    }
    assert_eq!(drops(&n, DropReason::Malformed), 4);
    assert!(transmits(&mut n).is_empty());
}

#[test]
fn spoofed_source_flood_keeps_tables_bounded() {
    let now = Instant::now();
    let c = NbddConfig {
        max_sources: 16,
        max_pending: 8,
        query_answer: QueryAnswer::AlwaysPositive,
        policy: RelayPolicy::AllowList("0.0.0.0/0".parse().unwrap()),
        ..cfg()
    };
    let mut n = Nbdd::new(c, now).unwrap();
    for i in 0..5000u32 {
        let ip = Ipv4Addr::from(0x0B00_0000 + i);
        n.handle(now, sa(ip), &group_dg(ip, i as u16, 50));
        n.handle(now, sa(ip), &query(ip, 1, &group()));
    }
    assert!(n.tracked_sources() <= 16);
    assert!(n.pending_len() <= 8);
    assert!(n.in_flight() <= 16);
    assert!(n.stats().sources_overflowed > 0);
    assert!(n.stats().bytes_out <= n.stats().bytes_in);
}
