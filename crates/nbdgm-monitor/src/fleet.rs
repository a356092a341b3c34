//! Instances on one PostgreSQL store splitting the targets (issue 16 §4; `[store]
//! partition`, on by default with PostgreSQL). Cycles are numbered by the database clock
//! (`cycle = now_ms / interval`), so every instance works on the same cycle. Each cycle a
//! check's expanded targets are cut into chunks of `[store] chunk` targets; an instance
//! claims one chunk at a time ([`crate::store::fleet`], `FOR UPDATE SKIP LOCKED`), extends
//! its lease every third of the lease while probing, stores the chunk's results only if
//! it still owns the claim, then runs the edge logic on those keys with their counters
//! from the store. A lease lasts a quarter of the interval (1 s to 60 s), so the chunks of
//! a killed instance are claimed by another within the same interval; chunks it never
//! claimed are claimed at once. An instance that finds nothing to claim waits for the
//! open leases until the cycle ends. Alerts are claimed in the store as before: each is
//! delivered by one instance.

use crate::config::{Check, MAX_TARGETS_PER_CHECK};
use crate::evidence::{self, HostObservation};
use crate::maintenance::Window;
use crate::metrics::CheckLabels;
use crate::prober::Prober;
use crate::scheduler::{self, AlertJob, Shared};
use crate::store::{Store, StoreError};
use crate::targets::{self, Target};
use chrono::Utc;
use nbdgm_wire::text::Escaped;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The lease of a chunk for a check with this interval: a quarter of it, 1 s to 60 s.
pub fn lease_ms(interval: Duration) -> i64 {
    (interval.as_millis() as i64 / 4).clamp(1000, 60_000)
}

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run a blocking store call.
async fn blocking<T: Send + 'static>(
    store: &Arc<Mutex<Store>>,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&mut lock(&store)))
        .await
        .map_err(|e| StoreError(format!("store task: {e}")))?
}

/// `true` when `stop` turned true while sleeping.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// The task of one check in partitioned mode; ends when `stop` turns true.
pub async fn run_check(
    check: Check,
    global_windows: Vec<Window>,
    prober: Arc<dyn Prober>,
    shared: Shared,
    mut stop: watch::Receiver<bool>,
    chunk: usize,
) {
    let check = Arc::new(check);
    let windows = Arc::new(global_windows);
    let interval_ms = (check.interval.as_millis() as i64).max(1);
    let lease = lease_ms(check.interval);
    let started = Utc::now();
    let mut last_cycle = i64::MIN;
    loop {
        if *stop.borrow() {
            break;
        }
        let now_ms = match blocking(&shared.store, Store::db_now_ms).await {
            Ok(v) => v,
            Err(e) => {
                shared.metrics.store_errors.inc();
                tracing::error!(check = %check.name, error = %e, "store error; retrying in 1s");
                if sleep_or_stop(Duration::from_secs(1), &mut stop).await {
                    break;
                }
                continue;
            }
        };
        let cycle = now_ms / interval_ms;
        let left = Duration::from_millis(((cycle + 1) * interval_ms - now_ms).max(1) as u64);
        if cycle <= last_cycle {
            if sleep_or_stop(left, &mut stop).await {
                break;
            }
            continue;
        }
        last_cycle = cycle;
        let deadline = Instant::now() + left;
        let ctx = Cycle {
            check: &check,
            windows: &windows,
            prober: &prober,
            shared: &shared,
            cycle,
            lease,
            chunk,
        };
        if ctx.run(started, deadline, &mut stop).await {
            break;
        }
    }
}

struct Cycle<'a> {
    check: &'a Arc<Check>,
    windows: &'a Arc<Vec<Window>>,
    prober: &'a Arc<dyn Prober>,
    shared: &'a Shared,
    cycle: i64,
    lease: i64,
    chunk: usize,
}

impl Cycle<'_> {
    /// One cycle: claim chunks until none is left or the cycle is over. `true`: stopped.
    async fn run(
        &self,
        started: chrono::DateTime<Utc>,
        deadline: Instant,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let check = self.check;
        let (targets, failed) = targets::expand(&check.targets, MAX_TARGETS_PER_CHECK).await;
        for f in &failed {
            tracing::warn!(check = %check.name, target = %Escaped(f), "target does not resolve");
        }
        let chunks: Vec<Vec<Target>> = targets.chunks(self.chunk).map(<[_]>::to_vec).collect();
        let (name, cycle, n, total) = (check.name.clone(), self.cycle, chunks.len(), targets.len());
        let opened = blocking(&self.shared.store, move |s| {
            s.heartbeat(started)?;
            s.open_cycle(&name, cycle, n, total)
        })
        .await;
        if let Err(e) = opened {
            self.store_error(&e);
            return false;
        }
        let t0 = Instant::now();
        let mut probed = 0usize;
        loop {
            let (name, lease) = (check.name.clone(), self.lease);
            let claim = blocking(&self.shared.store, move |s| {
                s.claim_chunk(&name, cycle, lease)
            })
            .await;
            match claim {
                Err(e) => {
                    self.store_error(&e);
                    if Instant::now() >= deadline
                        || sleep_or_stop(Duration::from_secs(1), stop).await
                    {
                        return *stop.borrow();
                    }
                }
                Ok(Some(c)) => {
                    if !c.previous.is_empty() {
                        tracing::info!(check = %check.name, cycle, chunk = c.chunk,
                            from = %Escaped(&c.previous), "chunk taken over");
                    }
                    let slice = usize::try_from(c.chunk)
                        .ok()
                        .and_then(|i| chunks.get(i))
                        .cloned()
                        .unwrap_or_default();
                    probed += slice.len();
                    if self.chunk_work(c.chunk, slice, stop).await {
                        return true;
                    }
                }
                Ok(None) => {
                    let name = check.name.clone();
                    let open =
                        blocking(&self.shared.store, move |s| s.chunks_open(&name, cycle)).await;
                    let wait = Duration::from_millis((self.lease / 4).clamp(100, 1000) as u64);
                    if matches!(open, Ok(0))
                        || Instant::now() + wait >= deadline
                        || sleep_or_stop(wait, stop).await
                    {
                        break;
                    }
                }
            }
        }
        if probed > 0 {
            let labels = CheckLabels {
                check: check.name.clone(),
            };
            let m = &self.shared.metrics;
            m.durations
                .get_or_create(&labels)
                .observe(t0.elapsed().as_secs_f64());
            m.cycles.get_or_create(&labels).inc();
        }
        *stop.borrow()
    }

    fn store_error(&self, e: &StoreError) {
        self.shared.metrics.store_errors.inc();
        tracing::error!(check = %self.check.name, cycle = self.cycle, error = %e, "store error");
    }

    /// Probe one claimed chunk (extending the lease), store it, run the edge logic and
    /// queue the alerts. `true`: stopped (the chunk was given back).
    async fn chunk_work(
        &self,
        chunk: i64,
        slice: Vec<Target>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let (check, cycle, lease) = (self.check.clone(), self.cycle, self.lease);
        let started = Utc::now();
        let probe = scheduler::probe_all(self.prober, &slice, &check);
        tokio::pin!(probe);
        let mut beat = tokio::time::interval(Duration::from_millis((lease / 3).max(1) as u64));
        beat.tick().await;
        let results = loop {
            tokio::select! {
                r = &mut probe => break r,
                _ = beat.tick() => {
                    let name = check.name.clone();
                    match blocking(&self.shared.store, move |s| s.extend_lease(&name, cycle, chunk, lease)).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(check = %check.name, cycle, chunk, "lease lost; the results will not be stored"),
                        Err(e) => self.store_error(&e),
                    }
                }
                _ = stop.changed() => {
                    let name = check.name.clone();
                    let _ = blocking(&self.shared.store, move |s| s.release(&name, cycle, chunk)).await;
                    return true;
                }
            }
        };
        let finished = Utc::now();
        let (shared, windows, check) = (self.shared.clone(), self.windows.clone(), check.clone());
        let joined = tokio::task::spawn_blocking(move || {
            let mut results = results;
            scheduler::judge_silences(&check, &mut results);
            let mut store = lock(&shared.store);
            store_chunk(
                &mut store, &shared, &check, &windows, cycle, chunk, started, finished, &results,
            )
        })
        .await;
        match joined {
            Ok(Ok(jobs)) => scheduler::queue_alerts(self.shared, jobs).await,
            Ok(Err(e)) => self.store_error(&e),
            Err(e) => tracing::error!(check = %self.check.name, error = %e, "chunk task failed"),
        }
        false
    }
}

/// Store a chunk if still ours, then the edge logic on its keys (blocking).
#[allow(clippy::too_many_arguments)]
fn store_chunk(
    store: &mut Store,
    shared: &Shared,
    check: &Check,
    windows: &[Window],
    cycle: i64,
    chunk: i64,
    started: chrono::DateTime<Utc>,
    finished: chrono::DateTime<Utc>,
    results: &[nbdgm_probe::probe::HostResult],
) -> Result<Vec<AlertJob>, StoreError> {
    let hosts: Vec<HostObservation> = results.iter().map(evidence::host_observation).collect();
    let stored = store.commit_chunk(
        &check.name,
        cycle,
        chunk,
        started,
        finished,
        results,
        &hosts,
    )?;
    if stored.is_none() {
        tracing::warn!(check = %check.name, cycle, chunk, "chunk taken over by another instance; results dropped");
        return Ok(Vec::new());
    }
    let addrs: Vec<String> = results.iter().map(|h| h.address.to_string()).collect();
    let mut state = store.load_chunk_state(&check.name, &addrs)?;
    let jobs = scheduler::process_results(
        store,
        &shared.metrics,
        &mut state.engine,
        check,
        windows,
        results,
        &hosts,
        finished,
    )?;
    store.save_chunk_state(&state)?;
    Ok(jobs)
}
