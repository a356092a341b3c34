//! What the scheduler probes with: the [`Prober`] trait, the real probe adapter and a
//! scripted prober (states read from a file, for tests and demos; hidden `--fake-states`
//! flag of `nbdgm monitor run`).

use nbdgm_probe::probe::{
    HostInfo, HostResult, Port, PortResult, PortState, ProbeOptions, RateLimiter, ServiceName,
};
use std::collections::HashMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Probes one host.
pub trait Prober: Send + Sync + 'static {
    fn probe(
        &self,
        target: Ipv4Addr,
        hostname: Option<String>,
        opts: &ProbeOptions,
    ) -> BoxFuture<HostResult>;
}

/// The real probes of [`nbdgm_probe::probe::probe_host`]. Probes with the same `rate` share one
/// rate limiter (so a check's `rate` bounds all of its hosts together).
#[derive(Default)]
pub struct RealProber {
    limiters: Mutex<HashMap<u32, Arc<RateLimiter>>>,
}

impl std::fmt::Debug for RealProber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RealProber")
    }
}

impl RealProber {
    pub fn new() -> RealProber {
        RealProber::default()
    }
}

impl Prober for RealProber {
    fn probe(
        &self,
        target: Ipv4Addr,
        hostname: Option<String>,
        opts: &ProbeOptions,
    ) -> BoxFuture<HostResult> {
        let opts = opts.clone();
        let limiter = {
            let mut map = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > 64 {
                map.clear();
            }
            map.entry(opts.rate)
                .or_insert_with(|| Arc::new(RateLimiter::new(opts.rate)))
                .clone()
        };
        Box::pin(
            async move { nbdgm_probe::probe::probe_host(target, hostname, &opts, &limiter).await },
        )
    }
}

/// States read from a file on every probe: lines `PORT STATE` (`137/udp open`), optionally
/// `ADDRESS PORT STATE` for one target, `names NAME<xx>,...` for the name table and
/// `down` for a host that does not answer. A missing file means every port closed.
#[derive(Debug, Clone)]
pub struct ScriptedProber {
    pub path: PathBuf,
}

fn parse_state(s: &str) -> Option<PortState> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

/// Evidence as the real probe writes it (so the monitor's evidence rules apply), marked
/// as scripted.
fn scripted_evidence(target: Ipv4Addr, port: Port, state: PortState, path: &Path) -> String {
    let from = format!("(scripted by {})", path.display());
    match state {
        PortState::Closed if port.is_udp() => {
            format!("ICMP type 3 code 3 (port unreachable) from {target} {from}")
        }
        PortState::Closed => format!("TCP reset (connection refused) {from}"),
        PortState::Open => format!("answer {from}"),
        _ => format!("no answer {from}"),
    }
}

impl ScriptedProber {
    /// The result the file describes for `target`.
    pub fn result(
        &self,
        target: Ipv4Addr,
        hostname: Option<String>,
        opts: &ProbeOptions,
    ) -> HostResult {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let mut states = std::collections::HashMap::new();
        let mut names = None;
        let mut down = false;
        for line in text.lines().take(1000) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let words: &[&str] = match words.as_slice() {
                [addr, rest @ ..] if addr.parse::<Ipv4Addr>().is_ok() => {
                    if addr.parse::<Ipv4Addr>().ok() != Some(target) {
                        continue;
                    }
                    rest
                }
                w => w,
            };
            match words {
                ["down"] => down = true,
                ["names", list] => names = Some(list.to_string()),
                [port, state] => {
                    if let (Ok(p), Some(s)) = (crate::config::parse_port(port), parse_state(state))
                    {
                        states.insert(p, s);
                    }
                }
                _ => {}
            }
        }
        let ports = opts
            .ports
            .iter()
            .map(|&port| {
                let state = if down {
                    PortState::HostDown
                } else {
                    states.get(&port).copied().unwrap_or(PortState::Closed)
                };
                PortResult {
                    port,
                    state,
                    evidence: scripted_evidence(target, port, state, &self.path),
                    rtt_ms: Some(0.1),
                    attempts: 1,
                }
            })
            .collect();
        let info = names.filter(|_| !down).map(|list| HostInfo {
            names: list
                .split(',')
                .map(|n| ServiceName {
                    name: n.to_owned(),
                    group: false,
                })
                .collect(),
            workgroup: None,
            roles: Vec::new(),
            mac: None,
        });
        HostResult {
            address: target,
            hostname,
            ports,
            info,
            duration_ms: 0.1,
        }
    }
}

impl Prober for ScriptedProber {
    fn probe(
        &self,
        target: Ipv4Addr,
        hostname: Option<String>,
        opts: &ProbeOptions,
    ) -> BoxFuture<HostResult> {
        let r = self.result(target, hostname, opts);
        Box::pin(async move { r })
    }
}
