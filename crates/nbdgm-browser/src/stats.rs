//! Browser counters (every cap and refusal has one).

use serde::Serialize;

/// Counters of one [`crate::Browser`]. The engine author adds fields as needed; all are
/// plain `u64` counters or gauges and serialize flat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BrowserStats {
    pub frames_received: u64,
    pub host_announcements_sent: u64,
    pub elections_sent: u64,
    pub elections_won: u64,
    pub elections_lost: u64,
    pub backup_list_requests_answered: u64,
    pub refused_reset_state: u64,
    pub refused_election_rate: u64,
    pub refused_server_list_full: u64,
    pub refused_workgroup_list_full: u64,
    pub refused_malformed: u64,
    /// Frames ignored on purpose (not for us, wrong name type, responses).
    pub frames_ignored: u64,
    /// Unknown opcodes: ignored, as MS-BRWS §3.3.5 says, not refused.
    pub unknown_opcodes: u64,
    pub elections_started: u64,
    /// RequestElection frames for our workgroup accepted by the rate limit.
    pub elections_received: u64,
    pub remote_announcements_sent: u64,
    pub local_master_announcements_sent: u64,
    pub domain_announcements_sent: u64,
    pub lanman_announcements_sent: u64,
    pub lanman_announcements_received: u64,
    pub master_announcements_received: u64,
    pub announcement_requests_received: u64,
    pub backups_promoted: u64,
    pub reset_state_obeyed: u64,
    /// Master checks that found no local master browser (and started an election).
    pub master_checks_failed: u64,
    /// Backup: fetches of the master's list that succeeded / failed, entries taken from them.
    pub master_syncs: u64,
    pub master_sync_failures: u64,
    pub master_list_entries: u64,
    /// BecomeBackup naming us from a host that is not the local master we know (name
    /// and address), refused (issue 12 item 1).
    pub refused_become_backup: u64,
    /// Fetches of the master's list put off because one ran less than 12 minutes ago.
    pub master_syncs_deferred: u64,
    /// Elections we would have started beyond `election_start_burst` /
    /// `election_start_interval` (issue 12 item 8).
    pub elections_suppressed: u64,
    /// Announcements (browse or LANMAN mailslot) whose 16-byte ServerName or MachineGroup
    /// had no NUL (Samba with a 16-character name; docs/peers.md): accepted, the name cut
    /// to its first 15 characters (the NetBIOS name such a host can register).
    pub unterminated_names_accepted: u64,
    /// DomainAnnouncements whose LocalMasterBrowserName is longer than 15 characters
    /// (Samba 4.17 with a longer `netbios name`; docs/peers.md): accepted, the name cut to
    /// its first 15 characters.
    pub long_master_names_accepted: u64,
    /// Events dropped because the action queue was full.
    pub events_dropped: u64,
    /// Gauges.
    pub servers: u64,
    pub workgroups: u64,
}
