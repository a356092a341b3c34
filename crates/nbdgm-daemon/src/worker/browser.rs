//! The worker's browser side (MS-BRWS §3.3 via `nbdgm-browser` and the runtime's
//! pairing): the browser's events to the log, the list fetches and syncs it asks for
//! (MS-BRWS §3.3.6, §3.4) on threads of their own, their results back to it.

use super::{Outlet, Worker};
use crate::browse::sync::{SyncDone, SyncedList};
use crate::browse::Fetched;
use nbdgm_browser::engine::MAX_SYNCS_RUNNING;
use nbdgm_browser::{BrowserEvent, SyncKind};
use nbdgm_runtime::engines::Aside;
use nbdgm_wire::text::Escaped;
use std::net::Ipv4Addr;
use std::time::Instant;
use tracing::{debug, info, warn};

impl<O: Outlet> Worker<O> {
    /// A fetch or sync a thread finished.
    pub(super) fn fetched(&mut self, f: Fetched) {
        match f {
            Fetched::Master(r) => self.master_list(r),
            Fetched::Sync(done) => self.synced(done),
        }
    }

    /// The master's list fetched for a backup browser (MS-BRWS §3.3.6), or why not.
    fn master_list(&mut self, r: crate::browse::MasterListResult) {
        let now = Instant::now();
        let Some(b) = &mut self.driver.engines.browser else {
            return;
        };
        match r {
            Ok((servers, groups)) => {
                info!(interface = %self.addr, servers = servers.len(),
                      workgroups = groups.len(), "fetched the master browser's list");
                b.master_list(now, servers, groups)
            }
            Err(e) => {
                warn!(interface = %self.addr, error = %Escaped(&e.to_string()), "cannot fetch the master browser's list");
                b.master_list_failed(now)
            }
        }
    }

    /// The browser's wishes to the node (the pairing); what it leaves aside is the
    /// daemon's: logs, counters, the master-list fetch.
    pub(super) fn pump_browser(&mut self) {
        let now = Instant::now();
        let mut aside = Vec::new();
        self.driver.engines.pump_browser(now, |a| aside.push(a));
        for a in aside {
            match a {
                Aside::Browser(ev) => self.browser_event(ev),
                Aside::SendFailed(e) => {
                    self.stats.browser_send_errors += 1;
                    if self.log_limiter.allow(now).is_some() {
                        debug!(interface = %self.addr, error = %e, "browser frame not sent");
                    }
                }
                Aside::RegisterFailed(name, e) => {
                    warn!(interface = %self.addr, %name, error = %e, "browser: cannot register")
                }
                Aside::ReleaseFailed(name, e) => {
                    debug!(interface = %self.addr, %name, error = %e, "browser: release")
                }
                Aside::FetchMasterList {
                    master,
                    address,
                    workgroup,
                } => self.fetch_master_list(now, master, address, workgroup),
                Aside::SyncList {
                    kind,
                    peer,
                    address,
                    workgroup,
                } => self.sync_list(now, kind, peer, address, workgroup),
                a @ (Aside::FindDomainMaster { .. } | Aside::DomainMaster(_)) => {
                    self.domain_master_aside(a)
                }
            }
        }
    }

    /// Fetch the master's list on a thread of its own; the result comes back on
    /// `sync_rx`.
    fn fetch_master_list(
        &mut self,
        now: Instant,
        master: String,
        address: Ipv4Addr,
        workgroup: String,
    ) {
        let tx = self.sync_tx.clone();
        let me = self.driver.engines.node.config().interface.addr;
        let spawned = std::thread::Builder::new()
            .name("nbdgm rap".into())
            .spawn(move || {
                let r = crate::browse::fetch_master_list(me, address, &master, &workgroup);
                let _ = tx.blocking_send(Fetched::Master(r));
            });
        if spawned.is_err() {
            if let Some(b) = &mut self.driver.engines.browser {
                b.master_list_failed(now);
            }
        }
    }

    fn browser_event(&mut self, ev: BrowserEvent) {
        let a = self.addr;
        match ev {
            BrowserEvent::RoleChanged { from, to } => {
                info!(interface = %a, from = from.as_str(), to = to.as_str(), "browser role changed")
            }
            BrowserEvent::ElectionStarted => info!(interface = %a, "browser election started"),
            BrowserEvent::ElectionWon => {
                info!(interface = %a, "won the browser election: local master browser")
            }
            BrowserEvent::ElectionLost { winner } => {
                info!(interface = %a, winner = %Escaped(&winner), "lost the browser election")
            }
            BrowserEvent::MasterSeen { name, from } => {
                info!(interface = %a, master = %Escaped(&name), %from, "local master browser seen")
            }
            BrowserEvent::BackupPromoted { candidate } => {
                info!(interface = %a, candidate = %Escaped(&candidate), "asked a backup browser to start")
            }
            BrowserEvent::Refused { what, from } => {
                if self.log_limiter.allow(Instant::now()).is_some() {
                    warn!(interface = %a, %from, what = what.as_str(), "browser frame refused");
                }
            }
            BrowserEvent::ResetState { flags, from } => {
                warn!(interface = %a, %from, flags, "browser reset by ResetStateRequest")
            }
        }
    }

    /// Pull `peer`'s list on a thread of its own (at most [`MAX_SYNCS_RUNNING`] at
    /// once; the engine keeps to that too); the result comes back on `sync_rx`.
    fn sync_list(
        &mut self,
        now: Instant,
        kind: SyncKind,
        peer: String,
        address: Ipv4Addr,
        workgroup: String,
    ) {
        let refuse = |w: &mut Self, why: &str| {
            warn!(interface = %w.addr, peer = %Escaped(&peer), %address, kind = kind.as_str(),
                  reason = why, "browse list sync not started");
            if let Some(b) = &mut w.driver.engines.browser {
                b.list_sync_failed(now, kind, &peer);
            }
        };
        if self.syncs_running >= MAX_SYNCS_RUNNING {
            return refuse(self, "too many syncs running");
        }
        let tx = self.sync_tx.clone();
        let me = self.addr;
        let port = self.sync_http_port;
        let p = peer.clone();
        let spawned = std::thread::Builder::new()
            .name("nbdgm sync".into())
            .spawn(move || {
                let result =
                    crate::browse::sync::sync_list(me, address, &p, &workgroup, kind, port);
                let _ = tx.blocking_send(Fetched::Sync(SyncDone {
                    kind,
                    peer: p,
                    result,
                }));
            });
        match spawned {
            Ok(_) => self.syncs_running += 1,
            Err(_) => refuse(self, "no thread"),
        }
    }

    /// A sync's result to the browser, and to the log.
    fn synced(&mut self, done: SyncDone) {
        self.syncs_running = self.syncs_running.saturating_sub(1);
        let now = Instant::now();
        let (a, kind, peer) = (self.addr, done.kind.as_str(), Escaped(&done.peer));
        let Some(b) = &mut self.driver.engines.browser else {
            return;
        };
        match done.result {
            Ok(SyncedList {
                servers,
                workgroups,
                via,
            }) => {
                info!(interface = %a, %peer, kind, via, servers = servers.len(),
                      workgroups = workgroups.len(), "browse list synced");
                b.list_synced(now, done.kind, &done.peer, servers, workgroups);
            }
            Err(e) => {
                warn!(interface = %a, %peer, kind, error = %Escaped(&e), "browse list sync failed");
                b.list_sync_failed(now, done.kind, &done.peer);
            }
        }
    }

    /// The domain master search (run by the pairing), to the log.
    pub(super) fn domain_master_aside(&mut self, a: Aside) {
        let i = self.addr;
        match a {
            Aside::FindDomainMaster { workgroup } => {
                debug!(interface = %i, workgroup = %Escaped(&workgroup), "looking for the domain master browser")
            }
            Aside::DomainMaster(Ok((name, address))) => {
                info!(interface = %i, dmb = %Escaped(&name), %address, "domain master browser found");
                // As local master browser the engine announces itself to it at once.
                let b = self.driver.engines.browser.as_ref();
                if b.is_some_and(|b| b.role() == nbdgm_browser::Role::Master) {
                    info!(interface = %i, dmb = %Escaped(&name), %address,
                          "MasterAnnouncement sent to the domain master browser");
                }
            }
            Aside::DomainMaster(Err(e)) => {
                info!(interface = %i, reason = ?e, "no domain master browser")
            }
            _ => {}
        }
    }
}
