//! Routed networks in `nbdgm serve`: the NBNS and NBDD this node uses as a
//! P, M or H node (RFC 1001 §15, RFC 1002 §5.1.2–§5.1.3, §5.3.2; MS-NBTE §3.1), and the
//! NBNS and NBDD *roles* the daemon can play (RFC 1002 §5.1.4, §5.3.4) — their
//! configuration sections and the engines' settings built from them.

use ipnet::Ipv4Net;
use nbdgm_nbdd::{NbddConfig, PrefixSet, QueryAnswer, Rate, RelayPolicy};
use nbdgm_nbns::{GroupAnswers, NbnsConfig};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

/// `[node] role`: `"nbns"`, `"nbdd"`, or a list of both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    pub nbns: bool,
    pub nbdd: bool,
}

impl Roles {
    fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.nbns {
            v.push("nbns");
        }
        if self.nbdd {
            v.push("nbdd");
        }
        v
    }
}

impl Serialize for Roles {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

impl<'de> Deserialize<'de> for Roles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn add<E: de::Error>(r: &mut Roles, s: &str) -> Result<(), E> {
            match s {
                "nbns" => r.nbns = true,
                "nbdd" => r.nbdd = true,
                "" | "node" => {}
                _ => {
                    return Err(E::custom(format!(
                        "{s:?}: expected \"nbns\" or \"nbdd\" (or a list of them)"
                    )))
                }
            }
            Ok(())
        }
        impl<'de> de::Visitor<'de> for V {
            type Value = Roles;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"nbns\", \"nbdd\" or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Roles, E> {
                let mut r = Roles::default();
                add(&mut r, v)?;
                Ok(r)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Roles, A::Error> {
                let mut r = Roles::default();
                while let Some(s) = seq.next_element::<String>()? {
                    add(&mut r, &s)?;
                }
                Ok(r)
            }
        }
        d.deserialize_any(V)
    }
}

/// `[nbns]`: the NBNS (WINS) servers a P, M or H node uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NbnsClientConfig {
    /// Primary first. P and M nodes need one; an H node without one acts as a B node.
    pub servers: Vec<Ipv4Addr>,
    pub port: u16,
    /// Shortest refresh interval of registered names (MS-NBTE: 5 minutes).
    pub refresh_min_s: u64,
}

impl Default for NbnsClientConfig {
    fn default() -> Self {
        NbnsClientConfig {
            servers: Vec::new(),
            port: 137,
            refresh_min_s: 300,
        }
    }
}

/// `[nbdd]`: where a P or M node (or an H node with `address`) sends group and broadcast
/// datagrams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NbddClientConfig {
    /// Default: the primary NBNS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    /// Default: `ports.datagram`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Ask with a DATAGRAM QUERY REQUEST before relaying through it.
    pub query: bool,
    /// After a refusal, unicast a group datagram to the members the node resolves
    /// itself (RFC 1001 §17.2), at most `refused_unicast_max_members`, at most
    /// `refused_unicast_per_s` copies per second.
    pub refused_unicast: bool,
    pub refused_unicast_max_members: usize,
    pub refused_unicast_per_s: u32,
}

impl Default for NbddClientConfig {
    fn default() -> Self {
        NbddClientConfig {
            address: None,
            port: None,
            query: true,
            refused_unicast: false,
            refused_unicast_max_members: 16,
            refused_unicast_per_s: 20,
        }
    }
}

/// `group_answers` of the NBNS role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupAnswersSetting {
    #[default]
    Members,
    Broadcast,
}

/// `[nbns_server]`: the NBNS role (`role = "nbns"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NbnsServerConfig {
    pub max_names: usize,
    pub max_group_members: usize,
    /// Per-source quotas: unique names and group memberships one address may hold.
    pub max_names_per_source: usize,
    pub max_groups_per_source: usize,
    pub min_ttl_s: u32,
    pub max_ttl_s: u32,
    pub default_ttl_s: u32,
    /// `members` (RFC: the NBDD needs them) or `broadcast` (WINS: 255.255.255.255 for
    /// groups other than <1C>).
    pub group_answers: GroupAnswersSetting,
    /// Registration, refresh and release requests per source: rate per second, burst.
    pub requests_per_source_per_s: f64,
    pub requests_burst: u32,
    /// The state file (names across restarts, `nbdgm_nbns::persist`): `{interface}` is
    /// replaced with the interface address (needed when several interfaces serve).
    /// Unset: `$STATE_DIRECTORY/nbns-{interface}.jsonl` when systemd gives a state
    /// directory, else no file; `""`: no file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_file: Option<std::path::PathBuf>,
    /// Seconds between saves (also saved at shutdown).
    pub state_save_interval_s: u64,
    /// Largest state file read or written.
    pub state_max_bytes: u64,
    /// Static names (`[[nbns_server.static]]`): never expire, defended against
    /// registrations, not deletable through the API.
    #[serde(rename = "static")]
    pub statics: Vec<crate::nbns_state::StaticName>,
}

impl Default for NbnsServerConfig {
    fn default() -> Self {
        let d = NbnsConfig::default();
        NbnsServerConfig {
            max_names: d.max_names,
            max_group_members: d.max_group_members,
            max_names_per_source: d.max_names_per_source,
            max_groups_per_source: d.max_groups_per_source,
            min_ttl_s: d.min_ttl,
            max_ttl_s: d.max_ttl,
            default_ttl_s: d.default_ttl,
            group_answers: GroupAnswersSetting::Members,
            requests_per_source_per_s: d.registrations_per_source_per_s.0,
            requests_burst: d.registrations_per_source_per_s.1,
            state_file: None,
            state_save_interval_s: 300,
            state_max_bytes: 16 << 20,
            statics: Vec::new(),
        }
    }
}

/// `policy` of the NBDD role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayPolicySetting {
    /// The SOURCE_NAME must be registered in the NBNS at SOURCE_IP.
    #[default]
    Registered,
    /// Only senders in `allow`.
    AllowList,
}

/// `[nbdd_server]`: the NBDD role (`role = "nbdd"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NbddServerConfig {
    pub policy: RelayPolicySetting,
    /// For `policy = "allow_list"`.
    pub allow: Vec<Ipv4Net>,
    /// Most copies of one datagram.
    pub max_fanout: usize,
    /// Relayed bytes per sender per second, and the burst.
    pub relay_bytes_per_source_per_s: f64,
    pub relay_burst_bytes: u32,
    /// Relayed bytes per second of the whole NBDD, and the burst (0: no total cap).
    pub relay_bytes_total_per_s: f64,
    pub relay_total_burst_bytes: u32,
    /// Other NBDDs: never relay from or to them.
    pub peers: Vec<Ipv4Addr>,
    /// `members` (positive only when we would relay to someone) or `always`.
    pub query_answer: String,
    /// Re-fragment unfragmented datagrams above `datagram.max_length` when relaying
    /// (Windows and Samba cannot reassemble).
    pub refragment: bool,
    /// Relay BROADCAST (`*`) datagrams to every node the NBNS knows.
    pub relay_broadcast: bool,
    pub member_cache_ttl_s: u64,
    /// Continuation fragments held while their first fragment has not arrived (0:
    /// dropped, as RFC 1002 §5.3.3 allows), the bytes they may take, and how long each
    /// waits (issue 17 §4).
    pub max_orphan_fragments: usize,
    pub max_orphan_bytes: usize,
    pub orphan_timeout_ms: u64,
    /// Where to look up group members when this daemon is not also the NBNS: default
    /// the first of `[nbns] servers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbns: Option<Ipv4Addr>,
}

impl Default for NbddServerConfig {
    fn default() -> Self {
        let d = NbddConfig::default();
        NbddServerConfig {
            policy: RelayPolicySetting::Registered,
            allow: Vec::new(),
            max_fanout: d.max_fanout,
            relay_bytes_per_source_per_s: d.relay_bytes_per_source_per_s.rate,
            relay_burst_bytes: d.relay_bytes_per_source_per_s.burst,
            relay_bytes_total_per_s: d.relay_bytes_total_per_s.map_or(0.0, |r| r.rate),
            relay_total_burst_bytes: d.relay_bytes_total_per_s.map_or(0, |r| r.burst),
            peers: Vec::new(),
            query_answer: "members".into(),
            refragment: d.refragment,
            relay_broadcast: d.relay_broadcast,
            member_cache_ttl_s: d.member_cache_ttl.as_secs(),
            max_orphan_fragments: d.max_orphan_fragments,
            max_orphan_bytes: d.max_orphan_bytes,
            orphan_timeout_ms: d.orphan_timeout.as_millis() as u64,
            nbns: None,
        }
    }
}

impl NbnsServerConfig {
    /// The engine's configuration; `reply_factor` is `[limits] reply_amplification`, so
    /// that query answers are built to pass the reply gate (cut, not dropped).
    pub fn engine(
        &self,
        port: u16,
        node_port: u16,
        scope: &str,
        reply_factor: usize,
    ) -> NbnsConfig {
        NbnsConfig {
            port,
            node_port,
            max_names: self.max_names,
            max_group_members: self.max_group_members,
            max_names_per_source: self.max_names_per_source,
            max_groups_per_source: self.max_groups_per_source,
            min_ttl: self.min_ttl_s,
            max_ttl: self.max_ttl_s,
            default_ttl: self.default_ttl_s,
            group_answers: match self.group_answers {
                GroupAnswersSetting::Members => GroupAnswers::Members,
                GroupAnswersSetting::Broadcast => GroupAnswers::Broadcast,
            },
            registrations_per_source_per_s: (self.requests_per_source_per_s, self.requests_burst),
            scope: scope.to_owned(),
            max_reply_factor: reply_factor,
            ..NbnsConfig::default()
        }
    }

    pub fn check(&self, port: u16, node_port: u16) -> Result<(), (String, String)> {
        let k = |key: &str, m: String| (format!("nbns_server.{key}"), m);
        if !(10..=86_400).contains(&self.state_save_interval_s) {
            return Err(k(
                "state_save_interval_s",
                "must be within 10..=86400".into(),
            ));
        }
        if !(4096..=1 << 30).contains(&self.state_max_bytes) {
            return Err(k("state_max_bytes", "must be within 4096..=1 GiB".into()));
        }
        if self.statics.len() > self.max_names {
            return Err(k("static", "more static names than max_names".into()));
        }
        for s in &self.statics {
            s.entry("").map_err(|m| k("static", m))?;
            if s.addresses.len() > self.max_group_members {
                return Err(k(
                    "static",
                    format!("{:?}: more addresses than max_group_members", s.name),
                ));
            }
        }
        let factor = NbnsConfig::default().max_reply_factor; // [limits] is checked apart
        self.engine(port, node_port, "", factor)
            .validate()
            .map_err(|e| ("nbns_server".to_owned(), e.to_string()))
    }
}

impl NbddServerConfig {
    /// The engine's settings; `own`: our addresses on this interface.
    pub fn engine(
        &self,
        port: u16,
        scope: &str,
        own: Vec<Ipv4Addr>,
        max_datagram_length: usize,
    ) -> NbddConfig {
        NbddConfig {
            port,
            scope: scope.to_owned(),
            max_fanout: self.max_fanout,
            relay_bytes_per_source_per_s: Rate::new(
                self.relay_bytes_per_source_per_s,
                self.relay_burst_bytes,
            ),
            relay_bytes_total_per_s: (self.relay_bytes_total_per_s > 0.0)
                .then(|| Rate::new(self.relay_bytes_total_per_s, self.relay_total_burst_bytes)),
            policy: match self.policy {
                RelayPolicySetting::Registered => RelayPolicy::RegisteredSources,
                RelayPolicySetting::AllowList => {
                    RelayPolicy::AllowList(PrefixSet::from_nets(&self.allow))
                }
            },
            own_addresses: own,
            peer_nbdds: self.peers.clone(),
            member_cache_ttl: Duration::from_secs(self.member_cache_ttl_s),
            max_datagram_length,
            refragment: self.refragment,
            query_answer: if self.query_answer == "always" {
                QueryAnswer::AlwaysPositive
            } else {
                QueryAnswer::Members
            },
            relay_broadcast: self.relay_broadcast,
            max_orphan_fragments: self.max_orphan_fragments,
            max_orphan_bytes: self.max_orphan_bytes,
            orphan_timeout: Duration::from_millis(self.orphan_timeout_ms),
            ..NbddConfig::default()
        }
    }

    pub fn check(&self, port: u16) -> Result<(), (String, String)> {
        let k = |key: &str, m: String| (format!("nbdd_server.{key}"), m);
        if self.query_answer != "members" && self.query_answer != "always" {
            return Err(k(
                "query_answer",
                "expected \"members\" or \"always\"".into(),
            ));
        }
        if self.max_orphan_fragments > 4096 {
            return Err(k("max_orphan_fragments", "at most 4096".into()));
        }
        if self.max_orphan_bytes > 16 << 20 {
            return Err(k("max_orphan_bytes", "at most 16777216".into()));
        }
        if self.policy == RelayPolicySetting::AllowList && self.allow.is_empty() {
            return Err(k(
                "allow",
                "policy \"allow_list\" with an empty list relays for nobody".into(),
            ));
        }
        self.engine(port, "", Vec::new(), 576)
            .validate()
            .map_err(|e| k("", e.to_string()))
            .map_err(|(key, m)| (key.trim_end_matches('.').to_owned(), m))
    }
}

/// The NBDD a P/M/H node uses.
pub fn nbdd_target(
    client: &NbddClientConfig,
    nbns: &NbnsClientConfig,
    datagram_port: u16,
) -> Option<SocketAddrV4> {
    let ip = client.address.or_else(|| nbns.servers.first().copied())?;
    Some(SocketAddrV4::new(ip, client.port.unwrap_or(datagram_port)))
}

// ---------------------------------------------------------------------------------------
// The roles at run time (one per worker, i.e. per interface)

use nbdgm_base::Transmit;
use nbdgm_nbdd::{Nbdd, NbddAction, NbddEvent, Resolution};
use nbdgm_nbns::{NbnsEvent, NbnsServer};
use nbdgm_node::{LookupError, LookupTarget, Name, NameAddress, Node};
use nbdgm_wire::datagram::MsgType;
use nbdgm_wire::nbns::{NbnsHeader, Opcode};
use std::collections::HashMap;
use std::time::Instant;
use tracing::{debug, info, warn};

/// What an NBDD lookup through the node was for.
enum Asked {
    Members(Name),
    Source(Name, Ipv4Addr),
}

/// The NBNS and NBDD roles of one interface, and how packets reach them: the worker
/// shows every received packet to [`RoleRuntime::route_name`] /
/// [`RoleRuntime::route_datagram`], which take what is theirs and say whether the node
/// should see it too.
pub struct RoleRuntime {
    nbns: Option<NbnsServer>,
    nbns_state: Option<crate::nbns_state::StateSettings>,
    next_save: Option<Instant>,
    pub state_saves: u64,
    pub state_save_errors: u64,
    nbdd: Option<Nbdd>,
    /// Where the NBDD resolves members when there is no NBNS role here.
    member_server: Option<Ipv4Addr>,
    /// Node lookups made for the NBDD, by request id.
    asked: HashMap<u64, Asked>,
    /// Cap of `asked`.
    max_asked: usize,
    pub lookups_refused: u64,
}

/// Settings of the roles of one interface (fixed at start-up; a reload does not change
/// them).
#[derive(Debug, Clone, Default)]
pub struct RoleSettings {
    pub nbns: Option<NbnsConfig>,
    /// Static names of the NBNS role and its state file.
    pub nbns_static: Vec<nbdgm_nbns::StaticEntry>,
    pub nbns_state: Option<crate::nbns_state::StateSettings>,
    pub nbdd: Option<NbddConfig>,
    pub member_server: Option<Ipv4Addr>,
}

/// Why an interface's NBNS or NBDD role cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error(transparent)]
    Nbns(#[from] nbdgm_nbns::ConfigError),
    #[error(transparent)]
    Nbdd(#[from] nbdgm_nbdd::ConfigError),
}

impl RoleRuntime {
    pub fn new(s: RoleSettings, now: Instant) -> Result<RoleRuntime, RoleError> {
        let mut nbns = s.nbns.map(|c| NbnsServer::new(c, now)).transpose()?;
        if let Some(n) = &mut nbns {
            crate::nbns_state::start(n, now, &s.nbns_static, s.nbns_state.as_ref());
        }
        let state = nbns.as_ref().and(s.nbns_state);
        Ok(RoleRuntime {
            nbns,
            next_save: state.as_ref().map(|st| now + st.interval),
            nbns_state: state,
            state_saves: 0,
            state_save_errors: 0,
            nbdd: s.nbdd.map(|c| Nbdd::new(c, now)).transpose()?,
            member_server: s.member_server,
            asked: HashMap::new(),
            max_asked: 1024,
            lookups_refused: 0,
        })
    }

    /// No roles.
    pub fn none() -> RoleRuntime {
        RoleRuntime {
            nbns: None,
            nbns_state: None,
            next_save: None,
            state_saves: 0,
            state_save_errors: 0,
            nbdd: None,
            member_server: None,
            asked: HashMap::new(),
            max_asked: 1024,
            lookups_refused: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.nbns.is_none() && self.nbdd.is_none()
    }

    /// A packet on the name port. Returns true when the node should handle it too.
    /// Unicast requests to the NBNS (registration, refresh, release, multi-homed, and
    /// queries for names the node does not hold) are the NBNS's; responses go to both
    /// (the NBNS challenges owners); broadcasts are the node's.
    pub fn route_name(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        broadcast: bool,
        bytes: &[u8],
        node_holds: impl Fn(&Name) -> bool,
    ) -> bool {
        let Some(nbns) = &mut self.nbns else {
            return true;
        };
        if broadcast {
            return true;
        }
        let Ok(header) = NbnsHeader::new_checked(bytes) else {
            return true;
        };
        if header.is_response() {
            nbns.handle(now, from, bytes);
            return true;
        }
        match header.opcode() {
            Opcode::Registration
            | Opcode::Release
            | Opcode::Refresh(_)
            | Opcode::MultiHomedRegistration => {
                nbns.handle(now, from, bytes);
                false
            }
            Opcode::Query => {
                let p = nbdgm_wire::nbns::Packet::parse(bytes).ok();
                let q = p.as_ref().and_then(|p| p.questions.first());
                match q {
                    Some(q) if q.qtype == nbdgm_wire::nbns::TYPE_NB && !node_holds(&q.name) => {
                        nbns.handle(now, from, bytes);
                        false
                    }
                    _ => true,
                }
            }
            _ => true,
        }
    }

    /// A packet on the datagram port. Returns true when the node should handle it too.
    /// Unicast DIRECT_GROUP and BROADCAST datagrams are relayed by the NBDD (and still
    /// delivered here if we are a member); DATAGRAM QUERY REQUESTs are the NBDD's.
    pub fn route_datagram(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        broadcast: bool,
        bytes: &[u8],
    ) -> bool {
        let Some(nbdd) = &mut self.nbdd else {
            return true;
        };
        if broadcast {
            return true;
        }
        match MsgType::of(bytes) {
            Some(MsgType::DirectGroup | MsgType::Broadcast) => {
                nbdd.handle(now, from, bytes);
                true
            }
            Some(MsgType::QueryRequest) => {
                nbdd.handle(now, from, bytes);
                false
            }
            _ => true,
        }
    }

    /// Answer the NBDD's questions: from the NBNS role here, or by asking the name
    /// server through the node.
    pub fn drive(&mut self, now: Instant, node: &mut Node) {
        let Some(nbdd) = &mut self.nbdd else { return };
        let mut actions = Vec::new();
        while let Some(a) = nbdd.poll_action() {
            actions.push(a);
        }
        for a in actions {
            match (&self.nbns, a) {
                (Some(nbns), NbddAction::ResolveMembers(name)) => {
                    let r = if name.is_wildcard() {
                        Resolution::Members(nbns.all_addresses(now))
                    } else {
                        match nbns.lookup(&name, now) {
                            Some(e) => Resolution::Members(e.addresses),
                            None => Resolution::NotFound,
                        }
                    };
                    nbdd.members_resolved(now, &name, r);
                }
                (Some(nbns), NbddAction::VerifySource(name, ip)) => {
                    let ok = nbns
                        .lookup(&name, now)
                        .is_some_and(|e| e.addresses.contains(&ip));
                    nbdd.source_verified(now, &name, ip, ok);
                }
                (None, a) => {
                    let (name, asked) = match a {
                        NbddAction::ResolveMembers(n) => (n.clone(), Asked::Members(n)),
                        NbddAction::VerifySource(n, ip) => (n.clone(), Asked::Source(n, ip)),
                    };
                    let server = self.member_server;
                    let id = match server {
                        Some(s) if !name.is_wildcard() && self.asked.len() < self.max_asked => node
                            .lookup(now, name.clone(), LookupTarget::Unicast(s))
                            .ok(),
                        _ => None,
                    };
                    match id {
                        Some(id) => {
                            self.asked.insert(id.0, asked);
                        }
                        None => {
                            self.lookups_refused += 1;
                            match asked {
                                Asked::Members(n) => {
                                    nbdd.members_resolved(now, &n, Resolution::NotFound)
                                }
                                Asked::Source(n, ip) => nbdd.source_verified(now, &n, ip, false),
                            }
                        }
                    }
                }
            }
        }
    }

    /// A lookup finished; true when it was the NBDD's.
    pub fn lookup_done(
        &mut self,
        now: Instant,
        id: u64,
        result: &Result<Vec<NameAddress>, LookupError>,
    ) -> bool {
        let Some(asked) = self.asked.remove(&id) else {
            return false;
        };
        let Some(nbdd) = &mut self.nbdd else {
            return true;
        };
        match asked {
            Asked::Members(n) => {
                let r = match result {
                    Ok(a) => Resolution::Members(a.iter().map(|a| a.addr).collect()),
                    Err(LookupError::NotFound) => Resolution::NotFound,
                    Err(_) => Resolution::Failed,
                };
                nbdd.members_resolved(now, &n, r);
            }
            Asked::Source(n, ip) => {
                let ok = result
                    .as_ref()
                    .is_ok_and(|a| a.iter().any(|a| a.addr == ip));
                nbdd.source_verified(now, &n, ip, ok);
            }
        }
        true
    }

    /// The next packet the roles want sent; its `service` is the socket to send it
    /// from (Name: the NBNS's, Datagram: the NBDD's). Both send unicast only.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.nbns.as_mut().and_then(|n| n.poll_transmit()) {
            return Some(t);
        }
        self.nbdd.as_mut().and_then(|n| n.poll_transmit())
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let a = self.nbns.as_ref().and_then(|n| n.poll_timeout());
        let b = self.nbdd.as_ref().and_then(|n| n.poll_timeout());
        [a, b, self.next_save].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(n) = &mut self.nbns {
            n.handle_timeout(now);
        }
        if self.next_save.is_some_and(|t| t <= now) {
            self.save_state(now);
        }
        if let Some(n) = &mut self.nbdd {
            n.handle_timeout(now);
        }
    }

    /// Log what happened (`allow`: the worker's log rate limit for bulk events).
    pub fn log_events(&mut self, iface: Ipv4Addr, mut allow: impl FnMut() -> bool) {
        if let Some(n) = &mut self.nbns {
            while let Some(ev) = n.poll_event() {
                match ev {
                    NbnsEvent::Registered {
                        name,
                        ip,
                        group,
                        ttl,
                    } => {
                        info!(interface = %iface, %name, %ip, group, ttl, "nbns: registered")
                    }
                    NbnsEvent::Released { name, ip } => {
                        info!(interface = %iface, %name, %ip, "nbns: released")
                    }
                    other => {
                        if allow() {
                            debug!(interface = %iface, event = ?other, "nbns");
                        }
                    }
                }
            }
        }
        if let Some(n) = &mut self.nbdd {
            while let Some(ev) = n.poll_event() {
                match ev {
                    NbddEvent::Relayed { .. } | NbddEvent::QueryAnswered { .. } => {
                        if allow() {
                            debug!(interface = %iface, event = ?ev, "nbdd");
                        }
                    }
                    other => {
                        if allow() {
                            warn!(interface = %iface, event = ?other, "nbdd");
                        }
                    }
                }
            }
        }
    }

    /// Write the NBNS state file now (periodically and at shutdown); no-op without one.
    pub fn save_state(&mut self, now: Instant) {
        let (Some(n), Some(s)) = (&self.nbns, &self.nbns_state) else {
            return;
        };
        if crate::nbns_state::save(n, now, s) {
            self.state_saves += 1;
        } else {
            self.state_save_errors += 1;
        }
        self.next_save = Some(now + s.interval);
    }

    /// An operator's request to the NBNS role (local API `wins_*`); a change is saved
    /// to the state file at once.
    pub fn nbns_admin(
        &mut self,
        now: Instant,
        op: crate::nbns_state::NbnsAdmin,
    ) -> Result<crate::nbns_state::NbnsAdminReply, crate::worker::CmdError> {
        let Some(n) = &mut self.nbns else {
            return Err(crate::worker::CmdError::new(
                "unsupported",
                "this interface has no NBNS role",
            ));
        };
        let r = crate::nbns_state::admin(n, now, op)?;
        if matches!(r, crate::nbns_state::NbnsAdminReply::Changed { .. }) {
            self.save_state(now);
        }
        Ok(r)
    }

    pub fn stats(&self) -> serde_json::Value {
        serde_json::json!({
            "nbns": self.nbns.as_ref().map(|n| n.stats()),
            "nbns_state_saves": self.state_saves,
            "nbns_state_save_errors": self.state_save_errors,
            "nbdd": self.nbdd.as_ref().map(|n| n.stats()),
            "nbdd_lookups_refused": self.lookups_refused,
        })
    }
}
