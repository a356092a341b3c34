//! Behaviour of the NBNS engine (RFC 1002 §5.1.4; MS-NBTE §3.2.5).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use nbdgm_nbns::{ChallengeOutcome, GroupAnswers, NbnsConfig, NbnsEvent, RefuseReason};
use nbdgm_wire::nbns::{RData, TYPE_NB, TYPE_NULL};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

#[test]
fn registration_positive_goes_to_source_port_with_clamped_ttl() {
    let mut h = Harness::default();
    let n = name("FRED", 0x00);
    let from = SocketAddrV4::new(ip(5), 40_000);
    let out = h.send(from, &nb_request(0x1234, REG, &n, H, ip(5), u32::MAX));
    assert_eq!(out.len(), 1);
    let (to, p) = &out[0];
    assert_eq!(*to, from, "reply to UDP source IP and port");
    assert_eq!(p.id, 0x1234);
    assert_eq!(p.flags, 0xAD80);
    assert_eq!(p.answers[0].ttl, 518_400, "clamped to max_ttl");
    assert_eq!(nb_addrs(p)[0].ip, ip(5));
    assert_eq!(h.addresses(&n), vec![ip(5)]);
    assert!(matches!(
        h.events()[..],
        [NbnsEvent::Registered { group: false, .. }]
    ));
    // TTL 0 (infinite) gets the default.
    let out = h.send(src(6), &nb_request(2, REG, &name("BOB", 0), H, ip(6), 0));
    assert_eq!(out[0].1.answers[0].ttl, 3_600);
    assert_eq!(h.s.stats().granted, 2);
}

#[test]
fn same_ip_again_is_a_refresh() {
    let mut h = Harness::default();
    let n = name("FRED", 0x20);
    h.register(&n, H, 5);
    h.register(&n, H, 5);
    assert_eq!(h.s.stats().refreshed, 1);
    assert_eq!(h.s.stats().challenges_started, 0);
    assert_eq!(h.addresses(&n), vec![ip(5)]);
}

#[test]
fn kind_mismatch_is_refused() {
    let mut h = Harness::default();
    let u = name("FRED", 0x00);
    let g = name("WORKGROUP", 0x00);
    h.register(&u, H, 5);
    h.register(&g, G | H, 6);
    // Group registration of a unique name.
    let out = h.send(src(7), &nb_request(3, REG, &u, G | H, ip(7), 300));
    assert_eq!(out[0].1.flags, 0xAD86);
    assert_eq!(out[0].1.answers[0].ttl, 0);
    assert_eq!(nb_addrs(&out[0].1)[0].ip, ip(5), "owner's address");
    // Unique registration of a group name.
    let out = h.send(src(7), &nb_request(4, REG, &g, H, ip(7), 300));
    assert_eq!(out[0].1.flags, 0xAD86);
    assert_eq!(h.s.stats().refused_kind_mismatch, 2);
    assert_eq!(h.addresses(&u), vec![ip(5)]);
    assert_eq!(h.addresses(&g), vec![ip(6)]);
}

#[test]
fn challenge_owner_defends() {
    let mut h = Harness::default();
    let n = name("FRED", 0x00);
    h.register(&n, H, 5);
    let req = nb_request(0x77, REG, &n, H, ip(9), 300_000);
    let out = h.send(src(9), &req);
    assert_eq!(out.len(), 2, "{out:?}");
    // WACK to the requester, with the request's flags as RDATA.
    assert_eq!(out[0].0, src(9));
    assert_eq!(out[0].1.flags, 0xBC00);
    assert_eq!(out[0].1.id, 0x77);
    assert_eq!(out[0].1.answers[0].rdata, RData::Wack(REG));
    assert_eq!(out[0].1.answers[0].ttl, 6);
    // Unicast query, RD clear, to the owner's port 137.
    assert_eq!(out[1].0, SocketAddrV4::new(ip(5), 137));
    let q = &out[1].1;
    assert_eq!(q.flags, 0x0000);
    assert_eq!(q.questions[0].name, n);
    assert_eq!(q.questions[0].qtype, TYPE_NB);
    // The owner answers positively: the requester is refused with the owner address.
    let out = h.send(src(5), &challenge_answer(q.id, &n, Some(vec![ip(5)])));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, src(9));
    assert_eq!(out[0].1.id, 0x77);
    assert_eq!(out[0].1.flags, 0xAD86);
    assert_eq!(nb_addrs(&out[0].1)[0].ip, ip(5));
    assert_eq!(h.addresses(&n), vec![ip(5)]);
    assert_eq!(h.s.stats().challenges_defended, 1);
    let ev = h.events();
    assert!(ev.iter().any(|e| matches!(
        e,
        NbnsEvent::Conflict {
            outcome: ChallengeOutcome::OwnerDefended,
            ..
        }
    )));
    assert_eq!(h.s.poll_timeout(), h.s.lookup(&n, h.now).map(|e| e.expires));
}

#[test]
fn challenge_owner_silent_transfers_after_retries() {
    let mut h = Harness::default();
    let n = name("FRED", 0x00);
    h.register(&n, H, 5);
    let out = h.send(src(9), &nb_request(0x77, REG, &n, H, ip(9), 300_000));
    assert_eq!(out.len(), 2);
    let qid = out[1].1.id;
    // A response from the wrong IP or with the wrong id does nothing.
    assert!(h
        .send(src(8), &challenge_answer(qid, &n, Some(vec![ip(5)])))
        .is_empty());
    assert!(h
        .send(src(5), &challenge_answer(qid ^ 1, &n, Some(vec![ip(5)])))
        .is_empty());
    assert_eq!(h.s.stats().unsolicited_response, 2);
    // Two retries, then the name moves.
    let mut queries = 1;
    let mut granted = None;
    for _ in 0..5 {
        let deadline = h.s.poll_timeout().unwrap();
        h.now = deadline;
        h.s.handle_timeout(h.now);
        for (to, p) in h.drain() {
            if to == SocketAddrV4::new(ip(5), 137) {
                assert_eq!(p.id, qid, "retries keep the transaction id");
                queries += 1;
            } else {
                granted = Some((to, p));
            }
        }
        if granted.is_some() {
            break;
        }
    }
    assert_eq!(queries, 3);
    let (to, p) = granted.unwrap();
    assert_eq!(to, src(9));
    assert_eq!(p.id, 0x77);
    assert_eq!(p.flags, 0xAD80);
    assert_eq!(h.addresses(&n), vec![ip(9)]);
    assert_eq!(h.s.stats().challenges_owner_silent, 1);
    let ev = h.events();
    assert!(ev
        .iter()
        .any(|e| matches!(e, NbnsEvent::Evicted { ip: a, .. } if *a == ip(5))));
}

#[test]
fn challenge_owner_negative_transfers_at_once() {
    let mut h = Harness::default();
    let n = name("FRED", 0x00);
    h.register(&n, H, 5);
    let out = h.send(src(9), &nb_request(0x77, REG, &n, H, ip(9), 300_000));
    let qid = out[1].1.id;
    let out = h.send(src(5), &challenge_answer(qid, &n, None));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.flags, 0xAD80);
    assert_eq!(h.addresses(&n), vec![ip(9)]);
    assert_eq!(h.s.stats().challenges_owner_released, 1);
}

#[test]
fn challenge_retransmission_and_busy() {
    let mut h = Harness::default();
    let n = name("FRED", 0x00);
    h.register(&n, H, 5);
    let req = nb_request(0x77, REG, &n, H, ip(9), 300_000);
    assert_eq!(h.send(src(9), &req).len(), 2);
    // Same requester again: only a WACK, no new challenge.
    let out = h.send(src(9), &req);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.flags, 0xBC00);
    // Another requester meanwhile: ACT_ERR.
    let out = h.send(src(10), &nb_request(0x78, REG, &n, H, ip(10), 300_000));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.flags, 0xAD86);
    let s = h.s.stats();
    assert_eq!(
        (
            s.challenges_started,
            s.challenge_duplicates,
            s.challenge_busy
        ),
        (1, 1, 1)
    );
}

#[test]
fn pending_challenges_are_capped() {
    let mut h = Harness::new(NbnsConfig {
        max_pending_challenges: 2,
        ..Default::default()
    });
    for i in 0..3u8 {
        let n = name(&format!("N{i}"), 0);
        h.register(&n, H, 5);
    }
    for i in 0..3u8 {
        let n = name(&format!("N{i}"), 0);
        let out = h.send(src(9), &nb_request(i.into(), REG, &n, H, ip(9), 300));
        if i < 2 {
            assert_eq!(out.len(), 2);
        } else {
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].1.flags, 0xAD82, "SRV_ERR");
        }
    }
    assert_eq!(h.s.stats().challenges_full, 1);
    assert_eq!(h.s.stats().pending_challenges, 2);
}

#[test]
fn group_members_add_release_and_cap() {
    let mut h = Harness::new(NbnsConfig {
        max_group_members: 3,
        ..Default::default()
    });
    let g = name("WORKGROUP", 0x00);
    for last in 1..=3 {
        h.now += Duration::from_secs(1);
        h.register(&g, G | H, last);
    }
    assert_eq!(h.addresses(&g), vec![ip(1), ip(2), ip(3)]);
    // Full: the oldest is evicted (MS-NBTE §3.2.5.1).
    h.now += Duration::from_secs(1);
    h.register(&g, G | H, 4);
    assert_eq!(h.addresses(&g), vec![ip(2), ip(3), ip(4)]);
    assert_eq!(h.s.stats().members_evicted, 1);
    // A member releases itself.
    let out = h.send(src(3), &nb_request(9, RELEASE, &g, G | H, ip(3), 0));
    assert_eq!(out[0].1.flags, 0xB400);
    assert_eq!(h.addresses(&g), vec![ip(2), ip(4)]);
    let e = h.s.lookup(&g, h.now).unwrap();
    assert!(e.group);

    // With eviction off, the newcomer is refused.
    let mut h = Harness::new(NbnsConfig {
        max_group_members: 2,
        evict_oldest_member: false,
        ..Default::default()
    });
    h.register(&g, G, 1);
    h.register(&g, G, 2);
    let out = h.send(src(3), &nb_request(9, REG, &g, G, ip(3), 300));
    assert_eq!(out[0].1.flags, 0xAD85, "RFS_ERR");
    assert_eq!(h.s.stats().refused_group_full, 1);
    assert_eq!(h.addresses(&g), vec![ip(1), ip(2)]);
}

#[test]
fn multihomed_registration_joins_after_owner_confirms() {
    let mut h = Harness::default();
    let n = name("MULTI", 0x00);
    let out = h.send(src(1), &nb_request(1, MH_REG, &n, H, ip(1), 300_000));
    assert_eq!(out[0].1.flags, 0xAD80, "free name: granted at once");
    // Second interface of the same host.
    let out = h.send(src(2), &nb_request(2, MH_REG, &n, H, ip(2), 300_000));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].1.flags, 0xBC00);
    let qid = out[1].1.id;
    let out = h.send(src(1), &challenge_answer(qid, &n, Some(vec![ip(1), ip(2)])));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, src(2));
    assert_eq!(out[0].1.flags, 0xAD80);
    assert_eq!(h.addresses(&n), vec![ip(1), ip(2)]);
    assert_eq!(h.s.stats().challenges_joined, 1);
    // Both addresses are answered.
    let out = h.send(src(50), &query(5, &n));
    assert_eq!(nb_addrs(&out[0].1).len(), 2);
    // A regular registration from one of them is a refresh.
    h.register(&n, H, 2);
    assert_eq!(h.addresses(&n), vec![ip(1), ip(2)]);

    // A stranger's multi-homed registration, owner does not list it: refused.
    let out = h.send(src(3), &nb_request(3, MH_REG, &n, H, ip(3), 300_000));
    let qid = out[1].1.id;
    assert_eq!(out[1].0, SocketAddrV4::new(ip(1), 137));
    assert_eq!(out.len(), 3, "both owner addresses are challenged");
    let out = h.send(src(1), &challenge_answer(qid, &n, Some(vec![ip(1), ip(2)])));
    assert_eq!(out[0].1.flags, 0xAD86);
    assert_eq!(h.addresses(&n), vec![ip(1), ip(2)]);

    // Multi-homed registration of a group is a group registration.
    let g = name("GRP", 0x00);
    let out = h.send(src(4), &nb_request(4, MH_REG, &g, G | H, ip(4), 300));
    assert_eq!(out[0].1.flags, 0xAD80);
    assert!(h.s.lookup(&g, h.now).unwrap().group);
}

#[test]
fn refresh_extends_and_expiry_removes() {
    let mut h = Harness::new(NbnsConfig {
        min_ttl: 60,
        expiry_grace: Duration::from_secs(30),
        ..Default::default()
    });
    let n = name("FRED", 0x00);
    let out = h.send(src(5), &nb_request(1, REG, &n, H, ip(5), 60));
    assert_eq!(out[0].1.answers[0].ttl, 60);
    assert_eq!(
        h.s.poll_timeout(),
        Some(h.now + Duration::from_secs(90)),
        "TTL + grace"
    );
    // Refresh (opcode 8) after 80 s: lives on.
    h.advance(Duration::from_secs(80));
    let out = h.send(src(5), &nb_request(2, REFRESH8, &n, H, ip(5), 60));
    assert_eq!(out[0].1.flags, 0xAD80);
    assert_eq!(out[0].1.id, 2);
    h.advance(Duration::from_secs(80));
    assert_eq!(h.addresses(&n), vec![ip(5)]);
    // Opcode 9 works the same.
    let out = h.send(src(5), &nb_request(3, REFRESH9, &n, H, ip(5), 60));
    assert_eq!(out[0].1.flags, 0xAD80);
    assert_eq!(h.s.stats().refreshed, 2);
    // No more refreshes: gone at TTL + grace.
    h.advance(Duration::from_secs(89));
    assert_eq!(h.addresses(&n), vec![ip(5)]);
    h.advance(Duration::from_secs(1));
    assert!(h.s.lookup(&n, h.now).is_none());
    assert_eq!(h.s.stats().expired_names, 1);
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, NbnsEvent::Expired { ip: a, .. } if *a == ip(5))));
    assert_eq!(h.s.poll_timeout(), None);
    // Refresh of an unknown name registers it (NBNS restarted).
    let out = h.send(src(5), &nb_request(4, REFRESH8, &n, H, ip(5), 60));
    assert_eq!(out[0].1.flags, 0xAD80);
    assert_eq!(h.s.stats().refresh_unknown, 1);
    // Refresh by a stranger of a held unique name: ACT_ERR, no challenge.
    let out = h.send(src(6), &nb_request(5, REFRESH8, &n, H, ip(6), 60));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.flags, 0xAD86);
}

#[test]
fn group_members_expire_one_by_one() {
    let mut h = Harness::new(NbnsConfig {
        min_ttl: 60,
        expiry_grace: Duration::ZERO,
        ..Default::default()
    });
    let g = name("WG", 0x1E);
    h.send(src(1), &nb_request(1, REG, &g, G, ip(1), 60));
    h.advance(Duration::from_secs(30));
    h.send(src(2), &nb_request(1, REG, &g, G, ip(2), 60));
    h.advance(Duration::from_secs(30));
    assert_eq!(h.addresses(&g), vec![ip(2)]);
    assert_eq!(h.s.stats().expired_addresses, 1);
    assert_eq!(h.s.stats().expired_names, 0);
    h.advance(Duration::from_secs(30));
    assert!(h.s.lookup(&g, h.now).is_none());
    assert_eq!(h.s.stats().expired_names, 1);
}

#[test]
fn release_only_by_the_owner() {
    let mut h = Harness::default();
    let n = name("FRED", 0x00);
    h.register(&n, H, 5);
    // Claims to be 10.0.0.5 but comes from .6: refused.
    let out = h.send(src(6), &nb_request(1, RELEASE, &n, H, ip(5), 0));
    assert_eq!(out[0].1.flags, 0xB405, "RFS_ERR");
    assert_eq!(h.s.stats().release_source_mismatch, 1);
    // .6 releasing its own (non-held) address: ACT_ERR.
    let out = h.send(src(6), &nb_request(2, RELEASE, &n, H, ip(6), 0));
    assert_eq!(out[0].1.flags, 0xB406);
    assert_eq!(h.s.stats().release_not_owner, 1);
    // Unknown name: NAM_ERR.
    let out = h.send(
        src(5),
        &nb_request(3, RELEASE, &name("NONE", 0), H, ip(5), 0),
    );
    assert_eq!(out[0].1.flags, 0xB403);
    assert_eq!(h.addresses(&n), vec![ip(5)]);
    // The owner: released.
    let out = h.send(src(5), &nb_request(4, RELEASE, &n, H, ip(5), 0));
    assert_eq!(out[0].1.flags, 0xB400);
    assert_eq!(out[0].0, src(5));
    assert!(h.s.lookup(&n, h.now).is_none());
    let ev = h.events();
    assert!(ev.iter().any(|e| matches!(e, NbnsEvent::Released { .. })));
    assert!(ev.iter().any(|e| matches!(
        e,
        NbnsEvent::Refused {
            reason: RefuseReason::SourceMismatch,
            ..
        }
    )));
}

#[test]
fn release_by_owner_ends_a_waiting_challenge() {
    let mut h = Harness::default();
    let n = name("FRED", 0x00);
    h.register(&n, H, 5);
    assert_eq!(
        h.send(src(9), &nb_request(7, REG, &n, H, ip(9), 300)).len(),
        2
    );
    let out = h.send(src(5), &nb_request(8, RELEASE, &n, H, ip(5), 0));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].1.flags, 0xB400);
    assert_eq!((out[1].0, out[1].1.id, out[1].1.flags), (src(9), 7, 0xAD80));
    assert_eq!(h.addresses(&n), vec![ip(9)]);
}

#[test]
fn registration_source_and_address_checks() {
    let mut h = Harness::default();
    let n = name("FRED", 0x00);
    let out = h.send(src(6), &nb_request(1, REG, &n, H, ip(5), 300));
    assert_eq!(out[0].1.flags, 0xAD85);
    assert_eq!(h.s.stats().refused_source_mismatch, 1);
    let out = h.send(src(6), &nb_request(2, REG, &n, H, Ipv4Addr::BROADCAST, 300));
    assert_eq!(out[0].1.flags, 0xAD85);
    assert_eq!(h.s.stats().refused_bad_address, 1);
    let out = h.send(src(6), &nb_request(3, REG, &name("*", 0), H, ip(6), 300));
    assert_eq!(out[0].1.flags, 0xAD85);
    assert_eq!(h.s.stats().refused_bad_name, 1);
    // NAME OVERWRITE (RD = 0): IMP_ERR from a secure server.
    let out = h.send(src(6), &nb_request(4, 0x2800, &n, H, ip(6), 300));
    assert_eq!(out[0].1.flags, 0xAD84);
    assert_eq!(h.s.stats().refused_update, 1);
    assert!(h.s.lookup(&n, h.now).is_none());
    // With the source check off, a host may register another address.
    let mut h = Harness::new(NbnsConfig {
        require_source_match: false,
        ..Default::default()
    });
    let out = h.send(src(6), &nb_request(1, REG, &n, H, ip(5), 300));
    assert_eq!(out[0].1.flags, 0xAD80);
}

#[test]
fn queries_unique_group_unknown() {
    let mut h = Harness::default();
    let u = name("FRED", 0x20);
    let g = name("WORKGROUP", 0x1E);
    h.register(&u, H, 5);
    h.register(&g, G | H, 6);
    h.register(&g, G | H, 7);
    let from = SocketAddrV4::new(ip(50), 51_000);
    let out = h.send(from, &query(0x42, &u));
    let (to, p) = &out[0];
    assert_eq!(*to, from);
    assert_eq!((p.id, p.flags), (0x42, 0x8580));
    assert_eq!(p.answers[0].name, u);
    let a = nb_addrs(p);
    assert_eq!((a.len(), a[0].ip, a[0].flags), (1, ip(5), H));
    assert!(p.answers[0].ttl > 0);
    // Group: members (RFC mode, default).
    let out = h.send(from, &query(0x43, &g));
    let a = nb_addrs(&out[0].1);
    assert_eq!(
        a.iter().map(|x| x.ip).collect::<Vec<_>>(),
        vec![ip(6), ip(7)]
    );
    assert!(a.iter().all(|x| x.flags & G != 0));
    // Unknown: NAM_ERR with a NULL record.
    let out = h.send(from, &query(0x44, &name("NOBODY", 0)));
    let p = &out[0].1;
    assert_eq!(p.flags, 0x8583);
    assert_eq!(p.answers[0].rr_type, TYPE_NULL);
    assert_eq!(p.answers[0].ttl, 0);
    // Broadcast query (B flag): silence.
    let b = nbdgm_wire::nbns::Packet::request(0x45, 0x0110, u.clone(), TYPE_NB)
        .to_bytes()
        .unwrap();
    assert!(h.send(from, &b).is_empty());
    h.s.handle_received(h.now, from, &query(0x46, &u), true);
    assert!(h.drain().is_empty());
    assert_eq!(h.s.stats().broadcast_ignored, 2);
    // Node status: ignored.
    assert!(h.send(from, &node_status(0x47, &u)).is_empty());
    assert_eq!(h.s.stats().node_status_ignored, 1);
    let s = h.s.stats();
    assert_eq!(
        (s.queries, s.queries_positive, s.queries_negative),
        (3, 2, 1)
    );
}

#[test]
fn queries_wins_broadcast_mode() {
    let mut h = Harness::new(NbnsConfig {
        group_answers: GroupAnswers::Broadcast,
        ..Default::default()
    });
    let wg = name("WORKGROUP", 0x1E);
    let dc = name("DOMAIN", 0x1C);
    let mb = name("DOMAIN", 0x1D);
    for last in [6, 7] {
        h.register(&wg, G | H, last);
        h.register(&dc, G | H, last);
    }
    h.register(&mb, H, 8);
    let out = h.send(src(50), &query(1, &wg));
    let a = nb_addrs(&out[0].1);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].ip, Ipv4Addr::BROADCAST);
    assert!(a[0].flags & G != 0);
    let out = h.send(src(50), &query(2, &dc));
    let a = nb_addrs(&out[0].1);
    assert_eq!(
        a.iter().map(|x| x.ip).collect::<Vec<_>>(),
        vec![ip(6), ip(7)],
        "<1C> lists its members"
    );
    let out = h.send(src(50), &query(3, &mb));
    assert_eq!(out[0].1.flags, 0x8583, "<1D> answered negatively");
    // ... and a second master browser's <1D> registration does not conflict.
    h.register(&mb, H, 9);
    assert_eq!(h.s.stats().unstored_1d, 2);
    assert_eq!(h.s.stats().challenges_started, 0);
    // lookup() (the NBDD's view) always has the real members.
    assert_eq!(h.addresses(&wg), vec![ip(6), ip(7)]);
}

#[test]
fn answers_are_capped_against_amplification() {
    let mut h = Harness::new(NbnsConfig {
        max_reply_factor: 2,
        max_group_members: 50,
        ..Default::default()
    });
    let g = name("BIG", 0x00);
    for last in 1..=40 {
        h.register(&g, G, last);
    }
    let q = query(1, &g);
    let out = h.send(src(50), &q);
    let p = &out[0].1;
    let bytes = p.to_bytes().unwrap();
    assert!(
        bytes.len() <= 2 * q.len(),
        "{} > 2 × {}",
        bytes.len(),
        q.len()
    );
    // No TC: the whole list (40 addresses) fits one datagram (RFC 1002 §4.2.1.1).
    assert!(p.flags & 0x0200 == 0, "TC clear");
    assert!(!nb_addrs(p).is_empty());
    assert_eq!(h.s.stats().answers_truncated, 1);
    // With the default factor (4) the answer is cut at 24 addresses (200 bytes).
    let mut h = Harness::new(NbnsConfig {
        max_group_members: 50,
        ..Default::default()
    });
    for last in 1..=40 {
        h.register(&g, G, last);
    }
    let out = h.send(src(50), &query(1, &g));
    assert_eq!(nb_addrs(&out[0].1).len(), 24);
    assert_eq!(h.s.stats().answers_truncated, 1);
    // With a larger factor max_answer_addresses (25) cuts first.
    let mut h = Harness::new(NbnsConfig {
        max_group_members: 50,
        max_reply_factor: 8,
        ..Default::default()
    });
    for last in 1..=40 {
        h.register(&g, G, last);
    }
    let out = h.send(src(50), &query(1, &g));
    assert_eq!(nb_addrs(&out[0].1).len(), 25);
}

#[test]
fn per_source_rate_limit() {
    let mut h = Harness::new(NbnsConfig {
        registrations_per_source_per_s: (1.0, 3),
        ..Default::default()
    });
    for i in 0..5u16 {
        let n = name(&format!("N{i}"), 0);
        let out = h.send(src(5), &nb_request(i, REG, &n, H, ip(5), 300));
        assert_eq!(out.len(), usize::from(i < 3), "request {i}");
    }
    assert_eq!(h.s.stats().rate_limited, 2);
    // Another source is not affected.
    h.register(&name("OTHER", 0), H, 6);
    // A second later one more token.
    h.now += Duration::from_secs(1);
    h.register(&name("LATER", 0), H, 5);
    // Queries are not rate-limited.
    for i in 0..10 {
        assert_eq!(h.send(src(5), &query(i, &name("N0", 0))).len(), 1);
    }
}

#[test]
fn table_full_is_refused() {
    let mut h = Harness::new(NbnsConfig {
        max_names: 2,
        ..Default::default()
    });
    h.register(&name("A", 0), H, 1);
    h.register(&name("B", 0), H, 2);
    let out = h.send(src(3), &nb_request(1, REG, &name("C", 0), H, ip(3), 300));
    assert_eq!(out[0].1.flags, 0xAD82);
    assert_eq!(h.s.stats().refused_table_full, 1);
    // Existing names still refresh and gain members.
    h.register(&name("A", 0), H, 1);
}

#[test]
fn scope_is_enforced() {
    let mut h = Harness::new(NbnsConfig {
        scope: "corp.example".into(),
        ..Default::default()
    });
    let plain = name("FRED", 0);
    assert!(h
        .send(src(5), &nb_request(1, REG, &plain, H, ip(5), 300))
        .is_empty());
    assert!(h.send(src(5), &query(2, &plain)).is_empty());
    assert_eq!(h.s.stats().scope_mismatch, 2);
    let scoped = plain.with_scope("corp.example").unwrap();
    let out = h.send(src(5), &nb_request(3, REG, &scoped, H, ip(5), 300));
    assert_eq!(out[0].1.flags, 0xAD80);
    let out = h.send(src(5), &query(4, &scoped));
    assert_eq!(nb_addrs(&out[0].1)[0].ip, ip(5));
}

#[test]
fn malformed_is_counted_without_panic() {
    let mut h = Harness::default();
    for bad in [
        &[][..],
        &[0u8; 5][..],
        &[0xFF; 12][..],
        &[0, 1, 0x29, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0x20][..],
    ] {
        assert!(h.send(src(5), bad).is_empty());
    }
    assert_eq!(h.s.stats().malformed, 4);
    // A registration without its NB record: FMT_ERR.
    let q = nbdgm_wire::nbns::Packet::request(9, REG, name("FRED", 0), TYPE_NB)
        .to_bytes()
        .unwrap();
    let out = h.send(src(5), &q);
    assert_eq!(out[0].1.flags, 0xAD81);
    assert_eq!(h.s.stats().malformed_request, 1);
    // Bad UDP sources.
    h.s.handle(h.now, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 137), &q);
    h.s.handle(h.now, SocketAddrV4::new(ip(5), 0), &q);
    assert!(h.drain().is_empty());
    assert_eq!(h.s.stats().bad_source, 2);
    // Unsolicited response, unknown opcode.
    let resp = challenge_answer(1, &name("X", 0), None);
    assert!(h.send(src(5), &resp).is_empty());
    assert_eq!(h.s.stats().unsolicited_response, 1);
    let other = nbdgm_wire::nbns::Packet::request(9, 0x1000, name("FRED", 0), TYPE_NB)
        .to_bytes()
        .unwrap();
    assert!(h.send(src(5), &other).is_empty());
    assert_eq!(h.s.stats().unsupported_opcode, 1);
}

#[test]
fn entries_and_stats_serialize() {
    let mut h = Harness::default();
    h.register(&name("FRED", 0x20), H, 5);
    h.register(&name("WG", 0x00), G | H, 6);
    h.register(&name("FRED", 0x00), H, 5);
    assert_eq!(h.s.all_addresses(h.now), vec![ip(5), ip(6)]);
    let e = h.s.entries(h.now);
    assert_eq!(e.len(), 3);
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json[0]["members"][0]["ont"], "H");
    let stats = serde_json::to_value(h.s.stats()).unwrap();
    assert_eq!(stats["granted"], 3);
    assert_eq!(stats["names"], 3);
}

/// Issue 12 item 9: the challenge NAME_TRN_IDs follow no pattern, and an answer with
/// the right id from the right address about another name does not count.
#[test]
fn challenge_ids_are_unpredictable_and_answers_match_the_name() {
    let mut h = Harness::default();
    let mut ids = Vec::new();
    for i in 0..8u8 {
        let n = name(&format!("OWNED{i}"), 0x00);
        h.register(&n, H, 5);
        let out = h.send(
            src(9),
            &nb_request(0x70 + u16::from(i), REG, &n, H, ip(9), 300_000),
        );
        ids.push(out[1].1.id);
    }
    let steps: Vec<u16> = ids.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    assert!(steps.windows(2).any(|s| s[0] != s[1]), "ids {ids:04x?}");
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "ids {ids:04x?}");

    // A negative answer about another name, with the first challenge's id and source.
    let first = name("OWNED0", 0x00);
    let other = name("OTHER", 0x00);
    let out = h.send(src(5), &challenge_answer(ids[0], &other, None));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(h.addresses(&first), vec![ip(5)], "the name did not move");
    assert_eq!(h.s.stats().unsolicited_response, 1);
    // The owner's own answer about the right name still counts.
    let out = h.send(src(5), &challenge_answer(ids[0], &first, Some(vec![ip(5)])));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.flags, 0xAD86);
}
