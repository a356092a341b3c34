//! Elections (MS-BRWS §3.3.5.8–§3.3.5.9, DIGEST §6.4): starting one (rate limited),
//! the election timer, winning (becoming local master) and answering RequestElection.

use super::{
    dest_is, Action, Browser, BrowserEvent, Inbound, Refusal, Role, Target, ELECTION_WINDOW,
};
use crate::election::{self, Ballot, Step};
use nbdgm_wire::browser::{AnnouncementRequest, BrowserFrame, RequestElection};
use nbdgm_wire::Name;
use std::cmp::Ordering;
use std::time::Instant;

impl Browser {
    pub(super) fn lost(&mut self, winner: String) {
        self.stats.elections_lost += 1;
        self.event(BrowserEvent::ElectionLost { winner });
    }

    /// Start an election unless one runs or the start rate limit says no (a burst of
    /// `election_start_burst`, then one per `election_start_interval`).
    pub(super) fn start_election(&mut self, now: Instant) {
        if self.election.active() {
            return;
        }
        let burst = self.cfg.election_start_burst;
        let every = self.cfg.election_start_interval;
        let (tokens, since) = &mut self.election_tokens;
        if *tokens >= burst {
            *since = now;
        } else {
            let n = now.saturating_duration_since(*since).as_nanos() / every.as_nanos().max(1);
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            if n > 0 {
                *tokens = tokens.saturating_add(n).min(burst);
                *since = if *tokens >= burst {
                    now
                } else {
                    *since + every * n
                };
            }
        }
        if *tokens == 0 {
            // Not forgotten: one election is held when the next start is allowed (a
            // master that gave up on a conflict must not stay without one).
            self.election_retry = Some(*since + every);
            self.stats.elections_suppressed += 1;
            return;
        }
        let d = election::delay(self.role, &mut self.rng);
        if self.election.start(now, d) {
            self.election_tokens.0 -= 1;
            self.election_retry = None;
            self.stats.elections_started += 1;
            self.event(BrowserEvent::ElectionStarted);
        }
    }

    pub(super) fn election_timer(&mut self, now: Instant) {
        let d = election::delay(self.role, &mut self.rng);
        let Some(step) = self.election.fire(now, d) else {
            return;
        };
        if step == Step::GiveUp {
            if self.role == Role::Master {
                self.drop_roles(now, self.demoted_role());
            }
            self.lost(String::new());
            return;
        }
        let f = BrowserFrame::RequestElection(RequestElection {
            election_version: election::ELECTION_VERSION,
            criteria: self.our_criteria(),
            uptime_ms: self.uptime_ms(now),
            server_name: self.cfg.name.clone(),
            ..RequestElection::default()
        });
        self.send_browse(self.wg_name(0x1E), Target::Broadcast, &f);
        self.stats.elections_sent += 1;
        if step == Step::SendAndWin {
            if self.role == Role::Master {
                // Re-won while master: announce afresh.
                self.election.stop();
                self.stats.elections_won += 1;
                self.event(BrowserEvent::ElectionWon);
                self.start_master_timers(now);
            } else {
                let n = self.wg_name(0x1D);
                self.actions.push_back(Action::Register {
                    name: n,
                    group: false,
                });
                self.actions.push_back(Action::Register {
                    name: Name::msbrowse(),
                    group: true,
                });
            }
        }
    }

    pub(super) fn become_master(&mut self, now: Instant) {
        self.election.stop();
        self.master = None;
        self.set_role(now, Role::Master);
        self.stats.elections_won += 1;
        self.event(BrowserEvent::ElectionWon);
        let f = BrowserFrame::AnnouncementRequest(AnnouncementRequest {
            reserved: 0,
            response_name: self.cfg.name.clone(),
            trailing: Vec::new(),
        });
        self.send_browse(self.wg_name(0x1E), Target::Broadcast, &f);
        self.start_master_timers(now);
    }

    /// LMA and DomainAnnouncement now, then on their schedules; backups checked.
    pub(super) fn start_master_timers(&mut self, now: Instant) {
        self.lma.restart(now);
        self.dom.restart(now);
        self.lma_timer(now);
        self.domain_timer(now);
        self.check_backups(now);
    }

    pub(super) fn on_request_election(
        &mut self,
        now: Instant,
        ib: &Inbound<'_>,
        e: &RequestElection,
    ) {
        if !dest_is(ib.destination, &self.cfg.workgroup, 0x1E)
            || e.server_name.eq_ignore_ascii_case(&self.cfg.name)
            || ib.source.raw() == self.me.raw()
        {
            self.stats.frames_ignored += 1;
            return;
        }
        if now.saturating_duration_since(self.election_window.0) >= ELECTION_WINDOW {
            self.election_window = (now, 0);
        }
        if self.election_window.1 >= self.cfg.elections_per_minute {
            self.refuse(Refusal::ElectionRate, ib.from);
            return;
        }
        self.election_window.1 += 1;
        self.stats.elections_received += 1;
        if !self.is_browser() {
            return;
        }
        let criteria = self.our_criteria();
        let ours = Ballot {
            version: election::ELECTION_VERSION,
            criteria,
            uptime_ms: self.uptime_ms(now),
            name: &self.cfg.name,
        };
        let theirs = Ballot {
            version: e.election_version,
            criteria: e.criteria,
            uptime_ms: e.uptime_ms,
            name: &e.server_name,
        };
        match election::compare(&ours, &theirs) {
            Ordering::Greater => self.start_election(now),
            Ordering::Less => {
                let was = self.election.active() || self.role == Role::Master;
                if self.role == Role::Master {
                    self.drop_roles(now, self.demoted_role());
                } else {
                    self.drop_roles(now, self.role);
                }
                if was {
                    self.lost(e.server_name.clone());
                }
            }
            Ordering::Equal => {}
        }
    }
}
