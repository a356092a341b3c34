//! Alerts of other tools (`nbdgm watch`) through the monitor's sinks ([`crate::alert`]:
//! webhook, chat, email, exec), with de-duplication, a cooldown and a bounded queue.
//!
//! The configuration is a file shared with the tool: its `[[sink]]` tables exactly as
//! the monitor takes them ([`crate::config::parse_sinks`]) and a `[watch.alerts]` table
//! ([`RouterConfig`]); every other key is the tool's own and is ignored here.
//!
//! [`Router::route`] never blocks on a sink: it drops repeats of a key within the
//! cooldown and below the minimum severity, then queues the event for a worker thread
//! that delivers it (with the monitor's retries). The queue is capped in items and in
//! bytes; when full the new event is dropped (the ones queued first are kept, as the
//! first alerts of a burst say the most). Every drop is counted ([`RouterStats`]).

use crate::alert::{deliver, wants, AlertEvent, Detection};
use crate::config::{self, parse_duration, ConfigError, Sink};
use crate::engine::AlertKind;
use chrono::Utc;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default cooldown of a key.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(15 * 60);
/// Default queue cap in events.
pub const DEFAULT_QUEUE_ITEMS: usize = 1024;
/// Default queue cap in bytes (of the events' JSON).
pub const DEFAULT_QUEUE_BYTES: usize = 4 << 20;
/// Most keys remembered for the cooldown; beyond, expired then oldest ones go (counted).
pub const MAX_KEYS: usize = 65_536;

/// Severity of a detection; ordered `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

/// An alert of another tool. Strings are exact; the sinks escape them.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalAlert {
    /// The tool (`watch`).
    pub source: String,
    /// De-duplication key, e.g. `1138101|198.51.100.66|FILESRV<20>`.
    pub key: String,
    pub severity: Level,
    /// What was detected (one line).
    pub title: String,
    /// Who and the evidence (one line).
    pub summary: String,
    /// The suspect (address).
    pub target: String,
    /// `137/udp` and the like.
    pub port: String,
    /// A short stable name of the detection (the signature slug).
    pub name: String,
    /// The tool's JSON record.
    pub details: serde_json::Value,
}

/// `[watch.alerts]` (or `[audit.alerts]`) and the sinks.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    pub sinks: Vec<Sink>,
    /// The same key is sent at most once per cooldown.
    pub cooldown: Duration,
    pub min_severity: Level,
    pub queue_items: usize,
    pub queue_bytes: usize,
    /// Delivery attempts per sink (1-10) and the first backoff.
    pub attempts: u32,
    pub backoff: Duration,
    /// `instance` of the events (this host's name).
    pub instance: String,
}

/// The tables that may hold an `alerts` table: `[watch.alerts]`, `[audit.alerts]`.
#[derive(Deserialize, Default)]
struct RawFile {
    #[serde(default)]
    watch: RawSection,
    #[serde(default)]
    audit: RawSection,
}

#[derive(Deserialize, Default)]
struct RawSection {
    #[serde(default)]
    alerts: RawAlerts,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    cooldown: Option<String>,
    min_severity: Option<Level>,
    queue_items: Option<usize>,
    queue_bytes: Option<usize>,
    attempts: Option<u32>,
    backoff: Option<String>,
}

impl RouterConfig {
    /// Read a file (at most [`config::MAX_FILE_BYTES`]) and [`RouterConfig::parse`] it.
    pub fn load(path: &Path) -> Result<RouterConfig, ConfigError> {
        Self::parse(&config::read_file(path)?, Some(path))
    }

    /// The sinks and `[watch.alerts]` of `text`; `file` names it in errors.
    pub fn parse(text: &str, file: Option<&Path>) -> Result<RouterConfig, ConfigError> {
        Self::parse_section(text, file, "watch")
    }

    /// [`RouterConfig::load`] with the alerts table `[SECTION.alerts]` (`audit`, ...).
    pub fn load_section(path: &Path, section: &str) -> Result<RouterConfig, ConfigError> {
        Self::parse_section(&config::read_file(path)?, Some(path), section)
    }

    /// The sinks and `[SECTION.alerts]` of `text` (`[watch.alerts]` for `watch`).
    pub fn parse_section(
        text: &str,
        file: Option<&Path>,
        section: &str,
    ) -> Result<RouterConfig, ConfigError> {
        let sinks = config::parse_sinks(text, file)?;
        let raw: RawFile = toml::from_str(text).map_err(|e| config::de_error(text, file, &e))?;
        let a = match section {
            "watch" => raw.watch.alerts,
            "audit" => raw.audit.alerts,
            other => {
                return Err(config::key_error(
                    text,
                    file,
                    other,
                    "no alerts table of that name (watch, audit)",
                ))
            }
        };
        let err =
            |k: &str, m: String| config::key_error(text, file, format!("{section}.alerts.{k}"), m);
        let dur = |k: &str, v: &Option<String>, d: Duration| match v {
            None => Ok(d),
            Some(s) => parse_duration(s).map_err(|e| err(k, e.to_string())),
        };
        let c = RouterConfig {
            sinks,
            cooldown: dur("cooldown", &a.cooldown, DEFAULT_COOLDOWN)?,
            min_severity: a.min_severity.unwrap_or(Level::Medium),
            queue_items: a.queue_items.unwrap_or(DEFAULT_QUEUE_ITEMS),
            queue_bytes: a.queue_bytes.unwrap_or(DEFAULT_QUEUE_BYTES),
            attempts: a.attempts.unwrap_or(3),
            backoff: dur("backoff", &a.backoff, Duration::from_secs(1))?,
            instance: config::default_instance(),
        };
        if !(1..=100_000).contains(&c.queue_items) {
            return Err(err("queue_items", "must be 1-100000".into()));
        }
        if !(1024..=(256 << 20)).contains(&c.queue_bytes) {
            return Err(err("queue_bytes", "must be 1024 to 268435456".into()));
        }
        if !(1..=10).contains(&c.attempts) {
            return Err(err("attempts", "must be 1-10".into()));
        }
        Ok(c)
    }
}

/// Counters of a [`Router`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Events queued for delivery.
    pub queued: u64,
    /// Repeats of a key within its cooldown (not sent).
    pub duplicates: u64,
    /// Below `min_severity` (not sent).
    pub below_severity: u64,
    /// Dropped because the queue was full (items or bytes).
    pub dropped: u64,
    /// Cooldown keys forgotten because the table was full.
    pub keys_evicted: u64,
    /// Deliveries that succeeded (one per event and sink).
    pub delivered: u64,
    /// Deliveries that failed after their attempts.
    pub failed: u64,
    /// Events not delivered when [`Router::finish`] ran out of time.
    pub abandoned: u64,
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<(AlertEvent, usize)>,
    bytes: usize,
    closing: bool,
    busy: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Ends retries at once (finish ran out of time).
    stop: AtomicBool,
    counters: Counters,
}

/// De-duplication, the queue and the delivery thread.
pub struct Router {
    cfg: RouterConfig,
    last: HashMap<String, Instant>,
    stats: RouterStats,
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

/// What [`Router::route`] did with an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    Queued,
    Duplicate,
    BelowSeverity,
    Dropped,
}

impl Router {
    /// Starts the delivery thread.
    pub fn start(cfg: RouterConfig) -> std::io::Result<Router> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let (sh, sinks, attempts, backoff) =
            (shared.clone(), cfg.sinks.clone(), cfg.attempts, cfg.backoff);
        let worker = std::thread::Builder::new()
            .name("nbdgm-alert-sinks".into())
            .spawn(move || work(&sh, &sinks, attempts, backoff))?;
        Ok(Router {
            cfg,
            last: HashMap::new(),
            stats: RouterStats::default(),
            shared,
            worker: Some(worker),
        })
    }

    /// Reads the `[[sink]]` tables and `[SECTION.alerts]` of `path` and starts the
    /// delivery thread; `None` when the file has no sink.
    pub fn from_file(path: &Path, section: &str) -> anyhow::Result<Option<Router>> {
        let cfg = RouterConfig::load_section(path, section).map_err(|e| anyhow::anyhow!("{e}"))?;
        if cfg.sinks.is_empty() {
            return Ok(None);
        }
        let router = Router::start(cfg)
            .map_err(|e| anyhow::anyhow!("cannot start the alert delivery thread: {e}"))?;
        Ok(Some(router))
    }

    /// The configuration.
    pub fn config(&self) -> &RouterConfig {
        &self.cfg
    }

    /// The names of the sinks, in file order.
    pub fn sink_names(&self) -> Vec<String> {
        self.cfg.sinks.iter().map(|s| s.name.clone()).collect()
    }

    /// Routes one alert (never blocks on a sink).
    pub fn route(&mut self, a: ExternalAlert) -> Routed {
        self.route_at(a, Instant::now())
    }

    /// [`Router::route`] at time `now` (monotonic).
    pub fn route_at(&mut self, a: ExternalAlert, now: Instant) -> Routed {
        if a.severity < self.cfg.min_severity {
            self.stats.below_severity += 1;
            return Routed::BelowSeverity;
        }
        if let Some(t) = self.last.get(&a.key) {
            if now.saturating_duration_since(*t) < self.cfg.cooldown {
                self.stats.duplicates += 1;
                return Routed::Duplicate;
            }
        }
        let key = a.key.clone();
        let event = event(a, &self.cfg.instance);
        let size = serde_json::to_string(&event).map_or(0, |s| s.len());
        {
            let Ok(mut q) = self.shared.queue.lock() else {
                self.stats.dropped += 1;
                return Routed::Dropped;
            };
            if q.items.len() >= self.cfg.queue_items || q.bytes + size > self.cfg.queue_bytes {
                self.stats.dropped += 1;
                return Routed::Dropped;
            }
            q.bytes += size;
            q.items.push_back((event, size));
        }
        self.shared.ready.notify_one();
        self.stats.queued += 1;
        self.remember(key, now);
        Routed::Queued
    }

    fn remember(&mut self, key: String, now: Instant) {
        if !self.last.contains_key(&key) && self.last.len() >= MAX_KEYS {
            let cooldown = self.cfg.cooldown;
            self.last
                .retain(|_, t| now.saturating_duration_since(*t) < cooldown);
            if self.last.len() >= MAX_KEYS {
                let oldest = self
                    .last
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(k, _)| k.clone());
                if let Some(o) = oldest {
                    self.last.remove(&o);
                }
                self.stats.keys_evicted += 1;
            }
        }
        self.last.insert(key, now);
    }

    /// Counters so far (deliveries as of now).
    pub fn stats(&self) -> RouterStats {
        let mut s = self.stats;
        s.delivered = self.shared.counters.delivered.load(Ordering::Relaxed);
        s.failed = self.shared.counters.failed.load(Ordering::Relaxed);
        s
    }

    /// Delivers what is queued, waiting at most `timeout`; what is left then is counted
    /// as abandoned (an exec hook still running is killed by its own timeout).
    pub fn finish(mut self, timeout: Duration) -> RouterStats {
        let deadline = Instant::now() + timeout;
        let mut abandoned = 0;
        if let Ok(mut q) = self.shared.queue.lock() {
            q.closing = true;
            self.shared.ready.notify_all();
            while !q.items.is_empty() || q.busy {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match self.shared.ready.wait_timeout(q, left) {
                    Ok((g, _)) => q = g,
                    Err(_) => return self.stats(),
                }
            }
            abandoned = q.items.len() as u64 + u64::from(q.busy);
            q.items.clear();
            q.bytes = 0;
        }
        self.shared.stop.store(true, Ordering::Relaxed);
        if abandoned == 0 {
            if let Some(w) = self.worker.take() {
                let _ = w.join();
            }
        }
        let mut s = self.stats();
        s.abandoned = abandoned;
        s
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        // Without finish: stop the worker after its current delivery, do not wait.
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Ok(mut q) = self.shared.queue.lock() {
            q.closing = true;
            q.items.clear();
        }
        self.shared.ready.notify_all();
    }
}

/// The monitor's event for an alert.
fn event(a: ExternalAlert, instance: &str) -> AlertEvent {
    let now = Utc::now();
    AlertEvent {
        kind: AlertKind::Detection,
        check: a.source.clone(),
        target: a.target,
        hostname: None,
        port: a.port,
        old: None,
        new: a.name,
        expected: None,
        seq: 0,
        reminder: 0,
        since: now,
        at: now,
        instance: instance.to_owned(),
        detection: Some(Detection {
            source: a.source,
            key: a.key,
            severity: a.severity.as_str().to_owned(),
            title: a.title,
            summary: a.summary,
            details: a.details,
        }),
    }
}

/// The delivery thread: one event at a time, to every sink that takes it.
fn work(sh: &Shared, sinks: &[Sink], attempts: u32, backoff: Duration) {
    loop {
        let e = {
            let Ok(mut q) = sh.queue.lock() else { return };
            q.busy = false;
            sh.ready.notify_all();
            loop {
                if let Some((e, size)) = q.items.pop_front() {
                    q.bytes = q.bytes.saturating_sub(size);
                    q.busy = true;
                    break e;
                }
                if q.closing || sh.stop.load(Ordering::Relaxed) {
                    return;
                }
                q = match sh.ready.wait(q) {
                    Ok(g) => g,
                    Err(_) => return,
                };
            }
        };
        for s in sinks.iter().filter(|s| wants(s, &e)) {
            let o = deliver(s, &e, attempts, backoff, &|| {
                sh.stop.load(Ordering::Relaxed)
            });
            let c = if o.ok {
                &sh.counters.delivered
            } else {
                &sh.counters.failed
            };
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}
