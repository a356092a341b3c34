//! Exit codes: the Nagios plugin verdict under `--expect`, and the plain exit code.

use super::{HostResult, PortResult, PortState};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What `--expect` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    Closed,
    Open,
}

/// Nagios plugin exit codes.
pub const NAGIOS_OK: u8 = 0;

pub const NAGIOS_WARNING: u8 = 1;

pub const NAGIOS_CRITICAL: u8 = 2;

pub const NAGIOS_UNKNOWN: u8 = 3;

/// The Nagios level of one port given the expectation.
pub fn nagios_level(state: PortState, expect: Expect) -> u8 {
    use PortState::*;
    match (expect, state) {
        (_, Error | Unknown) => NAGIOS_UNKNOWN,
        (Expect::Closed, Open) => NAGIOS_CRITICAL,
        (Expect::Closed, LikelyOpen | OpenFiltered) => NAGIOS_WARNING,
        (Expect::Closed, Filtered | Closed | HostDown) => NAGIOS_OK,
        (Expect::Open, Open) => NAGIOS_OK,
        (Expect::Open, LikelyOpen | OpenFiltered) => NAGIOS_WARNING,
        (Expect::Open, Filtered | Closed | HostDown) => NAGIOS_CRITICAL,
    }
}

/// A Nagios verdict: exit code and the one-line summary with performance data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub code: u8,
    pub summary: String,
}

/// The Nagios verdict of a run: CRITICAL if any port contradicts the expectation, else
/// UNKNOWN if any probe failed, else WARNING if any port is uncertain, else OK.
pub fn nagios(results: &[HostResult], expect: Expect) -> Verdict {
    let mut worst = NAGIOS_OK;
    let mut counts: HashMap<PortState, usize> = HashMap::new();
    let mut notable: Vec<String> = Vec::new();
    let rank = |c: u8| match c {
        NAGIOS_CRITICAL => 3,
        NAGIOS_UNKNOWN => 2,
        NAGIOS_WARNING => 1,
        _ => 0,
    };
    for h in results {
        for p in &h.ports {
            *counts.entry(p.state).or_default() += 1;
            let level = nagios_level(p.state, expect);
            if level != NAGIOS_OK {
                if notable.len() < 5 {
                    notable.push(format!("{} {} {}", h.address, p.port, p.state));
                } else if notable.len() == 5 {
                    notable.push("…".into());
                }
            }
            if rank(level) > rank(worst) {
                worst = level;
            }
        }
    }
    let word = match worst {
        NAGIOS_OK => "OK",
        NAGIOS_WARNING => "WARNING",
        NAGIOS_CRITICAL => "CRITICAL",
        _ => "UNKNOWN",
    };
    let c = |s| counts.get(&s).copied().unwrap_or(0);
    let expect_word = match expect {
        Expect::Closed => "closed",
        Expect::Open => "open",
    };
    let ports: usize = results.iter().map(|h| h.ports.len()).sum();
    let detail = if notable.is_empty() {
        format!(
            "{ports} port(s) on {} host(s) as expected ({expect_word})",
            results.len()
        )
    } else {
        format!("expected {expect_word}: {}", notable.join(", "))
    };
    Verdict {
        code: worst,
        summary: format!(
            "NBDGM PROBE {word} - {detail} | hosts={} open={} likely_open={} open_filtered={} \
             filtered={} closed={} host_down={} error={}",
            results.len(),
            c(PortState::Open),
            c(PortState::LikelyOpen),
            c(PortState::OpenFiltered),
            c(PortState::Filtered),
            c(PortState::Closed),
            c(PortState::HostDown),
            c(PortState::Error),
        ),
    }
}

/// Exit code without `--expect`: 2 when every probe failed (nothing could be probed),
/// 1 when any port is `open` or `likely-open` (findings), 0 otherwise.
pub fn exit_code(results: &[HostResult]) -> u8 {
    let all: Vec<&PortResult> = results.iter().flat_map(|h| &h.ports).collect();
    if !all.is_empty() && all.iter().all(|p| p.state == PortState::Error) {
        2
    } else if all.iter().any(|p| p.state.is_exposed()) {
        1
    } else {
        0
    }
}
