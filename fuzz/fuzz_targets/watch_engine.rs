//! The `nbdgm watch` detection engine (`nbdgm_watch::Engine`) fed packets on ports 137,
//! 138, 5353 and 5355 from a handful of hosts with capture time moving on: it never
//! panics, every table stays under its cap, and every alert's signature is in the table.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_capture::Timestamp;
use nbdgm_watch::{signature, Engine, Packet, WatchConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const PORTS: [u16; 5] = [137, 138, 5353, 5355, 40000];

fuzz_target!(|data: &[u8]| {
    let cfg = WatchConfig {
        max_names: 32,
        max_hosts: 16,
        max_queries: 32,
        max_workgroups: 4,
        max_alert_keys: 32,
        local_nets: vec!["198.51.100.0/24".parse().unwrap()],
        ..WatchConfig::default()
    };
    let mut e = Engine::new(cfg);
    let mut alerts = Vec::new();
    let mut secs = 1_700_000_000i64;
    let mut rest = data;
    let mut frame = 0;
    // Each record: [ports][hosts][time step][len][bytes...]
    while rest.len() >= 4 {
        let (ports, hosts, step) = (rest[0], rest[1], rest[2]);
        let len = usize::from(rest[3]).min(rest.len() - 4);
        let payload = &rest[4..4 + len];
        rest = &rest[4 + len..];
        secs += i64::from(step);
        frame += 1;
        let host = |b: u8| IpAddr::V4(Ipv4Addr::new(198, 51, 100, b % 8 + 1));
        let p = Packet {
            frame,
            time: Timestamp::new(secs, 0),
            src: SocketAddr::new(host(hosts), PORTS[usize::from(ports & 7) % 5]),
            dst: SocketAddr::new(
                if hosts & 0x80 != 0 { IpAddr::V4(Ipv4Addr::new(198, 51, 100, 255)) } else { host(hosts >> 3) },
                PORTS[usize::from(ports >> 3) % 5],
            ),
            src_mac: Some([2, 0, 0, 0, 0, hosts]),
            payload,
        };
        e.process(&p, &mut alerts);
        for a in alerts.drain(..) {
            assert!(signature::find(&a.signature.id.to_string()).is_some());
        }
    }
    let stats = e.stats();
    let names = &stats["tables"]["names"];
    assert!(names["len"].as_u64().unwrap() <= names["max"].as_u64().unwrap());
    assert!(stats["tables"]["alert_keys"]["len"].as_u64().unwrap() <= 32);
    let _ = e.inventory();
});
