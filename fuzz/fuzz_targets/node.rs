//! The sans-IO node engine (`nbdgm-node`) fed a stream of packets from many sources on
//! both services, with time moving on: it never panics, every reply goes to the packet's
//! UDP source or a broadcast, replies respect the amplification factor, and the
//! reassembly table stays under its byte cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_node::{Incoming, Interface, Name, Node, NodeConfig, Service};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut cfg = NodeConfig::new(Interface::new(Ipv4Addr::new(198, 51, 100, 10), 24));
    cfg.reassembly.max_total_bytes = 64 * 1024;
    cfg.reassembly.max_bytes_per_source = 8 * 1024;
    // Reproducible transaction ids, so a finding replays.
    cfg.rng_seed = Some(0x6e62_6467);
    let Ok(mut node) = Node::new(cfg.clone(), start) else { return };
    let _ = node.register(start, "NODE<00>".parse::<Name>().unwrap(), false);
    let _ = node.register(start, "GROUP<00>".parse::<Name>().unwrap(), true);
    let mut now = start;
    let mut rest = data;
    // Each record: [flags][source][time step][len hi][len lo][bytes...]
    while rest.len() >= 5 {
        let (flags, src, step) = (rest[0], rest[1], rest[2]);
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]])).min(rest.len() - 5);
        let bytes = &rest[5..5 + len];
        rest = &rest[5 + len..];
        now += Duration::from_millis(u64::from(step) * 20);
        node.handle_timeout(now);
        let service = if flags & 1 == 0 { Service::Name } else { Service::Datagram };
        let from = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, src), 137 + u16::from(flags >> 4));
        node.handle(now, Incoming { from, service, broadcast: flags & 2 != 0, bytes });
        while let Some(t) = node.poll_transmit() {
            if let Some(req) = t.reply_to {
                assert!(t.bytes.len() <= req.max(1) * cfg.reply_limit_factor, "amplification");
                assert!(t.to == from || t.broadcast, "reply to {:?}, request from {from}", t.to);
            }
        }
        while node.poll_event().is_some() {}
        assert!(node.stats().reassembly_bytes <= cfg.reassembly.max_total_bytes as u64);
    }
});
