//! The store side of partitioned instances (issue 16 §4, [`crate::fleet`]): PostgreSQL
//! only. Each check cycle is split into chunks of targets, one `claims` row per (check,
//! cycle, chunk) with its `owner` and `lease_until` (milliseconds of the database clock).
//! An instance claims the first chunk that is not done and whose lease has run out
//! (`FOR UPDATE SKIP LOCKED`, so instances never wait on each other), extends the lease
//! while it probes, and stores the chunk's run and results in one transaction that first
//! checks that it still owns the claim: a chunk's results are stored once per cycle even
//! when a slow instance lost its lease. The confirmation counters of the keys
//! ([`Volatile`]) live in `pending`, so the instance that probes a key next cycle goes on
//! counting.

use super::{parse_ts, t, ts, Dialect, Result, Store, StoreError, Val, MAX_EVIDENCE};
use crate::engine::{self, Engine, Key, KeyState, Volatile};
use crate::evidence::HostObservation;
use chrono::{DateTime, Utc};
use nbdgm_probe::probe::HostResult;
use std::collections::HashMap;

/// The database clock in milliseconds.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
/// Cycles of claims kept per check (older rows are deleted when a cycle opens).
pub const CLAIM_CYCLES_KEPT: i64 = 100;
/// Result rows per INSERT statement.
const ROWS_PER_INSERT: usize = 50;

/// A chunk this instance claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub chunk: i64,
    /// The instance that held it before (empty: nobody; else a take-over).
    pub previous: String,
}

/// One claim as listed by [`Store::claims`]: `(cycle, chunk, owner, done, takeovers)`.
pub type ClaimRow = (i64, i64, String, bool, i64);

/// The confirmed and volatile state of a chunk's keys, as loaded.
#[derive(Debug, Default)]
pub struct ChunkState {
    pub engine: Engine,
    pub loaded: HashMap<Key, Volatile>,
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Store {
    fn require_pg(&self) -> Result<()> {
        match self.db.dialect() {
            Dialect::Postgres => Ok(()),
            Dialect::Sqlite => Err(StoreError(
                "partitioned instances need a PostgreSQL store".into(),
            )),
        }
    }

    /// The database clock (PostgreSQL; SQLite: this machine's), in Unix milliseconds.
    pub fn db_now_ms(&mut self) -> Result<i64> {
        if self.db.dialect() == Dialect::Sqlite {
            return Ok(Utc::now().timestamp_millis());
        }
        let rows = self.db.query(&format!("SELECT {NOW_MS}"), &[])?;
        Ok(rows.first().and_then(|r| r.first()).map_or(0, Val::int))
    }

    /// Register this instance (or refresh its heartbeat) in `instances`.
    pub fn heartbeat(&mut self, started: DateTime<Utc>) -> Result<()> {
        self.require_pg()?;
        self.db.exec(
            &format!(
                "INSERT INTO instances (name, started_at, heartbeat_ms) VALUES ($1, $2, {NOW_MS}) \
                 ON CONFLICT (name) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms"
            ),
            &[t(self.instance.clone()), t(ts(started))],
        )?;
        Ok(())
    }

    /// Create the claims of a cycle (`chunks` rows; existing ones are kept) and delete
    /// the claims of this check older than [`CLAIM_CYCLES_KEPT`] cycles.
    pub fn open_cycle(
        &mut self,
        check: &str,
        cycle: i64,
        chunks: usize,
        targets: usize,
    ) -> Result<()> {
        self.require_pg()?;
        self.db.exec(
            "INSERT INTO claims (check_name, cycle, chunk, owner, lease_until, done, targets, \
             takeovers) SELECT $1::text, $2::bigint, g, '', 0, 0, $3::bigint, 0 \
             FROM generate_series(0::bigint, $4::bigint - 1) g \
             ON CONFLICT DO NOTHING",
            &[
                t(check),
                Val::Int(cycle),
                Val::Int(targets as i64),
                Val::Int(chunks as i64),
            ],
        )?;
        self.db.exec(
            "DELETE FROM claims WHERE check_name = $1 AND cycle < $2",
            &[t(check), Val::Int(cycle - CLAIM_CYCLES_KEPT)],
        )?;
        Ok(())
    }

    /// Claim the first chunk of the cycle that is not done and not leased (a lease that
    /// ran out is taken over), for `lease_ms`. `None`: nothing to claim now.
    pub fn claim_chunk(&mut self, check: &str, cycle: i64, lease_ms: i64) -> Result<Option<Claim>> {
        self.require_pg()?;
        let rows = self.db.query(
            &format!(
                "WITH c AS (SELECT chunk, owner FROM claims WHERE check_name = $1 AND cycle = $2 \
                 AND done = 0 AND lease_until < {NOW_MS} ORDER BY chunk LIMIT 1 \
                 FOR UPDATE SKIP LOCKED) \
                 UPDATE claims k SET owner = $3, lease_until = {NOW_MS} + $4, \
                 claimed_ms = {NOW_MS}, \
                 takeovers = k.takeovers + CASE WHEN c.owner <> '' THEN 1 ELSE 0 END \
                 FROM c WHERE k.check_name = $1 AND k.cycle = $2 AND k.chunk = c.chunk \
                 RETURNING k.chunk, c.owner"
            ),
            &[
                t(check),
                Val::Int(cycle),
                t(self.instance.clone()),
                Val::Int(lease_ms),
            ],
        )?;
        Ok(rows.first().map(|r| Claim {
            chunk: r[0].int(),
            previous: r[1].text(),
        }))
    }

    /// Extend this instance's lease of a chunk; `false` when it is no longer ours.
    pub fn extend_lease(
        &mut self,
        check: &str,
        cycle: i64,
        chunk: i64,
        lease_ms: i64,
    ) -> Result<bool> {
        self.require_pg()?;
        let n = self.db.exec(
            &format!(
                "UPDATE claims SET lease_until = {NOW_MS} + $5 WHERE check_name = $1 \
                 AND cycle = $2 AND chunk = $3 AND owner = $4 AND done = 0"
            ),
            &[
                t(check),
                Val::Int(cycle),
                Val::Int(chunk),
                t(self.instance.clone()),
                Val::Int(lease_ms),
            ],
        )?;
        Ok(n == 1)
    }

    /// Give a chunk back (stopping): another instance may claim it at once.
    pub fn release(&mut self, check: &str, cycle: i64, chunk: i64) -> Result<()> {
        self.require_pg()?;
        self.db.exec(
            "UPDATE claims SET lease_until = 0 WHERE check_name = $1 AND cycle = $2 \
             AND chunk = $3 AND owner = $4 AND done = 0",
            &[
                t(check),
                Val::Int(cycle),
                Val::Int(chunk),
                t(self.instance.clone()),
            ],
        )?;
        Ok(())
    }

    /// Chunks of the cycle not done yet.
    pub fn chunks_open(&mut self, check: &str, cycle: i64) -> Result<i64> {
        let rows = self.db.query(
            "SELECT COUNT(*) FROM claims WHERE check_name = $1 AND cycle = $2 AND done = 0",
            &[t(check), Val::Int(cycle)],
        )?;
        Ok(rows.first().and_then(|r| r.first()).map_or(0, Val::int))
    }

    /// Store a chunk's run and results and mark the claim done, in one transaction, if
    /// this instance still owns the claim and it is not done. `None`: not stored (the
    /// lease was lost and another instance took the chunk).
    #[allow(clippy::too_many_arguments)]
    pub fn commit_chunk(
        &mut self,
        check: &str,
        cycle: i64,
        chunk: i64,
        started: DateTime<Utc>,
        finished: DateTime<Utc>,
        results: &[HostResult],
        hosts: &[HostObservation],
    ) -> Result<Option<i64>> {
        self.require_pg()?;
        let instance = self.instance.clone();
        self.tx(|db| {
            let key = [t(check), Val::Int(cycle), Val::Int(chunk)];
            let rows = db.query(
                "SELECT owner, done FROM claims WHERE check_name = $1 AND cycle = $2 \
                 AND chunk = $3 FOR UPDATE",
                &key,
            )?;
            match rows.first() {
                Some(r) if r[0].text() == instance && r[1].int() == 0 => {}
                _ => return Ok(None),
            }
            let rows = db.query(
                "INSERT INTO runs (check_name, instance, started_at, finished_at, targets, \
                 cycle, chunk) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    t(check),
                    t(instance.clone()),
                    t(ts(started)),
                    t(ts(finished)),
                    Val::Int(results.len() as i64),
                    Val::Int(cycle),
                    Val::Int(chunk),
                ],
            )?;
            let run_id = rows
                .first()
                .and_then(|r| r.first())
                .map(Val::int)
                .ok_or_else(|| StoreError("no run id".into()))?;
            let rows = result_rows(run_id, check, finished, results, hosts);
            for batch in rows.chunks(ROWS_PER_INSERT) {
                let values: Vec<String> = (0..batch.len())
                    .map(|i| format!("({})", placeholders(i * 10 + 1, 10)))
                    .collect();
                let params: Vec<Val> = batch.iter().flatten().cloned().collect();
                db.exec(
                    &format!(
                        "INSERT INTO results (run_id, check_name, target, hostname, port, \
                         state, evidence, rtt_ms, attempts, ts) VALUES {}",
                        values.join(",")
                    ),
                    &params,
                )?;
            }
            db.exec(
                &format!(
                    "UPDATE claims SET done = 1, done_ms = {NOW_MS} WHERE check_name = $1 \
                     AND cycle = $2 AND chunk = $3"
                ),
                &key,
            )?;
            Ok(Some(run_id))
        })
    }

    /// The confirmed values (`current`) and volatile states (`pending`) of every key of
    /// these targets of a check.
    pub fn load_chunk_state(&mut self, check: &str, targets: &[String]) -> Result<ChunkState> {
        let mut out = ChunkState::default();
        if targets.is_empty() {
            return Ok(out);
        }
        let mut params = vec![t(check)];
        params.extend(targets.iter().map(t));
        let list = placeholders(2, targets.len());
        let current = self.db.query(
            &format!(
                "SELECT target, port, value, seq, since FROM current \
                 WHERE check_name = $1 AND target IN ({list})"
            ),
            &params,
        )?;
        for r in current {
            let k = Key {
                check: check.to_owned(),
                target: r[0].text(),
                port: r[1].text(),
            };
            let since = parse_ts(&r[4].text()).unwrap_or_else(Utc::now);
            out.engine
                .keys
                .insert(k, KeyState::confirmed(r[2].text(), r[3].int(), since));
        }
        let pending = self.db.query(
            &format!(
                "SELECT target, port, value, count, last_reminder, suppressed FROM pending \
                 WHERE check_name = $1 AND target IN ({list})"
            ),
            &params,
        )?;
        for r in pending {
            let k = Key {
                check: check.to_owned(),
                target: r[0].text(),
                port: r[1].text(),
            };
            let v = Volatile {
                pending: r[2]
                    .opt_text()
                    .map(|v| (v, u32::try_from(r[3].int()).unwrap_or(0))),
                last_reminder: r[4].int(),
                suppressed: r[5].int() != 0,
            };
            out.engine
                .keys
                .entry(k.clone())
                .or_default()
                .set_volatile(v.clone());
            out.loaded.insert(k, v);
        }
        Ok(out)
    }

    /// Write back the volatile states that changed since [`Store::load_chunk_state`].
    /// Returns the rows written.
    pub fn save_chunk_state(&mut self, state: &ChunkState) -> Result<u64> {
        let changed: Vec<(&Key, Volatile)> = state
            .engine
            .keys
            .iter()
            .map(|(k, st)| (k, st.volatile()))
            .filter(|(k, v)| state.loaded.get(*k).cloned().unwrap_or_default() != *v)
            .collect();
        if changed.is_empty() {
            return Ok(0);
        }
        self.tx(|db| {
            let mut n = 0;
            for (k, v) in changed {
                let key = [t(&k.check), t(&k.target), t(&k.port)];
                if v == Volatile::default() {
                    n += db.exec(
                        "DELETE FROM pending WHERE check_name = $1 AND target = $2 AND port = $3",
                        &key,
                    )?;
                    continue;
                }
                let (value, count) = match v.pending {
                    Some((v, c)) => (Val::Text(v), i64::from(c)),
                    None => (Val::Null, 0),
                };
                n += db.exec(
                    "INSERT INTO pending (check_name, target, port, value, count, \
                     last_reminder, suppressed) VALUES ($1,$2,$3,$4,$5,$6,$7) \
                     ON CONFLICT (check_name, target, port) DO UPDATE SET value = excluded.value, \
                     count = excluded.count, last_reminder = excluded.last_reminder, \
                     suppressed = excluded.suppressed",
                    &[
                        key[0].clone(),
                        key[1].clone(),
                        key[2].clone(),
                        value,
                        Val::Int(count),
                        Val::Int(v.last_reminder),
                        Val::Int(v.suppressed.into()),
                    ],
                )?;
            }
            Ok(n)
        })
    }

    /// Results per (target, cycle) of a check (tests and benchmarks): `(target, cycle,
    /// host rows)`, only pairs with a count other than `expect`.
    pub fn cycle_counts_not(
        &mut self,
        check: &str,
        expect: i64,
    ) -> Result<Vec<(String, i64, i64)>> {
        let rows = self.db.query(
            "SELECT r.target, u.cycle, COUNT(*) FROM results r JOIN runs u ON u.id = r.run_id \
             WHERE r.check_name = $1 AND r.port = $2 AND u.cycle IS NOT NULL \
             GROUP BY r.target, u.cycle HAVING COUNT(*) <> $3 ORDER BY u.cycle, r.target",
            &[t(check), t(engine::HOST_KEY), Val::Int(expect)],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| (r[0].text(), r[1].int(), r[2].int()))
            .collect())
    }

    /// Claims of a check: `(cycle, chunk, owner, done, takeovers)`, oldest cycle first.
    pub fn claims(&mut self, check: &str) -> Result<Vec<ClaimRow>> {
        let rows = self.db.query(
            "SELECT cycle, chunk, owner, done, takeovers FROM claims WHERE check_name = $1 \
             ORDER BY cycle, chunk",
            &[t(check)],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r[0].int(),
                    r[1].int(),
                    r[2].text(),
                    r[3].int() != 0,
                    r[4].int(),
                )
            })
            .collect())
    }
}

fn result_rows(
    run_id: i64,
    check: &str,
    finished: DateTime<Utc>,
    results: &[HostResult],
    hosts: &[HostObservation],
) -> Vec<[Val; 10]> {
    let mut out = Vec::new();
    let at = ts(finished);
    for h in results {
        let target = h.address.to_string();
        let hostname = super::ot(h.hostname.clone());
        if let Some(o) = hosts.iter().find(|o| o.address == h.address) {
            out.push([
                Val::Int(run_id),
                t(check),
                t(target.clone()),
                hostname.clone(),
                t(engine::HOST_KEY),
                t(o.state),
                t(o.evidence.chars().take(MAX_EVIDENCE).collect::<String>()),
                Val::NullReal,
                Val::Int(0),
                t(at.clone()),
            ]);
        }
        for p in &h.ports {
            out.push([
                Val::Int(run_id),
                t(check),
                t(target.clone()),
                hostname.clone(),
                t(crate::config::port_name(p.port)),
                t(p.state.as_str()),
                t(p.evidence.chars().take(MAX_EVIDENCE).collect::<String>()),
                p.rtt_ms.map_or(Val::NullReal, Val::Real),
                Val::Int(p.attempts.into()),
                t(at.clone()),
            ]);
        }
    }
    out
}
