//! The configuration file's schema: every section and key of `nbdgm.toml`
//! (documented in `docs/configuration.md`), its defaults, and the serde forms of
//! the typed values (CIDRs, allow lists, file modes).

use super::error::ValueError;
use crate::acl::Acl;
use crate::ratelimit::RateLimiter;
use ipnet::Ipv4Net;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::str::FromStr;

// ---------------------------------------------------------------------------
// The configuration
// ---------------------------------------------------------------------------

/// The whole configuration file. Every section and key is optional.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub node: NodeConfig,
    /// `[[interface]]` tables; empty means every up, non-loopback IPv4 interface.
    #[serde(rename = "interface", skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceConfig>,
    pub ports: PortsConfig,
    pub datagram: DatagramConfig,
    pub reassembly: ReassemblyConfig,
    pub name_service: NameServiceConfig,
    pub access: AccessConfig,
    pub limits: LimitsConfig,
    pub api: ApiConfig,
    pub privileges: PrivilegesConfig,
    pub log: LogConfig,
    pub messenger: crate::messenger::MessengerConfig,
    pub browser: crate::browse::BrowserSection,
    pub nbns: crate::roles::NbnsClientConfig,
    pub nbdd: crate::roles::NbddClientConfig,
    pub nbns_server: crate::roles::NbnsServerConfig,
    pub nbdd_server: crate::roles::NbddServerConfig,
}

/// `[node]`: who we are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// NetBIOS name; `None` means the host name, upper-cased, cut to 15 bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub aliases: Vec<String>,
    pub workgroup: String,
    /// NetBIOS scope (dotted, DNS-like); empty for none.
    pub scope: String,
    pub node_type: NodeType,
    /// Further names to register, `NAME<xx>` syntax.
    pub names: Vec<ExtraName>,
    /// Also register `NAME<20>` (and `ALIAS<20>`).
    pub server: bool,
    /// Also register `NAME<03>` (and `ALIAS<03>`).
    pub messenger: bool,
    /// The address our name registrations, answers and datagrams carry instead of the
    /// interface's (NAT, containers); `[[interface]] announce_address` overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub announce_address: Option<Ipv4Addr>,
    /// Server roles besides the node: `"nbns"`, `"nbdd"` or both (`["nbns", "nbdd"]`).
    #[serde(skip_serializing_if = "is_no_role")]
    pub role: crate::roles::Roles,
}

pub(super) fn is_no_role(r: &crate::roles::Roles) -> bool {
    *r == crate::roles::Roles::default()
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: None,
            aliases: Vec::new(),
            workgroup: "WORKGROUP".to_owned(),
            scope: String::new(),
            node_type: NodeType::B,
            names: Vec::new(),
            server: false,
            messenger: false,
            announce_address: None,
            role: crate::roles::Roles::default(),
        }
    }
}

/// RFC 1001 node types (and Microsoft's H); P and M need `[nbns] servers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    #[default]
    B,
    P,
    M,
    H,
}

impl NodeType {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::B => "b",
            NodeType::P => "p",
            NodeType::M => "m",
            NodeType::H => "h",
        }
    }
}

impl FromStr for NodeType {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s.to_ascii_lowercase().as_str() {
            "b" => Ok(NodeType::B),
            "p" => Ok(NodeType::P),
            "m" => Ok(NodeType::M),
            "h" => Ok(NodeType::H),
            _ => Err(ValueError::NodeTypeName),
        }
    }
}

/// One entry of `node.names`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraName {
    /// `NAME<xx>`, suffix in hex (`<00>` when omitted).
    pub name: String,
    #[serde(default)]
    pub group: bool,
}

/// One `[[interface]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    /// Our address and prefix length, `198.51.100.10/24`.
    #[serde(deserialize_with = "de_iface_net")]
    pub address: Ipv4Net,
    /// Broadcast address; default: the subnet-directed broadcast of `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<Ipv4Addr>,
    /// The address this interface's packets carry instead of `address` (NAT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce_address: Option<Ipv4Addr>,
}

impl InterfaceConfig {
    /// The broadcast address in use.
    pub fn broadcast_addr(&self) -> Ipv4Addr {
        self.broadcast.unwrap_or_else(|| self.address.broadcast())
    }
}

/// An interface the daemon serves, resolved from the file or the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub net: Ipv4Net,
    pub broadcast: Ipv4Addr,
    /// `announce_address` of the interface, else of `[node]`.
    pub announce_address: Option<Ipv4Addr>,
}

/// `[ports]`: UDP ports (change them for unprivileged tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortsConfig {
    pub name: u16,
    pub datagram: u16,
}

impl Default for PortsConfig {
    fn default() -> Self {
        PortsConfig {
            name: 137,
            datagram: 138,
        }
    }
}

/// `[datagram]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatagramConfig {
    /// MAX_DATAGRAM_LENGTH: IP datagram size above which we fragment on send.
    pub max_length: usize,
    /// FRAGMENT_TO.
    pub fragment_timeout_ms: u64,
    /// Answer a datagram for a name we don't hold with DATAGRAM ERROR 0x82.
    pub error_on_unknown_name: bool,
    /// What to do when the header's SOURCE_IP differs from the UDP source.
    pub source_ip_mismatch: SourceIpPolicy,
}

impl Default for DatagramConfig {
    fn default() -> Self {
        DatagramConfig {
            max_length: 576,
            fragment_timeout_ms: 2000,
            error_on_unknown_name: true,
            source_ip_mismatch: SourceIpPolicy::Log,
        }
    }
}

/// Policy for SOURCE_IP ≠ UDP source address: the engine's own type (same TOML spelling).
pub use nbdgm_node::SourceIpPolicy;

/// `[reassembly]`: caps of the fragment table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReassemblyConfig {
    /// Incomplete datagrams held at once; 0 turns reassembly off.
    pub max_pending: usize,
    pub max_bytes_per_source: usize,
    pub max_total_bytes: usize,
    /// Largest reassembled datagram.
    pub max_datagram_bytes: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            max_pending: 256,
            max_bytes_per_source: 16384,
            max_total_bytes: 1 << 20,
            max_datagram_bytes: 65536,
        }
    }
}

/// `[name_service]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NameServiceConfig {
    /// Answer NODE STATUS requests.
    pub node_status: bool,
    /// BCAST_REQ_RETRY_COUNT.
    pub retry_count: u32,
    /// BCAST_REQ_RETRY_TIMEOUT.
    pub retry_interval_ms: u64,
    /// CONFLICT_TIMER.
    pub conflict_timer_ms: u64,
    /// TTL sent in registrations and positive responses (seconds).
    pub ttl: u32,
    /// Name cache cap; 0 disables the cache.
    pub cache_entries: usize,
    pub cache_ttl_s: u64,
}

impl Default for NameServiceConfig {
    fn default() -> Self {
        NameServiceConfig {
            node_status: true,
            retry_count: 3,
            retry_interval_ms: 250,
            conflict_timer_ms: 1000,
            ttl: 300_000,
            cache_entries: 1024,
            cache_ttl_s: 600,
        }
    }
}

/// `[access]`: who may talk to us.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    pub name_service: AccessList,
    pub datagram: AccessList,
    pub api: ApiAccess,
}

/// `allow`/`deny` for a UDP port.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessList {
    pub allow: AllowList,
    #[serde(deserialize_with = "de_cidr_list")]
    pub deny: Vec<Ipv4Net>,
}

impl AccessList {
    /// The list in force; `auto` means the subnets of `own` (our interfaces).
    pub fn acl(&self, own: &[Ipv4Net]) -> Acl {
        match &self.allow {
            AllowList::Auto => Acl::new(own.to_vec(), self.deny.clone()),
            AllowList::Any => Acl::allow_any(self.deny.clone()),
            AllowList::List(l) => Acl::new(l.clone(), self.deny.clone()),
        }
    }
}

/// `[access.api]`: the TCP listener's address lists and the Unix socket's peers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiAccess {
    /// For `api.tcp`; `auto` means loopback only (127.0.0.0/8).
    pub allow: AllowList,
    #[serde(deserialize_with = "de_cidr_list")]
    pub deny: Vec<Ipv4Net>,
    /// Unix-socket peers (SO_PEERCRED uid, or primary/supplementary gid); both
    /// empty: anyone who can open the socket. Root is not implicitly allowed.
    pub allow_uids: Vec<u32>,
    pub allow_gids: Vec<u32>,
}

impl ApiAccess {
    /// The list for TCP clients; `auto` is loopback only.
    pub fn acl(&self) -> Acl {
        let lo = Ipv4Net::new(Ipv4Addr::LOCALHOST, 8).unwrap_or_default();
        match &self.allow {
            AllowList::Auto => Acl::new(vec![lo], self.deny.clone()),
            AllowList::Any => Acl::allow_any(self.deny.clone()),
            AllowList::List(l) => Acl::new(l.clone(), self.deny.clone()),
        }
    }
}

/// An allow list: `"auto"` (resolved at run time), `"any"`, or CIDRs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowList {
    /// The interfaces' own subnets (loopback only for the API).
    #[default]
    Auto,
    /// Every address.
    Any,
    /// These prefixes; an empty list admits nobody.
    List(Vec<Ipv4Net>),
}

/// `[limits]`: rates and caps against floods and amplification.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Packets accepted per source address.
    pub rx_per_source: RateConfig,
    /// Replies (responses, errors) sent per destination address.
    pub replies_per_source: RateConfig,
    /// Cap of each per-source table.
    pub max_sources: usize,
    /// Reply bytes allowed per request byte: per answer, and in all per destination
    /// (the reply gate).
    pub reply_amplification: u32,
    /// Drop log lines per second (the rest are counted).
    pub drop_log_per_s: u32,
    /// Names the node may hold.
    pub max_names: usize,
    /// Receive moderation (µs): while datagrams keep arriving faster than a worker
    /// reads them one or two at a time, it waits this long before its next read, so
    /// that the read takes a batch. 0 turns it off.
    pub rx_moderation_us: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            rx_per_source: RateConfig {
                rate: 200.0,
                burst: 400,
            },
            replies_per_source: RateConfig {
                rate: 50.0,
                burst: 100,
            },
            max_sources: 4096,
            // Issue 12: below nmbd's 4.6, and a 5-name node status fits (3.9x).
            reply_amplification: 4,
            drop_log_per_s: 5,
            max_names: 256,
            rx_moderation_us: 50,
        }
    }
}

/// A token bucket: `rate` packets per second, bursts of `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    pub rate: f64,
    pub burst: u32,
}

impl RateConfig {
    pub fn limiter(&self, max_sources: usize) -> RateLimiter {
        RateLimiter::new(self.rate, self.burst, max_sources)
    }
}

/// `[api]`: the local client API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub socket: PathBuf,
    /// Socket file mode, an octal string.
    pub mode: FileMode,
    /// Group owning the socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub max_clients: usize,
    /// Events queued per client before it is dropped as too slow.
    pub queue_per_client: usize,
    /// Bytes queued per client: events beyond are dropped (issue 12 item 6).
    pub queue_bytes_per_client: usize,
    /// Bytes queued to all clients together: events beyond are dropped.
    pub queue_bytes_total: usize,
    /// Clients at once per uid (Unix socket) or per address (TCP).
    pub max_clients_per_peer: usize,
    /// Optional TCP listener (IPv4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<SocketAddrV4>,
    /// File holding the secret a TCP client sends in `hello`; required with `tcp`,
    /// readable by the daemon's user only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_token_file: Option<PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            socket: PathBuf::from("/run/nbdgm/api.sock"),
            mode: FileMode(0o660),
            group: None,
            max_clients: 64,
            queue_per_client: 4096,
            queue_bytes_per_client: 4 << 20,
            queue_bytes_total: 64 << 20,
            max_clients_per_peer: 32,
            tcp: None,
            tcp_token_file: None,
        }
    }
}

/// A file mode, written as an octal string (`"0660"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl FromStr for FileMode {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let digits = s.strip_prefix("0o").unwrap_or(s);
        let bad = || ValueError::FileModeSyntax(s.to_owned());
        if digits.is_empty()
            || digits.len() > 4
            || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
        {
            return Err(bad());
        }
        let v = u32::from_str_radix(digits, 8).map_err(|_| bad())?;
        if v > 0o777 {
            return Err(ValueError::FileModeBits(s.to_owned()));
        }
        Ok(FileMode(v))
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// `[privileges]`: whom to become after binding, when started as root.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivilegesConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter: `info`, `debug`, `nbdgm_node=trace,info`, ...
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

/// Text or JSON lines (the logging set-up lives in `nbdgm-runtime`).
pub use nbdgm_runtime::LogFormat;

pub(super) fn check_announce_address(a: Ipv4Addr) -> Result<(), ValueError> {
    if a.is_unspecified() || a.is_multicast() || a.is_broadcast() {
        return Err(ValueError::NodeAddress(a));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Serde helpers for the typed values
// ---------------------------------------------------------------------------

/// Parse `a.b.c.d/len`; without `/len`, a host (`/32`) unless `require_prefix`.
pub fn parse_cidr(s: &str, require_prefix: bool) -> Result<Ipv4Net, ValueError> {
    let t = s.trim();
    let (addr, len) = match t.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (t, None),
    };
    let ip: Ipv4Addr = addr.parse().map_err(|_| ValueError::CidrAddress {
        input: s.to_owned(),
        addr: addr.to_owned(),
    })?;
    let len = match len {
        Some(l) => {
            let n: u32 = l.parse().map_err(|_| ValueError::PrefixSyntax {
                input: s.to_owned(),
                len: l.to_owned(),
            })?;
            u8::try_from(n)
                .ok()
                .filter(|&n| n <= 32)
                .ok_or_else(|| ValueError::PrefixTooLong {
                    input: s.to_owned(),
                    len: n,
                })?
        }
        None if require_prefix => {
            return Err(ValueError::PrefixMissing {
                input: s.to_owned(),
                ip,
            })
        }
        None => 32,
    };
    Ipv4Net::new(ip, len).map_err(|e| ValueError::Cidr {
        input: s.to_owned(),
        reason: e.to_string(),
    })
}

pub(super) struct CidrVisitor {
    require_prefix: bool,
}

impl Visitor<'_> for CidrVisitor {
    type Value = Ipv4Net;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an IPv4 prefix such as \"192.0.2.0/24\"")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Ipv4Net, E> {
        parse_cidr(v, self.require_prefix).map_err(E::custom)
    }
}

/// One list element, so that an error points at the element itself.
pub(super) struct Cidr(Ipv4Net);

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CidrVisitor {
            require_prefix: false,
        })
        .map(Cidr)
    }
}

pub(super) fn de_iface_net<'de, D: Deserializer<'de>>(d: D) -> Result<Ipv4Net, D::Error> {
    d.deserialize_str(CidrVisitor {
        require_prefix: true,
    })
}

pub(super) fn de_cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Ipv4Net>, D::Error> {
    Vec::<Cidr>::deserialize(d).map(|v| v.into_iter().map(|c| c.0).collect())
}

impl Serialize for AllowList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AllowList::Auto => s.serialize_str("auto"),
            AllowList::Any => s.serialize_str("any"),
            AllowList::List(l) => s.collect_seq(l.iter().map(|n| n.to_string())),
        }
    }
}

impl<'de> Deserialize<'de> for AllowList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AllowList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"auto\", \"any\" or a list of IPv4 prefixes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AllowList, E> {
                match v {
                    "auto" => Ok(AllowList::Auto),
                    "any" => Ok(AllowList::Any),
                    _ => Err(E::custom(format!(
                        "{v:?}: expected \"auto\", \"any\" or a list of prefixes such as [\"192.0.2.0/24\"]"
                    ))),
                }
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<AllowList, A::Error> {
                let mut out = Vec::new();
                while let Some(Cidr(n)) = seq.next_element()? {
                    out.push(n);
                }
                Ok(AllowList::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FileMode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an octal file mode string such as \"0660\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileMode, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}
