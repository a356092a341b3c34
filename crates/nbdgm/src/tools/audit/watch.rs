//! `nbdgm audit --watch`: the drift loop of `nbdgm_audit::watch` on the command line:
//! each alert as a text or NDJSON line on stdout, and through the monitor's sinks
//! (`[[sink]]` tables and `[audit.alerts]` of `--config`) when built with `monitor`.
//! SIGINT and SIGTERM end it cleanly (exit 0).

use super::{AuditArgs, AuditFormat};
use crate::exit;
use nbdgm_audit::drift::DriftAlert;
use nbdgm_audit::watch::{self as w, WatchEvent, WatchOptions};
use nbdgm_audit::{AuditOptions, AuditReport};
use nbdgm_wire::text::Escaped;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest wait for the sinks to deliver what is queued at the end.
const FINISH: Duration = Duration::from_secs(10);

fn now_text() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    nbdgm_watch::syslog::timestamp(t.as_secs() as i64, t.subsec_nanos())
}

/// SIGINT and SIGTERM set the flag (tokio's signal handling on a small thread).
fn stop_flag() -> std::io::Result<Arc<AtomicBool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut int, mut term) = rt.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::Builder::new()
        .name("audit-signals".into())
        .spawn(move || {
            rt.block_on(async move {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                s.store(true, Ordering::Relaxed);
            })
        })?;
    Ok(stop)
}

/// The alert as one text line (every string escaped).
pub fn alert_text(a: &DriftAlert) -> String {
    let mut s = format!(
        "ALERT {:<6} {} {}",
        a.severity.as_str(),
        a.alert.as_str(),
        Escaped(&a.title)
    );
    for l in a.listeners.iter().take(8) {
        s.push_str(&format!(
            " | {}/{} on {} {}[{}] user {}",
            l.port,
            l.proto,
            l.address,
            Escaped(&l.command),
            l.pid,
            Escaped(&l.user)
        ));
    }
    if let Some(r) = &a.rule {
        s.push_str(&format!(" | rule: {}", Escaped(r)));
    }
    for b in a.by.iter().take(4) {
        s.push_str(&format!(" | by: {}", Escaped(b)));
    }
    s
}

/// The alert as one NDJSON record (strings exact).
pub fn alert_json(a: &DriftAlert) -> Value {
    let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("type".into(), "alert".into());
        m.insert("time".into(), now_text().into());
    }
    v
}

fn baseline(r: &AuditReport, format: AuditFormat) {
    for p in &r.ports {
        if format == AuditFormat::Text {
            let listen: Vec<String> = p
                .listening
                .iter()
                .map(|b| format!("{}:{} {}", b.local, b.port, Escaped(&b.owner_text())))
                .collect();
            println!(
                "state {:<8} {} listening: {} firewall: {}",
                p.port.as_str(),
                if p.exposed { "EXPOSED" } else { "ok" },
                if listen.is_empty() {
                    "none".to_string()
                } else {
                    listen.join(", ")
                },
                Escaped(&p.firewall.text())
            );
        } else {
            println!(
                "{}",
                json!({"type": "state", "time": now_text(), "port": p.port.as_str(),
                    "exposed": p.exposed, "listening": p.listening, "firewall": p.firewall})
            );
        }
    }
}

fn started(
    subscribed: &[nbdgm_audit::netlink::Source],
    failed: &[(nbdgm_audit::netlink::Source, String)],
    opts: &WatchOptions,
    sinks: &[String],
    format: AuditFormat,
) {
    let subs: Vec<&str> = subscribed.iter().map(|s| s.as_str()).collect();
    if format == AuditFormat::Text {
        println!(
            "watching: polling every {}; change events from {}; sinks: {}",
            humantime::format_duration(opts.interval),
            if subs.is_empty() {
                "none".to_string()
            } else {
                subs.join(", ")
            },
            if sinks.is_empty() {
                "none".to_string()
            } else {
                Escaped(&sinks.join(", ")).to_string()
            }
        );
        for (s, e) in failed {
            println!(
                "note: no change events from {}: {} (polling only)",
                s.as_str(),
                Escaped(e)
            );
        }
    } else {
        let failed: Vec<Value> = failed
            .iter()
            .map(|(s, e)| json!({"source": s.as_str(), "error": e}))
            .collect();
        println!(
            "{}",
            json!({"type": "watch", "time": now_text(), "interval_ms": opts.interval.as_millis() as u64,
                "subscribed": subs, "failed": failed, "sinks": sinks})
        );
    }
}

/// Runs `nbdgm audit --watch`.
pub fn run(args: &AuditArgs) -> u8 {
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&args.interval) {
        eprintln!("nbdgm audit: --interval must be 1s-1h");
        return exit::USAGE;
    }
    let mut router = match &args.config {
        Some(p) => match Router::from_config(p) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("nbdgm audit: {e}");
                return exit::USAGE;
            }
        },
        None => None,
    };
    let stop = match stop_flag() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nbdgm audit: cannot handle signals: {e}");
            return exit::USAGE;
        }
    };
    let opts = WatchOptions {
        audit: AuditOptions {
            proc_root: args.proc_root.clone(),
            firewall: !args.no_firewall,
            timeout: Duration::from_secs(args.timeout),
        },
        interval: args.interval,
        duration: args.duration,
        count: args.count,
        subscribe: !args.no_events,
        ..WatchOptions::default()
    };
    let sinks = router.as_ref().map(Router::sink_names).unwrap_or_default();
    let format = args.format;
    let summary = w::run(&opts, &stop, |ev| match ev {
        WatchEvent::Started { subscribed, failed } => {
            started(subscribed, failed, &opts, &sinks, format)
        }
        WatchEvent::Baseline(r) => baseline(r, format),
        WatchEvent::FirewallUnread(why) => {
            if format == AuditFormat::Text {
                println!(
                    "note: firewall unreadable ({}); its alerts are kept as they were",
                    Escaped(why)
                );
            } else {
                println!(
                    "{}",
                    json!({"type": "note", "time": now_text(), "firewall_unreadable": why})
                );
            }
        }
        WatchEvent::Alert(a) => {
            if format == AuditFormat::Text {
                println!("{}", alert_text(a));
            } else {
                println!("{}", alert_json(a));
            }
            if let Some(r) = router.as_mut() {
                r.route(a);
            }
        }
    });
    let routed = router.map(|r| r.finish(FINISH));
    let d = summary.drift;
    let mut rec = json!({"type": "summary", "time": now_text(), "evaluations": d.evaluations,
        "by_events": summary.by_events, "alerts": d.alerts, "changes": summary.changes,
        "changes_dropped": summary.changes_dropped, "overflows": summary.overflows,
        "firewall_unread": d.firewall_unread, "facts_dropped": d.facts_dropped});
    if let Some(s) = routed {
        rec["sinks"] = json!({"queued": s.0, "delivered": s.1, "failed": s.2, "dropped": s.3});
    }
    if format == AuditFormat::Text {
        println!(
            "summary: {} evaluations ({} after change events), {} alerts{}",
            d.evaluations,
            summary.by_events,
            d.alerts,
            routed.map_or(String::new(), |s| format!(
                "; sinks: {} queued, {} delivered, {} failed, {} dropped",
                s.0, s.1, s.2, s.3
            ))
        );
    } else {
        println!("{rec}");
    }
    exit::OK
}

/// The one-line summary the sinks get (exact strings; the monitor escapes them).
#[cfg_attr(not(feature = "monitor"), allow(dead_code))]
pub fn sink_summary(a: &DriftAlert) -> String {
    let mut parts = vec![a.title.clone()];
    for l in a.listeners.iter().take(8) {
        parts.push(format!(
            "{}/{} on {} {}[{}] user {}",
            l.port, l.proto, l.address, l.command, l.pid, l.user
        ));
    }
    parts.join(" | ")
}

/// The target of an alert for the sinks: the interface address, else the first listener's.
#[cfg_attr(not(feature = "monitor"), allow(dead_code))]
fn target(a: &DriftAlert) -> String {
    a.addresses
        .first()
        .cloned()
        .or_else(|| a.listeners.first().map(|l| l.address.to_string()))
        .unwrap_or_else(|| "this host".into())
}

#[cfg(feature = "monitor")]
mod imp {
    use super::*;
    use nbdgm_audit::drift::Severity;
    use nbdgm_monitor::external::{self, ExternalAlert, Level};

    /// Alerts to the configured sinks.
    pub struct Router {
        inner: external::Router,
    }

    impl Router {
        /// `[[sink]]` and `[audit.alerts]` of `path`; `None` when the file has no sink.
        pub fn from_config(path: &Path) -> anyhow::Result<Option<Router>> {
            let inner = external::Router::from_file(path, "audit")?;
            Ok(inner.map(|inner| Router { inner }))
        }

        pub fn sink_names(&self) -> Vec<String> {
            self.inner.sink_names()
        }

        /// Queues one alert (never blocks on a sink). The key carries the episode: a fact
        /// that came back is a new alert, whatever the cooldown.
        pub fn route(&mut self, a: &DriftAlert) {
            let severity = match a.severity {
                Severity::High => Level::High,
                Severity::Medium => Level::Medium,
                Severity::Low => Level::Low,
            };
            self.inner.route(ExternalAlert {
                source: "audit".into(),
                key: format!("audit|{}#{}", a.key, a.episode),
                severity,
                title: a.title.clone(),
                summary: sink_summary(a),
                target: target(a),
                port: a.ports.join(", "),
                name: a.alert.as_str().into(),
                details: alert_json(a),
            });
        }

        /// Delivers what is queued: (queued, delivered, failed, dropped).
        pub fn finish(self, timeout: Duration) -> (u64, u64, u64, u64) {
            let s = self.inner.finish(timeout);
            (s.queued, s.delivered, s.failed, s.dropped + s.abandoned)
        }
    }
}

#[cfg(not(feature = "monitor"))]
mod imp {
    use super::*;

    /// Alerts to the configured sinks: needs the `monitor` feature.
    pub struct Router {
        never: std::convert::Infallible,
    }

    impl Router {
        pub fn from_config(path: &Path) -> anyhow::Result<Option<Router>> {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
            if text.lines().any(|l| l.trim() == "[[sink]]") {
                anyhow::bail!(
                    "{}: [[sink]] needs the `monitor` feature, and this nbdgm was built without it",
                    path.display()
                );
            }
            Ok(None)
        }

        pub fn sink_names(&self) -> Vec<String> {
            match self.never {}
        }

        pub fn route(&mut self, _a: &DriftAlert) {
            match self.never {}
        }

        pub fn finish(self, _timeout: Duration) -> (u64, u64, u64, u64) {
            match self.never {}
        }
    }
}

use imp::Router;

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_audit::drift::DriftKind;

    #[test]
    fn text_escapes_and_json_stays_exact() {
        let mut a = DriftAlert {
            alert: DriftKind::ListenerAppeared,
            severity: nbdgm_audit::drift::Severity::High,
            key: "listener|137/udp|ev\x1b[2Jil|root".into(),
            episode: 1,
            title: "ev\x1b[2Jil[9] (user root) listens on 137/udp".into(),
            ports: vec!["137/udp".into()],
            listeners: Vec::new(),
            rule: None,
            by: Vec::new(),
            interface: None,
            addresses: Vec::new(),
            ended: None,
            exposed: true,
        };
        a.listeners.push(nbdgm_audit::drift::Listener {
            proto: "udp".into(),
            port: 137,
            address: "0.0.0.0"
                .parse()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
            pid: 9,
            command: "ev\x1b[2Jil".into(),
            user: "root".into(),
        });
        let t = alert_text(&a);
        assert!(!t.contains('\x1b'), "{t}");
        assert!(t.contains("listener-appeared"), "{t}");
        let j = alert_json(&a);
        assert_eq!(j["listeners"][0]["command"], "ev\x1b[2Jil");
        assert_eq!(j["type"], "alert");
        assert_eq!(j["alert"], "listener-appeared");
        assert_eq!(target(&a), "0.0.0.0");
        assert!(sink_summary(&a).contains("user root"));
    }
}
