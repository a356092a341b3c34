//! The loop of `nbdgm audit --watch`: a baseline audit, then a new audit every interval
//! and soon after each netlink change notification ([`crate::netlink`]), debounced and
//! rate capped, each fed to the [`DriftEngine`]. Ends on the stop flag, `duration` or after
//! `count` evaluations.

use crate::drift::{DriftAlert, DriftEngine, DriftStats, Snapshot};
use crate::netlink::{Events, Source};
use crate::{assemble, local_addresses, read_firewall, AuditOptions, AuditReport, FirewallView};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// Most interface addresses read.
const MAX_ADDRS: usize = 4096;
/// Longest a burst of changes can delay its evaluation.
const MAX_DEBOUNCE: Duration = Duration::from_secs(2);
/// How often the stop flag is looked at.
const TICK: Duration = Duration::from_millis(200);

/// How to watch.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub audit: AuditOptions,
    /// Time between polls.
    pub interval: Duration,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many evaluations (the baseline counts).
    pub count: Option<u64>,
    /// Quiet time after a change notification before evaluating.
    pub debounce: Duration,
    /// Least time between two evaluations (caps evaluations per second).
    pub min_gap: Duration,
    /// Subscribe to netlink change notifications.
    pub subscribe: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            audit: AuditOptions::default(),
            interval: Duration::from_secs(30),
            duration: None,
            count: None,
            debounce: Duration::from_millis(300),
            min_gap: Duration::from_secs(1),
            subscribe: true,
        }
    }
}

/// What the loop reports, in order.
#[derive(Debug)]
pub enum WatchEvent<'a> {
    /// The subscriptions made and failed (with the error).
    Started {
        subscribed: &'a [Source],
        failed: &'a [(Source, String)],
    },
    /// The baseline audit.
    Baseline(&'a AuditReport),
    Alert(&'a DriftAlert),
    /// The firewall could not be read this time (its facts are kept as they were).
    FirewallUnread(&'a str),
}

/// Counters at the end.
#[derive(Debug, Clone, Default)]
pub struct WatchSummary {
    pub drift: DriftStats,
    /// Evaluations started by a change notification (the others are polls).
    pub by_events: u64,
    /// Change notifications received, and those dropped on a full queue.
    pub changes: u64,
    pub changes_dropped: u64,
    pub overflows: u64,
}

/// This namespace's non-loopback interface addresses, with their interface names.
pub fn interfaces() -> Vec<(String, IpAddr)> {
    let mut out: Vec<(String, IpAddr)> = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs.take(MAX_ADDRS) {
            let Some(sa) = ifa.address else { continue };
            let ip = if let Some(s) = sa.as_sockaddr_in() {
                IpAddr::V4(s.ip())
            } else if let Some(s) = sa.as_sockaddr_in6() {
                IpAddr::V6(s.ip())
            } else {
                continue;
            };
            let id = (ifa.interface_name, ip);
            if !ip.is_loopback() && !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out.sort();
    out
}

/// One audit of this thread's namespace, and its snapshot.
pub fn take_snapshot(opts: &AuditOptions) -> (AuditReport, Snapshot) {
    let mut notes = Vec::new();
    let sockets = crate::sockets::bound_sockets(&opts.proc_root, &mut notes);
    let view = if opts.firewall {
        read_firewall(opts.timeout)
    } else {
        FirewallView::default()
    };
    let local = local_addresses();
    let report = assemble(sockets, &view, &local, notes);
    let snap = Snapshot::new(&report, &view, &local, interfaces());
    (report, snap)
}

/// Run until `stop`, `duration` or `count`; `emit` gets every event. The netlink sockets
/// (and the audits) are in this thread's network namespace.
pub fn run(
    opts: &WatchOptions,
    stop: &AtomicBool,
    mut emit: impl FnMut(WatchEvent),
) -> WatchSummary {
    let events = opts.subscribe.then(Events::start);
    let (subscribed, failed) = match &events {
        Some(e) => (e.subscribed.clone(), e.failed.clone()),
        None => (Vec::new(), Vec::new()),
    };
    emit(WatchEvent::Started {
        subscribed: &subscribed,
        failed: &failed,
    });
    let start = Instant::now();
    let deadline = opts.duration.map(|d| start + d);
    let mut engine = DriftEngine::new();
    let mut summary = WatchSummary::default();
    let evaluate = |engine: &mut DriftEngine, emit: &mut dyn FnMut(WatchEvent)| {
        let (report, snap) = take_snapshot(&opts.audit);
        if engine.stats().evaluations == 0 {
            emit(WatchEvent::Baseline(&report));
        }
        if !snap.firewall_ok {
            let why = report
                .firewall_sources
                .iter()
                .find(|s| !s.used)
                .map_or("firewall unreadable", |s| s.detail.as_str());
            emit(WatchEvent::FirewallUnread(why));
        }
        for a in engine.observe(&snap) {
            emit(WatchEvent::Alert(&a));
        }
    };
    evaluate(&mut engine, &mut emit);
    let mut last_eval = Instant::now();
    let mut next_poll = last_eval + opts.interval;
    // First and last change notification of a pending burst.
    let mut pending: Option<(Instant, Instant)> = None;
    let mut rx = events.as_ref().map(|e| &e.rx);
    loop {
        let now = Instant::now();
        let done_count = opts.count.is_some_and(|c| engine.stats().evaluations >= c);
        if stop.load(Ordering::Relaxed) || done_count || deadline.is_some_and(|d| now >= d) {
            break;
        }
        let event_due = pending.map(|(first, last)| {
            (last + opts.debounce)
                .min(first + MAX_DEBOUNCE)
                .max(last_eval + opts.min_gap)
        });
        let mut wake = next_poll.min(now + TICK);
        if let Some(d) = event_due {
            wake = wake.min(d);
        }
        if let Some(d) = deadline {
            wake = wake.min(d);
        }
        let wait = wake.saturating_duration_since(now);
        match rx.map(|r| r.recv_timeout(wait)) {
            Some(Ok(_)) => {
                summary.changes += 1;
                let t = Instant::now();
                pending = Some((pending.map_or(t, |p| p.0), t));
                continue;
            }
            Some(Err(RecvTimeoutError::Disconnected)) => rx = None,
            Some(Err(RecvTimeoutError::Timeout)) => {}
            None => std::thread::sleep(wait),
        }
        let now = Instant::now();
        let by_event = event_due.is_some_and(|d| now >= d);
        if now >= next_poll || by_event {
            if by_event {
                summary.by_events += 1;
            }
            evaluate(&mut engine, &mut emit);
            pending = None;
            last_eval = Instant::now();
            next_poll = last_eval + opts.interval;
        }
    }
    if let Some(e) = events {
        summary.changes_dropped = e.counters.dropped.load(Ordering::Relaxed);
        summary.overflows = e.counters.overflows.load(Ordering::Relaxed);
        e.stop();
    }
    summary.drift = engine.stats();
    summary
}
