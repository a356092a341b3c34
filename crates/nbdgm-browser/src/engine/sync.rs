//! Merging the lists pulled by [`super::Action::SyncList`] (MS-BRWS §3.3.6, §3.4.4;
//! Samba `nmbd_synclists.c`, `nmbd_browsesync.c`):
//!
//! * Servers go under our workgroup, workgroups under their master (the level-1
//!   comment), as [`Browser::master_list`] takes a master's list. Names are checked
//!   (1–15 characters) and upper-cased, comments cut to 42 characters, the
//!   LOCAL_LIST_ONLY bit cleared.
//! * Entries heard on this subnet win: a synced entry never replaces one with
//!   `synced_from == None` (Samba does not overwrite what it heard locally). We never
//!   list ourselves, nor take our own workgroup from another browser.
//! * Synced entries carry `synced_from: Some(peer)`, address 0.0.0.0, and the periodicity
//!   `dmb_sync_interval`: they live 3 × the interval (clamped as [`crate::list`] says:
//!   a 15-minute interval lives 45 minutes) unless the next sync renews them.
//! * A sync is a full copy: entries a peer gave before and no longer lists are dropped
//!   at once, so a server removed on the other subnet disappears here.
//! * Caps: `max_servers` / `max_workgroups`; each new entry over them is refused and
//!   counted. Only answers to a sync we asked for are taken (`list_syncs_unexpected`).

use super::{valid_name, Browser, Listed, SyncKind};
use crate::list::{Heard, Upsert};
use crate::schedule::millis;
use nbdgm_wire::browser::{ServerType, MAX_COMMENT_LEN, MAX_NAME_LEN};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Instant;

impl Browser {
    /// The list a [`super::Action::SyncList`] pulled from `peer`.
    pub fn list_synced(
        &mut self,
        now: Instant,
        kind: SyncKind,
        peer: &str,
        servers: Vec<Listed>,
        workgroups: Vec<Listed>,
    ) {
        if self.shut_down || !self.sync_answered(kind, peer) {
            self.stats.list_syncs_unexpected += 1;
            return;
        }
        let peer = peer.to_ascii_uppercase();
        self.stats.list_syncs += 1;
        let workgroup = match kind {
            SyncKind::FromDomainMaster => self.cfg.workgroup.clone(),
            SyncKind::FromLocalMaster => self
                .dmb
                .lmbs
                .get(&peer)
                .map_or_else(|| self.cfg.workgroup.clone(), |r| r.workgroup.clone()),
        };
        self.table.expire(now);
        let taken = self.merge_synced(now, &peer, &workgroup, servers, workgroups);
        if kind == SyncKind::FromLocalMaster {
            if let Some(r) = self.dmb.lmbs.get_mut(&peer) {
                r.syncs += 1;
                r.last_entries = taken;
            }
        }
        self.update_gauges();
    }

    /// A [`super::Action::SyncList`] failed (counted; the next one comes at its interval).
    pub fn list_sync_failed(&mut self, _now: Instant, kind: SyncKind, peer: &str) {
        if self.sync_answered(kind, peer) {
            self.stats.list_sync_failures += 1;
        } else {
            self.stats.list_syncs_unexpected += 1;
        }
    }

    /// Remove the running sync `(kind, peer)`; false when none was running.
    fn sync_answered(&mut self, kind: SyncKind, peer: &str) -> bool {
        let i = self
            .dmb
            .running
            .iter()
            .position(|r| r.kind == kind && r.peer.eq_ignore_ascii_case(peer));
        i.map(|i| self.dmb.running.swap_remove(i)).is_some()
    }

    /// Merge one peer's list (see the module documentation); returns the entries taken.
    fn merge_synced(
        &mut self,
        now: Instant,
        peer: &str,
        workgroup: &str,
        servers: Vec<Listed>,
        workgroups: Vec<Listed>,
    ) -> u64 {
        let period = millis(self.cfg.dmb_sync_interval);
        let wg = workgroup.to_ascii_uppercase();
        let mut keep_servers = HashSet::new();
        let mut keep_groups = HashSet::new();
        let mut taken = 0u64;
        for l in servers {
            if !valid_name(&l.name) {
                self.stats.synced_entries_invalid += 1;
                continue;
            }
            let name = l.name.to_ascii_uppercase();
            if name.eq_ignore_ascii_case(&self.cfg.name) {
                continue;
            }
            if self.table.server_heard_here(&wg, &name, now) {
                self.stats.synced_entries_local_kept += 1;
                continue;
            }
            let h = Heard {
                name: name.clone(),
                group: wg.clone(),
                server_type: l.server_type & !ServerType::LOCAL_LIST_ONLY,
                os_major: l.os_major,
                os_minor: l.os_minor,
                periodicity_ms: period,
                comment: l.comment.chars().take(MAX_COMMENT_LEN).collect(),
                address: Ipv4Addr::UNSPECIFIED,
                lanman: false,
                synced_from: Some(peer.to_owned()),
                remote: true,
            };
            if self.table.upsert_server(now, h, self.cfg.max_servers) == Upsert::Full {
                self.stats.refused_server_list_full += 1;
            } else {
                taken += 1;
                keep_servers.insert((wg.clone(), name));
            }
        }
        for l in workgroups {
            if !valid_name(&l.name) {
                self.stats.synced_entries_invalid += 1;
                continue;
            }
            let name = l.name.to_ascii_uppercase();
            if name.eq_ignore_ascii_case(&self.cfg.workgroup) {
                continue;
            }
            if self.table.group_heard_here(&name, now) {
                self.stats.synced_entries_local_kept += 1;
                continue;
            }
            let h = Heard {
                name: name.clone(),
                // NetServerEnum2 level 1 of a workgroup: the comment is its master.
                group: l.comment.chars().take(MAX_NAME_LEN).collect(),
                server_type: l.server_type & !ServerType::LOCAL_LIST_ONLY,
                os_major: l.os_major,
                os_minor: l.os_minor,
                periodicity_ms: period,
                comment: String::new(),
                address: Ipv4Addr::UNSPECIFIED,
                lanman: false,
                synced_from: Some(peer.to_owned()),
                remote: true,
            };
            if self.table.upsert_group(now, h, self.cfg.max_workgroups) == Upsert::Full {
                self.stats.refused_workgroup_list_full += 1;
            } else {
                taken += 1;
                keep_groups.insert(name);
            }
        }
        self.stats.synced_entries += taken;
        let removed = self
            .table
            .drop_synced_except(peer, &keep_servers, &keep_groups);
        self.stats.synced_entries_removed += removed as u64;
        taken
    }
}
