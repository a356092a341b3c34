//! The browse list (MS-BRWS §3.3.1 "ServerList" and "DomainList"): servers from
//! HostAnnouncement / LocalMasterAnnouncement (and LANMAN announcements), workgroups
//! from DomainAnnouncement. Entries expire at 3 × their announced periodicity (DIGEST
//! §6.5); a server-type-0 announcement removes its entry at once. Bounded: caps on
//! servers and workgroups, overflow counted.
//!
//! Expiry: 3 × the announced periodicity, with the periodicity first clamped to
//! [60 s, 1 h] (a periodicity of 0 or of days would otherwise expire at once or never);
//! the 1 × periodicity floor of MS-BRWS §3.3.6 holds since 3 × p ≥ p. `BrowseTable` is
//! the engine's internal table; [`BrowseList`] is the snapshot it hands out.
//!
//! Backup browsers (MS-BRWS §3.3.5.9): a server announcing the backup-browser bit is a
//! backup we hand out in GetBackupListResponse only once confirmed: heard with the bit
//! from the same address in two announcements at least one (clamped) announcement
//! period apart, or promoted by us (BecomeBackup we sent). One forged announcement
//! cannot put a name in the backup list.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use nbdgm_wire::browser::ServerType;

const BACKUP_BROWSER: u32 = ServerType::BACKUP_BROWSER;

/// One server as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    pub name: String,
    /// The workgroup it announced into (the destination name's workgroup).
    pub workgroup: String,
    pub server_type: u32,
    pub os_major: u8,
    pub os_minor: u8,
    pub comment: String,
    /// Announced periodicity in milliseconds.
    pub periodicity_ms: u32,
    /// UDP source of the last announcement.
    pub address: Ipv4Addr,
    /// Seconds since the last announcement.
    pub age_s: u64,
    /// Seconds until it expires.
    pub expires_in_s: u64,
    /// `\MAILSLOT\LANMAN` rather than BROWSE.
    pub lanman: bool,
    /// This is us.
    pub local: bool,
    /// Not heard on this subnet: taken from this browser's list (the local master
    /// browser for a backup, the domain master browser for a local master browser, a
    /// local master browser for the domain master browser). `None`: heard here.
    pub synced_from: Option<String>,
}

/// One workgroup (DomainAnnouncement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkgroupEntry {
    pub name: String,
    /// Its local master browser's name.
    pub master: String,
    pub server_type: u32,
    pub os_major: u8,
    pub os_minor: u8,
    pub periodicity_ms: u32,
    pub address: Ipv4Addr,
    pub age_s: u64,
    pub expires_in_s: u64,
    pub local: bool,
    /// As [`ServerEntry::synced_from`].
    pub synced_from: Option<String>,
}

/// A snapshot of what the browser knows, for the API, HTTP and `nbdgm browse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowseList {
    /// Our workgroup.
    pub workgroup: String,
    pub role: crate::Role,
    /// The local master browser of our workgroup, when known (us included).
    pub master: Option<String>,
    pub master_address: Option<Ipv4Addr>,
    /// Backup browsers (names) we know of for our workgroup.
    pub backups: Vec<String>,
    /// Sorted by workgroup, then name.
    pub servers: Vec<ServerEntry>,
    /// Sorted by name.
    pub workgroups: Vec<WorkgroupEntry>,
    /// The domain master browser of our workgroup, when known (us included).
    pub domain_master: Option<String>,
    pub domain_master_address: Option<Ipv4Addr>,
    /// As domain master browser: the local master browsers that announced to us.
    pub local_masters: Vec<crate::LocalMaster>,
}

/// Shortest periodicity used for expiry (60 s).
pub const MIN_EXPIRY_PERIOD: Duration = Duration::from_secs(60);
/// Longest periodicity used for expiry (1 h).
pub const MAX_EXPIRY_PERIOD: Duration = Duration::from_secs(3600);

/// How long an entry announced with `periodicity_ms` lives: 3 × the periodicity clamped to
/// [`MIN_EXPIRY_PERIOD`, `MAX_EXPIRY_PERIOD`].
pub fn expiry_after(periodicity_ms: u32) -> Duration {
    3 * Duration::from_millis(u64::from(periodicity_ms)).clamp(MIN_EXPIRY_PERIOD, MAX_EXPIRY_PERIOD)
}

/// What an announcement said about a server (or, for a workgroup, its LMB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Heard {
    pub name: String,
    /// Workgroup the server announced into; for a workgroup record, its LMB's name.
    pub group: String,
    pub server_type: u32,
    pub os_major: u8,
    pub os_minor: u8,
    pub periodicity_ms: u32,
    pub comment: String,
    pub address: Ipv4Addr,
    pub lanman: bool,
    /// Taken from this browser's list rather than heard (see [`ServerEntry::synced_from`]).
    pub synced_from: Option<String>,
    /// From another subnet (a domain sync, [`crate::engine::SyncKind`]): never a backup
    /// browser of ours nor a candidate for promotion. A backup's copy of its master's
    /// list is of this subnet (`false`).
    pub remote: bool,
}

#[derive(Debug, Clone)]
struct Rec {
    heard: Heard,
    last_seen: Instant,
    expires: Instant,
    /// First announcement of the current unbroken run with the backup bit (same address).
    backup_since: Option<Instant>,
    /// A confirmed backup browser (see the module documentation).
    backup_ok: bool,
}

/// Result of recording an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upsert {
    Inserted,
    Updated,
    /// New entry refused: the table is at its cap.
    Full,
}

/// The bounded server and workgroup tables (keys upper-cased).
#[derive(Debug, Default)]
pub(crate) struct BrowseTable {
    /// (workgroup, server) → record.
    servers: HashMap<(String, String), Rec>,
    /// workgroup → record (`heard.group` = its LMB).
    groups: HashMap<String, Rec>,
    /// A lower bound of the earliest expiry (exact after [`BrowseTable::expire`]).
    next_expiry: Option<Instant>,
}

fn upsert<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Rec>,
    key: K,
    heard: Heard,
    now: Instant,
    cap: usize,
) -> Upsert {
    let expires = now + expiry_after(heard.periodicity_ms);
    if let Some(r) = map.get_mut(&key) {
        let backup = heard.server_type & BACKUP_BROWSER != 0;
        let (backup_since, backup_ok) = match r.backup_since {
            Some(t) if backup && r.heard.address == heard.address => {
                let period = Duration::from_millis(u64::from(r.heard.periodicity_ms))
                    .clamp(MIN_EXPIRY_PERIOD, MAX_EXPIRY_PERIOD);
                (
                    Some(t),
                    r.backup_ok || now.saturating_duration_since(t) >= period,
                )
            }
            _ if backup => (Some(now), false),
            _ => (None, false),
        };
        *r = Rec {
            heard,
            last_seen: now,
            expires,
            backup_since,
            backup_ok,
        };
        return Upsert::Updated;
    }
    if map.len() >= cap {
        return Upsert::Full;
    }
    let backup_since = (heard.server_type & BACKUP_BROWSER != 0).then_some(now);
    map.insert(
        key,
        Rec {
            heard,
            last_seen: now,
            expires,
            backup_since,
            backup_ok: false,
        },
    );
    Upsert::Inserted
}

fn trim<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, Rec>, cap: usize) {
    if map.len() <= cap {
        return;
    }
    let mut by_age: Vec<(Instant, K)> = map.iter().map(|(k, r)| (r.last_seen, k.clone())).collect();
    by_age.sort_by_key(|(t, _)| *t);
    let excess = map.len() - cap;
    for (_, k) in by_age.into_iter().take(excess) {
        map.remove(&k);
    }
}

impl BrowseTable {
    fn note_expiry(&mut self, now: Instant, periodicity_ms: u32) {
        let t = now + expiry_after(periodicity_ms);
        self.next_expiry = Some(self.next_expiry.map_or(t, |n| n.min(t)));
    }

    pub fn upsert_server(&mut self, now: Instant, heard: Heard, cap: usize) -> Upsert {
        self.expire(now);
        self.note_expiry(now, heard.periodicity_ms);
        let key = (
            heard.group.to_ascii_uppercase(),
            heard.name.to_ascii_uppercase(),
        );
        upsert(&mut self.servers, key, heard, now, cap)
    }

    /// Removes a server (server type 0); true when it was there.
    pub fn remove_server(&mut self, workgroup: &str, name: &str) -> bool {
        self.servers
            .remove(&(workgroup.to_ascii_uppercase(), name.to_ascii_uppercase()))
            .is_some()
    }

    /// `heard.name` is the workgroup, `heard.group` its LMB.
    pub fn upsert_group(&mut self, now: Instant, heard: Heard, cap: usize) -> Upsert {
        self.expire(now);
        self.note_expiry(now, heard.periodicity_ms);
        let key = heard.name.to_ascii_uppercase();
        upsert(&mut self.groups, key, heard, now, cap)
    }

    pub fn has_server(&self, workgroup: &str, name: &str) -> bool {
        self.servers
            .contains_key(&(workgroup.to_ascii_uppercase(), name.to_ascii_uppercase()))
    }

    /// A server we promoted announced the backup bit: a confirmed backup at once.
    pub fn confirm_backup(&mut self, workgroup: &str, name: &str) {
        let key = (workgroup.to_ascii_uppercase(), name.to_ascii_uppercase());
        if let Some(r) = self.servers.get_mut(&key) {
            if r.heard.server_type & BACKUP_BROWSER != 0 {
                r.backup_ok = true;
            }
        }
    }

    /// Live confirmed backup browsers of `workgroup` (names, sorted).
    pub fn confirmed_backups(&self, workgroup: &str, now: Instant) -> Vec<String> {
        let mut v: Vec<String> = self
            .servers
            .iter()
            .filter(|((wg, _), r)| {
                r.expires > now
                    && !r.heard.remote
                    && r.backup_ok
                    && r.heard.server_type & BACKUP_BROWSER != 0
                    && wg.eq_ignore_ascii_case(workgroup)
            })
            .map(|(_, r)| r.heard.name.clone())
            .collect();
        v.sort();
        v
    }

    /// A live server of `workgroup` heard on this subnet (not synced from another browser).
    pub fn server_heard_here(&self, workgroup: &str, name: &str, now: Instant) -> bool {
        self.servers
            .get(&(workgroup.to_ascii_uppercase(), name.to_ascii_uppercase()))
            .is_some_and(|r| r.expires > now && r.heard.synced_from.is_none())
    }

    /// A live workgroup heard on this subnet (not synced from another browser).
    pub fn group_heard_here(&self, name: &str, now: Instant) -> bool {
        self.groups
            .get(&name.to_ascii_uppercase())
            .is_some_and(|r| r.expires > now && r.heard.synced_from.is_none())
    }

    /// Drop what was synced from `peer` (case-insensitive) except the keys in `servers`
    /// ((workgroup, name), upper case) and `groups` (upper case): a full resync replaces
    /// the peer's share. Returns how many entries went.
    pub fn drop_synced_except(
        &mut self,
        peer: &str,
        servers: &std::collections::HashSet<(String, String)>,
        groups: &std::collections::HashSet<String>,
    ) -> usize {
        let from_peer = |r: &Rec| {
            r.heard
                .synced_from
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(peer))
        };
        let before = self.servers.len() + self.groups.len();
        self.servers
            .retain(|k, r| !from_peer(r) || servers.contains(k));
        self.groups
            .retain(|k, r| !from_peer(r) || groups.contains(k));
        before - self.servers.len() - self.groups.len()
    }

    pub fn has_group(&self, name: &str) -> bool {
        self.groups.contains_key(&name.to_ascii_uppercase())
    }

    pub fn remove_group(&mut self, name: &str) -> bool {
        self.groups.remove(&name.to_ascii_uppercase()).is_some()
    }

    /// Drop expired entries; O(1) unless something may be due.
    pub fn expire(&mut self, now: Instant) {
        if self.next_expiry.is_some_and(|t| t <= now) {
            self.servers.retain(|_, r| r.expires > now);
            self.groups.retain(|_, r| r.expires > now);
            self.next_expiry = self
                .servers
                .values()
                .chain(self.groups.values())
                .map(|r| r.expires)
                .min();
        }
    }

    /// When [`BrowseTable::expire`] may next have work (possibly early, never late).
    pub fn next_expiry(&self) -> Option<Instant> {
        self.next_expiry
    }

    pub fn clear(&mut self) {
        self.servers.clear();
        self.groups.clear();
        self.next_expiry = None;
    }

    /// Drop the oldest entries beyond new caps.
    pub fn trim(&mut self, max_servers: usize, max_workgroups: usize) {
        trim(&mut self.servers, max_servers);
        trim(&mut self.groups, max_workgroups);
    }

    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Live servers of `workgroup` (case-insensitive) on this subnet (not from a domain
    /// sync).
    pub fn servers_in<'a>(
        &'a self,
        workgroup: &'a str,
        now: Instant,
    ) -> impl Iterator<Item = &'a Heard> + 'a {
        self.servers
            .iter()
            .filter(move |((wg, _), r)| {
                r.expires > now && !r.heard.remote && wg.eq_ignore_ascii_case(workgroup)
            })
            .map(|(_, r)| &r.heard)
    }

    pub fn server_entries(&self, now: Instant) -> Vec<ServerEntry> {
        self.servers
            .values()
            .filter(|r| r.expires > now)
            .map(|r| ServerEntry {
                name: r.heard.name.clone(),
                workgroup: r.heard.group.clone(),
                server_type: r.heard.server_type,
                os_major: r.heard.os_major,
                os_minor: r.heard.os_minor,
                comment: r.heard.comment.clone(),
                periodicity_ms: r.heard.periodicity_ms,
                address: r.heard.address,
                age_s: now.saturating_duration_since(r.last_seen).as_secs(),
                expires_in_s: r.expires.saturating_duration_since(now).as_secs(),
                lanman: r.heard.lanman,
                local: false,
                synced_from: r.heard.synced_from.clone(),
            })
            .collect()
    }

    pub fn group_entries(&self, now: Instant) -> Vec<WorkgroupEntry> {
        self.groups
            .values()
            .filter(|r| r.expires > now)
            .map(|r| WorkgroupEntry {
                name: r.heard.name.clone(),
                master: r.heard.group.clone(),
                server_type: r.heard.server_type,
                os_major: r.heard.os_major,
                os_minor: r.heard.os_minor,
                periodicity_ms: r.heard.periodicity_ms,
                address: r.heard.address,
                age_s: now.saturating_duration_since(r.last_seen).as_secs(),
                expires_in_s: r.expires.saturating_duration_since(now).as_secs(),
                local: false,
                synced_from: r.heard.synced_from.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(name: &str, addr: u8, periodicity_ms: u32) -> Heard {
        Heard {
            name: name.into(),
            group: "WG".into(),
            server_type: 0x1003 | BACKUP_BROWSER,
            os_major: 6,
            os_minor: 1,
            periodicity_ms,
            comment: String::new(),
            address: Ipv4Addr::new(192, 0, 2, addr),
            lanman: false,
            synced_from: None,
            remote: false,
        }
    }

    /// Issue 12 item 2: one announcement with the backup bit (or a flood of them within
    /// one period) does not make a backup we hand out; two a period apart from the same
    /// address do, and so does our own promotion.
    #[test]
    fn backups_are_confirmed_by_repetition_or_promotion() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let mut t = BrowseTable::default();
        t.upsert_server(t0, backup("FORGED", 1, 720_000), 100);
        for i in 1..50 {
            t.upsert_server(s(i), backup("FORGED", 1, 720_000), 100);
        }
        assert!(
            t.confirmed_backups("WG", s(50)).is_empty(),
            "flood in one period"
        );
        // 12 minutes after the first: confirmed.
        t.upsert_server(s(720), backup("FORGED", 1, 720_000), 100);
        assert_eq!(t.confirmed_backups("wg", s(720)), ["FORGED"]);
        // The period is clamped to at least 60 s: periodicity 0 does not shortcut it.
        t.upsert_server(t0, backup("FAST", 2, 0), 100);
        t.upsert_server(s(30), backup("FAST", 2, 0), 100);
        assert_eq!(t.confirmed_backups("WG", s(30)), ["FORGED"]);
        t.upsert_server(s(61), backup("FAST", 2, 0), 100);
        assert_eq!(t.confirmed_backups("WG", s(61)), ["FAST", "FORGED"]);
        // Another address restarts the run (and loses the confirmation).
        t.upsert_server(s(62), backup("FAST", 3, 0), 100);
        assert_eq!(t.confirmed_backups("WG", s(62)), ["FORGED"]);
        // Dropping the bit loses it as well.
        let mut h = backup("FORGED", 1, 720_000);
        h.server_type &= !BACKUP_BROWSER;
        t.upsert_server(s(800), h, 100);
        assert!(t.confirmed_backups("WG", s(800)).is_empty());
        // Promoted by us: confirmed at its first announcement with the bit.
        t.upsert_server(s(801), backup("PROMOTED", 4, 720_000), 100);
        t.confirm_backup("WG", "promoted");
        assert_eq!(t.confirmed_backups("WG", s(801)), ["PROMOTED"]);
        // Expired entries are not handed out.
        assert!(t.confirmed_backups("WG", s(801 + 3 * 720)).is_empty());
    }
}
