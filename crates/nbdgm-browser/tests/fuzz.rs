//! Property tests: arbitrary input never panics and the caps hold.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use nbdgm_browser::{Action, Browser};
use nbdgm_wire::browser::{
    Announcement, BecomeBackup, BrowserFrame, DomainAnnouncement, GetBackupListRequest,
    LanmanAnnouncement, LanmanFrame, ResetStateRequest,
};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE, LANMAN};
use nbdgm_wire::Name;
use proptest::prelude::*;
use std::time::Instant;

#[derive(Debug, Clone)]
enum Op {
    Raw {
        slot: u8,
        dest: u8,
        data: Vec<u8>,
    },
    Frame {
        kind: u8,
        n: u16,
        ty: u32,
        p: u32,
        crit: u32,
        dest: u8,
    },
    Time(u32),
    Registered(u8),
    Failed(u8),
    SetConfig(bool, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            any::<u8>(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..80)
        )
            .prop_map(|(slot, dest, data)| Op::Raw { slot, dest, data }),
        (
            any::<u8>(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u8>()
        )
            .prop_map(|(kind, n, ty, p, crit, dest)| Op::Frame {
                kind,
                n,
                ty,
                p,
                crit,
                dest
            }),
        any::<u32>().prop_map(Op::Time),
        any::<u8>().prop_map(Op::Registered),
        any::<u8>().prop_map(Op::Failed),
        (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Op::SetConfig(a, b)),
    ]
}

fn dest(d: u8) -> Name {
    match d % 6 {
        0 => name(WG, 0x1D),
        1 => name(WG, 0x1E),
        2 => name(WG, 0x00),
        3 => Name::msbrowse(),
        4 => name("RUSTHOST", 0),
        _ => name(&format!("W{}", d % 7), 0x1D),
    }
}

fn frame(kind: u8, n: u16, ty: u32, p: u32, crit: u32) -> Vec<u8> {
    let nm = format!("N{}", n % 700);
    let a = Announcement {
        periodicity_ms: p,
        server_name: nm.clone(),
        server_type: ty,
        ..Default::default()
    };
    let f = match kind % 10 {
        0 => BrowserFrame::HostAnnouncement(a),
        1 => BrowserFrame::LocalMasterAnnouncement(a),
        2 => BrowserFrame::AnnouncementRequest(Default::default()),
        3 => election(crit >> 1, p, &nm),
        4 => BrowserFrame::GetBackupListRequest(GetBackupListRequest {
            count: kind,
            token: p,
            trailing: vec![],
        }),
        5 => BrowserFrame::BecomeBackup(BecomeBackup {
            browser_to_promote: if n.is_multiple_of(2) {
                "RUSTHOST".into()
            } else {
                nm
            },
            trailing: vec![],
        }),
        6 => BrowserFrame::DomainAnnouncement(DomainAnnouncement {
            periodicity_ms: p,
            machine_group: format!("G{}", n % 50),
            local_master_name: nm,
            server_type: ty,
            ..Default::default()
        }),
        7 => BrowserFrame::ResetStateRequest(ResetStateRequest {
            reset_type: kind,
            trailing: vec![],
        }),
        8 => {
            return LanmanFrame::Announcement(LanmanAnnouncement {
                opcode: [0x01, 0x0C, 0x0F][usize::from(n % 3)],
                server_type: ty,
                periodicity_s: p as u16,
                server_name: nm,
                ..Default::default()
            })
            .to_bytes()
            .unwrap_or_default()
        }
        _ => election(0, 0, &nm),
    };
    f.to_bytes().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn arbitrary_input_never_panics(ops in proptest::collection::vec(op(), 1..300), seed in any::<u64>(), allow in any::<bool>()) {
        let t0 = Instant::now();
        let mut c = config("RUSTHOST");
        c.max_servers = 50;
        c.max_workgroups = 5;
        c.allow_reset = allow;
        let mut b = started(c.clone(), t0, seed);
        let mut now = t0;
        let src = name("PEER", 0);
        for o in ops {
            match o {
                Op::Raw { slot, dest: d, data } => {
                    let s = [BROWSE, LANMAN, "\\MAILSLOT\\FOO"][usize::from(slot % 3)];
                    feed_raw(&mut b, now, addr(9), &src, &dest(d), s, &data);
                }
                Op::Frame { kind, n, ty, p, crit, dest: d } => {
                    let data = frame(kind, n, ty, p, crit);
                    let s = if kind % 10 == 8 { LANMAN } else { BROWSE };
                    feed_raw(&mut b, now, addr(9), &src, &dest(d), s, &data);
                }
                Op::Time(ms_) => {
                    now += ms(u64::from(ms_ % 200_000));
                    b.handle_timeout(now);
                }
                Op::Registered(d) => b.name_registered(now, &dest(d)),
                Op::Failed(d) => b.name_failed(now, &dest(d)),
                Op::SetConfig(pot, pref) => {
                    let mut c2 = c.clone();
                    c2.potential_browser = pot;
                    c2.preferred_master = pref;
                    b.set_config(c2, now).unwrap();
                }
            }
            prop_assert!(b.stats().servers <= 50);
            prop_assert!(b.stats().workgroups <= 5);
            if let Some(t) = b.poll_timeout() {
                // deadlines are never in the far past after handle_timeout
                let _ = t;
            }
            while let Some(a) = b.poll_action() {
                if let Action::Send { data, .. } = a {
                    let w = MailslotWrite::parse(&data).unwrap();
                    if w.name == BROWSE {
                        BrowserFrame::parse(&w.data).unwrap();
                    }
                }
            }
        }
        let l = b.list(now);
        prop_assert!(l.servers.iter().filter(|s| !s.local).count() <= 50);
        prop_assert!(l.workgroups.iter().filter(|w| !w.local).count() <= 5);
        b.shutdown(now);
        while b.poll_action().is_some() {}
        prop_assert!(b.poll_timeout().is_none());
    }

    #[test]
    fn handle_timeout_makes_progress(seed in any::<u64>(), steps in 1usize..200) {
        let t0 = Instant::now();
        let mut b = started(config("RUSTHOST"), t0, seed);
        let mut last = t0;
        for _ in 0..steps {
            let Some(t) = b.poll_timeout() else { break };
            prop_assert!(t >= last);
            b.handle_timeout(t);
            while b.poll_action().is_some() {}
            let next = b.poll_timeout();
            prop_assert!(next.is_none_or(|n| n > t), "deadline not advanced");
            last = t;
        }
    }
}

#[test]
fn random_bytes_on_every_path() {
    let t0 = Instant::now();
    let mut b: Browser = started(config("RUSTHOST"), t0, 3);
    let mut x = 0x1234_5678_9abc_def0u64;
    for i in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 64) as usize;
        let mut data: Vec<u8> = (0..len).map(|k| (x >> (k % 8 * 8)) as u8).collect();
        if let Some(f) = data.first_mut() {
            *f = [0x01, 0x02, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F][(x % 10) as usize];
        }
        let slot = if i % 2 == 0 { BROWSE } else { LANMAN };
        feed_raw(
            &mut b,
            t0,
            addr(9),
            &name("P", 0),
            &dest((x >> 40) as u8),
            slot,
            &data,
        );
        while b.poll_action().is_some() {}
    }
    assert!(b.stats().refused_malformed > 0);
}

/// Issue 17 §3: hostile MasterAnnouncements, lookups and synced lists (any names,
/// comments and types, answers for syncs never asked) never panic, and every table stays
/// at its cap.
#[derive(Debug, Clone)]
enum DmbOp {
    Master {
        name: String,
        to_1b: bool,
        from: u8,
    },
    Time(u32),
    /// Answer the oldest outstanding SyncList (or an invented one) with this list.
    Synced {
        invented: bool,
        servers: Vec<(String, u32, String)>,
        groups: Vec<(String, u32, String)>,
    },
    SyncFailed(bool),
    Found(String, bool),
    Registered(bool),
    Election,
}

fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z0-9]{1,15}",
        ".{0,20}",
        proptest::collection::vec(any::<char>(), 0..18).prop_map(|v| v.into_iter().collect()),
    ]
}

fn dmb_op() -> impl Strategy<Value = DmbOp> {
    let entry = || (any_name(), any::<u32>(), ".{0,60}");
    prop_oneof![
        (any_name(), any::<bool>(), any::<u8>()).prop_map(|(name, to_1b, from)| DmbOp::Master {
            name,
            to_1b,
            from
        }),
        any::<u32>().prop_map(DmbOp::Time),
        (
            any::<bool>(),
            proptest::collection::vec(entry(), 0..40),
            proptest::collection::vec(entry(), 0..10)
        )
            .prop_map(|(invented, servers, groups)| DmbOp::Synced {
                invented,
                servers,
                groups
            }),
        any::<bool>().prop_map(DmbOp::SyncFailed),
        (any_name(), any::<bool>()).prop_map(|(n, b)| DmbOp::Found(n, b)),
        any::<bool>().prop_map(DmbOp::Registered),
        Just(DmbOp::Election),
    ]
}

fn to_listed(v: Vec<(String, u32, String)>) -> Vec<nbdgm_browser::Listed> {
    v.into_iter()
        .map(|(name, server_type, comment)| nbdgm_browser::Listed {
            name,
            os_major: 1,
            os_minor: 2,
            server_type,
            comment,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn hostile_domain_browsing_never_panics_and_stays_bounded(
        ops in proptest::collection::vec(dmb_op(), 1..200),
        seed in any::<u64>(),
        dm in any::<bool>(),
    ) {
        use nbdgm_browser::SyncKind;
        let t0 = Instant::now();
        let mut c = config("RUSTHOST");
        c.max_servers = 50;
        c.max_workgroups = 5;
        c.max_local_masters = 8;
        c.domain_master = dm;
        c.dmb_sync_interval = ms(90_000);
        let mut b = started(c, t0, seed);
        b.name_registered(t0, &name(WG, 0x1B));
        let mut now = t0;
        // SyncLists asked for and not answered yet.
        let mut asked: Vec<(SyncKind, String)> = Vec::new();
        for o in ops {
            match o {
                DmbOp::Master { name: n, to_1b, from } => {
                    let f = BrowserFrame::MasterAnnouncement(
                        nbdgm_wire::browser::MasterAnnouncement { master_name: n, trailing: vec![] },
                    );
                    let data = f.to_bytes().unwrap_or_else(|_| vec![0x0D, 0]);
                    let dst = if to_1b { name(WG, 0x1B) } else { name("RUSTHOST", 0) };
                    feed_raw(&mut b, now, addr(from), &name("PEER", 0), &dst, BROWSE, &data);
                }
                DmbOp::Time(t) => {
                    now += ms(u64::from(t % 300_000));
                    b.handle_timeout(now);
                }
                DmbOp::Synced { invented, servers, groups } => {
                    let (kind, peer) = if invented || asked.is_empty() {
                        (SyncKind::FromLocalMaster, "NOBODY".to_string())
                    } else {
                        asked.remove(0)
                    };
                    b.list_synced(now, kind, &peer, to_listed(servers), to_listed(groups));
                }
                DmbOp::SyncFailed(invented) => {
                    if invented || asked.is_empty() {
                        b.list_sync_failed(now, SyncKind::FromDomainMaster, "X");
                    } else {
                        let (k, p) = asked.remove(0);
                        b.list_sync_failed(now, k, &p);
                    }
                }
                DmbOp::Found(n, ok) => {
                    if ok {
                        b.domain_master_found(now, &n, std::net::Ipv4Addr::new(203, 0, 113, 9));
                    } else {
                        b.domain_master_failed(now);
                    }
                }
                DmbOp::Registered(ok) => {
                    if ok {
                        b.name_registered(now, &name(WG, 0x1B));
                    } else {
                        b.name_failed(now, &name(WG, 0x1B));
                    }
                }
                DmbOp::Election => {
                    feed(&mut b, now, addr(99), "CLIENT", &name(WG, 0x1E), &election(0, 0, "CLIENT"));
                }
            }
            let mut n = 0;
            while let Some(a) = b.poll_action() {
                n += 1;
                match a {
                    Action::SyncList { kind, peer, .. } => asked.push((kind, peer)),
                    Action::Register { name: r, .. } if r == name(WG, 0x1D) => {
                        b.name_registered(now, &r);
                    }
                    Action::Send { data, .. } => {
                        let w = MailslotWrite::parse(&data).unwrap();
                        if w.name == BROWSE {
                            BrowserFrame::parse(&w.data).unwrap();
                        }
                    }
                    _ => {}
                }
            }
            prop_assert!(n <= 1100, "{n} actions from one input");
            prop_assert!(b.stats().servers <= 50);
            prop_assert!(b.stats().workgroups <= 5);
            prop_assert!(b.local_masters(now).len() <= 8);
            prop_assert!(b.stats().local_masters <= 8);
            let l = b.list(now);
            prop_assert!(l.servers.iter().filter(|s| !s.local).count() <= 50);
            prop_assert!(l.servers.iter().all(|s| !s.name.is_empty() && s.name.chars().count() <= 15));
            prop_assert!(l.servers.iter().filter(|s| s.name == "RUSTHOST").count() <= 1);
        }
        b.shutdown(now);
        while b.poll_action().is_some() {}
        prop_assert!(b.poll_timeout().is_none());
    }
}
