//! Elections (MS-BRWS §3.3.5.8, §3.3.6, §3.3.7; DIGEST §6.4) and a simulated subnet.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use nbdgm_browser::{Action, Browser, BrowserEvent, Refusal, Role, Target};
use nbdgm_wire::browser::{opcode, BrowserFrame, RequestElection};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::Name;
use std::collections::HashMap;
use std::time::Instant;

fn elections(o: &Out) -> Vec<RequestElection> {
    o.frames(opcode::REQUEST_ELECTION)
        .into_iter()
        .map(|s| match s.frame.clone().unwrap() {
            BrowserFrame::RequestElection(r) => r,
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn weaker_request_starts_election_won_after_four_sends() {
    let t0 = Instant::now();
    let mut c = config("RUSTHOST");
    c.os_level = 65;
    let mut b = started(c, t0, 11);
    run_until(&mut b, t0);
    let t1 = t0 + secs(10);
    feed(
        &mut b,
        t1,
        addr(5),
        "WEAK",
        &name(WG, 0x1E),
        &election(0x0101_0F00, 5, "WEAK"),
    );
    let o = drain(&mut b);
    assert!(o.has_event(|e| *e == BrowserEvent::ElectionStarted));
    let mut sends = vec![];
    let mut all = Out::default();
    for (t, o) in run_timed(&mut b, t1 + secs(20)) {
        for r in elections(&o) {
            sends.push((t, r));
        }
        all.extend(o);
    }
    assert_eq!(sends.len(), 4, "four sends, then claim");
    let mut prev = t1;
    for (t, r) in &sends {
        let d = t.duration_since(prev).as_millis();
        assert!((800..=3000).contains(&d), "potential-browser delay {d}");
        prev = *t;
        assert_eq!(r.criteria, 0x4101_0F00);
        assert_eq!(r.election_version, 1);
        assert_eq!(r.server_name, "RUSTHOST");
        assert_eq!(
            u64::from(r.uptime_ms),
            t.duration_since(t0).as_millis() as u64,
            "uptime in ms"
        );
    }
    let e = all.frames(opcode::REQUEST_ELECTION);
    assert!(e
        .iter()
        .all(|s| s.destination == name(WG, 0x1E) && s.target == Target::Broadcast));
    assert!(all.registers.contains(&(name(WG, 0x1D), false)));
    assert!(all.registers.contains(&(Name::msbrowse(), true)));
    assert_eq!(b.role(), Role::Potential, "master only once <1D> is ours");
    let t2 = prev + ms(500);
    b.name_registered(t2, &Name::msbrowse());
    assert_eq!(b.role(), Role::Potential);
    b.name_registered(t2, &name(WG, 0x1D));
    assert_eq!(b.role(), Role::Master);
    let o = drain(&mut b);
    assert!(o.has_event(|e| *e == BrowserEvent::ElectionWon));
    assert!(o.has_event(|e| *e
        == BrowserEvent::RoleChanged {
            from: Role::Potential,
            to: Role::Master
        }));
    let ar = o.frames(opcode::ANNOUNCEMENT_REQUEST);
    assert_eq!(ar.len(), 1);
    assert_eq!(ar[0].destination, name(WG, 0x1E));
    let (s, a) = o.announcement(opcode::LOCAL_MASTER_ANNOUNCEMENT)[0];
    assert_eq!(
        (s.destination.clone(), a.periodicity_ms),
        (name(WG, 0x1E), 120_000)
    );
    let d = o.frames(opcode::DOMAIN_ANNOUNCEMENT);
    assert_eq!(d[0].destination, Name::msbrowse());
    match d[0].frame.as_ref().unwrap() {
        BrowserFrame::DomainAnnouncement(d) => {
            assert_eq!(d.machine_group, WG);
            assert_eq!(d.local_master_name, "RUSTHOST");
            assert_eq!(d.server_type, 0x8000_1000);
            assert_eq!(d.periodicity_ms, 60_000);
        }
        _ => unreachable!(),
    }
    assert_eq!(b.stats().elections_won, 1);
    let l = b.list(t2);
    assert_eq!(l.master.as_deref(), Some("RUSTHOST"));
    assert!(l.workgroups.iter().any(|w| w.name == WG && w.local));

    // LMA 2,2,4,8,12 min; DomainAnnouncement 1,1,5,5,10,10,15 min
    let mut lma = vec![];
    let mut dom = vec![];
    for (t, o) in run_timed(&mut b, t2 + secs(3 * 3600)) {
        for (_, a) in o.announcement(opcode::LOCAL_MASTER_ANNOUNCEMENT) {
            lma.push((t.duration_since(t2).as_secs(), a.periodicity_ms / 60_000));
        }
        for s in o.frames(opcode::DOMAIN_ANNOUNCEMENT) {
            if let Some(BrowserFrame::DomainAnnouncement(d)) = &s.frame {
                dom.push((t.duration_since(t2).as_secs(), d.periodicity_ms / 60_000));
            }
        }
    }
    assert_eq!(
        &lma[..5],
        &[(120, 2), (240, 4), (480, 8), (960, 12), (1680, 12)]
    );
    assert_eq!(
        &dom[..7],
        &[
            (60, 1),
            (120, 5),
            (420, 5),
            (720, 10),
            (1320, 10),
            (1920, 15),
            (2820, 15)
        ]
    );
}

#[test]
fn lost_to_stronger_criteria_and_tie_breaks() {
    let t0 = Instant::now();
    let t1 = t0 + secs(100); // our uptime 100 000 ms
                             // (their criteria, their uptime, their name, we should win?)
    let ours = 0x1401_0F00u32; // os level 20, potential
    let cases = [
        (0x1501_0F00, 0, "ZZZ", false),
        (0x1401_0F01, 0, "ZZZ", false),
        (0x1301_0FFF, u32::MAX, "AAA", true),
        (ours, 100_001, "ZZZ", false),
        (ours, 99_999, "AAA", true),
        (ours, 100_000, "AAA", false),
        (ours, 100_000, "zzz", true),
        (ours, 100_000, "rusthosu", true),
    ];
    for (crit, up, who, win) in cases {
        let mut b = started(config("RUSTHOST"), t0, 1);
        run_until(&mut b, t0);
        feed(
            &mut b,
            t1,
            addr(5),
            who,
            &name(WG, 0x1E),
            &election(crit, up, who),
        );
        let o = drain(&mut b);
        assert_eq!(
            o.has_event(|e| *e == BrowserEvent::ElectionStarted),
            win,
            "{crit:#x} {up} {who}"
        );
    }
    // stronger request during our election: we stop and report the loss
    let mut b = started(config("RUSTHOST"), t0, 1);
    run_until(&mut b, t0);
    feed(
        &mut b,
        t1,
        addr(5),
        "WEAK",
        &name(WG, 0x1E),
        &election(0x0101_0F00, 0, "WEAK"),
    );
    let o = run_until(&mut b, t1 + ms(3001));
    assert_eq!(elections(&o).len(), 1);
    feed(
        &mut b,
        t1 + secs(4),
        addr(6),
        "STRONG",
        &name(WG, 0x1E),
        &election(0xFF01_0F0F, 0, "STRONG"),
    );
    let o = drain(&mut b);
    assert!(o.has_event(|e| *e
        == BrowserEvent::ElectionLost {
            winner: "STRONG".into()
        }));
    assert!(o.registers.is_empty() && o.releases.is_empty());
    let o = run_until(&mut b, t1 + secs(60));
    assert!(elections(&o).is_empty(), "timer stopped");
    assert_eq!(b.role(), Role::Potential);
}

#[test]
fn master_demoted_by_stronger_request() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 4);
    let (t, _) = make_master(&mut b, t0 + secs(1));
    feed(
        &mut b,
        t + secs(1),
        addr(6),
        "STRONG",
        &name(WG, 0x1E),
        &election(0xFF01_0F0F, 99_999_999, "STRONG"),
    );
    let o = drain(&mut b);
    assert_eq!(b.role(), Role::Potential);
    assert!(o.releases.contains(&name(WG, 0x1D)));
    assert!(o.releases.contains(&Name::msbrowse()));
    assert!(!o.releases.contains(&name(WG, 0x1E)));
    assert!(o.has_event(|e| *e
        == BrowserEvent::RoleChanged {
            from: Role::Master,
            to: Role::Potential
        }));
    assert!(
        o.has_event(|e| matches!(e, BrowserEvent::ElectionLost { winner } if winner == "STRONG"))
    );
    let o = run_until(&mut b, t + secs(3));
    let (_, a) = o.announcement(opcode::HOST_ANNOUNCEMENT)[0];
    assert_eq!(
        a.server_type, 0x0001_1003,
        "HostAnnouncements again, master bit gone"
    );
    let o = run_until(&mut b, t + secs(3600));
    assert_eq!(o.count(opcode::LOCAL_MASTER_ANNOUNCEMENT), 0);
    assert_eq!(o.count(opcode::DOMAIN_ANNOUNCEMENT), 0);
    // a DC becomes backup instead
    let mut c = config("DCHOST");
    c.server_type |= nbdgm_wire::browser::ServerType::DOMAIN_CTRL;
    let mut d = started(c, t0, 4);
    let (t, _) = make_master(&mut d, t0 + secs(1));
    feed(
        &mut d,
        t,
        addr(6),
        "STRONG",
        &name(WG, 0x1E),
        &election(0xFF01_0F0F, 0, "STRONG"),
    );
    assert_eq!(d.role(), Role::Backup);
}

#[test]
fn weaker_request_to_master_keeps_it_master() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 4);
    let (t, _) = make_master(&mut b, t0 + secs(1));
    feed(
        &mut b,
        t,
        addr(6),
        "WEAK",
        &name(WG, 0x1E),
        &election(0x0101_0F00, 0, "WEAK"),
    );
    let mut times = vec![];
    let mut all = Out::default();
    for (tt, o) in run_timed(&mut b, t + secs(2)) {
        for r in elections(&o) {
            assert_eq!(r.criteria & 0x04, 0x04, "running-master bit");
            times.push(tt);
        }
        all.extend(o);
    }
    assert_eq!(times.len(), 4);
    assert_eq!(times[0].duration_since(t).as_millis(), 100);
    assert_eq!(b.role(), Role::Master);
    assert!(all.registers.is_empty());
    assert_eq!(
        all.count(opcode::LOCAL_MASTER_ANNOUNCEMENT),
        1,
        "re-announced after winning again"
    );
}

#[test]
fn one_d_registration_failure_restarts_then_gives_up() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 5);
    run_until(&mut b, t0);
    feed(
        &mut b,
        t0,
        addr(5),
        "C",
        &name(WG, 0x1E),
        &election(0, 0, "C"),
    );
    let mut claims = 0;
    let mut sends = 0;
    let mut lost = false;
    let mut t = t0;
    for _ in 0..200 {
        let Some(n) = b.poll_timeout() else { break };
        // Before the periodic master check (5 min) would start a fresh election.
        if n > t0 + secs(240) {
            break;
        }
        t = n;
        b.handle_timeout(t);
        let o = drain(&mut b);
        sends += elections(&o).len();
        if o.registers.contains(&(name(WG, 0x1D), false)) {
            claims += 1;
            b.name_failed(t, &name(WG, 0x1D));
            let o = drain(&mut b);
            assert!(o.releases.contains(&Name::msbrowse()));
            assert!(
                o.has_event(|e| *e == BrowserEvent::ElectionStarted),
                "restart"
            );
        }
        if o.has_event(|e| matches!(e, BrowserEvent::ElectionLost { .. })) {
            lost = true;
        }
    }
    assert_eq!(b.role(), Role::Potential);
    assert_eq!(claims, 7);
    assert_eq!(sends, 30, "gave up after 30 sends");
    assert!(lost);
    let _ = t;
}

#[test]
fn election_rate_limit() {
    let t0 = Instant::now();
    let mut c = config("RUSTHOST");
    c.elections_per_minute = 5;
    let mut b = started(c, t0, 1);
    run_until(&mut b, t0);
    for i in 0..8u64 {
        feed(
            &mut b,
            t0 + secs(i),
            addr(5),
            "STRONG",
            &name(WG, 0x1E),
            &election(0xFF01_0F0F, 0, "STRONG"),
        );
    }
    assert_eq!(b.stats().refused_election_rate, 3);
    let o = drain(&mut b);
    let refused = o
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                BrowserEvent::Refused {
                    what: Refusal::ElectionRate,
                    ..
                }
            )
        })
        .count();
    assert_eq!(refused, 3);
    feed(
        &mut b,
        t0 + secs(61),
        addr(5),
        "STRONG",
        &name(WG, 0x1E),
        &election(0xFF01_0F0F, 0, "STRONG"),
    );
    assert_eq!(b.stats().refused_election_rate, 3, "new window");
}

#[test]
fn preferred_master_forces_election_at_startup() {
    let t0 = Instant::now();
    let mut c = config("RUSTHOST");
    c.preferred_master = true;
    c.os_level = 65;
    let mut b = Browser::new(c, t0, 1).unwrap();
    b.start(t0);
    assert!(
        !drain(&mut b).has_event(|e| *e == BrowserEvent::ElectionStarted),
        "waits for <name><00>"
    );
    b.name_registered(t0 + secs(4), &name("RUSTHOST", 0));
    assert!(drain(&mut b).has_event(|e| *e == BrowserEvent::ElectionStarted));
    let o = run_until(&mut b, t0 + secs(20));
    let e = elections(&o);
    assert_eq!(e.len(), 4);
    assert_eq!(e[0].criteria, 0x4101_0F08);
    // Not preferred: nothing until the master check (30 s after the names) finds no
    // master; then it forces an election.
    let mut p = started(config("OTHER"), t0, 1);
    assert!(elections(&run_until(&mut p, t0 + secs(25))).is_empty());
    assert!(!elections(&run_until(&mut p, t0 + secs(40))).is_empty());
    assert_eq!(p.stats().master_checks_failed, 1);
    // A master heard in time: no election.
    let mut q = started(config("THIRD"), t0, 1);
    feed(
        &mut q,
        t0 + secs(10),
        addr(20),
        "MASTER",
        &name(WG, 0x1E),
        &lma("MASTER", 0x0004_1003),
    );
    assert!(elections(&run_until(&mut q, t0 + secs(600))).is_empty());
    assert_eq!(q.stats().master_checks_failed, 0);
}

#[test]
fn foreign_lma_while_master_forces_election() {
    let t0 = Instant::now();
    let mut b = started(config("RUSTHOST"), t0, 1);
    let (t, _) = make_master(&mut b, t0);
    feed(
        &mut b,
        t + secs(1),
        addr(20),
        "ROGUE",
        &name(WG, 0x1E),
        &lma("ROGUE", 0x1003),
    );
    let o = drain(&mut b);
    assert!(o.has_event(|e| matches!(e, BrowserEvent::MasterSeen { name, .. } if name == "ROGUE")));
    assert!(o.has_event(|e| *e == BrowserEvent::ElectionStarted));
    // Samba's answer to a master conflict: ResetStateRequest 0x02 to __SAMBA__<20> at
    // the sender, then the master role given up (<1D> and MSBROWSE released).
    let resets = o.frames(nbdgm_wire::browser::opcode::RESET_STATE_REQUEST);
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0].destination, name("__SAMBA__", 0x20));
    assert_eq!(resets[0].target, Target::Unique(addr(20)));
    assert_eq!(resets[0].data, [0x0E, 0x02]);
    assert!(o.releases.contains(&name(WG, 0x1D)));
    assert!(o.releases.contains(&nbdgm_wire::Name::msbrowse()));
    assert_eq!(b.role(), Role::Potential);
    assert_eq!(b.stats().master_conflicts, 1);
    let o = run_until(&mut b, t + secs(2));
    assert!(!elections(&o).is_empty());
    // not master: recorded as our master, no election
    let mut p = started(config("OTHER"), t0, 1);
    run_until(&mut p, t0);
    feed(
        &mut p,
        t0 + secs(1),
        addr(20),
        "SAMBAA",
        &name(WG, 0x1E),
        &lma("SAMBAA", 0x1003),
    );
    let o = drain(&mut p);
    assert!(!o.has_event(|e| *e == BrowserEvent::ElectionStarted));
    let l = p.list(t0 + secs(2));
    assert_eq!(l.master.as_deref(), Some("SAMBAA"));
    assert_eq!(l.master_address, Some(*addr(20).ip()));
}

#[test]
fn non_browser_ignores_elections_and_own_frames_ignored() {
    let t0 = Instant::now();
    let mut c = config("RUSTHOST");
    c.potential_browser = false;
    let mut b = started(c, t0, 1);
    feed(
        &mut b,
        t0,
        addr(5),
        "C",
        &name(WG, 0x1E),
        &election(0, 0, "C"),
    );
    assert!(!drain(&mut b).has_event(|e| *e == BrowserEvent::ElectionStarted));
    let mut b = started(config("RUSTHOST"), t0, 1);
    feed(
        &mut b,
        t0,
        addr(5),
        "RUSTHOST",
        &name(WG, 0x1E),
        &election(0, 0, "RUSTHOST"),
    );
    assert!(
        !drain(&mut b).has_event(|e| *e == BrowserEvent::ElectionStarted),
        "own looped-back frame"
    );
}

/// A subnet: every Broadcast send reaches all other engines; `<1D>` is unique.
struct Subnet {
    nodes: Vec<(String, Browser)>,
    holder_1d: Option<usize>,
}

impl Subnet {
    fn step(&mut self, now: Instant) {
        let mut queue = vec![];
        for i in 0..self.nodes.len() {
            while let Some(a) = self.nodes[i].1.poll_action() {
                queue.push((i, a));
            }
        }
        let d = name(WG, 0x1D);
        for (i, a) in queue {
            match a {
                Action::Send {
                    source,
                    destination,
                    target: Target::Broadcast,
                    data,
                    ..
                } => {
                    let w = MailslotWrite::parse(&data).unwrap();
                    for j in 0..self.nodes.len() {
                        if j != i {
                            feed_raw(
                                &mut self.nodes[j].1,
                                now,
                                addr(j as u8 + 1),
                                &source,
                                &destination,
                                &w.name,
                                &w.data,
                            );
                        }
                    }
                    assert_eq!(w.name, BROWSE);
                }
                Action::Register { name, .. } if name == d => match self.holder_1d {
                    Some(h) if h != i => self.nodes[i].1.name_failed(now, &name),
                    _ => {
                        self.holder_1d = Some(i);
                        self.nodes[i].1.name_registered(now, &name);
                    }
                },
                Action::Register { name, .. } => self.nodes[i].1.name_registered(now, &name),
                Action::Release { name } if name == d && self.holder_1d == Some(i) => {
                    self.holder_1d = None;
                }
                _ => {}
            }
        }
    }

    fn run(&mut self, until: Instant) {
        loop {
            let next = self
                .nodes
                .iter()
                .filter_map(|(_, b)| b.poll_timeout())
                .min();
            let Some(t) = next.filter(|t| *t <= until) else {
                break;
            };
            for (_, b) in &mut self.nodes {
                if b.poll_timeout().is_some_and(|x| x <= t) {
                    b.handle_timeout(t);
                }
            }
            for _ in 0..4 {
                self.step(t);
            }
        }
    }

    fn masters(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|(_, b)| b.role() == Role::Master)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

#[test]
fn simulated_subnet_elects_highest_os_level() {
    for seed in 0..25u64 {
        let t0 = Instant::now();
        let n = 2 + (seed % 2) as usize;
        let levels = [20u8, 65, 33];
        let mut nodes = vec![];
        for (i, level) in levels.iter().enumerate().take(n) {
            let nm = format!("HOST{i}");
            let mut c = config(&nm);
            c.os_level = *level;
            // the weakest is the preferred master: it starts the election, and loses
            c.preferred_master = i == 0;
            let mut b = Browser::new(c, t0, seed * 31 + i as u64).unwrap();
            b.start(t0);
            b.name_registered(t0 + ms(100 * i as u64), &name(&nm, 0));
            nodes.push((nm, b));
        }
        let mut net = Subnet {
            nodes,
            holder_1d: None,
        };
        net.run(t0 + secs(600));
        assert_eq!(net.masters(), vec!["HOST1"], "seed {seed}");
        assert_eq!(net.holder_1d, Some(1));
        for (nm, b) in &net.nodes {
            if nm != "HOST1" {
                assert_eq!(
                    b.list(t0 + secs(600)).master.as_deref(),
                    Some("HOST1"),
                    "seed {seed} {nm}"
                );
            }
        }
    }
}

#[test]
fn simulated_subnet_tie_on_os_level_decided_by_uptime() {
    let t0 = Instant::now();
    let mut nodes = vec![];
    let mut started_at = HashMap::new();
    for (i, nm) in ["AAA", "BBB"].iter().enumerate() {
        let mut c = config(nm);
        c.os_level = 40;
        c.preferred_master = true;
        let at = t0 + secs(30 * i as u64); // AAA started earlier: more uptime
        let mut b = Browser::new(c, at, 77 + i as u64).unwrap();
        b.start(at);
        b.name_registered(t0 + secs(40), &name(nm, 0));
        started_at.insert(*nm, at);
        nodes.push((nm.to_string(), b));
    }
    let mut net = Subnet {
        nodes,
        holder_1d: None,
    };
    net.run(t0 + secs(600));
    assert_eq!(net.masters(), vec!["AAA"]);
}
