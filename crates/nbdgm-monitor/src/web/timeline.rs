//! The per-port page `/port?check=&target=&port=`: for each vantage point of the port,
//! its latest probe state and evidence, the verdict, SVG timeline bars of the confirmed
//! value over the last 24 hours and 7 days with maintenance windows, the share of time
//! closed and not violating, and the list of changes.

use super::page::{change_view, split_check, state_class, ChangeView, VantageView};
use super::stamp::{span, Stamp};
use crate::config::MonitorConfig;
use crate::engine::Key;
use crate::maintenance::Window;
use crate::store::{KeyHistory, LatestRow, Result, Store};
use askama::Template;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

/// Query of `/port`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PortParams {
    pub check: Option<String>,
    pub target: Option<String>,
    pub port: Option<String>,
}

/// Samples per bar when marking maintenance windows.
const MAINT_SAMPLES: i64 = 288;

/// One rectangle of a bar (viewBox 0..1000 wide).
#[derive(Debug, Clone)]
pub struct BarSeg {
    pub x: String,
    pub w: String,
    pub class: String,
    pub title: String,
}

/// One timeline bar.
#[derive(Debug, Clone)]
pub struct Bar {
    pub id: &'static str,
    pub label: &'static str,
    pub start: &'static str,
    pub segs: Vec<BarSeg>,
    pub maint: Vec<BarSeg>,
    pub share_closed: String,
    pub share_ok: String,
    pub changes: usize,
}

/// One vantage point of the port.
#[derive(Debug, Clone)]
pub struct VantageHistory {
    pub check: String,
    pub latest: VantageView,
    pub since: Option<Stamp>,
    pub bars: Vec<Bar>,
    pub changes: Vec<ChangeView>,
    pub truncated: bool,
}

/// The latest rows of `base` (and its vantage points) for one target and port, each with
/// its 7-day history.
pub fn load(
    s: &mut Store,
    base: &str,
    target: &str,
    port: &str,
    now: DateTime<Utc>,
) -> Result<Vec<(LatestRow, KeyHistory)>> {
    let rows: Vec<LatestRow> = s
        .latest(None)?
        .into_iter()
        .filter(|r| split_check(&r.check).0 == base && r.target == target && r.port == port)
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let key = Key {
            check: r.check.clone(),
            target: r.target.clone(),
            port: r.port.clone(),
        };
        let h = s.key_history(&key, now - Duration::days(7), now)?;
        out.push((r, h));
    }
    Ok(out)
}

fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) => format!("{:.1} %", v * 100.0),
        None => "no data".into(),
    }
}

fn x_of(t: DateTime<Utc>, from: DateTime<Utc>, until: DateTime<Utc>) -> f64 {
    let total = (until - from).num_milliseconds().max(1) as f64;
    ((t - from).num_milliseconds() as f64 / total * 1000.0).clamp(0.0, 1000.0)
}

fn seg(
    a: DateTime<Utc>,
    b: DateTime<Utc>,
    h: (DateTime<Utc>, DateTime<Utc>),
    class: String,
    title: String,
) -> BarSeg {
    let (x0, x1) = (x_of(a, h.0, h.1), x_of(b, h.0, h.1));
    BarSeg {
        x: format!("{x0:.2}"),
        // At least a hairline, so a short stretch stays visible.
        w: format!("{:.2}", (x1 - x0).max(1.0)),
        class,
        title,
    }
}

/// Intervals of `[from, until)` inside any window, sampled.
fn maintenance(windows: &[&Window], from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<BarSeg> {
    let step = (until - from) / MAINT_SAMPLES as i32;
    let mut out = Vec::new();
    let mut start: Option<DateTime<Utc>> = None;
    for i in 0..=MAINT_SAMPLES {
        let t = from + step * i as i32;
        let on = i < MAINT_SAMPLES && windows.iter().any(|w| w.contains(t));
        match (on, start) {
            (true, None) => start = Some(t),
            (false, Some(a)) => {
                let title = format!("maintenance {} – {}", fmt(a), fmt(t));
                out.push(seg(a, t, (from, until), "maint".into(), title));
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn bar(h: &KeyHistory, id: &'static str, windows: &[&Window]) -> Bar {
    let range = (h.from, h.until);
    let segs = h
        .segments
        .iter()
        .map(|s| {
            let class = format!(
                "{}{}",
                state_class(&s.value),
                if s.bad { " bad" } else { "" }
            );
            let title = format!(
                "{}{} from {} for {}",
                s.value,
                if s.bad { " (violation)" } else { "" },
                fmt(s.from),
                span(s.until - s.from)
            );
            seg(s.from, s.until, range, class, title)
        })
        .collect();
    let (label, start) = if id == "day" {
        ("Last 24 hours", "24 h ago")
    } else {
        ("Last 7 days", "7 d ago")
    };
    Bar {
        id,
        label,
        start,
        segs,
        maint: maintenance(windows, h.from, h.until),
        share_closed: pct(h.share_closed()),
        share_ok: pct(h.share_ok()),
        changes: h.changes.len(),
    }
}

/// The page.
#[derive(Template)]
#[template(path = "port.html")]
pub struct PortPage {
    pub title: String,
    pub version: &'static str,
    pub check: String,
    pub target: String,
    pub port: String,
    pub now: Stamp,
    pub vantages: Vec<VantageHistory>,
}

impl PortPage {
    pub fn new(
        check: String,
        target: String,
        port: String,
        rows: Vec<(LatestRow, KeyHistory)>,
        cfg: &MonitorConfig,
        now: DateTime<Utc>,
    ) -> PortPage {
        let vantages = rows
            .into_iter()
            .map(|(r, week)| {
                let mut windows: Vec<&Window> = cfg.maintenance.iter().collect();
                if let Some(c) = cfg.check(split_check(&r.check).0) {
                    windows.extend(c.maintenance.iter());
                }
                let day = week.clip(now - Duration::hours(24));
                VantageHistory {
                    check: r.check.clone(),
                    latest: super::page::vantage_view(&r, now),
                    since: r.since.as_deref().and_then(|s| Stamp::parse(s, now)),
                    bars: vec![bar(&day, "day", &windows), bar(&week, "week", &windows)],
                    changes: week.changes.iter().map(|c| change_view(c, now)).collect(),
                    truncated: week.truncated,
                }
            })
            .collect();
        PortPage {
            title: format!("{port} on {target} · {check} · nbdgm monitor"),
            version: super::asset_version(),
            check,
            target,
            port,
            now: Stamp::new(now, now),
            vantages,
        }
    }
}
