//! Arbitrary bytes on every watched port, from a few hosts, with capture time moving on:
//! the engine never panics, every table stays under its cap, and the same packets give
//! the same alerts twice (capture time, not the wall clock, drives it).
#![allow(clippy::unwrap_used)]

use nbdgm_capture::Timestamp;
use nbdgm_watch::{Engine, Packet, WatchConfig};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const PORTS: [u16; 5] = [137, 138, 5353, 5355, 40000];

fn small() -> WatchConfig {
    WatchConfig {
        max_names: 32,
        max_hosts: 16,
        max_queries: 32,
        max_workgroups: 4,
        max_alert_keys: 32,
        local_nets: vec!["198.51.100.0/24".parse().unwrap()],
        ..WatchConfig::default()
    }
}

/// Runs the records through a fresh engine; returns (signature id, frame) of each alert.
fn run(records: &[(u8, u8, u8, Vec<u8>)]) -> (Vec<(u32, u64)>, serde_json::Value) {
    let mut e = Engine::new(small());
    let mut alerts = Vec::new();
    let mut out = Vec::new();
    let mut secs = 1_700_000_000i64;
    for (i, (ports, hosts, step, payload)) in records.iter().enumerate() {
        secs += i64::from(*step);
        let host = |b: u8| IpAddr::V4(Ipv4Addr::new(198, 51, 100, b % 8 + 1));
        let p = Packet {
            frame: i as u64 + 1,
            time: Timestamp::new(secs, 0),
            src: SocketAddr::new(host(*hosts), PORTS[usize::from(ports & 7) % 5]),
            dst: SocketAddr::new(host(hosts >> 3), PORTS[usize::from(ports >> 3) % 5]),
            src_mac: Some([2, 0, 0, 0, 0, *hosts]),
            payload,
        };
        e.process(&p, &mut alerts);
        out.extend(alerts.drain(..).map(|a| (a.signature.id, a.frame)));
    }
    (out, e.stats())
}

/// A payload that often gets past the first header checks: a real header prefix with
/// random bytes after it.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let prefixes: Vec<Vec<u8>> = vec![
        vec![],
        // NBNS query / response headers.
        vec![0x12, 0x34, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 0],
        vec![0x12, 0x34, 0x85, 0x00, 0, 0, 0, 1, 0, 0, 0, 0],
        // DIRECT_GROUP datagram header from 198.51.100.1:138.
        vec![
            0x11, 0x02, 0x00, 0x01, 198, 51, 100, 1, 0, 138, 0, 0x60, 0, 0,
        ],
        // DNS query / response headers.
        vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0],
    ];
    (
        prop::sample::select(prefixes),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(mut p, tail)| {
            p.extend(tail);
            p
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_stays_capped_and_is_deterministic(
        records in prop::collection::vec((any::<u8>(), any::<u8>(), 0u8..30, payload()), 1..80)
    ) {
        let (a, stats) = run(&records);
        let (b, _) = run(&records);
        prop_assert_eq!(a, b);
        let t = &stats["tables"];
        prop_assert!(t["names"]["len"].as_u64().unwrap() <= t["names"]["max"].as_u64().unwrap());
        prop_assert!(t["alert_keys"]["len"].as_u64().unwrap() <= 32);
        prop_assert_eq!(
            stats["counters"]["packets"].as_u64().unwrap(),
            records.len() as u64
        );
    }
}

#[test]
fn alerts_about_the_sender_carry_its_ethernet_address() {
    let mut e = Engine::new(WatchConfig::default());
    let mut alerts = Vec::new();
    let p = Packet {
        frame: 1,
        time: Timestamp::new(1_700_000_000, 0),
        src: "198.51.100.7:137".parse().unwrap(),
        dst: "198.51.100.255:137".parse().unwrap(),
        src_mac: Some([0x02, 0, 0x5e, 0x10, 0x20, 0x07]),
        payload: &[0x12, 0x34, 0x01],
    };
    e.process(&p, &mut alerts);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].signature.slug, "malformed");
    assert_eq!(alerts[0].evidence["src_mac"], "02:00:5e:10:20:07");
    // No link-layer address: no field.
    let mut e = Engine::new(WatchConfig::default());
    e.process(&Packet { src_mac: None, ..p }, &mut alerts);
    assert!(!alerts[1].evidence.contains_key("src_mac"));
}
