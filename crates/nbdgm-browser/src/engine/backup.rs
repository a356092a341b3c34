//! The backup browser and the master's list of backups (MS-BRWS §3.3.5.1–§3.3.5.3,
//! §3.3.6): fetching the master's list ([`Action::FetchMasterList`]) at most once per
//! [`MASTER_SYNC_MS`], GetBackupListRequest answers with confirmed backups only, promotion
//! by BecomeBackup, and obeying BecomeBackup only from the local master we know.

use super::{
    dest_is, valid_name, Action, Browser, BrowserEvent, Inbound, Listed, Refusal, Role, Target,
    MASTER_SYNC_MS, MASTER_SYNC_RETRY,
};
use crate::list::{Heard, Upsert};
use nbdgm_wire::browser as wire;
use nbdgm_wire::browser::{
    BecomeBackup, BrowserFrame, GetBackupListResponse, ServerType, MAX_NAME_LEN,
};
use nbdgm_wire::Name;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

impl Browser {
    /// The master's list, fetched after [`Action::FetchMasterList`]: servers of our
    /// workgroup and (from a DOMAIN_ENUM request) workgroups with their masters. Entries
    /// we heard ourselves are kept as heard (they carry addresses; the master's list has
    /// none: these show 0.0.0.0). They expire like an announcement every 12 minutes.
    pub fn master_list(&mut self, now: Instant, servers: Vec<Listed>, workgroups: Vec<Listed>) {
        self.sync_pending = false;
        if self.shut_down {
            return;
        }
        let master = self
            .master
            .as_ref()
            .map_or_else(String::new, |m| m.0.clone());
        self.stats.master_syncs += 1;
        let wg = self.cfg.workgroup.clone();
        for l in servers.into_iter().filter(|l| valid_name(&l.name)) {
            if l.name.eq_ignore_ascii_case(&self.cfg.name) || self.table.has_server(&wg, &l.name) {
                continue;
            }
            let h = Heard {
                name: l.name.to_ascii_uppercase(),
                group: wg.clone(),
                server_type: l.server_type & !ServerType::LOCAL_LIST_ONLY,
                os_major: l.os_major,
                os_minor: l.os_minor,
                periodicity_ms: MASTER_SYNC_MS,
                comment: l.comment.chars().take(wire::MAX_COMMENT_LEN).collect(),
                address: Ipv4Addr::UNSPECIFIED,
                lanman: false,
                synced_from: Some(master.clone()),
                remote: false,
            };
            match self.table.upsert_server(now, h, self.cfg.max_servers) {
                Upsert::Full => {
                    self.stats.refused_server_list_full += 1;
                    break;
                }
                _ => self.stats.master_list_entries += 1,
            }
        }
        for l in workgroups.into_iter().filter(|l| valid_name(&l.name)) {
            if self.table.has_group(&l.name) {
                continue;
            }
            let h = Heard {
                name: l.name.to_ascii_uppercase(),
                // NetServerEnum2 level 1 of a workgroup: the comment is its master.
                group: l.comment.chars().take(MAX_NAME_LEN).collect(),
                server_type: l.server_type,
                os_major: l.os_major,
                os_minor: l.os_minor,
                periodicity_ms: MASTER_SYNC_MS,
                comment: String::new(),
                address: Ipv4Addr::UNSPECIFIED,
                lanman: false,
                synced_from: Some(master.clone()),
                remote: false,
            };
            if let Upsert::Full = self.table.upsert_group(now, h, self.cfg.max_workgroups) {
                self.stats.refused_workgroup_list_full += 1;
                break;
            }
            self.stats.master_list_entries += 1;
        }
        self.update_gauges();
    }

    /// The fetch of the master's list failed (counted; retried at the next interval).
    pub fn master_list_failed(&mut self, _now: Instant) {
        self.sync_pending = false;
        self.stats.master_sync_failures += 1;
    }

    pub(super) fn sync_timer(&mut self, now: Instant) {
        if self.role != Role::Backup || self.shut_down {
            self.sync_next = None;
            return;
        }
        let period = Duration::from_millis(u64::from(MASTER_SYNC_MS));
        if let Some(last) = self
            .last_fetch
            .filter(|t| now.saturating_duration_since(*t) < period)
        {
            // One fetch per period, whatever asked for this one.
            self.stats.master_syncs_deferred += 1;
            self.sync_next = Some(last + period);
            return;
        }
        match (&self.master, self.sync_pending) {
            (Some((name, address, _)), false) => {
                self.actions.push_back(Action::FetchMasterList {
                    master: name.clone(),
                    address: *address,
                    workgroup: self.cfg.workgroup.clone(),
                });
                self.sync_pending = true;
                self.last_fetch = Some(now);
                self.sync_next = Some(now + period);
            }
            // No master known yet (or a fetch still running): look again soon.
            _ => self.sync_next = Some(now + MASTER_SYNC_RETRY),
        }
    }

    /// Confirmed backups only (promoted by us or heard repeatedly).
    pub(super) fn known_backups(&self, now: Instant) -> Vec<String> {
        self.table.confirmed_backups(&self.cfg.workgroup, now)
    }

    pub(super) fn on_backup_list_request(
        &mut self,
        now: Instant,
        ib: &Inbound<'_>,
        count: u8,
        token: u32,
    ) {
        if !dest_is(ib.destination, &self.cfg.workgroup, 0x1D)
            || self.role != Role::Master
            || ib.source.raw() == self.me.raw()
        {
            self.stats.frames_ignored += 1;
            return;
        }
        let mut servers = vec![self.cfg.name.clone()];
        servers.extend(self.known_backups(now));
        servers.truncate(usize::from(count.max(1)));
        let f = BrowserFrame::GetBackupListResponse(GetBackupListResponse {
            count: servers.len() as u8,
            token,
            servers,
            trailing: Vec::new(),
        });
        let mut raw = *ib.source.raw();
        raw[15] = 0x00;
        self.reply_browse(ib, Name::from_raw(raw), &f);
        self.stats.backup_list_requests_answered += 1;
    }

    /// Promote potential browsers until there is one backup per 32 servers (at least
    /// one from 2 servers, at most 3; DIGEST §6.5).
    pub(super) fn check_backups(&mut self, now: Instant) {
        if self.role != Role::Master {
            return;
        }
        let mut n = 1usize; // us
        let mut have = 0usize;
        let mut candidates = Vec::new();
        for h in self.table.servers_in(&self.cfg.workgroup, now) {
            n += 1;
            let t = h.server_type;
            let key = h.name.to_ascii_uppercase();
            if t & ServerType::BACKUP_BROWSER != 0 || self.promoted.contains_key(&key) {
                have += 1;
            } else if t & ServerType::POTENTIAL_BROWSER != 0 && t & ServerType::MASTER_BROWSER == 0
            {
                candidates.push(h.name.clone());
            }
        }
        let wanted = if n < 2 { 0 } else { (n / 32 + 1).min(3) };
        candidates.sort();
        for c in candidates.into_iter().take(wanted.saturating_sub(have)) {
            let f = BrowserFrame::BecomeBackup(BecomeBackup {
                browser_to_promote: c.clone(),
                trailing: Vec::new(),
            });
            self.send_browse(self.wg_name(0x1E), Target::Broadcast, &f);
            self.promoted.insert(c.to_ascii_uppercase(), now);
            self.stats.backups_promoted += 1;
            self.event(BrowserEvent::BackupPromoted { candidate: c });
        }
    }

    pub(super) fn on_become_backup(&mut self, now: Instant, ib: &Inbound<'_>, b: &BecomeBackup) {
        if !b.browser_to_promote.eq_ignore_ascii_case(&self.cfg.name)
            || ib.source.raw() == self.me.raw()
        {
            return;
        }
        if !self.is_browser() || self.role != Role::Potential {
            return;
        }
        // Only the master we know (name and address of its LocalMasterAnnouncement) may
        // make us a backup, which connects to it.
        let from_master = self.master.as_ref().is_some_and(|(name, addr, expires)| {
            *expires > now && *addr == *ib.from.ip() && ib.source.name().eq_ignore_ascii_case(name)
        });
        if !from_master {
            return self.refuse(Refusal::BecomeBackup, ib.from);
        }
        self.set_role(now, Role::Backup);
    }
}
