//! The overview's view model: the summary (violations now and since when, unknown keys,
//! maintenance), hosts grouped per base check with one chip per port showing each vantage
//! point's latest probe state and evidence apart from the verdict, the filters, and the
//! recent changes. Vantage points are checks named `CHECK@LOCATION`; a name without `@`
//! is the central instance ("local").

use super::stamp::Stamp;
use crate::config::MonitorConfig;
use crate::maintenance::Window;
use crate::store::{ChangeRow, LatestRow, Verdict};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeSet;

/// Changes read for the overview's timeline, and at most shown.
pub const CHANGES_READ: usize = 500;
pub const CHANGES_SHOWN: usize = 100;
/// Most host rows shown (the filters narrow the rest).
pub const MAX_HOSTS: usize = 2_000;

/// The filters (query string of `/` and `/fragment/overview`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filter {
    /// A base check name.
    pub check: Option<String>,
    /// A raw probe state.
    pub state: Option<String>,
    /// `1`: violations only.
    pub violations: Option<String>,
}

impl Filter {
    fn check(&self) -> Option<&str> {
        self.check.as_deref().filter(|c| !c.is_empty())
    }
    fn state(&self) -> Option<&str> {
        self.state.as_deref().filter(|c| !c.is_empty())
    }
    pub fn violations_only(&self) -> bool {
        self.violations
            .as_deref()
            .is_some_and(|v| !v.is_empty() && v != "0")
    }
    fn keeps(&self, r: &LatestRow) -> bool {
        let (base, _) = split_check(&r.check);
        self.check().is_none_or(|c| c == base)
            && self.state().is_none_or(|s| r.state.as_deref() == Some(s))
            && (!self.violations_only() || r.verdict == Verdict::Violation)
    }
    /// Is `v` the selected check / state (for `selected` in the form)?
    pub fn is_check(&self, v: &str) -> bool {
        self.check() == Some(v)
    }
    pub fn is_state(&self, v: &str) -> bool {
        self.state() == Some(v)
    }
}

/// `lan@dmz` → (`lan`, `dmz`); `lan` → (`lan`, `local`).
pub fn split_check(check: &str) -> (&str, &str) {
    check.split_once('@').unwrap_or((check, "local"))
}

/// `/port?check=&target=&port=`.
pub fn port_href(check: &str, target: &str, port: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("check", check)
        .append_pair("target", target)
        .append_pair("port", port)
        .finish();
    format!("/port?{q}")
}

/// CSS class of a raw state (`open|filtered` → `s-open-filtered`).
pub fn state_class(state: &str) -> &'static str {
    match state {
        "open" | "likely-open" | "up" => "s-open",
        "closed" | "down" => "s-closed",
        "filtered" => "s-filtered",
        "open|filtered" | "ambiguous" => "s-ambiguous",
        _ => "s-unknown",
    }
}

/// One vantage point's view of a port.
#[derive(Debug, Clone)]
pub struct VantageView {
    pub vantage: String,
    /// The probe's latest state ("no result" when none).
    pub state: String,
    pub state_class: &'static str,
    pub evidence: String,
    pub verdict: &'static str,
    pub value: String,
    pub expected: String,
    pub seen: Option<Stamp>,
}

/// One port of a host, every vantage point.
#[derive(Debug, Clone)]
pub struct PortChip {
    pub port: String,
    /// The worst verdict of its vantage points.
    pub verdict: &'static str,
    pub href: String,
    pub vantages: Vec<VantageView>,
}

/// One host of a check.
#[derive(Debug, Clone)]
pub struct HostGroup {
    pub target: String,
    pub hostname: Option<String>,
    pub seen: Option<Stamp>,
    pub violations: usize,
    pub chips: Vec<PortChip>,
}

/// One base check with its vantage points.
#[derive(Debug, Clone)]
pub struct CheckGroup {
    pub name: String,
    pub vantages: Vec<String>,
    pub violations: usize,
    pub maintenance: bool,
    pub hosts: Vec<HostGroup>,
}

/// One maintenance window as shown.
#[derive(Debug, Clone)]
pub struct WindowView {
    /// `all checks` or the check's name.
    pub scope: String,
    pub text: String,
    pub active: bool,
}

/// One change in the timeline.
#[derive(Debug, Clone)]
pub struct ChangeView {
    pub at: Option<Stamp>,
    pub check: String,
    pub vantage: String,
    pub target: String,
    pub port: String,
    pub old: String,
    pub new: String,
    pub kind: Option<String>,
    pub bad: bool,
    pub maintenance: bool,
    pub href: String,
}

/// Everything the overview shows.
#[derive(Debug, Clone)]
pub struct Overview {
    pub now: Stamp,
    pub violations: usize,
    pub violations_since: Option<Stamp>,
    pub unknown: usize,
    pub keys: usize,
    pub hosts: usize,
    pub checks: Vec<CheckGroup>,
    pub check_names: Vec<String>,
    pub states: Vec<String>,
    pub windows: Vec<WindowView>,
    pub changes: Vec<ChangeView>,
    pub filter: Filter,
    /// Rows hidden by the filters.
    pub hidden: usize,
}

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn hm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// A window in words: "Mon, Sat 22:00–02:00 local" or "from … until …".
pub fn describe(w: &Window) -> String {
    match w {
        Window::Weekly {
            days,
            start,
            end,
            utc,
        } => {
            let d: Vec<&str> = (0..7)
                .filter(|i| days & (1 << i) != 0)
                .map(|i| DAY_NAMES[i])
                .collect();
            let d = if d.len() == 7 {
                "Every day".to_owned()
            } else {
                d.join(", ")
            };
            let zone = if *utc { "UTC" } else { "local time" };
            format!("{d} {}–{} {zone}", hm(*start), hm(*end))
        }
        Window::Absolute { from, until } => format!(
            "{} – {}",
            from.format("%Y-%m-%d %H:%M UTC"),
            until.format("%Y-%m-%d %H:%M UTC")
        ),
    }
}

fn windows(cfg: &MonitorConfig, now: DateTime<Utc>) -> Vec<WindowView> {
    let global = cfg.maintenance.iter().map(|w| ("all checks".to_owned(), w));
    let per = cfg
        .checks
        .iter()
        .flat_map(|c| c.maintenance.iter().map(move |w| (c.name.clone(), w)));
    global
        .chain(per)
        .filter(|(_, w)| !matches!(w, Window::Absolute { until, .. } if *until < now))
        .map(|(scope, w)| WindowView {
            scope,
            text: describe(w),
            active: w.contains(now),
        })
        .collect()
}

pub(super) fn vantage_view(r: &LatestRow, now: DateTime<Utc>) -> VantageView {
    let state = r.state.clone().unwrap_or_else(|| "no result".into());
    VantageView {
        vantage: split_check(&r.check).1.to_owned(),
        state_class: state_class(&state),
        state,
        evidence: r.evidence.clone().unwrap_or_default(),
        verdict: r.verdict.as_str(),
        value: r.value.clone().unwrap_or_else(|| "not confirmed".into()),
        expected: r.expected.clone().unwrap_or_default(),
        seen: r.ts.as_deref().and_then(|t| Stamp::parse(t, now)),
    }
}

fn worse(a: &'static str, b: &'static str) -> &'static str {
    let rank = |v| match v {
        "violation" => 2,
        "unknown" => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// Group rows (sorted by check, target) into checks → hosts → port chips.
fn group(rows: &[&LatestRow], cfg: &MonitorConfig, now: DateTime<Utc>) -> Vec<CheckGroup> {
    let mut out: Vec<CheckGroup> = Vec::new();
    let mut hosts = 0;
    for r in rows {
        let (base, vantage) = split_check(&r.check);
        let gi = match out.iter().position(|g| g.name == base) {
            Some(i) => i,
            None => {
                let windows = cfg.check(base).map(|c| c.maintenance.as_slice());
                out.push(CheckGroup {
                    name: base.to_owned(),
                    vantages: Vec::new(),
                    violations: 0,
                    maintenance: crate::maintenance::active(&cfg.maintenance, now)
                        || windows.is_some_and(|w| crate::maintenance::active(w, now)),
                    hosts: Vec::new(),
                });
                out.len() - 1
            }
        };
        let g = &mut out[gi];
        if !g.vantages.iter().any(|v| v == vantage) {
            g.vantages.push(vantage.to_owned());
        }
        let hi = match g.hosts.iter().position(|h| h.target == r.target) {
            Some(i) => i,
            None if hosts >= MAX_HOSTS => continue,
            None => {
                hosts += 1;
                g.hosts.push(HostGroup {
                    target: r.target.clone(),
                    hostname: None,
                    seen: None,
                    violations: 0,
                    chips: Vec::new(),
                });
                g.hosts.len() - 1
            }
        };
        let violation = r.verdict == Verdict::Violation;
        g.violations += usize::from(violation);
        let h = &mut g.hosts[hi];
        h.violations += usize::from(violation);
        if h.hostname.is_none() {
            h.hostname.clone_from(&r.hostname);
        }
        let v = vantage_view(r, now);
        if v.seen
            .as_ref()
            .is_some_and(|s| h.seen.as_ref().is_none_or(|o| s.iso > o.iso))
        {
            h.seen.clone_from(&v.seen);
        }
        match h.chips.iter_mut().find(|c| c.port == r.port) {
            Some(c) => {
                c.verdict = worse(c.verdict, v.verdict);
                c.vantages.push(v);
            }
            None => h.chips.push(PortChip {
                port: r.port.clone(),
                verdict: v.verdict,
                href: port_href(base, &r.target, &r.port),
                vantages: vec![v],
            }),
        }
    }
    // Checks with violations first, then by name.
    out.sort_by(|a, b| (a.violations == 0, &a.name).cmp(&(b.violations == 0, &b.name)));
    for g in &mut out {
        g.vantages.sort_by_key(|v| (v != "local", v.clone()));
        for h in &mut g.hosts {
            for c in &mut h.chips {
                c.vantages
                    .sort_by_key(|v| (v.vantage != "local", v.vantage.clone()));
            }
        }
    }
    out
}

pub(super) fn change_view(c: &ChangeRow, now: DateTime<Utc>) -> ChangeView {
    let (base, vantage) = split_check(&c.check);
    ChangeView {
        at: Stamp::parse(&c.ts, now),
        check: base.to_owned(),
        vantage: vantage.to_owned(),
        target: c.target.clone(),
        port: c.port.clone(),
        old: c.old.clone().unwrap_or_else(|| "(none)".into()),
        new: c.new.clone(),
        kind: c.kind.clone(),
        bad: c.bad,
        maintenance: c.in_maintenance,
        href: port_href(base, &c.target, &c.port),
    }
}

const STATES: [&str; 8] = [
    "open",
    "closed",
    "filtered",
    "open|filtered",
    "likely-open",
    "host-down",
    "error",
    "unknown",
];

impl Overview {
    /// The overview of `latest` (every key) and `changes` (newest first) under `filter`.
    pub fn build(
        latest: &[LatestRow],
        changes: &[ChangeRow],
        cfg: &MonitorConfig,
        filter: Filter,
        now: DateTime<Utc>,
    ) -> Overview {
        let bad: Vec<&LatestRow> = latest
            .iter()
            .filter(|r| r.verdict == Verdict::Violation)
            .collect();
        let since = bad
            .iter()
            .filter_map(|r| r.since.as_deref().and_then(crate::store::parse_ts))
            .min();
        let kept: Vec<&LatestRow> = latest.iter().filter(|r| filter.keeps(r)).collect();
        let check_names: BTreeSet<String> = latest
            .iter()
            .map(|r| split_check(&r.check).0.to_owned())
            .chain(cfg.checks.iter().map(|c| c.name.clone()))
            .collect();
        let mut states: BTreeSet<String> = STATES.iter().map(|s| (*s).to_owned()).collect();
        states.extend(latest.iter().filter_map(|r| r.state.clone()));
        let hosts: BTreeSet<&str> = latest.iter().map(|r| r.target.as_str()).collect();
        // Newest first by time (ids follow commit order, which may differ between instances).
        let mut changes: Vec<&ChangeRow> = changes
            .iter()
            .filter(|c| filter.check().is_none_or(|f| split_check(&c.check).0 == f))
            .collect();
        changes.sort_by(|a, b| b.ts.cmp(&a.ts).then(b.id.cmp(&a.id)));
        let changes = changes
            .into_iter()
            .take(CHANGES_SHOWN)
            .map(|c| change_view(c, now))
            .collect();
        Overview {
            now: Stamp::new(now, now),
            violations: bad.len(),
            violations_since: since.map(|t| Stamp::new(t, now)),
            unknown: latest
                .iter()
                .filter(|r| r.verdict == Verdict::Unknown)
                .count(),
            keys: latest.len(),
            hosts: hosts.len(),
            checks: group(&kept, cfg, now),
            check_names: check_names.into_iter().collect(),
            states: states.into_iter().collect(),
            windows: windows(cfg, now),
            changes,
            hidden: latest.len() - kept.len(),
            filter,
        }
    }

    /// Active maintenance windows.
    pub fn active_windows(&self) -> usize {
        self.windows.iter().filter(|w| w.active).count()
    }
}

/// The fragment swapped in by the live refresh (and included in the page).
#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewFragment {
    pub o: Overview,
}

/// The whole page.
#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub o: Overview,
    pub title: String,
    pub version: &'static str,
}

impl DashboardPage {
    pub fn new(o: Overview) -> DashboardPage {
        let title = if o.violations == 1 {
            "1 violation · nbdgm monitor".to_owned()
        } else if o.violations > 0 {
            format!("{} violations · nbdgm monitor", o.violations)
        } else {
            "nbdgm monitor".to_owned()
        };
        DashboardPage {
            o,
            title,
            version: super::asset_version(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(check: &str, target: &str, port: &str, state: &str, verdict: Verdict) -> LatestRow {
        LatestRow {
            check: check.into(),
            target: target.into(),
            hostname: None,
            port: port.into(),
            state: Some(state.into()),
            evidence: Some("e".into()),
            rtt_ms: None,
            ts: Some("2026-01-01T00:00:00.123456Z".into()),
            run_id: Some(1),
            value: Some(state.into()),
            seq: Some(1),
            since: Some("2026-01-01T00:00:00.000000Z".into()),
            expected: Some("closed".into()),
            bad: Some(verdict == Verdict::Violation),
            verdict,
        }
    }

    #[test]
    fn groups_vantages_and_filters() {
        let cfg = MonitorConfig::parse(
            "[store]\nurl = \"x.db\"\n[[check]]\nname = \"lan\"\ntargets = [\"198.51.100.1\"]\n",
            None,
        )
        .unwrap();
        let rows = [
            row("lan", "198.51.100.1", "138/udp", "closed", Verdict::Ok),
            row(
                "lan@dmz",
                "198.51.100.1",
                "138/udp",
                "open",
                Verdict::Violation,
            ),
            row(
                "lan",
                "198.51.100.2",
                "137/udp",
                "filtered",
                Verdict::Unknown,
            ),
        ];
        let now = Utc::now();
        let o = Overview::build(&rows, &[], &cfg, Filter::default(), now);
        assert_eq!((o.violations, o.unknown, o.keys, o.hosts), (1, 1, 3, 2));
        assert_eq!(o.checks.len(), 1);
        let g = &o.checks[0];
        assert_eq!(g.vantages, ["local", "dmz"]);
        let chip = &g.hosts[0].chips[0];
        assert_eq!(chip.verdict, "violation");
        let v: Vec<String> = chip
            .vantages
            .iter()
            .map(|v| format!("{}: {}", v.vantage, v.state))
            .collect();
        assert_eq!(v, ["local: closed", "dmz: open"]);
        assert_eq!(
            chip.href,
            "/port?check=lan&target=198.51.100.1&port=138%2Fudp"
        );
        let only = Filter {
            violations: Some("1".into()),
            ..Filter::default()
        };
        let o = Overview::build(&rows, &[], &cfg, only, now);
        assert_eq!(o.violations, 1, "the summary ignores the filters");
        assert_eq!(o.checks[0].hosts.len(), 1);
        assert_eq!(o.hidden, 2);
        let state = Filter {
            state: Some("filtered".into()),
            ..Filter::default()
        };
        let o = Overview::build(&rows, &[], &cfg, state, now);
        assert_eq!(o.checks[0].hosts[0].target, "198.51.100.2");
    }

    #[test]
    fn windows_in_words() {
        let w = Window::Weekly {
            days: 0b1000001,
            start: 22 * 60,
            end: 2 * 60,
            utc: true,
        };
        assert_eq!(describe(&w), "Mon, Sun 22:00–02:00 UTC");
        assert_eq!(split_check("lan@dmz"), ("lan", "dmz"));
        assert_eq!(split_check("lan"), ("lan", "local"));
        assert_eq!(state_class("open|filtered"), "s-ambiguous");
    }
}
