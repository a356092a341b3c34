//! `nbdgm monitor`: the monitoring service (`run`) and its read-only views of the store
//! (`status`, `history`, `diff`). The library is `nbdgm_monitor`. Text output
//! escapes every stored string (names and evidence come from the network); JSON is exact.

use crate::exit;
use clap::{Args, Subcommand, ValueEnum};
use nbdgm_monitor::{self as monitor, store, MonitorConfig, Store};
use nbdgm_wire::text::{escape, Escaped};
use std::path::PathBuf;
use std::sync::Arc;

/// Default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/nbdgm/monitor.toml";

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm monitor run --config /etc/nbdgm/monitor.toml\n  \
    nbdgm monitor status --format json\n  \
    nbdgm monitor history --target 198.51.100.10 --port 138/udp --since 2h\n  \
    nbdgm monitor diff --from 2025-01-01 --to now\n  \
    nbdgm monitor agent --central https://monitor.example:8443 --token-file /etc/nbdgm/agent.token --location dmz\n\n\
Configuration: dist/monitor.toml; reference: docs/monitor.md.")]
pub struct MonitorArgs {
    #[command(subcommand)]
    pub command: MonitorCommand,
}

#[derive(Subcommand, Debug)]
pub enum MonitorCommand {
    /// Run the checks, store results, send alerts, serve /metrics and the dashboard.
    Run(RunArgs),
    /// Latest state (the probe's own, with evidence) and verdict per check, target and port.
    Status(StatusArgs),
    /// Stored probe results (newest first), or confirmed changes with --changes.
    History(HistoryArgs),
    /// States that differ between two times or two run ids (exit 0 none, 1 some, 2 error).
    Diff(DiffArgs),
    /// A probe agent (vantage point): checks from a central monitor, results pushed over HTTPS.
    Agent(super::monitor_agent::AgentArgs),
}

/// Where the store is.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The monitor's configuration (its [store] url is used).
    #[arg(long, short, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// A store URL or SQLite path instead of the configuration's.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

/// Why a `nbdgm monitor` command stopped (exit status 2).
#[derive(Debug, thiserror::Error)]
enum MonitorCliError {
    #[error(transparent)]
    Config(#[from] monitor::ConfigError),
    #[error("no store at {0} (has `nbdgm monitor run` run?)")]
    NoStore(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Time(#[from] monitor::TimeError),
    #[error("tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("{0}")]
    Service(anyhow::Error),
    /// An option's value, by the option.
    #[error("{flag}: {source}")]
    Arg {
        flag: &'static str,
        #[source]
        source: Box<MonitorCliError>,
    },
}

impl MonitorCliError {
    fn arg(flag: &'static str) -> impl Fn(MonitorCliError) -> MonitorCliError {
        move |source| MonitorCliError::Arg {
            flag,
            source: Box::new(source),
        }
    }
}

impl StoreArgs {
    fn open(&self) -> Result<Store, MonitorCliError> {
        let (url, instance) = match &self.store {
            Some(u) => (u.clone(), "cli".to_owned()),
            None => {
                let cfg = MonitorConfig::load(&self.config)?;
                (cfg.store.url, cfg.store.instance)
            }
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(&url);
            if !std::path::Path::new(path).exists() {
                return Err(MonitorCliError::NoStore(path.to_owned()));
            }
        }
        Ok(Store::open(&url, &instance)?)
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
#[command(after_help = "With [http] listen = \"127.0.0.1:9138\":\n  \
    http://127.0.0.1:9138/                 dashboard (summary, hosts, filters, live refresh)\n  \
    http://127.0.0.1:9138/?violations=1    violations only\n  \
    http://127.0.0.1:9138/port?check=lan&target=198.51.100.10&port=138/udp   24 h / 7 d history\n  \
    http://127.0.0.1:9138/badge/lan.svg    status badge\n  \
    http://127.0.0.1:9138/metrics          Prometheus\n\
Reference: docs/monitor.md (Metrics and web page).")]
pub struct RunArgs {
    #[arg(long, short, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Validate the configuration, print a summary and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub log_format: Format,
    /// Testing: read port states from FILE instead of probing (see ScriptedProber).
    #[arg(long, hide = true, value_name = "FILE")]
    pub fake_states: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only this check.
    #[arg(long)]
    pub check: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub check: Option<String>,
    #[arg(long)]
    pub target: Option<String>,
    /// `137/udp`, ..., or `host` / `service` with --changes.
    #[arg(long)]
    pub port: Option<String>,
    /// RFC 3339, YYYY-MM-DD[ HH:MM[:SS]] (UTC), or an age such as 2h.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    /// Most rows (at most 100000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Confirmed state changes instead of raw results.
    #[arg(long)]
    pub changes: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// A time (as for history --since) or a run id (an integer).
    #[arg(long)]
    pub from: String,
    /// A time or a run id [default: now].
    #[arg(long, default_value = "now")]
    pub to: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &MonitorArgs) -> u8 {
    let r = match &args.command {
        MonitorCommand::Run(a) => run_service(a),
        MonitorCommand::Status(a) => status(a),
        MonitorCommand::History(a) => history(a),
        MonitorCommand::Diff(a) => diff(a),
        MonitorCommand::Agent(a) => return super::monitor_agent::run(a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nbdgm monitor: {e}");
            exit::USAGE
        }
    }
}

fn run_service(a: &RunArgs) -> Result<u8, MonitorCliError> {
    let cfg = MonitorConfig::load(&a.config)?;
    if a.check_config {
        println!(
            "{}: ok: {} check(s), {} sink(s), store {}, http {}",
            a.config.display(),
            cfg.checks.len(),
            cfg.sinks.len(),
            store::redact_url(&cfg.store.url),
            cfg.http
                .as_ref()
                .map_or("off".to_owned(), |h| h.listen.to_string())
        );
        for c in &cfg.checks {
            println!(
                "  check {}: {} target spec(s), ports {}, expect {}, every {:?}, {} confirmation(s)",
                c.name,
                c.targets.len(),
                c.ports
                    .iter()
                    .map(|p| monitor::config::port_name(*p))
                    .collect::<Vec<_>>()
                    .join(","),
                c.expect.as_str(),
                c.interval,
                c.confirmations
            );
            if !c.agents.is_empty() {
                println!("    also run by agent(s): {}", c.agents.join(", "));
            }
        }
        if let Some(a) = &cfg.agents {
            println!(
                "  agent API on {} ({}): {}",
                a.listen,
                if a.tls.is_some() { "TLS" } else { "PLAINTEXT" },
                a.agents
                    .iter()
                    .map(|x| format!("{}@{}", x.name, x.location))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let mut nb = monitor::evidence::Neighbours::read();
        for w in monitor::evidence::short_timeout_warnings(&cfg.checks, &mut nb) {
            println!("  warning: {w}");
        }
        return Ok(exit::OK);
    }
    let format = match a.log_format {
        Format::Json => nbdgm_runtime::LogFormat::Json,
        Format::Text => nbdgm_runtime::LogFormat::Text,
    };
    nbdgm_runtime::init_logging(format, "info");
    monitor::alert::quiet_library_logs();
    let prober: Arc<dyn monitor::Prober> = match &a.fake_states {
        Some(p) => Arc::new(monitor::ScriptedProber { path: p.clone() }),
        None => Arc::new(monitor::RealProber::new()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .build()
        .map_err(MonitorCliError::Runtime)?;
    rt.block_on(monitor::run_service(&a.config, prober))
        .map_err(MonitorCliError::Service)?;
    Ok(exit::OK)
}

fn print_json(v: &impl serde::Serialize) {
    if let Ok(s) = serde_json::to_string_pretty(v) {
        println!("{s}");
    }
}

/// Widest evidence shown by `status` in text (JSON is exact).
const STATUS_EVIDENCE_WIDTH: usize = 100;

fn status(a: &StatusArgs) -> Result<u8, MonitorCliError> {
    let mut s = a.store.open()?;
    let rows = s.latest(a.check.as_deref())?;
    match a.format {
        Format::Json => print_json(&rows),
        Format::Text => {
            if rows.is_empty() {
                println!("no result yet");
                return Ok(exit::OK);
            }
            println!(
                "{:<12} {:<15} {:<8} {:<13} {:<9} {:<8} {:<27} EVIDENCE",
                "CHECK", "TARGET", "PORT", "STATE", "VERDICT", "EXPECTED", "SINCE"
            );
            for r in &rows {
                let state = match (&r.state, &r.value) {
                    (Some(s), _) => esc(s),
                    // `service`: no raw result; the confirmed name table stands in.
                    (None, Some(v)) => truncate(&esc(v), 40),
                    (None, None) => "-".to_owned(),
                };
                let expected = r.expected.as_deref().filter(|e| !e.is_empty());
                let evidence = match (&r.state, &r.evidence) {
                    (Some(_), Some(e)) => esc(e),
                    _ => "-".to_owned(),
                };
                println!(
                    "{:<12} {:<15} {:<8} {:<13} {:<9} {:<8} {:<27} {}",
                    esc(&r.check),
                    esc(&r.target),
                    esc(&r.port),
                    state,
                    r.verdict.as_str(),
                    expected.map_or("-".to_owned(), esc),
                    r.since.as_deref().map_or("-".to_owned(), esc),
                    truncate(&evidence, STATUS_EVIDENCE_WIDTH)
                );
            }
        }
    }
    Ok(exit::OK)
}

/// A stored string for a terminal: escaped ([`escape`]), owned so widths apply.
fn esc(s: &str) -> String {
    escape(s).into_owned()
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn history(a: &HistoryArgs) -> Result<u8, MonitorCliError> {
    let q = store::Query {
        check: a.check.clone(),
        target: a.target.clone(),
        port: a.port.clone(),
        since: a
            .since
            .as_deref()
            .map(monitor::parse_time)
            .transpose()
            .map_err(|e| MonitorCliError::arg("--since")(e.into()))?,
        until: a
            .until
            .as_deref()
            .map(monitor::parse_time)
            .transpose()
            .map_err(|e| MonitorCliError::arg("--until")(e.into()))?,
        limit: a.limit.clamp(1, store::MAX_ROWS),
    };
    let mut s = a.store.open()?;
    if a.changes {
        let rows = s.changes(&q)?;
        match a.format {
            Format::Json => print_json(&rows),
            Format::Text => {
                for r in &rows {
                    println!(
                        "{} {} {} {} #{}: {} -> {}{}{}",
                        Escaped(&r.ts),
                        Escaped(&r.check),
                        Escaped(&r.target),
                        Escaped(&r.port),
                        r.seq,
                        Escaped(r.old.as_deref().unwrap_or("(none)")),
                        truncate(&esc(&r.new), 60),
                        r.kind
                            .as_deref()
                            .map(|k| format!(" {}", Escaped(k)))
                            .unwrap_or_default(),
                        if r.in_maintenance {
                            " (maintenance)"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
    } else {
        let rows = s.history(&q)?;
        match a.format {
            Format::Json => print_json(&rows),
            Format::Text => {
                for r in &rows {
                    println!(
                        "{} run {} {} {} {} {} ({})",
                        Escaped(&r.ts),
                        r.run_id,
                        Escaped(&r.check),
                        Escaped(&r.target),
                        Escaped(&r.port),
                        Escaped(&r.state),
                        truncate(&esc(&r.evidence), 80)
                    );
                }
            }
        }
    }
    Ok(exit::OK)
}

fn snapshot(
    s: &mut Store,
    arg: &str,
) -> Result<std::collections::BTreeMap<monitor::engine::Key, String>, MonitorCliError> {
    if let Ok(id) = arg.trim().parse::<i64>() {
        return Ok(s.states_of_run(id)?);
    }
    let t = monitor::parse_time(arg)?;
    Ok(s.states_at(t)?)
}

fn diff(a: &DiffArgs) -> Result<u8, MonitorCliError> {
    let mut s = a.store.open()?;
    let from = snapshot(&mut s, &a.from).map_err(MonitorCliError::arg("--from"))?;
    let to = snapshot(&mut s, &a.to).map_err(MonitorCliError::arg("--to"))?;
    let d = store::diff(&from, &to);
    match a.format {
        Format::Json => print_json(&d),
        Format::Text => {
            for e in &d {
                println!(
                    "{} {} {}: {} -> {}",
                    Escaped(&e.check),
                    Escaped(&e.target),
                    Escaped(&e.port),
                    Escaped(e.from.as_deref().unwrap_or("(none)")),
                    Escaped(e.to.as_deref().unwrap_or("(none)"))
                );
            }
        }
    }
    Ok(if d.is_empty() {
        exit::OK
    } else {
        exit::FINDINGS
    })
}
