//! The browser engine (`nbdgm-browser`) as local master candidate fed browser frames on
//! BROWSE and LANMAN from many sources with time moving on: it never panics, the browse
//! list stays under its caps and every datagram it wants sent is a valid mailslot write.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_browser::{Action, Browser, BrowserConfig, Inbound};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE, LANMAN};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut cfg = BrowserConfig::new("FUZZHOST", "WG");
    cfg.max_servers = 64;
    cfg.max_workgroups = 8;
    cfg.lm_announce = nbdgm_browser::LmAnnounce::Auto;
    let Ok(mut b) = Browser::new(cfg, start, 7) else {
        return;
    };
    b.start(start);
    b.name_registered(start, &Name::new("FUZZHOST", 0).unwrap());
    let dests = [
        Name::new("WG", 0x1D).unwrap(),
        Name::new("WG", 0x1E).unwrap(),
        Name::new("WG", 0x00).unwrap(),
        Name::msbrowse(),
        Name::new("FUZZHOST", 0).unwrap(),
    ];
    let mut now = start;
    let mut rest = data;
    // Each record: [flags][source][time step][len][bytes...]
    while rest.len() >= 4 {
        let (flags, src, step) = (rest[0], rest[1], rest[2]);
        let len = usize::from(rest[3]).min(rest.len() - 4);
        let bytes = &rest[4..4 + len];
        rest = &rest[4 + len..];
        now += Duration::from_millis(u64::from(step) * 250);
        b.handle_timeout(now);
        let source = Name::new(&format!("SRC{src}"), 0).unwrap();
        let dest = &dests[usize::from(flags % 5)];
        if flags & 0x80 != 0 {
            if flags & 0x40 != 0 {
                b.name_registered(now, &Name::new("WG", 0x1D).unwrap());
            } else {
                b.name_failed(now, &Name::new("WG", 0x1D).unwrap());
            }
        }
        b.handle(
            now,
            Inbound {
                from: SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, src), 138),
                source: &source,
                destination: dest,
                mailslot: if flags & 0x20 != 0 { LANMAN } else { BROWSE },
                data: bytes,
                // A datagram header and SMB around the frame, as the daemon counts it.
                request_len: bytes.len() + 170,
                broadcast: flags & 0x10 != 0,
            },
        );
        while let Some(a) = b.poll_action() {
            if let Action::Send { data, .. } = a {
                MailslotWrite::parse(&data).expect("the engine sends valid mailslot writes");
            }
        }
        let l = b.list(now);
        assert!(l.servers.len() <= 64 + 1, "server cap");
        assert!(l.workgroups.len() <= 8 + 1, "workgroup cap");
        if let Some(t) = b.poll_timeout() {
            assert!(t >= now || t + Duration::from_secs(1) >= now);
        }
    }
});
