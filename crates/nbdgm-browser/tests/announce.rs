//! Announcements: schedule, server type by role, AnnouncementRequest, remote, LANMAN,
//! shutdown (MS-BRWS §3.2, §3.3.6, §3.3.7; DIGEST §6.5, §6.7).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use nbdgm_browser::{Browser, LmAnnounce, RemoteAnnounce, Role, Target};
use nbdgm_wire::browser::{opcode, BrowserFrame, LanmanAnnouncement, LanmanFrame, ServerType};
use nbdgm_wire::mailslot::LANMAN;
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

#[test]
fn nothing_before_name_registered() {
    let t0 = Instant::now();
    let mut b = Browser::new(config("RUSTHOST"), t0, 1).unwrap();
    b.start(t0);
    let o = drain(&mut b);
    assert_eq!(o.registers, vec![(name(WG, 0x1E), true)]);
    assert!(o.sent.is_empty());
    let o = run_until(&mut b, t0 + secs(3600));
    assert!(o.sent.is_empty(), "no announcement without <name><00>");
}

#[test]
fn host_announcement_schedule_and_periodicity() {
    let t0 = Instant::now();
    let mut b = Browser::new(config("RUSTHOST"), t0, 1).unwrap();
    b.start(t0);
    b.name_registered(t0, &name("RUSTHOST", 0));
    drain(&mut b);
    let mut times = vec![];
    let mut periods = vec![];
    for (t, o) in run_timed(&mut b, t0 + secs(60 * 60)) {
        for (s, a) in o.announcement(opcode::HOST_ANNOUNCEMENT) {
            assert_eq!(s.destination, name(WG, 0x1D));
            assert_eq!(s.source, name("RUSTHOST", 0));
            assert_eq!(s.target, Target::Broadcast);
            assert_eq!(a.server_name, "RUSTHOST");
            times.push(t.duration_since(t0).as_secs());
            periods.push(a.periodicity_ms / 1000);
        }
    }
    assert_eq!(&times[..8], &[0, 60, 120, 240, 480, 960, 1680, 2400]);
    assert_eq!(&periods[..8], &[60, 60, 120, 240, 480, 720, 720, 720]);
    // the interval to the next send is the announced periodicity
    for w in times.windows(2).zip(&periods) {
        assert_eq!(w.0[1] - w.0[0], u64::from(*w.1));
    }
}

#[test]
fn max_interval_caps_schedule() {
    let t0 = Instant::now();
    let mut c = config("RUSTHOST");
    c.max_announce_interval = secs(180);
    let mut b = started(c, t0, 1);
    b.handle_timeout(t0);
    let mut periods = vec![];
    for (_, o) in run_timed(&mut b, t0 + secs(3600)) {
        for (_, a) in o.announcement(opcode::HOST_ANNOUNCEMENT) {
            periods.push(a.periodicity_ms / 1000);
        }
    }
    assert_eq!(&periods[..5], &[60, 60, 120, 180, 180]);
}

#[test]
fn server_type_bits_by_role() {
    let t0 = Instant::now();
    let mut c = config("RUSTHOST");
    c.server_type = 0x0000_1003
        | ServerType::LOCAL_LIST_ONLY
        | ServerType::DOMAIN_ENUM
        | ServerType::MASTER_BROWSER;
    let mut b = started(c.clone(), t0, 1);
    let o = run_until(&mut b, t0);
    let (_, a) = o.announcement(opcode::HOST_ANNOUNCEMENT)[0];
    assert_eq!(
        a.server_type, 0x0001_1003,
        "potential only; request-only and role bits stripped"
    );

    // backup (told so by the master we know)
    feed(
        &mut b,
        t0 + secs(5),
        addr(2),
        "LMB",
        &name(WG, 0x1E),
        &lma("LMB", 0x1003),
    );
    feed(
        &mut b,
        t0 + secs(5),
        addr(2),
        "LMB",
        &name(WG, 0x1E),
        &BrowserFrame::BecomeBackup(nbdgm_wire::browser::BecomeBackup {
            browser_to_promote: "rusthost".into(),
            trailing: vec![],
        }),
    );
    assert_eq!(b.role(), Role::Backup);
    let o = run_until(&mut b, t0 + secs(7));
    let (_, a) = o.announcement(opcode::HOST_ANNOUNCEMENT)[0];
    assert_eq!(
        a.server_type, 0x0003_1003,
        "backup announced about 1 s after the change"
    );

    // non-browser
    let mut c2 = config("PLAIN");
    c2.potential_browser = false;
    let mut p = started(c2, t0, 1);
    assert_eq!(p.role(), Role::None);
    let o = run_until(&mut p, t0);
    assert_eq!(
        o.announcement(opcode::HOST_ANNOUNCEMENT)[0].1.server_type,
        0x0000_1003
    );

    // master: HostAnnouncements stop, LMA carries master bit
    let mut m = started(config("RUSTHOST"), t0, 3);
    run_until(&mut m, t0);
    let (t, out) = make_master(&mut m, t0 + secs(1));
    let (s, a) = out.announcement(opcode::LOCAL_MASTER_ANNOUNCEMENT)[0];
    assert_eq!(a.server_type, 0x0005_1003);
    assert_eq!(s.destination, name(WG, 0x1E));
    let o = run_until(&mut m, t + secs(3600));
    assert_eq!(
        o.count(opcode::HOST_ANNOUNCEMENT),
        0,
        "a master sends no HostAnnouncement"
    );
    assert!(o.count(opcode::LOCAL_MASTER_ANNOUNCEMENT) > 3);
}

#[test]
fn announcement_request_delay_and_coalescing() {
    for seed in 0..40u64 {
        let t0 = Instant::now();
        let mut b = started(config("RUSTHOST"), t0, seed);
        run_until(&mut b, t0 + secs(1));
        let t1 = t0 + secs(10);
        let req = BrowserFrame::AnnouncementRequest(Default::default());
        feed(&mut b, t1, addr(7), "SAMBAA", &name(WG, 0x1E), &req);
        feed(&mut b, t1 + ms(10), addr(8), "OTHER", &name(WG, 0x00), &req);
        feed(&mut b, t1 + ms(20), addr(8), "OTHER", &name(WG, 0x1D), &req);
        let mut replies = vec![];
        for (t, o) in run_timed(&mut b, t1 + secs(31)) {
            for _ in o.announcement(opcode::HOST_ANNOUNCEMENT) {
                replies.push(t);
            }
        }
        // the periodic one at t0+60 s is after the window
        assert_eq!(replies.len(), 1, "seed {seed}: three requests, one answer");
        let d = replies[0].duration_since(t1);
        assert!(d <= secs(30), "seed {seed}: {d:?}");
    }
    // not for our workgroup: ignored
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    run_until(&mut b, t0);
    feed(
        &mut b,
        t0,
        addr(7),
        "X",
        &name("OTHERWG", 0x1E),
        &BrowserFrame::AnnouncementRequest(Default::default()),
    );
    assert_eq!(
        run_until(&mut b, t0 + secs(40)).count(opcode::HOST_ANNOUNCEMENT),
        0
    );
}

#[test]
fn announcement_request_delays_are_spread() {
    let mut delays = std::collections::BTreeSet::new();
    for seed in 0..20u64 {
        let t0 = Instant::now();
        let mut b = started(config("RUSTHOST"), t0, seed);
        run_until(&mut b, t0);
        feed(
            &mut b,
            t0 + secs(1),
            addr(7),
            "X",
            &name(WG, 0x1E),
            &BrowserFrame::AnnouncementRequest(Default::default()),
        );
        let t = b.poll_timeout().unwrap();
        delays.insert(t.duration_since(t0 + secs(1)).as_millis());
    }
    assert!(delays.len() > 10, "random delay: {delays:?}");
}

#[test]
fn remote_announce_unicast() {
    let t0 = Instant::now();
    let mut c = config("RUSTHOST");
    c.datagram_port = 1138;
    c.remote_announce = vec![
        RemoteAnnounce {
            address: Ipv4Addr::new(192, 0, 2, 255),
            workgroup: Some("FARWG".into()),
        },
        RemoteAnnounce {
            address: Ipv4Addr::new(192, 0, 2, 7),
            workgroup: None,
        },
    ];
    let mut b = started(c, t0, 1);
    let o = run_until(&mut b, t0 + secs(61));
    let hs = o.announcement(opcode::HOST_ANNOUNCEMENT);
    assert_eq!(hs.len(), 6, "2 rounds × (broadcast + 2 remote)");
    let targets: Vec<_> = hs
        .iter()
        .take(3)
        .map(|(s, _)| (s.target, s.destination.clone()))
        .collect();
    assert!(targets.contains(&(Target::Broadcast, name(WG, 0x1D))));
    assert!(targets.contains(&(
        Target::GroupAt(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 255), 1138)),
        name("FARWG", 0x1D)
    )));
    assert!(targets.contains(&(
        Target::GroupAt(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 7), 1138)),
        name(WG, 0x1D)
    )));
}

fn lanman_sends(o: &Out) -> Vec<&Sent> {
    o.sent.iter().filter(|s| s.slot == LANMAN).collect()
}

#[test]
fn lanman_yes_no_auto() {
    let t0 = Instant::now();
    let mut c = config("RUSTHOST");
    c.lm_announce = LmAnnounce::Yes;
    c.lm_interval = secs(60);
    let mut b = started(c, t0, 1);
    let o = run_until(&mut b, t0 + secs(150));
    let l = lanman_sends(&o);
    assert_eq!(l.len(), 3, "at 0, 60, 120 s");
    assert_eq!(l[0].destination, name(WG, 0x00));
    assert_eq!(l[0].target, Target::Broadcast);
    match l[0].lanman.as_ref().unwrap() {
        LanmanFrame::Announcement(a) => {
            assert_eq!(a.server_name, "RUSTHOST");
            assert_eq!(a.periodicity_s, 60);
            assert_eq!(a.server_type, 0x0001_1003);
        }
        f => panic!("{f:?}"),
    }

    let mut c = config("RUSTHOST");
    c.lm_announce = LmAnnounce::No;
    let mut b = started(c, t0, 1);
    let lm = LanmanFrame::Announcement(LanmanAnnouncement {
        server_type: 0x0000_0003,
        periodicity_s: 60,
        server_name: "OLDLM".into(),
        comment: "lan manager".into(),
        ..Default::default()
    })
    .to_bytes()
    .unwrap();
    feed_raw(
        &mut b,
        t0,
        addr(9),
        &name("OLDLM", 0),
        &name(WG, 0),
        LANMAN,
        &lm,
    );
    assert!(lanman_sends(&run_until(&mut b, t0 + secs(300))).is_empty());

    let mut b = started(config("RUSTHOST"), t0, 1); // Auto
    assert!(
        lanman_sends(&run_until(&mut b, t0 + secs(300))).is_empty(),
        "auto: silent until heard"
    );
    feed_raw(
        &mut b,
        t0 + secs(300),
        addr(9),
        &name("OLDLM", 0),
        &name(WG, 0),
        LANMAN,
        &lm,
    );
    let o = run_until(&mut b, t0 + secs(300 + 130));
    assert_eq!(lanman_sends(&o).len(), 3);
    let e = b
        .list(t0 + secs(300))
        .servers
        .into_iter()
        .find(|s| s.name == "OLDLM")
        .unwrap();
    assert!(e.lanman);
    assert_eq!(e.periodicity_ms, 60_000);
}

#[test]
fn shutdown_sends_type_zero_and_releases() {
    let t0 = Instant::now();
    let mut c = config("RUSTHOST");
    c.lm_announce = LmAnnounce::Yes;
    c.remote_announce = vec![RemoteAnnounce {
        address: Ipv4Addr::new(192, 0, 2, 1),
        workgroup: None,
    }];
    let mut b = started(c.clone(), t0, 1);
    run_until(&mut b, t0 + secs(1));
    b.shutdown(t0 + secs(2));
    let o = drain(&mut b);
    let hs = o.announcement(opcode::HOST_ANNOUNCEMENT);
    assert_eq!(hs.len(), 2);
    assert!(hs.iter().all(|(_, a)| a.server_type == 0));
    match lanman_sends(&o)[0].lanman.as_ref().unwrap() {
        LanmanFrame::Announcement(a) => assert_eq!(a.server_type, 0),
        f => panic!("{f:?}"),
    }
    assert_eq!(o.releases, vec![name(WG, 0x1E)]);
    assert_eq!(
        o.count(opcode::REQUEST_ELECTION),
        0,
        "not master: no election"
    );
    assert_eq!(b.role(), Role::None);
    assert_eq!(b.poll_timeout(), None);

    // as master: RequestElection version 0 / criteria 0, <1D> and MSBROWSE released
    let mut m = started(config("RUSTHOST"), t0, 2);
    let (t, _) = make_master(&mut m, t0);
    m.shutdown(t + secs(1));
    let o = drain(&mut m);
    let e = o.frames(opcode::REQUEST_ELECTION);
    assert_eq!(e.len(), 1);
    match e[0].frame.as_ref().unwrap() {
        BrowserFrame::RequestElection(r) => assert_eq!((r.election_version, r.criteria), (0, 0)),
        _ => unreachable!(),
    }
    assert_eq!(e[0].destination, name(WG, 0x1E));
    let (_, a) = o.announcement(opcode::HOST_ANNOUNCEMENT)[0];
    assert_eq!(a.server_type, 0);
    for n in [name(WG, 0x1D), Name::msbrowse(), name(WG, 0x1E)] {
        assert!(o.releases.contains(&n), "{n:?} released");
    }
}

#[test]
fn set_config_announces_soon_and_gives_up_roles() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    run_until(&mut b, t0 + secs(61)); // two sends; next at 120 s
    let mut c = config("RUSTHOST");
    c.comment = "new comment".into();
    b.set_config(c, t0 + secs(70)).unwrap();
    let o = run_until(&mut b, t0 + secs(72));
    let hs = o.announcement(opcode::HOST_ANNOUNCEMENT);
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0].1.comment, "new comment");
    assert_eq!(hs[0].1.periodicity_ms, 60_000, "sequence restarted");

    let (t, _) = make_master(&mut b, t0 + secs(80));
    let mut c = config("RUSTHOST");
    c.potential_browser = false;
    b.set_config(c, t + secs(1)).unwrap();
    let o = drain(&mut b);
    assert_eq!(b.role(), Role::None);
    for n in [name(WG, 0x1D), Name::msbrowse(), name(WG, 0x1E)] {
        assert!(o.releases.contains(&n), "{n:?} released");
    }
    let o = run_until(&mut b, t + secs(3));
    let hs = o.announcement(opcode::HOST_ANNOUNCEMENT);
    assert_eq!(hs[0].1.server_type, 0x0000_1003);

    let mut bad = config("RUSTHOST");
    bad.workgroup = "WAY_TOO_LONG_WORKGROUP".into();
    assert!(b.set_config(bad, t).is_err());
}
