//! The agent API's messages (JSON) and their validation: the checks an agent runs
//! (`GET /api/agent/v1/checks`) and the batches of cycles it pushes
//! (`POST /api/agent/v1/results`). Every field of a batch is checked before anything
//! is stored: names, cycle ids, times, counts, lengths, and that each result's address
//! is one of the check's targets and its ports the check's ports.

use crate::config::{self, Check, MAX_TARGETS_PER_CHECK};
use chrono::{DateTime, Utc};
use ipnet::Ipv4Net;
use nbdgm_probe::probe::{HostResult, Port};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

/// The checks an agent fetches.
pub const PATH_CHECKS: &str = "/api/agent/v1/checks";
/// Where an agent pushes its results.
pub const PATH_RESULTS: &str = "/api/agent/v1/results";
/// Largest request body of the results endpoint.
pub const MAX_BODY: usize = 4 << 20;
/// Most cycles in one batch.
pub const MAX_CYCLES: usize = 64;
/// Longest evidence, host name, NetBIOS name or workgroup string accepted.
pub const MAX_TEXT: usize = 512;
/// Most names in one NODE STATUS result (RFC 1002 allows 255).
pub const MAX_NAMES: usize = 255;
/// Oldest cycle accepted (a buffered cycle older than this is refused).
pub const MAX_AGE: Duration = Duration::from_secs(7 * 86_400);
/// Clock skew tolerated for cycle times in the future.
pub const MAX_SKEW: Duration = Duration::from_secs(300);

/// One check as an agent needs it to probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCheck {
    pub name: String,
    pub targets: Vec<String>,
    pub ports: Vec<Port>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub retries: u32,
    pub rate: u32,
    pub concurrency: usize,
    pub workgroup: Option<String>,
}

/// The answer to `GET /api/agent/v1/checks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksReply {
    pub agent: String,
    pub location: String,
    pub checks: Vec<AgentCheck>,
}

/// One probe cycle of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cycle {
    /// Random, made by the agent: a cycle sent twice is stored once.
    pub id: String,
    pub check: String,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub results: Vec<HostResult>,
}

/// The body of `POST /api/agent/v1/results`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub location: String,
    pub cycles: Vec<Cycle>,
}

/// A cycle the central refused (and will always refuse): the agent drops it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub id: String,
    pub reason: String,
}

/// The answer to a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReply {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<Rejected>,
}

impl AgentCheck {
    /// What the central sends for `c`.
    pub fn from_check(c: &Check) -> AgentCheck {
        AgentCheck {
            name: c.name.clone(),
            targets: c.targets.clone(),
            ports: c.ports.clone(),
            interval_ms: u64::try_from(c.interval.as_millis()).unwrap_or(u64::MAX),
            timeout_ms: u64::try_from(c.timeout.as_millis()).unwrap_or(u64::MAX),
            retries: c.retries,
            rate: c.rate,
            concurrency: c.concurrency,
            workgroup: c.workgroup.clone(),
        }
    }

    /// Validate what a central sent and make a [`Check`] to probe with (the engine
    /// settings are the central's business and left at their defaults).
    pub fn to_check(&self) -> Result<Check, String> {
        if !config::agents::valid_name(&self.name) {
            return Err(format!("check name {:?} is not valid", self.name));
        }
        let mut count = 0usize;
        for t in &self.targets {
            count += crate::targets::count(t).map_err(|e| e.to_string())?;
        }
        if self.targets.is_empty() || count > MAX_TARGETS_PER_CHECK {
            return Err(format!("{}: 1-{MAX_TARGETS_PER_CHECK} targets", self.name));
        }
        if self.ports.is_empty() || self.ports.len() > Port::ALL.len() {
            return Err(format!("{}: 1-5 ports", self.name));
        }
        let interval = Duration::from_millis(self.interval_ms.clamp(100, 366 * 86_400_000));
        let timeout = Duration::from_millis(self.timeout_ms.clamp(1, 60_000));
        Ok(Check {
            name: self.name.clone(),
            targets: self.targets.clone(),
            ports: self.ports.clone(),
            expect: config::Expect::Closed,
            interval,
            timeout,
            retries: self.retries.min(10),
            rate: self.rate.max(1),
            concurrency: self.concurrency.clamp(1, 1024),
            workgroup: self.workgroup.clone().filter(|w| w.len() <= 15),
            confirmations: 1,
            ambiguous_as_open: false,
            remind_every: None,
            maintenance: Vec::new(),
            sinks: Vec::new(),
            agents: Vec::new(),
        })
    }
}

/// The check name a location's results are stored under.
pub fn vantage_name(check: &str, location: &str) -> String {
    format!("{check}@{location}")
}

/// A cycle id: 16-64 characters of `0-9 a-f`.
pub fn valid_cycle_id(id: &str) -> bool {
    (16..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The addresses and host names a check may report on.
#[derive(Debug, Clone, Default)]
pub struct TargetSet {
    addrs: HashSet<Ipv4Addr>,
    nets: Vec<Ipv4Net>,
    names: HashSet<String>,
}

impl TargetSet {
    pub fn of(check: &Check) -> TargetSet {
        let mut s = TargetSet::default();
        for t in &check.targets {
            let t = t.trim();
            if let Ok(a) = t.parse::<Ipv4Addr>() {
                s.addrs.insert(a);
            } else if let Ok(n) = t.parse::<Ipv4Net>() {
                s.nets.push(n);
            } else {
                s.names.insert(t.to_ascii_lowercase());
            }
        }
        s
    }

    /// An address listed or inside a listed range, or any address reported under a
    /// listed host name (an agent resolves names itself: split-horizon DNS).
    pub fn allows(&self, addr: Ipv4Addr, hostname: Option<&str>) -> bool {
        match hostname {
            Some(h) => self.names.contains(&h.to_ascii_lowercase()),
            None => self.addrs.contains(&addr) || self.nets.iter().any(|n| n.contains(&addr)),
        }
    }
}

fn text_ok(s: &str) -> bool {
    s.len() <= MAX_TEXT
}

/// Validate one cycle of a check an agent runs; `now` bounds its times.
pub fn validate_cycle(
    c: &Cycle,
    check: &Check,
    targets: &TargetSet,
    now: DateTime<Utc>,
) -> Result<(), String> {
    if !valid_cycle_id(&c.id) {
        return Err("cycle id: 16-64 hexadecimal digits".into());
    }
    let skew = chrono::Duration::from_std(MAX_SKEW).unwrap_or_default();
    let age = chrono::Duration::from_std(MAX_AGE).unwrap_or_default();
    if c.started > c.finished || c.finished > now + skew || c.started < now - age {
        return Err("cycle times out of range".into());
    }
    if c.results.len() > MAX_TARGETS_PER_CHECK {
        return Err(format!("more than {MAX_TARGETS_PER_CHECK} results"));
    }
    let mut seen = HashSet::new();
    let mut names = HashSet::new();
    for h in &c.results {
        if !seen.insert(h.address) {
            return Err(format!("{} reported twice", h.address));
        }
        // A host name target is probed at one address (its first), as the central does.
        if let Some(n) = &h.hostname {
            if !names.insert(n.to_ascii_lowercase()) {
                return Err("a host name reported twice".into());
            }
        }
        if h.hostname.as_deref().is_some_and(|n| !text_ok(n)) {
            return Err("host name too long".into());
        }
        if !targets.allows(h.address, h.hostname.as_deref()) {
            return Err(format!("{} is not a target of {}", h.address, check.name));
        }
        if !h.duration_ms.is_finite() || h.duration_ms < 0.0 {
            return Err("duration_ms".into());
        }
        let mut ports = HashSet::new();
        for p in &h.ports {
            if !check.ports.contains(&p.port) || !ports.insert(p.port) {
                return Err(format!("port {} not probed by {}", p.port, check.name));
            }
            if !text_ok(&p.evidence) || p.rtt_ms.is_some_and(|r| !r.is_finite() || r < 0.0) {
                return Err("port result out of range".into());
            }
        }
        if let Some(info) = &h.info {
            let texts = info
                .names
                .iter()
                .map(|n| n.name.as_str())
                .chain(info.workgroup.as_deref())
                .chain(info.mac.as_deref())
                .chain(info.roles.iter().map(String::as_str));
            if info.names.len() > MAX_NAMES
                || info.roles.len() > MAX_NAMES
                || texts.clone().any(|t| !text_ok(t))
            {
                return Err("host info out of range".into());
            }
        }
    }
    Ok(())
}
