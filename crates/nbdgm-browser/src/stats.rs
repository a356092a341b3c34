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
    /// Issue 17 §3, local master browser side (engine/domain.rs): FindDomainMaster asked,
    /// put off (one still running), failed (incl. an invalid or our own name), answers
    /// with an invalid name, answers nobody asked for, domain master browsers found.
    pub dmb_lookups: u64,
    pub dmb_lookups_deferred: u64,
    pub dmb_lookup_failures: u64,
    pub dmb_names_invalid: u64,
    pub dmb_answers_unexpected: u64,
    pub dmb_found: u64,
    /// MasterAnnouncements we sent to the domain master browser.
    pub master_announcements_sent: u64,
    /// SyncList asked, put off (one to the domain master browser or
    /// `MAX_SYNCS_RUNNING` to local masters still running), succeeded, failed, answered
    /// without being asked (or after being given up), given up unanswered.
    pub list_syncs_requested: u64,
    pub list_syncs_deferred: u64,
    pub list_syncs: u64,
    pub list_sync_failures: u64,
    pub list_syncs_unexpected: u64,
    pub list_syncs_lost: u64,
    /// Entries taken from synced lists; dropped because the peer's next list no longer
    /// had them; skipped because heard on this subnet (those win); skipped as invalid.
    pub synced_entries: u64,
    pub synced_entries_removed: u64,
    pub synced_entries_local_kept: u64,
    pub synced_entries_invalid: u64,
    /// Domain master browser side: `<WG><1B>` registrations asked and refused.
    pub dmb_registrations: u64,
    pub dmb_registration_failures: u64,
    /// MasterAnnouncements addressed to us while we are not the domain master browser.
    pub master_announcements_ignored: u64,
    /// Local master browsers added to / expired from the table, and refused at
    /// `max_local_masters`.
    pub local_masters_added: u64,
    pub local_masters_expired: u64,
    pub refused_local_master_list_full: u64,
    /// LocalMasterAnnouncements of our workgroup from another host while we were master
    /// (Samba: ResetStateRequest to `__SAMBA__<20>`, give up master, election).
    pub master_conflicts: u64,
    pub reset_states_sent: u64,
    /// Events dropped because the action queue was full.
    pub events_dropped: u64,
    /// Gauges.
    pub servers: u64,
    pub workgroups: u64,
    pub local_masters: u64,
}
