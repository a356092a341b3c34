//! The agent (`nbdgm monitor agent`): fetches its checks from the central monitor (every
//! minute; on failure it keeps the last ones, also across restarts via the state
//! directory), probes them on schedule with the real prober, and pushes each cycle over
//! HTTPS with its token. While the central is away the cycles wait in a bounded
//! [`Buffer`] (oldest dropped, counted, logged at most once a minute) and are sent in
//! order with back-off when it is back.

use super::buffer::Buffer;
use super::proto::{self, AgentCheck, Batch, BatchReply, ChecksReply, Cycle};
use crate::prober::Prober;
use nbdgm_wire::text::Escaped;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Largest answer read from the central.
const MAX_REPLY: u64 = 4 << 20;
/// Bytes of cycles in one push.
const BATCH_BYTES: usize = 2 << 20;
/// Longest pause between two pushes while the central is away.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How an agent runs.
#[derive(Clone)]
pub struct AgentOptions {
    /// `https://HOST:PORT` (or `http://` with `allow_plaintext`).
    pub central: String,
    pub token: String,
    pub location: String,
    /// PEM CA certificates for the central's certificate; `None`: the webpki roots.
    pub ca_file: Option<PathBuf>,
    pub allow_plaintext: bool,
    pub buffer_cycles: usize,
    pub buffer_bytes: usize,
    /// Keeps the last checks and, on a clean stop, the unsent cycles.
    pub state_dir: Option<PathBuf>,
    /// How often the checks are fetched again.
    pub refresh: Duration,
}

impl std::fmt::Debug for AgentOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentOptions")
            .field("central", &self.central)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Why a request to the central failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the central refused the token (HTTP {0})")]
    Unauthorized(u16),
    /// A request the central will never accept (the batch is dropped).
    #[error("the central refused the request (HTTP {0}): {1}")]
    Refused(u16, String),
    #[error("{0}")]
    Unavailable(String),
}

/// HTTPS client of the agent API (blocking; run it off the async threads).
pub struct Client {
    http: ureq::Agent,
    base: String,
    auth: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish()
    }
}

fn read_body(r: ureq::Response) -> Result<Vec<u8>, ClientError> {
    let mut v = Vec::new();
    r.into_reader()
        .take(MAX_REPLY)
        .read_to_end(&mut v)
        .map_err(|e| ClientError::Unavailable(format!("reading the answer: {e}")))?;
    Ok(v)
}

fn status_error(e: ureq::Error) -> ClientError {
    match e {
        ureq::Error::Status(c @ (401 | 403), _) => ClientError::Unauthorized(c),
        ureq::Error::Status(c @ (400 | 404 | 413 | 422), r) => {
            let body = read_body(r).unwrap_or_default();
            let msg: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            ClientError::Refused(c, Escaped(&msg).to_string())
        }
        ureq::Error::Status(c, _) => ClientError::Unavailable(format!("HTTP {c}")),
        ureq::Error::Transport(t) => ClientError::Unavailable(t.to_string()),
    }
}

impl Client {
    /// A client for `central`: `https://` (or `http://` only with `allow_plaintext`),
    /// host and port, no credentials, query or fragment.
    pub fn new(
        central: &str,
        token: &str,
        ca_file: Option<&Path>,
        allow_plaintext: bool,
    ) -> Result<Client, String> {
        let u = url::Url::parse(central).map_err(|e| format!("--central {central:?}: {e}"))?;
        match u.scheme() {
            "https" => {}
            "http" if allow_plaintext => {
                tracing::warn!("--allow-plaintext: the token and results travel in clear")
            }
            "http" => {
                return Err(format!(
                    "--central {central:?}: plaintext http:// refused (use https://, or \
                     --allow-plaintext on a trusted network)"
                ))
            }
            s => return Err(format!("--central: unsupported scheme {s:?}")),
        }
        if u.host_str().is_none()
            || !u.username().is_empty()
            || u.password().is_some()
            || u.query().is_some()
            || u.fragment().is_some()
        {
            return Err(format!(
                "--central {central:?}: want scheme://HOST[:PORT][/PATH]"
            ));
        }
        let mut b = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .redirects(0);
        if let Some(ca) = ca_file {
            b = b.tls_config(Arc::new(client_tls(ca)?));
        }
        Ok(Client {
            http: b.build(),
            base: u.as_str().trim_end_matches('/').to_owned(),
            auth: format!("Bearer {token}"),
        })
    }

    /// `GET /api/agent/v1/checks`.
    pub fn checks(&self) -> Result<ChecksReply, ClientError> {
        let r = self
            .http
            .get(&format!("{}{}", self.base, proto::PATH_CHECKS))
            .set("Authorization", &self.auth)
            .call()
            .map_err(status_error)?;
        serde_json::from_slice(&read_body(r)?)
            .map_err(|e| ClientError::Unavailable(format!("bad checks answer: {e}")))
    }

    /// `POST /api/agent/v1/results`.
    pub fn push(&self, batch: &Batch) -> Result<BatchReply, ClientError> {
        let body = serde_json::to_vec(batch)
            .map_err(|e| ClientError::Refused(0, format!("cannot encode: {e}")))?;
        let r = self
            .http
            .post(&format!("{}{}", self.base, proto::PATH_RESULTS))
            .set("Authorization", &self.auth)
            .set("Content-Type", "application/json")
            .send_bytes(&body)
            .map_err(status_error)?;
        serde_json::from_slice(&read_body(r)?)
            .map_err(|e| ClientError::Unavailable(format!("bad results answer: {e}")))
    }
}

/// A rustls client configuration trusting the PEM certificates in `ca`.
pub fn client_tls(ca: &Path) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let err = |e: &dyn std::fmt::Display| format!("--ca-file {}: {e}", ca.display());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| err(&e))? {
        roots.add(c.map_err(|e| err(&e))?).map_err(|e| err(&e))?;
    }
    if roots.is_empty() {
        return Err(err(&"no certificate"));
    }
    Ok(rustls::ClientConfig::builder_with_provider(super::crypto())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A random cycle id (128 bits, hex).
pub fn cycle_id() -> String {
    use rand::{Rng, SeedableRng};
    static RNG: Mutex<Option<rand::rngs::StdRng>> = Mutex::new(None);
    let mut g = RNG.lock().unwrap_or_else(|p| p.into_inner());
    let rng = g.get_or_insert_with(|| {
        rand::rngs::StdRng::try_from_rng(&mut rand::rngs::SysRng)
            .unwrap_or_else(|_| rand::rngs::StdRng::seed_from_u64(u64::from(std::process::id())))
    });
    format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())
}

/// Log at most once a minute.
struct RateLog(Option<Instant>);

impl RateLog {
    fn ready(&mut self) -> bool {
        let now = Instant::now();
        if self
            .0
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(60))
        {
            return false;
        }
        self.0 = Some(now);
        true
    }
}

/// Run the agent until `stop` turns true.
pub async fn run_agent(
    opts: AgentOptions,
    prober: Arc<dyn Prober>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let client = Arc::new(
        Client::new(
            &opts.central,
            &opts.token,
            opts.ca_file.as_deref(),
            opts.allow_plaintext,
        )
        .map_err(anyhow::Error::msg)?,
    );
    if let Some(d) = &opts.state_dir {
        std::fs::create_dir_all(d)
            .map_err(|e| anyhow::anyhow!("--state-dir {}: {e}", d.display()))?;
    }
    tracing::info!(central = %opts.central, location = %opts.location, "agent running");
    let (tx, rx) = mpsc::channel::<Cycle>(256);
    let pusher = tokio::spawn(push_loop(opts.clone(), client.clone(), rx, stop.clone()));
    let mut tasks: HashMap<String, (AgentCheck, JoinHandle<()>)> = HashMap::new();
    if let Some(saved) = opts.state_dir.as_deref().and_then(load_checks) {
        tracing::info!(
            checks = saved.len(),
            "probing the saved checks until the central answers"
        );
        apply_checks(&mut tasks, saved, &prober, &tx, &stop);
    }
    let mut failures = 0u32;
    let mut log = RateLog(None);
    loop {
        let c = client.clone();
        let wait = match tokio::task::spawn_blocking(move || c.checks()).await {
            Ok(Ok(reply)) if reply.location != opts.location => {
                anyhow::bail!(
                    "the central says this token is for location {:?}, not --location {:?}",
                    Escaped(&reply.location),
                    opts.location
                );
            }
            Ok(Ok(reply)) => {
                failures = 0;
                if let Some(d) = &opts.state_dir {
                    save_checks(d, &reply.checks);
                }
                apply_checks(&mut tasks, reply.checks, &prober, &tx, &stop);
                opts.refresh
            }
            Ok(Err(e)) => {
                failures += 1;
                if log.ready() {
                    tracing::warn!(error = %e, running = tasks.len(), "cannot fetch the checks; keeping the last ones");
                }
                backoff(failures).min(opts.refresh)
            }
            Err(e) => anyhow::bail!("checks task: {e}"),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            r = stop.changed() => if r.is_err() {
                break;
            },
        }
        if *stop.borrow() {
            break;
        }
    }
    for (_, (_, t)) in tasks.drain() {
        t.abort();
    }
    drop(tx);
    let abort = pusher.abort_handle();
    if tokio::time::timeout(Duration::from_secs(45), pusher)
        .await
        .is_err()
    {
        abort.abort();
    }
    tracing::info!("agent stopped");
    Ok(())
}

fn backoff(failures: u32) -> Duration {
    (Duration::from_secs(1) * 2u32.saturating_pow(failures.saturating_sub(1).min(6)))
        .min(MAX_BACKOFF)
}

fn load_checks(dir: &Path) -> Option<Vec<AgentCheck>> {
    let text = std::fs::read_to_string(dir.join("checks.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn save_checks(dir: &Path, checks: &[AgentCheck]) {
    let tmp = dir.join("checks.json.tmp");
    let ok = serde_json::to_vec(checks)
        .ok()
        .and_then(|v| std::fs::write(&tmp, v).ok())
        .and_then(|_| std::fs::rename(&tmp, dir.join("checks.json")).ok());
    if ok.is_none() {
        tracing::warn!(dir = %dir.display(), "cannot save the checks");
    }
}

/// Start, restart (changed) and stop (gone) the check tasks.
fn apply_checks(
    tasks: &mut HashMap<String, (AgentCheck, JoinHandle<()>)>,
    checks: Vec<AgentCheck>,
    prober: &Arc<dyn Prober>,
    tx: &mpsc::Sender<Cycle>,
    stop: &watch::Receiver<bool>,
) {
    let names: Vec<String> = checks.iter().map(|c| c.name.clone()).collect();
    tasks.retain(|name, (_, t)| {
        let keep = names.contains(name);
        if !keep {
            t.abort();
            tracing::info!(check = %name, "check no longer assigned");
        }
        keep
    });
    for ac in checks.into_iter().take(crate::config::MAX_CHECKS) {
        if tasks.get(&ac.name).is_some_and(|(old, _)| *old == ac) {
            continue;
        }
        let check = match ac.to_check() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %Escaped(&e), "check from the central ignored");
                continue;
            }
        };
        if let Some((_, t)) = tasks.remove(&ac.name) {
            t.abort();
        }
        tracing::info!(check = %check.name, targets = check.targets.len(), interval = ?check.interval, "running check");
        let t = tokio::spawn(check_loop(check, prober.clone(), tx.clone(), stop.clone()));
        tasks.insert(ac.name.clone(), (ac, t));
    }
}

/// One check: probe every `interval`, hand each cycle to the pusher.
async fn check_loop(
    check: crate::config::Check,
    prober: Arc<dyn Prober>,
    tx: mpsc::Sender<Cycle>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(check.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let started = chrono::Utc::now();
        let limit = crate::config::MAX_TARGETS_PER_CHECK;
        let (targets, failed) = crate::targets::expand(&check.targets, limit).await;
        for f in &failed {
            tracing::warn!(check = %check.name, target = %Escaped(f), "target does not resolve");
        }
        let mut results = crate::scheduler::probe_all(&prober, &targets, &check).await;
        // Silences shorter than this host's neighbour resolution time are `unknown`: judged
        // here, where the neighbour tables are the ones the probe went through.
        let c = check.clone();
        let results = match tokio::task::spawn_blocking(move || {
            crate::scheduler::judge_silences(&c, &mut results);
            results
        })
        .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "judging silences failed");
                continue;
            }
        };
        let cycle = Cycle {
            id: cycle_id(),
            check: check.name.clone(),
            started,
            finished: chrono::Utc::now(),
            results,
        };
        if tx.send(cycle).await.is_err() {
            return;
        }
    }
}

/// Owns the buffer: takes cycles, pushes them in order, backs off while the central is
/// away; on stop saves what is unsent to the state directory.
async fn push_loop(
    opts: AgentOptions,
    client: Arc<Client>,
    mut rx: mpsc::Receiver<Cycle>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = Buffer::new(opts.buffer_cycles, opts.buffer_bytes);
    let saved = opts.state_dir.as_ref().map(|d| d.join("buffer.jsonl"));
    if let Some(p) = &saved {
        match buf.load(p) {
            Ok(0) => {}
            Ok(n) => tracing::info!(cycles = n, "unsent cycles loaded from the state directory"),
            Err(e) => tracing::warn!(error = %e, "cannot load the saved cycles"),
        }
    }
    let (mut failures, mut next_try) = (0u32, tokio::time::Instant::now());
    let (mut drop_log, mut fail_log) = (RateLog(None), RateLog(None));
    let mut last_dropped = 0u64;
    loop {
        tokio::select! {
            c = rx.recv() => match c {
                Some(c) => { buf.push(c); }
                None => break,
            },
            _ = tokio::time::sleep_until(next_try), if !buf.is_empty() => {
                match flush(&client, &opts.location, &mut buf, &mut rx).await {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures += 1;
                        next_try = tokio::time::Instant::now() + backoff(failures);
                        if fail_log.ready() {
                            tracing::warn!(error = %e, buffered = buf.len(), bytes = buf.bytes(), "cannot push results; buffering");
                        }
                    }
                }
            },
            r = stop.changed() => if r.is_err() || *stop.borrow() {
                break;
            },
        }
        if buf.dropped > last_dropped && drop_log.ready() {
            tracing::warn!(
                dropped = buf.dropped - last_dropped,
                total = buf.dropped,
                "buffer full: oldest cycles dropped"
            );
            last_dropped = buf.dropped;
        }
    }
    while let Ok(c) = rx.try_recv() {
        buf.push(c);
    }
    if let Some(p) = &saved {
        if !buf.is_empty() {
            match buf.save(p) {
                Ok(()) => tracing::info!(cycles = buf.len(), "unsent cycles saved"),
                Err(e) => tracing::error!(error = %e, "cannot save the unsent cycles"),
            }
        }
    }
}

/// Push the buffer in order until empty or an error; cycles probed meanwhile join the
/// buffer between two batches (never while one is in flight: `pop` removes that batch).
async fn flush(
    client: &Arc<Client>,
    location: &str,
    buf: &mut Buffer,
    rx: &mut mpsc::Receiver<Cycle>,
) -> Result<(), ClientError> {
    while !buf.is_empty() {
        let cycles = buf.front(proto::MAX_CYCLES, BATCH_BYTES);
        let n = cycles.len();
        let batch = Batch {
            location: location.to_owned(),
            cycles,
        };
        let c = client.clone();
        let r = tokio::task::spawn_blocking(move || c.push(&batch))
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))?;
        match r {
            Ok(reply) => {
                for x in &reply.rejected {
                    tracing::warn!(cycle = %Escaped(&x.id), reason = %Escaped(&x.reason), "cycle rejected by the central; dropped");
                }
                buf.pop(n);
            }
            Err(ClientError::Refused(code, msg)) => {
                tracing::error!(code, error = %msg, cycles = n, "batch refused by the central; dropped");
                buf.pop(n);
            }
            Err(e) => return Err(e),
        }
        while let Ok(c) = rx.try_recv() {
            buf.push(c);
        }
    }
    Ok(())
}
