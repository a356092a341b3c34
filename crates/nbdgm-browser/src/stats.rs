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
    /// Gauges.
    pub servers: u64,
    pub workgroups: u64,
}
