//! `nbdgm watch --config FILE`: alerts through the monitor's sinks (webhook, chat, SMTP,
//! exec) with de-duplication, a cooldown and a bounded queue; the routing itself is
//! `nbdgm_monitor::external` (issue 14). The file's `[[sink]]` tables are the monitor's;
//! `[watch.alerts]` sets `cooldown`, `min_severity`, `queue_items`, `queue_bytes`,
//! `attempts`, `backoff`.
//!
//! The de-duplication key is `signature id|suspect IP|alert key`. Strings stay exact in
//! the JSON the sinks send; the monitor escapes them in every human-readable form.

use nbdgm_watch::Alert;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// Counters of a [`Router`] (see `nbdgm_monitor::external::RouterStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Alerts queued for delivery.
    pub queued: u64,
    /// Repeats within the cooldown (not sent).
    pub duplicates: u64,
    /// Below `min_severity` (not sent).
    pub below_severity: u64,
    /// Dropped: the queue was full.
    pub dropped: u64,
    /// Cooldown keys forgotten: the key table was full.
    pub keys_evicted: u64,
    /// Successful deliveries (alert × sink).
    pub delivered: u64,
    /// Failed deliveries after their attempts.
    pub failed: u64,
    /// Left undelivered when `finish` ran out of time.
    pub abandoned: u64,
}

/// The de-duplication key of an alert.
pub fn dedup_key(a: &Alert) -> String {
    format!("{}|{}|{}", a.signature.id, a.src.ip(), a.key)
}

/// One line (exact strings): addresses and evidence.
pub fn summary(a: &Alert) -> String {
    let mut s = format!("{} -> {}", a.src, a.dst);
    for (k, v) in &a.evidence {
        match v {
            Value::String(t) => s.push_str(&format!(" {k}={t}")),
            other => s.push_str(&format!(" {k}={other}")),
        }
    }
    s
}

/// The JSON record the sinks get (EVE-like; strings exact).
pub fn details(a: &Alert) -> Value {
    let sig = a.signature;
    json!({
        "timestamp": nbdgm_watch::syslog::timestamp(a.time.secs, a.time.nanos),
        "frame": a.frame,
        "src_ip": a.src.ip().to_string(),
        "src_port": a.src.port(),
        "dest_ip": a.dst.ip().to_string(),
        "dest_port": a.dst.port(),
        "proto": "UDP",
        "alert": {
            "gid": nbdgm_watch::signature::GID,
            "signature_id": sig.id,
            "rev": sig.rev,
            "signature": sig.msg,
            "slug": sig.slug,
            "category": sig.category,
            "severity": a.severity.number(),
        },
        "evidence": Value::Object(a.evidence.clone()),
    })
}

#[cfg(feature = "monitor")]
mod imp {
    use super::*;
    use nbdgm_monitor::external::{self, ExternalAlert, Level};
    use nbdgm_watch::Severity;

    /// Alerts to the configured sinks.
    pub struct Router {
        inner: external::Router,
    }

    fn level(s: Severity) -> Level {
        match s {
            Severity::High => Level::High,
            Severity::Medium => Level::Medium,
            Severity::Low => Level::Low,
        }
    }

    impl Router {
        /// Reads `[[sink]]` and `[watch.alerts]` of `path` and starts the delivery
        /// thread; `None` when the file has no sink.
        pub fn from_config(path: &Path) -> anyhow::Result<Option<Router>> {
            let inner = external::Router::from_file(path, "watch")?;
            Ok(inner.map(|inner| Router { inner }))
        }

        /// The names of the sinks.
        pub fn sink_names(&self) -> Vec<String> {
            self.inner.sink_names()
        }

        /// Queues one alert (never blocks on a sink).
        pub fn route(&mut self, a: &Alert) {
            self.inner.route(ExternalAlert {
                source: "watch".into(),
                key: dedup_key(a),
                severity: level(a.severity),
                title: a.signature.msg.to_owned(),
                summary: summary(a),
                target: a.src.ip().to_string(),
                port: format!("{}/udp", a.src.port()),
                name: a.signature.slug.to_owned(),
                details: details(a),
            });
        }

        /// Counters so far.
        pub fn stats(&self) -> RouterStats {
            convert(self.inner.stats())
        }

        /// Delivers what is queued, waiting at most `timeout`.
        pub fn finish(self, timeout: Duration) -> RouterStats {
            convert(self.inner.finish(timeout))
        }
    }

    fn convert(s: external::RouterStats) -> RouterStats {
        RouterStats {
            queued: s.queued,
            duplicates: s.duplicates,
            below_severity: s.below_severity,
            dropped: s.dropped,
            keys_evicted: s.keys_evicted,
            delivered: s.delivered,
            failed: s.failed,
            abandoned: s.abandoned,
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
        /// Without the `monitor` feature: an error when the file has a `[[sink]]`,
        /// `None` otherwise.
        pub fn from_config(path: &Path) -> anyhow::Result<Option<Router>> {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
            let has_sink = text.lines().any(|l| {
                l.split('#')
                    .next()
                    .is_some_and(|l| l.replace([' ', '\t'], "") == "[[sink]]")
            });
            if has_sink {
                anyhow::bail!(
                    "{}: [[sink]] needs the `monitor` feature, and this nbdgm was built without it \
                     (cargo build -p nbdgm --features monitor)",
                    path.display()
                );
            }
            Ok(None)
        }

        pub fn sink_names(&self) -> Vec<String> {
            match self.never {}
        }

        pub fn route(&mut self, _a: &Alert) {
            match self.never {}
        }

        pub fn stats(&self) -> RouterStats {
            match self.never {}
        }

        pub fn finish(self, _timeout: Duration) -> RouterStats {
            match self.never {}
        }
    }
}

pub use imp::Router;

#[cfg(all(test, feature = "monitor"))]
mod tests {
    use super::*;
    use nbdgm_capture::Timestamp;
    use nbdgm_watch::signature::ANSWER_NOT_OWNER;
    use nbdgm_watch::Severity;
    use std::net::SocketAddr;

    fn alert(name: &str) -> Alert {
        Alert {
            signature: &ANSWER_NOT_OWNER,
            severity: Severity::Medium,
            time: Timestamp {
                secs: 1_700_000_000,
                nanos: 0,
            },
            frame: 3,
            src: SocketAddr::from(([198, 51, 100, 66], 137)),
            dst: SocketAddr::from(([198, 51, 100, 10], 137)),
            evidence: serde_json::Map::new(),
            key: name.to_owned(),
        }
        .with("name", name)
    }

    #[test]
    fn routes_through_an_exec_sink_once_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("events");
        let cfg = dir.path().join("watch.toml");
        std::fs::write(
            &cfg,
            format!(
                "[watch.alerts]\ncooldown = \"1h\"\n\n[[sink]]\nname = \"log\"\ntype = \"exec\"\n\
                 program = \"/bin/sh\"\nargs = [\"-c\", \"printf '%s\\\\n' \\\"$NBDGM_EVENT_JSON\\\" >> {}\"]\n",
                out.display()
            ),
        )
        .unwrap();
        let mut r = Router::from_config(&cfg).unwrap().unwrap();
        assert_eq!(r.sink_names(), ["log"]);
        let evil = "EVIL\x1b]0;x\x07<20>";
        r.route(&alert(evil));
        r.route(&alert(evil));
        r.route(&alert("OTHER<20>"));
        let s = r.finish(Duration::from_secs(10));
        assert_eq!(
            (s.queued, s.duplicates, s.delivered, s.failed),
            (2, 1, 2, 0)
        );
        let text = std::fs::read_to_string(&out).unwrap();
        let events: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 2);
        let d = &events[0]["detection"];
        assert_eq!(d["key"], format!("1138101|198.51.100.66|{evil}"));
        assert_eq!(d["details"]["evidence"]["name"], evil);
        assert_eq!(d["details"]["alert"]["signature_id"], 1_138_101);
        assert_eq!(events[0]["port"], "137/udp");

        // No sink: no router.
        std::fs::write(&cfg, "[watch.alerts]\ncooldown = \"5m\"\n").unwrap();
        assert!(Router::from_config(&cfg).unwrap().is_none());
        // Errors name the file and key.
        std::fs::write(&cfg, "[watch.alerts]\nmin_severity = \"urgent\"\n").unwrap();
        let e = Router::from_config(&cfg).err().unwrap().to_string();
        assert!(
            e.contains("watch.toml") && e.contains("min_severity"),
            "{e}"
        );
    }
}

#[cfg(all(test, not(feature = "monitor")))]
mod tests_without_monitor {
    use super::*;

    #[test]
    fn sinks_need_the_monitor_feature() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("watch.toml");
        std::fs::write(&cfg, "[watch]\n\n[[sink]]\nname = \"x\"\n").unwrap();
        let e = Router::from_config(&cfg).err().unwrap().to_string();
        assert!(e.contains("`monitor` feature"), "{e}");
        std::fs::write(&cfg, "[watch]\n# [[sink]]\n").unwrap();
        assert!(Router::from_config(&cfg).unwrap().is_none());
    }
}
