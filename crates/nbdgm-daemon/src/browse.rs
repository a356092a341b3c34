//! The browser service in the daemon (MS-BRWS §3.2–§3.3 via `nbdgm-browser`): the
//! `[browser]` configuration section, the browse list as the API and the HTTP
//! endpoint show it.

use crate::dispatch::{ask, WorkerHandle};
use crate::worker::{CmdError, Command};
use nbdgm_api::BrowseResult;
use nbdgm_browser::{BrowserConfig, LmAnnounce, RemoteAnnounce};
use nbdgm_wire::browser::{server_type_names, ServerType};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// `lm_announce` in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LmAnnounceSetting {
    No,
    Yes,
    #[default]
    Auto,
}

/// One `[[browser.remote_announce]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteAnnounceConfig {
    /// A host or a directed broadcast address on another subnet.
    pub address: Ipv4Addr,
    /// The workgroup to announce into; ours when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workgroup: Option<String>,
}

/// `server_type`: a number, or a list of SV_TYPE names (`"workstation"`, `"server"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerTypeSetting(pub u32);

impl Default for ServerTypeSetting {
    fn default() -> Self {
        ServerTypeSetting(ServerType::WORKSTATION | ServerType::SERVER | ServerType::NT)
    }
}

impl Serialize for ServerTypeSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 & 0x0800_0000 != 0 {
            return s.serialize_u32(self.0); // a bit without a name
        }
        s.collect_seq(
            server_type_names(self.0)
                .iter()
                .map(|n| n.to_ascii_lowercase()),
        )
    }
}

impl<'de> Deserialize<'de> for ServerTypeSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = ServerTypeSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a number or a list of server type names such as [\"workstation\", \"server\"]",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u32::try_from(v)
                    .map(ServerTypeSetting)
                    .map_err(|_| E::custom(format!("{v} does not fit in 32 bits")))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut bits = 0u32;
                while let Some(name) = seq.next_element::<String>()? {
                    bits |= server_type_bit(&name).ok_or_else(|| {
                        de::Error::custom(format!(
                            "{name:?} is not a server type; known: {}",
                            server_type_names(!0x0800_0000)
                                .iter()
                                .map(|n| n.to_ascii_lowercase())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?;
                }
                Ok(ServerTypeSetting(bits))
            }
        }
        d.deserialize_any(V)
    }
}

/// The SV_TYPE bit of a name (case-insensitive, as `server_type_names` spells them).
fn server_type_bit(name: &str) -> Option<u32> {
    (0..32)
        .map(|i| 1u32 << i)
        .find(|&bit| {
            server_type_names(bit)
                .first()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .filter(|&bit| bit != 0x0800_0000)
}

/// `[browser]`: the browser service (MS-BRWS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrowserSection {
    /// Keep the browse list heard on the network (servers and workgroups) for
    /// `nbdgm browse`, the API and HTTP, in every role.
    pub listen: bool,
    /// Send HostAnnouncements: this host appears in the network neighbourhood.
    pub announce: bool,
    /// Take part in elections and browse roles (Samba's `local master`).
    pub local_master: bool,
    /// Also run the sending roles (`announce`, `local_master`, `remote_announce`) on
    /// interfaces found automatically (no `[[interface]]`); off: those interfaces only
    /// listen, so no election starts on a network nobody named (issue 17 §5).
    pub auto_interfaces: bool,
    /// Election OS level (Samba's `os level`): higher wins.
    pub os_level: u8,
    /// Force an election at start-up and win ties on this bit (Samba's `preferred master`).
    pub preferred_master: bool,
    pub comment: String,
    pub server_type: ServerTypeSetting,
    /// `major.minor` in announcements.
    pub os_version: String,
    pub lm_announce: LmAnnounceSetting,
    pub lm_interval_s: u64,
    pub remote_announce: Vec<RemoteAnnounceConfig>,
    pub max_servers: usize,
    pub max_workgroups: usize,
    pub elections_per_minute: u32,
    /// Elections we may start back to back (whatever triggers them), then one per
    /// `election_start_interval_s` (issue 12 item 8).
    pub election_start_burst: u32,
    pub election_start_interval_s: u64,
    /// Obey ResetStateRequest frames (anyone on the subnet can send them).
    pub allow_reset: bool,
    /// Serve the browse list as JSON over HTTP on this address (`127.0.0.1:8139`);
    /// empty: off.
    pub http: String,
    /// `Host` names the HTTP endpoint answers besides its address and `localhost`
    /// (others get 421: DNS rebinding, issue 12 item 12).
    pub http_allowed_hosts: Vec<String>,
    /// HTTP connections at once, in all and per client address (issue 12 item 7).
    pub http_max_connections: usize,
    pub http_max_connections_per_ip: usize,
    /// Be the domain master browser of the workgroup (Samba's `domain master`): register
    /// `<WG><1B>`, collect the local master browsers' lists (issue 17 §3).
    pub domain_master: bool,
    /// As local master browser, announce to the domain master browser and pull its list.
    pub dmb_sync: bool,
    /// Interval of those announcements and list syncs (Samba: 15 minutes).
    pub dmb_sync_interval_s: u64,
    /// Local master browsers a domain master browser keeps.
    pub max_local_masters: usize,
    /// Port of the peers' nbdgm HTTP endpoint (`http`) tried before RAP over SMB when a
    /// list is synced with another browser; 0: RAP only.
    pub sync_http_port: u16,
    /// Answer RAP NetServerEnum2 on TCP 139 of each interface (read-only, anonymous,
    /// nothing but the browse list), so that Samba browsers can sync from us.
    pub rap_server: bool,
    /// TCP port of the RAP responder (139; tests on loopback use others).
    pub rap_port: u16,
    /// RAP connections at once, in all and per client address.
    pub rap_max_connections: usize,
    pub rap_max_connections_per_ip: usize,
}

impl Default for BrowserSection {
    fn default() -> Self {
        let d = BrowserConfig::new("X", "X");
        BrowserSection {
            listen: true,
            announce: false,
            local_master: false,
            auto_interfaces: false,
            os_level: d.os_level,
            preferred_master: false,
            comment: String::new(),
            server_type: ServerTypeSetting::default(),
            os_version: format!("{}.{}", d.os_version.0, d.os_version.1),
            lm_announce: LmAnnounceSetting::Auto,
            lm_interval_s: d.lm_interval.as_secs(),
            remote_announce: Vec::new(),
            max_servers: d.max_servers,
            max_workgroups: d.max_workgroups,
            elections_per_minute: d.elections_per_minute,
            election_start_burst: d.election_start_burst,
            election_start_interval_s: d.election_start_interval.as_secs(),
            allow_reset: false,
            http: String::new(),
            http_allowed_hosts: Vec::new(),
            http_max_connections: nbdgm_http::Limits::default().max_connections,
            http_max_connections_per_ip: nbdgm_http::Limits::default().max_per_ip,
            domain_master: false,
            dmb_sync: d.dmb_sync,
            dmb_sync_interval_s: d.dmb_sync_interval.as_secs(),
            max_local_masters: d.max_local_masters,
            sync_http_port: 0,
            rap_server: false,
            rap_port: 139,
            rap_max_connections: 16,
            rap_max_connections_per_ip: 4,
        }
    }
}

/// Why a `[browser]` value is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrowserValueError {
    #[error("{0:?}: expected major.minor, as in \"6.1\"")]
    OsVersionSyntax(String),
    #[error("{version:?}: {part:?} is not a number 0-255")]
    OsVersionPart { version: String, part: String },
    #[error("{0:?}: expected IP:PORT, as in \"127.0.0.1:8139\"")]
    HttpAddr(String),
}

impl BrowserSection {
    /// `os_version` as two bytes.
    pub fn os_version(&self) -> Result<(u8, u8), BrowserValueError> {
        let (a, b) = self
            .os_version
            .split_once('.')
            .ok_or_else(|| BrowserValueError::OsVersionSyntax(self.os_version.clone()))?;
        let p = |x: &str| {
            x.trim()
                .parse::<u8>()
                .map_err(|_| BrowserValueError::OsVersionPart {
                    version: self.os_version.clone(),
                    part: x.to_owned(),
                })
        };
        Ok((p(a)?, p(b)?))
    }

    /// The HTTP listen address, if any.
    pub fn http_addr(&self) -> Result<Option<SocketAddr>, BrowserValueError> {
        if self.http.trim().is_empty() {
            return Ok(None);
        }
        self.http
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| BrowserValueError::HttpAddr(self.http.clone()))
    }

    /// Caps and timeouts of the HTTP endpoint.
    pub fn http_limits(&self) -> nbdgm_http::Limits {
        nbdgm_http::Limits {
            max_connections: self.http_max_connections,
            max_per_ip: self.http_max_connections_per_ip,
            ..nbdgm_http::Limits::default()
        }
    }

    /// Whether any browser engine runs.
    pub fn active(&self) -> bool {
        self.listen || self.announce || self.local_master
    }

    /// Check the values (`Err((key, message))`).
    pub fn check(&self) -> Result<(), (String, String)> {
        let k = |key: &str, m: String| (format!("browser.{key}"), m);
        self.os_version()
            .map_err(|m| k("os_version", m.to_string()))?;
        self.http_addr().map_err(|m| k("http", m.to_string()))?;
        if !(1..=65_536).contains(&self.http_max_connections) {
            return Err(k("http_max_connections", "must be 1-65536".into()));
        }
        if !(1..=self.http_max_connections).contains(&self.http_max_connections_per_ip) {
            return Err(k(
                "http_max_connections_per_ip",
                "must be 1 to http_max_connections".into(),
            ));
        }
        if let Some(h) = self
            .http_allowed_hosts
            .iter()
            .find(|h| h.is_empty() || h.contains([':', '/', ' ']))
        {
            return Err(k(
                "http_allowed_hosts",
                format!("{h:?} is not a host name (no port, no scheme)"),
            ));
        }
        if self.comment.len() > nbdgm_wire::browser::MAX_COMMENT_LEN {
            return Err(k(
                "comment",
                format!(
                    "{} bytes; announcements carry at most {}",
                    self.comment.len(),
                    nbdgm_wire::browser::MAX_COMMENT_LEN
                ),
            ));
        }
        if !self.comment.is_ascii() || self.comment.contains('\0') {
            return Err(k("comment", "printable ASCII only".into()));
        }
        if !(1..=3600).contains(&self.lm_interval_s) {
            return Err(k("lm_interval_s", "between 1 and 3600".into()));
        }
        if !(1..=1_000_000).contains(&self.max_servers) {
            return Err(k("max_servers", "between 1 and 1000000".into()));
        }
        if !(1..=100_000).contains(&self.max_workgroups) {
            return Err(k("max_workgroups", "between 1 and 100000".into()));
        }
        if !(1..=6000).contains(&self.elections_per_minute) {
            return Err(k("elections_per_minute", "between 1 and 6000".into()));
        }
        if !(1..=100).contains(&self.election_start_burst) {
            return Err(k("election_start_burst", "between 1 and 100".into()));
        }
        if !(1..=86_400).contains(&self.election_start_interval_s) {
            return Err(k("election_start_interval_s", "between 1 and 86400".into()));
        }
        if !(60..=86_400).contains(&self.dmb_sync_interval_s) {
            return Err(k("dmb_sync_interval_s", "between 60 and 86400".into()));
        }
        if !(1..=10_000).contains(&self.max_local_masters) {
            return Err(k("max_local_masters", "between 1 and 10000".into()));
        }
        if self.rap_port == 0 {
            return Err(k("rap_port", "a port 1-65535".into()));
        }
        if !(1..=1024).contains(&self.rap_max_connections) {
            return Err(k("rap_max_connections", "between 1 and 1024".into()));
        }
        if !(1..=self.rap_max_connections).contains(&self.rap_max_connections_per_ip) {
            return Err(k(
                "rap_max_connections_per_ip",
                "must be 1 to rap_max_connections".into(),
            ));
        }
        for (i, r) in self.remote_announce.iter().enumerate() {
            if r.address.is_unspecified() || r.address.is_multicast() {
                return Err(k(
                    &format!("remote_announce[{i}].address"),
                    format!("{} cannot receive announcements", r.address),
                ));
            }
            if let Some(w) = &r.workgroup {
                if w.is_empty() || w.len() > 15 || !w.is_ascii() {
                    return Err(k(
                        &format!("remote_announce[{i}].workgroup"),
                        "1 to 15 ASCII characters".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The engine's settings for the node `name` in `workgroup`.
    pub fn engine_config(&self, name: &str, workgroup: &str, datagram_port: u16) -> BrowserConfig {
        let mut c = BrowserConfig::new(name, workgroup);
        c.comment = self.comment.clone();
        c.server_type = self.server_type.0;
        c.os_version = self.os_version().unwrap_or(c.os_version);
        c.announce = self.announce;
        c.potential_browser = self.local_master;
        c.os_level = self.os_level;
        c.preferred_master = self.preferred_master;
        c.lm_announce = match self.lm_announce {
            LmAnnounceSetting::No => LmAnnounce::No,
            LmAnnounceSetting::Yes => LmAnnounce::Yes,
            LmAnnounceSetting::Auto => LmAnnounce::Auto,
        };
        c.lm_interval = Duration::from_secs(self.lm_interval_s);
        c.remote_announce = self
            .remote_announce
            .iter()
            .map(|r| RemoteAnnounce {
                address: r.address,
                workgroup: r.workgroup.as_ref().map(|w| w.to_ascii_uppercase()),
            })
            .collect();
        c.max_servers = self.max_servers;
        c.max_workgroups = self.max_workgroups;
        c.elections_per_minute = self.elections_per_minute;
        c.election_start_burst = self.election_start_burst;
        c.election_start_interval = Duration::from_secs(self.election_start_interval_s);
        c.allow_reset = self.allow_reset;
        c.datagram_port = datagram_port;
        c.domain_master = self.domain_master;
        c.dmb_sync = self.dmb_sync;
        c.dmb_sync_interval = Duration::from_secs(self.dmb_sync_interval_s);
        c.max_local_masters = self.max_local_masters;
        c
    }
}

/// Bytes of one `/api/browse` HTTP answer's servers and workgroups: the whole list of
/// a usual network (4,096 ordinary entries take about 1 MiB), yet a bound on what one
/// connection makes the daemon build: at most 64 connections × 1 MiB (issue 12: a
/// hostile subnet fills the list with its largest entries; `?offset=` pages the rest).
pub const HTTP_BROWSE_BYTES: usize = 1 << 20;

/// The conversion lives in `nbdgm-runtime` (the standalone `nbdgm browse` uses it too).
pub use nbdgm_runtime::browse_list::to_proto_capped;

pub mod sync;

/// One interface's answer to `browse` (API and HTTP): [`to_proto_capped`] of its list,
/// only the entries heard on its own subnet when `local`.
pub fn browse_interface(
    interface: Ipv4Addr,
    own: Ipv4Addr,
    list: nbdgm_browser::BrowseList,
    workgroup: Option<&str>,
    page: Option<(usize, usize)>,
    budget: usize,
    local: bool,
) -> nbdgm_api::BrowseInterface {
    let list = if local {
        nbdgm_runtime::browse_list::local_only(list)
    } else {
        list
    };
    to_proto_capped(interface, own, list, workgroup, page, budget)
}

/// What a list-fetching thread hands back to its worker.
#[derive(Debug)]
pub enum Fetched {
    /// A backup browser's fetch of the master's list.
    Master(MasterListResult),
    /// A list sync across subnets.
    Sync(sync::SyncDone),
}

/// The master's servers and workgroups, or why they could not be fetched.
pub type MasterListResult =
    Result<(Vec<nbdgm_browser::Listed>, Vec<nbdgm_browser::Listed>), nbdgm_rap::RapError>;

/// Fetch the local master browser's list as a backup browser does: RAP NetServerEnum2
/// over an SMB session to `address` (MS-BRWS §3.3.6), for our workgroup's servers and
/// for the workgroups. Blocking (run on a thread of its own); bounded in time and size.
pub fn fetch_master_list(
    me: Ipv4Addr,
    address: Ipv4Addr,
    master: &str,
    workgroup: &str,
) -> MasterListResult {
    use nbdgm_rap::{net_server_enum2, Options};
    let opts = Options {
        timeout: Duration::from_secs(10),
        max_entries: 10_000,
        client_name: format!("NBDGM{}", u32::from(me) & 0xFFFF),
    };
    let conv = |v: Vec<nbdgm_rap::ServerInfo>| {
        v.into_iter()
            .map(|s| nbdgm_browser::Listed {
                name: s.name,
                os_major: s.os_major,
                os_minor: s.os_minor,
                server_type: s.server_type,
                comment: s.comment,
            })
            .collect::<Vec<_>>()
    };
    let servers = net_server_enum2(address, master, workgroup, 0xFFFF_FFFF, &opts)?;
    let groups = net_server_enum2(address, master, workgroup, 0x8000_0000, &opts)?;
    Ok((conv(servers), conv(groups)))
}

/// Ask every worker for its list; `page`: (offset, limit) of the servers; `budget`:
/// bytes of JSON the interfaces may take together, shared out equally (each interface
/// still gets at least one server from the offset, so every one of them moves on);
/// `local`: only entries heard on each subnet (none synced from another browser).
pub async fn collect(
    workers: &[WorkerHandle],
    workgroup: Option<String>,
    page: Option<(usize, usize)>,
    budget: usize,
    local: bool,
) -> Result<BrowseResult, CmdError> {
    let mut interfaces = Vec::new();
    let budget = budget / workers.len().max(1);
    for w in workers {
        let wg = workgroup.clone();
        let one = ask(w, |reply| Command::Browse {
            workgroup: wg,
            page,
            budget,
            local,
            reply,
        })
        .await?;
        // None: no browser on this interface.
        interfaces.extend(one);
    }
    Ok(BrowseResult { interfaces })
}

/// The read-only HTTP endpoint: `GET /api/browse[?workgroup=W][&local=true]` (JSON)
/// and `/healthz`.
pub mod http {
    use super::collect;
    use crate::dispatch::WorkerHandle;
    use axum::extract::{Query, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::{Json, Router};
    use serde::Deserialize;
    use std::sync::Arc;

    #[derive(Deserialize)]
    struct Params {
        workgroup: Option<String>,
        offset: Option<usize>,
        limit: Option<usize>,
        /// `true`: only entries heard on each subnet (`GET /api/browse?local=true`).
        #[serde(default)]
        local: bool,
    }

    /// The routes over the workers.
    pub fn router(workers: Arc<Vec<WorkerHandle>>) -> Router {
        Router::new()
            .route("/api/browse", get(browse))
            .route("/healthz", get(|| async { "ok\n" }))
            .with_state(workers)
    }

    async fn browse(
        State(workers): State<Arc<Vec<WorkerHandle>>>,
        Query(p): Query<Params>,
    ) -> Response {
        // HTTP has no line limit: the whole list unless a page is asked for, yet never
        // more than HTTP_BROWSE_BYTES of servers (then `servers_total` > `offset` +
        // the servers given, and `?offset=` fetches the rest).
        let page = (p.offset.is_some() || p.limit.is_some())
            .then(|| (p.offset.unwrap_or(0), p.limit.unwrap_or(usize::MAX)));
        let budget = super::HTTP_BROWSE_BYTES;
        match collect(&workers, p.workgroup, page, budget, p.local).await {
            Ok(r) => Json(r).into_response(),
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": e.code, "message": e.message})),
            )
                .into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, ErrorKind};
    use std::str::FromStr;

    /// The `[browser]` value errors and their messages.
    #[test]
    fn browser_value_errors() {
        use super::{BrowserSection, BrowserValueError};
        let mut b = BrowserSection {
            os_version: "6".into(),
            http: "localhost".into(),
            ..BrowserSection::default()
        };
        let e = b.os_version().unwrap_err();
        assert_eq!(e, BrowserValueError::OsVersionSyntax("6".into()));
        assert_eq!(e.to_string(), "\"6\": expected major.minor, as in \"6.1\"");
        b.os_version = "6.256".into();
        assert_eq!(
            b.os_version().unwrap_err().to_string(),
            "\"6.256\": \"256\" is not a number 0-255"
        );
        b.os_version = " 6 . 1".into();
        assert_eq!(b.os_version().unwrap(), (6, 1));
        assert_eq!(
            b.http_addr().unwrap_err().to_string(),
            "\"localhost\": expected IP:PORT, as in \"127.0.0.1:8139\""
        );
        assert_eq!(
            b.check().unwrap_err(),
            (
                "browser.http".to_owned(),
                "\"localhost\": expected IP:PORT, as in \"127.0.0.1:8139\"".to_owned()
            )
        );
    }

    fn cfg(text: &str) -> Result<Config, ConfigError> {
        Config::from_str(text)
    }

    #[test]
    fn defaults_listen_only() {
        let c = cfg("").unwrap();
        assert!(c.browser.listen && !c.browser.announce && !c.browser.local_master);
        assert!(c.browser.active());
        let e = c.browser.engine_config("HOST", "WG", 138);
        assert!(!e.announce && !e.potential_browser);
        assert_eq!(e.server_type, 0x0000_1003);
        assert_eq!(e.os_version, (6, 1));
    }

    #[test]
    fn full_section() {
        let c = cfg("[browser]\nannounce = true\nlocal_master = true\nos_level = 65\n\
                     preferred_master = true\ncomment = \"files\"\n\
                     server_type = [\"workstation\", \"SERVER\", \"print_q_server\"]\n\
                     os_version = \"10.0\"\nlm_announce = \"yes\"\nhttp = \"127.0.0.1:8139\"\n\
                     [[browser.remote_announce]]\naddress = \"203.0.113.255\"\nworkgroup = \"other\"\n");
        // "print_q_server" is not a name: the error names the key.
        let e = c.unwrap_err();
        assert_eq!(e.key(), Some("browser.server_type"), "{e}");
        assert!(e.to_string().contains("printq_server"), "{e}");
        let c = cfg("[browser]\nannounce = true\nlocal_master = true\nos_level = 65\n\
                     preferred_master = true\ncomment = \"files\"\n\
                     server_type = [\"workstation\", \"SERVER\", \"printq_server\"]\n\
                     os_version = \"10.0\"\nlm_announce = \"yes\"\nhttp = \"127.0.0.1:8139\"\n\
                     [[browser.remote_announce]]\naddress = \"203.0.113.255\"\nworkgroup = \"other\"\n")
        .unwrap();
        let e = c.browser.engine_config("HOST", "WG", 138);
        assert_eq!(e.server_type, 0x0000_0203);
        assert_eq!(e.os_version, (10, 0));
        assert_eq!(e.os_level, 65);
        assert!(e.preferred_master && e.potential_browser && e.announce);
        assert_eq!(e.lm_announce, nbdgm_browser::LmAnnounce::Yes);
        assert_eq!(e.remote_announce.len(), 1);
        assert_eq!(e.remote_announce[0].workgroup.as_deref(), Some("OTHER"));
        assert_eq!(
            c.browser.http_addr().unwrap(),
            Some("127.0.0.1:8139".parse().unwrap())
        );
        let n = cfg("[browser]\nserver_type = 4099\n").unwrap();
        assert_eq!(n.browser.server_type.0, 4099);
    }

    /// The domain master keys reach the engine (and the worker: `sync_http_port`).
    #[test]
    fn domain_master_keys() {
        let c = cfg(
            "[browser]\nlocal_master = true\ndomain_master = true\ndmb_sync = false\n\
                     dmb_sync_interval_s = 600\nmax_local_masters = 7\nsync_http_port = 8139\n",
        )
        .unwrap();
        let e = c.browser.engine_config("HOST", "WG", 138);
        assert!(e.domain_master && !e.dmb_sync);
        assert_eq!(e.dmb_sync_interval, std::time::Duration::from_secs(600));
        assert_eq!(e.max_local_masters, 7);
        assert_eq!(c.browser.sync_http_port, 8139);
        let d = cfg("").unwrap();
        let e = d.browser.engine_config("HOST", "WG", 138);
        assert!(!e.domain_master && e.dmb_sync);
        assert_eq!(e.dmb_sync_interval, std::time::Duration::from_secs(900));
        assert_eq!(d.browser.sync_http_port, 0);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("[browser]\nos_version = \"6\"\n", "browser.os_version"),
            ("[browser]\nos_version = \"6.300\"\n", "browser.os_version"),
            ("[browser]\nhttp = \"localhost\"\n", "browser.http"),
            ("[browser]\ncomment = \"0123456789012345678901234567890123456789abc\"\n", "browser.comment"),
            ("[browser]\nmax_servers = 0\n", "browser.max_servers"),
            ("[browser]\nelections_per_minute = 0\n", "browser.elections_per_minute"),
            ("[browser]\nlm_interval_s = 0\n", "browser.lm_interval_s"),
            ("[browser]\ndmb_sync_interval_s = 59\n", "browser.dmb_sync_interval_s"),
            ("[browser]\ndmb_sync_interval_s = 86401\n", "browser.dmb_sync_interval_s"),
            ("[browser]\nmax_local_masters = 0\n", "browser.max_local_masters"),
            ("[browser]\nrap_port = 0\n", "browser.rap_port"),
            ("[browser]\nrap_max_connections = 0\n", "browser.rap_max_connections"),
            (
                "[browser]\nrap_max_connections = 2\nrap_max_connections_per_ip = 3\n",
                "browser.rap_max_connections_per_ip",
            ),
            (
                "[[browser.remote_announce]]\naddress = \"0.0.0.0\"\n",
                "browser.remote_announce[0].address",
            ),
            (
                "[[browser.remote_announce]]\naddress = \"203.0.113.9\"\nworkgroup = \"SIXTEEN_CHARS_XX\"\n",
                "browser.remote_announce[0].workgroup",
            ),
            ("[node]\nannounce_address = \"224.0.0.1\"\n", "node.announce_address"),
            (
                "[[interface]]\naddress = \"198.51.100.1/24\"\nannounce_address = \"0.0.0.0\"\n",
                "interface[0].announce_address",
            ),
        ] {
            let e = cfg(text).unwrap_err();
            assert_eq!(e.key(), Some(key), "{text}: {e}");
            assert_eq!(e.kind(), Some(ErrorKind::Value), "{text}: {e}");
        }
        let e = cfg("[browser]\nlm_announce = \"sometimes\"\n").unwrap_err();
        assert_eq!(e.key(), Some("browser.lm_announce"), "{e}");
        let e = cfg("[browser]\nenable = true\n").unwrap_err();
        assert_eq!(e.kind(), Some(ErrorKind::UnknownKey), "{e}");
    }

    /// A list of `n` servers as hostile as announcements make them: 15-character names
    /// and 42-character comments of control characters (six bytes each in JSON), every
    /// type bit.
    fn hostile_list(n: usize) -> nbdgm_browser::BrowseList {
        let servers = (0..n)
            .map(|i| nbdgm_browser::ServerEntry {
                name: format!("\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e{i:04}"),
                workgroup: "TESTGROUP".into(),
                server_type: u32::MAX,
                os_major: 255,
                os_minor: 255,
                comment: "\x1b".repeat(42),
                periodicity_ms: u32::MAX,
                address: std::net::Ipv4Addr::new(198, 51, 100, (i % 250) as u8),
                age_s: u64::from(u32::MAX),
                expires_in_s: u64::from(u32::MAX),
                lanman: true,
                local: false,
                synced_from: None,
            })
            .collect();
        nbdgm_browser::BrowseList {
            workgroup: "TESTGROUP".into(),
            role: nbdgm_browser::Role::Potential,
            master: None,
            master_address: None,
            backups: vec![],
            servers,
            workgroups: vec![],
            domain_master: None,
            domain_master_address: None,
            local_masters: vec![],
        }
    }

    #[test]
    fn pages_are_capped_in_bytes_and_cover_the_list() {
        use super::to_proto_capped;
        use nbdgm_api::{BROWSE_PAGE_BYTES, BROWSE_PAGE_MAX, MAX_SERVER_LINE};
        use nbdgm_runtime::browse_list::to_proto;
        let ip = std::net::Ipv4Addr::new(198, 51, 100, 1);
        // Uncapped, a page of 500 such servers is over the client's line limit.
        let whole = to_proto(ip, ip, hostile_list(1500), None, Some((0, BROWSE_PAGE_MAX)));
        assert!(serde_json::to_vec(&whole).unwrap().len() > MAX_SERVER_LINE);
        // Capped: every page fits, and the pages, in order, are the whole list.
        let mut got = Vec::new();
        let mut offset = 0;
        for _ in 0..100 {
            let p = to_proto_capped(
                ip,
                ip,
                hostile_list(1500),
                None,
                Some((offset, BROWSE_PAGE_MAX)),
                BROWSE_PAGE_BYTES,
            );
            let len = serde_json::to_vec(&p).unwrap().len();
            assert!(len <= BROWSE_PAGE_BYTES, "{len}");
            assert_eq!((p.offset, p.servers_total), (offset, 1500));
            assert!(!p.servers.is_empty() && p.servers.len() < BROWSE_PAGE_MAX);
            offset += p.servers.len();
            got.extend(p.servers);
            if offset >= 1500 {
                break;
            }
        }
        assert_eq!(got, whole_list(ip));
        // A budget smaller than one entry still gives one (paging moves on).
        let p = to_proto_capped(ip, ip, hostile_list(3), None, Some((1, 10)), 10);
        assert_eq!(p.servers.len(), 1);
        assert_eq!(p.servers[0].name, hostile_list(3).servers[1].name);
        // Past the end: nothing, and the offset as asked.
        let p = to_proto_capped(ip, ip, hostile_list(3), None, Some((7, 10)), 1 << 20);
        assert!(p.servers.is_empty());
        assert_eq!((p.offset, p.servers_total), (7, 3));
    }

    fn whole_list(ip: std::net::Ipv4Addr) -> Vec<nbdgm_api::BrowseServer> {
        nbdgm_runtime::browse_list::to_proto(ip, ip, hostile_list(1500), None, None).servers
    }

    #[test]
    fn announce_address_reaches_the_interfaces() {
        let c = cfg("[node]\nannounce_address = \"203.0.113.5\"\n\
                     [[interface]]\naddress = \"198.51.100.1/24\"\n\
                     [[interface]]\naddress = \"198.51.100.2/24\"\nannounce_address = \"203.0.113.6\"\n")
        .unwrap();
        let i = c.resolve_interfaces().unwrap();
        assert_eq!(i[0].announce_address, Some("203.0.113.5".parse().unwrap()));
        assert_eq!(i[1].announce_address, Some("203.0.113.6".parse().unwrap()));
        let host = [
            i[0].announce_address.unwrap(),
            i[1].announce_address.unwrap(),
        ];
        let n = crate::runtime::node_config(&c, &i[1], &host);
        assert_eq!(n.announce_address, Some("203.0.113.6".parse().unwrap()));
        // The other interface makes this a multi-homed host.
        assert_eq!(n.multihomed, vec![host[0]]);
    }
}
