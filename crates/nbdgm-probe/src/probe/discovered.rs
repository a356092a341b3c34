//! Probing many hosts with host discovery first (issue 16 §3, docs/probe.md "Host discovery"):
//! targets on a directly connected subnet are ARP-swept ([`super::discover`]) and only those
//! that answer are probed, each as soon as its reply arrives; the silent ones are `host-down`
//! with the ARP evidence. Off-link targets, and all targets when the ARP socket cannot be
//! opened (no CAP_NET_RAW) or discovery is off, are probed as by [`super::probe_all`].

use super::arp::mac_text;
use super::discover::{self, Link, ARP_RETRIES};
use super::evidence::on_live_host;
use super::host::{failed_host, probe_host};
use super::neigh;
use super::{HostResult, PortResult, PortState, ProbeOptions, RateLimiter, Scope};
use crate::target::{Target, TargetSet};
use serde::Serialize;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Whether to discover on-link hosts before probing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryMode {
    /// ARP first for targets on a directly connected subnet (the default of `nbdgm probe`).
    Auto,
    /// Probe every address (`--no-discovery`, nmap's `-Pn`).
    Off,
}

/// How to discover.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    pub mode: DiscoveryMode,
    /// First per-attempt wait for hosts that answered ARP: this, or 4 × their ARP round trip
    /// if longer, never more than the probe's own timeout. `None`: the probe's timeout.
    pub on_link_timeout: Option<Duration>,
}

/// Default first wait for a host that answered ARP (nmap's floor for its adaptive timeout).
pub const ON_LINK_TIMEOUT: Duration = Duration::from_millis(100);

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            mode: DiscoveryMode::Auto,
            on_link_timeout: Some(ON_LINK_TIMEOUT),
        }
    }
}

/// What discovery did, for the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiscoveryReport {
    /// `arp-raw` (some targets were ARP-swept with our own requests), `neighbour-table` (no
    /// CAP_NET_RAW: the kernel resolved them, its neighbour table was read) or `none`.
    pub discovery: &'static str,
    /// Per target, in the order of the targets: the method that decided it was up or down
    /// (`arp-raw`, `neighbour-table`), or `none` when it was probed without discovery.
    #[serde(skip)]
    pub methods: Vec<&'static str>,
    /// Interfaces swept.
    pub interfaces: Vec<String>,
    /// Why discovery did not run where it could have (no CAP_NET_RAW, ...).
    pub not_run: Option<String>,
    pub swept: usize,
    pub up: usize,
    pub down: usize,
    /// Targets probed without discovery (off-link, local, or discovery off/unavailable).
    pub probed_directly: usize,
    pub arp_requests: u64,
    pub arp_frames_ignored: u64,
    pub arp_frame_limit_hit: bool,
    /// Discovery sends that failed (ARP frames or neighbour-table datagrams).
    pub send_errors: u64,
    /// Datagrams sent to the discard port for the neighbour-table discovery.
    pub neighbour_datagrams: u64,
}

impl DiscoveryReport {
    /// One line for standard error.
    pub fn summary(&self) -> String {
        let mut s = format!("discovery: {}", self.discovery);
        if self.discovery == "neighbour-table" {
            s += &format!(
                " on {}: {} swept, {} up, {} host-down, {} UDP datagrams to port 9",
                self.interfaces.join(","),
                self.swept,
                self.up,
                self.down,
                self.neighbour_datagrams
            );
        } else if !self.interfaces.is_empty() {
            s += &format!(
                " on {}: {} swept, {} up, {} host-down, {} ARP requests, {} ARP frames ignored",
                self.interfaces.join(","),
                self.swept,
                self.up,
                self.down,
                self.arp_requests,
                self.arp_frames_ignored
            );
        }
        s += &format!("; {} probed without discovery", self.probed_directly);
        if let Some(why) = &self.not_run {
            s += &format!(" ({why})");
        }
        s
    }
}

fn host_down(t: &Target, opts: &ProbeOptions, evidence: &str) -> HostResult {
    let ports = opts
        .ports
        .iter()
        .map(|&port| PortResult {
            port,
            state: PortState::HostDown,
            evidence: evidence.to_string(),
            rtt_ms: None,
            attempts: 0,
        })
        .collect();
    HostResult {
        address: t.addr,
        hostname: t.hostname.clone(),
        ports,
        info: None,
        duration_ms: 0.0,
    }
}

/// A probe order: the target's index, and for a host that discovery found up the proof (ARP
/// reply, neighbour state) and its first wait.
type Order = (usize, Option<(String, Duration, bool)>);

/// [`super::probe_all`] with host discovery first (see the module). Results come back in the
/// order of `targets`, with what discovery did.
pub async fn probe_all_with(
    targets: Vec<Target>,
    opts: &ProbeOptions,
    dopts: &DiscoveryOptions,
    progress: impl Fn(usize, usize),
) -> (Vec<HostResult>, DiscoveryReport) {
    let total = targets.len();
    let opts = Arc::new(opts.bounded());
    let limiter = Arc::new(RateLimiter::new(opts.rate));
    let scope = Scope::new(TargetSet::from_targets(&targets));
    let addrs: Vec<Ipv4Addr> = targets.iter().map(|t| t.addr).collect();
    let links = match dopts.mode {
        DiscoveryMode::Auto => discover::on_link(&addrs),
        DiscoveryMode::Off => vec![None; total],
    };
    let mut groups: Vec<(Link, Vec<usize>)> = Vec::new();
    let (tx, rx) = mpsc::channel::<Order>(total.max(1));
    let mut report = DiscoveryReport {
        discovery: "none",
        ..DiscoveryReport::default()
    };
    for (i, l) in links.into_iter().enumerate() {
        match l {
            Some(l) => match groups.iter_mut().find(|(g, _)| *g == l) {
                Some((_, v)) => v.push(i),
                None => groups.push((l, vec![i])),
            },
            None => {
                report.probed_directly += 1;
                let _ = tx.try_send((i, None));
            }
        }
    }
    let done = AtomicUsize::new(0);
    progress(0, total);
    let first_wait = |rtt: Duration| {
        dopts
            .on_link_timeout
            .map_or(opts.timeout, |t| t.max(rtt * 4).min(opts.timeout))
    };
    let discovery = async {
        let mut down = Vec::new();
        let mut method: Vec<&'static str> = vec!["none"; total];
        for (link, idxs) in groups {
            let mut by_addr: HashMap<Ipv4Addr, Vec<usize>> = HashMap::new();
            for &i in &idxs {
                by_addr.entry(addrs[i]).or_default().push(i);
            }
            let group: Vec<Ipv4Addr> = by_addr.keys().copied().collect();
            let o = match discover::open(&link) {
                Ok(sock) => {
                    let sw =
                        discover::sweep(&sock, &link, &group, &scope, &limiter, |ip, mac, rtt| {
                            let proof = format!("ARP reply from {}", mac_text(&mac));
                            for &i in by_addr.get(&ip).into_iter().flatten() {
                                let _ =
                                    tx.try_send((i, Some((proof.clone(), first_wait(rtt), true))));
                            }
                        })
                        .await;
                    record_arp(&sw, &idxs, &targets, &opts, &link, &mut report)
                }
                Err(e) => {
                    // No CAP_NET_RAW: the kernel's own ARP, read from its neighbour table.
                    report.not_run = Some(format!("no ARP socket on {}: {e}", link.iface));
                    let wait = neigh::resolution_wait(&link.iface);
                    let sw =
                        neigh::sweep(link.ifindex, &group, wait, &scope, &limiter, |ip, st| {
                            let proof = format!("neighbour entry {}", neigh::state_name(st));
                            for &i in by_addr.get(&ip).into_iter().flatten() {
                                let wait = first_wait(Duration::ZERO);
                                let fresh = st & (neigh::NUD_REACHABLE | neigh::NUD_PERMANENT) != 0;
                                let _ = tx.try_send((i, Some((proof.clone(), wait, fresh))));
                            }
                        })
                        .await;
                    record_neighbours(&sw, &idxs, &targets, &opts, &link, &mut report)
                }
            };
            for (i, r) in o.down {
                method[i] = o.method;
                down.push((i, r));
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            }
            for i in o.up {
                method[i] = o.method;
            }
            for i in o.direct {
                let _ = tx.try_send((i, None));
            }
        }
        drop(tx);
        (down, method)
    };
    let probing = run_probes(rx, &targets, &opts, &limiter, |_| {
        progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
    });
    let ((down, method), probed) = tokio::join!(discovery, probing);
    report.methods = method;
    let mut results: Vec<Option<HostResult>> = vec![None; total];
    for (i, r) in down.into_iter().chain(probed) {
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(r);
        }
    }
    let results = results
        .into_iter()
        .zip(&targets)
        .map(|(r, t)| r.unwrap_or_else(|| failed_host(t, &opts, "not probed")))
        .collect();
    (results, report)
}

/// What the discovery of one link decided per target index.
struct Outcome {
    method: &'static str,
    down: Vec<(usize, HostResult)>,
    up: Vec<usize>,
    /// No table entry was seen: probed as without discovery.
    direct: Vec<usize>,
}

/// Sort the targets `idxs` of one link by the ARP sweep's result, counting them in `report`.
fn record_arp(
    sw: &discover::Sweep,
    idxs: &[usize],
    targets: &[Target],
    opts: &ProbeOptions,
    link: &Link,
    report: &mut DiscoveryReport,
) -> Outcome {
    report.discovery = "arp-raw";
    report.interfaces.push(link.iface.clone());
    report.swept += idxs.len();
    report.arp_requests += sw.requests.values().map(|&n| u64::from(n)).sum::<u64>();
    report.arp_frames_ignored += sw.ignored;
    report.arp_frame_limit_hit |= sw.frame_limit_hit;
    report.send_errors += sw.send_errors;
    let mut out = Outcome {
        method: "arp-raw",
        down: Vec::new(),
        up: Vec::new(),
        direct: Vec::new(),
    };
    for &i in idxs {
        let Some(t) = targets.get(i) else { continue };
        if sw.up.contains_key(&t.addr) {
            report.up += 1;
            out.up.push(i);
        } else {
            report.down += 1;
            let n = sw.requests.get(&t.addr).copied().unwrap_or(0);
            let n = if n == 0 { ARP_RETRIES + 1 } else { n };
            let ev = format!("no ARP reply ({n} requests on {})", link.iface);
            out.down.push((i, host_down(t, opts, &ev)));
        }
    }
    out
}

/// Sort the targets `idxs` of one link by the neighbour sweep's result, counting them in
/// `report`.
fn record_neighbours(
    sw: &neigh::NeighSweep,
    idxs: &[usize],
    targets: &[Target],
    opts: &ProbeOptions,
    link: &Link,
    report: &mut DiscoveryReport,
) -> Outcome {
    report.discovery = "neighbour-table";
    report.interfaces.push(link.iface.clone());
    report.neighbour_datagrams += sw.sent;
    report.send_errors += sw.send_errors;
    let mut out = Outcome {
        method: "neighbour-table",
        down: Vec::new(),
        up: Vec::new(),
        direct: Vec::new(),
    };
    for &i in idxs {
        let Some(t) = targets.get(i) else { continue };
        if let Some(why) = sw.down.get(&t.addr) {
            report.swept += 1;
            report.down += 1;
            let ev = format!("{why} on {} (UDP to port 9)", link.iface);
            out.down.push((i, host_down(t, opts, &ev)));
        } else if sw.up.contains_key(&t.addr) {
            report.swept += 1;
            report.up += 1;
            out.up.push(i);
        } else {
            report.probed_directly += 1;
            out.direct.push(i);
        }
    }
    out
}

/// Probe the targets whose indices arrive on `rx`, `opts.concurrency` at a time, until the
/// channel closes and every probe is done.
async fn run_probes(
    mut rx: mpsc::Receiver<Order>,
    targets: &[Target],
    opts: &Arc<ProbeOptions>,
    limiter: &Arc<RateLimiter>,
    finished: impl Fn(usize),
) -> Vec<(usize, HostResult)> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut index: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut out = Vec::new();
    let mut open = true;
    let spawn = |tasks: &mut tokio::task::JoinSet<HostResult>,
                 index: &mut HashMap<tokio::task::Id, usize>,
                 (i, up): Order| {
        let Some(t) = targets.get(i).cloned() else {
            return;
        };
        let mut o = ProbeOptions::clone(opts);
        if let Some((_, wait, _)) = &up {
            o.timeout = *wait;
        }
        let limiter = Arc::clone(limiter);
        let h = tasks.spawn(async move {
            let mut r = probe_host(t.addr, t.hostname.clone(), &o, &limiter).await;
            if let Some((proof, _, fresh)) = up {
                for p in &mut r.ports {
                    on_live_host(p, &proof, fresh);
                }
            }
            r
        });
        index.insert(h.id(), i);
    };
    loop {
        if tasks.is_empty() {
            if !open {
                break;
            }
            match rx.recv().await {
                Some(o) => spawn(&mut tasks, &mut index, o),
                None => open = false,
            }
            continue;
        }
        let room = tasks.len() < opts.concurrency;
        tokio::select! {
            o = rx.recv(), if open && room => match o {
                Some(o) => spawn(&mut tasks, &mut index, o),
                None => open = false,
            },
            joined = tasks.join_next_with_id() => {
                let (id, r) = match joined {
                    Some(Ok((id, r))) => (id, Ok(r)),
                    Some(Err(e)) => (e.id(), Err(e.to_string())),
                    None => continue,
                };
                if let Some(i) = index.remove(&id) {
                    let r = match (r, targets.get(i)) {
                        (Ok(r), _) => r,
                        (Err(e), Some(t)) => failed_host(t, opts, &format!("probe task failed: {e}")),
                        (Err(_), None) => continue,
                    };
                    out.push((i, r));
                    finished(i);
                }
            }
        }
    }
    out
}
