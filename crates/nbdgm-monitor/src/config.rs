//! The monitor's TOML configuration (`dist/monitor.toml`): checks, sinks, store, HTTP
//! listener, maintenance windows. Errors name the key and the line (`monitor.toml:12:
//! check[1].interval: ...`).
//!
//! Positions ([`positions`]): a `toml` error carries a byte span, mapped to the key path
//! written there; a validation error carries a key path (`check[1].ports`), mapped to its
//! line; both through `toml_edit`'s spans.

pub mod agents;
mod positions;

use crate::maintenance::Window;
pub use agents::{AgentSpec, AgentsConfig};
use nbdgm_probe::probe::{Port, ProbeOptions};
use positions::{key_at, line_of_key};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest configuration file read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Most checks in one file.
pub const MAX_CHECKS: usize = 256;
/// Most addresses one check expands to (CIDR ranges included).
pub const MAX_TARGETS_PER_CHECK: usize = 4096;
/// Most sinks.
pub const MAX_SINKS: usize = 32;

/// A configuration error: file, line (0 = unknown), key path and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub line: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .file
            .as_ref()
            .map_or_else(|| "<config>".to_owned(), |p| p.display().to_string());
        write!(f, "{file}")?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// What a check expects its ports to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Open,
    Closed,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Open => "open",
            Expect::Closed => "closed",
        }
    }
}

/// The whole file.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub store: StoreConfig,
    pub http: Option<HttpConfig>,
    pub alerts: AlertConfig,
    pub checks: Vec<Check>,
    pub sinks: Vec<Sink>,
    /// Windows that apply to every check.
    pub maintenance: Vec<Window>,
    /// The agent API and its agents (vantage points); `None` without `[agents]`.
    pub agents: Option<AgentsConfig>,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// A file path (or `sqlite:PATH`) for SQLite, or a `postgres://` / `postgresql://` URL.
    pub url: String,
    /// Results and changes older than this are deleted (hourly); 0 keeps everything.
    pub retention_days: u32,
    /// This instance's name in the store (default: the host name).
    pub instance: String,
    /// Split each check's targets between the instances sharing a PostgreSQL store
    /// (chunks claimed with leases, [`crate::fleet`]). Default: on with PostgreSQL; SQLite
    /// cannot (one instance probes everything).
    pub partition: bool,
    /// Targets per claimed chunk (partitioned mode).
    pub chunk: usize,
}

/// Most targets in one claimed chunk.
pub const MAX_CHUNK: usize = 4096;

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: std::net::SocketAddr,
    /// `Host` names answered besides the listening address and `localhost` (others
    /// get 421: DNS rebinding).
    pub allowed_hosts: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// Delivery attempts per sink (1 = no retry).
    pub attempts: u32,
    /// First retry delay (doubled each time, capped at 60 s).
    pub backoff: Duration,
    /// Alerts waiting for delivery; more are dropped (and logged as failed).
    pub queue: usize,
}

/// One check.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    /// As written: addresses, CIDR ranges, host names.
    pub targets: Vec<String>,
    pub ports: Vec<Port>,
    pub expect: Expect,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub rate: u32,
    pub concurrency: usize,
    pub workgroup: Option<String>,
    /// Consecutive equal results before a state counts (and alerts).
    pub confirmations: u32,
    /// `open|filtered` and `likely-open` count as open (else they are "ambiguous").
    pub ambiguous_as_open: bool,
    /// Re-alert every so often while in the bad state.
    pub remind_every: Option<Duration>,
    pub maintenance: Vec<Window>,
    /// Sink names; empty = every sink.
    pub sinks: Vec<String>,
    /// `[[agent]]` names that also run this check (results stored as `NAME@LOCATION`).
    pub agents: Vec<String>,
}

impl Check {
    pub fn probe_options(&self) -> ProbeOptions {
        ProbeOptions {
            ports: self.ports.clone(),
            timeout: self.timeout,
            retries: self.retries,
            rate: self.rate,
            concurrency: self.concurrency,
            workgroup: self.workgroup.clone(),
        }
    }
}

/// Format of a webhook body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    Json,
    Slack,
    Discord,
    Ntfy,
}

/// How an email sink talks to its SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTls {
    /// Plaintext (no credentials allowed); default port 25.
    None,
    /// STARTTLS, required: a server that does not offer it gets nothing; default port 587.
    StartTls,
    /// TLS from the first byte (SMTPS); default port 465.
    Implicit,
}

/// Where alerts go.
#[derive(Debug, Clone)]
pub struct Sink {
    pub name: String,
    pub kind: SinkKind,
    /// Alert kinds sent to this sink; empty = all.
    pub kinds: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum SinkKind {
    Webhook {
        url: String,
        format: WebhookFormat,
        timeout: Duration,
        headers: BTreeMap<String, String>,
    },
    Email {
        server: String,
        port: u16,
        tls: EmailTls,
        from: String,
        to: Vec<String>,
        username: Option<String>,
        /// Name of the environment variable holding the password.
        password_env: Option<String>,
        timeout: Duration,
    },
    Exec {
        program: PathBuf,
        args: Vec<String>,
        timeout: Duration,
    },
}

// ---------------------------------------------------------------------------
// Raw file structure
// ---------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    store: RawStore,
    http: Option<RawHttp>,
    #[serde(default)]
    alerts: RawAlerts,
    #[serde(default)]
    defaults: RawCheck,
    #[serde(default)]
    check: Vec<RawCheck>,
    #[serde(default)]
    sink: Vec<RawSink>,
    #[serde(default)]
    maintenance: Vec<RawWindow>,
    agents: Option<agents::RawAgents>,
    #[serde(default)]
    agent: Vec<agents::RawAgent>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<String>,
    retention_days: Option<u32>,
    instance: Option<String>,
    partition: Option<bool>,
    chunk: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: String,
    #[serde(default)]
    allowed_hosts: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    attempts: Option<u32>,
    backoff: Option<String>,
    queue: Option<usize>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: Option<String>,
    targets: Option<Vec<String>>,
    ports: Option<Vec<String>>,
    expect: Option<Expect>,
    interval: Option<String>,
    timeout: Option<String>,
    retries: Option<u32>,
    rate: Option<u32>,
    concurrency: Option<usize>,
    workgroup: Option<String>,
    confirmations: Option<u32>,
    ambiguous_as_open: Option<bool>,
    remind_every: Option<String>,
    #[serde(default)]
    maintenance: Vec<RawWindow>,
    sinks: Option<Vec<String>>,
    agents: Option<Vec<String>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    days: Option<Vec<String>>,
    start: Option<String>,
    end: Option<String>,
    from: Option<toml::value::Datetime>,
    until: Option<toml::value::Datetime>,
    timezone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    kinds: Vec<String>,
    // webhook
    url: Option<String>,
    format: Option<WebhookFormat>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    // email
    server: Option<String>,
    port: Option<u16>,
    tls: Option<EmailTls>,
    /// Older spelling: `starttls = true` is `tls = "starttls"`.
    starttls: Option<bool>,
    from: Option<String>,
    to: Option<Vec<String>>,
    username: Option<String>,
    password_env: Option<String>,
    // exec
    program: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    // all
    timeout: Option<String>,
}

/// Alert kind names accepted in `kinds`.
pub const ALERT_KINDS: &[&str] = &[
    "PORT_NEW_OPEN",
    "PORT_NOW_CLOSED",
    "PORT_STATE_AMBIGUOUS",
    "SERVICE_CHANGED",
    "HOST_DOWN",
    "DETECTION",
];

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Why a duration or a port does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{0:?} is not a duration (e.g. 500ms, 30s, 5m, 2h, 1d)")]
    NotADuration(String),
    #[error("{0:?} is longer than a year")]
    TooLong(String),
    #[error("unknown port {0:?}, expected one of 137/udp, 138/udp, 138/tcp, 139/tcp, 445/tcp")]
    UnknownPort(String),
}

/// A duration: `500ms`, `30s`, `5m`, `2h`, `1d`, or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || ValueError::NotADuration(s.to_owned());
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    }
    .ok_or_else(bad)?;
    if ms > 366 * 86_400_000 {
        return Err(ValueError::TooLong(s.to_owned()));
    }
    Ok(Duration::from_millis(ms))
}

/// `137/udp` etc.
pub fn parse_port(s: &str) -> Result<Port, ValueError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "137/udp" => Ok(Port::Ns137Udp),
        "138/udp" => Ok(Port::Dgm138Udp),
        "138/tcp" => Ok(Port::Dgm138Tcp),
        "139/tcp" => Ok(Port::Ssn139Tcp),
        "445/tcp" => Ok(Port::Smb445Tcp),
        _ => Err(ValueError::UnknownPort(s.to_owned())),
    }
}

/// The port's name as in the config and the store (`137/udp`).
pub fn port_name(p: Port) -> &'static str {
    match p {
        Port::Ns137Udp => "137/udp",
        Port::Dgm138Udp => "138/udp",
        Port::Dgm138Tcp => "138/tcp",
        Port::Ssn139Tcp => "139/tcp",
        Port::Smb445Tcp => "445/tcp",
    }
}

/// An issue found by validation: a key path and a message.
struct Issue {
    key: String,
    message: String,
}

fn issue(key: impl Into<String>, message: impl fmt::Display) -> Issue {
    Issue {
        key: key.into(),
        message: message.to_string(),
    }
}

impl MonitorConfig {
    /// Read and parse a file (at most [`MAX_FILE_BYTES`]).
    pub fn load(path: &Path) -> Result<MonitorConfig, ConfigError> {
        Self::parse(&read_file(path)?, Some(path))
    }

    /// Parse text; `file` names it in errors.
    pub fn parse(text: &str, file: Option<&Path>) -> Result<MonitorConfig, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| de_error(text, file, &e))?;
        convert(raw).map_err(|i| issue_error(text, file, i))
    }

    /// The check called `name`.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// A file of at most [`MAX_FILE_BYTES`].
pub(crate) fn read_file(path: &Path) -> Result<String, ConfigError> {
    let err = |message: String| ConfigError {
        file: Some(path.to_owned()),
        line: 0,
        key: String::new(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(err(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    Ok(text)
}

/// A `toml` error with the key path and line it points at.
pub(crate) fn de_error(text: &str, file: Option<&Path>, e: &toml::de::Error) -> ConfigError {
    let pos = e.span().map(|s| s.start);
    let (line, mut key) = pos.map_or((0, String::new()), |p| key_at(text, p));
    let message = e.message().trim().replace('\n', "; ");
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        if !key.ends_with(field) {
            key = if key.is_empty() {
                field.to_owned()
            } else {
                format!("{key}.{field}")
            };
        }
    }
    ConfigError {
        file: file.map(Path::to_owned),
        line,
        key,
        message,
    }
}

/// A validation error at key path `key` (its line looked up in `text`).
pub(crate) fn key_error(
    text: &str,
    file: Option<&Path>,
    key: impl Into<String>,
    message: impl fmt::Display,
) -> ConfigError {
    issue_error(text, file, issue(key, message))
}

fn issue_error(text: &str, file: Option<&Path>, i: Issue) -> ConfigError {
    ConfigError {
        file: file.map(Path::to_owned),
        line: line_of_key(text, &i.key),
        key: i.key,
        message: i.message,
    }
}

/// Only the `[[sink]]` tables of a file that holds other tables too (`nbdgm watch`'s
/// configuration), with the same checks as [`MonitorConfig::parse`]; every other key is
/// ignored.
pub fn parse_sinks(text: &str, file: Option<&Path>) -> Result<Vec<Sink>, ConfigError> {
    #[derive(Deserialize)]
    struct SinksOnly {
        #[serde(default)]
        sink: Vec<RawSink>,
    }
    let raw: SinksOnly = toml::from_str(text).map_err(|e| de_error(text, file, &e))?;
    sinks(raw.sink).map_err(|i| issue_error(text, file, i))
}

fn sinks(raw: Vec<RawSink>) -> Result<Vec<Sink>, Issue> {
    if raw.len() > MAX_SINKS {
        return Err(issue("sink", format!("at most {MAX_SINKS} sinks")));
    }
    let mut sinks = Vec::new();
    for (i, s) in raw.into_iter().enumerate() {
        let s = sink(i, s, &sinks)?;
        sinks.push(s);
    }
    Ok(sinks)
}

pub(crate) fn default_instance() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "nbdgm-monitor".to_owned())
}

fn dur(key: &str, v: &Option<String>, default: Duration) -> Result<Duration, Issue> {
    match v {
        None => Ok(default),
        Some(s) => parse_duration(s).map_err(|m| issue(key, m)),
    }
}

fn convert(raw: RawFile) -> Result<MonitorConfig, Issue> {
    let store = store(raw.store)?;
    let http = raw.http.map(http).transpose()?;
    let alerts = alerts(raw.alerts)?;
    let sinks = sinks(raw.sink)?;
    let mut maintenance = Vec::new();
    for (i, w) in raw.maintenance.iter().enumerate() {
        maintenance.push(window(&format!("maintenance[{i}]"), w)?);
    }
    if raw.check.is_empty() {
        return Err(issue("check", "at least one [[check]] is needed"));
    }
    if raw.check.len() > MAX_CHECKS {
        return Err(issue("check", format!("at most {MAX_CHECKS} checks")));
    }
    let mut checks: Vec<Check> = Vec::new();
    for (i, c) in raw.check.into_iter().enumerate() {
        let c = check(i, c, &raw.defaults, &sinks, &checks)?;
        checks.push(c);
    }
    let agents = agents::convert(raw.agents, raw.agent)?;
    agents::check_assignments(agents.as_ref(), &checks)?;
    Ok(MonitorConfig {
        store,
        http,
        alerts,
        checks,
        sinks,
        maintenance,
        agents,
    })
}

fn store(raw: RawStore) -> Result<StoreConfig, Issue> {
    let store = StoreConfig {
        url: raw
            .url
            .unwrap_or_else(|| "/var/lib/nbdgm/monitor.db".to_owned()),
        retention_days: raw.retention_days.unwrap_or(30),
        instance: raw.instance.unwrap_or_else(default_instance),
        partition: false,
        chunk: raw.chunk.unwrap_or(64),
    };
    let pg = store.url.starts_with("postgres://") || store.url.starts_with("postgresql://");
    let store = StoreConfig {
        partition: match raw.partition {
            Some(true) if !pg => {
                return Err(issue(
                    "store.partition",
                    "needs a postgres:// store (SQLite: one instance probes every target)",
                ))
            }
            Some(p) => p,
            None => pg,
        },
        ..store
    };
    if !(1..=MAX_CHUNK).contains(&store.chunk) {
        return Err(issue("store.chunk", format!("must be 1-{MAX_CHUNK}")));
    }
    if store.url.trim().is_empty() {
        return Err(issue("store.url", "must not be empty"));
    }
    if store.instance.is_empty() || store.instance.len() > 64 {
        return Err(issue("store.instance", "1-64 characters"));
    }
    Ok(store)
}

fn http(h: RawHttp) -> Result<HttpConfig, Issue> {
    let listen = h.listen.parse().map_err(|_| {
        issue(
            "http.listen",
            format!("{:?} is not IP:PORT (e.g. 127.0.0.1:9138)", h.listen),
        )
    })?;
    if let Some(n) = h
        .allowed_hosts
        .iter()
        .find(|n| n.is_empty() || n.contains([':', '/', ' ']))
    {
        return Err(issue(
            "http.allowed_hosts",
            format!("{n:?} is not a host name (no port, no scheme)"),
        ));
    }
    Ok(HttpConfig {
        listen,
        allowed_hosts: h.allowed_hosts,
    })
}

fn alerts(raw: RawAlerts) -> Result<AlertConfig, Issue> {
    let alerts = AlertConfig {
        attempts: raw.attempts.unwrap_or(3),
        backoff: dur("alerts.backoff", &raw.backoff, Duration::from_secs(1))?,
        queue: raw.queue.unwrap_or(1024),
    };
    if !(1..=10).contains(&alerts.attempts) {
        return Err(issue("alerts.attempts", "must be 1-10"));
    }
    if !(1..=100_000).contains(&alerts.queue) {
        return Err(issue("alerts.queue", "must be 1-100000"));
    }
    Ok(alerts)
}

/// `[[sink]]` number `i`; `earlier` are the sinks before it.
fn sink(i: usize, s: RawSink, earlier: &[Sink]) -> Result<Sink, Issue> {
    let k = |f: &str| format!("sink[{i}].{f}");
    if s.name.is_empty() || earlier.iter().any(|o| o.name == s.name) {
        return Err(issue(k("name"), "must be non-empty and unique"));
    }
    for kind in &s.kinds {
        if !ALERT_KINDS.contains(&kind.as_str()) {
            return Err(issue(
                k("kinds"),
                format!("unknown alert kind {kind:?}, expected one of {ALERT_KINDS:?}"),
            ));
        }
    }
    let timeout = dur(&k("timeout"), &s.timeout, Duration::from_secs(10))?;
    let kind = match s.kind.as_str() {
        "webhook" => {
            let url = s
                .url
                .clone()
                .ok_or_else(|| issue(k("url"), "required for a webhook"))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(issue(k("url"), "must start with http:// or https://"));
            }
            SinkKind::Webhook {
                url,
                format: s.format.unwrap_or(WebhookFormat::Json),
                timeout,
                headers: s.headers.clone(),
            }
        }
        "email" => email(&k, &s, timeout)?,
        "exec" => {
            let program = s
                .program
                .clone()
                .ok_or_else(|| issue(k("program"), "required for exec"))?;
            if !program.starts_with('/') {
                return Err(issue(k("program"), "must be an absolute path"));
            }
            if s.args.len() > 64 {
                return Err(issue(k("args"), "at most 64 arguments"));
            }
            SinkKind::Exec {
                program: PathBuf::from(program),
                args: s.args.clone(),
                timeout,
            }
        }
        other => {
            return Err(issue(
                k("type"),
                format!("unknown sink type {other:?}, expected webhook, email or exec"),
            ))
        }
    };
    Ok(Sink {
        name: s.name,
        kind,
        kinds: s.kinds,
    })
}

fn email(k: &dyn Fn(&str) -> String, s: &RawSink, timeout: Duration) -> Result<SinkKind, Issue> {
    let to = s.to.clone().unwrap_or_default();
    if to.is_empty() {
        return Err(issue(k("to"), "at least one recipient"));
    }
    let tls = match (s.tls, s.starttls) {
        (Some(t), None) => t,
        (None, Some(true)) => EmailTls::StartTls,
        (None, Some(false) | None) => EmailTls::None,
        (Some(_), Some(_)) => {
            return Err(issue(
                k("starttls"),
                "use `tls` alone (starttls is its old form)",
            ))
        }
    };
    if s.username.is_some() && tls == EmailTls::None {
        return Err(issue(
            k("tls"),
            "credentials (username) are never sent without TLS: set tls = \"starttls\" \
             or \"implicit\"",
        ));
    }
    Ok(SinkKind::Email {
        server: s
            .server
            .clone()
            .ok_or_else(|| issue(k("server"), "required for email"))?,
        port: s.port.unwrap_or(match tls {
            EmailTls::None => 25,
            EmailTls::StartTls => 587,
            EmailTls::Implicit => 465,
        }),
        tls,
        from: s
            .from
            .clone()
            .ok_or_else(|| issue(k("from"), "required for email"))?,
        to,
        username: s.username.clone(),
        password_env: s.password_env.clone(),
        timeout,
    })
}

/// `[[check]]` number `i` over the `[defaults]` `d`; `earlier` are the checks before it.
fn check(
    i: usize,
    c: RawCheck,
    d: &RawCheck,
    sinks: &[Sink],
    earlier: &[Check],
) -> Result<Check, Issue> {
    let k = |f: &str| format!("check[{i}].{f}");
    let name = c.name.unwrap_or_else(|| format!("check{}", i + 1));
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
    {
        return Err(issue(k("name"), "1-64 characters of A-Z a-z 0-9 - _ ."));
    }
    if earlier.iter().any(|o| o.name == name) {
        return Err(issue(k("name"), format!("duplicate check name {name:?}")));
    }
    let targets = check_targets(&k, c.targets.or_else(|| d.targets.clone()))?;
    let ports = check_ports(&k, c.ports.or_else(|| d.ports.clone()))?;
    let interval = dur(
        &k("interval"),
        &c.interval.or_else(|| d.interval.clone()),
        Duration::from_secs(300),
    )?;
    if interval < Duration::from_millis(100) {
        return Err(issue(k("interval"), "at least 100ms"));
    }
    let timeout = dur(
        &k("timeout"),
        &c.timeout.or_else(|| d.timeout.clone()),
        Duration::from_secs(2),
    )?;
    if timeout.is_zero() || timeout > Duration::from_secs(60) {
        return Err(issue(k("timeout"), "must be more than 0 and at most 60s"));
    }
    let retries = c.retries.or(d.retries).unwrap_or(1);
    if retries > 10 {
        return Err(issue(k("retries"), "at most 10"));
    }
    let confirmations = c.confirmations.or(d.confirmations).unwrap_or(2);
    if !(1..=100).contains(&confirmations) {
        return Err(issue(k("confirmations"), "must be 1-100"));
    }
    let concurrency = c.concurrency.or(d.concurrency).unwrap_or(16);
    if !(1..=1024).contains(&concurrency) {
        return Err(issue(k("concurrency"), "must be 1-1024"));
    }
    let remind_every = match c.remind_every.or_else(|| d.remind_every.clone()) {
        None => None,
        Some(s) => {
            let v = parse_duration(&s).map_err(|m| issue(k("remind_every"), m))?;
            if v < Duration::from_secs(1) {
                return Err(issue(k("remind_every"), "at least 1s"));
            }
            Some(v)
        }
    };
    let mut windows = Vec::new();
    for (j, w) in c.maintenance.iter().enumerate() {
        windows.push(window(&format!("check[{i}].maintenance[{j}]"), w)?);
    }
    let check_sinks = c.sinks.or_else(|| d.sinks.clone()).unwrap_or_default();
    if let Some(s) = check_sinks
        .iter()
        .find(|s| !sinks.iter().any(|o| &o.name == *s))
    {
        return Err(issue(k("sinks"), format!("no [[sink]] named {s:?}")));
    }
    Ok(Check {
        name,
        targets,
        ports,
        expect: c.expect.or(d.expect).unwrap_or(Expect::Closed),
        interval,
        timeout,
        retries,
        rate: c.rate.or(d.rate).unwrap_or(100),
        concurrency,
        workgroup: c.workgroup.or_else(|| d.workgroup.clone()),
        confirmations,
        ambiguous_as_open: c.ambiguous_as_open.or(d.ambiguous_as_open).unwrap_or(false),
        remind_every,
        maintenance: windows,
        sinks: check_sinks,
        agents: c.agents.or_else(|| d.agents.clone()).unwrap_or_default(),
    })
}

fn check_targets(
    k: &dyn Fn(&str) -> String,
    targets: Option<Vec<String>>,
) -> Result<Vec<String>, Issue> {
    let targets = targets.unwrap_or_default();
    if targets.is_empty() {
        return Err(issue(k("targets"), "at least one target"));
    }
    let mut count = 0usize;
    for t in &targets {
        count += crate::targets::count(t).map_err(|m| issue(k("targets"), m))?;
    }
    if count > MAX_TARGETS_PER_CHECK {
        return Err(issue(
            k("targets"),
            format!("{count} addresses; at most {MAX_TARGETS_PER_CHECK} per check"),
        ));
    }
    Ok(targets)
}

fn check_ports(k: &dyn Fn(&str) -> String, names: Option<Vec<String>>) -> Result<Vec<Port>, Issue> {
    let names = names.unwrap_or_else(|| {
        ["137/udp", "138/udp", "139/tcp", "445/tcp"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let mut ports = Vec::new();
    for p in &names {
        let p = parse_port(p).map_err(|m| issue(k("ports"), m))?;
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    if ports.is_empty() {
        return Err(issue(k("ports"), "at least one port"));
    }
    Ok(ports)
}

fn window(key: &str, w: &RawWindow) -> Result<Window, Issue> {
    let k = |f: &str| format!("{key}.{f}");
    let parse_dt = |f: &str, v: &toml::value::Datetime| {
        chrono::DateTime::parse_from_rfc3339(&v.to_string())
            .map(|d| d.with_timezone(&chrono::Utc))
            .map_err(|_| issue(k(f), "an RFC 3339 date and time with offset"))
    };
    match (&w.from, &w.until) {
        (Some(from), Some(until)) => {
            if w.days.is_some() || w.start.is_some() || w.end.is_some() {
                return Err(issue(
                    k("from"),
                    "use either from/until or days/start/end, not both",
                ));
            }
            let from = parse_dt("from", from)?;
            let until = parse_dt("until", until)?;
            if until <= from {
                return Err(issue(k("until"), "must be after `from`"));
            }
            return Ok(Window::Absolute { from, until });
        }
        (Some(_), None) => return Err(issue(k("until"), "`from` needs `until`")),
        (None, Some(_)) => return Err(issue(k("from"), "`until` needs `from`")),
        (None, None) => {}
    }
    let days = w.days.clone().unwrap_or_else(|| vec!["mon-sun".to_owned()]);
    let days = crate::maintenance::parse_days(&days).map_err(|m| issue(k("days"), m))?;
    let start = w
        .start
        .as_deref()
        .ok_or_else(|| issue(k("start"), "required (HH:MM), or use from/until"))?;
    let end = w
        .end
        .as_deref()
        .ok_or_else(|| issue(k("end"), "required (HH:MM)"))?;
    let start = crate::maintenance::parse_hm(start).map_err(|m| issue(k("start"), m))?;
    let end = crate::maintenance::parse_hm(end).map_err(|m| issue(k("end"), m))?;
    let utc = match w.timezone.as_deref().unwrap_or("local") {
        "local" => false,
        "utc" | "UTC" => true,
        other => {
            return Err(issue(
                k("timezone"),
                format!("{other:?}: expected \"local\" or \"utc\""),
            ))
        }
    };
    Ok(Window::Weekly {
        days,
        start,
        end,
        utc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
