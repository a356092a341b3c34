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
