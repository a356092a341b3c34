//! The NBDD role (`nbdgm-nbdd`) fed datagram-service packets and member answers from
//! many sources with time moving on: it never panics, never sends to itself, a peer NBDD
//! or a broadcast address, and its pending queue stays under the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_nbdd::{Nbdd, NbddAction, NbddConfig, Resolution};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let own = Ipv4Addr::new(198, 51, 100, 1);
    let peer = Ipv4Addr::new(198, 51, 100, 2);
    let cfg = NbddConfig {
        own_addresses: vec![own],
        peer_nbdds: vec![peer],
        max_pending: 16,
        ..NbddConfig::default()
    };
    let Ok(mut n) = Nbdd::new(cfg.clone(), start) else {
        return;
    };
    let mut now = start;
    let mut rest = data;
    // Each record: [source][time step][len][bytes...]
    while rest.len() >= 3 {
        let (src, step) = (rest[0], rest[1]);
        let len = usize::from(rest[2]).min(rest.len() - 3);
        let bytes = &rest[3..3 + len];
        rest = &rest[3 + len..];
        now += Duration::from_millis(u64::from(step) * 50);
        n.handle_timeout(now);
        n.handle(
            now,
            SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, src), 138),
            bytes,
        );
        while let Some(a) = n.poll_action() {
            match a {
                NbddAction::ResolveMembers(name) => {
                    let members = (0..(src % 6))
                        .map(|i| Ipv4Addr::new(198, 51, 100, i))
                        .collect();
                    n.members_resolved(now, &name, Resolution::Members(members));
                }
                NbddAction::VerifySource(name, ip) => {
                    n.source_verified(now, &name, ip, src & 1 == 0)
                }
            }
        }
        while let Some(t) = n.poll_transmit() {
            let ip = *t.to.ip();
            assert!(
                ip != own && ip != peer && !ip.is_broadcast(),
                "relay to {ip}"
            );
        }
        while n.poll_event().is_some() {}
        assert!(n.pending_len() <= cfg.max_pending, "pending cap");
    }
});
