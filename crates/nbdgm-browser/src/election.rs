//! Election criteria and state machine (MS-BRWS §3.3.5.8–§3.3.5.9, §3.3.6 "Election
//! Delay Timer"; DIGEST §6.4).
//!
//! Criteria = `os_level << 24 | 0x010F00 | role`, role bits: 0x08 preferred master,
//! 0x04 running master, 0x01 running backup, 0x02 when the configured server type has
//! DOMAIN_CTRL (MS-BRWS "DC"). Samba always sets 0x02 (MAINTAIN_LIST); we keep to the
//! spec meaning. Comparison: version, criteria (unsigned), uptime (ms, larger wins),
//! then name (lower wins, case-insensitive).
//!
//! Once started, we send RequestElection after the role's delay (100 ms master,
//! 200–600 ms backup, 800–3000 ms potential). After [`WIN_AFTER`] sends with nobody
//! stronger we claim `<WG><1D>`; a failed claim restarts the election; after more than
//! [`GIVE_UP_AFTER`] sends in all we give up.

use crate::engine::Role;
use crate::schedule::Rng;
use nbdgm_wire::browser::{ElectionCriteria, ServerType};
use std::cmp::Ordering;
use std::time::{Duration, Instant};

/// Uncontested sends that win an election.
pub const WIN_AFTER: u32 = 4;
/// Sends after which an election is lost.
pub const GIVE_UP_AFTER: u32 = 30;
/// Election version we send.
pub const ELECTION_VERSION: u8 = 1;

/// Our criteria word for `role`.
pub fn criteria(os_level: u8, preferred_master: bool, server_type: u32, role: Role) -> u32 {
    let mut r = 0u8;
    if preferred_master {
        r |= ElectionCriteria::ROLE_PREFERRED_MASTER;
    }
    if server_type & ServerType::DOMAIN_CTRL != 0 {
        r |= ElectionCriteria::ROLE_DOMAIN_CONTROLLER;
    }
    match role {
        Role::Master => r |= ElectionCriteria::ROLE_RUNNING_MASTER,
        Role::Backup => r |= ElectionCriteria::ROLE_RUNNING_BACKUP,
        Role::None | Role::Potential => {}
    }
    ElectionCriteria::new(os_level, ElectionCriteria::BROWSER_VERSION, r).0
}

/// One side of an election comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ballot<'a> {
    pub version: u8,
    pub criteria: u32,
    pub uptime_ms: u32,
    pub name: &'a str,
}

/// How `ours` fares against `theirs`: `Greater` = we win, `Equal` = the same ballot.
pub fn compare(ours: &Ballot<'_>, theirs: &Ballot<'_>) -> Ordering {
    ours.version
        .cmp(&theirs.version)
        .then(ours.criteria.cmp(&theirs.criteria))
        .then(ours.uptime_ms.cmp(&theirs.uptime_ms))
        .then_with(|| {
            // Lower name wins, so the comparison is reversed.
            let a = ours.name.to_ascii_uppercase();
            let b = theirs.name.to_ascii_uppercase();
            b.cmp(&a)
        })
}

/// Election Delay Timer value for `role`.
pub fn delay(role: Role, rng: &mut Rng) -> Duration {
    match role {
        Role::Master => Duration::from_millis(100),
        Role::Backup => rng.millis_between(200, 600),
        Role::None | Role::Potential => rng.millis_between(800, 3000),
    }
}

/// Where our election stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    #[default]
    Idle,
    /// Sending RequestElection; `sends` since the (re)start.
    Running { next: Instant, sends: u32 },
    /// Won; `<WG><1D>` and MSBROWSE registration requested.
    Claiming,
}

/// What the election timer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send a RequestElection and wait again.
    Send,
    /// Send one and claim the win.
    SendAndWin,
    /// Too many sends: lost.
    GiveUp,
}

/// The election state machine (times and counters only; the engine does the I/O).
#[derive(Debug, Clone, Default)]
pub struct Election {
    pub phase: Phase,
    /// Sends since the election started (survives restarts after a failed claim).
    pub total: u32,
}

impl Election {
    pub fn active(&self) -> bool {
        self.phase != Phase::Idle
    }

    pub fn next(&self) -> Option<Instant> {
        match self.phase {
            Phase::Running { next, .. } => Some(next),
            _ => None,
        }
    }

    /// Start (total reset) unless already running or claiming; true when started.
    pub fn start(&mut self, now: Instant, delay: Duration) -> bool {
        if self.active() {
            return false;
        }
        self.total = 0;
        self.phase = Phase::Running {
            next: now + delay,
            sends: 0,
        };
        true
    }

    /// Restart after a failed claim (the total keeps counting).
    pub fn restart(&mut self, now: Instant, delay: Duration) {
        self.phase = Phase::Running {
            next: now + delay,
            sends: 0,
        };
    }

    /// The timer fired; `delay` is the next wait if the election goes on.
    pub fn fire(&mut self, now: Instant, delay: Duration) -> Option<Step> {
        let Phase::Running { next, sends } = self.phase else {
            return None;
        };
        if next > now {
            return None;
        }
        self.total = self.total.saturating_add(1);
        let sends = sends + 1;
        if self.total > GIVE_UP_AFTER {
            self.phase = Phase::Idle;
            return Some(Step::GiveUp);
        }
        if sends >= WIN_AFTER {
            self.phase = Phase::Claiming;
            return Some(Step::SendAndWin);
        }
        self.phase = Phase::Running {
            next: now + delay,
            sends,
        };
        Some(Step::Send)
    }

    pub fn stop(&mut self) {
        self.phase = Phase::Idle;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(version: u8, criteria: u32, uptime_ms: u32, name: &str) -> Ballot<'_> {
        Ballot {
            version,
            criteria,
            uptime_ms,
            name,
        }
    }

    #[test]
    fn criteria_word() {
        assert_eq!(criteria(65, true, 0x1003, Role::Potential), 0x4101_0F08);
        assert_eq!(criteria(65, true, 0x100B, Role::Potential), 0x4101_0F0A);
        assert_eq!(criteria(20, false, 0x1003, Role::Master), 0x1401_0F04);
        assert_eq!(criteria(20, false, 0x1003, Role::Backup), 0x1401_0F01);
    }

    #[test]
    fn comparison_order() {
        use Ordering::*;
        assert_eq!(compare(&b(1, 5, 0, "A"), &b(0, 0, 0, "A")), Greater);
        assert_eq!(compare(&b(1, 5, 0, "A"), &b(1, 6, 0, "A")), Less);
        assert_eq!(
            compare(&b(1, 0x8000_0000, 0, "A"), &b(1, 0x7FFF_FFFF, 0, "A")),
            Greater
        );
        assert_eq!(compare(&b(1, 5, 10, "A"), &b(1, 5, 9, "A")), Greater);
        assert_eq!(
            compare(&b(1, 5, 10, "alpha"), &b(1, 5, 10, "BETA")),
            Greater
        );
        assert_eq!(compare(&b(1, 5, 10, "ZED"), &b(1, 5, 10, "beta")), Less);
        assert_eq!(compare(&b(1, 5, 10, "x"), &b(1, 5, 10, "X")), Equal);
    }

    #[test]
    fn machine() {
        let t0 = Instant::now();
        let d = Duration::from_millis(100);
        let mut e = Election::default();
        assert!(e.start(t0, d));
        assert!(!e.start(t0, d));
        assert_eq!(e.fire(t0, d), None);
        let mut t = t0;
        for _ in 0..3 {
            t += d;
            assert_eq!(e.fire(t, d), Some(Step::Send));
        }
        t += d;
        assert_eq!(e.fire(t, d), Some(Step::SendAndWin));
        assert_eq!(e.phase, Phase::Claiming);
        for _ in 0..6 {
            e.restart(t, d);
            for _ in 0..4 {
                t += d;
                e.fire(t, d);
            }
        }
        assert_eq!(e.total, 28);
        e.restart(t, d);
        t += d;
        assert_eq!(e.fire(t, d), Some(Step::Send));
        t += d;
        assert_eq!(e.fire(t, d), Some(Step::Send));
        t += d;
        assert_eq!(e.fire(t, d), Some(Step::GiveUp));
        assert!(!e.active());
    }
}
