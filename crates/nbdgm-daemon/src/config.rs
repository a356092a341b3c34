//! `nbdgm serve` configuration: the TOML file and its defaults, command-line
//! overrides, and validation. Every error names the key
//! (`access.datagram.allow[1]`) and, for a file, the line and column.
//!
//! Positions: `toml` errors carry a byte span, and validation runs on the plain
//! [`Config`]; both are mapped to a key path and a line through a tree of value
//! spans ([`locate`]) built from the same text, so the public structs stay free
//! of span wrappers.

use crate::acl::Acl;
use crate::ratelimit::RateLimiter;
use ipnet::Ipv4Net;
use nbdgm_wire::Name;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where `nbdgm serve` looks without `--config`.
pub const DEFAULT_PATH: &str = "/etc/nbdgm/nbdgm.toml";
/// Largest configuration file read (bytes).
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Node name used when the host name is unusable.
pub const FALLBACK_NODE_NAME: &str = "NBDGM";

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
    pub nbns: crate::routed::NbnsClientConfig,
    pub nbdd: crate::routed::NbddClientConfig,
    pub nbns_server: crate::routed::NbnsServerConfig,
    pub nbdd_server: crate::routed::NbddServerConfig,
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
    pub role: crate::routed::Roles,
}

fn is_no_role(r: &crate::routed::Roles) -> bool {
    *r == crate::routed::Roles::default()
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
            role: crate::routed::Roles::default(),
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
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "b" => Ok(NodeType::B),
            "p" => Ok(NodeType::P),
            "m" => Ok(NodeType::M),
            "h" => Ok(NodeType::H),
            _ => Err("expected one of b, p, m, h".to_owned()),
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
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let digits = s.strip_prefix("0o").unwrap_or(s);
        let bad = || format!("{s:?} is not an octal file mode such as \"0660\"");
        if digits.is_empty()
            || digits.len() > 4
            || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
        {
            return Err(bad());
        }
        let v = u32::from_str_radix(digits, 8).map_err(|_| bad())?;
        if v > 0o777 {
            return Err(format!(
                "{s:?}: only permission bits (up to 0777) are allowed"
            ));
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected text or json".to_owned()),
        }
    }
}

fn check_announce_address(a: Ipv4Addr) -> Result<(), String> {
    if a.is_unspecified() || a.is_multicast() || a.is_broadcast() {
        return Err(format!("{a} cannot be a node's address"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Serde helpers for the typed values
// ---------------------------------------------------------------------------

/// Parse `a.b.c.d/len`; without `/len`, a host (`/32`) unless `require_prefix`.
pub fn parse_cidr(s: &str, require_prefix: bool) -> Result<Ipv4Net, String> {
    let t = s.trim();
    let (addr, len) = match t.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (t, None),
    };
    let ip: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("{s:?}: {addr:?} is not an IPv4 address"))?;
    let len = match len {
        Some(l) => {
            let n: u32 = l
                .parse()
                .map_err(|_| format!("{s:?}: prefix length {l:?} is not a number"))?;
            u8::try_from(n)
                .ok()
                .filter(|&n| n <= 32)
                .ok_or_else(|| format!("{s:?}: prefix length {n} is larger than 32"))?
        }
        None if require_prefix => {
            return Err(format!(
                "{s:?} needs a prefix length, as in {ip}/24, to know the subnet"
            ))
        }
        None => 32,
    };
    Ipv4Net::new(ip, len).map_err(|e| format!("{s:?}: {e}"))
}

struct CidrVisitor {
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
struct Cidr(Ipv4Net);

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CidrVisitor {
            require_prefix: false,
        })
        .map(Cidr)
    }
}

fn de_iface_net<'de, D: Deserializer<'de>>(d: D) -> Result<Ipv4Net, D::Error> {
    d.deserialize_str(CidrVisitor {
        require_prefix: true,
    })
}

fn de_cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Ipv4Net>, D::Error> {
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

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// What kind of mistake a file error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not TOML.
    Syntax,
    /// A key this version does not know.
    UnknownKey,
    /// A value of the wrong type, an unknown variant, a missing required key.
    Type,
    /// A well-typed value that is not acceptable (bad name, prefix > 32, ...).
    Value,
}

/// A configuration error, with the key and (for files) the position.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A problem in configuration text. `line`/`column` are 1-based, 0 if unknown.
    #[error("{}", fmt_file_error(file.as_deref(), key, *line, *column, message))]
    File {
        file: Option<PathBuf>,
        key: String,
        line: usize,
        column: usize,
        kind: ErrorKind,
        message: String,
    },
    /// A problem in a command-line override.
    #[error("{flag} {value:?}: {message}")]
    Flag {
        flag: &'static str,
        value: String,
        message: String,
    },
    /// A problem in a configuration built in code (no text to point at).
    #[error("{key}: {message}")]
    Value { key: String, message: String },
}

fn fmt_file_error(
    file: Option<&Path>,
    key: &str,
    line: usize,
    column: usize,
    message: &str,
) -> String {
    let mut s = file.map_or_else(|| "<config>".to_owned(), |p| p.display().to_string());
    if line > 0 {
        s.push_str(&format!(":{line}:{column}"));
    }
    if !key.is_empty() {
        s.push_str(&format!(": {key}"));
    }
    s.push_str(": ");
    s.push_str(message);
    s
}

impl ConfigError {
    /// The key path (`interface[0].address`) or flag (`--name`) at fault.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::File { key, .. } | ConfigError::Value { key, .. } => Some(key),
            ConfigError::Flag { flag, .. } => Some(flag),
        }
    }

    /// The 1-based line in the file, if known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::File { line, .. } if *line > 0 => Some(*line),
            _ => None,
        }
    }

    /// The 1-based column in the file, if known.
    pub fn column(&self) -> Option<usize> {
        match self {
            ConfigError::File { column, line, .. } if *line > 0 => Some(*column),
            _ => None,
        }
    }

    /// The kind of a file error.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ConfigError::File { kind, .. } => Some(*kind),
            ConfigError::Value { .. } => Some(ErrorKind::Value),
            _ => None,
        }
    }
}

/// A validation failure: key path and message.
struct Issue {
    key: String,
    message: String,
}

fn issue(key: impl Into<String>, message: impl Into<String>) -> Issue {
    Issue {
        key: key.into(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------
// Loading and validation
// ---------------------------------------------------------------------------

impl FromStr for Config {
    type Err = ConfigError;
    /// Parse and validate configuration text (errors say `<config>:line:col`).
    fn from_str(text: &str) -> Result<Self, ConfigError> {
        Config::parse_text(text, None)
    }
}

impl Config {
    /// Read, parse and validate a file (at most [`MAX_FILE_BYTES`]).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let io_err = |source| ConfigError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(io_err)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(io_err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {MAX_FILE_BYTES} bytes"),
            )));
        }
        Config::parse_text(&text, Some(path))
    }

    /// Parse and validate text; `file` names it in errors.
    pub fn parse_text(text: &str, file: Option<&Path>) -> Result<Config, ConfigError> {
        let file_error = |span: Option<std::ops::Range<usize>>, key: String, kind, message| {
            let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
            ConfigError::File {
                file: file.map(Path::to_owned),
                key,
                line,
                column,
                kind,
                message,
            }
        };
        // The span tree accepts any TOML, so its failure is a syntax error.
        let tree = match toml::from_str::<locate::Root>(text) {
            Ok(t) => t,
            Err(e) => {
                let key = e
                    .span()
                    .map(|s| locate::guess_key(text, s.start))
                    .unwrap_or_default();
                let message = e.message().trim().replace('\n', "; ");
                return Err(file_error(e.span(), key, ErrorKind::Syntax, message));
            }
        };
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_owned();
            let kind = if message.starts_with("unknown field") {
                ErrorKind::UnknownKey
            } else {
                ErrorKind::Type
            };
            let mut key = e
                .span()
                .and_then(|s| tree.path_at(text, s.start))
                .unwrap_or_default();
            // An unknown key's position is its table; name the key itself.
            if let Some(field) = message
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
            {
                if key != field && !key.ends_with(&format!(".{field}")) {
                    key = if key.is_empty() {
                        field.to_owned()
                    } else {
                        format!("{key}.{field}")
                    };
                }
            }
            file_error(e.span(), key, kind, message)
        })?;
        cfg.check_all().map_err(|i| {
            let span = tree.span_of(&i.key);
            file_error(span, i.key, ErrorKind::Value, i.message)
        })?;
        Ok(cfg)
    }

    /// Validate a configuration built or changed in code.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_all().map_err(|i| ConfigError::Value {
            key: i.key,
            message: i.message,
        })
    }

    fn check_all(&self) -> Result<(), Issue> {
        let n = &self.node;
        if let Some(name) = &n.name {
            check_netbios_name(name).map_err(|m| issue("node.name", m))?;
        }
        for (i, a) in n.aliases.iter().enumerate() {
            check_netbios_name(a).map_err(|m| issue(format!("node.aliases[{i}]"), m))?;
        }
        check_netbios_name(&n.workgroup).map_err(|m| issue("node.workgroup", m))?;
        check_scope(&n.scope).map_err(|m| issue("node.scope", m))?;
        check_node_type(n.node_type, &self.nbns).map_err(|m| issue("node.node_type", m))?;
        for (i, ip) in self.nbns.servers.iter().enumerate() {
            if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
                return Err(issue(
                    format!("nbns.servers[{i}]"),
                    format!("{ip} cannot be a name server"),
                ));
            }
        }
        if self.nbns.port == 0 {
            return Err(issue("nbns.port", "port 0 is not allowed"));
        }
        if self.nbns.refresh_min_s == 0 {
            return Err(issue("nbns.refresh_min_s", "must be at least 1"));
        }
        if let Some(a) = self.nbdd.address {
            if a.is_unspecified() || a.is_multicast() || a.is_broadcast() {
                return Err(issue("nbdd.address", format!("{a} cannot be an NBDD")));
            }
        }
        if self.nbdd.port == Some(0) {
            return Err(issue("nbdd.port", "port 0 is not allowed"));
        }
        if n.role.nbns {
            self.nbns_server
                .check(self.ports.name, self.ports.name)
                .map_err(|(k, m)| issue(k, m))?;
        }
        if n.role.nbdd {
            self.nbdd_server
                .check(self.ports.datagram)
                .map_err(|(k, m)| issue(k, m))?;
            if !n.role.nbns && self.nbdd_server.nbns.is_none() && self.nbns.servers.is_empty() {
                return Err(issue(
                    "node.role",
                    "the NBDD needs group members: add role \"nbns\", nbdd_server.nbns or [nbns] servers",
                ));
            }
        }
        for (i, x) in n.names.iter().enumerate() {
            parse_extra_name(&x.name).map_err(|m| issue(format!("node.names[{i}].name"), m))?;
        }
        for (i, itf) in self.interfaces.iter().enumerate() {
            check_interface(itf.address)
                .map_err(|m| issue(format!("interface[{i}].address"), m))?;
            if self.interfaces[..i]
                .iter()
                .any(|o| o.address.addr() == itf.address.addr())
            {
                return Err(issue(
                    format!("interface[{i}].address"),
                    format!("{} is listed twice", itf.address.addr()),
                ));
            }
            if let Some(b) = itf.broadcast {
                if b.is_unspecified() || b.is_multicast() {
                    return Err(issue(
                        format!("interface[{i}].broadcast"),
                        format!("{b} cannot be a broadcast address"),
                    ));
                }
            }
        }
        if let Some(a) = n.announce_address {
            check_announce_address(a).map_err(|m| issue("node.announce_address", m))?;
        }
        for (i, itf) in self.interfaces.iter().enumerate() {
            if let Some(a) = itf.announce_address {
                check_announce_address(a)
                    .map_err(|m| issue(format!("interface[{i}].announce_address"), m))?;
            }
        }
        self.browser.check().map_err(|(k, m)| issue(k, m))?;
        self.messenger
            .validate()
            .map_err(|m| issue("messenger", m))?;
        let p = &self.ports;
        for (key, port) in [("ports.name", p.name), ("ports.datagram", p.datagram)] {
            if port == 0 {
                return Err(issue(key, "port 0 is not allowed"));
            }
        }
        if p.name == p.datagram {
            return Err(issue(
                "ports.datagram",
                format!("the same as ports.name ({})", p.name),
            ));
        }
        let d = &self.datagram;
        in_range("datagram.max_length", d.max_length, 128, 65535)?;
        in_range(
            "datagram.fragment_timeout_ms",
            d.fragment_timeout_ms,
            1,
            600_000,
        )?;
        let r = &self.reassembly;
        in_range("reassembly.max_pending", r.max_pending, 0, 1_000_000)?;
        in_range("reassembly.max_total_bytes", r.max_total_bytes, 0, 1 << 30)?;
        if r.max_bytes_per_source > r.max_total_bytes {
            return Err(issue(
                "reassembly.max_bytes_per_source",
                format!(
                    "{} is larger than reassembly.max_total_bytes ({})",
                    r.max_bytes_per_source, r.max_total_bytes
                ),
            ));
        }
        in_range(
            "reassembly.max_datagram_bytes",
            r.max_datagram_bytes,
            1,
            1 << 20,
        )?;
        let ns = &self.name_service;
        in_range("name_service.retry_count", ns.retry_count, 1, 10)?;
        in_range(
            "name_service.retry_interval_ms",
            ns.retry_interval_ms,
            10,
            60_000,
        )?;
        in_range(
            "name_service.conflict_timer_ms",
            ns.conflict_timer_ms,
            1,
            600_000,
        )?;
        in_range("name_service.cache_entries", ns.cache_entries, 0, 1_000_000)?;
        let l = &self.limits;
        for (key, rc) in [
            ("limits.rx_per_source", l.rx_per_source),
            ("limits.replies_per_source", l.replies_per_source),
        ] {
            if !(rc.rate.is_finite() && rc.rate > 0.0) {
                return Err(issue(
                    format!("{key}.rate"),
                    format!(
                        "must be a positive number of packets per second, not {}",
                        rc.rate
                    ),
                ));
            }
            if rc.burst == 0 {
                return Err(issue(format!("{key}.burst"), "must be at least 1"));
            }
        }
        in_range("limits.max_sources", l.max_sources, 1, 1_000_000)?;
        in_range("limits.reply_amplification", l.reply_amplification, 1, 1000)?;
        in_range("limits.max_names", l.max_names, 1, 10_000)?;
        let names = self.names().len();
        if names > l.max_names {
            return Err(issue(
                "limits.max_names",
                format!(
                    "the node would register {names} names, more than limits.max_names = {}",
                    l.max_names
                ),
            ));
        }
        let a = &self.api;
        if a.socket.as_os_str().is_empty() {
            return Err(issue("api.socket", "must not be empty"));
        }
        in_range("api.max_clients", a.max_clients, 1, 65_536)?;
        in_range("api.queue_per_client", a.queue_per_client, 1, 1 << 20)?;
        in_range(
            "api.queue_bytes_per_client",
            a.queue_bytes_per_client,
            64 << 10,
            1 << 30,
        )?;
        in_range(
            "api.queue_bytes_total",
            a.queue_bytes_total,
            64 << 10,
            1 << 32,
        )?;
        in_range(
            "api.max_clients_per_peer",
            a.max_clients_per_peer,
            1,
            65_536,
        )?;
        if a.group.as_deref() == Some("") {
            return Err(issue("api.group", "must not be empty"));
        }
        if let Some(t) = a.tcp {
            if t.port() == 0 {
                return Err(issue("api.tcp", "port 0 is not allowed"));
            }
            if a.tcp_token_file.is_none() {
                return Err(issue(
                    "api.tcp_token_file",
                    "a TCP API needs a token file (every local user can reach a TCP port): \
                     put a secret in a file only the daemon's user can read and name it here",
                ));
            }
        }
        let pr = &self.privileges;
        if pr.user.as_deref() == Some("") {
            return Err(issue("privileges.user", "must not be empty"));
        }
        if let Some(g) = &pr.group {
            if g.is_empty() {
                return Err(issue("privileges.group", "must not be empty"));
            }
            if pr.user.is_none() {
                return Err(issue(
                    "privileges.group",
                    "needs privileges.user (the group is set when dropping to that user)",
                ));
            }
        }
        check_log_level(&self.log.level).map_err(|m| issue("log.level", m))?;
        Ok(())
    }

    /// Apply command-line overrides, validated like the file; errors name the flag.
    pub fn apply(&mut self, o: &Overrides) -> Result<(), ConfigError> {
        fn flag(flag: &'static str, value: &str, message: String) -> ConfigError {
            ConfigError::Flag {
                flag,
                value: value.to_owned(),
                message,
            }
        }
        if !o.interfaces.is_empty() {
            let mut list = Vec::with_capacity(o.interfaces.len());
            for s in &o.interfaces {
                let net = parse_cidr(s, true)
                    .and_then(|n| check_interface(n).map(|()| n))
                    .map_err(|m| flag("--interface", s, m))?;
                if list
                    .iter()
                    .any(|i: &InterfaceConfig| i.address.addr() == net.addr())
                {
                    return Err(flag("--interface", s, "given twice".to_owned()));
                }
                list.push(InterfaceConfig {
                    address: net,
                    broadcast: None,
                    announce_address: None,
                });
            }
            self.interfaces = list;
        }
        if let Some(name) = &o.name {
            check_netbios_name(name).map_err(|m| flag("--name", name, m))?;
            self.node.name = Some(name.clone());
        }
        if !o.aliases.is_empty() {
            for a in &o.aliases {
                check_netbios_name(a).map_err(|m| flag("--alias", a, m))?;
            }
            self.node.aliases = o.aliases.clone();
        }
        if let Some(w) = &o.workgroup {
            check_netbios_name(w).map_err(|m| flag("--workgroup", w, m))?;
            self.node.workgroup = w.clone();
        }
        if let Some(s) = &o.scope {
            check_scope(s).map_err(|m| flag("--scope", s, m))?;
            self.node.scope = s.clone();
        }
        if let Some(t) = &o.node_type {
            let nt: NodeType = t.parse().map_err(|m| flag("--node-type", t, m))?;
            check_node_type(nt, &self.nbns).map_err(|m| flag("--node-type", t, m))?;
            self.node.node_type = nt;
        }
        if let Some(p) = &o.api_socket {
            if p.as_os_str().is_empty() {
                return Err(flag("--api-socket", "", "must not be empty".to_owned()));
            }
            self.api.socket = p.clone();
        }
        if let Some(f) = &o.log_format {
            self.log.format = f.parse().map_err(|m| flag("--log-format", f, m))?;
        }
        self.validate()
    }

    /// The NetBIOS name in use: `node.name`, else the host name.
    pub fn node_name(&self) -> String {
        match &self.node.name {
            Some(n) => n.to_ascii_uppercase(),
            None => default_node_name(),
        }
    }

    /// The names to register, `(name, group)`, scope applied, without duplicates:
    /// NAME<00>, NAME<03> (messenger), NAME<20> (server), the same for each alias,
    /// WORKGROUP<00> (group), then `node.names`. (The browser registers
    /// WORKGROUP<1E>, <1D> and MSBROWSE itself as its role requires.)
    pub fn names(&self) -> Vec<(Name, bool)> {
        let n = &self.node;
        let mut wanted: Vec<(Name, bool)> = Vec::new();
        let mut push = |name: Option<Name>, group: bool| {
            // Invalid entries are reported by validation; here they are skipped.
            if let Some(name) = name.and_then(|x| x.with_scope(&n.scope).ok()) {
                if !wanted.iter().any(|(w, _)| *w == name) {
                    wanted.push((name, group));
                }
            }
        };
        let own = std::iter::once(self.node_name()).chain(n.aliases.iter().cloned());
        for host in own {
            push(Name::new(&host, 0x00).ok(), false);
            if n.messenger {
                push(Name::new(&host, 0x03).ok(), false);
            }
            if n.server {
                push(Name::new(&host, 0x20).ok(), false);
            }
        }
        push(Name::new(&n.workgroup, 0x00).ok(), true);
        for x in &n.names {
            push(parse_extra_name(&x.name).ok(), x.group);
        }
        wanted
    }

    /// The interfaces to serve: `[[interface]]`, else every up, non-loopback IPv4
    /// interface of the system.
    pub fn resolve_interfaces(&self) -> io::Result<Vec<Interface>> {
        if !self.interfaces.is_empty() {
            return Ok(self
                .interfaces
                .iter()
                .map(|i| Interface {
                    net: i.address,
                    broadcast: i.broadcast_addr(),
                    announce_address: i.announce_address.or(self.node.announce_address),
                })
                .collect());
        }
        let found: Vec<Interface> = system_interfaces()?
            .into_iter()
            .filter_map(|(ip, len, bcast)| {
                let net = Ipv4Net::new(ip, len).ok()?;
                Some(Interface {
                    net,
                    broadcast: bcast.unwrap_or_else(|| net.broadcast()),
                    announce_address: self.node.announce_address,
                })
            })
            .collect();
        if found.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no up, non-loopback IPv4 interface; add an [[interface]] or --interface",
            ));
        }
        Ok(found)
    }
}

/// Command-line overrides of `nbdgm serve`. Lists replace the file's lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--interface IP/PREFIX` (repeatable).
    pub interfaces: Vec<String>,
    /// `--name`.
    pub name: Option<String>,
    /// `--alias` (repeatable).
    pub aliases: Vec<String>,
    /// `--workgroup`.
    pub workgroup: Option<String>,
    /// `--scope`.
    pub scope: Option<String>,
    /// `--node-type`.
    pub node_type: Option<String>,
    /// `--api-socket`.
    pub api_socket: Option<PathBuf>,
    /// `--log-format`.
    pub log_format: Option<String>,
}

fn in_range<T: PartialOrd + fmt::Display + Copy>(
    key: &str,
    v: T,
    min: T,
    max: T,
) -> Result<(), Issue> {
    if v < min || v > max {
        return Err(issue(key, format!("{v} is outside {min}..={max}")));
    }
    Ok(())
}

/// A NetBIOS name as typed by a user: 1–15 bytes of printable ASCII, not
/// starting with `*` or a space.
pub fn check_netbios_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("a NetBIOS name cannot be empty".to_owned());
    }
    if s.len() > 15 {
        return Err(format!(
            "{s:?} is {} bytes long; NetBIOS names have at most 15",
            s.len()
        ));
    }
    if let Some(c) = s.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(format!("{s:?}: character {c:?} is not printable ASCII"));
    }
    if s.starts_with('*') || s.starts_with(' ') {
        return Err(format!("{s:?} cannot start with '*' or a space"));
    }
    Ok(())
}

fn check_scope(s: &str) -> Result<(), String> {
    nbdgm_wire::name::validate_scope(s).map_err(|e| format!("{s:?}: {}", wire_reason(&e)))
}

/// The reason of a codec error, without the codec's "cannot emit" framing.
fn wire_reason(e: &nbdgm_wire::Error) -> String {
    match e {
        nbdgm_wire::Error::Emit { reason, .. } => (*reason).to_owned(),
        other => other.to_string(),
    }
}

fn check_node_type(t: NodeType, nbns: &crate::routed::NbnsClientConfig) -> Result<(), String> {
    match t {
        NodeType::P | NodeType::M if nbns.servers.is_empty() => Err(format!(
            "a {}-node needs a name server: set [nbns] servers",
            t.as_str().to_ascii_uppercase()
        )),
        _ => Ok(()),
    }
}

fn check_interface(n: Ipv4Net) -> Result<(), String> {
    let ip = n.addr();
    if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
        return Err(format!("{ip} cannot be an interface address"));
    }
    Ok(())
}

fn parse_extra_name(s: &str) -> Result<Name, String> {
    let name: Name = s
        .parse()
        .map_err(|e| format!("{s:?}: {}", wire_reason(&e)))?;
    if !name.scope().is_empty() {
        return Err(format!(
            "{s:?}: put the scope in node.scope, not in the name"
        ));
    }
    if name.raw().first() == Some(&b'*') {
        return Err(format!(
            "{s:?}: names starting with '*' cannot be registered"
        ));
    }
    Ok(name)
}

fn check_log_level(s: &str) -> Result<(), String> {
    tracing_subscriber::EnvFilter::builder()
        .parse(s)
        .map(|_| ())
        .map_err(|e| format!("{s:?} is not a log filter such as \"info\" or \"nbdgm=debug\": {e}"))
}

/// The host name, upper-cased, first label only, cut to 15 bytes.
pub fn default_node_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    node_name_from_hostname(&raw)
}

fn node_name_from_hostname(raw: &str) -> String {
    let first = raw.trim().split('.').next().unwrap_or_default();
    let name: String = first
        .chars()
        .take(15)
        .collect::<String>()
        .to_ascii_uppercase();
    if check_netbios_name(&name).is_ok() {
        name
    } else {
        FALLBACK_NODE_NAME.to_owned()
    }
}

/// Up, non-loopback IPv4 interfaces: (address, prefix length, broadcast).
pub fn system_interfaces() -> io::Result<Vec<(Ipv4Addr, u8, Option<Ipv4Addr>)>> {
    use nix::net::if_::InterfaceFlags;
    let addrs = nix::ifaddrs::getifaddrs().map_err(io::Error::from)?;
    let mut out: Vec<(Ipv4Addr, u8, Option<Ipv4Addr>)> = Vec::new();
    for ifa in addrs {
        if !ifa.flags.contains(InterfaceFlags::IFF_UP)
            || ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK)
        {
            continue;
        }
        let v4 = |a: &Option<nix::sys::socket::SockaddrStorage>| {
            a.as_ref().and_then(|s| s.as_sockaddr_in()).map(|s| s.ip())
        };
        let Some(ip) = v4(&ifa.address) else {
            continue;
        };
        let prefix = v4(&ifa.netmask).map_or(32, |m| u32::from(m).leading_ones() as u8);
        let broadcast = if ifa.flags.contains(InterfaceFlags::IFF_BROADCAST) {
            v4(&ifa.broadcast)
        } else {
            None
        };
        if !out.iter().any(|(o, _, _)| *o == ip) {
            out.push((ip, prefix, broadcast));
        }
    }
    Ok(out)
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = text.get(..pos).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

// ---------------------------------------------------------------------------
// --check-config
// ---------------------------------------------------------------------------

/// What `nbdgm serve --check-config` prints for a valid file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub file: PathBuf,
    pub node_name: String,
    pub node_type: NodeType,
    pub workgroup: String,
    pub scope: String,
    /// `NAME<xx>` (with ` group` for group names).
    pub names: Vec<String>,
    /// `address/len broadcast b`; `auto: ...` when taken from the system.
    pub interfaces: Vec<String>,
    pub name_port: u16,
    pub datagram_port: u16,
    pub api_socket: PathBuf,
    pub api_tcp: Option<SocketAddrV4>,
    pub privileges_user: Option<String>,
    /// Valid but questionable settings.
    pub warnings: Vec<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: OK", self.file.display())?;
        writeln!(
            f,
            "node {} ({}-node), workgroup {}{}",
            self.node_name,
            self.node_type.as_str(),
            self.workgroup,
            if self.scope.is_empty() {
                String::new()
            } else {
                format!(", scope {}", self.scope)
            }
        )?;
        writeln!(f, "names: {}", self.names.join(", "))?;
        writeln!(f, "interfaces: {}", self.interfaces.join(", "))?;
        writeln!(
            f,
            "ports: name {}, datagram {}",
            self.name_port, self.datagram_port
        )?;
        write!(f, "api: {}", self.api_socket.display())?;
        if let Some(t) = self.api_tcp {
            write!(f, ", tcp {t}")?;
        }
        writeln!(f)?;
        if let Some(u) = &self.privileges_user {
            writeln!(f, "drops root to user {u}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

impl Config {
    /// The `--check-config` report of a valid configuration read from `file`.
    pub fn summary(&self, file: &Path) -> Summary {
        let names = self
            .names()
            .iter()
            .map(|(n, g)| {
                if *g {
                    format!("{n} group")
                } else {
                    n.to_string()
                }
            })
            .collect();
        let interfaces = if self.interfaces.is_empty() {
            match system_interfaces() {
                Ok(l) if !l.is_empty() => l
                    .iter()
                    .map(|(ip, len, _)| format!("auto: {ip}/{len}"))
                    .collect(),
                Ok(_) => vec!["auto: none found".to_owned()],
                Err(e) => vec![format!("auto: cannot list ({e})")],
            }
        } else {
            self.interfaces
                .iter()
                .map(|i| format!("{} broadcast {}", i.address, i.broadcast_addr()))
                .collect()
        };
        let mut warnings = Vec::new();
        if self.api.mode.0 & 0o007 != 0 {
            warnings.push(format!(
                "api.mode {} lets every local user use the API",
                self.api.mode
            ));
        }
        for (key, list) in [
            ("access.name_service.allow", &self.access.name_service.allow),
            ("access.datagram.allow", &self.access.datagram.allow),
            ("access.api.allow", &self.access.api.allow),
        ] {
            match list {
                AllowList::Any => warnings.push(format!("{key} = \"any\" admits every source")),
                AllowList::List(l) if l.is_empty() => {
                    warnings.push(format!("{key} = [] admits nobody"))
                }
                _ => {}
            }
        }
        if let Some(f) = &self.api.tcp_token_file {
            use std::os::unix::fs::PermissionsExt;
            match std::fs::metadata(f) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => warnings.push(format!(
                    "api.tcp_token_file {} is readable or writable by others: the daemon refuses it",
                    f.display()
                )),
                Ok(_) => {}
                Err(e) => warnings.push(format!(
                    "api.tcp_token_file {}: {e}",
                    f.display()
                )),
            }
        }
        if let Some(t) = self.api.tcp {
            if !t.ip().is_loopback() && self.access.api.allow == AllowList::Auto {
                warnings.push(format!(
                    "api.tcp listens on {t} but access.api.allow = \"auto\" admits loopback clients only"
                ));
            }
        }
        Summary {
            file: file.to_owned(),
            node_name: self.node_name(),
            node_type: self.node.node_type,
            workgroup: self.node.workgroup.to_ascii_uppercase(),
            scope: self.node.scope.clone(),
            names,
            interfaces,
            name_port: self.ports.name,
            datagram_port: self.ports.datagram,
            api_socket: self.api.socket.clone(),
            api_tcp: self.api.tcp,
            privileges_user: self.privileges.user.clone(),
            warnings,
        }
    }
}

/// `nbdgm serve --check-config`: load and validate `path`, and summarise it.
pub fn check(path: &Path) -> Result<Summary, ConfigError> {
    Config::load(path).map(|c| c.summary(path))
}

// ---------------------------------------------------------------------------
// Span tree: key path <-> position in the text
// ---------------------------------------------------------------------------

/// A tree of the document's values with their byte spans, deserialised from the
/// same text through `toml`'s span support (the protocol behind `toml::Spanned`).
/// Tables without a span of their own (implicit `[a]` of `[a.b]`, arrays of
/// tables) are accepted too, which `toml::Spanned` itself refuses.
mod locate {
    use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;
    use std::ops::Range;

    // The names `serde_spanned` (toml 0.8) uses to ask for a span.
    const SPANNED: &str = "$__serde_spanned_private_Spanned";
    const START: &str = "$__serde_spanned_private_start";
    const END: &str = "$__serde_spanned_private_end";
    const VALUE: &str = "$__serde_spanned_private_value";
    const FIELDS: &[&str] = &[START, END, VALUE];
    const DATETIME: &str = "$__toml_private_datetime";

    pub(super) struct Node {
        span: Option<Range<usize>>,
        kind: Kind,
    }

    enum Kind {
        Table(Vec<(String, Node)>),
        Array(Vec<Node>),
        Leaf,
    }

    /// The document root.
    pub(super) struct Root(Kind);

    #[derive(Debug, Clone, PartialEq)]
    enum Seg {
        Key(String),
        Index(usize),
    }

    fn parse_path(path: &str) -> Vec<Seg> {
        let mut out = Vec::new();
        for part in path.split('.') {
            let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
            if !key.is_empty() {
                out.push(Seg::Key(key.to_owned()));
            }
            while let Some((idx, r)) = rest.split_once(']') {
                if let Ok(i) = idx.parse() {
                    out.push(Seg::Index(i));
                }
                rest = r.strip_prefix('[').unwrap_or(r);
            }
        }
        out
    }

    fn fmt_path(segs: &[Seg]) -> String {
        let mut s = String::new();
        for seg in segs {
            match seg {
                Seg::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    impl Node {
        fn child(&self, seg: &Seg) -> Option<&Node> {
            match (&self.kind, seg) {
                (Kind::Table(t), Seg::Key(k)) => t.iter().find(|(n, _)| n == k).map(|(_, v)| v),
                (Kind::Array(a), Seg::Index(i)) => a.get(*i),
                _ => None,
            }
        }

        /// This node's span, else the first span below it.
        fn any_span(&self) -> Option<Range<usize>> {
            if let Some(s) = &self.span {
                return Some(s.clone());
            }
            match &self.kind {
                Kind::Table(t) => t.iter().find_map(|(_, v)| v.any_span()),
                Kind::Array(a) => a.iter().find_map(Node::any_span),
                Kind::Leaf => None,
            }
        }

        /// Deepest node whose span holds `pos`.
        fn containing(&self, pos: usize, path: &mut Vec<Seg>) -> bool {
            let children: Vec<(Seg, &Node)> = match &self.kind {
                Kind::Table(t) => t.iter().map(|(k, v)| (Seg::Key(k.clone()), v)).collect(),
                Kind::Array(a) => a
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (Seg::Index(i), v))
                    .collect(),
                Kind::Leaf => Vec::new(),
            };
            for (seg, child) in children {
                path.push(seg);
                if child.containing(pos, path) {
                    return true;
                }
                path.pop();
            }
            self.span
                .as_ref()
                .is_some_and(|s| s.start <= pos && (pos < s.end || s.is_empty()))
        }

        /// The first value starting at or after `pos` on the same line (the value
        /// of a key whose name is at `pos`).
        fn after_on_line(
            &self,
            text: &str,
            pos: usize,
            path: &mut Vec<Seg>,
            best: &mut Option<(usize, Vec<Seg>)>,
        ) {
            if let Some(s) = &self.span {
                let same_line = s.start >= pos
                    && text
                        .get(pos..s.start)
                        .is_some_and(|between| !between.contains('\n'));
                if same_line && best.as_ref().is_none_or(|(b, _)| s.start < *b) {
                    *best = Some((s.start, path.clone()));
                }
            }
            match &self.kind {
                Kind::Table(t) => {
                    for (k, v) in t {
                        path.push(Seg::Key(k.clone()));
                        v.after_on_line(text, pos, path, best);
                        path.pop();
                    }
                }
                Kind::Array(a) => {
                    for (i, v) in a.iter().enumerate() {
                        path.push(Seg::Index(i));
                        v.after_on_line(text, pos, path, best);
                        path.pop();
                    }
                }
                Kind::Leaf => {}
            }
        }
    }

    impl Root {
        fn children(&self) -> &[(String, Node)] {
            match &self.0 {
                Kind::Table(t) => t,
                _ => &[],
            }
        }

        /// Span of the value at `path`, else of its nearest ancestor that is in the
        /// document.
        pub(super) fn span_of(&self, path: &str) -> Option<Range<usize>> {
            let segs = parse_path(path);
            let Some((Seg::Key(first), rest)) = segs.split_first() else {
                return None;
            };
            let (_, top) = self.children().iter().find(|(k, _)| k == first)?;
            let mut cur: &Node = top;
            let mut found = cur.any_span();
            for seg in rest {
                match cur.child(seg) {
                    Some(next) => {
                        cur = next;
                        found = cur.any_span().or(found);
                    }
                    None => break,
                }
            }
            found
        }

        /// Key path of the value at byte `pos`, or of the key written at `pos`.
        pub(super) fn path_at(&self, text: &str, pos: usize) -> Option<String> {
            let mut path = Vec::new();
            for (k, v) in self.children() {
                path.push(Seg::Key(k.clone()));
                if v.containing(pos, &mut path) {
                    return Some(fmt_path(&path));
                }
                path.pop();
            }
            let mut best = None;
            for (k, v) in self.children() {
                path.push(Seg::Key(k.clone()));
                v.after_on_line(text, pos, &mut path, &mut best);
                path.pop();
            }
            best.map(|(_, p)| fmt_path(&p))
        }
    }

    /// For text that is not TOML: the last `[table]` header before `pos`, plus the
    /// `key =` on the error's line, if any.
    pub(super) fn guess_key(text: &str, pos: usize) -> String {
        let before = text.get(..pos.min(text.len())).unwrap_or_default();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let table = before
            .get(..line_start)
            .unwrap_or_default()
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
            .filter(|t| !t.contains(['"', '\'']))
            .unwrap_or_default();
        let line = text
            .get(line_start..)
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default();
        let key = line
            .split_once('=')
            .map(|(k, _)| k.trim())
            .filter(|k| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            })
            .unwrap_or_default();
        match (table.is_empty(), key.is_empty()) {
            (_, true) => table,
            (true, false) => key.to_owned(),
            (false, false) => format!("{table}.{key}"),
        }
    }

    // --- deserialisation -------------------------------------------------

    impl<'de> Deserialize<'de> for Node {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_struct(SPANNED, FIELDS, NodeVisitor)
        }
    }

    impl<'de> Deserialize<'de> for Root {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(KindVisitor).map(Root)
        }
    }

    struct KindDe(Kind);

    impl<'de> Deserialize<'de> for KindDe {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(KindVisitor).map(KindDe)
        }
    }

    fn table_rest<'de, A: MapAccess<'de>>(first: String, mut map: A) -> Result<Kind, A::Error> {
        if first == DATETIME {
            map.next_value::<IgnoredAny>()?;
            return Ok(Kind::Leaf);
        }
        let mut entries = vec![(first, map.next_value::<Node>()?)];
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value::<Node>()?;
            entries.push((k, v));
        }
        Ok(Kind::Table(entries))
    }

    macro_rules! leaves {
        ($out:expr; $($f:ident: $t:ty),*) => {
            $(fn $f<E: de::Error>(self, _: $t) -> Result<Self::Value, E> { Ok($out) })*
        };
    }

    struct NodeVisitor;

    impl<'de> Visitor<'de> for NodeVisitor {
        type Value = Node;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any TOML value")
        }
        leaves!(Node { span: None, kind: Kind::Leaf };
            visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
            let Some(first) = map.next_key::<String>()? else {
                return Ok(Node {
                    span: None,
                    kind: Kind::Table(Vec::new()),
                });
            };
            if first != START {
                return table_rest(first, map).map(|kind| Node { span: None, kind });
            }
            let start: usize = map.next_value()?;
            let (mut end, mut kind) = (start, Kind::Leaf);
            while let Some(k) = map.next_key::<String>()? {
                if k == END {
                    end = map.next_value()?;
                } else if k == VALUE {
                    kind = map.next_value::<KindDe>()?.0;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Node {
                span: Some(start..end.max(start)),
                kind,
            })
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Node, A::Error> {
            KindVisitor
                .visit_seq(seq)
                .map(|kind| Node { span: None, kind })
        }
    }

    struct KindVisitor;

    impl<'de> Visitor<'de> for KindVisitor {
        type Value = Kind;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any TOML value")
        }
        leaves!(Kind::Leaf;
            visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
            match map.next_key::<String>()? {
                Some(first) => table_rest(first, map),
                None => Ok(Kind::Table(Vec::new())),
            }
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
            let mut items = Vec::new();
            while let Some(n) = seq.next_element::<Node>()? {
                items.push(n);
            }
            Ok(Kind::Array(items))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = include_str!("../../../dist/nbdgm.toml");

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn err(text: &str) -> ConfigError {
        match Config::from_str(text) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e,
        }
    }

    /// Asserts kind, key and line of an error, and returns its message.
    fn expect(text: &str, kind: ErrorKind, key: &str, line: usize) -> String {
        let e = err(text);
        assert_eq!(e.kind(), Some(kind), "{e}");
        assert_eq!(e.key(), Some(key), "{e}");
        assert_eq!(e.line(), Some(line), "{e}");
        e.to_string()
    }

    fn uncommented_example() -> String {
        EXAMPLE
            .lines()
            .map(|l| {
                let rest = l.strip_prefix("# ").unwrap_or("");
                let is_setting = rest.starts_with('[')
                    || rest.split_once(" = ").is_some_and(|(k, _)| {
                        k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    });
                if is_setting {
                    rest
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!(c.node.workgroup, "WORKGROUP");
        assert_eq!(c.node.node_type, NodeType::B);
        assert_eq!((c.ports.name, c.ports.datagram), (137, 138));
        assert_eq!(c.datagram.max_length, 576);
        assert_eq!(c.datagram.fragment_timeout_ms, 2000);
        assert_eq!(c.datagram.source_ip_mismatch, SourceIpPolicy::Log);
        assert_eq!(c.reassembly.max_total_bytes, 1_048_576);
        assert_eq!(c.name_service.retry_count, 3);
        assert_eq!(c.name_service.ttl, 300_000);
        assert_eq!(c.access.datagram.allow, AllowList::Auto);
        assert_eq!(
            c.limits.rx_per_source,
            RateConfig {
                rate: 200.0,
                burst: 400
            }
        );
        assert_eq!(
            c.limits.replies_per_source,
            RateConfig {
                rate: 50.0,
                burst: 100
            }
        );
        assert_eq!(c.limits.max_sources, 4096);
        assert_eq!(c.api.socket, PathBuf::from("/run/nbdgm/api.sock"));
        assert_eq!(c.api.mode, FileMode(0o660));
        assert_eq!(c.log.format, LogFormat::Text);
        assert!(c.validate().is_ok());
        assert_eq!(Config::from_str("").unwrap(), c);
        assert_eq!(c.node_name(), default_node_name());
        assert!(check_netbios_name(&c.node_name()).is_ok());
    }

    #[test]
    fn example_file_is_the_defaults() {
        let c = Config::from_str(EXAMPLE).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn example_file_optional_settings_parse_as_documented() {
        let text = uncommented_example();
        let c = Config::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(c.node.name.as_deref(), Some("FILESRV"));
        assert_eq!(
            c.node.names,
            vec![
                ExtraName {
                    name: "APP<2a>".into(),
                    group: false
                },
                ExtraName {
                    name: "TEAM<00>".into(),
                    group: true
                },
            ]
        );
        assert_eq!(
            c.interfaces,
            vec![InterfaceConfig {
                address: net("198.51.100.10/24"),
                broadcast: Some(Ipv4Addr::new(198, 51, 100, 255)),
                announce_address: Some(Ipv4Addr::new(203, 0, 113, 5)),
            }]
        );
        assert_eq!(c.node.announce_address, Some(Ipv4Addr::new(203, 0, 113, 5)));
        assert_eq!(c.browser.http, "127.0.0.1:8139");
        assert_eq!(c.browser.remote_announce.len(), 1);
        assert_eq!(c.api.group.as_deref(), Some("nbdgm"));
        assert_eq!(c.api.tcp, Some("127.0.0.1:1380".parse().unwrap()));
        assert_eq!(
            c.api.tcp_token_file.as_deref(),
            Some(Path::new("/etc/nbdgm/api.token"))
        );
        assert_eq!(c.browser.http_allowed_hosts, ["nbdgm.example.org"]);
        assert_eq!(c.privileges.user.as_deref(), Some("nbdgm"));
        assert_eq!(c.privileges.group.as_deref(), Some("nbdgm"));
        // Nothing else differs from the defaults.
        let mut d = c.clone();
        d.node.name = None;
        d.node.names.clear();
        d.node.announce_address = None;
        d.browser.http.clear();
        d.browser.remote_announce.clear();
        d.interfaces.clear();
        d.api.group = None;
        d.api.tcp = None;
        d.api.tcp_token_file = None;
        d.browser.http_allowed_hosts.clear();
        d.privileges = PrivilegesConfig::default();
        assert_eq!(d, Config::default());
    }

    #[test]
    fn serialises_and_reads_back() {
        let mut c = Config::from_str(&uncommented_example()).unwrap();
        c.access.datagram.allow = AllowList::List(vec![net("10.0.0.0/8")]);
        c.access.name_service.allow = AllowList::Any;
        c.access.api.deny = vec![net("127.0.0.2/32")];
        let text = toml::to_string(&c).unwrap();
        assert_eq!(Config::from_str(&text).unwrap(), c, "{text}");
    }

    #[test]
    fn access_lists() {
        let c = Config::from_str(
            "[access.datagram]\nallow = [\"10.0.0.0/8\", \"192.0.2.7\"]\ndeny = [\"10.9.0.0/16\"]\n\
             [access.name_service]\nallow = \"any\"\n[access.api]\nallow = []\nallow_uids = [0, 1000]\n",
        )
        .unwrap();
        let own = [net("198.51.100.10/24")];
        let dg = c.access.datagram.acl(&own);
        assert!(dg.permits("10.1.1.1".parse().unwrap()));
        assert!(dg.permits("192.0.2.7".parse().unwrap()));
        assert!(!dg.permits("192.0.2.8".parse().unwrap()));
        assert!(!dg.permits("10.9.1.1".parse().unwrap()));
        assert!(!dg.permits("198.51.100.1".parse().unwrap()));
        assert!(c
            .access
            .name_service
            .acl(&own)
            .permits("203.0.113.1".parse().unwrap()));
        assert!(!c.access.api.acl().permits("127.0.0.1".parse().unwrap()));
        assert_eq!(c.access.api.allow_uids, vec![0, 1000]);
        let d = Config::default();
        let auto = d.access.datagram.acl(&own);
        assert!(auto.permits("198.51.100.200".parse().unwrap()));
        assert!(!auto.permits("198.51.101.1".parse().unwrap()));
        assert!(d.access.api.acl().permits("127.0.0.1".parse().unwrap()));
        assert!(!d
            .access
            .api
            .acl()
            .permits("198.51.100.200".parse().unwrap()));
    }

    #[test]
    fn syntax_errors_have_line_and_key() {
        let m = expect(
            "[node]\nworkgroup = \"W\"\nname = \n",
            ErrorKind::Syntax,
            "node.name",
            3,
        );
        assert!(m.starts_with("<config>:3:"), "{m}");
        expect("[node\n", ErrorKind::Syntax, "", 1);
        expect("a = 1\na = 2\n", ErrorKind::Syntax, "a", 2);
    }

    #[test]
    fn unknown_keys_are_errors_with_line() {
        expect("[nodes]\nx = 1\n", ErrorKind::UnknownKey, "nodes", 1);
        let m = expect(
            "[node]\nworkgroup = \"X\"\nfoo = 1\n",
            ErrorKind::UnknownKey,
            "node.foo",
            3,
        );
        assert!(m.contains("unknown field `foo`"), "{m}");
        expect(
            "[limits]\n\nrx_per_source = { rate = 1.0, burst = 2, extra = 3 }\n",
            ErrorKind::UnknownKey,
            "limits.rx_per_source.extra",
            3,
        );
        expect(
            "[[interface]]\naddress = \"10.0.0.1/24\"\n[[interface]]\naddress = \"10.0.1.1/24\"\nbogus = true\n",
            ErrorKind::UnknownKey,
            "interface[1].bogus",
            5,
        );
        expect(
            "[access.datagram]\nallow = \"auto\"\nalow = []\n",
            ErrorKind::UnknownKey,
            "access.datagram.alow",
            3,
        );
    }

    #[test]
    fn type_errors_have_line_and_key() {
        let m = expect("[ports]\nname = \"x\"\n", ErrorKind::Type, "ports.name", 2);
        assert!(
            m.starts_with("<config>:2:8: ports.name: invalid type"),
            "{m}"
        );
        expect("[ports]\nname = 70000\n", ErrorKind::Type, "ports.name", 2);
        expect(
            "[node]\n\nnode_type = \"z\"\n",
            ErrorKind::Type,
            "node.node_type",
            3,
        );
        expect(
            "[datagram]\nsource_ip_mismatch = \"ignore\"\n",
            ErrorKind::Type,
            "datagram.source_ip_mismatch",
            2,
        );
        expect(
            "[limits]\nrx_per_source = { rate = 1.0 }\n",
            ErrorKind::Type,
            "limits.rx_per_source",
            2,
        );
        expect(
            "[limits]\nmax_sources = -1\n",
            ErrorKind::Type,
            "limits.max_sources",
            2,
        );
        let m = expect("[api]\nmode = \"0668\"\n", ErrorKind::Type, "api.mode", 2);
        assert!(m.contains("octal"), "{m}");
        expect("[api]\nmode = \"01777\"\n", ErrorKind::Type, "api.mode", 2);
        expect("[api]\ntcp = \"[::1]:80\"\n", ErrorKind::Type, "api.tcp", 2);
        expect(
            "[[interface]]\naddress = \"10.0.0.1/24\"\nbroadcast = \"x\"\n",
            ErrorKind::Type,
            "interface[0].broadcast",
            3,
        );
        expect(
            "[log]\nformat = \"xml\"\n",
            ErrorKind::Type,
            "log.format",
            2,
        );
        expect("node = 5\n", ErrorKind::Type, "node", 1);
    }

    #[test]
    fn cidr_errors_point_at_the_element() {
        let e = err("[access.datagram]\nallow = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n");
        assert_eq!(e.key(), Some("access.datagram.allow[1]"));
        assert_eq!((e.line(), e.column()), (Some(2), Some(24)));
        assert!(
            e.to_string().contains("prefix length 33 is larger than 32"),
            "{e}"
        );
        expect(
            "[access.name_service]\nallow = [\n  \"10.0.0.0/8\",\n  \"bogus\",\n]\n",
            ErrorKind::Type,
            "access.name_service.allow[1]",
            4,
        );
        expect(
            "[access]\napi = { deny = [\"1.2.3.4/x\"] }\n",
            ErrorKind::Type,
            "access.api.deny[0]",
            2,
        );
        expect(
            "[access.datagram]\nallow = \"everyone\"\n",
            ErrorKind::Type,
            "access.datagram.allow",
            2,
        );
        let m = expect(
            "[[interface]]\naddress = \"10.0.0.1\"\n",
            ErrorKind::Type,
            "interface[0].address",
            2,
        );
        assert!(m.contains("needs a prefix length"), "{m}");
        expect(
            "[[interface]]\naddress = \"10.0.0.1/24\"\n\n[[interface]]\naddress = \"10.0.0.2/40\"\n",
            ErrorKind::Type,
            "interface[1].address",
            5,
        );
    }

    #[test]
    fn value_errors_have_line_and_key() {
        let m = expect(
            "[node]\nname = \"ABCDEFGHIJKLMNOP\"\n",
            ErrorKind::Value,
            "node.name",
            2,
        );
        assert!(m.contains("at most 15"), "{m}");
        expect(
            "[node]\naliases = [\"OK\",\n  \"BAD\\u0001\"]\n",
            ErrorKind::Value,
            "node.aliases[1]",
            3,
        );
        expect(
            "[node]\nworkgroup = \"\"\n",
            ErrorKind::Value,
            "node.workgroup",
            2,
        );
        expect(
            "[node]\nscope = \"a..b\"\n",
            ErrorKind::Value,
            "node.scope",
            2,
        );
        let m = expect(
            "[node]\nnode_type = \"p\"\n",
            ErrorKind::Value,
            "node.node_type",
            2,
        );
        assert!(m.contains("needs a name server"), "{m}");
        Config::from_str("[node]\nnode_type = \"p\"\n[nbns]\nservers = [\"198.51.100.1\"]\n")
            .unwrap();
        expect(
            "[nbns]\nservers = [\"0.0.0.0\"]\n",
            ErrorKind::Value,
            "nbns.servers[0]",
            2,
        );
        expect(
            "[node]\nrole = \"nbdd\"\n",
            ErrorKind::Value,
            "node.role",
            2,
        );
        let r = Config::from_str("[node]\nrole = [\"nbns\", \"nbdd\"]\n").unwrap();
        assert!(r.node.role.nbns && r.node.role.nbdd);
        expect("[node]\nrole = \"wins\"\n", ErrorKind::Type, "node.role", 2);
        expect(
            "[node]\nrole = \"nbdd\"\n[nbdd_server]\npolicy = \"allow_list\"\nnbns = \"198.51.100.1\"\n",
            ErrorKind::Value,
            "nbdd_server.allow",
            3,
        );
        expect(
            "[node]\nnames = [\n { name = \"OK<20>\" },\n { name = \"APP<zz>\" },\n]\n",
            ErrorKind::Value,
            "node.names[1].name",
            4,
        );
        expect(
            "[node]\nnames = [{ name = \"APP<01>.scope\" }]\n",
            ErrorKind::Value,
            "node.names[0].name",
            2,
        );
        expect(
            "[node]\nnames = [{ name = \"*\" }]\n",
            ErrorKind::Value,
            "node.names[0].name",
            2,
        );
        expect(
            "[[interface]]\naddress = \"10.0.0.1/24\"\n[[interface]]\naddress = \"10.0.0.1/16\"\n",
            ErrorKind::Value,
            "interface[1].address",
            4,
        );
        expect(
            "[[interface]]\naddress = \"0.0.0.0/0\"\n",
            ErrorKind::Value,
            "interface[0].address",
            2,
        );
        expect("[ports]\nname = 0\n", ErrorKind::Value, "ports.name", 2);
        expect(
            "[ports]\nname = 5000\ndatagram = 5000\n",
            ErrorKind::Value,
            "ports.datagram",
            3,
        );
        expect(
            "[datagram]\nmax_length = 100\n",
            ErrorKind::Value,
            "datagram.max_length",
            2,
        );
        expect(
            "[datagram]\nfragment_timeout_ms = 0\n",
            ErrorKind::Value,
            "datagram.fragment_timeout_ms",
            2,
        );
        expect(
            "[reassembly]\nmax_total_bytes = 1000\nmax_bytes_per_source = 2000\n",
            ErrorKind::Value,
            "reassembly.max_bytes_per_source",
            3,
        );
        expect(
            "[name_service]\nretry_count = 0\n",
            ErrorKind::Value,
            "name_service.retry_count",
            2,
        );
        let m = expect(
            "[limits]\nrx_per_source = { rate = 0.0, burst = 5 }\n",
            ErrorKind::Value,
            "limits.rx_per_source.rate",
            2,
        );
        assert!(m.contains("positive"), "{m}");
        expect(
            "[limits]\nreplies_per_source = { rate = nan, burst = 5 }\n",
            ErrorKind::Value,
            "limits.replies_per_source.rate",
            2,
        );
        expect(
            "[limits]\nreplies_per_source = { rate = 1, burst = 0 }\n",
            ErrorKind::Value,
            "limits.replies_per_source.burst",
            2,
        );
        expect(
            "[limits]\nmax_sources = 0\n",
            ErrorKind::Value,
            "limits.max_sources",
            2,
        );
        expect(
            "[node]\nname = \"A\"\n[limits]\nmax_names = 1\n",
            ErrorKind::Value,
            "limits.max_names",
            4,
        );
        expect("[api]\nsocket = \"\"\n", ErrorKind::Value, "api.socket", 2);
        expect(
            "[api]\ntcp = \"127.0.0.1:0\"\n",
            ErrorKind::Value,
            "api.tcp",
            2,
        );
        expect(
            "[privileges]\ngroup = \"nbdgm\"\n",
            ErrorKind::Value,
            "privileges.group",
            2,
        );
        expect(
            "[log]\nlevel = \"info,=x=y\"\n",
            ErrorKind::Value,
            "log.level",
            2,
        );
    }

    #[test]
    fn value_error_for_key_not_in_file_points_at_its_table() {
        // limits.max_names is not written; the error points at [limits].
        let e = err("[node]\nname = \"A\"\nserver = true\n[limits]\nmax_names = 1\n");
        assert_eq!(e.key(), Some("limits.max_names"));
        let e = err("[node]\nname = \"A\"\n\n[limits]\nmax_sources = 5\nmax_names = 1\n");
        assert_eq!(e.line(), Some(6));
        let mut c = Config::default();
        c.limits.max_names = 1;
        let e = c.validate().unwrap_err();
        assert_eq!((e.key(), e.line()), (Some("limits.max_names"), None));
        assert!(e.to_string().starts_with("limits.max_names: "), "{e}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("nbdgm-cfg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "[node]\n\nname = 5\n").unwrap();
        let e = Config::load(&path).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}:3:8: node.name: invalid type: integer `5`, expected a string",
                path.display()
            )
        );
        let good = dir.join("good.toml");
        std::fs::write(&good, EXAMPLE).unwrap();
        assert_eq!(Config::load(&good).unwrap(), Config::default());
        let summary = check(&good).unwrap();
        assert_eq!(summary.name_port, 137);
        assert!(summary.to_string().contains(": OK\n"));
        let missing = dir.join("missing.toml");
        assert!(matches!(
            Config::load(&missing),
            Err(ConfigError::Io { .. })
        ));
        assert!(matches!(check(&missing), Err(ConfigError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_to_register() {
        let c = Config::from_str(
            "[node]\nname = \"fred\"\naliases = [\"files\", \"FRED\"]\nworkgroup = \"lab\"\n\
             server = true\nmessenger = true\n\
             names = [{ name = \"APP<2a>\" }, { name = \"TEAM\", group = true }]\n",
        )
        .unwrap();
        let got: Vec<String> = c
            .names()
            .iter()
            .map(|(n, g)| format!("{n}{}", if *g { " group" } else { "" }))
            .collect();
        assert_eq!(
            got,
            [
                "FRED<00>",
                "FRED<03>",
                "FRED<20>",
                "FILES<00>",
                "FILES<03>",
                "FILES<20>",
                "LAB<00> group",
                "APP<2a>",
                "TEAM<00> group",
            ]
        );
        let scoped = Config::from_str("[node]\nname = \"A\"\nscope = \"corp.example\"\n").unwrap();
        let names = scoped.names();
        assert_eq!(names.len(), 2);
        assert!(names.iter().all(|(n, _)| n.scope() == "corp.example"));
        assert_eq!(names[0].0.to_string(), "A<00>.corp.example");
    }

    #[test]
    fn overrides_apply_and_validate() {
        let mut c = Config::default();
        c.apply(&Overrides {
            interfaces: vec!["127.0.0.2/8".into(), "192.0.2.5/24".into()],
            name: Some("node1".into()),
            aliases: vec!["alias1".into()],
            workgroup: Some("TESTGROUP".into()),
            scope: Some("lab".into()),
            node_type: Some("B".into()),
            api_socket: Some(PathBuf::from("/tmp/nbdgm.sock")),
            log_format: Some("json".into()),
        })
        .unwrap();
        assert_eq!(c.interfaces.len(), 2);
        assert_eq!(
            c.interfaces[1].broadcast_addr(),
            Ipv4Addr::new(192, 0, 2, 255)
        );
        assert_eq!(c.node_name(), "NODE1");
        assert_eq!(c.node.aliases, ["alias1"]);
        assert_eq!(c.node.scope, "lab");
        assert_eq!(c.api.socket, PathBuf::from("/tmp/nbdgm.sock"));
        assert_eq!(c.log.format, LogFormat::Json);
        // Empty overrides change nothing.
        let before = c.clone();
        c.apply(&Overrides::default()).unwrap();
        assert_eq!(c, before);

        let bad = |o: Overrides, flag: &str, needle: &str| {
            let mut c = Config::default();
            let e = c.apply(&o).unwrap_err();
            assert_eq!(e.key(), Some(flag), "{e}");
            assert!(e.to_string().contains(needle), "{e}");
            assert!(e.to_string().starts_with(flag), "{e}");
        };
        let o = Overrides::default;
        bad(
            Overrides {
                interfaces: vec!["10.0.0.1/33".into()],
                ..o()
            },
            "--interface",
            "larger than 32",
        );
        bad(
            Overrides {
                interfaces: vec!["10.0.0.1".into()],
                ..o()
            },
            "--interface",
            "prefix length",
        );
        bad(
            Overrides {
                interfaces: vec!["10.0.0.1/8".into(), "10.0.0.1/8".into()],
                ..o()
            },
            "--interface",
            "twice",
        );
        bad(
            Overrides {
                name: Some("WAYTOOLONGFORNETBIOS".into()),
                ..o()
            },
            "--name",
            "at most 15",
        );
        bad(
            Overrides {
                aliases: vec!["*X".into()],
                ..o()
            },
            "--alias",
            "'*'",
        );
        bad(
            Overrides {
                workgroup: Some(String::new()),
                ..o()
            },
            "--workgroup",
            "empty",
        );
        bad(
            Overrides {
                scope: Some(".x".into()),
                ..o()
            },
            "--scope",
            "scope",
        );
        bad(
            Overrides {
                node_type: Some("x".into()),
                ..o()
            },
            "--node-type",
            "one of b, p, m, h",
        );
        bad(
            Overrides {
                node_type: Some("p".into()),
                ..o()
            },
            "--node-type",
            "needs a name server",
        );
        // H without a name server is allowed (it acts as a B node).
        Config::default()
            .apply(&Overrides {
                node_type: Some("h".into()),
                ..o()
            })
            .unwrap();
        bad(
            Overrides {
                api_socket: Some(PathBuf::new()),
                ..o()
            },
            "--api-socket",
            "empty",
        );
        bad(
            Overrides {
                log_format: Some("yaml".into()),
                ..o()
            },
            "--log-format",
            "text or json",
        );
    }

    #[test]
    fn summary_and_warnings() {
        let mut c = Config::from_str(&uncommented_example()).unwrap();
        c.api.mode = FileMode(0o666);
        c.access.datagram.allow = AllowList::Any;
        c.api.tcp = Some("192.0.2.1:1380".parse().unwrap());
        c.api.tcp_token_file = None; // a missing file would add a warning
        let s = c.summary(Path::new("x.toml"));
        assert_eq!(s.node_name, "FILESRV");
        assert_eq!(s.interfaces, ["198.51.100.10/24 broadcast 198.51.100.255"]);
        assert!(s.names.contains(&"TEAM<00> group".to_owned()));
        assert_eq!(s.warnings.len(), 3, "{:?}", s.warnings);
        let text = s.to_string();
        assert!(
            text.contains("node FILESRV (b-node), workgroup WORKGROUP"),
            "{text}"
        );
        assert!(text.contains("warning: api.mode 0666"), "{text}");
        assert!(serde_json::to_string(&s).is_ok());
    }

    #[test]
    fn helpers() {
        assert_eq!(line_col("ab\ncdé f", 8), (2, 5));
        assert_eq!(line_col("x", 99), (1, 2));
        assert_eq!(line_col("é\né", 4), (2, 1));
        assert_eq!(line_col("é", 1), (1, 1));
        assert_eq!(
            node_name_from_hostname("build-server-01.example.com\n"),
            "BUILD-SERVER-01"
        );
        assert_eq!(
            node_name_from_hostname("averyveryverylonghostname"),
            "AVERYVERYVERYLO"
        );
        assert_eq!(node_name_from_hostname(""), FALLBACK_NODE_NAME);
        assert_eq!(node_name_from_hostname("héllo"), FALLBACK_NODE_NAME);
        assert_eq!(parse_cidr(" 10.1.2.3 ", false).unwrap(), net("10.1.2.3/32"));
        assert_eq!(parse_cidr("10.1.2.3/0", true).unwrap(), net("10.1.2.3/0"));
        assert!(parse_cidr("10.1.2/8", false).is_err());
        assert!(parse_cidr("10.1.2.3/-1", false).is_err());
        assert!(parse_cidr("10.1.2.3/99999999999", false).is_err());
        assert_eq!("0o750".parse::<FileMode>().unwrap(), FileMode(0o750));
        assert_eq!("600".parse::<FileMode>().unwrap().to_string(), "0600");
        assert!("".parse::<FileMode>().is_err());
        assert!("0x1f".parse::<FileMode>().is_err());
        assert_eq!(locate::guess_key("[a.b]\nx = \n", 10), "a.b.x");
    }

    #[test]
    fn system_interfaces_are_ipv4_non_loopback() {
        // Environment-dependent: only check the shape.
        if let Ok(list) = system_interfaces() {
            for (ip, len, _) in list {
                assert!(!ip.is_loopback());
                assert!(len <= 32);
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = Config::from_str(&s);
        }

        #[test]
        fn tomlish_text_never_panics(
            lines in proptest::collection::vec(
                prop_oneof![
                    Just("[node]".to_owned()),
                    Just("[[interface]]".to_owned()),
                    Just("[access.datagram]".to_owned()),
                    Just("[limits]".to_owned()),
                    "[a-z_]{1,12} = (\"[ -~]{0,20}\"|[0-9-]{1,6}|true|\\[\\]|\\{ \\})",
                    "(name|address|allow|deny|rate|mode|scope) = \\[?\"[ -~]{0,20}\"\\]?",
                ],
                0..12,
            )
        ) {
            let text = lines.join("\n");
            if let Err(e) = Config::from_str(&text) {
                let _ = e.to_string();
            }
        }
    }
}
