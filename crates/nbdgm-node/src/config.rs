//! Node configuration: the interface, ports and the protocol constants of
//! RFC 1002 §6 (BCAST_REQ_RETRY_TIMEOUT/COUNT, CONFLICT_TIMER, FRAGMENT_TO,
//! MAX_DATAGRAM_LENGTH), plus the caps that keep every table bounded.

use crate::error::NodeError;
use nbdgm_wire::datagram::NodeType;
use nbdgm_wire::Name;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::str::FromStr;
use std::time::Duration;

/// Longest accepted timer or TTL.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Which local UDP service a packet belongs to: the name service (137) or the
/// datagram service (138). The actual ports come from [`NodeConfig`].
pub use nbdgm_base::Service;

/// One IPv4 interface: address, prefix length and (optionally) an explicit broadcast address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interface {
    pub addr: Ipv4Addr,
    pub prefix: u8,
    /// Override; `None` means the directed broadcast of `addr/prefix` (RFC 950 §2.3).
    pub broadcast: Option<Ipv4Addr>,
}

impl Interface {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        Interface {
            addr,
            prefix: prefix.min(32),
            broadcast: None,
        }
    }

    fn mask(&self) -> u32 {
        match self.prefix {
            0 => 0,
            p if p >= 32 => u32::MAX,
            p => u32::MAX << (32 - u32::from(p)),
        }
    }

    /// The broadcast address: the override, or the subnet-directed broadcast.
    pub fn broadcast(&self) -> Ipv4Addr {
        self.broadcast
            .unwrap_or_else(|| Ipv4Addr::from(u32::from(self.addr) | !self.mask()))
    }

    /// True when `ip` is on this interface's subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let m = self.mask();
        u32::from(ip) & m == u32::from(self.addr) & m
    }

    /// Parse `198.51.100.10/24` (a bare address means /32).
    pub fn parse(s: &str) -> Result<Self, NodeError> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: Ipv4Addr = a
            .trim()
            .parse()
            .map_err(|_| NodeError::InvalidConfig(format!("bad interface address {s:?}")))?;
        let prefix = match p {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= 32)
                .ok_or_else(|| NodeError::InvalidConfig(format!("bad prefix length in {s:?}")))?,
            None => 32,
        };
        Ok(Interface::new(addr, prefix))
    }
}

impl FromStr for Interface {
    type Err = NodeError;
    fn from_str(s: &str) -> Result<Self, NodeError> {
        Interface::parse(s)
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// What to do with a datagram whose header SOURCE_IP differs from its UDP source IP
/// (DIGEST §8.5: relays are rare, spoofing is easy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceIpPolicy {
    /// Deliver silently.
    Accept,
    /// Deliver, count, and emit [`crate::Event::SourceIpMismatch`].
    #[default]
    Log,
    /// Drop and count.
    Drop,
}

/// Caps of the fragment reassembly table (RFC 1002 §5.3.3 leaves them to us).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Incomplete fragment sets held at once.
    pub max_pending: usize,
    /// Bytes held for one UDP source IP.
    pub max_bytes_per_source: usize,
    /// Bytes held in total.
    pub max_total_bytes: usize,
    /// Largest data section (names + user data) of one reassembled datagram.
    pub max_datagram_bytes: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            max_pending: 64,
            max_bytes_per_source: 128 * 1024,
            max_total_bytes: 1024 * 1024,
            max_datagram_bytes: 65_535,
        }
    }
}

/// Caps of the remote-name cache (RFC 1001 §15.1.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    pub max_entries: usize,
    /// Lifetime of a positive entry (Windows NetBT CacheTimeout: 10 min).
    pub ttl: Duration,
    /// Lifetime of a "name not found" entry; zero disables negative caching.
    pub negative_ttl: Duration,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_entries: 256,
            ttl: Duration::from_secs(600),
            negative_ttl: Duration::ZERO,
        }
    }
}

/// Everything a [`crate::Node`] needs to know. Build with [`NodeConfig::new`] and
/// struct update syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub interface: Interface,
    /// UDP port of the name service (137).
    pub name_port: u16,
    /// UDP port of the datagram service (138).
    pub datagram_port: u16,
    /// B (broadcast), P (NBNS only), M (broadcast, then NBNS) or H (NBNS, then
    /// broadcast). P and M need at least one [`NodeConfig::nbns`]; an H-node without
    /// an NBNS behaves exactly like a B-node (its datagrams still carry SNT 11).
    pub node_type: NodeType,
    /// NetBIOS scope (empty on nearly every network). All our names live in it.
    pub scope: String,
    /// BCAST_REQ_RETRY_TIMEOUT (250 ms).
    pub bcast_retry_interval: Duration,
    /// BCAST_REQ_RETRY_COUNT (3): transmissions of a registration, release or broadcast query.
    pub bcast_retry_count: u32,
    /// UCAST_REQ_RETRY_TIMEOUT for unicast queries and node status (MS-NBTE: 1.5 s).
    pub ucast_retry_interval: Duration,
    /// UCAST_REQ_RETRY_COUNT (3).
    pub ucast_retry_count: u32,
    /// CONFLICT_TIMER (1 s): how long duplicate answers to our broadcast query are watched.
    pub conflict_timer: Duration,
    /// TTL in registrations and positive query responses (Windows: 300000 s).
    pub registration_ttl: u32,
    /// MAX_DATAGRAM_LENGTH: the IP datagram size above which datagrams are fragmented (576).
    pub max_datagram_length: usize,
    /// FRAGMENT_TO (2 s).
    pub fragment_timeout: Duration,
    pub reassembly: ReassemblyLimits,
    pub cache: CacheLimits,
    /// Answer NODE STATUS requests.
    pub node_status: bool,
    /// Send DATAGRAM ERROR 0x82 for a unicast DIRECT_UNIQUE to a name we do not hold.
    pub datagram_error_on_unknown: bool,
    /// Names counted as held for that DATAGRAM ERROR decision only: a unicast
    /// DIRECT_UNIQUE to one gets no error. Nothing else changes: they are not
    /// registered, defended nor answered, and their datagrams keep `for_us = false`
    /// (`nbdgm listen --standalone --name X` listens for X without holding it). At most
    /// [`NodeConfig::max_names`].
    pub passive_names: Vec<Name>,
    /// Emit [`crate::Event::Delivered`] (with `for_us = false`) for datagrams to names we
    /// do not hold; when false they are dropped with reason `not_owned`.
    pub deliver_not_for_us: bool,
    pub source_ip_policy: SourceIpPolicy,
    /// The address our registrations, answers and datagram headers carry instead of the
    /// interface's (NAT, containers); `None` for the interface address.
    pub announce_address: Option<Ipv4Addr>,
    /// No reply may be larger than this many times the request's size.
    pub reply_limit_factor: usize,
    /// Allow [`crate::Node::send`] under a source name we did not register (standalone tools).
    pub allow_unregistered_source: bool,
    /// Pending queries and node-status requests.
    pub max_transactions: usize,
    /// Names in the local name table.
    pub max_names: usize,
    /// Events waiting for [`crate::Node::poll_event`].
    pub max_events: usize,
    /// Packets waiting for [`crate::Node::poll_transmit`].
    pub max_transmits: usize,
    /// NBNS (WINS) servers, primary first (RFC 1002 §5.1.2; MS-NBTE §3.1.4.2: each
    /// consulted in turn). Ignored by B-nodes.
    pub nbns: Vec<Ipv4Addr>,
    /// UDP port of the NBNS (137).
    pub nbns_port: u16,
    /// Where P/M-nodes (and H-nodes with this set) send group and broadcast datagrams
    /// (RFC 1002 §5.3.2). `None`: the primary NBNS at `datagram_port`.
    pub nbdd: Option<SocketAddrV4>,
    /// Ask the NBDD with a DATAGRAM QUERY REQUEST (0x14) before relaying through it.
    pub nbdd_query: bool,
    /// When the NBDD refuses a DIRECT_GROUP datagram (NEGATIVE QUERY RESPONSE), send
    /// one copy by unicast to each member of the group as the node resolves it itself
    /// (RFC 1001 §17.2, RFC 1002 §5.3.2's alternative) instead of the local broadcast
    /// (M/H) or failing (P). Off by default.
    pub nbdd_refused_unicast: bool,
    /// Most members one such datagram is copied to (beyond: truncated, counted).
    pub nbdd_refused_unicast_max_members: usize,
    /// Copies per second across all such datagrams (token bucket, burst twice this);
    /// a datagram whose copies do not all fit falls back as if this option were off.
    pub nbdd_refused_unicast_per_s: u32,
    /// Shortest refresh interval of a name registered with the NBNS (MS-NBTE §3.1.4.1:
    /// 5 minutes). Names are refreshed after max(TTL / 2, this); TTL 0 = never.
    pub refresh_min: Duration,
    /// Longest total wait on one NBNS request after WACKs (RFC 1002 §4.2.16).
    pub wack_limit: Duration,
    /// The host's OTHER IPv4 addresses (its other NetBT interfaces, each served by its
    /// own node) when the host is multihomed (MS-NBTE §1, §2.2.2, §3.1.4.1). Empty (the
    /// default): a single-homed node, nothing changes. When not empty and the node uses
    /// an NBNS ([`NodeConfig::uses_nbns`]):
    /// * unique names are registered with the NBNS by MULTIHOMED NAME REGISTRATION
    ///   REQUEST (opcode 0xF, flags 0x7900) carrying only this node's address; group
    ///   names, refreshes, overwrites, releases and broadcast registrations are unchanged;
    /// * a unicast NAME QUERY REQUEST for one of our active unique names (the NBNS's
    ///   challenge) is answered with this node's address first, then these addresses
    ///   (as many as the reply caps allow), so the NBNS keeps all of them. Broadcast
    ///   queries and group names are still answered with this node's address only.
    ///
    /// Entries equal to this node's own (or announced) address are ignored. At most 24
    /// (WINS keeps at most 25 addresses per name), all unicast.
    pub multihomed: Vec<Ipv4Addr>,
    /// Seed of the generator of NAME_TRN_IDs and DGM_IDs. `None` (the default): seeded
    /// from the operating system's random source, so that an off-path host cannot
    /// guess our ids ([`nbdgm_base::random`]). `Some`: reproducible ids (simulations, tests).
    pub rng_seed: Option<u64>,
}

/// Most entries of [`NodeConfig::multihomed`] (WINS: 25 addresses per name, ours included).
pub const MAX_MULTIHOMED: usize = 24;

impl NodeConfig {
    /// Defaults (RFC 1002 §6 constants) for `interface`.
    pub fn new(interface: Interface) -> Self {
        NodeConfig {
            interface,
            name_port: 137,
            datagram_port: 138,
            node_type: NodeType::B,
            scope: String::new(),
            bcast_retry_interval: Duration::from_millis(250),
            bcast_retry_count: 3,
            ucast_retry_interval: Duration::from_millis(1500),
            ucast_retry_count: 3,
            conflict_timer: Duration::from_secs(1),
            registration_ttl: 300_000,
            max_datagram_length: 576,
            fragment_timeout: Duration::from_secs(2),
            reassembly: ReassemblyLimits::default(),
            cache: CacheLimits::default(),
            node_status: true,
            datagram_error_on_unknown: true,
            passive_names: Vec::new(),
            deliver_not_for_us: true,
            source_ip_policy: SourceIpPolicy::Log,
            announce_address: None,
            reply_limit_factor: 12,
            allow_unregistered_source: false,
            max_transactions: 64,
            max_names: 64,
            max_events: 1024,
            max_transmits: 1024,
            nbns: Vec::new(),
            nbns_port: 137,
            nbdd: None,
            nbdd_query: true,
            nbdd_refused_unicast: false,
            nbdd_refused_unicast_max_members: 16,
            nbdd_refused_unicast_per_s: 20,
            refresh_min: Duration::from_secs(300),
            wack_limit: Duration::from_secs(120),
            multihomed: Vec::new(),
            rng_seed: None,
        }
    }

    /// True when names are registered with and resolved through an NBNS (P, M, H
    /// with at least one NBNS configured).
    pub fn uses_nbns(&self) -> bool {
        self.node_type != NodeType::B && !self.nbns.is_empty()
    }

    /// True when group and broadcast datagrams go to the NBDD (P, M with an NBNS;
    /// H only when [`NodeConfig::nbdd`] is set, DIGEST §3.2a).
    pub fn uses_nbdd(&self) -> bool {
        match self.node_type {
            NodeType::B => false,
            NodeType::P | NodeType::M => self.nbdd.is_some() || !self.nbns.is_empty(),
            NodeType::H => self.nbdd.is_some(),
        }
    }

    /// The NBDD address, if group datagrams go through one.
    pub fn nbdd_addr(&self) -> Option<SocketAddrV4> {
        if !self.uses_nbdd() {
            return None;
        }
        self.nbdd.or_else(|| {
            self.nbns
                .first()
                .map(|ip| SocketAddrV4::new(*ip, self.datagram_port))
        })
    }

    /// The local port of `service`.
    pub fn port(&self, service: Service) -> u16 {
        match service {
            Service::Name => self.name_port,
            Service::Datagram => self.datagram_port,
        }
    }

    /// Check the values a node cannot work with.
    pub fn validate(&self) -> Result<(), NodeError> {
        let bad = |s: &str| Err(NodeError::InvalidConfig(s.to_owned()));
        if matches!(self.node_type, NodeType::P | NodeType::M) && self.nbns.is_empty() {
            return Err(NodeError::InvalidConfig(format!(
                "a {}-node needs at least one NBNS",
                self.node_type.as_str()
            )));
        }
        let unusable =
            |ip: &Ipv4Addr| ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast();
        if self.nbns.iter().any(unusable) || self.nbdd.is_some_and(|a| unusable(a.ip())) {
            return bad("NBNS/NBDD addresses must be unicast");
        }
        if self.multihomed.iter().any(unusable) {
            return bad("multihomed addresses must be unicast");
        }
        if self.passive_names.len() > self.max_names {
            return bad("more passive names than max_names");
        }
        if self.multihomed.len() > MAX_MULTIHOMED {
            return Err(NodeError::InvalidConfig(format!(
                "at most {MAX_MULTIHOMED} multihomed addresses"
            )));
        }
        if self.nbns.len() > 16 {
            return bad("at most 16 NBNS addresses");
        }
        if self.nbns_port == 0 || self.nbdd.is_some_and(|a| a.port() == 0) {
            return bad("NBNS/NBDD ports must not be 0");
        }
        if self.refresh_min.is_zero() {
            return bad("refresh_min must be above zero");
        }
        if nbdgm_wire::name::validate_scope(&self.scope).is_err() {
            return bad("invalid NetBIOS scope");
        }
        if self.interface.prefix > 32 {
            return bad("prefix length above 32");
        }
        if self.bcast_retry_count == 0 || self.ucast_retry_count == 0 {
            return bad("retry counts must be at least 1");
        }
        if self.bcast_retry_interval.is_zero() || self.ucast_retry_interval.is_zero() {
            return bad("retry intervals must be above zero");
        }
        if self.fragment_timeout.is_zero() {
            return bad("fragment_timeout must be above zero");
        }
        if self.nbdd_refused_unicast_max_members == 0 || self.nbdd_refused_unicast_per_s == 0 {
            return bad("nbdd_refused_unicast limits must be above zero");
        }
        // Instant + Duration panics on overflow: keep every timer sane.
        let durations = [
            self.bcast_retry_interval,
            self.ucast_retry_interval,
            self.conflict_timer,
            self.fragment_timeout,
            self.cache.ttl,
            self.cache.negative_ttl,
            self.refresh_min,
            self.wack_limit,
        ];
        if durations.iter().any(|d| *d > MAX_DURATION) {
            return bad("durations must not exceed one year");
        }
        // IP + UDP + header + two scoped names + one byte must fit one packet.
        let min = crate::fragment::IP_UDP_HEADER + 14 + 2 * (35 + self.scope.len()) + 1;
        if self.max_datagram_length < min || self.max_datagram_length > 65_535 {
            return Err(NodeError::InvalidConfig(format!(
                "max_datagram_length must be between {min} and 65535"
            )));
        }
        if self.reply_limit_factor == 0 {
            return bad("reply_limit_factor must be at least 1");
        }
        let caps = [
            self.max_transactions,
            self.max_names,
            self.max_events,
            self.max_transmits,
            self.cache.max_entries,
            self.reassembly.max_pending,
            self.reassembly.max_bytes_per_source,
            self.reassembly.max_total_bytes,
            self.reassembly.max_datagram_bytes,
        ];
        if caps.contains(&0) {
            return bad("every cap must be at least 1");
        }
        Ok(())
    }
}

impl Default for NodeConfig {
    /// Defaults on 127.0.0.1/8; real use sets the interface.
    fn default() -> Self {
        NodeConfig::new(Interface::new(Ipv4Addr::LOCALHOST, 8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_broadcast_and_contains() {
        let i = Interface::parse("198.51.100.10/24").unwrap();
        assert_eq!(i.broadcast(), Ipv4Addr::new(198, 51, 100, 255));
        assert!(i.contains(Ipv4Addr::new(198, 51, 100, 1)));
        assert!(!i.contains(Ipv4Addr::new(198, 51, 101, 1)));
        assert_eq!(i.to_string(), "198.51.100.10/24");
        let i = Interface::parse("10.1.2.3/8").unwrap();
        assert_eq!(i.broadcast(), Ipv4Addr::new(10, 255, 255, 255));
        let i = Interface::parse("10.1.2.3").unwrap();
        assert_eq!(i.broadcast(), Ipv4Addr::new(10, 1, 2, 3));
        let i = Interface::parse("10.1.2.3/0").unwrap();
        assert_eq!(i.broadcast(), Ipv4Addr::BROADCAST);
        let mut i = Interface::parse("10.1.2.3/24").unwrap();
        i.broadcast = Some(Ipv4Addr::BROADCAST);
        assert_eq!(i.broadcast(), Ipv4Addr::BROADCAST);
        assert!(Interface::parse("10.1.2.3/33").is_err());
        assert!(Interface::parse("nope/24").is_err());
    }

    #[test]
    fn validation() {
        assert!(NodeConfig::default().validate().is_ok());
        // H without an NBNS is a B-node; P and M need one.
        let c = NodeConfig {
            node_type: NodeType::H,
            ..NodeConfig::default()
        };
        assert!(c.validate().is_ok());
        assert!(!c.uses_nbns());
        for t in [NodeType::P, NodeType::M] {
            let c = NodeConfig {
                node_type: t,
                ..NodeConfig::default()
            };
            assert!(c.validate().is_err());
            let c = NodeConfig {
                nbns: vec![Ipv4Addr::new(10, 0, 0, 9)],
                ..c
            };
            assert!(c.validate().is_ok());
            assert!(c.uses_nbns() && c.uses_nbdd());
            assert_eq!(c.nbdd_addr(), Some("10.0.0.9:138".parse().unwrap()));
        }
        let c = NodeConfig {
            node_type: NodeType::P,
            nbns: vec![Ipv4Addr::BROADCAST],
            ..NodeConfig::default()
        };
        assert!(c.validate().is_err());
        let c = NodeConfig {
            max_datagram_length: 60,
            ..NodeConfig::default()
        };
        assert!(c.validate().is_err());
        let c = NodeConfig {
            scope: "bad..scope".into(),
            ..NodeConfig::default()
        };
        assert!(c.validate().is_err());
        let c = NodeConfig {
            fragment_timeout: Duration::MAX,
            ..NodeConfig::default()
        };
        assert!(c.validate().is_err());
        let c = NodeConfig {
            multihomed: vec![Ipv4Addr::UNSPECIFIED],
            ..NodeConfig::default()
        };
        assert!(c.validate().is_err());
        let c = NodeConfig {
            multihomed: (0..25).map(|i| Ipv4Addr::new(10, 9, 0, i)).collect(),
            ..NodeConfig::default()
        };
        assert!(c.validate().is_err());
        let c = NodeConfig {
            multihomed: vec![Ipv4Addr::new(10, 9, 0, 1)],
            ..NodeConfig::default()
        };
        assert!(c.validate().is_ok());
        let c = NodeConfig {
            max_events: 0,
            ..NodeConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn policy_serde_is_lowercase() {
        assert_eq!(
            serde_json::to_string(&SourceIpPolicy::Drop).unwrap(),
            "\"drop\""
        );
        let p: SourceIpPolicy = serde_json::from_str("\"log\"").unwrap();
        assert_eq!(p, SourceIpPolicy::Log);
    }
}
