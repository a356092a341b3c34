//! Browsing across subnets (issue 17 §3; MS-BRWS §3.3.6, §3.4; Samba
//! `nmbd_browsesync.c`): the local master browser finding, announcing to and syncing
//! with the domain master browser; the domain master browser registering `<1B>`,
//! keeping the local master browsers and syncing their lists; the merge rules; the
//! master conflict.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use nbdgm_browser::engine::{LMB_LIFETIME, MAX_SYNCS_RUNNING};
use nbdgm_browser::{
    Action, Browser, BrowserConfig, BrowserEvent, Listed, Refusal, ReplyTo, Role, SyncKind, Target,
};
use nbdgm_wire::browser::{opcode, BrowserFrame, MasterAnnouncement, ServerType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

const WKS: u32 = 0x0000_1003;
const INTERVAL: Duration = Duration::from_secs(15 * 60);

fn dmb_addr() -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, 5)
}

fn listed(n: &str, server_type: u32, comment: &str) -> Listed {
    Listed {
        name: n.into(),
        os_major: 6,
        os_minor: 1,
        server_type,
        comment: comment.into(),
    }
}

fn ma(n: &str) -> BrowserFrame {
    BrowserFrame::MasterAnnouncement(MasterAnnouncement {
        master_name: n.into(),
        trailing: vec![],
    })
}

/// Every action, as the engine queued it (reply_to included).
fn actions(b: &mut Browser) -> Vec<Action> {
    std::iter::from_fn(|| b.poll_action()).collect()
}

/// A local master browser of WG, with its first DMB lookup asked for; returns the time.
fn lmb_looking(b: &mut Browser, t0: Instant) -> Instant {
    let (t, _) = make_master(b, t0);
    let o = run_until(b, t + secs(1));
    assert_eq!(o.dmb_lookups, [WG.to_string()], "lookup 1 s after winning");
    t + secs(1)
}

/// A started domain master browser (`<1B>` granted at `t0`).
fn dmb(t0: Instant, max_local_masters: usize) -> Browser {
    let mut c = config("RUSTHOST");
    c.domain_master = true;
    c.max_local_masters = max_local_masters;
    let mut b = Browser::new(c, t0, 1).unwrap();
    b.start(t0);
    b.name_registered(t0, &name("RUSTHOST", 0));
    let o = drain(&mut b);
    assert!(
        o.registers.contains(&(name(WG, 0x1B), false)),
        "<1B> unique asked for"
    );
    assert!(!b.is_domain_master(), "not before the name is ours");
    b.name_registered(t0, &name(WG, 0x1B));
    drain(&mut b);
    assert!(b.is_domain_master());
    b
}

#[test]
fn lmb_finds_the_dmb_announces_and_syncs() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    let t = lmb_looking(&mut b, t0);
    b.domain_master_found(t, "sambadmb", dmb_addr());
    let a = actions(&mut b);
    assert_eq!(a.len(), 2, "{a:?}");
    let Action::Send {
        source,
        destination,
        target,
        data,
        reply_to,
    } = &a[0]
    else {
        panic!("{:?}", a[0]);
    };
    assert_eq!(*source, name("RUSTHOST", 0));
    assert_eq!(*destination, name("SAMBADMB", 0));
    assert_eq!(*target, Target::Unique(SocketAddrV4::new(dmb_addr(), 138)));
    assert_eq!(*reply_to, None, "not a reply: no reply gate");
    let w = MailslotWrite::parse(data).unwrap();
    assert_eq!(w.name, BROWSE);
    assert_eq!(w.data, b"\x0dRUSTHOST\x00");
    assert_eq!(
        a[1],
        Action::SyncList {
            kind: SyncKind::FromDomainMaster,
            peer: "SAMBADMB".into(),
            address: dmb_addr(),
            workgroup: WG.into(),
        }
    );
    assert_eq!(b.domain_master(), Some(("SAMBADMB".into(), dmb_addr())));
    assert_eq!(b.list(t).domain_master.as_deref(), Some("SAMBADMB"));
    assert_eq!(b.list(t).domain_master_address, Some(dmb_addr()));
    assert_eq!(b.stats().master_announcements_sent, 1);

    // The DMB's list: its servers under our workgroup, its workgroups.
    b.list_synced(
        t + secs(2),
        SyncKind::FromDomainMaster,
        "SAMBADMB",
        vec![
            listed("SAMBADMB", WKS | ServerType::DOMAIN_MASTER, "dmb"),
            listed("farhost", WKS | ServerType::LOCAL_LIST_ONLY, "far away"),
            listed("RUSTHOST", WKS, "us, seen from there"),
        ],
        vec![
            listed("OTHERWG", ServerType::DOMAIN_ENUM, "OTHERLMB"),
            listed(WG, ServerType::DOMAIN_ENUM, "SAMBADMB"),
        ],
    );
    let l = b.list(t + secs(3));
    let far = l.servers.iter().find(|s| s.name == "FARHOST").unwrap();
    assert_eq!(far.workgroup, WG);
    assert_eq!(far.synced_from.as_deref(), Some("SAMBADMB"));
    assert_eq!(far.server_type, WKS, "LOCAL_LIST_ONLY cleared");
    assert_eq!(far.address, Ipv4Addr::UNSPECIFIED);
    assert_eq!(far.comment, "far away");
    let us: Vec<_> = l.servers.iter().filter(|s| s.name == "RUSTHOST").collect();
    assert_eq!(us.len(), 1);
    assert!(us[0].local, "ourselves not taken from the DMB");
    let other = l.workgroups.iter().find(|w| w.name == "OTHERWG").unwrap();
    assert_eq!(other.master, "OTHERLMB");
    assert_eq!(other.synced_from.as_deref(), Some("SAMBADMB"));
    let ours = l.workgroups.iter().find(|w| w.name == WG).unwrap();
    assert!(ours.local, "our workgroup stays ours");
    assert_eq!(b.stats().list_syncs, 1);
    assert_eq!(b.stats().synced_entries, 3);

    // Every interval again; an answer nobody asked for is ignored.
    b.list_synced(t, SyncKind::FromDomainMaster, "SAMBADMB", vec![], vec![]);
    assert_eq!(b.stats().list_syncs_unexpected, 1);
    assert!(b
        .list(t + secs(4))
        .servers
        .iter()
        .any(|s| s.name == "FARHOST"));
    let o = run_until(&mut b, t + INTERVAL - secs(1));
    assert!(o.dmb_lookups.is_empty());
    let o = run_until(&mut b, t + INTERVAL);
    assert_eq!(o.dmb_lookups.len(), 1, "one lookup per interval");
    // Not answered for 10 minutes: given up (a failure), the next interval asks again.
    let o = run_until(&mut b, t + 2 * INTERVAL);
    assert_eq!(o.dmb_lookups.len(), 1);
    assert_eq!(b.stats().dmb_lookup_failures, 1);
    b.domain_master_failed(t + 2 * INTERVAL);
    assert_eq!(b.stats().dmb_lookup_failures, 2);
    assert_eq!(b.domain_master(), None);
    let o = run_until(&mut b, t + 3 * INTERVAL);
    assert_eq!(o.dmb_lookups.len(), 1, "retried at the next interval");
    // An invalid name is a failure.
    b.domain_master_found(t + 3 * INTERVAL, "SIXTEEN_CHARS_XX", dmb_addr());
    assert!(actions(&mut b).is_empty());
    assert_eq!(b.stats().dmb_names_invalid, 1);
    assert_eq!(b.stats().dmb_lookup_failures, 3);

    // Losing the master role stops the lookups.
    let now = t + 3 * INTERVAL + secs(1);
    feed(
        &mut b,
        now,
        addr(7),
        "STRONG",
        &name(WG, 0x1E),
        &election(0xFF01_0F08, u32::MAX, "STRONG"),
    );
    assert_ne!(b.role(), Role::Master);
    let o = run_until(&mut b, now + 3 * INTERVAL);
    assert!(o.dmb_lookups.is_empty());
    assert!(o.syncs.is_empty());
}

/// With an interval shorter than the give-up time, a lookup still running is not
/// stacked: one at a time.
#[test]
fn one_lookup_at_a_time() {
    let t0 = Instant::now();
    let mut c = config("RUSTHOST");
    c.dmb_sync_interval = secs(120);
    let mut b = started(c, t0, 1);
    let t = lmb_looking(&mut b, t0);
    let o = run_until(&mut b, t + secs(4 * 120));
    assert!(o.dmb_lookups.is_empty());
    assert_eq!(b.stats().dmb_lookups_deferred, 4);
    b.domain_master_failed(t + secs(4 * 120));
    let o = run_until(&mut b, t + secs(5 * 120));
    assert_eq!(o.dmb_lookups.len(), 1);
}

#[test]
fn no_dmb_sync_when_off_or_when_we_are_the_dmb() {
    let t0 = Instant::now();
    let mut c = config("RUSTHOST");
    c.dmb_sync = false;
    let mut b = started(c, t0, 1);
    let (t, _) = make_master(&mut b, t0);
    assert!(run_until(&mut b, t + 2 * INTERVAL).dmb_lookups.is_empty());

    let mut d = dmb(t0, 16);
    let (t, _) = make_master(&mut d, t0);
    assert!(run_until(&mut d, t + 2 * INTERVAL).dmb_lookups.is_empty());
    // An answer nobody asked for is not taken.
    d.domain_master_found(t, "OTHER", dmb_addr());
    assert_eq!(d.stats().dmb_answers_unexpected, 1);
    assert_eq!(
        d.domain_master(),
        Some(("RUSTHOST".into(), Ipv4Addr::UNSPECIFIED))
    );
}

#[test]
fn dmb_registers_1b_accepts_lmbs_and_syncs_them() {
    let t0 = Instant::now();
    let mut b = dmb(t0, 16);
    // The DOMAIN_MASTER bit in what we announce.
    let o = run_until(&mut b, t0 + secs(2));
    let hosts = o.announcement(opcode::HOST_ANNOUNCEMENT);
    assert!(!hosts.is_empty());
    assert!(hosts
        .iter()
        .all(|(_, a)| a.server_type & ServerType::DOMAIN_MASTER != 0));
    assert_eq!(
        b.domain_master(),
        Some(("RUSTHOST".into(), Ipv4Addr::UNSPECIFIED))
    );
    // A MasterAnnouncement to <RUSTHOST><00> (and one to <WG><1B>).
    let t = t0 + secs(10);
    feed(
        &mut b,
        t,
        addr(30),
        "LMB1",
        &name("RUSTHOST", 0),
        &ma("lmb1"),
    );
    feed(&mut b, t, addr(31), "LMB2", &name(WG, 0x1B), &ma("LMB2"));
    // Not to us: ignored.
    feed(
        &mut b,
        t,
        addr(32),
        "LMB3",
        &name("ELSEWHERE", 0),
        &ma("LMB3"),
    );
    let lm = b.local_masters(t);
    assert_eq!(
        lm.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        ["LMB1", "LMB2"]
    );
    assert_eq!(lm[0].address, *addr(30).ip());
    assert_eq!(lm[0].workgroup, WG);
    assert_eq!(lm[0].expires_in_s, LMB_LIFETIME.as_secs());
    assert_eq!(b.list(t).local_masters.len(), 2);
    assert_eq!(b.stats().local_masters, 2);

    // The first sync one minute later, not before.
    let o = run_until(&mut b, t + secs(59));
    assert!(o.syncs.is_empty());
    let o = run_until(&mut b, t + secs(60));
    let mut syncs = o.syncs.clone();
    syncs.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        syncs,
        [
            (
                SyncKind::FromLocalMaster,
                "LMB1".into(),
                *addr(30).ip(),
                WG.into()
            ),
            (
                SyncKind::FromLocalMaster,
                "LMB2".into(),
                *addr(31).ip(),
                WG.into()
            ),
        ]
    );
    b.list_synced(
        t + secs(61),
        SyncKind::FromLocalMaster,
        "LMB1",
        vec![
            listed("LMB1", WKS | ServerType::MASTER_BROWSER, ""),
            listed("FAR1", WKS, ""),
        ],
        vec![listed(WG, ServerType::DOMAIN_ENUM, "LMB1")],
    );
    b.list_sync_failed(t + secs(61), SyncKind::FromLocalMaster, "LMB2");
    assert_eq!(b.stats().list_sync_failures, 1);
    let l = b.list(t + secs(62));
    let far = l.servers.iter().find(|s| s.name == "FAR1").unwrap();
    assert_eq!(far.synced_from.as_deref(), Some("LMB1"));
    let lm = b.local_masters(t + secs(62));
    assert_eq!((lm[0].syncs, lm[0].last_entries), (1, 2));
    assert_eq!((lm[1].syncs, lm[1].last_entries), (0, 0));

    // LMB1 announces again (from a new address); LMB2 does not.
    feed(
        &mut b,
        t + secs(600),
        addr(40),
        "LMB1",
        &name("RUSTHOST", 0),
        &ma("LMB1"),
    );
    // Next syncs one interval after the first.
    let o = run_until(&mut b, t + secs(60) + INTERVAL - secs(1));
    assert!(o.syncs.is_empty(), "{:?}", o.syncs);
    let o = run_until(&mut b, t + secs(60) + INTERVAL + LMB_LIFETIME_CHECK);
    let mut peers: Vec<_> = o.syncs.iter().map(|s| (s.1.clone(), s.2)).collect();
    peers.sort();
    assert_eq!(
        peers,
        [
            ("LMB1".into(), *addr(40).ip()),
            ("LMB2".into(), *addr(31).ip())
        ]
    );
    // LMB2 is forgotten 17 min after its MasterAnnouncement, LMB1 27 min after t.
    let lm = b.local_masters(t + LMB_LIFETIME + secs(1));
    assert_eq!(lm.len(), 1);
    run_until(&mut b, t + LMB_LIFETIME + secs(30));
    assert_eq!(b.stats().local_masters_expired, 1);
    run_until(&mut b, t + secs(600) + LMB_LIFETIME + secs(30));
    assert_eq!(b.stats().local_masters_expired, 2);
    assert!(b
        .local_masters(t + secs(600) + LMB_LIFETIME + secs(30))
        .is_empty());
    assert_eq!(b.stats().local_masters, 0);
}

/// Tolerance for the 20-second table check.
const LMB_LIFETIME_CHECK: Duration = Duration::from_secs(20);

#[test]
fn master_announcements_ignored_unless_dmb() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    feed(
        &mut b,
        t0,
        addr(30),
        "LMB1",
        &name("RUSTHOST", 0),
        &ma("LMB1"),
    );
    assert_eq!(b.stats().master_announcements_received, 1);
    assert_eq!(b.stats().master_announcements_ignored, 1);
    assert!(b.local_masters(t0).is_empty());
    // Configured but <1B> refused: not the DMB either; asked again after an interval.
    let mut c = config("RUSTHOST");
    c.domain_master = true;
    let mut d = Browser::new(c, t0, 1).unwrap();
    d.start(t0);
    d.name_registered(t0, &name("RUSTHOST", 0));
    drain(&mut d);
    d.name_failed(t0, &name(WG, 0x1B));
    assert_eq!(d.stats().dmb_registration_failures, 1);
    feed(&mut d, t0, addr(30), "LMB1", &name(WG, 0x1B), &ma("LMB1"));
    assert_eq!(d.stats().master_announcements_ignored, 1);
    let o = run_until(&mut d, t0 + INTERVAL - secs(1));
    assert!(!o.registers.iter().any(|(n, _)| *n == name(WG, 0x1B)));
    let o = run_until(&mut d, t0 + INTERVAL);
    assert!(o.registers.contains(&(name(WG, 0x1B), false)));
}

/// A flood of MasterAnnouncements with distinct names: the table stays at
/// `max_local_masters`, the rest refused and counted; syncs run at most
/// MAX_SYNCS_RUNNING at a time.
#[test]
fn master_announcement_flood_is_capped() {
    let t0 = Instant::now();
    let mut b = dmb(t0, 8);
    for i in 0..10_000u32 {
        let n = format!("L{i}");
        feed(&mut b, t0, addr(50), &n, &name(WG, 0x1B), &ma(&n));
        if i % 100 == 0 {
            drain(&mut b);
        }
    }
    let o = drain(&mut b);
    assert!(o.has_event(|e| matches!(
        e,
        BrowserEvent::Refused {
            what: Refusal::LocalMasterListFull,
            ..
        }
    )));
    assert_eq!(b.local_masters(t0).len(), 8);
    assert_eq!(b.stats().refused_local_master_list_full, 10_000 - 8);
    let o = run_until(&mut b, t0 + secs(60));
    assert_eq!(o.syncs.len(), MAX_SYNCS_RUNNING);
    assert!(b.stats().list_syncs_deferred >= 4);
    // The four finish; the next four go at the next check (20 s later).
    for s in &o.syncs {
        b.list_sync_failed(t0 + secs(61), s.0, &s.1);
    }
    let o2 = run_until(&mut b, t0 + secs(80));
    assert_eq!(o2.syncs.len(), MAX_SYNCS_RUNNING);
    assert!(o2.syncs.iter().all(|s| !o.syncs.contains(s)));
}

#[test]
fn merge_rules_local_wins_resync_replaces_expiry() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    // A server heard here.
    feed(
        &mut b,
        t0,
        addr(5),
        "LOCALSRV",
        &name(WG, 0x1D),
        &host_ann("LOCALSRV", WKS, 720_000),
    );
    let t = lmb_looking(&mut b, t0);
    b.domain_master_found(t, "SAMBADMB", dmb_addr());
    drain(&mut b);
    b.list_synced(
        t,
        SyncKind::FromDomainMaster,
        "SAMBADMB",
        vec![
            listed("LOCALSRV", WKS, "the DMB's view"),
            listed("A", WKS, ""),
            listed("B", WKS, ""),
            listed("", WKS, ""),
            listed("WAY_TOO_LONG_NAME", WKS, ""),
            listed("C", WKS, &"x".repeat(100)),
        ],
        vec![listed(
            "W1",
            ServerType::DOMAIN_ENUM,
            "A_VERY_LONG_MASTER_NAME",
        )],
    );
    let l = b.list(t);
    let local = l.servers.iter().find(|s| s.name == "LOCALSRV").unwrap();
    assert_eq!(local.synced_from, None, "heard here wins");
    assert_eq!(local.comment, "LOCALSRV comment");
    assert_eq!(b.stats().synced_entries_local_kept, 1);
    assert_eq!(b.stats().synced_entries_invalid, 2);
    let c = l.servers.iter().find(|s| s.name == "C").unwrap();
    assert_eq!(c.comment.len(), 42);
    let w1 = l.workgroups.iter().find(|w| w.name == "W1").unwrap();
    assert_eq!(w1.master, "A_VERY_LONG_MAS");
    // Lives 3 x 15 min.
    let a = l.servers.iter().find(|s| s.name == "A").unwrap();
    assert_eq!(a.expires_in_s, 45 * 60);

    // A full resync without B and W1: they go at once.
    let t2 = t + INTERVAL;
    let o = run_until(&mut b, t2);
    assert_eq!(o.dmb_lookups.len(), 1);
    b.domain_master_found(t2, "SAMBADMB", dmb_addr());
    assert_eq!(drain(&mut b).syncs.len(), 1);
    b.list_synced(
        t2,
        SyncKind::FromDomainMaster,
        "SAMBADMB",
        vec![listed("A", WKS, ""), listed("C", WKS, "")],
        vec![],
    );
    let names: Vec<_> = b.list(t2).servers.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"A".to_string()));
    assert!(!names.contains(&"B".to_string()), "{names:?}");
    assert!(!b.list(t2).workgroups.iter().any(|w| w.name == "W1"));
    assert_eq!(b.stats().synced_entries_removed, 2);
    // A synced entry heard here afterwards becomes local.
    feed(
        &mut b,
        t2,
        addr(6),
        "A",
        &name(WG, 0x1D),
        &host_ann("A", WKS, 720_000),
    );
    let a = b
        .list(t2)
        .servers
        .into_iter()
        .find(|s| s.name == "A")
        .unwrap();
    assert_eq!(a.synced_from, None);
    assert_eq!(a.address, *addr(6).ip());
    // Without renewal, C expires 45 min after the last sync.
    let l = b.list(t2 + secs(45 * 60 - 1));
    assert!(l.servers.iter().any(|s| s.name == "C"));
    run_until(&mut b, t2 + secs(45 * 60));
    let l = b.list(t2 + secs(45 * 60));
    assert!(!l.servers.iter().any(|s| s.name == "C"));
}

#[test]
fn synced_entries_respect_the_caps() {
    let t0 = Instant::now();
    let mut c = config("RUSTHOST");
    c.max_servers = 5;
    c.max_workgroups = 2;
    let mut b = started(c, t0, 1);
    let t = lmb_looking(&mut b, t0);
    b.domain_master_found(t, "SAMBADMB", dmb_addr());
    drain(&mut b);
    let servers = (0..100)
        .map(|i| listed(&format!("S{i}"), WKS, ""))
        .collect();
    let groups = (0..100)
        .map(|i| listed(&format!("G{i}"), ServerType::DOMAIN_ENUM, "M"))
        .collect();
    b.list_synced(t, SyncKind::FromDomainMaster, "SAMBADMB", servers, groups);
    assert_eq!(b.stats().servers, 5);
    assert_eq!(b.stats().workgroups, 2);
    assert_eq!(b.stats().refused_server_list_full, 95);
    assert_eq!(b.stats().refused_workgroup_list_full, 98);
}

#[test]
fn master_conflict_resets_the_other_and_gives_up() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    let (t, _) = make_master(&mut b, t0);
    let data = lma("SAMBAA", WKS).to_bytes().unwrap();
    b.handle(
        t + secs(1),
        nbdgm_browser::Inbound {
            from: addr(20),
            source: &name("SAMBAA", 0),
            destination: &name(WG, 0x1E),
            mailslot: BROWSE,
            data: &data,
            broadcast: true,
            request_len: 250,
        },
    );
    let a = actions(&mut b);
    let reset = a
        .iter()
        .find_map(|x| match x {
            Action::Send {
                source,
                destination,
                target,
                data,
                reply_to,
            } if MailslotWrite::parse(data).unwrap().data[0] == opcode::RESET_STATE_REQUEST => {
                Some((source, destination, target, data, reply_to))
            }
            _ => None,
        })
        .expect("a ResetStateRequest");
    assert_eq!(*reset.0, name("RUSTHOST", 0));
    assert_eq!(*reset.1, name("__SAMBA__", 0x20));
    assert_eq!(*reset.2, Target::Unique(addr(20)));
    assert_eq!(MailslotWrite::parse(reset.3).unwrap().data, [0x0E, 0x02]);
    assert_eq!(
        *reset.4,
        Some(ReplyTo {
            to: addr(20),
            request_len: 250
        })
    );
    assert!(a.contains(&Action::Release {
        name: name(WG, 0x1D)
    }));
    assert!(a.contains(&Action::Release {
        name: Name::msbrowse()
    }));
    assert!(a.contains(&Action::Event(BrowserEvent::ElectionStarted)));
    assert_eq!(b.role(), Role::Potential);
    assert_eq!(b.stats().master_conflicts, 1);
    assert_eq!(b.stats().reset_states_sent, 1);
    // The election runs (RequestElection to <WG><1E>).
    let o = run_until(&mut b, t + secs(3));
    assert!(o.count(opcode::REQUEST_ELECTION) >= 1);
    // Not master any more: another LMA is no conflict.
    feed(
        &mut b,
        t + secs(4),
        addr(20),
        "SAMBAA",
        &name(WG, 0x1E),
        &lma("SAMBAA", WKS),
    );
    assert_eq!(b.stats().master_conflicts, 1);
}

#[test]
fn turning_domain_master_off_or_shutting_down_releases_1b() {
    let t0 = Instant::now();
    let mut b = dmb(t0, 16);
    feed(&mut b, t0, addr(30), "LMB1", &name(WG, 0x1B), &ma("LMB1"));
    assert_eq!(run_until(&mut b, t0 + secs(60)).syncs.len(), 1);
    let mut c: BrowserConfig = b.config().clone();
    c.domain_master = false;
    b.set_config(c.clone(), t0 + secs(61)).unwrap();
    let o = drain(&mut b);
    assert!(o.releases.contains(&name(WG, 0x1B)));
    assert!(!b.is_domain_master());
    assert!(b.local_masters(t0 + secs(61)).is_empty());
    assert_eq!(b.domain_master(), None);
    // The sync that was running comes back: not taken any more.
    b.list_synced(
        t0 + secs(62),
        SyncKind::FromLocalMaster,
        "LMB1",
        vec![listed("FAR1", WKS, "")],
        vec![],
    );
    assert_eq!(b.stats().list_syncs_unexpected, 1);
    assert!(!b
        .list(t0 + secs(62))
        .servers
        .iter()
        .any(|s| s.name == "FAR1"));
    let o = run_until(&mut b, t0 + secs(65));
    assert!(o
        .announcement(opcode::HOST_ANNOUNCEMENT)
        .iter()
        .all(|(_, a)| a.server_type & ServerType::DOMAIN_MASTER == 0));
    assert!(run_until(&mut b, t0 + secs(120)).syncs.is_empty());
    // On again: asked for again.
    c.domain_master = true;
    b.set_config(c, t0 + secs(200)).unwrap();
    let o = drain(&mut b);
    assert!(o.registers.contains(&(name(WG, 0x1B), false)));
    b.name_registered(t0 + secs(200), &name(WG, 0x1B));
    assert!(b.is_domain_master());
    b.shutdown(t0 + secs(201));
    let o = drain(&mut b);
    assert!(o.releases.contains(&name(WG, 0x1B)));
    assert!(!b.is_domain_master());
}

/// Servers from another subnet are neither promoted to backup nor handed out as our
/// backups, even when their type says potential or backup browser, synced twice a
/// period apart.
#[test]
fn remote_servers_are_not_our_backups() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    let t = lmb_looking(&mut b, t0);
    let bk = WKS | ServerType::BACKUP_BROWSER | ServerType::POTENTIAL_BROWSER;
    let list = || {
        vec![
            listed("FARBACKUP", bk, ""),
            listed("FARPOT", WKS | ServerType::POTENTIAL_BROWSER, ""),
        ]
    };
    let mut o = Out::default();
    for k in 0..3u32 {
        let now = t + k * INTERVAL;
        o.extend(run_until(&mut b, now));
        b.domain_master_found(now, "SAMBADMB", dmb_addr());
        drain(&mut b);
        b.list_synced(now, SyncKind::FromDomainMaster, "SAMBADMB", list(), vec![]);
    }
    o.extend(run_until(&mut b, t + 3 * INTERVAL));
    assert_eq!(b.stats().list_syncs, 3);
    assert!(b
        .list(t + 3 * INTERVAL)
        .servers
        .iter()
        .any(|s| s.name == "FARPOT"));
    assert_eq!(o.count(opcode::BECOME_BACKUP), 0, "no remote promoted");
    assert!(b.list(t + 3 * INTERVAL).backups.is_empty());
    // A GetBackupListRequest gets only us.
    let req = BrowserFrame::GetBackupListRequest(nbdgm_wire::browser::GetBackupListRequest {
        count: 4,
        token: 7,
        trailing: vec![],
    });
    feed(
        &mut b,
        t + 3 * INTERVAL,
        addr(9),
        "CLIENT",
        &name(WG, 0x1D),
        &req,
    );
    let o = drain(&mut b);
    let r = o.frames(opcode::GET_BACKUP_LIST_RESPONSE);
    let Some(BrowserFrame::GetBackupListResponse(r)) = &r[0].frame else {
        panic!()
    };
    assert_eq!(r.servers, ["RUSTHOST"]);
}
