//! Prometheus metrics of the monitor (OpenMetrics text at `/metrics`).
//!
//! - `nbdgm_port_state{check,target,port,proto,expected}`: the confirmed state, encoded
//!   0 = closed, 1 = open, 2 = ambiguous (`open|filtered` / `likely-open` not counted as
//!   open), -1 = unknown; `expected` is `open` or `closed`;
//! - `nbdgm_port_bad{check,target,port,proto}`: 1 when the confirmed state is not the
//!   expected one;
//! - `nbdgm_host_up{check,target}`: 1 up, 0 down;
//! - `nbdgm_probe_duration_seconds{check}`: histogram of probe cycle durations;
//! - `nbdgm_probe_cycles_total{check}`, `nbdgm_alerts_sent_total{sink,kind}`,
//!   `nbdgm_alerts_failed_total{sink,kind}`, `nbdgm_store_errors_total`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PortLabels {
    pub check: String,
    pub target: String,
    pub port: String,
    pub proto: String,
    pub expected: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BadLabels {
    pub check: String,
    pub target: String,
    pub port: String,
    pub proto: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabels {
    pub check: String,
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: String,
    pub kind: String,
}

/// An agent (vantage point) and what became of its cycles (`accepted`, `duplicate`,
/// `rejected`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentLabels {
    pub agent: String,
    pub location: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentSeenLabels {
    pub agent: String,
    pub location: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

/// Every metric, registered.
pub struct Metrics {
    registry: Registry,
    pub port_state: Family<PortLabels, Gauge>,
    pub port_bad: Family<BadLabels, Gauge>,
    pub host_up: Family<HostLabels, Gauge>,
    pub durations: Family<CheckLabels, Histogram, fn() -> Histogram>,
    pub cycles: Family<CheckLabels, Counter>,
    pub alerts_sent: Family<SinkLabels, Counter>,
    pub alerts_failed: Family<SinkLabels, Counter>,
    pub store_errors: Counter,
    pub agent_cycles: Family<AgentLabels, Counter>,
    pub agent_last_seen: Family<AgentSeenLabels, Gauge>,
    pub agent_unauthorized: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The numeric encoding of a port value.
pub fn state_number(value: &str) -> i64 {
    match value {
        "closed" => 0,
        "open" => 1,
        "ambiguous" => 2,
        _ => -1,
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let port_state = Family::<PortLabels, Gauge>::default();
        let port_bad = Family::<BadLabels, Gauge>::default();
        let host_up = Family::<HostLabels, Gauge>::default();
        let durations: Family<CheckLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        let cycles = Family::<CheckLabels, Counter>::default();
        let alerts_sent = Family::<SinkLabels, Counter>::default();
        let alerts_failed = Family::<SinkLabels, Counter>::default();
        let store_errors = Counter::default();
        let agent_cycles = Family::<AgentLabels, Counter>::default();
        let agent_last_seen = Family::<AgentSeenLabels, Gauge>::default();
        let agent_unauthorized = Counter::default();
        registry.register(
            "nbdgm_agent_cycles",
            "Cycles pushed by agents: accepted, duplicate (a retry), rejected (invalid)",
            agent_cycles.clone(),
        );
        registry.register(
            "nbdgm_agent_last_seen_seconds",
            "Unix time of an agent's last authenticated request",
            agent_last_seen.clone(),
        );
        registry.register(
            "nbdgm_agent_unauthorized",
            "Agent API requests without a valid token",
            agent_unauthorized.clone(),
        );
        registry.register(
            "nbdgm_port_state",
            "Confirmed port state: 0 closed, 1 open, 2 ambiguous (open|filtered, likely-open), -1 unknown",
            port_state.clone(),
        );
        registry.register(
            "nbdgm_port_bad",
            "1 when the confirmed port state differs from the expected one",
            port_bad.clone(),
        );
        registry.register(
            "nbdgm_host_up",
            "1 host up, 0 host down, -1 unknown (no evidence from the host in the latest result)",
            host_up.clone(),
        );
        registry.register(
            "nbdgm_probe_duration_seconds",
            "Duration of a probe cycle of a check",
            durations.clone(),
        );
        registry.register("nbdgm_probe_cycles", "Probe cycles run", cycles.clone());
        registry.register("nbdgm_alerts_sent", "Alerts delivered", alerts_sent.clone());
        registry.register(
            "nbdgm_alerts_failed",
            "Alerts that could not be delivered after every retry",
            alerts_failed.clone(),
        );
        registry.register(
            "nbdgm_store_errors",
            "Store operations that failed",
            store_errors.clone(),
        );
        Metrics {
            registry,
            port_state,
            port_bad,
            host_up,
            durations,
            cycles,
            alerts_sent,
            alerts_failed,
            store_errors,
            agent_cycles,
            agent_last_seen,
            agent_unauthorized,
        }
    }

    /// Set the gauges of one key from its confirmed value, or from `unknown` when the latest
    /// result saw nothing (state -1, host -1; `nbdgm_port_bad` keeps the confirmed value).
    pub fn set_key(&self, check: &str, target: &str, port: &str, value: &str, expected: &str) {
        if port == crate::engine::HOST_KEY {
            self.host_up
                .get_or_create(&HostLabels {
                    check: check.into(),
                    target: target.into(),
                })
                .set(match value {
                    "up" => 1,
                    "down" => 0,
                    _ => -1,
                });
            return;
        }
        if port == crate::engine::SERVICE_KEY {
            return;
        }
        let (num, proto) = port.split_once('/').unwrap_or((port, ""));
        self.port_state
            .get_or_create(&PortLabels {
                check: check.into(),
                target: target.into(),
                port: num.into(),
                proto: proto.into(),
                expected: expected.into(),
            })
            .set(state_number(value));
        if value == "unknown" {
            return;
        }
        self.port_bad
            .get_or_create(&BadLabels {
                check: check.into(),
                target: target.into(),
                port: num.into(),
                proto: proto.into(),
            })
            .set(i64::from(value != expected));
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        if prometheus_client::encoding::text::encode(&mut s, &self.registry).is_err() {
            s.clear();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text() {
        let m = Metrics::new();
        m.set_key("c", "198.51.100.10", "138/udp", "open", "closed");
        m.set_key("c", "198.51.100.10", "host", "up", "");
        m.durations
            .get_or_create(&CheckLabels { check: "c".into() })
            .observe(0.5);
        m.alerts_sent
            .get_or_create(&SinkLabels {
                sink: "hook".into(),
                kind: "PORT_NEW_OPEN".into(),
            })
            .inc();
        let t = m.encode();
        assert!(t.contains(
            "nbdgm_port_state{check=\"c\",target=\"198.51.100.10\",port=\"138\",proto=\"udp\",expected=\"closed\"} 1"
        ), "{t}");
        assert!(t.contains(
            "nbdgm_port_bad{check=\"c\",target=\"198.51.100.10\",port=\"138\",proto=\"udp\"} 1"
        ));
        assert!(t.contains("nbdgm_host_up{check=\"c\",target=\"198.51.100.10\"} 1"));
        m.set_key("c", "198.51.100.10", "host", "unknown", "");
        m.set_key("c", "198.51.100.10", "138/udp", "closed", "closed");
        m.set_key("c", "198.51.100.10", "138/udp", "unknown", "closed");
        let t = m.encode();
        assert!(
            t.contains("nbdgm_host_up{check=\"c\",target=\"198.51.100.10\"} -1"),
            "{t}"
        );
        assert!(t.contains(
            "nbdgm_port_state{check=\"c\",target=\"198.51.100.10\",port=\"138\",proto=\"udp\",expected=\"closed\"} -1"
        ), "{t}");
        assert!(
            t.contains(
                "nbdgm_port_bad{check=\"c\",target=\"198.51.100.10\",port=\"138\",proto=\"udp\"} 0"
            ),
            "unknown keeps the confirmed badness: {t}"
        );
        assert!(t.contains("nbdgm_probe_duration_seconds_count{check=\"c\"} 1"));
        assert!(t.contains("nbdgm_alerts_sent_total{sink=\"hook\",kind=\"PORT_NEW_OPEN\"} 1"));
        assert!(t.ends_with("# EOF\n"));
    }
}
