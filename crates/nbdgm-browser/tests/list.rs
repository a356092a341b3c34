//! Passive browse list, caps, malformed input, master duties (GetBackupList,
//! BecomeBackup), backup role and ResetState (MS-BRWS §3.3.1, §3.3.5; DIGEST §6).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use nbdgm_browser::{BrowserEvent, Refusal, Role, Target};
use nbdgm_wire::browser::{
    opcode, Announcement, BecomeBackup, BrowserFrame, DomainAnnouncement, GetBackupListRequest,
    LanmanAnnouncement, LanmanFrame, MasterAnnouncement, ResetStateRequest, ServerType,
};
use nbdgm_wire::mailslot::{BROWSE, LANMAN};
use nbdgm_wire::Name;
use std::time::Instant;

const WKS: u32 = 0x0000_1003;
const POT: u32 = WKS | ServerType::POTENTIAL_BROWSER;

#[test]
fn passive_list_in_every_role_with_expiry_and_type_zero() {
    let t0 = Instant::now();
    let mut c = config("RUSTHOST");
    c.potential_browser = false;
    let mut b = started(c, t0, 1);
    feed(
        &mut b,
        t0,
        addr(10),
        "SRV1",
        &name(WG, 0x1D),
        &host_ann("SRV1", WKS, 60_000),
    );
    feed(
        &mut b,
        t0,
        addr(11),
        "SRV2",
        &name("OTHERWG", 0x1D),
        &host_ann("SRV2", POT, 720_000),
    );
    feed(
        &mut b,
        t0,
        addr(12),
        "SRV3",
        &name(WG, 0x20),
        &host_ann("SRV3", WKS, 60_000),
    );
    let l = b.list(t0);
    assert_eq!(l.role, Role::None);
    let names: Vec<_> = l
        .servers
        .iter()
        .map(|s| (s.workgroup.as_str(), s.name.as_str(), s.local))
        .collect();
    assert_eq!(
        names,
        [
            ("OTHERWG", "SRV2", false),
            (WG, "RUSTHOST", true),
            (WG, "SRV1", false)
        ],
        "<20> ignored"
    );
    let s1 = l.servers.iter().find(|s| s.name == "SRV1").unwrap();
    assert_eq!(
        (s1.address, s1.server_type, s1.comment.as_str()),
        (*addr(10).ip(), WKS, "SRV1 comment")
    );
    assert_eq!(s1.expires_in_s, 180);
    assert_eq!(b.stats().servers, 2);

    // 3 × periodicity
    assert!(b
        .list(t0 + secs(179))
        .servers
        .iter()
        .any(|s| s.name == "SRV1"));
    b.handle_timeout(t0 + secs(181));
    assert!(!b
        .list(t0 + secs(181))
        .servers
        .iter()
        .any(|s| s.name == "SRV1"));
    assert_eq!(b.stats().servers, 1);
    let s2 = b
        .list(t0 + secs(181))
        .servers
        .into_iter()
        .find(|s| s.name == "SRV2")
        .unwrap();
    assert_eq!(s2.age_s, 181);
    assert_eq!(s2.expires_in_s, 3 * 720 - 181);

    // type 0 removes at once
    feed(
        &mut b,
        t0 + secs(200),
        addr(11),
        "SRV2",
        &name("OTHERWG", 0x1D),
        &host_ann("SRV2", 0, 720_000),
    );
    assert!(!b
        .list(t0 + secs(200))
        .servers
        .iter()
        .any(|s| s.name == "SRV2"));

    // periodicity 0 and absurd values clamped for expiry: 60 s and 1 h
    feed(
        &mut b,
        t0,
        addr(13),
        "ZERO",
        &name(WG, 0x1D),
        &host_ann("ZERO", WKS, 0),
    );
    feed(
        &mut b,
        t0,
        addr(14),
        "HUGE",
        &name(WG, 0x1D),
        &host_ann("HUGE", WKS, u32::MAX),
    );
    let l = b.list(t0);
    assert_eq!(
        l.servers
            .iter()
            .find(|s| s.name == "ZERO")
            .unwrap()
            .expires_in_s,
        180
    );
    assert_eq!(
        l.servers
            .iter()
            .find(|s| s.name == "HUGE")
            .unwrap()
            .expires_in_s,
        3 * 3600
    );

    // own frames do not create foreign entries
    feed(
        &mut b,
        t0,
        addr(1),
        "RUSTHOST",
        &name(WG, 0x1D),
        &host_ann("RUSTHOST", WKS, 60_000),
    );
    assert_eq!(
        b.list(t0)
            .servers
            .iter()
            .filter(|s| s.name == "RUSTHOST")
            .count(),
        1
    );
}

#[test]
fn domain_and_master_announcements() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    let d = BrowserFrame::DomainAnnouncement(DomainAnnouncement {
        periodicity_ms: 60_000,
        machine_group: "OTHERGROUP".into(),
        local_master_name: "OTHERLMB".into(),
        ..Default::default()
    });
    feed(&mut b, t0, addr(30), "OTHERLMB", &Name::msbrowse(), &d);
    feed(&mut b, t0, addr(30), "OTHERLMB", &name("X", 0x1D), &d); // not to MSBROWSE: ignored
    let l = b.list(t0);
    assert_eq!(l.workgroups.len(), 1);
    let w = &l.workgroups[0];
    assert_eq!(
        (w.name.as_str(), w.master.as_str(), w.address),
        ("OTHERGROUP", "OTHERLMB", *addr(30).ip())
    );
    assert!(b.list(t0 + secs(181)).workgroups.is_empty());
    feed(
        &mut b,
        t0,
        addr(30),
        "LMB",
        &name("RUSTHOST", 0),
        &BrowserFrame::MasterAnnouncement(MasterAnnouncement {
            master_name: "LMB".into(),
            trailing: vec![],
        }),
    );
    assert_eq!(b.stats().master_announcements_received, 1);
    assert!(drain(&mut b).sent.is_empty());
}

#[test]
fn lanman_both_layouts_received() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    let lm = LanmanFrame::Announcement(LanmanAnnouncement {
        server_type: WKS,
        periodicity_s: 120,
        server_name: "LMLAYOUT".into(),
        comment: "old".into(),
        ..Default::default()
    });
    feed_raw(
        &mut b,
        t0,
        addr(40),
        &name("LMLAYOUT", 0),
        &name(WG, 0),
        LANMAN,
        &lm.to_bytes().unwrap(),
    );
    let br = LanmanFrame::Browser(host_ann("BRLAYOUT", WKS, 60_000));
    let bytes = br.to_bytes().unwrap();
    assert!(nbdgm_wire::browser::looks_like_browse_layout(&bytes));
    feed_raw(
        &mut b,
        t0,
        addr(41),
        &name("BRLAYOUT", 0),
        &name(WG, 0x1D),
        "\\mailslot\\lanman",
        &bytes,
    );
    let l = b.list(t0);
    let a = l.servers.iter().find(|s| s.name == "LMLAYOUT").unwrap();
    assert!(a.lanman);
    assert_eq!(
        (a.periodicity_ms, a.comment.as_str(), a.workgroup.as_str()),
        (120_000, "old", WG)
    );
    let c = l.servers.iter().find(|s| s.name == "BRLAYOUT").unwrap();
    assert!(c.lanman);
    assert_eq!(c.periodicity_ms, 60_000);
    // a LANMAN announcement over the limits
    let long = LanmanFrame::Announcement(LanmanAnnouncement {
        server_type: WKS,
        server_name: "X".into(),
        comment: "c".repeat(200),
        ..Default::default()
    });
    feed_raw(
        &mut b,
        t0,
        addr(42),
        &name("X", 0),
        &name(WG, 0),
        LANMAN,
        &long.to_bytes().unwrap(),
    );
    assert_eq!(b.stats().refused_malformed, 1);
}

#[test]
fn caps_flood_keeps_list_bounded() {
    let t0 = Instant::now();
    let mut c = config("RUSTHOST");
    c.max_servers = 1000;
    c.max_workgroups = 10;
    let mut b = started(c, t0, 1);
    feed(
        &mut b,
        t0,
        addr(2),
        "KEEPER",
        &name(WG, 0x1D),
        &host_ann("KEEPER", WKS, 60_000),
    );
    for i in 0..100_000u32 {
        let n = format!("F{i:05}");
        let data = host_ann(&n, WKS, 60_000).to_bytes().unwrap();
        feed_raw(
            &mut b,
            t0 + ms(u64::from(i) / 100),
            addr(3),
            &name(&n, 0),
            &name(WG, 0x1D),
            BROWSE,
            &data,
        );
        if i % 1000 == 0 {
            while b.poll_action().is_some() {}
        }
    }
    assert_eq!(b.stats().servers, 1000);
    assert_eq!(b.stats().refused_server_list_full, 100_000 - 999);
    // existing entries are still updated
    let t1 = t0 + secs(100);
    feed(
        &mut b,
        t1,
        addr(9),
        "KEEPER",
        &name(WG, 0x1D),
        &host_ann("KEEPER", WKS | ServerType::SERVER_UNIX, 60_000),
    );
    let k = b
        .list(t1)
        .servers
        .into_iter()
        .find(|s| s.name == "KEEPER")
        .unwrap();
    assert_eq!(
        (k.address, k.server_type, k.age_s),
        (*addr(9).ip(), WKS | ServerType::SERVER_UNIX, 0)
    );
    assert_eq!(b.stats().refused_server_list_full, 100_000 - 999);
    // events are bounded even when nobody drains
    let mut q = 0;
    while b.poll_action().is_some() {
        q += 1;
    }
    assert!(q <= nbdgm_browser::engine::MAX_QUEUED);
    // workgroups
    for i in 0..50 {
        let d = BrowserFrame::DomainAnnouncement(DomainAnnouncement {
            periodicity_ms: 60_000,
            machine_group: format!("WG{i}"),
            local_master_name: "M".into(),
            ..Default::default()
        });
        feed(&mut b, t1, addr(5), "M", &Name::msbrowse(), &d);
    }
    assert_eq!(b.stats().workgroups, 10);
    assert_eq!(b.stats().refused_workgroup_list_full, 40);
    let o = drain(&mut b);
    assert_eq!(
        o.events
            .iter()
            .filter(|e| matches!(
                e,
                BrowserEvent::Refused {
                    what: Refusal::WorkgroupListFull,
                    ..
                }
            ))
            .count(),
        40
    );
    // expiry frees room
    let t2 = t0 + secs(400);
    b.handle_timeout(t2);
    feed(
        &mut b,
        t2,
        addr(3),
        "NEWONE",
        &name(WG, 0x1D),
        &host_ann("NEWONE", WKS, 60_000),
    );
    assert_eq!(b.stats().servers, 1);
}

#[test]
fn malformed_frames_counted() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    let dst = name(WG, 0x1D);
    let src = name("MALF", 0);
    let good = host_ann("MALF01", WKS, 60_000).to_bytes().unwrap();
    // truncated
    feed_raw(&mut b, t0, addr(50), &src, &dst, BROWSE, &good[..20]);
    feed_raw(&mut b, t0, addr(50), &src, &dst, BROWSE, &[]);
    // 16-char name without NUL: accepted and counted (docs/peers.md), not refused
    let mut sixteen = good.clone();
    sixteen[6..22].copy_from_slice(b"MALF23XXXXXXXXXX");
    feed_raw(&mut b, t0, addr(50), &src, &dst, BROWSE, &sixteen);
    // 200-byte comment
    let long = BrowserFrame::HostAnnouncement(Announcement {
        server_name: "MALF24".into(),
        server_type: WKS,
        comment: "c".repeat(200),
        ..Default::default()
    });
    feed_raw(
        &mut b,
        t0,
        addr(50),
        &src,
        &dst,
        BROWSE,
        &long.to_bytes().unwrap(),
    );
    // empty server name
    feed(
        &mut b,
        t0,
        addr(50),
        "MALF",
        &dst,
        &host_ann("", WKS, 60_000),
    );
    // election truncated
    feed_raw(
        &mut b,
        t0,
        addr(50),
        &src,
        &name(WG, 0x1E),
        BROWSE,
        &[0x08, 1, 0, 0],
    );
    assert_eq!(b.stats().refused_malformed, 5);
    assert_eq!(b.stats().unterminated_names_accepted, 1);
    let o = drain(&mut b);
    assert_eq!(
        o.events
            .iter()
            .filter(|e| matches!(
                e,
                BrowserEvent::Refused {
                    what: Refusal::Malformed,
                    ..
                }
            ))
            .count(),
        5
    );
    // unknown opcode: ignored and counted, not refused
    feed_raw(&mut b, t0, addr(50), &src, &dst, BROWSE, &[0x42, 1, 2, 3]);
    assert_eq!(b.stats().unknown_opcodes, 1);
    assert_eq!(b.stats().refused_malformed, 5);
    // unknown mailslot
    feed_raw(&mut b, t0, addr(50), &src, &dst, "\\MAILSLOT\\FOO", &good);
    let names: Vec<_> = b.list(t0).servers.into_iter().map(|s| s.name).collect();
    assert_eq!(names.len(), 2, "ourselves and MALF23XXXXXXXXX: {names:?}");
    assert!(names.iter().any(|n| n == "MALF23XXXXXXXXX"), "{names:?}");
}

#[test]
fn get_backup_list_response() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    let req = BrowserFrame::GetBackupListRequest(GetBackupListRequest {
        count: 4,
        token: 7,
        trailing: vec![],
    });
    let mut from = addr(20);
    from.set_port(40000);
    // not master: no answer
    feed(&mut b, t0, from, "CLIENT", &name(WG, 0x1D), &req);
    assert!(drain(&mut b).sent.is_empty());
    let (t, _) = make_master(&mut b, t0);
    for (n, ty) in [
        ("BK1", POT | ServerType::BACKUP_BROWSER),
        ("BK2", POT | ServerType::BACKUP_BROWSER),
        ("PLAIN", WKS),
    ] {
        feed(
            &mut b,
            t,
            addr(30),
            n,
            &name(WG, 0x1D),
            &host_ann(n, ty, 60_000),
        );
    }
    drain(&mut b);
    let src = name("CLIENT", 0x20);
    // Heard once with the backup bit: not yet handed out (issue 12 item 2).
    feed(&mut b, t, from, "CLIENT", &name(WG, 0x1D), &req);
    match drain(&mut b).frames(opcode::GET_BACKUP_LIST_RESPONSE)[0]
        .frame
        .as_ref()
        .unwrap()
    {
        BrowserFrame::GetBackupListResponse(g) => assert_eq!(g.servers, ["RUSTHOST"]),
        _ => unreachable!(),
    }
    // Heard again one period (60 s) later: confirmed backups.
    let t = t + secs(60);
    for (n, ty) in [
        ("BK1", POT | ServerType::BACKUP_BROWSER),
        ("BK2", POT | ServerType::BACKUP_BROWSER),
        ("PLAIN", WKS),
    ] {
        feed(
            &mut b,
            t,
            addr(30),
            n,
            &name(WG, 0x1D),
            &host_ann(n, ty, 60_000),
        );
    }
    drain(&mut b);
    feed_raw(
        &mut b,
        t,
        from,
        &src,
        &name(WG, 0x1D),
        BROWSE,
        &req.to_bytes().unwrap(),
    );
    let o = drain(&mut b);
    let r = o.frames(opcode::GET_BACKUP_LIST_RESPONSE);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].target, Target::Unique(from));
    assert_eq!(
        r[0].destination,
        name("CLIENT", 0x00),
        "suffix forced to 00"
    );
    assert_eq!(r[0].source, name("RUSTHOST", 0x00));
    match r[0].frame.as_ref().unwrap() {
        BrowserFrame::GetBackupListResponse(g) => {
            assert_eq!(g.token, 7);
            assert_eq!(g.servers, ["RUSTHOST", "BK1", "BK2"]);
            assert_eq!(g.count, 3);
        }
        _ => unreachable!(),
    }
    // RequestedCount limits the list
    let req1 = BrowserFrame::GetBackupListRequest(GetBackupListRequest {
        count: 2,
        token: 9,
        trailing: vec![],
    });
    feed(&mut b, t, from, "CLIENT", &name(WG, 0x1D), &req1);
    match drain(&mut b).frames(opcode::GET_BACKUP_LIST_RESPONSE)[0]
        .frame
        .as_ref()
        .unwrap()
    {
        BrowserFrame::GetBackupListResponse(g) => assert_eq!((g.token, g.servers.len()), (9, 2)),
        _ => unreachable!(),
    }
    // to another workgroup or to <1E>: ignored
    feed(&mut b, t, from, "CLIENT", &name("OTHER", 0x1D), &req);
    feed(&mut b, t, from, "CLIENT", &name(WG, 0x1E), &req);
    assert!(drain(&mut b).sent.is_empty());
    assert_eq!(b.stats().backup_list_requests_answered, 3);
    assert_eq!(b.list(t).backups, ["BK1", "BK2"]);
}

#[test]
fn become_backup_promotion_with_40_servers() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    let (t, _) = make_master(&mut b, t0);
    for i in 0..40 {
        let n = format!("S{i:02}");
        let ty = if i % 4 == 0 { POT } else { WKS };
        feed(
            &mut b,
            t,
            addr(60),
            &n,
            &name(WG, 0x1D),
            &host_ann(&n, ty, 720_000),
        );
    }
    drain(&mut b);
    // next LMA round (2 min) checks the backups: 41 servers → 2 wanted
    let o = run_until(&mut b, t + secs(121));
    let bb = o.frames(opcode::BECOME_BACKUP);
    assert_eq!(bb.len(), 2);
    let names: Vec<String> = bb
        .iter()
        .map(|s| match s.frame.as_ref().unwrap() {
            BrowserFrame::BecomeBackup(x) => x.browser_to_promote.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(names, ["S00", "S04"]);
    assert!(bb
        .iter()
        .all(|s| s.destination == name(WG, 0x1E) && s.target == Target::Broadcast));
    assert!(o.has_event(|e| *e
        == BrowserEvent::BackupPromoted {
            candidate: "S00".into()
        }));
    // not asked again while pending
    let o = run_until(&mut b, t + secs(250));
    assert_eq!(o.count(opcode::BECOME_BACKUP), 0);
    // one complies, one is already a backup elsewhere: no more needed
    feed(
        &mut b,
        t + secs(300),
        addr(60),
        "S00",
        &name(WG, 0x1D),
        &host_ann("S00", POT | ServerType::BACKUP_BROWSER, 720_000),
    );
    assert_eq!(b.list(t + secs(300)).backups, ["S00"]);

    // a small network: 1 server (us) → none; 2 → one
    let mut m = started(config("SOLO"), t0, 2);
    let (t, o) = make_master(&mut m, t0);
    assert_eq!(o.count(opcode::BECOME_BACKUP), 0);
    feed(
        &mut m,
        t,
        addr(61),
        "P1",
        &name(WG, 0x1D),
        &host_ann("P1", POT, 60_000),
    );
    let o = run_until(&mut m, t + secs(121));
    assert_eq!(o.count(opcode::BECOME_BACKUP), 1);
}

#[test]
fn backup_role_on_become_backup() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    let bb = |n: &str| {
        BrowserFrame::BecomeBackup(BecomeBackup {
            browser_to_promote: n.into(),
            trailing: vec![],
        })
    };
    feed(
        &mut b,
        t0,
        addr(2),
        "LMB",
        &name(WG, 0x1E),
        &lma("LMB", WKS),
    );
    feed(&mut b, t0, addr(2), "LMB", &name(WG, 0x1E), &bb("SOMEONE"));
    assert_eq!(b.role(), Role::Potential);
    feed(
        &mut b,
        t0,
        addr(2),
        "LMB",
        &name("RUSTHOST", 0),
        &bb("RUSTHOST"),
    );
    assert_eq!(b.role(), Role::Backup);
    let o = drain(&mut b);
    assert!(o.has_event(|e| *e
        == BrowserEvent::RoleChanged {
            from: Role::Potential,
            to: Role::Backup
        }));
    assert_eq!(b.list(t0).backups, ["RUSTHOST"]);
    // backups do not answer GetBackupListRequest
    let req = BrowserFrame::GetBackupListRequest(GetBackupListRequest {
        count: 4,
        token: 1,
        trailing: vec![],
    });
    feed(&mut b, t0, addr(3), "CLIENT", &name(WG, 0x1D), &req);
    assert!(drain(&mut b).sent.is_empty());
    // a backup joins elections with the backup bit and 200–600 ms delays
    run_until(&mut b, t0 + secs(2));
    let t1 = t0 + secs(2);
    feed(
        &mut b,
        t1,
        addr(5),
        "C",
        &name(WG, 0x1E),
        &election(0, 0, "C"),
    );
    let mut first = None;
    for (tt, o) in run_timed(&mut b, t1 + secs(1)) {
        for s in o.frames(opcode::REQUEST_ELECTION) {
            if first.is_none() {
                first = Some(tt);
                match s.frame.as_ref().unwrap() {
                    BrowserFrame::RequestElection(r) => assert_eq!(r.criteria & 0xFF, 0x01),
                    _ => unreachable!(),
                }
            }
        }
    }
    let d = first.unwrap().duration_since(t1).as_millis();
    assert!((200..=600).contains(&d), "{d}");
    // non-browser ignores BecomeBackup
    let mut c = config("PLAIN");
    c.potential_browser = false;
    let mut p = started(c, t0, 1);
    feed(&mut p, t0, addr(2), "LMB", &name(WG, 0x1E), &bb("PLAIN"));
    assert_eq!(p.role(), Role::None);
}

#[test]
fn reset_state_refused_by_default_and_obeyed_when_allowed() {
    let t0 = Instant::now();
    let reset = |f: u8| {
        BrowserFrame::ResetStateRequest(ResetStateRequest {
            reset_type: f,
            trailing: vec![],
        })
    };
    let mut b = started(config("RUSTHOST"), t0, 1);
    let (t, _) = make_master(&mut b, t0);
    feed(
        &mut b,
        t,
        addr(2),
        "ADMIN",
        &name("RUSTHOST", 0x20),
        &reset(0x01),
    );
    assert_eq!(b.role(), Role::Master);
    assert_eq!(b.stats().refused_reset_state, 1);
    assert!(drain(&mut b).has_event(|e| matches!(
        e,
        BrowserEvent::Refused {
            what: Refusal::ResetState,
            ..
        }
    )));
    // to somebody else: not ours to refuse
    feed(
        &mut b,
        t,
        addr(2),
        "ADMIN",
        &name("OTHERHOST", 0x00),
        &reset(0x01),
    );
    assert_eq!(b.stats().refused_reset_state, 1);

    let mut c = config("RUSTHOST");
    c.allow_reset = true;
    // 0x01: stop being master
    let mut b = started(c.clone(), t0, 1);
    let (t, _) = make_master(&mut b, t0);
    feed(
        &mut b,
        t,
        addr(2),
        "ADMIN",
        &name("RUSTHOST", 0x00),
        &reset(0x01),
    );
    let o = drain(&mut b);
    assert_eq!(b.role(), Role::Potential);
    assert!(o.releases.contains(&name(WG, 0x1D)) && o.releases.contains(&Name::msbrowse()));
    assert!(o.has_event(|e| matches!(e, BrowserEvent::ResetState { flags: 1, .. })));
    // 0x02: clear lists, drop roles
    let mut b = started(c.clone(), t0, 1);
    feed(
        &mut b,
        t0,
        addr(3),
        "SRV",
        &name(WG, 0x1D),
        &host_ann("SRV", WKS, 60_000),
    );
    feed(
        &mut b,
        t0,
        addr(2),
        "LMB",
        &name(WG, 0x1E),
        &lma("LMB", WKS),
    );
    feed(
        &mut b,
        t0,
        addr(2),
        "LMB",
        &name("RUSTHOST", 0),
        &BrowserFrame::BecomeBackup(BecomeBackup {
            browser_to_promote: "RUSTHOST".into(),
            trailing: vec![],
        }),
    );
    assert_eq!(b.role(), Role::Backup);
    feed(
        &mut b,
        t0,
        addr(2),
        "ADMIN",
        &name("RUSTHOST", 0x00),
        &reset(0x02),
    );
    assert_eq!(b.role(), Role::Potential);
    assert_eq!(b.list(t0).servers.len(), 1, "only ourselves");
    // 0x04: stop the browser
    let mut b = started(c, t0, 1);
    let (t, _) = make_master(&mut b, t0);
    feed(
        &mut b,
        t,
        addr(2),
        "ADMIN",
        &name("RUSTHOST", 0x00),
        &reset(0x04),
    );
    let o = drain(&mut b);
    assert_eq!(b.role(), Role::None);
    for n in [name(WG, 0x1D), Name::msbrowse(), name(WG, 0x1E)] {
        assert!(o.releases.contains(&n));
    }
    feed(
        &mut b,
        t,
        addr(5),
        "C",
        &name(WG, 0x1E),
        &election(0, 0, "C"),
    );
    assert!(
        !drain(&mut b).has_event(|e| *e == BrowserEvent::ElectionStarted),
        "stopped"
    );
    let o = run_until(&mut b, t + secs(3));
    assert_eq!(
        o.announcement(opcode::HOST_ANNOUNCEMENT)[0].1.server_type,
        WKS,
        "still a server"
    );
}

#[test]
fn backup_fetches_the_masters_list() {
    use nbdgm_browser::Listed;
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    // The master is known from its LocalMasterAnnouncement; a server heard directly.
    feed(
        &mut b,
        t0,
        addr(2),
        "LMB",
        &name(WG, 0x1E),
        &lma("LMB", WKS | ServerType::MASTER_BROWSER),
    );
    feed(
        &mut b,
        t0,
        addr(7),
        "HEARD",
        &name(WG, 0x1D),
        &host_ann("HEARD", WKS, 60_000),
    );
    drain(&mut b);
    let bb = BrowserFrame::BecomeBackup(BecomeBackup {
        browser_to_promote: "RUSTHOST".into(),
        trailing: vec![],
    });
    feed(&mut b, t0, addr(2), "LMB", &name("RUSTHOST", 0), &bb);
    assert_eq!(b.role(), Role::Backup);
    // Becoming backup: one fetch from the master, at once.
    let o = run_until(&mut b, t0 + secs(1));
    assert_eq!(
        o.fetches,
        vec![("LMB".to_string(), *addr(2).ip(), WG.to_string())]
    );
    // Nothing more while it runs, even past the interval.
    assert!(run_until(&mut b, t0 + secs(13 * 60)).fetches.is_empty());
    let l = |n: &str, c: &str| Listed {
        name: n.into(),
        os_major: 10,
        os_minor: 0,
        server_type: WKS | ServerType::LOCAL_LIST_ONLY,
        comment: c.into(),
    };
    let t1 = t0 + secs(13 * 60);
    b.master_list(
        t1,
        vec![
            l("FARSERVER", "only the master knows"),
            l("HEARD", "stale"),
            l("RUSTHOST", "us"),
        ],
        vec![l("OTHERWG", "OTHERLMB")],
    );
    let list = b.list(t1);
    let far = list.servers.iter().find(|s| s.name == "FARSERVER").unwrap();
    assert_eq!(far.comment, "only the master knows");
    assert!(far.address.is_unspecified());
    assert_eq!(far.server_type & ServerType::LOCAL_LIST_ONLY, 0);
    let heard = list.servers.iter().find(|s| s.name == "HEARD");
    // HEARD expired (3 x 60 s) long ago; the master's copy is taken then.
    assert!(heard.is_some());
    let wg = list
        .workgroups
        .iter()
        .find(|w| w.name == "OTHERWG")
        .unwrap();
    assert_eq!(wg.master, "OTHERLMB");
    assert_eq!(b.stats().master_syncs, 1);
    assert_eq!(b.stats().master_list_entries, 3);
    // The master's announcement has expired by now: no master, no fetch. Once it is
    // heard again, the next fetch goes out (within the 60 s retry); a failure is counted.
    assert!(run_until(&mut b, t1 + secs(5 * 60)).fetches.is_empty());
    let t2 = t1 + secs(5 * 60);
    feed(
        &mut b,
        t2,
        addr(2),
        "LMB",
        &name(WG, 0x1E),
        &lma("LMB", WKS | ServerType::MASTER_BROWSER),
    );
    let o = run_until(&mut b, t2 + secs(61));
    assert_eq!(o.fetches.len(), 1);
    b.master_list_failed(t1 + secs(12 * 60));
    assert_eq!(b.stats().master_sync_failures, 1);
    // Entries from the master expire like announcements every 12 minutes (3 x).
    let late = t1 + secs(37 * 60);
    run_until(&mut b, late);
    assert!(!b.list(late).servers.iter().any(|s| s.name == "FARSERVER"));
    // A potential browser never fetches.
    let mut p = started(config("OTHER"), t0, 2);
    feed(
        &mut p,
        t0,
        addr(2),
        "LMB",
        &name(WG, 0x1E),
        &lma("LMB", WKS),
    );
    assert!(run_until(&mut p, t0 + secs(3600)).fetches.is_empty());
}
