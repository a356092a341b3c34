//! The NBNS role (`nbdgm-nbns`) fed name-service packets from many sources with time
//! moving on: it never panics, replies go to the request's source (or are challenge
//! queries to owners on the node port) and are never larger than the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_nbns::{NbnsConfig, NbnsServer};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let cfg = NbnsConfig {
        max_names: 32,
        max_group_members: 4,
        // Reproducible challenge ids, so a finding replays.
        rng_seed: Some(0x4e42_4e53),
        ..NbnsConfig::default()
    };
    let Ok(mut s) = NbnsServer::new(cfg.clone(), start) else {
        return;
    };
    let mut now = start;
    let mut rest = data;
    // Each record: [source][time step][len hi][len lo][bytes...]
    while rest.len() >= 4 {
        let (src, step) = (rest[0], rest[1]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]])).min(rest.len() - 4);
        let bytes = &rest[4..4 + len];
        rest = &rest[4 + len..];
        now += Duration::from_millis(u64::from(step) * 100);
        s.handle_timeout(now);
        let from = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, src), 137 + u16::from(src & 3));
        s.handle(now, from, bytes);
        while let Some(t) = s.poll_transmit() {
            if let Some(req) = t.reply_to {
                assert_eq!(t.to, from, "reply to the request's source");
                assert!(
                    t.bytes.len() <= req.max(1) * cfg.max_reply_factor.max(1) + 64,
                    "amplification"
                );
            }
        }
        while s.poll_event().is_some() {}
        assert!(s.entries(now).len() <= cfg.max_names, "name cap");
    }
});
