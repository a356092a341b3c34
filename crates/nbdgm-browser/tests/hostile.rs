//! A hostile subnet against the engine (issue 12 items 1, 2 and 8): BecomeBackup only
//! from the master we know, one fetch of the master's list per 12 minutes whatever asks
//! for it, and a bounded number of elections started under forged announcements.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use nbdgm_browser::{BrowserEvent, Refusal, Role};
use nbdgm_wire::browser::{opcode, BecomeBackup, BrowserFrame};
use std::time::Instant;

const WKS: u32 = 0x0000_1003;

fn bb(n: &str) -> BrowserFrame {
    BrowserFrame::BecomeBackup(BecomeBackup {
        browser_to_promote: n.into(),
        trailing: vec![],
    })
}

#[test]
fn become_backup_only_from_the_known_master() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    // No master known: refused.
    feed(
        &mut b,
        t0,
        addr(9),
        "EVIL",
        &name(WG, 0x1E),
        &bb("RUSTHOST"),
    );
    assert_eq!(b.role(), Role::Potential);
    assert_eq!(b.stats().refused_become_backup, 1);
    assert!(drain(&mut b).has_event(|e| matches!(
        e,
        BrowserEvent::Refused {
            what: Refusal::BecomeBackup,
            ..
        }
    )));
    feed(
        &mut b,
        t0,
        addr(2),
        "LMB",
        &name(WG, 0x1E),
        &lma("LMB", WKS),
    );
    // The master's name from another address, another name from its address: refused.
    feed(&mut b, t0, addr(9), "LMB", &name(WG, 0x1E), &bb("RUSTHOST"));
    feed(
        &mut b,
        t0,
        addr(2),
        "EVIL",
        &name(WG, 0x1E),
        &bb("RUSTHOST"),
    );
    assert_eq!(b.role(), Role::Potential);
    assert_eq!(b.stats().refused_become_backup, 3);
    assert!(run_until(&mut b, t0 + secs(5)).fetches.is_empty());
    // The master itself: obeyed, one fetch.
    feed(
        &mut b,
        t0 + secs(5),
        addr(2),
        "LMB",
        &name(WG, 0x1E),
        &bb("RUSTHOST"),
    );
    assert_eq!(b.role(), Role::Backup);
    assert_eq!(run_until(&mut b, t0 + secs(6)).fetches.len(), 1);
}

/// Promotion, demotion (a stronger election), promotion again, many times: still one
/// connection to the master per 12 minutes.
#[test]
fn one_fetch_per_period_whatever_triggers_it() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    let mut fetches = 0;
    let mut t = t0;
    for _ in 0..40 {
        feed(&mut b, t, addr(2), "LMB", &name(WG, 0x1E), &lma("LMB", WKS));
        feed(&mut b, t, addr(2), "LMB", &name(WG, 0x1E), &bb("RUSTHOST"));
        let o = run_until(&mut b, t + secs(1));
        fetches += o.fetches.len();
        // The fetch finishes (or fails) at once.
        if !o.fetches.is_empty() {
            b.master_list_failed(t + secs(1));
        }
        let stronger = election(0xFF01_0F08, u32::MAX, "STRONG");
        feed(
            &mut b,
            t + secs(1),
            addr(3),
            "STRONG",
            &name(WG, 0x1E),
            &stronger,
        );
        if b.role() == Role::Backup {
            // A backup stays backup when it loses; make it potential the hard way.
            let mut c = config("RUSTHOST");
            c.potential_browser = false;
            b.set_config(c, t + secs(1)).unwrap();
            b.set_config(config("RUSTHOST"), t + secs(1)).unwrap();
            drain(&mut b);
        }
        t += secs(15);
    }
    // 40 promotions over 10 minutes: one fetch.
    assert_eq!(fetches, 1, "fetches in 10 minutes");
    assert!(b.stats().master_syncs_deferred >= 1);
    // After the period a new one may go out.
    feed(
        &mut b,
        t0 + secs(13 * 60),
        addr(2),
        "LMB",
        &name(WG, 0x1E),
        &lma("LMB", WKS),
    );
    feed(
        &mut b,
        t0 + secs(13 * 60),
        addr(2),
        "LMB",
        &name(WG, 0x1E),
        &bb("RUSTHOST"),
    );
    let o = run_until(&mut b, t0 + secs(13 * 60 + 1));
    assert_eq!(o.fetches.len(), 1);
}

/// Forged LocalMasterAnnouncements while we are master. Each one heard while we are
/// master is a master conflict (Samba's `process_local_master_announce`): a
/// ResetStateRequest to the sender and the master role given up, then an election. We
/// win back (the forger never answers), and the next forged LMA demotes us again: the
/// election start limit (a burst of 3, then one a minute) bounds the cycle, so the
/// resets sent and the RequestElections stay bounded under a flood of 10 LMAs a second.
#[test]
fn forged_master_announcements_start_a_bounded_number_of_elections() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    let (t, _) = make_master(&mut b, t0);
    let started_before = b.stats().elections_started;
    let mut sent = 0;
    let mut resets = 0;
    let claim = |b: &mut nbdgm_browser::Browser, o: &Out, now| {
        // The node grants the claim at once.
        if o.registers.iter().any(|(n, _)| *n == name(WG, 0x1D)) {
            b.name_registered(now, &nbdgm_wire::Name::msbrowse());
            b.name_registered(now, &name(WG, 0x1D));
        }
    };
    // 10 forged LMAs a second for 100 s.
    for i in 0..1000u64 {
        let now = t + ms(100 * i);
        b.handle_timeout(now);
        let o = drain(&mut b);
        claim(&mut b, &o, now);
        sent += o.count(opcode::REQUEST_ELECTION);
        feed(
            &mut b,
            now,
            addr(66),
            "FORGED",
            &name(WG, 0x1E),
            &lma("FORGED", WKS),
        );
        let o = drain(&mut b);
        sent += o.count(opcode::REQUEST_ELECTION);
        resets += o.count(opcode::RESET_STATE_REQUEST);
    }
    sent += run_until(&mut b, t + secs(101)).count(opcode::REQUEST_ELECTION);
    let s = b.stats();
    let started = s.elections_started - started_before;
    // Default: burst 3, one a minute: 3 + 1 in 100 s.
    assert!(started <= 4, "{started} elections started");
    assert!(started >= 1, "the first conflict still gets its election");
    assert!(sent <= 4 * 4 + 1, "{sent} RequestElections");
    assert!(s.elections_won >= 2, "we won back at least once");
    // One conflict per time we were master: at most the first win plus the re-wins.
    assert!(s.master_conflicts >= 2);
    assert!(
        s.master_conflicts <= started + 1,
        "{} conflicts",
        s.master_conflicts
    );
    assert_eq!(s.reset_states_sent, s.master_conflicts);
    assert_eq!(resets as u64, s.master_conflicts);
    // When the flood stops, the election the limit put off brings the master back.
    let end = t + secs(101);
    for k in 1..=180u64 {
        let now = end + secs(k);
        b.handle_timeout(now);
        let o = drain(&mut b);
        claim(&mut b, &o, now);
    }
    assert_eq!(b.role(), Role::Master);
}
