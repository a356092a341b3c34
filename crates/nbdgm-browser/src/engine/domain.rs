//! Browsing across subnets (MS-BRWS §3.3.6, §3.4; Samba `nmbd_browsesync.c`,
//! `nmbd_become_dmb.c`, `nmbd_synclists.c`):
//!
//! * As local master browser: find the domain master browser ([`Action::FindDomainMaster`]),
//!   send it a MasterAnnouncement (DIRECT_UNIQUE to `<DMB><00>`), and pull its list
//!   ([`SyncKind::FromDomainMaster`]), at becoming master and every `dmb_sync_interval`.
//! * As domain master browser (`domain_master`): register `<WG><1B>`, accept
//!   MasterAnnouncements into a bounded table of local master browsers, pull each one's
//!   local list ([`SyncKind::FromLocalMaster`]) a minute after it first announces and then
//!   every `dmb_sync_interval`, and merge the lists (capped, expiring).
//!
//! INTERFACE ONLY: the behaviour is being written (issue 17 §3).

use super::Browser;
use std::net::Ipv4Addr;
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

impl Browser {
    /// The domain master browser of our workgroup is `name` at `address` (after
    /// [`super::Action::FindDomainMaster`]).
    pub fn domain_master_found(&mut self, _now: Instant, _name: &str, _address: Ipv4Addr) {}

    /// Finding the domain master browser failed (no `<1B>`, no node status, no unique
    /// `<20>` in it, or it is us).
    pub fn domain_master_failed(&mut self, _now: Instant) {}

    /// The list a [`super::Action::SyncList`] pulled from `peer`.
    pub fn list_synced(
        &mut self,
        _now: Instant,
        _kind: SyncKind,
        _peer: &str,
        _servers: Vec<super::Listed>,
        _workgroups: Vec<super::Listed>,
    ) {
    }

    /// A [`super::Action::SyncList`] failed.
    pub fn list_sync_failed(&mut self, _now: Instant, _kind: SyncKind, _peer: &str) {}

    /// As domain master browser: the local master browsers we know.
    pub fn local_masters(&self, _now: Instant) -> Vec<LocalMaster> {
        Vec::new()
    }

    /// The domain master browser we sync with (name, address), when known.
    pub fn domain_master(&self) -> Option<(String, Ipv4Addr)> {
        None
    }

    /// We hold `<WG><1B>`: we are the domain master browser.
    pub fn is_domain_master(&self) -> bool {
        false
    }
}
