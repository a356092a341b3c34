//! NBNS configuration: ports, TTL policy, caps and the group-answer mode
//! (RFC 1001 §15.1, RFC 1002 §5.1.4 and §6 constants; MS-NBTE §3.2.1 for the
//! 25-address minimum; MS-NBTE <11> and DIGEST §8 item 19 for WINS group answers).

use serde::{Deserialize, Serialize};
use std::time::Duration;
use thiserror::Error;

/// How a query for a group name is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupAnswers {
    /// RFC 1002 §5.1.4.1: the registered members (the default; an NBDD needs them).
    #[default]
    Members,
    /// WINS-like (MS-NBTE <11>): `255.255.255.255` for every group except `<1C>`,
    /// which always lists its members; `<1D>` registrations are granted but not
    /// stored, so `<1D>` queries are answered negatively (DIGEST §8 item 19).
    Broadcast,
}

/// An invalid [`NbnsConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid NBNS configuration: {0}")]
pub struct ConfigError(pub String);

impl From<ConfigError> for String {
    fn from(e: ConfigError) -> String {
        e.to_string()
    }
}

/// Everything the NBNS engine can be told. [`Default`] gives sane production values.
#[derive(Debug, Clone, PartialEq)]
pub struct NbnsConfig {
    /// The UDP port the runtime receives name-service packets on (137). Informational
    /// for the engine: replies always go to the request's UDP source.
    pub port: u16,
    /// Destination port of the challenge NAME QUERY REQUESTs sent to a current owner
    /// (RFC 1002 §5.1: requests go to 137). Configurable for loopback tests.
    pub node_port: u16,
    /// Most names held at once (unique and group). New names beyond are refused
    /// (SRV_ERR) and counted.
    pub max_names: usize,
    /// Most addresses per name: members of a group, addresses of a multi-homed
    /// unique name. MS-NBTE §3.2.1 asks for at least 25.
    pub max_group_members: usize,
    /// When a group (or a multi-homed name) is full: `true` evicts an address whose
    /// TTL ran out, else the oldest address that never refreshed (MS-NBTE
    /// §3.2.5.1/§3.2.5.3, limited so that a stranger cannot push out an established
    /// member: with none evictable the newcomer gets RFS_ERR); `false` always refuses
    /// the newcomer (RFS_ERR).
    pub evict_oldest_member: bool,
    /// Most addresses of unique names one address may hold (per-source quota, issue
    /// 12 item 11). More get RFS_ERR.
    pub max_names_per_source: usize,
    /// Most group memberships one address may hold. More get RFS_ERR.
    pub max_groups_per_source: usize,
    /// Granted TTLs are clamped to `min_ttl..=max_ttl` seconds.
    pub min_ttl: u32,
    pub max_ttl: u32,
    /// TTL granted when the request asks for 0 (infinite, which is not granted).
    pub default_ttl: u32,
    /// An address is removed `grace` after its TTL ran out without a refresh
    /// (RFC 1002 §5.1.4.2: "a multiple of the refresh TTL").
    pub expiry_grace: Duration,
    /// Token bucket per UDP source IP for state-changing requests (registration,
    /// multi-homed registration, refresh, release): (tokens per second, burst).
    pub registrations_per_source_per_s: (f64, u32),
    /// Most source IPs tracked by the rate limiter.
    pub max_sources: usize,
    /// Most end-node challenges in progress (RFC 1002 §5.1.4.1, secure server).
    pub max_pending_challenges: usize,
    /// Wait for the owner's answer to one challenge query (UCAST_REQ_RETRY_TIMEOUT).
    pub challenge_timeout: Duration,
    /// Challenge queries sent per owner address before the owner counts as silent
    /// (UCAST_REQ_RETRY_COUNT).
    pub challenge_attempts: u32,
    /// Most owner addresses queried in one challenge (a multi-homed owner).
    pub max_challenge_targets: usize,
    /// How group names are answered.
    pub group_answers: GroupAnswers,
    /// Most addresses in one query answer.
    pub max_answer_addresses: usize,
    /// Seed of the challenge NAME_TRN_IDs: `None` (the default) seeds a ChaCha generator
    /// from the OS random source, so an off-path host cannot guess the id of a challenge
    /// and answer it for the owner ([`nbdgm_base::random`]); `Some`: reproducible (tests).
    pub rng_seed: Option<u64>,
    /// A query answer is at most this many times the request's size: the daemon's
    /// `[limits] reply_amplification`, so that its reply gate lets the answer out.
    /// Addresses beyond are left out of this answer (round robin: the next cut answer
    /// for the name starts after the last address listed); no TC for this cut.
    pub max_reply_factor: usize,
    /// Registrations and refreshes must carry the UDP source IP as NB_ADDRESS
    /// (a host registers only itself). Releases are always checked.
    pub require_source_match: bool,
    /// The NetBIOS scope served (RFC 1001 §9); names in other scopes are dropped.
    pub scope: String,
    /// Caps of the outgoing packet and event queues (oldest events are dropped,
    /// newest transmits are dropped).
    pub max_queued_transmits: usize,
    pub max_queued_events: usize,
}

impl Default for NbnsConfig {
    fn default() -> Self {
        NbnsConfig {
            port: nbdgm_wire::nbns::NS_PORT,
            node_port: nbdgm_wire::nbns::NS_PORT,
            max_names: 10_000,
            max_group_members: 25,
            evict_oldest_member: true,
            // A Windows host holds about 3–8 unique names and 2–5 groups.
            max_names_per_source: 32,
            max_groups_per_source: 16,
            min_ttl: 60,
            // Six days, like WINS' default renewal interval.
            max_ttl: 518_400,
            default_ttl: 3_600,
            expiry_grace: Duration::from_secs(300),
            registrations_per_source_per_s: (5.0, 50),
            max_sources: 4_096,
            max_pending_challenges: 256,
            // MS-NBTE §3.1.2: 1.5 s × 3 towards an NBNS; the same for the challenge.
            challenge_timeout: Duration::from_millis(1_500),
            challenge_attempts: 3,
            max_challenge_targets: 4,
            group_answers: GroupAnswers::Members,
            max_answer_addresses: 25,
            rng_seed: None,
            max_reply_factor: 4,
            require_source_match: true,
            scope: String::new(),
            max_queued_transmits: 4_096,
            max_queued_events: 4_096,
        }
    }
}

/// Longest TTL accepted in the configuration (ten years), so deadlines never overflow.
pub const TTL_CEILING: u32 = 10 * 365 * 86_400;

impl NbnsConfig {
    /// Check the values. Every field has a bound so the engine stays bounded.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |s: &str| Err(ConfigError(s.to_owned()));
        if self.max_names == 0 {
            return err("max_names must be at least 1");
        }
        if !(1..=1_000).contains(&self.max_group_members) {
            return err("max_group_members must be within 1..=1000");
        }
        if self.max_names_per_source == 0 || self.max_groups_per_source == 0 {
            return err("max_names_per_source and max_groups_per_source must be at least 1");
        }
        if self.min_ttl == 0 || self.min_ttl > self.max_ttl {
            return err("need 0 < min_ttl <= max_ttl");
        }
        if self.max_ttl > TTL_CEILING {
            return err("max_ttl longer than ten years");
        }
        if self.default_ttl < self.min_ttl || self.default_ttl > self.max_ttl {
            return err("default_ttl must be within min_ttl..=max_ttl");
        }
        if self.expiry_grace > Duration::from_secs(86_400 * 30) {
            return err("expiry_grace longer than 30 days");
        }
        let (rate, burst) = self.registrations_per_source_per_s;
        if !rate.is_finite() || rate <= 0.0 || burst == 0 {
            return err("registrations_per_source_per_s needs a finite rate > 0 and a burst >= 1");
        }
        if self.max_sources == 0 {
            return err("max_sources must be at least 1");
        }
        if !(1..=16_384).contains(&self.max_pending_challenges) {
            return err("max_pending_challenges must be within 1..=16384");
        }
        if self.challenge_timeout.is_zero() || self.challenge_timeout > Duration::from_secs(60) {
            return err("challenge_timeout must be within (0, 60 s]");
        }
        if !(1..=10).contains(&self.challenge_attempts) {
            return err("challenge_attempts must be within 1..=10");
        }
        if !(1..=25).contains(&self.max_challenge_targets) {
            return err("max_challenge_targets must be within 1..=25");
        }
        if !(1..=1_000).contains(&self.max_answer_addresses) {
            return err("max_answer_addresses must be within 1..=1000");
        }
        if self.max_reply_factor == 0 {
            return err("max_reply_factor must be at least 1");
        }
        if self.max_queued_transmits == 0 || self.max_queued_events == 0 {
            return err("queue caps must be at least 1");
        }
        nbdgm_wire::name::validate_scope(&self.scope)
            .map_err(|e| ConfigError(format!("scope: {e}")))?;
        Ok(())
    }

    /// The TTL granted for a requested one (0 = "infinite" gets `default_ttl`).
    pub fn grant_ttl(&self, requested: u32) -> u32 {
        let t = if requested == 0 {
            self.default_ttl
        } else {
            requested
        };
        t.clamp(self.min_ttl, self.max_ttl)
    }

    /// The whole time a WACK asks the requester to wait, in seconds (RFC 1002 §4.2.16).
    pub(crate) fn wack_ttl(&self) -> u32 {
        let total = self
            .challenge_timeout
            .saturating_mul(self.challenge_attempts)
            .as_secs_f64()
            .ceil();
        // At most 600 s by the validation above; one more second for the answer.
        (total as u32).saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        NbnsConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_values_are_refused() {
        let mut c = NbnsConfig {
            max_names: 0,
            ..Default::default()
        };
        assert!(c.validate().is_err());
        c = NbnsConfig {
            registrations_per_source_per_s: (f64::NAN, 1),
            ..Default::default()
        };
        assert!(c.validate().is_err());
        c = NbnsConfig {
            max_names_per_source: 0,
            ..Default::default()
        };
        assert!(c.validate().is_err());
        c = NbnsConfig {
            min_ttl: 10,
            max_ttl: 5,
            ..Default::default()
        };
        assert!(c.validate().is_err());
        c = NbnsConfig {
            scope: "bad..scope".into(),
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn ttl_grant_and_wack() {
        let c = NbnsConfig::default();
        assert_eq!(c.grant_ttl(0), 3_600);
        assert_eq!(c.grant_ttl(1), 60);
        assert_eq!(c.grant_ttl(300_000), 300_000);
        assert_eq!(c.grant_ttl(u32::MAX), 518_400);
        assert_eq!(c.wack_ttl(), 6);
    }
}
