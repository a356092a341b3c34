//! Query answers that fit (issue 12 item 2; RFC 1002 §4.2.13, §4.2.1.1; RFC 1001
//! §15.3.2): a positive answer for a big group lists as many members as fit
//! `max_reply_factor` × the request (so the daemon's reply gate lets it out) and one
//! 576-byte datagram, as a round-robin window so that every member gets its turn; TC
//! only when the whole list exceeds one datagram.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use nbdgm_nbns::NbnsConfig;
use nbdgm_wire::nbns::Packet;
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};

const TC: u16 = 0x0200;

fn addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0A01_0000 + i)
}

/// A server holding group `g` with `members` members, each registered from its own
/// address.
fn group_of(cfg: NbnsConfig, g: &nbdgm_wire::Name, members: u32) -> Harness {
    let mut h = Harness::new(cfg);
    for i in 0..members {
        let a = addr(i);
        let out = h.send(
            SocketAddrV4::new(a, 137),
            &nb_request(1, REG, g, G | H, a, 300_000),
        );
        assert_eq!(out[0].1.flags, 0xAD80, "member {i}: {out:?}");
    }
    assert_eq!(h.addresses(g).len(), members as usize);
    h
}

fn ask(h: &mut Harness, id: u16, g: &nbdgm_wire::Name) -> (usize, usize, Packet) {
    let q = query(id, g);
    let out = h.send(src(200), &q);
    assert_eq!(out.len(), 1, "one answer: {out:?}");
    let p = out[0].1.clone();
    let len = p.to_bytes().unwrap().len();
    (q.len(), len, p)
}

fn ips(p: &Packet) -> Vec<Ipv4Addr> {
    nb_addrs(p).iter().map(|a| a.ip).collect()
}

#[test]
fn a_40_member_group_answer_fits_the_factor_and_every_member_gets_its_turn() {
    let g = name("DOMAIN", 0x1C);
    let cfg = NbnsConfig {
        max_group_members: 50,
        ..Default::default()
    };
    assert_eq!(cfg.max_reply_factor, 4, "the daemon's default factor");
    let mut h = group_of(cfg, &g, 40);
    let mut listed: HashMap<Ipv4Addr, usize> = HashMap::new();
    for id in 0..5u16 {
        let (qlen, alen, p) = ask(&mut h, id, &g);
        assert_eq!(qlen, 50);
        assert!(alen <= 4 * qlen, "answer {alen} > 4 × {qlen}");
        assert_eq!(p.flags & 0x000F, 0, "positive");
        assert_eq!(p.flags & TC, 0, "no TC: the whole list fits one datagram");
        let a = ips(&p);
        // 12 + 34 + 10 + 6 × 24 = 200 = 4 × 50: as many as fit.
        assert_eq!(a.len(), 24, "answer {id}");
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), 24, "no duplicates");
        for ip in a {
            *listed.entry(ip).or_default() += 1;
        }
    }
    // 5 × 24 = 120 listings = 3 per member: a fair round robin.
    assert_eq!(listed.len(), 40, "every member listed: {listed:?}");
    assert!(listed.values().all(|&n| n == 3), "{listed:?}");
    let s = h.s.stats();
    assert_eq!((s.answers_truncated, s.answers_tc), (5, 0));
    assert_eq!(s.queries_positive, 5);
}

#[test]
fn two_answers_in_a_row_cover_the_group() {
    let g = name("BIG", 0x20);
    let mut h = group_of(
        NbnsConfig {
            max_group_members: 50,
            ..Default::default()
        },
        &g,
        40,
    );
    let first = ips(&ask(&mut h, 1, &g).2);
    let second = ips(&ask(&mut h, 2, &g).2);
    // Members in registration order; the second window starts after the first.
    let all: Vec<Ipv4Addr> = (0..40).map(addr).collect();
    assert_eq!(first, all[..24]);
    assert_eq!(second[..16], all[24..]);
    assert_eq!(second[16..], all[..8]);
}

#[test]
fn the_factor_sets_the_room() {
    let g = name("BIG", 0x20);
    for (factor, want) in [(2usize, 7usize), (3, 15), (4, 24), (5, 25)] {
        let mut h = group_of(
            NbnsConfig {
                max_group_members: 50,
                max_reply_factor: factor,
                ..Default::default()
            },
            &g,
            40,
        );
        let (qlen, alen, p) = ask(&mut h, 1, &g);
        assert!(alen <= factor * qlen, "factor {factor}: {alen} > {qlen}");
        // Factor 5 would allow 32: max_answer_addresses (25) cuts first.
        assert_eq!(ips(&p).len(), want, "factor {factor}");
        assert_eq!(p.flags & TC, 0);
    }
}

#[test]
fn a_small_group_is_answered_whole() {
    let g = name("SMALL", 0x20);
    let mut h = group_of(NbnsConfig::default(), &g, 5);
    for id in 0..3 {
        let p = ask(&mut h, id, &g).2;
        assert_eq!(ips(&p), (0..5).map(addr).collect::<Vec<_>>());
    }
    assert_eq!(h.s.stats().answers_truncated, 0);
}

#[test]
fn tc_only_when_the_whole_list_exceeds_one_datagram() {
    let g = name("HUGE", 0x20);
    let cfg = NbnsConfig {
        max_group_members: 200,
        max_answer_addresses: 1_000,
        max_reply_factor: 100,
        registrations_per_source_per_s: (1e9, 1_000_000),
        ..Default::default()
    };
    // 56 + 6 × 82 = 548 = 576 − 28: 82 addresses fill one datagram.
    let mut h = group_of(cfg.clone(), &g, 82);
    let (_, alen, p) = ask(&mut h, 1, &g);
    assert_eq!((ips(&p).len(), alen), (82, 548));
    assert_eq!(p.flags & TC, 0, "fits");
    let mut h = group_of(cfg.clone(), &g, 150);
    let (_, alen, p) = ask(&mut h, 1, &g);
    assert_eq!((ips(&p).len(), alen), (82, 548));
    assert_ne!(p.flags & TC, 0, "the rest needs TCP (RFC 1002 §4.2.1.1)");
    let s = h.s.stats();
    assert_eq!((s.answers_truncated, s.answers_tc), (1, 1));
    // Cut by the default factor, a 150-member list still sets TC: the RFC's reason
    // holds (the whole list does not fit one datagram).
    let mut h = group_of(
        NbnsConfig {
            max_reply_factor: 4,
            max_answer_addresses: 25,
            ..cfg
        },
        &g,
        150,
    );
    let (_, alen, p) = ask(&mut h, 1, &g);
    assert!(alen <= 200);
    assert_ne!(p.flags & TC, 0);
}

#[test]
fn members_leaving_between_answers_keep_the_window_valid() {
    let g = name("CHURN", 0x20);
    let mut h = group_of(
        NbnsConfig {
            max_group_members: 60,
            ..Default::default()
        },
        &g,
        60,
    );
    let mut gone: HashSet<Ipv4Addr> = HashSet::new();
    for round in 0..20u32 {
        // Release two members a round, then ask.
        for k in 0..2 {
            let a = addr(round * 2 + k + 10);
            if round * 2 + k + 10 < 60 {
                let out = h.send(
                    SocketAddrV4::new(a, 137),
                    &nb_request(9, RELEASE, &g, G | H, a, 0),
                );
                assert_eq!(out[0].1.flags & 0x000F, 0, "released");
                gone.insert(a);
            }
        }
        let live = h.addresses(&g);
        let (qlen, alen, p) = ask(&mut h, round as u16, &g);
        assert!(alen <= 4 * qlen);
        let a = ips(&p);
        assert_eq!(a.len(), live.len().min(24), "round {round}");
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), a.len());
        assert!(a.iter().all(|ip| !gone.contains(ip) && live.contains(ip)));
    }
}
