//! What was last seen of every key (issue 15 §1, "never claim what was not seen"):
//! [`Store::latest`] joins the latest raw result of each (check, target, port) — the
//! probe's own state and evidence, and for `host` the host row written by
//! [`Store::record_run`] — with the confirmed value in `current`, and gives each key a
//! [`Verdict`] that is separate from the state.
//!
//! Verdict rules (`docs/monitor.md`): `unknown` when the key has no confirmed value, or
//! when its latest result is not an observation (`unknown`, `error`, and `host-down` for
//! a port); otherwise `violation` when the confirmed value is bad (not the expected state;
//! `host` down), else `ok`. A key with only a confirmed value (`service`) takes the verdict
//! of that value.

use super::{ot, t, ts, Result, StoreError, Val, MAX_EVIDENCE, MAX_ROWS};
use chrono::{DateTime, Utc};
use nbdgm_probe::probe::HostResult;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The policy verdict of a key, apart from its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The confirmed value is the expected one and the latest result observed the key.
    Ok,
    /// The confirmed value is bad.
    Violation,
    /// Nothing confirmed yet, or the latest result saw nothing.
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Violation => "violation",
            Verdict::Unknown => "unknown",
        }
    }

    /// The verdict of a key (`port` is the key's port name, `state` its latest raw state,
    /// `bad` whether its confirmed value is bad; `None` when nothing is confirmed).
    pub fn of(port: &str, state: Option<&str>, bad: Option<bool>) -> Verdict {
        let is_port = port != crate::engine::HOST_KEY && port != crate::engine::SERVICE_KEY;
        let unseen = match state {
            Some("unknown" | "error") => true,
            Some("host-down") => is_port,
            _ => false,
        };
        match bad {
            _ if unseen => Verdict::Unknown,
            None => Verdict::Unknown,
            Some(true) => Verdict::Violation,
            Some(false) => Verdict::Ok,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One key as last seen: the latest raw result and the confirmed value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatestRow {
    pub check: String,
    pub target: String,
    pub hostname: Option<String>,
    /// `137/udp` ... `445/tcp`, `host`, `service`.
    pub port: String,
    /// The latest raw state: the probe's own (`open`, `closed`, `filtered`,
    /// `open|filtered`, `likely-open`, `host-down`, `error`, `unknown`), or for `host`
    /// `up`/`down`/`unknown`. `None`: the key has no stored result (`service`).
    pub state: Option<String>,
    /// Why: the answer, the ICMP error, the silence (exact; escape it for a terminal).
    pub evidence: Option<String>,
    pub rtt_ms: Option<f64>,
    /// When the latest result was stored, and its run.
    pub ts: Option<String>,
    pub run_id: Option<i64>,
    /// The confirmed value (`open`, `closed`, `ambiguous`; `up`/`down`; the names), its
    /// change sequence number and since when; `None` while nothing is confirmed.
    pub value: Option<String>,
    pub seq: Option<i64>,
    pub since: Option<String>,
    /// `open` or `closed` for a confirmed port; empty for `host` and `service`.
    pub expected: Option<String>,
    pub bad: Option<bool>,
    pub verdict: Verdict,
}

/// The host row of one target in a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostObservation {
    pub address: Ipv4Addr,
    /// `up`, `down` or `unknown`.
    pub state: &'static str,
    pub evidence: String,
}

fn port_order(p: &str) -> (usize, &str) {
    let known = nbdgm_probe::probe::Port::ALL
        .iter()
        .position(|&x| crate::config::port_name(x) == p);
    let rank = match (p, known) {
        (crate::engine::HOST_KEY, _) => 0,
        (_, Some(i)) => 1 + i,
        (crate::engine::SERVICE_KEY, None) => 8,
        _ => 7,
    };
    (rank, p)
}

fn target_order(t: &str) -> (Option<Ipv4Addr>, &str) {
    (t.parse().ok(), t)
}

impl super::Store {
    /// Store one probe cycle in one transaction: a run, one result per target and port,
    /// and one `host` result per entry of `hosts`. Returns the run id.
    pub fn record_run(
        &mut self,
        check: &str,
        started: DateTime<Utc>,
        finished: DateTime<Utc>,
        results: &[HostResult],
        hosts: &[HostObservation],
    ) -> Result<i64> {
        let instance = self.instance.clone();
        self.tx(|db| {
            let rows = db.query(
                "INSERT INTO runs (check_name, instance, started_at, finished_at, targets) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    t(check),
                    t(instance),
                    t(ts(started)),
                    t(ts(finished)),
                    Val::Int(results.len() as i64),
                ],
            )?;
            let run_id = rows
                .first()
                .and_then(|r| r.first())
                .map(Val::int)
                .ok_or_else(|| StoreError("no run id".into()))?;
            let insert = "INSERT INTO results (run_id, check_name, target, hostname, port, \
                          state, evidence, rtt_ms, attempts, ts) \
                          VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)";
            for h in results {
                if let Some(o) = hosts.iter().find(|o| o.address == h.address) {
                    let evidence: String = o.evidence.chars().take(MAX_EVIDENCE).collect();
                    db.exec(
                        insert,
                        &[
                            Val::Int(run_id),
                            t(check),
                            t(h.address.to_string()),
                            ot(h.hostname.clone()),
                            t(crate::engine::HOST_KEY),
                            t(o.state),
                            t(evidence),
                            Val::NullReal,
                            Val::Int(0),
                            t(ts(finished)),
                        ],
                    )?;
                }
                for p in &h.ports {
                    let evidence: String = p.evidence.chars().take(MAX_EVIDENCE).collect();
                    db.exec(
                        insert,
                        &[
                            Val::Int(run_id),
                            t(check),
                            t(h.address.to_string()),
                            ot(h.hostname.clone()),
                            t(crate::config::port_name(p.port)),
                            t(p.state.as_str()),
                            t(evidence),
                            p.rtt_ms.map_or(Val::NullReal, Val::Real),
                            Val::Int(p.attempts.into()),
                            t(ts(finished)),
                        ],
                    )?;
                }
            }
            Ok(run_id)
        })
    }

    /// Every key of every check (or one) as last seen: the keys of each check's latest run
    /// and every key with a confirmed value, each with its latest result (state and
    /// evidence), its confirmed value, and its [`Verdict`]. Keys that only have a
    /// confirmed value (`service`, or a `host` confirmed before host rows were stored)
    /// come with `state` = `None`. Sorted by check, target address, then `host`, the
    /// ports in report order, `service`. At most [`MAX_ROWS`] rows.
    pub fn latest(&mut self, check: Option<&str>) -> Result<Vec<LatestRow>> {
        let filter = t(check.unwrap_or(""));
        // The latest run of each check (indexed by run id), and each confirmed key's
        // latest result (indexed by key), as `current()` does.
        // Partitioned instances ([`super::fleet`]) store a run per chunk: then the runs of
        // the check's last two cycles (the latest may be in progress), the newest result
        // of each key winning (ordered by id).
        let results = self.db.query(
            "SELECT r.check_name, r.target, r.port, r.hostname, r.state, r.evidence, \
             r.rtt_ms, r.ts, r.run_id FROM results r JOIN runs u ON u.id = r.run_id JOIN \
             (SELECT check_name AS c, MAX(id) AS id, MAX(cycle) AS cy FROM runs \
              WHERE ($1 = '' OR check_name = $1) GROUP BY check_name) m \
             ON u.check_name = m.c AND (u.id = m.id OR u.cycle >= m.cy - 1) ORDER BY r.id",
            std::slice::from_ref(&filter),
        )?;
        let current = self.db.query(
            "SELECT c.check_name, c.target, c.port, r.hostname, r.state, r.evidence, \
             r.rtt_ms, r.ts, r.run_id, c.value, c.seq, c.since, c.expected, c.bad \
             FROM current c LEFT JOIN results r ON r.id = \
             (SELECT MAX(id) FROM results x WHERE x.check_name = c.check_name \
              AND x.target = c.target AND x.port = c.port) \
             WHERE ($1 = '' OR c.check_name = $1)",
            std::slice::from_ref(&filter),
        )?;
        let from_result = |r: &[Val]| LatestRow {
            check: r[0].text(),
            target: r[1].text(),
            port: r[2].text(),
            hostname: r[3].opt_text(),
            state: r[4].opt_text(),
            evidence: r[5].opt_text(),
            rtt_ms: r[6].real(),
            ts: r[7].opt_text(),
            run_id: r[8].opt_text().map(|_| r[8].int()),
            value: None,
            seq: None,
            since: None,
            expected: None,
            bad: None,
            verdict: Verdict::Unknown,
        };
        let mut rows: BTreeMap<(String, String, String), LatestRow> = BTreeMap::new();
        let mut hostnames: BTreeMap<(String, String), String> = BTreeMap::new();
        for r in results.iter().chain(current.iter()) {
            if let Some(h) = r[3].opt_text() {
                hostnames.insert((r[0].text(), r[1].text()), h);
            }
        }
        for r in &results {
            rows.insert((r[0].text(), r[1].text(), r[2].text()), from_result(r));
        }
        for c in &current {
            let key = (c[0].text(), c[1].text(), c[2].text());
            if rows.len() >= MAX_ROWS && !rows.contains_key(&key) {
                break;
            }
            let row = rows.entry(key).or_insert_with(|| from_result(c));
            if row.hostname.is_none() {
                row.hostname = hostnames
                    .get(&(row.check.clone(), row.target.clone()))
                    .cloned();
            }
            row.value = Some(c[9].text());
            row.seq = Some(c[10].int());
            row.since = Some(c[11].text());
            row.expected = Some(c[12].text());
            row.bad = Some(c[13].int() != 0);
        }
        let mut out: Vec<LatestRow> = rows
            .into_values()
            .map(|mut r| {
                r.verdict = Verdict::of(&r.port, r.state.as_deref(), r.bad);
                r
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.check, target_order(&a.target), port_order(&a.port)).cmp(&(
                &b.check,
                target_order(&b.target),
                port_order(&b.port),
            ))
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_rules() {
        assert_eq!(Verdict::of("139/tcp", Some("open"), None), Verdict::Unknown);
        assert_eq!(
            Verdict::of("139/tcp", Some("open"), Some(true)),
            Verdict::Violation
        );
        assert_eq!(
            Verdict::of("139/tcp", Some("filtered"), Some(false)),
            Verdict::Ok
        );
        assert_eq!(
            Verdict::of("139/tcp", Some("unknown"), Some(false)),
            Verdict::Unknown
        );
        assert_eq!(
            Verdict::of("139/tcp", Some("host-down"), Some(false)),
            Verdict::Unknown
        );
        assert_eq!(
            Verdict::of("139/tcp", Some("error"), Some(true)),
            Verdict::Unknown
        );
        assert_eq!(
            Verdict::of("host", Some("down"), Some(true)),
            Verdict::Violation
        );
        assert_eq!(
            Verdict::of("host", Some("unknown"), Some(false)),
            Verdict::Unknown
        );
        assert_eq!(Verdict::of("service", None, Some(false)), Verdict::Ok);
        assert_eq!(Verdict::of("service", None, None), Verdict::Unknown);
    }

    #[test]
    fn order() {
        let mut v = ["10.0.0.10", "10.0.0.9", "name"];
        v.sort_by(|a, b| target_order(a).cmp(&target_order(b)));
        assert_eq!(v, ["name", "10.0.0.9", "10.0.0.10"]);
        let mut p = [
            "service", "445/tcp", "138/tcp", "host", "138/udp", "137/udp",
        ];
        p.sort_by(|a, b| port_order(a).cmp(&port_order(b)));
        assert_eq!(
            p,
            ["host", "137/udp", "138/udp", "138/tcp", "445/tcp", "service"]
        );
    }
}
