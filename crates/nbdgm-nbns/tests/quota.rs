//! Per-source quotas and the established-member rule (issue 12 item 11): one address
//! holds at most its quota; a newcomer never evicts a member that has refreshed; a
//! full table refuses new names and keeps serving refreshes.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use nbdgm_nbns::{NbnsConfig, NbnsEvent, RefuseReason};
use proptest::prelude::*;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

const RFS_ERR: u16 = 0xAD85;
const OK: u16 = 0xAD80;

fn open() -> NbnsConfig {
    NbnsConfig {
        registrations_per_source_per_s: (1e9, 1_000_000),
        max_sources: 100_000,
        ..Default::default()
    }
}

fn addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0A00_0000 + i)
}

/// Register `n` from `ip`; the answer's flags.
fn reg(h: &mut Harness, flags: u16, n: &nbdgm_wire::Name, nb: u16, ip: Ipv4Addr) -> u16 {
    let out = h.send(
        SocketAddrV4::new(ip, 137),
        &nb_request(7, flags, n, nb, ip, 300),
    );
    assert_eq!(out.len(), 1, "{out:?}");
    out[0].1.flags
}

#[test]
fn one_source_holds_at_most_its_quota() {
    let mut h = Harness::new(open());
    for i in 0..1_000 {
        reg(&mut h, REG, &name(&format!("U{i}"), 0x20), H, ip(9));
        reg(&mut h, REG, &name(&format!("G{i}"), 0x1C), G | H, ip(9));
    }
    let st = h.s.stats().clone();
    assert_eq!(st.addresses, 32 + 16, "{st:?}");
    assert_eq!(st.refused_names_per_source, 1_000 - 32);
    assert_eq!(st.refused_groups_per_source, 1_000 - 16);
    assert_eq!(st.sources_holding, 1);
    let refused = h.events().into_iter().any(|e| {
        matches!(
            e,
            NbnsEvent::Refused {
                reason: RefuseReason::SourceQuota,
                ..
            }
        )
    });
    assert!(refused);
    // Its own names still refresh, and a release frees quota.
    assert_eq!(reg(&mut h, REFRESH8, &name("U0", 0x20), H, ip(9)), OK);
    let rel = nb_request(8, RELEASE, &name("U0", 0x20), H, ip(9), 0);
    assert_eq!(h.send(src(9), &rel)[0].1.flags, 0xB400);
    assert_eq!(reg(&mut h, REG, &name("NEW", 0x20), H, ip(9)), OK);
    // Other sources are unaffected.
    assert_eq!(reg(&mut h, REG, &name("OTHER", 0x20), H, ip(10)), OK);
}

#[test]
fn newcomers_never_evict_an_established_member() {
    let mut h = Harness::new(open());
    let dom = name("DOMAIN", 0x1C);
    // The legitimate DC joins and refreshes: established.
    assert_eq!(reg(&mut h, REG, &dom, G | H, ip(1)), OK);
    assert_eq!(reg(&mut h, REFRESH8, &dom, G | H, ip(1)), OK);
    // 1,000 spoofed sources join; each also refreshes at once.
    for i in 0..1_000 {
        let a = addr(1_000 + i);
        reg(&mut h, REG, &dom, G | H, a);
        reg(&mut h, REFRESH8, &dom, G | H, a);
    }
    let members = h.addresses(&dom);
    assert_eq!(members.len(), 25);
    assert_eq!(members[0], ip(1), "the established member stays");
    let st = h.s.stats();
    assert_eq!(st.members_evicted, 0);
    // Each refused stranger also tried a refresh (a join for a non-member).
    assert_eq!(st.refused_group_established, 2 * (1_000 - 24));
}

#[test]
fn eviction_takes_never_refreshed_then_lapsed_members_only() {
    let mut h = Harness::new(NbnsConfig {
        max_group_members: 3,
        ..open()
    });
    let g = name("WORKGROUP", 0x00);
    for last in 1..=3 {
        h.now += Duration::from_secs(1);
        assert_eq!(reg(&mut h, REG, &g, G | H, ip(last)), OK);
    }
    // ip(1) refreshes: established. The newcomer evicts the oldest other one.
    assert_eq!(reg(&mut h, REFRESH8, &g, G | H, ip(1)), OK);
    assert_eq!(reg(&mut h, REG, &g, G | H, ip(4)), OK);
    assert_eq!(h.addresses(&g), vec![ip(1), ip(3), ip(4)]);
    // All established: refused.
    assert_eq!(reg(&mut h, REFRESH8, &g, G | H, ip(3)), OK);
    assert_eq!(reg(&mut h, REFRESH8, &g, G | H, ip(4)), OK);
    assert_eq!(reg(&mut h, REG, &g, G | H, ip(5)), RFS_ERR);
    assert_eq!(h.s.stats().refused_group_established, 1);
    // ip(1)'s TTL runs out (300 s, in its grace period now): a newcomer may take it.
    h.now += Duration::from_secs(250);
    assert_eq!(reg(&mut h, REFRESH8, &g, G | H, ip(3)), OK);
    assert_eq!(reg(&mut h, REFRESH8, &g, G | H, ip(4)), OK);
    h.now += Duration::from_secs(100);
    assert_eq!(reg(&mut h, REG, &g, G | H, ip(5)), OK);
    assert_eq!(h.addresses(&g), vec![ip(3), ip(4), ip(5)]);
    assert_eq!(h.s.stats().members_evicted, 2);
}

#[test]
fn full_table_refuses_new_names_and_keeps_refreshes() {
    let mut h = Harness::new(NbnsConfig {
        max_names: 50,
        ..open()
    });
    let dc = name("LEGITDC", 0x00);
    assert_eq!(reg(&mut h, REG, &dc, H, ip(1)), OK);
    for i in 0..1_000 {
        let a = addr(1_000 + i);
        reg(&mut h, REG, &name(&format!("S{i}"), 0x20), H, a);
    }
    let st = h.s.stats().clone();
    assert_eq!(st.names, 50);
    assert_eq!(st.refused_table_full, 1_000 - 49);
    assert_eq!(h.addresses(&dc), vec![ip(1)]);
    assert_eq!(reg(&mut h, REFRESH8, &dc, H, ip(1)), OK);
    assert_eq!(reg(&mut h, REG, &dc, H, ip(1)), OK);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever strangers send (registrations, refreshes, releases, multi-homed
    /// registrations, time passing), an established member that keeps refreshing is
    /// never removed, and no address holds more than its quotas.
    #[test]
    fn established_member_survives_random_strangers(
        ops in proptest::collection::vec((0u8..4, 0u8..3, 2u8..40, any::<bool>(), 0u8..4), 1..400)
    ) {
        let mut h = Harness::new(NbnsConfig {
            max_names: 8,
            max_group_members: 4,
            max_names_per_source: 2,
            max_groups_per_source: 2,
            ..open()
        });
        let names = [name("DOMAIN", 0x1C), name("WORKGROUP", 0x00), name("DC", 0x20)];
        let dom = &names[0];
        assert_eq!(reg(&mut h, REG, dom, G | H, ip(1)), OK);
        assert_eq!(reg(&mut h, REFRESH8, dom, G | H, ip(1)), OK);
        let mut since_refresh = Duration::ZERO;
        for (op, n, who, group, wait) in ops {
            let a = ip(who);
            let nb = if group { G | H } else { H };
            let flags = [REG, REFRESH8, RELEASE, MH_REG][op as usize];
            h.send(SocketAddrV4::new(a, 137), &nb_request(9, flags, &names[n as usize], nb, a, 60));
            while h.s.poll_event().is_some() {}
            let d = Duration::from_secs(u64::from(wait) * 20);
            h.now += d;
            since_refresh += d;
            // Challenge queries to ip(1) go unanswered; the member refreshes in time.
            h.s.handle_timeout(h.now);
            h.drain();
            if since_refresh >= Duration::from_secs(200) {
                prop_assert_eq!(reg(&mut h, REFRESH8, dom, G | H, ip(1)), OK);
                since_refresh = Duration::ZERO;
            }
            prop_assert!(h.addresses(dom).contains(&ip(1)));
            let st = h.s.stats();
            prop_assert!(st.names <= 8);
            for e in h.s.entries(h.now) {
                prop_assert!(e.members.len() <= 4);
            }
            for last in 2u8..40 {
                let ip = ip(last);
                let held: Vec<_> = h.s.entries(h.now).into_iter()
                    .filter(|e| e.members.iter().any(|m| m.ip == ip))
                    .collect();
                prop_assert!(held.iter().filter(|e| e.group).count() <= 2);
                prop_assert!(held.iter().filter(|e| !e.group).count() <= 2);
            }
        }
    }
}
