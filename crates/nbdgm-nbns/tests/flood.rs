//! Boundedness under floods: every table has a cap and every refusal a counter.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use nbdgm_nbns::{NbnsConfig, NbnsServer};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

fn addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0A00_0000 | (i & 0x00FF_FFFF))
}

#[test]
fn hundred_thousand_distinct_registrations_stay_bounded() {
    let cfg = NbnsConfig {
        max_names: 1_000,
        max_sources: 2_048,
        max_queued_transmits: 512,
        max_queued_events: 512,
        ..Default::default()
    };
    let mut now = Instant::now();
    let mut s = NbnsServer::new(cfg.clone(), now).unwrap();
    const N: u32 = 100_000;
    for i in 0..N {
        now += Duration::from_micros(50);
        let ip = addr(i + 1);
        let n = name(&format!("N{i}"), 0);
        let bytes = nb_request(i as u16, REG, &n, H, ip, 300);
        s.handle(now, SocketAddrV4::new(ip, 137), &bytes);
        // The runtime is slow: drain only now and then.
        if i % 10_000 == 0 {
            while s.poll_transmit().is_some() {}
            while s.poll_event().is_some() {}
        }
    }
    let st = s.stats().clone();
    assert_eq!(st.names, 1_000);
    assert_eq!(st.addresses, 1_000);
    assert!(st.sources_tracked <= 2_048, "{}", st.sources_tracked);
    assert_eq!(st.registrations, u64::from(N));
    assert_eq!(
        st.granted + st.refused_table_full + st.rate_table_full + st.rate_limited,
        u64::from(N),
        "{st:?}"
    );
    assert!(
        st.refused_table_full > 0 && st.rate_table_full > 0,
        "{st:?}"
    );
    assert!(st.transmits_dropped > 0 && st.events_dropped > 0);
    let queued = std::iter::from_fn(|| s.poll_transmit()).count();
    assert!(queued <= 512);
    assert!(std::iter::from_fn(|| s.poll_event()).count() <= 512);
    assert_eq!(s.entries(now).len(), 1_000);
}

#[test]
fn one_source_flood_is_rate_limited() {
    // The quota would stop it at 32 names: raise it to see the rate limit alone.
    let mut h = Harness::new(NbnsConfig {
        max_names_per_source: 1_000,
        ..Default::default()
    });
    for i in 0..100_000u32 {
        let n = name(&format!("N{i}"), 0);
        h.s.handle(h.now, src(5), &nb_request(i as u16, REG, &n, H, ip(5), 300));
        while h.s.poll_transmit().is_some() {}
    }
    let st = h.s.stats();
    assert_eq!(st.granted, 50, "the burst");
    assert_eq!(st.rate_limited, 100_000 - 50);
    assert_eq!(st.names, 50);
}

#[test]
fn group_flood_keeps_the_member_cap() {
    let mut h = Harness::new(NbnsConfig {
        max_group_members: 25,
        ..Default::default()
    });
    let g = name("WORKGROUP", 0x00);
    for i in 0..100_000u32 {
        h.now += Duration::from_micros(10);
        let ip = addr(i + 1);
        let bytes = nb_request(i as u16, REG, &g, G | H, ip, 300);
        h.s.handle(h.now, SocketAddrV4::new(ip, 137), &bytes);
        while h.s.poll_transmit().is_some() {}
        while h.s.poll_event().is_some() {}
    }
    assert_eq!(h.s.lookup(&g, h.now).unwrap().addresses.len(), 25);
    let st = h.s.stats();
    assert_eq!(st.addresses, 25);
    assert_eq!(st.members_evicted + 25, st.granted);
}

#[test]
fn challenge_flood_keeps_the_pending_cap() {
    let mut h = Harness::new(NbnsConfig {
        max_pending_challenges: 64,
        max_sources: 200_000,
        ..Default::default()
    });
    for i in 0..200u32 {
        let n = name(&format!("N{i}"), 0);
        let ip = addr(i + 1);
        h.s.handle(
            h.now,
            SocketAddrV4::new(ip, 137),
            &nb_request(1, REG, &n, H, ip, 300),
        );
    }
    h.drain();
    for i in 0..100_000u32 {
        let n = name(&format!("N{}", i % 200), 0);
        let ip = addr(1_000 + i);
        h.s.handle(
            h.now,
            SocketAddrV4::new(ip, 137),
            &nb_request(2, REG, &n, H, ip, 300),
        );
        while h.s.poll_transmit().is_some() {}
        while h.s.poll_event().is_some() {}
    }
    let st = h.s.stats().clone();
    assert_eq!(st.pending_challenges, 64);
    assert_eq!(st.challenges_started, 64);
    assert_eq!(
        st.challenges_started + st.challenges_full + st.challenge_busy,
        100_000,
        "{st:?}"
    );
    // Owners stay silent: every challenge ends, names move, nothing is left pending.
    for _ in 0..10 {
        h.advance(Duration::from_secs(2));
    }
    let st = h.s.stats();
    assert_eq!(st.pending_challenges, 0);
    assert_eq!(st.challenges_owner_silent, 64);
    assert_eq!(st.names, 200);
}
