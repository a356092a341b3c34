//! Detector settings: table caps, thresholds, the local networks, known NBDDs and name
//! servers, and per-signature tuning. Read from the `[watch]` table of the configuration
//! (see `docs/watch.md`); every field has a default.

use crate::alert::Severity;
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Settings of the [`crate::Engine`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// Local subnets; 137/138 traffic from elsewhere raises `off-subnet`. Empty: that
    /// check is off (live capture fills it from the interface's addresses).
    pub local_nets: Vec<IpNet>,
    /// NBDD addresses: datagrams they relay may carry another SOURCE_IP.
    pub nbdd: Vec<IpAddr>,
    /// NBNS (WINS) servers: they answer for names they do not own.
    pub name_servers: Vec<IpAddr>,
    /// Hosts that may answer for any name (relays, mDNS proxies, sleep proxies).
    pub trusted_responders: Vec<IpAddr>,
    /// Cap on names tracked (per protocol together).
    pub max_names: usize,
    /// Cap on hosts tracked.
    pub max_hosts: usize,
    /// Cap on outstanding queries tracked.
    pub max_queries: usize,
    /// Cap on workgroups tracked.
    pub max_workgroups: usize,
    /// Cap on suppression keys.
    pub max_alert_keys: usize,
    /// Seconds a query waits for its answers.
    pub query_window_secs: u32,
    /// The same alert (signature, suspect, key) is emitted once per this many seconds.
    pub repeat_window_secs: u32,
    /// A host answering for this many distinct names it does not own, within
    /// `responder_window_secs`, raises `many-names-responder`.
    pub many_names: u32,
    /// Window of `many_names`.
    pub responder_window_secs: u32,
    /// Elections per workgroup within `election_window_secs` that make a storm.
    pub election_storm: u32,
    /// Window of `election_storm`.
    pub election_window_secs: u32,
    /// Announcements per host within `announcement_window_secs` that make a flood.
    pub announcement_flood: u32,
    /// Window of `announcement_flood`.
    pub announcement_window_secs: u32,
    /// Signatures (ids or slugs) that never alert.
    pub disable: Vec<String>,
    /// Severity per signature (id or slug), replacing the default.
    pub severity: BTreeMap<String, Severity>,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            local_nets: Vec::new(),
            nbdd: Vec::new(),
            name_servers: Vec::new(),
            trusted_responders: Vec::new(),
            max_names: 65_536,
            max_hosts: 16_384,
            max_queries: 65_536,
            max_workgroups: 1_024,
            max_alert_keys: 16_384,
            query_window_secs: 5,
            repeat_window_secs: 300,
            many_names: 5,
            responder_window_secs: 300,
            election_storm: 20,
            election_window_secs: 60,
            announcement_flood: 30,
            announcement_window_secs: 60,
            disable: Vec::new(),
            severity: BTreeMap::new(),
        }
    }
}

impl WatchConfig {
    /// Every signature named in `disable` and `severity` exists.
    pub fn validate(&self) -> Result<(), String> {
        for k in self.disable.iter().chain(self.severity.keys()) {
            if crate::signature::find(k).is_none() {
                return Err(format!(
                    "unknown signature {k:?} (see `nbdgm watch --list-signatures`)"
                ));
            }
        }
        Ok(())
    }
}
