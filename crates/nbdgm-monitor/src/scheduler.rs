//! The schedule: one task per check probes its targets every `interval` (a bounded number
//! of hosts at once), stores the cycle, runs the edge logic and commits confirmed changes,
//! and claims alerts; one alert task delivers them (bounded queue) to the sinks.

use crate::alert::{self, AlertEvent};
use crate::config::{AlertConfig, Check, Sink, MAX_TARGETS_PER_CHECK};
use crate::engine::{self, Engine, Key, KeyKind, KeyState, Rules, Step};
use crate::evidence::{self, HostObservation, Neighbours};
use crate::maintenance::{self, Window};
use crate::metrics::{CheckLabels, Metrics, SinkLabels};
use crate::prober::Prober;
use crate::store::{NewChange, Store};
use crate::targets;
use chrono::{DateTime, Utc};
use nbdgm_probe::probe::{HostResult, PortState};
use nbdgm_wire::text::Escaped;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};

/// An alert claimed by this instance, waiting for delivery.
#[derive(Debug, Clone)]
pub struct AlertJob {
    pub alert_id: i64,
    pub event: AlertEvent,
    /// Sink names; empty = all.
    pub sinks: Vec<String>,
}

/// What the check tasks share.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<Mutex<Store>>,
    pub metrics: Arc<Metrics>,
    pub alerts: mpsc::Sender<AlertJob>,
    pub instance: String,
    /// Split the targets with the other instances of the store, in chunks of this many
    /// targets ([`crate::fleet`]); `None`: this instance probes every target.
    pub partition: Option<usize>,
}

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

/// Probe every target, at most `concurrency` at once; results in target order.
pub async fn probe_all(
    prober: &Arc<dyn Prober>,
    targets: &[targets::Target],
    check: &Check,
) -> Vec<HostResult> {
    let opts = check.probe_options();
    let sem = Arc::new(Semaphore::new(check.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets.iter().enumerate() {
        let permit = sem.clone().acquire_owned().await;
        let fut = prober.probe(t.address, t.hostname.clone(), &opts);
        set.spawn(async move {
            let r = fut.await;
            drop(permit);
            (i, r)
        });
    }
    let mut out: Vec<(usize, HostResult)> = Vec::with_capacity(targets.len());
    while let Some(r) = set.join_next().await {
        match r {
            Ok(v) => out.push(v),
            Err(e) => tracing::error!(error = %e, "probe task failed"),
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// Load the confirmed states of a check from the store.
pub fn load_engine(store: &mut Store, check: &str) -> Result<Engine, crate::store::StoreError> {
    let mut e = Engine::default();
    for row in store.current(Some(check))? {
        let since = crate::store::parse_ts(&row.since).unwrap_or_else(Utc::now);
        e.keys.insert(
            Key {
                check: row.check,
                target: row.target,
                port: row.port,
            },
            KeyState::confirmed(row.value, row.seq, since),
        );
    }
    Ok(e)
}

/// The observations of one host: host key (only `up` with evidence from the host itself,
/// or `down`; nothing when unknown, see [`crate::evidence`]), port keys (states that say
/// nothing about the port are no observation), service key.
fn observations(
    check: &Check,
    h: &HostResult,
    host: &HostObservation,
) -> Vec<(String, &'static str, String)> {
    let mut out = Vec::new();
    if host.state != "unknown" {
        out.push((engine::HOST_KEY.to_owned(), "", host.state.to_owned()));
    }
    for p in &h.ports {
        if let Some(v) = engine::classify(p.state, check.ambiguous_as_open) {
            out.push((
                crate::config::port_name(p.port).to_owned(),
                check.expect.as_str(),
                v.to_owned(),
            ));
        }
    }
    if let Some(info) = &h.info {
        out.push((
            engine::SERVICE_KEY.to_owned(),
            "",
            engine::fingerprint(info),
        ));
    }
    out
}

/// Gauges of what the latest result did not see: `nbdgm_port_state` -1 for a port whose
/// state is `unknown`, `nbdgm_host_up` -1 for a host without evidence.
fn set_unseen(metrics: &Metrics, check: &Check, h: &HostResult, host: &HostObservation) {
    let target = h.address.to_string();
    if host.state == "unknown" {
        metrics.set_key(&check.name, &target, engine::HOST_KEY, "unknown", "");
    }
    for p in &h.ports {
        if p.state == PortState::Unknown {
            let port = crate::config::port_name(p.port);
            metrics.set_key(&check.name, &target, port, "unknown", check.expect.as_str());
        }
    }
}

/// Mark the silences of a short-waiting check as `unknown` (blocking: reads `/proc`).
pub fn judge_silences(check: &Check, results: &mut [HostResult]) {
    let opts = check.probe_options();
    let mut nb = Neighbours::read();
    for h in results {
        let n = evidence::mark_unknown(h, &opts, &mut nb);
        if n > 0 {
            tracing::debug!(check = %check.name, target = %h.address, ports = n,
                "silence shorter than the neighbour resolution time: unknown");
        }
    }
}

/// Process one cycle's results (blocking: store calls). Returns the alerts to deliver.
#[allow(clippy::too_many_arguments)]
pub fn process_cycle(
    store: &mut Store,
    metrics: &Metrics,
    engine: &mut Engine,
    check: &Check,
    global_windows: &[Window],
    results: &[HostResult],
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
) -> Result<Vec<AlertJob>, crate::store::StoreError> {
    let hosts: Vec<HostObservation> = results.iter().map(evidence::host_observation).collect();
    store.record_run(&check.name, started, finished, results, &hosts)?;
    process_results(
        store,
        metrics,
        engine,
        check,
        global_windows,
        results,
        &hosts,
        finished,
    )
}

/// The edge logic of stored results: observe every key, commit confirmed changes, claim
/// the alerts (blocking). Returns the alerts to deliver.
#[allow(clippy::too_many_arguments)]
pub fn process_results(
    store: &mut Store,
    metrics: &Metrics,
    engine: &mut Engine,
    check: &Check,
    global_windows: &[Window],
    results: &[HostResult],
    hosts: &[HostObservation],
    now: DateTime<Utc>,
) -> Result<Vec<AlertJob>, crate::store::StoreError> {
    let in_maint =
        maintenance::active(&check.maintenance, now) || maintenance::active(global_windows, now);
    let rules = Rules {
        confirmations: check.confirmations,
        remind_every: check.remind_every,
    };
    let mut jobs = Vec::new();
    for (h, host) in results.iter().zip(hosts) {
        let target = h.address.to_string();
        set_unseen(metrics, check, h, host);
        for (port, expected, value) in observations(check, h, host) {
            let key = Key {
                check: check.name.clone(),
                target: target.clone(),
                port,
            };
            let kind = KeyKind::of(&key.port, check.expect);
            let st = engine.keys.entry(key.clone()).or_default();
            let step = st.observe(kind, &value, rules, now, in_maint);
            let (seq, reminder, akind, old) = match step {
                Step::Nothing => {
                    if let Some(v) = &st.value {
                        metrics.set_key(&key.check, &key.target, &key.port, v, expected);
                    }
                    continue;
                }
                Step::Change { old, new, kind: ak } => {
                    let bad = engine::is_bad(kind, &new);
                    let c = store.commit_change(&NewChange {
                        key: &key,
                        old: old.as_deref(),
                        new: &new,
                        kind: ak,
                        expected,
                        bad,
                        in_maintenance: in_maint,
                        at: now,
                    })?;
                    let suppressed = c.applied && ak.is_some() && in_maint;
                    st.apply(new.clone(), c.seq, c.since, suppressed);
                    metrics.set_key(&key.check, &key.target, &key.port, &new, expected);
                    tracing::info!(check = %key.check, target = %key.target, port = %key.port,
                        old = %Escaped(old.as_deref().unwrap_or("(none)")), new = %Escaped(&new), seq = c.seq, applied = c.applied,
                        maintenance = in_maint, "state change");
                    match ak {
                        Some(k) if c.applied && !in_maint => (c.seq, 0, k, old),
                        _ => continue,
                    }
                }
                Step::Alert {
                    seq,
                    reminder,
                    kind: k,
                } => (seq, reminder, k, None),
            };
            let st = &engine.keys[&key];
            let event = AlertEvent {
                kind: akind,
                check: key.check.clone(),
                target: key.target.clone(),
                hostname: h.hostname.clone(),
                port: key.port.clone(),
                old,
                new: st.value.clone().unwrap_or_default(),
                expected: (!expected.is_empty()).then(|| expected.to_owned()),
                seq,
                reminder,
                since: st.since.unwrap_or(now),
                at: now,
                instance: store.instance.clone(),
                detection: None,
            };
            let payload = serde_json::to_string(&event).unwrap_or_default();
            if let Some(id) = store.claim_alert(&key, seq, reminder, akind, &payload, now)? {
                jobs.push(AlertJob {
                    alert_id: id,
                    event,
                    sinks: check.sinks.clone(),
                });
            }
        }
    }
    Ok(jobs)
}

/// The task of one check; ends when `stop` turns true.
pub async fn run_check(
    check: Check,
    global_windows: Vec<Window>,
    prober: Arc<dyn Prober>,
    shared: Shared,
    mut stop: watch::Receiver<bool>,
) {
    if let Some(chunk) = shared.partition {
        crate::fleet::run_check(check, global_windows, prober, shared, stop, chunk).await;
        return;
    }
    let store = shared.store.clone();
    let name = check.name.clone();
    let loaded = tokio::task::spawn_blocking(move || load_engine(&mut lock(&store), &name)).await;
    let mut engine = match loaded {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => {
            tracing::error!(check = %check.name, error = %e, "cannot load state; starting empty");
            shared.metrics.store_errors.inc();
            Engine::default()
        }
        Err(_) => Engine::default(),
    };
    let check = Arc::new(check);
    let windows = Arc::new(global_windows);
    let mut ticker = tokio::time::interval(check.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let started = Utc::now();
        let t0 = std::time::Instant::now();
        let (targets, failed) = targets::expand(&check.targets, MAX_TARGETS_PER_CHECK).await;
        for f in &failed {
            tracing::warn!(check = %check.name, target = %Escaped(f), "target does not resolve");
        }
        let results = tokio::select! {
            r = probe_all(&prober, &targets, &check) => r,
            _ = stop.changed() => break,
        };
        let finished = Utc::now();
        shared
            .metrics
            .durations
            .get_or_create(&CheckLabels {
                check: check.name.clone(),
            })
            .observe(t0.elapsed().as_secs_f64());
        shared
            .metrics
            .cycles
            .get_or_create(&CheckLabels {
                check: check.name.clone(),
            })
            .inc();
        let (store, metrics, c, w) = (
            shared.store.clone(),
            shared.metrics.clone(),
            check.clone(),
            windows.clone(),
        );
        let joined = tokio::task::spawn_blocking(move || {
            let mut results = results;
            judge_silences(&c, &mut results);
            let r = process_cycle(
                &mut lock(&store),
                &metrics,
                &mut engine,
                &c,
                &w,
                &results,
                started,
                finished,
            );
            (engine, r)
        })
        .await;
        let (e, r) = match joined {
            Ok(v) => v,
            Err(err) => {
                tracing::error!(check = %check.name, error = %err, "cycle task failed");
                return;
            }
        };
        engine = e;
        match r {
            Ok(jobs) => queue_alerts(&shared, jobs).await,
            Err(err) => {
                shared.metrics.store_errors.inc();
                tracing::error!(check = %check.name, error = %err, "store error; cycle not processed");
            }
        }
    }
}

/// Hand the alerts of a cycle to the alert task; an alert that finds the queue full is
/// dropped, counted and recorded as failed.
pub async fn queue_alerts(shared: &Shared, jobs: Vec<AlertJob>) {
    for job in jobs {
        let Err(err) = shared.alerts.try_send(job) else {
            continue;
        };
        let job = match err {
            mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
        };
        tracing::error!(alert = job.alert_id, "alert queue full; alert dropped");
        shared
            .metrics
            .alerts_failed
            .get_or_create(&SinkLabels {
                sink: "(queue)".into(),
                kind: job.event.kind.as_str().into(),
            })
            .inc();
        let store = shared.store.clone();
        let _ = tokio::task::spawn_blocking(move || {
            lock(&store).record_delivery(
                job.alert_id,
                "(queue)",
                false,
                0,
                Some("alert queue full"),
                Utc::now(),
            )
        })
        .await;
    }
}

/// The alert task: delivers each job to its sinks, records each outcome. Ends when the
/// channel closes (after delivering what is queued); `stop` shortens retry waits.
pub async fn run_alerts(
    mut rx: mpsc::Receiver<AlertJob>,
    sinks: Arc<Vec<Sink>>,
    cfg: AlertConfig,
    store: Arc<Mutex<Store>>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) {
    while let Some(job) = rx.recv().await {
        let (sinks, cfg, store, metrics, stop) = (
            sinks.clone(),
            cfg.clone(),
            store.clone(),
            metrics.clone(),
            stop.clone(),
        );
        let r = tokio::task::spawn_blocking(move || {
            for sink in sinks.iter() {
                if !(job.sinks.is_empty() || job.sinks.contains(&sink.name))
                    || !alert::wants(sink, &job.event)
                {
                    continue;
                }
                let attempts = if stop.load(Ordering::Relaxed) {
                    1
                } else {
                    cfg.attempts
                };
                let o = alert::deliver(sink, &job.event, attempts, cfg.backoff, &|| {
                    stop.load(Ordering::Relaxed)
                });
                let labels = SinkLabels {
                    sink: sink.name.clone(),
                    kind: job.event.kind.as_str().into(),
                };
                if o.ok {
                    metrics.alerts_sent.get_or_create(&labels).inc();
                    tracing::info!(sink = %sink.name, alert = job.alert_id, summary = %job.event.summary(), "alert sent");
                } else {
                    metrics.alerts_failed.get_or_create(&labels).inc();
                    tracing::error!(sink = %sink.name, alert = job.alert_id, error = %o.error.as_deref().unwrap_or("-"), "alert not delivered");
                }
                if let Err(e) = lock(&store).record_delivery(
                    job.alert_id,
                    &sink.name,
                    o.ok,
                    o.attempts,
                    o.error.as_deref(),
                    Utc::now(),
                ) {
                    metrics.store_errors.inc();
                    tracing::error!(error = %e, "cannot record delivery");
                }
            }
        })
        .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "alert task failed");
        }
    }
}

/// A bounded wait used by shutdown paths.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_probe::probe::{Port, PortResult};

    fn check() -> Check {
        let text = "[[check]]\nname = \"c\"\ntargets = [\"198.51.100.10\"]\n";
        crate::config::MonitorConfig::parse(text, None)
            .unwrap()
            .checks[0]
            .clone()
    }

    fn host(ports: &[(Port, PortState, &str)]) -> HostResult {
        HostResult {
            address: "198.51.100.10".parse().unwrap(),
            hostname: None,
            ports: ports
                .iter()
                .map(|&(port, state, e)| PortResult {
                    port,
                    state,
                    evidence: e.into(),
                    rtt_ms: None,
                    attempts: 1,
                })
                .collect(),
            info: None,
            duration_ms: 1.0,
        }
    }

    fn keys(h: &HostResult) -> Vec<(String, String)> {
        let o = evidence::host_observation(h);
        observations(&check(), h, &o)
            .into_iter()
            .map(|(k, _, v)| (k, v))
            .collect()
    }

    #[test]
    fn observations_claim_only_what_was_seen() {
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        // Silence and unknown: the ports' values, no host key, nothing for unknown.
        let h = host(&[
            (Port::Ns137Udp, PortState::Unknown, "no answer within 1s"),
            (
                Port::Ssn139Tcp,
                PortState::Filtered,
                "no answer to 1 SYN(s)",
            ),
        ]);
        assert_eq!(keys(&h), [kv("139/tcp", "closed")]);
        // A reset: the host is up.
        let h = host(&[(
            Port::Smb445Tcp,
            PortState::Closed,
            "TCP reset (connection refused)",
        )]);
        assert_eq!(keys(&h), [kv("host", "up"), kv("445/tcp", "closed")]);
        // Every port host-down: down, no port observation.
        let h = host(&[
            (Port::Ns137Udp, PortState::HostDown, "x"),
            (Port::Smb445Tcp, PortState::HostDown, "x"),
        ]);
        assert_eq!(keys(&h), [kv("host", "down")]);
    }
}
