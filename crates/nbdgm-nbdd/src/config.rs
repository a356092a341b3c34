//! NBDD configuration: ports, scope, relay policy and every cap (RFC 1001 §11.2:
//! the NBDD "may elect to complete, partially complete, or totally refuse" a relay;
//! RFC 1002 §6 for DGM_SRVC_UDP_PORT, MAX_DATAGRAM_LENGTH and FRAGMENT_TO).

use nbdgm_base::PrefixSet;
use nbdgm_wire::name::validate_scope;
use std::net::Ipv4Addr;
use std::time::Duration;

/// A token bucket: `rate` per second, up to `burst`.
pub use nbdgm_base::rate::Rate;

/// Longest duration accepted for any timer (keeps `Instant` arithmetic far from overflow).
pub const MAX_TIMER: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why an [`NbddConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("scope: {0}")]
    Scope(nbdgm_wire::Error),
    #[error("port must not be 0")]
    PortZero,
    #[error("{0} must be > 0")]
    Zero(&'static str),
    #[error("{0} must be > 0 and <= {MAX_TIMER:?}")]
    Timer(&'static str),
    #[error("{0}: rate must be finite and > 0, burst > 0")]
    Rate(&'static str),
    #[error("max_datagram_length too small to carry two names")]
    MaxDatagramLength,
}

/// For callers that still collect errors as text.
impl From<ConfigError> for String {
    fn from(e: ConfigError) -> String {
        e.to_string()
    }
}

/// Who may have datagrams relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayPolicy {
    /// Only UDP sources inside this set (an empty set refuses everyone).
    AllowList(PrefixSet),
    /// The datagram's SOURCE_NAME must be registered in the NBNS at its SOURCE_IP
    /// (RFC 1001 §5.4: datagrams are sent "under cover of" a registered name). The
    /// engine asks the runtime with [`crate::NbddAction::VerifySource`] and caches the
    /// answer for [`NbddConfig::verify_cache_ttl`].
    RegisteredSources,
}

/// How DATAGRAM QUERY REQUESTs are answered (RFC 1001 §17.3, RFC 1002 §5.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryAnswer {
    /// POSITIVE only when the NBDD knows at least one member it would relay to
    /// (other than the requester); may need a [`crate::NbddAction::ResolveMembers`] round.
    Members,
    /// Always POSITIVE for names in our scope ("The response may always be positive").
    AlwaysPositive,
}

/// What to do with a DIRECT_UNIQUE datagram sent to the NBDD (RFC 1002 §5.3.4 only
/// relays group and broadcast datagrams; P/M nodes unicast unique ones directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueHandling {
    /// Answer DATAGRAM ERROR 0x82 DESTINATION NAME NOT PRESENT (the NBDD owns no
    /// names, so the RFC 1002 §5.3.3 rule applies), rate-limited.
    ReplyError,
    /// Drop silently (counted).
    Drop,
}

fn check_rate(r: Rate, what: &'static str) -> Result<(), ConfigError> {
    if !r.rate.is_finite() || r.rate <= 0.0 || r.burst == 0 {
        return Err(ConfigError::Rate(what));
    }
    Ok(())
}

/// Everything the NBDD needs; [`NbddConfig::default`] gives safe values.
#[derive(Debug, Clone, PartialEq)]
pub struct NbddConfig {
    /// The datagram port of the NBDD and of the members relayed to (DGM_SRVC_UDP_PORT 138).
    pub port: u16,
    /// The NetBIOS scope served; datagrams and queries for other scopes are refused.
    pub scope: String,
    /// Most copies of one UDP packet (beyond: truncated, counted).
    pub max_fanout: usize,
    /// Most items (datagrams, fragments, queries) waiting for a resolution or verification.
    pub max_pending: usize,
    /// Most bytes held by waiting items.
    pub max_pending_bytes: usize,
    /// Most waiting items per UDP source (one source cannot fill the queue).
    pub max_pending_per_source: usize,
    /// Relayed bytes out per UDP source: bytes per second and burst.
    pub relay_bytes_per_source_per_s: Rate,
    /// Relayed bytes out for the whole NBDD (bytes per second, burst); `None`: unlimited.
    pub relay_bytes_total_per_s: Option<Rate>,
    /// Replies (query responses and DATAGRAM ERRORs) per UDP source: packets per second, burst.
    pub replies_per_source_per_s: Rate,
    /// Most sources with their own buckets; beyond, new sources share one overflow bucket.
    pub max_sources: usize,
    pub policy: RelayPolicy,
    /// Our own addresses: never relay from or to them (loops), SOURCE_IP of our replies
    /// is the first one (0.0.0.0 if empty).
    pub own_addresses: Vec<Ipv4Addr>,
    /// Other NBDDs: nothing is accepted from them and nothing relayed to them
    /// (no NBDD-to-NBDD recursion).
    pub peer_nbdds: Vec<Ipv4Addr>,
    /// How long a member list from the NBNS is used.
    pub member_cache_ttl: Duration,
    pub max_cached_groups: usize,
    /// How long a [`crate::NbddAction::VerifySource`] answer is used.
    pub verify_cache_ttl: Duration,
    pub max_cached_sources: usize,
    /// How long an item waits for a resolution before it is dropped (counted).
    pub resolve_timeout: Duration,
    /// MAX_DATAGRAM_LENGTH (RFC 1002 §6): the IP datagram size above which an
    /// unfragmented input is re-fragmented on relay (when `refragment` is set).
    pub max_datagram_length: usize,
    /// Re-fragment unfragmented input above `max_datagram_length` (RFC 1001 §17.1.2).
    /// Windows and Samba never reassemble (DIGEST §2.7, §8.3): a relayed 622-byte
    /// mailslot datagram split in two is lost on them, so deployments serving them
    /// should turn this off.
    pub refragment: bool,
    /// FRAGMENT_TO (RFC 1002 §6): how long the destination of a first fragment is
    /// remembered for its continuations (RFC 1001 §17.1.2).
    pub fragment_timeout: Duration,
    /// Most fragmented datagrams being relayed at once, in total and per source.
    pub max_fragment_sets: usize,
    pub max_fragment_sets_per_source: usize,
    /// Continuation fragments held while their first fragment has not arrived
    /// (released to its members when it does); 0 drops them as RFC 1002 §5.3.3 allows.
    pub max_orphan_fragments: usize,
    /// Most bytes held by such fragments (the oldest are evicted, counted).
    pub max_orphan_bytes: usize,
    /// How long such a fragment is held for its first fragment (FRAGMENT_TO).
    pub orphan_timeout: Duration,
    pub query_answer: QueryAnswer,
    pub unique_datagram: UniqueHandling,
    /// Relay BROADCAST (`*`) datagrams to every node the NBNS knows (RFC 1001 §11.3).
    pub relay_broadcast: bool,
    /// Refuse data datagrams whose SOURCE_IP differs from the UDP source address
    /// (anti-spoofing: a relayed header keeps SOURCE_IP, so receivers' replies go there).
    pub require_source_ip_match: bool,
    /// Most packets waiting in [`crate::Nbdd::poll_transmit`] (beyond: dropped, counted).
    pub max_transmit_queue: usize,
    /// Most actions waiting in [`crate::Nbdd::poll_action`].
    pub max_actions: usize,
    /// Most events waiting in [`crate::Nbdd::poll_event`] (beyond: lost, counted).
    pub max_events: usize,
}

impl Default for NbddConfig {
    fn default() -> Self {
        NbddConfig {
            port: 138,
            scope: String::new(),
            max_fanout: 256,
            max_pending: 1024,
            max_pending_bytes: 1 << 20,
            max_pending_per_source: 64,
            relay_bytes_per_source_per_s: Rate::new(64.0 * 1024.0, 256 * 1024),
            relay_bytes_total_per_s: Some(Rate::new(4.0 * 1024.0 * 1024.0, 8 * 1024 * 1024)),
            replies_per_source_per_s: Rate::new(20.0, 40),
            max_sources: 4096,
            policy: RelayPolicy::RegisteredSources,
            own_addresses: Vec::new(),
            peer_nbdds: Vec::new(),
            member_cache_ttl: Duration::from_secs(60),
            max_cached_groups: 4096,
            verify_cache_ttl: Duration::from_secs(300),
            max_cached_sources: 4096,
            resolve_timeout: Duration::from_secs(5),
            max_datagram_length: 576,
            refragment: true,
            fragment_timeout: Duration::from_secs(2),
            max_fragment_sets: 1024,
            max_fragment_sets_per_source: 16,
            max_orphan_fragments: 64,
            max_orphan_bytes: 64 * 1024,
            orphan_timeout: Duration::from_secs(2),
            query_answer: QueryAnswer::Members,
            unique_datagram: UniqueHandling::ReplyError,
            relay_broadcast: true,
            require_source_ip_match: true,
            max_transmit_queue: 65_536,
            max_actions: 4096,
            max_events: 4096,
        }
    }
}

impl NbddConfig {
    /// Reject values the engine cannot work with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_scope(&self.scope).map_err(ConfigError::Scope)?;
        if self.port == 0 {
            return Err(ConfigError::PortZero);
        }
        for (v, what) in [
            (self.max_fanout, "max_fanout"),
            (self.max_pending, "max_pending"),
            (self.max_pending_bytes, "max_pending_bytes"),
            (self.max_pending_per_source, "max_pending_per_source"),
            (self.max_sources, "max_sources"),
            (self.max_cached_groups, "max_cached_groups"),
            (self.max_cached_sources, "max_cached_sources"),
            (self.max_fragment_sets, "max_fragment_sets"),
            (
                self.max_fragment_sets_per_source,
                "max_fragment_sets_per_source",
            ),
            (self.max_transmit_queue, "max_transmit_queue"),
            (self.max_actions, "max_actions"),
            (self.max_events, "max_events"),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(what));
            }
        }
        for (d, what) in [
            (self.member_cache_ttl, "member_cache_ttl"),
            (self.verify_cache_ttl, "verify_cache_ttl"),
            (self.resolve_timeout, "resolve_timeout"),
            (self.fragment_timeout, "fragment_timeout"),
            (self.orphan_timeout, "orphan_timeout"),
        ] {
            if d.is_zero() || d > MAX_TIMER {
                return Err(ConfigError::Timer(what));
            }
        }
        check_rate(
            self.relay_bytes_per_source_per_s,
            "relay_bytes_per_source_per_s",
        )?;
        if let Some(r) = self.relay_bytes_total_per_s {
            check_rate(r, "relay_bytes_total_per_s")?;
        }
        check_rate(self.replies_per_source_per_s, "replies_per_source_per_s")?;
        if self.refragment && self.max_datagram_length < 28 + 14 + 2 * 34 + 1 {
            return Err(ConfigError::MaxDatagramLength);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_are_prefix_sets() {
        let p = RelayPolicy::AllowList("10.1.0.0/16, 192.0.2.7".parse().unwrap());
        let RelayPolicy::AllowList(set) = &p else {
            unreachable!()
        };
        assert!(set.contains(Ipv4Addr::new(10, 1, 200, 3)));
        assert!(!set.contains(Ipv4Addr::new(10, 2, 0, 1)));
        assert!(set.contains(Ipv4Addr::new(192, 0, 2, 7)));
        assert!(!set.contains(Ipv4Addr::new(192, 0, 2, 8)));
    }

    #[test]
    fn validation() {
        assert!(NbddConfig::default().validate().is_ok());
        let bad = NbddConfig {
            max_fanout: 0,
            ..Default::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::Zero("max_fanout")));
        assert_eq!(
            String::from(bad.validate().unwrap_err()),
            "max_fanout must be > 0"
        );
        let bad = NbddConfig {
            relay_bytes_per_source_per_s: Rate::new(f64::NAN, 1),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = NbddConfig {
            scope: "a..b".into(),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = NbddConfig {
            resolve_timeout: Duration::MAX,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
