//! `nbdgm monitor`: checks on a schedule, a store of every result and state change
//! (SQLite or PostgreSQL), edge-triggered alerts on confirmed changes (webhook, email,
//! exec), Prometheus metrics and a small web page.
//!
//! - [`config`]: the TOML file (`dist/monitor.toml`), errors with key and line
//! - [`targets`]: addresses, CIDR ranges, host names
//! - [`maintenance`]: weekly and absolute windows without alerts
//! - [`engine`]: confirmations, edges, reminders (no I/O)
//! - [`evidence`]: what a result proves (host evidence, silences too short to mean anything)
//! - [`store`]: SQLite / PostgreSQL, no double alerts between instances
//! - [`scheduler`]: the check tasks and the alert task
//! - [`fleet`]: instances on one PostgreSQL store splitting the targets (claims, leases)
//! - [`alert`]: events and sinks
//! - [`metrics`], [`web`]: `/metrics`, `/`, `/api/state`, `/api/changes`
//! - [`prober`]: the [`prober::Prober`] trait, the real probe and a scripted one
//! - [`agent`]: vantage points: the agent API (`[agents]`) and the agent itself
//!
//! [`Monitor`] runs it all inside a tokio runtime; [`run_service`] adds the signals
//! (SIGTERM/SIGINT stop, SIGHUP reload). The probes themselves are `nbdgm_probe::probe`.
#![forbid(unsafe_code)]

pub mod agent;
pub mod alert;
pub mod config;
pub mod engine;
pub mod evidence;
pub mod external;
pub mod fleet;
pub mod maintenance;
pub mod metrics;
pub mod prober;
pub mod scheduler;
pub mod store;
pub mod targets;
pub mod web;

/// The time library of the API (timestamps are `chrono::DateTime<Utc>`).
pub use chrono;
pub use config::{ConfigError, MonitorConfig};
pub use prober::{Prober, RealProber, ScriptedProber};
pub use store::Store;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A time argument that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time (RFC 3339, YYYY-MM-DD[ HH:MM[:SS]] UTC, now, or an age like 2h)")]
pub struct TimeError(pub String);

/// A time argument: RFC 3339, `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` (UTC), `now`, or a
/// duration ago (`30m`, `2h`, `7d`).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, TimeError> {
    let s = s.trim();
    if s == "now" {
        return Ok(Utc::now());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = config::parse_duration(s) {
        if let Ok(d) = chrono::Duration::from_std(d) {
            return Ok(Utc::now() - d);
        }
    }
    Err(TimeError(s.to_owned()))
}

struct Generation {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    alerts: JoinHandle<()>,
    alert_stop: Arc<AtomicBool>,
}

/// A running monitor.
pub struct Monitor {
    config: MonitorConfig,
    prober: Arc<dyn Prober>,
    store: Arc<Mutex<Store>>,
    metrics: Arc<metrics::Metrics>,
    web_config: web::SharedConfig,
    generation: Option<Generation>,
    http: Option<(SocketAddr, watch::Sender<bool>, JoinHandle<()>)>,
    agents: Option<agent::Listener>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("checks", &self.config.checks.len())
            .field("http", &self.http_addr())
            .finish()
    }
}

/// Open the store a configuration names (blocking).
pub fn open_store(cfg: &MonitorConfig) -> Result<Store, store::StoreError> {
    Store::open(&cfg.store.url, &cfg.store.instance)
}

impl Monitor {
    /// Open the store, bind the HTTP listener and start the checks (inside a tokio runtime).
    pub async fn start(config: MonitorConfig, prober: Arc<dyn Prober>) -> anyhow::Result<Monitor> {
        let c = config.clone();
        let store = tokio::task::spawn_blocking(move || open_store(&c))
            .await
            .map_err(|e| anyhow::anyhow!("store task: {e}"))?
            .map_err(|e| anyhow::anyhow!("store {}: {e}", store::redact_url(&config.store.url)))?;
        let store = Arc::new(Mutex::new(store));
        let mut neighbours = evidence::Neighbours::read();
        for w in evidence::short_timeout_warnings(&config.checks, &mut neighbours) {
            tracing::warn!("{w}");
        }
        let metrics = Arc::new(metrics::Metrics::new());
        let web_config: web::SharedConfig =
            Arc::new(std::sync::RwLock::new(Arc::new(config.clone())));
        let http = match &config.http {
            None => None,
            Some(h) => {
                let listener = tokio::net::TcpListener::bind(h.listen)
                    .await
                    .map_err(|e| anyhow::anyhow!("http.listen {}: {e}", h.listen))?;
                let addr = listener.local_addr()?;
                let (tx, mut rx) = watch::channel(false);
                let app = web::router(web::WebState {
                    store: store.clone(),
                    metrics: metrics.clone(),
                    config: web_config.clone(),
                });
                let task = tokio::spawn(web::serve(listener, app, &h.allowed_hosts, async move {
                    let _ = rx.wait_for(|v| *v).await;
                }));
                tracing::info!(%addr, "http listener (/, /port, /badge/CHECK.svg, /api/state, /api/changes, /metrics)");
                Some((addr, tx, task))
            }
        };
        let agents = match &config.agents {
            Some(a) => Some(agent::Listener::start(a).await?),
            None => None,
        };
        let mut m = Monitor {
            config,
            prober,
            store,
            metrics,
            web_config,
            generation: None,
            http,
            agents,
        };
        m.generation = Some(m.spawn_generation());
        Ok(m)
    }

    fn spawn_generation(&self) -> Generation {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (alert_tx, alert_rx) = mpsc::channel(self.config.alerts.queue);
        let alert_stop = Arc::new(AtomicBool::new(false));
        let alerts = tokio::spawn(scheduler::run_alerts(
            alert_rx,
            Arc::new(self.config.sinks.clone()),
            self.config.alerts.clone(),
            self.store.clone(),
            self.metrics.clone(),
            alert_stop.clone(),
        ));
        let shared = scheduler::Shared {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            alerts: alert_tx,
            instance: self.config.store.instance.clone(),
            partition: self
                .config
                .store
                .partition
                .then_some(self.config.store.chunk),
        };
        let mut tasks: Vec<JoinHandle<()>> = self
            .config
            .checks
            .iter()
            .map(|c| {
                tokio::spawn(scheduler::run_check(
                    c.clone(),
                    self.config.maintenance.clone(),
                    self.prober.clone(),
                    shared.clone(),
                    stop_rx.clone(),
                ))
            })
            .collect();
        if let Some(a) = &self.agents {
            a.api.set_generation(&self.config, shared.clone());
        }
        drop(shared);
        if self.config.store.retention_days > 0 {
            let store = self.store.clone();
            let days = i64::from(self.config.store.retention_days);
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let store = store.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        let before = Utc::now() - chrono::Duration::days(days);
                        let mut s = store.lock().unwrap_or_else(|p| p.into_inner());
                        match s.prune(before) {
                            Ok(n) if n > 0 => tracing::info!(rows = n, "pruned old rows"),
                            Ok(_) => {}
                            Err(e) => tracing::error!(error = %e, "prune failed"),
                        }
                    })
                    .await;
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                        _ = stop.changed() => break,
                    }
                }
            }));
        }
        Generation {
            stop: stop_tx,
            tasks,
            alerts,
            alert_stop,
        }
    }

    async fn stop_generation(g: Generation) {
        let _ = g.stop.send(true);
        for t in g.tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(scheduler::DRAIN_TIMEOUT, t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        // The check tasks held the senders: the alert task now drains and ends.
        g.alert_stop.store(true, Ordering::Relaxed);
        let abort = g.alerts.abort_handle();
        if tokio::time::timeout(scheduler::DRAIN_TIMEOUT, g.alerts)
            .await
            .is_err()
        {
            tracing::warn!("alert delivery did not finish in time");
            abort.abort();
        }
    }

    /// The HTTP listener's address (useful with port 0).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|h| h.0)
    }

    /// The agent API listener's address.
    pub fn agents_addr(&self) -> Option<SocketAddr> {
        self.agents.as_ref().map(|a| a.addr)
    }

    /// The store (lock it from blocking code only).
    pub fn store(&self) -> Arc<Mutex<Store>> {
        self.store.clone()
    }

    /// The metrics.
    pub fn metrics(&self) -> Arc<metrics::Metrics> {
        self.metrics.clone()
    }

    /// The running configuration.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// Replace the checks, sinks, alert settings and windows. The store and the HTTP
    /// listener stay (changing them needs a restart; a warning says so).
    pub async fn reload(&mut self, config: MonitorConfig) {
        let mut neighbours = evidence::Neighbours::read();
        for w in evidence::short_timeout_warnings(&config.checks, &mut neighbours) {
            tracing::warn!("{w}");
        }
        if config.store.url != self.config.store.url {
            tracing::warn!("store.url changed: takes effect after a restart");
        }
        if config.http.as_ref().map(|h| h.listen) != self.config.http.as_ref().map(|h| h.listen) {
            tracing::warn!("http.listen changed: takes effect after a restart");
        }
        if config.agents.as_ref().map(|a| (a.listen, &a.tls))
            != self.config.agents.as_ref().map(|a| (a.listen, &a.tls))
        {
            tracing::warn!("[agents] listen/TLS changed: takes effect after a restart");
        }
        if let Some(a) = &self.agents {
            a.api.clear_generation();
        }
        if let Some(g) = self.generation.take() {
            Self::stop_generation(g).await;
        }
        let store_url = self.config.store.url.clone();
        let http = self.config.http.clone();
        let instance = self.config.store.instance.clone();
        self.config = config;
        self.config.store.url = store_url;
        self.config.store.instance = instance;
        self.config.http = http;
        *self.web_config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(self.config.clone());
        self.metrics.port_state.clear();
        self.metrics.port_bad.clear();
        self.metrics.host_up.clear();
        self.generation = Some(self.spawn_generation());
        tracing::info!(checks = self.config.checks.len(), "configuration reloaded");
    }

    /// Stop the checks, deliver queued alerts (one attempt each), stop the listener.
    pub async fn stop(mut self) {
        if let Some(a) = self.agents.take() {
            a.stop().await;
        }
        if let Some(g) = self.generation.take() {
            Self::stop_generation(g).await;
        }
        if let Some((_, tx, task)) = self.http.take() {
            let _ = tx.send(true);
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

/// `nbdgm monitor run`: start, then SIGHUP reloads the file (a broken file is logged and
/// the running configuration kept), SIGTERM/SIGINT stop cleanly.
pub async fn run_service(path: &Path, prober: Arc<dyn Prober>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let cfg = MonitorConfig::load(path)?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut m = Monitor::start(cfg, prober).await?;
    tracing::info!(config = %path.display(), checks = m.config().checks.len(), "monitor running");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => match MonitorConfig::load(path) {
                Ok(c) => m.reload(c).await,
                Err(e) => tracing::error!(error = %e, "reload failed; keeping the running configuration"),
            },
        }
    }
    tracing::info!("stopping");
    m.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            parse_time("2025-01-02T03:04:05Z").unwrap().to_rfc3339(),
            "2025-01-02T03:04:05+00:00"
        );
        assert_eq!(
            parse_time("2025-01-02").unwrap().to_rfc3339(),
            "2025-01-02T00:00:00+00:00"
        );
        assert!(parse_time("2h").unwrap() < Utc::now());
        assert!(parse_time("yesterday").is_err());
    }
}
