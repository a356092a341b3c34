//! Browsing across subnets (MS-BRWS §3.3.6 "the local master browser ... with the domain
//! master browser", §3.4 domain master browser; Samba `nmbd_browsesync.c`,
//! `nmbd_become_dmb.c`, `nmbd_incomingdgrams.c`, `nmbd_browserdb.c`):
//!
//! * As local master browser (`dmb_sync`, not the domain master browser ourselves):
//!   [`DMB_SYNC_FIRST`] after winning, then every `dmb_sync_interval` (Samba: 15 min,
//!   `CHECK_TIME_MST_ANNOUNCE`), find the domain master browser
//!   ([`Action::FindDomainMaster`], one at a time); when found, send it a
//!   MasterAnnouncement (DIRECT_UNIQUE from `<us><00>` to `<DMB><00>`, unicast to its
//!   address, not a reply) and pull its list ([`SyncKind::FromDomainMaster`]). Stops when
//!   we lose the master role.
//! * As domain master browser (`domain_master`): register `<WG><1B>` (unique) once our
//!   `<name><00>` is up; once it is ours, announce the DOMAIN_MASTER server type bit and
//!   accept MasterAnnouncements (to our `<name><00>` or `<WG><1B>`) into a table of
//!   local master browsers capped at `max_local_masters` (Samba's LMB cache): a new one
//!   is synced [`LMB_SYNC_FIRST`] later, then every `dmb_sync_interval`; each
//!   MasterAnnouncement keeps it [`LMB_LIFETIME`] (Samba: 17 min). The table is checked at
//!   most every [`LMB_CHECK_EVERY`] (Samba: 20 s); at most [`MAX_SYNCS_RUNNING`] syncs run
//!   at once. A refused `<1B>` is asked again after `dmb_sync_interval`.
//! * Syncs that never come back are given up after [`SYNC_LOST_AFTER`] so their slot
//!   frees; a late answer is then ignored (`list_syncs_unexpected`). Merging the lists is
//!   in [`super::sync`].

use super::{dest_is, valid_name, Action, Browser, Inbound, Refusal, Role, Target};
use nbdgm_wire::browser::{BrowserFrame, MasterAnnouncement};
use nbdgm_wire::Name;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Which list an [`super::Action::SyncList`] pulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncKind {
    /// As local master browser, from the domain master browser: the servers of our
    /// workgroup (NetServerEnum2 `SV_TYPE_ALL`) and every workgroup (`SV_TYPE_DOMAIN_ENUM`),
    /// as Samba's `sync_with_dmb` asks.
    FromDomainMaster,
    /// As domain master browser, from a local master browser: only what it heard on its
    /// own subnet (`SV_TYPE_LOCAL_LIST_ONLY`, with and without `SV_TYPE_DOMAIN_ENUM`), as
    /// Samba's `sync_with_lmb` asks.
    FromLocalMaster,
}

impl SyncKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::FromDomainMaster => "from_domain_master",
            SyncKind::FromLocalMaster => "from_local_master",
        }
    }
}

/// A domain master browser syncs with a new local master browser this long after its
/// first MasterAnnouncement (Samba: one minute, time for it to build its list).
pub const LMB_SYNC_FIRST: Duration = Duration::from_secs(60);
/// A local master browser looks for its domain master browser this long after winning.
pub const DMB_SYNC_FIRST: Duration = Duration::from_secs(1);
/// List syncs running at once (each is a TCP session off the engine thread).
pub const MAX_SYNCS_RUNNING: usize = 4;
/// A local master browser is forgotten this long after its last MasterAnnouncement
/// (Samba: `CHECK_TIME_MST_ANNOUNCE` + 2 minutes = 17 min).
pub const LMB_LIFETIME: Duration = Duration::from_secs(17 * 60);
/// The table of local master browsers is checked at most this often (Samba: 20 s).
pub const LMB_CHECK_EVERY: Duration = Duration::from_secs(20);
/// A FindDomainMaster or SyncList not answered after this long is given up.
pub const SYNC_LOST_AFTER: Duration = Duration::from_secs(10 * 60);

/// One local master browser known to us as domain master browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMaster {
    pub name: String,
    pub workgroup: String,
    pub address: Ipv4Addr,
    /// Seconds since its last MasterAnnouncement.
    pub age_s: u64,
    /// Seconds until it is forgotten without another MasterAnnouncement.
    pub expires_in_s: u64,
    /// Successful syncs of its list, and entries the last one gave.
    pub syncs: u64,
    pub last_entries: u64,
}

#[derive(Debug, Clone)]
pub(super) struct LmbRec {
    pub name: String,
    pub workgroup: String,
    pub address: Ipv4Addr,
    pub last_seen: Instant,
    pub death: Instant,
    pub next_sync: Instant,
    pub syncs: u64,
    pub last_entries: u64,
}

/// A SyncList asked for and not answered yet.
#[derive(Debug, Clone)]
pub(super) struct Running {
    pub kind: SyncKind,
    /// Upper case.
    pub peer: String,
    pub since: Instant,
}

/// The engine's domain-browsing state.
#[derive(Debug, Default)]
pub(super) struct DmbState {
    /// LMB side: next FindDomainMaster, the one running (since when), the last found.
    pub find_next: Option<Instant>,
    pub find_pending: Option<Instant>,
    pub found: Option<(String, Ipv4Addr)>,
    /// DMB side: `<WG><1B>` asked for / registered; retry of a refused registration.
    pub holds_1b: bool,
    pub is_dmb: bool,
    pub register_next: Option<Instant>,
    /// Upper-case name → record; at most `max_local_masters`.
    pub lmbs: HashMap<String, LmbRec>,
    pub check_next: Option<Instant>,
    /// At most one FromDomainMaster and [`MAX_SYNCS_RUNNING`] FromLocalMaster.
    pub running: Vec<Running>,
}

impl DmbState {
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.find_next, self.register_next, self.check_next]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn running(&self, kind: SyncKind) -> usize {
        self.running.iter().filter(|r| r.kind == kind).count()
    }
}

impl Browser {
    /// The domain master browser of our workgroup is `name` at `address` (after
    /// [`super::Action::FindDomainMaster`]).
    pub fn domain_master_found(&mut self, now: Instant, name: &str, address: Ipv4Addr) {
        if self.shut_down {
            return;
        }
        if self.dmb.find_pending.take().is_none() {
            self.stats.dmb_answers_unexpected += 1;
            return;
        }
        let Some(dmb) = Name::new(name, 0x00)
            .ok()
            .filter(|_| valid_name(name))
            .map(|n| n.name().to_ascii_uppercase())
        else {
            self.stats.dmb_names_invalid += 1;
            self.stats.dmb_lookup_failures += 1;
            self.dmb.found = None;
            return;
        };
        if dmb.eq_ignore_ascii_case(&self.cfg.name) {
            self.stats.dmb_lookup_failures += 1;
            return;
        }
        self.stats.dmb_found += 1;
        self.dmb.found = Some((dmb.clone(), address));
        if self.role != Role::Master {
            return;
        }
        // Samba's announce_and_sync_with_domain_master_browser: MasterAnnouncement first.
        let f = BrowserFrame::MasterAnnouncement(MasterAnnouncement {
            master_name: self.cfg.name.to_ascii_uppercase(),
            trailing: Vec::new(),
        });
        if let Ok(to) = Name::new(&dmb, 0x00) {
            let at = SocketAddrV4::new(address, self.cfg.datagram_port);
            self.send_browse(to, Target::Unique(at), &f);
            self.stats.master_announcements_sent += 1;
        }
        self.start_sync(now, SyncKind::FromDomainMaster, dmb, address);
    }

    /// Finding the domain master browser failed (no `<1B>`, no node status, no unique
    /// `<20>` in it, or it is us). Counted; tried again at the next interval.
    pub fn domain_master_failed(&mut self, _now: Instant) {
        if self.dmb.find_pending.take().is_none() {
            self.stats.dmb_answers_unexpected += 1;
            return;
        }
        self.stats.dmb_lookup_failures += 1;
        self.dmb.found = None;
    }

    /// As domain master browser: the local master browsers we know (sorted by name).
    pub fn local_masters(&self, now: Instant) -> Vec<LocalMaster> {
        let mut v: Vec<LocalMaster> = self
            .dmb
            .lmbs
            .values()
            .filter(|r| r.death > now)
            .map(|r| LocalMaster {
                name: r.name.clone(),
                workgroup: r.workgroup.clone(),
                address: r.address,
                age_s: now.saturating_duration_since(r.last_seen).as_secs(),
                expires_in_s: r.death.saturating_duration_since(now).as_secs(),
                syncs: r.syncs,
                last_entries: r.last_entries,
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The domain master browser we sync with (name, address), when known; our own name
    /// with 0.0.0.0 while we are it.
    pub fn domain_master(&self) -> Option<(String, Ipv4Addr)> {
        if self.dmb.is_dmb {
            Some((self.cfg.name.clone(), Ipv4Addr::UNSPECIFIED))
        } else {
            self.dmb.found.clone()
        }
    }

    /// We hold `<WG><1B>`: we are the domain master browser.
    pub fn is_domain_master(&self) -> bool {
        self.dmb.is_dmb
    }

    /// Push a SyncList unless one of that kind is running for `peer` or the limit is
    /// reached (counted as deferred). `peer` is upper case.
    pub(super) fn start_sync(
        &mut self,
        now: Instant,
        kind: SyncKind,
        peer: String,
        address: Ipv4Addr,
    ) -> bool {
        self.reap_syncs(now);
        let limit = match kind {
            SyncKind::FromDomainMaster => 1,
            SyncKind::FromLocalMaster => MAX_SYNCS_RUNNING,
        };
        let busy = self.dmb.running(kind) >= limit
            || self
                .dmb
                .running
                .iter()
                .any(|r| r.kind == kind && r.peer == peer);
        if busy {
            self.stats.list_syncs_deferred += 1;
            return false;
        }
        self.dmb.running.push(Running {
            kind,
            peer: peer.clone(),
            since: now,
        });
        self.stats.list_syncs_requested += 1;
        let workgroup = match kind {
            SyncKind::FromDomainMaster => self.cfg.workgroup.clone(),
            SyncKind::FromLocalMaster => self
                .dmb
                .lmbs
                .get(&peer)
                .map_or_else(|| self.cfg.workgroup.clone(), |r| r.workgroup.clone()),
        };
        self.actions.push_back(Action::SyncList {
            kind,
            peer,
            address,
            workgroup,
        });
        true
    }

    /// Give up syncs and the lookup that have run longer than [`SYNC_LOST_AFTER`].
    fn reap_syncs(&mut self, now: Instant) {
        let before = self.dmb.running.len();
        self.dmb
            .running
            .retain(|r| now.saturating_duration_since(r.since) < SYNC_LOST_AFTER);
        self.stats.list_syncs_lost += (before - self.dmb.running.len()) as u64;
        if self
            .dmb
            .find_pending
            .is_some_and(|t| now.saturating_duration_since(t) >= SYNC_LOST_AFTER)
        {
            self.dmb.find_pending = None;
            self.stats.dmb_lookup_failures += 1;
        }
    }

    /// Every due domain-browsing timer.
    pub(super) fn domain_timers(&mut self, now: Instant) {
        if self.dmb.register_next.is_some_and(|t| t <= now) {
            self.dmb.register_next = None;
            self.register_1b();
        }
        if self.dmb.find_next.is_some_and(|t| t <= now) {
            self.find_timer(now);
        }
        if self.dmb.check_next.is_some_and(|t| t <= now) {
            self.lmb_timer(now);
        }
    }

    /// LMB side: look for the domain master browser (one lookup at a time).
    fn find_timer(&mut self, now: Instant) {
        self.dmb.find_next = None;
        if self.role != Role::Master || !self.cfg.dmb_sync || self.shut_down {
            return;
        }
        self.dmb.find_next = Some(now + self.cfg.dmb_sync_interval);
        if self.dmb.is_dmb {
            return;
        }
        self.reap_syncs(now);
        if self.dmb.find_pending.is_some() {
            self.stats.dmb_lookups_deferred += 1;
            return;
        }
        self.dmb.find_pending = Some(now);
        self.stats.dmb_lookups += 1;
        self.actions.push_back(Action::FindDomainMaster {
            workgroup: self.cfg.workgroup.clone(),
        });
    }

    /// We became (`true`) or stopped being the local master browser.
    pub(super) fn dmb_master_changed(&mut self, now: Instant, master: bool) {
        self.dmb.find_pending = None;
        self.dmb.find_next = (master && self.cfg.dmb_sync).then_some(now + DMB_SYNC_FIRST);
    }

    /// DMB side: ask for `<WG><1B>` when configured, started and our name is up.
    pub(super) fn register_1b(&mut self) {
        if !self.cfg.domain_master
            || !self.started
            || !self.name_ok
            || self.shut_down
            || self.dmb.holds_1b
        {
            return;
        }
        self.dmb.holds_1b = true;
        self.dmb.register_next = None;
        self.stats.dmb_registrations += 1;
        let name = self.wg_name(0x1B);
        self.actions
            .push_back(Action::Register { name, group: false });
    }

    /// Release `<WG><1B>` (configuration off, new workgroup, shutdown) and forget the
    /// local master browsers.
    pub(super) fn release_1b(&mut self, now: Instant) {
        if self.dmb.holds_1b {
            let n = self.wg_name(0x1B);
            self.release(n);
        }
        let was = self.dmb.is_dmb;
        self.dmb.holds_1b = false;
        self.dmb.is_dmb = false;
        self.dmb.register_next = None;
        self.dmb.lmbs.clear();
        self.dmb.check_next = None;
        // Lists still being pulled from local masters are not taken any more.
        self.dmb
            .running
            .retain(|r| r.kind != SyncKind::FromLocalMaster);
        if was {
            self.changed(now);
        }
    }

    /// `<WG><1B>` is ours: we are the domain master browser.
    pub(super) fn dmb_registered(&mut self, now: Instant) {
        if !self.dmb.holds_1b || self.dmb.is_dmb {
            return;
        }
        self.dmb.is_dmb = true;
        self.changed(now);
    }

    /// `<WG><1B>` refused (another domain master browser): try again after an interval.
    pub(super) fn dmb_refused(&mut self, now: Instant) {
        if !self.dmb.holds_1b {
            return;
        }
        self.stats.dmb_registration_failures += 1;
        // Not ours: nothing to release.
        self.dmb.holds_1b = false;
        self.release_1b(now);
        self.dmb.register_next = Some(now + self.cfg.dmb_sync_interval);
    }

    /// A MasterAnnouncement (MS-BRWS §2.2.8): a local master browser tells us, the
    /// domain master browser, that it exists (Samba `process_master_browser_announce`).
    pub(super) fn on_master_announcement(
        &mut self,
        now: Instant,
        ib: &Inbound<'_>,
        m: &MasterAnnouncement,
    ) {
        self.stats.master_announcements_received += 1;
        let d = ib.destination;
        let to_us = dest_is(d, &self.cfg.name, 0x00) || dest_is(d, &self.cfg.workgroup, 0x1B);
        if !to_us
            || ib.source.raw() == self.me.raw()
            || m.master_name.eq_ignore_ascii_case(&self.cfg.name)
        {
            self.stats.frames_ignored += 1;
            return;
        }
        if !valid_name(&m.master_name) || Name::new(&m.master_name, 0x20).is_err() {
            return self.refuse(Refusal::Malformed, ib.from);
        }
        if !self.dmb.is_dmb {
            self.stats.master_announcements_ignored += 1;
            return;
        }
        let key = m.master_name.to_ascii_uppercase();
        let address = *ib.from.ip();
        if let Some(r) = self.dmb.lmbs.get_mut(&key) {
            r.death = now + LMB_LIFETIME;
            r.last_seen = now;
            r.address = address;
            return;
        }
        if self.dmb.lmbs.len() >= self.cfg.max_local_masters {
            return self.refuse(Refusal::LocalMasterListFull, ib.from);
        }
        let next_sync = now + LMB_SYNC_FIRST;
        self.dmb.lmbs.insert(
            key.clone(),
            LmbRec {
                name: key,
                workgroup: self.cfg.workgroup.clone(),
                address,
                last_seen: now,
                death: now + LMB_LIFETIME,
                next_sync,
                syncs: 0,
                last_entries: 0,
            },
        );
        self.stats.local_masters_added += 1;
        self.dmb.check_next = Some(self.dmb.check_next.map_or(next_sync, |t| t.min(next_sync)));
    }

    /// DMB side: forget dead local master browsers, start the syncs that are due.
    fn lmb_timer(&mut self, now: Instant) {
        let before = self.dmb.lmbs.len();
        self.dmb.lmbs.retain(|_, r| r.death > now);
        self.stats.local_masters_expired += (before - self.dmb.lmbs.len()) as u64;
        if !self.dmb.is_dmb || self.dmb.lmbs.is_empty() {
            self.dmb.check_next = None;
            return;
        }
        let mut due: Vec<(Instant, String)> = self
            .dmb
            .lmbs
            .iter()
            .filter(|(_, r)| r.next_sync <= now)
            .map(|(k, r)| (r.next_sync, k.clone()))
            .collect();
        due.sort();
        for (_, key) in due {
            let Some(address) = self.dmb.lmbs.get(&key).map(|r| r.address) else {
                continue;
            };
            if self.start_sync(now, SyncKind::FromLocalMaster, key.clone(), address) {
                if let Some(r) = self.dmb.lmbs.get_mut(&key) {
                    r.next_sync = now + self.cfg.dmb_sync_interval;
                }
            }
        }
        let earliest = self
            .dmb
            .lmbs
            .values()
            .map(|r| r.next_sync.min(r.death))
            .min();
        self.dmb.check_next = earliest.map(|t| t.max(now + LMB_CHECK_EVERY));
    }
}
