//! The browse list (MS-BRWS §3.3.1 "ServerList" and "DomainList"): servers from
//! HostAnnouncement / LocalMasterAnnouncement (and LANMAN announcements), workgroups
//! from DomainAnnouncement. Entries expire at 3 × their announced periodicity (DIGEST
//! §6.5); a server-type-0 announcement removes its entry at once. Bounded: caps on
//! servers and workgroups, overflow counted.

use std::net::Ipv4Addr;

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
}
