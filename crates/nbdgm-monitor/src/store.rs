//! The monitor's store: every result, every confirmed state change, every alert and every
//! delivery attempt, in SQLite (default; WAL, `synchronous=FULL`, one transaction per
//! probe cycle, so a committed cycle survives `kill -9`) or PostgreSQL (a `postgres://`
//! URL; several monitor instances may share it).
//!
//! No double alerts between instances: a change is committed by compare-and-set on the
//! `current` row (`SELECT ... FOR UPDATE` in one transaction; the instance that finds the
//! value already there commits nothing), and an alert is claimed by inserting a row whose
//! key `(check, target, port, seq, reminder)` is unique (`ON CONFLICT DO NOTHING
//! RETURNING id`): only the instance that gets the id delivers it.
//!
//! The SQL is shared between both databases (`$n` parameters, `BIGINT`, `TEXT`
//! timestamps in fixed-width UTC RFC 3339, so text order is time order). The schema
//! version is in `schema_version`.
//!
//! All calls are blocking: call them from `spawn_blocking` in async code.

use crate::engine::{AlertKind, Key};
use chrono::{DateTime, SecondsFormat, Utc};
use nbdgm_probe::probe::HostResult;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

pub mod overview;
pub use overview::{KeyHistory, Segment};

mod agent_runs;
pub mod fleet;
mod latest;
pub use latest::*;

/// Version of the schema this code writes.
/// 2: `runs.cycle`/`runs.chunk`, `instances`, `claims`, `pending` (partitioned instances,
/// [`fleet`]); a version 1 store is upgraded in place.
pub const SCHEMA_VERSION: i64 = 2;
/// Most rows a query returns.
pub const MAX_ROWS: usize = 100_000;
/// Longest evidence string stored.
const MAX_EVIDENCE: usize = 512;

/// A store error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(format!("sqlite: {e}"))
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        StoreError(format!("postgres: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A timestamp as stored.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A stored timestamp.
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

// ---------------------------------------------------------------------------
// Database abstraction
// ---------------------------------------------------------------------------

/// A parameter or column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    NullReal,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Val {
    fn int(&self) -> i64 {
        match self {
            Val::Int(i) => *i,
            Val::Real(f) => *f as i64,
            Val::Text(s) => s.parse().unwrap_or(0),
            _ => 0,
        }
    }
    fn real(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Real(f) => Some(*f),
            _ => None,
        }
    }
    fn text(&self) -> String {
        match self {
            Val::Text(s) => s.clone(),
            Val::Int(i) => i.to_string(),
            Val::Real(f) => f.to_string(),
            _ => String::new(),
        }
    }
    fn opt_text(&self) -> Option<String> {
        match self {
            Val::Null | Val::NullReal => None,
            v => Some(v.text()),
        }
    }
}

fn t(s: impl Into<String>) -> Val {
    Val::Text(s.into())
}

fn ot(s: Option<impl Into<String>>) -> Val {
    s.map_or(Val::Null, |s| Val::Text(s.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

trait Db: Send {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64>;
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>>;
    fn batch(&mut self, sql: &str) -> Result<()>;
    fn dialect(&self) -> Dialect;
}

struct Sqlite(rusqlite::Connection);

fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value};
        Ok(match self {
            Val::Null | Val::NullReal => ToSqlOutput::Owned(Value::Null),
            Val::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            Val::Real(f) => ToSqlOutput::Owned(Value::Real(*f)),
            Val::Text(s) => ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(s.as_bytes())),
        })
    }
}

impl Db for Sqlite {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64> {
        let mut st = self.0.prepare_cached(&sqlite_sql(sql))?;
        Ok(st.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>> {
        use rusqlite::types::ValueRef;
        let mut st = self.0.prepare_cached(&sqlite_sql(sql))?;
        let n = st.column_count();
        let mut rows = st.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut r = Vec::with_capacity(n);
            for i in 0..n {
                r.push(match row.get_ref(i)? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(v) => Val::Int(v),
                    ValueRef::Real(v) => Val::Real(v),
                    ValueRef::Text(b) | ValueRef::Blob(b) => {
                        Val::Text(String::from_utf8_lossy(b).into_owned())
                    }
                });
            }
            out.push(r);
            if out.len() >= MAX_ROWS {
                break;
            }
        }
        Ok(out)
    }
    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.0.execute_batch(sql)?)
    }
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
}

struct Pg(postgres::Client);

fn pg_params(params: &[Val]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|v| -> Box<dyn postgres::types::ToSql + Sync> {
            match v {
                Val::Null => Box::new(None::<String>),
                Val::NullReal => Box::new(None::<f64>),
                Val::Int(i) => Box::new(*i),
                Val::Real(f) => Box::new(*f),
                Val::Text(s) => Box::new(s.clone()),
            }
        })
        .collect()
}

impl Db for Pg {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64> {
        let p = pg_params(params);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = p.iter().map(|b| &**b).collect();
        Ok(self.0.execute(sql, &refs)?)
    }
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>> {
        use postgres::types::Type;
        let p = pg_params(params);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = p.iter().map(|b| &**b).collect();
        let rows = self.0.query(sql, &refs)?;
        let mut out = Vec::with_capacity(rows.len().min(MAX_ROWS));
        for row in rows.iter().take(MAX_ROWS) {
            let mut r = Vec::with_capacity(row.len());
            for (i, col) in row.columns().iter().enumerate() {
                let ty = col.type_();
                let v = if *ty == Type::INT8 {
                    row.try_get::<_, Option<i64>>(i)?.map(Val::Int)
                } else if *ty == Type::INT4 {
                    row.try_get::<_, Option<i32>>(i)?
                        .map(|v| Val::Int(v.into()))
                } else if *ty == Type::FLOAT8 {
                    row.try_get::<_, Option<f64>>(i)?.map(Val::Real)
                } else if *ty == Type::TEXT || *ty == Type::VARCHAR {
                    row.try_get::<_, Option<String>>(i)?.map(Val::Text)
                } else {
                    None
                };
                r.push(v.unwrap_or(Val::Null));
            }
            out.push(r);
        }
        Ok(out)
    }
    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.0.batch_execute(sql)?)
    }
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
}

// ---------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------

/// The confirmed state of one key, with its latest raw result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurrentRow {
    pub check: String,
    pub target: String,
    pub port: String,
    /// `open`, `closed`, `ambiguous`; `up`/`down` for `host`; the names for `service`.
    pub value: String,
    pub seq: i64,
    pub since: String,
    /// `open` or `closed` for ports; empty for `host` and `service`.
    pub expected: String,
    pub bad: bool,
    /// The latest raw probe state and when it was seen.
    pub last_state: Option<String>,
    pub last_seen: Option<String>,
}

/// One stored probe result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultRow {
    pub id: i64,
    pub run_id: i64,
    pub check: String,
    pub target: String,
    pub hostname: Option<String>,
    pub port: String,
    pub state: String,
    pub evidence: String,
    pub rtt_ms: Option<f64>,
    pub attempts: i64,
    pub ts: String,
}

/// One confirmed state change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeRow {
    pub id: i64,
    pub check: String,
    pub target: String,
    pub port: String,
    pub seq: i64,
    pub old: Option<String>,
    pub new: String,
    /// The alert kind the change raised (none for a good baseline or a recovery of a host).
    pub kind: Option<String>,
    pub bad: bool,
    pub in_maintenance: bool,
    pub instance: String,
    pub ts: String,
}

/// One alert and how its deliveries went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub check: String,
    pub target: String,
    pub port: String,
    pub seq: i64,
    pub reminder: i64,
    pub kind: String,
    pub instance: String,
    pub ts: String,
    /// JSON of the event.
    pub payload: String,
}

/// One delivery attempt series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRow {
    pub alert_id: i64,
    pub sink: String,
    pub ok: bool,
    pub attempts: i64,
    pub error: Option<String>,
    pub ts: String,
}

/// Filter of `history` and `changes`.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub check: Option<String>,
    pub target: Option<String>,
    pub port: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: usize,
}

/// The outcome of [`Store::commit_change`].
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// This call recorded the change (false: the store already had that value).
    pub applied: bool,
    pub seq: i64,
    pub since: DateTime<Utc>,
}

/// A change to commit.
#[derive(Debug, Clone)]
pub struct NewChange<'a> {
    pub key: &'a Key,
    pub old: Option<&'a str>,
    pub new: &'a str,
    pub kind: Option<AlertKind>,
    pub expected: &'a str,
    pub bad: bool,
    pub in_maintenance: bool,
    pub at: DateTime<Utc>,
}

/// The store.
pub struct Store {
    db: Box<dyn Db>,
    /// This instance's name, written with changes, alerts and runs.
    pub instance: String,
    description: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.description)
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id {ID}, check_name TEXT NOT NULL, instance TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT NOT NULL, targets BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_ts ON runs (finished_at);
CREATE TABLE IF NOT EXISTS results (
    id {ID}, run_id BIGINT NOT NULL, check_name TEXT NOT NULL, target TEXT NOT NULL,
    hostname TEXT, port TEXT NOT NULL, state TEXT NOT NULL, evidence TEXT NOT NULL,
    rtt_ms {REAL}, attempts BIGINT NOT NULL, ts TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS results_key ON results (check_name, target, port, id);
CREATE INDEX IF NOT EXISTS results_ts ON results (ts);
CREATE INDEX IF NOT EXISTS results_run ON results (run_id);
CREATE TABLE IF NOT EXISTS current (
    check_name TEXT NOT NULL, target TEXT NOT NULL, port TEXT NOT NULL,
    value TEXT NOT NULL, seq BIGINT NOT NULL, since TEXT NOT NULL,
    expected TEXT NOT NULL, bad BIGINT NOT NULL,
    PRIMARY KEY (check_name, target, port));
CREATE TABLE IF NOT EXISTS changes (
    id {ID}, check_name TEXT NOT NULL, target TEXT NOT NULL, port TEXT NOT NULL,
    seq BIGINT NOT NULL, old_value TEXT, new_value TEXT NOT NULL, kind TEXT,
    bad BIGINT NOT NULL, in_maintenance BIGINT NOT NULL, instance TEXT NOT NULL,
    ts TEXT NOT NULL, UNIQUE (check_name, target, port, seq));
CREATE INDEX IF NOT EXISTS changes_ts ON changes (ts);
CREATE TABLE IF NOT EXISTS alerts (
    id {ID}, check_name TEXT NOT NULL, target TEXT NOT NULL, port TEXT NOT NULL,
    seq BIGINT NOT NULL, reminder BIGINT NOT NULL, kind TEXT NOT NULL,
    payload TEXT NOT NULL, instance TEXT NOT NULL, ts TEXT NOT NULL,
    UNIQUE (check_name, target, port, seq, reminder));
CREATE TABLE IF NOT EXISTS deliveries (
    id {ID}, alert_id BIGINT NOT NULL, sink TEXT NOT NULL, ok BIGINT NOT NULL,
    attempts BIGINT NOT NULL, error TEXT, ts TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS deliveries_alert ON deliveries (alert_id);
";

/// Version 1 to 2: the tables of partitioned instances ([`fleet`]).
const SCHEMA_V2: &str = "
ALTER TABLE runs ADD COLUMN cycle BIGINT;
ALTER TABLE runs ADD COLUMN chunk BIGINT;
CREATE INDEX IF NOT EXISTS runs_cycle ON runs (check_name, cycle);
CREATE TABLE IF NOT EXISTS instances (
    name TEXT PRIMARY KEY, started_at TEXT NOT NULL, heartbeat_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS claims (
    check_name TEXT NOT NULL, cycle BIGINT NOT NULL, chunk BIGINT NOT NULL,
    owner TEXT NOT NULL, lease_until BIGINT NOT NULL, done BIGINT NOT NULL,
    targets BIGINT NOT NULL, takeovers BIGINT NOT NULL, claimed_ms BIGINT, done_ms BIGINT,
    PRIMARY KEY (check_name, cycle, chunk));
CREATE TABLE IF NOT EXISTS pending (
    check_name TEXT NOT NULL, target TEXT NOT NULL, port TEXT NOT NULL,
    value TEXT, count BIGINT NOT NULL, last_reminder BIGINT NOT NULL,
    suppressed BIGINT NOT NULL, PRIMARY KEY (check_name, target, port));
";

/// A store URL as it may be shown or logged: a PostgreSQL password becomes `…`
/// (`postgres://user:…@host/db`); escaped.
pub fn redact_url(url: &str) -> String {
    use nbdgm_wire::text::escape;
    let Some((scheme, rest)) = url
        .split_once("://")
        .filter(|(s, _)| *s == "postgres" || *s == "postgresql")
    else {
        return escape(url).into_owned();
    };
    match rest.rsplit_once('@') {
        Some((auth, host)) if auth.contains(':') => {
            let user = auth.split(':').next().unwrap_or("");
            escape(&format!("{scheme}://{user}:…@{host}")).into_owned()
        }
        _ => escape(url).into_owned(),
    }
}

impl Store {
    /// Open a store by URL: `postgres://...` / `postgresql://...`, else a SQLite file path
    /// (optionally written `sqlite:PATH` or `sqlite://PATH`).
    pub fn open(url: &str, instance: &str) -> Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Store::open_postgres(url, instance)
        } else {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            Store::open_sqlite(Path::new(path), instance)
        }
    }

    /// Open (or create) a SQLite file. A directory it creates is 0700; the database is
    /// created 0600 (SQLite gives `-wal` and `-shm` the database's mode) and an existing
    /// database, `-wal` or `-shm` readable by others is made 0600.
    pub fn open_sqlite(path: &Path, instance: &str) -> Result<Store> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() && !parent.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(|e| StoreError(format!("create {}: {e}", parent.display())))?;
            }
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError(format!("open {}: {e}", path.display())))?;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            if let Ok(m) = std::fs::metadata(&p) {
                if m.permissions().mode() & 0o077 != 0 {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).map_err(
                        |e| StoreError(format!("chmod {}: {e}", Path::new(&p).display())),
                    )?;
                }
            }
        }
        let conn = rusqlite::Connection::open(path)
            .map_err(|e| StoreError(format!("open {}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError(format!(
                "{}: cannot switch to WAL mode (got {mode})",
                path.display()
            )));
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;")?;
        let mut s = Store {
            db: Box::new(Sqlite(conn)),
            instance: instance.to_owned(),
            description: format!("sqlite {}", path.display()),
        };
        s.migrate()?;
        Ok(s)
    }

    /// Connect to PostgreSQL (no TLS: use a Unix socket or a local/tunnelled address).
    pub fn open_postgres(url: &str, instance: &str) -> Result<Store> {
        let mut cfg: postgres::Config = url
            .parse()
            .map_err(|e| StoreError(format!("postgres URL: {e}")))?;
        cfg.connect_timeout(std::time::Duration::from_secs(10));
        cfg.application_name("nbdgm-monitor");
        let client = cfg.connect(postgres::NoTls)?;
        let mut s = Store {
            db: Box::new(Pg(client)),
            instance: instance.to_owned(),
            description: "postgres".to_owned(),
        };
        s.migrate()?;
        Ok(s)
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self.db.dialect() {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    fn migrate(&mut self) -> Result<()> {
        let pg = self.db.dialect() == Dialect::Postgres;
        if pg {
            // Serialise schema creation between instances starting together.
            self.db.batch("SELECT pg_advisory_lock(138138)")?;
        }
        let r = self.migrate_locked(pg);
        if pg {
            let _ = self.db.batch("SELECT pg_advisory_unlock(138138)");
        }
        r
    }

    fn migrate_locked(&mut self, pg: bool) -> Result<()> {
        self.db
            .batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
        let rows = self
            .db
            .query("SELECT MAX(version) FROM schema_version", &[])?;
        let version = rows.first().and_then(|r| r.first()).map(Val::int);
        match version {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError(format!(
                    "the store has schema version {v}, newer than this program's {SCHEMA_VERSION}"
                )))
            }
            Some(v) if v == SCHEMA_VERSION => return Ok(()),
            _ => {}
        }
        let (id, real) = if pg {
            ("BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION")
        } else {
            ("INTEGER PRIMARY KEY AUTOINCREMENT", "REAL")
        };
        let schema = SCHEMA.replace("{ID}", id).replace("{REAL}", real);
        self.tx(|db| {
            if version.unwrap_or(0) < 1 {
                db.batch(&schema)?;
            }
            db.batch(SCHEMA_V2)?;
            db.exec(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[Val::Int(SCHEMA_VERSION)],
            )?;
            Ok(())
        })
    }

    /// Run `f` in a transaction (SQLite: `BEGIN IMMEDIATE`, so the write lock is taken
    /// before reading); rolled back on error.
    fn tx<T>(&mut self, f: impl FnOnce(&mut dyn Db) -> Result<T>) -> Result<T> {
        let begin = match self.db.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        self.db.batch(begin)?;
        match f(&mut *self.db) {
            Ok(v) => {
                self.db.batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.db.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Store one probe cycle (a run and its results) in one transaction; returns the run id.
    /// The monitor stores `host` rows too: [`Store::record_run`].
    pub fn record_cycle(
        &mut self,
        check: &str,
        started: DateTime<Utc>,
        finished: DateTime<Utc>,
        results: &[HostResult],
    ) -> Result<i64> {
        self.record_run(check, started, finished, results, &[])
    }

    /// Commit a confirmed change by compare-and-set on the `current` row.
    pub fn commit_change(&mut self, c: &NewChange<'_>) -> Result<Committed> {
        let instance = self.instance.clone();
        let for_update = match self.db.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        };
        let key = [t(&c.key.check), t(&c.key.target), t(&c.key.port)];
        for _ in 0..3 {
            let r = self.tx(|db| {
                let rows = db.query(
                    &format!(
                        "SELECT value, seq, since FROM current \
                         WHERE check_name = $1 AND target = $2 AND port = $3{for_update}"
                    ),
                    &key,
                )?;
                let existing = rows.first().map(|r| (r[0].text(), r[1].int(), r[2].text()));
                let seq = match &existing {
                    Some((v, seq, since)) if v == c.new => {
                        return Ok(Some(Committed {
                            applied: false,
                            seq: *seq,
                            since: parse_ts(since).unwrap_or(c.at),
                        }))
                    }
                    Some((_, seq, _)) => seq + 1,
                    None => 1,
                };
                let vals = [
                    t(&c.key.check),
                    t(&c.key.target),
                    t(&c.key.port),
                    t(c.new),
                    Val::Int(seq),
                    t(ts(c.at)),
                    t(c.expected),
                    Val::Int(c.bad.into()),
                ];
                if existing.is_none() {
                    let n = db.exec(
                        "INSERT INTO current (check_name, target, port, value, seq, since, \
                         expected, bad) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT DO NOTHING",
                        &vals,
                    )?;
                    if n == 0 {
                        // Another instance inserted it first: read again.
                        return Ok(None);
                    }
                } else {
                    db.exec(
                        "UPDATE current SET value = $4, seq = $5, since = $6, expected = $7, \
                         bad = $8 WHERE check_name = $1 AND target = $2 AND port = $3",
                        &vals,
                    )?;
                }
                db.exec(
                    "INSERT INTO changes (check_name, target, port, seq, old_value, new_value, \
                     kind, bad, in_maintenance, instance, ts) \
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) ON CONFLICT DO NOTHING",
                    &[
                        t(&c.key.check),
                        t(&c.key.target),
                        t(&c.key.port),
                        Val::Int(seq),
                        ot(existing.map(|e| e.0)),
                        t(c.new),
                        ot(c.kind.map(AlertKind::as_str)),
                        Val::Int(c.bad.into()),
                        Val::Int(c.in_maintenance.into()),
                        t(instance.clone()),
                        t(ts(c.at)),
                    ],
                )?;
                Ok(Some(Committed {
                    applied: true,
                    seq,
                    since: c.at,
                }))
            })?;
            if let Some(r) = r {
                return Ok(r);
            }
        }
        Err(StoreError(
            "commit_change: lost the race three times".into(),
        ))
    }

    /// Claim an alert: `Some(id)` if this call created it (and must deliver it), `None` if
    /// it exists already (another instance, or before a restart).
    pub fn claim_alert(
        &mut self,
        key: &Key,
        seq: i64,
        reminder: i64,
        kind: AlertKind,
        payload: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        let rows = self.db.query(
            "INSERT INTO alerts (check_name, target, port, seq, reminder, kind, payload, \
             instance, ts) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING RETURNING id",
            &[
                t(&key.check),
                t(&key.target),
                t(&key.port),
                Val::Int(seq),
                Val::Int(reminder),
                t(kind.as_str()),
                t(payload),
                t(self.instance.clone()),
                t(ts(at)),
            ],
        )?;
        Ok(rows.first().and_then(|r| r.first()).map(Val::int))
    }

    /// Record how delivering an alert to a sink went.
    pub fn record_delivery(
        &mut self,
        alert_id: i64,
        sink: &str,
        ok: bool,
        attempts: u32,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.db.exec(
            "INSERT INTO deliveries (alert_id, sink, ok, attempts, error, ts) \
             VALUES ($1,$2,$3,$4,$5,$6)",
            &[
                Val::Int(alert_id),
                t(sink),
                Val::Int(ok.into()),
                Val::Int(attempts.into()),
                ot(error.map(|e| e.chars().take(1000).collect::<String>())),
                t(ts(at)),
            ],
        )?;
        Ok(())
    }

    /// Current confirmed states (all checks, or one), with each key's latest raw result.
    pub fn current(&mut self, check: Option<&str>) -> Result<Vec<CurrentRow>> {
        let rows = self.db.query(
            "SELECT c.check_name, c.target, c.port, c.value, c.seq, c.since, c.expected, c.bad, \
             r.state, r.ts FROM current c LEFT JOIN results r ON r.id = \
             (SELECT MAX(id) FROM results x WHERE x.check_name = c.check_name \
              AND x.target = c.target AND x.port = c.port) \
             WHERE ($1 = '' OR c.check_name = $1) ORDER BY c.check_name, c.target, c.port",
            &[t(check.unwrap_or(""))],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| CurrentRow {
                check: r[0].text(),
                target: r[1].text(),
                port: r[2].text(),
                value: r[3].text(),
                seq: r[4].int(),
                since: r[5].text(),
                expected: r[6].text(),
                bad: r[7].int() != 0,
                last_state: r[8].opt_text(),
                last_seen: r[9].opt_text(),
            })
            .collect())
    }

    fn where_clause(q: &Query, time_col: &str) -> (String, Vec<Val>) {
        let mut conds = Vec::new();
        let mut vals = Vec::new();
        let mut add = |cond: &str, v: Val| {
            vals.push(v);
            conds.push(cond.replace('?', &format!("${}", vals.len())));
        };
        if let Some(c) = &q.check {
            add("check_name = ?", t(c));
        }
        if let Some(x) = &q.target {
            add("target = ?", t(x));
        }
        if let Some(p) = &q.port {
            add("port = ?", t(p));
        }
        if let Some(s) = q.since {
            add(&format!("{time_col} >= ?"), t(ts(s)));
        }
        if let Some(u) = q.until {
            add(&format!("{time_col} <= ?"), t(ts(u)));
        }
        let limit = if q.limit == 0 {
            100
        } else {
            q.limit.min(MAX_ROWS)
        };
        vals.push(Val::Int(limit as i64));
        let w = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        (format!("{w} ORDER BY id DESC LIMIT ${}", vals.len()), vals)
    }

    /// Stored results, newest first.
    pub fn history(&mut self, q: &Query) -> Result<Vec<ResultRow>> {
        let (w, vals) = Self::where_clause(q, "ts");
        let rows = self.db.query(
            &format!(
                "SELECT id, run_id, check_name, target, hostname, port, state, evidence, rtt_ms, \
                 attempts, ts FROM results{w}"
            ),
            &vals,
        )?;
        Ok(rows
            .into_iter()
            .map(|r| ResultRow {
                id: r[0].int(),
                run_id: r[1].int(),
                check: r[2].text(),
                target: r[3].text(),
                hostname: r[4].opt_text(),
                port: r[5].text(),
                state: r[6].text(),
                evidence: r[7].text(),
                rtt_ms: r[8].real(),
                attempts: r[9].int(),
                ts: r[10].text(),
            })
            .collect())
    }

    /// Confirmed changes, newest first.
    pub fn changes(&mut self, q: &Query) -> Result<Vec<ChangeRow>> {
        let (w, vals) = Self::where_clause(q, "ts");
        let rows = self.db.query(
            &format!(
                "SELECT id, check_name, target, port, seq, old_value, new_value, kind, bad, \
                 in_maintenance, instance, ts FROM changes{w}"
            ),
            &vals,
        )?;
        Ok(rows
            .into_iter()
            .map(|r| ChangeRow {
                id: r[0].int(),
                check: r[1].text(),
                target: r[2].text(),
                port: r[3].text(),
                seq: r[4].int(),
                old: r[5].opt_text(),
                new: r[6].text(),
                kind: r[7].opt_text(),
                bad: r[8].int() != 0,
                in_maintenance: r[9].int() != 0,
                instance: r[10].text(),
                ts: r[11].text(),
            })
            .collect())
    }

    /// Alerts, newest first.
    pub fn alerts(&mut self, q: &Query) -> Result<Vec<AlertRow>> {
        let (w, vals) = Self::where_clause(q, "ts");
        let rows = self.db.query(
            &format!(
                "SELECT id, check_name, target, port, seq, reminder, kind, instance, ts, payload \
                 FROM alerts{w}"
            ),
            &vals,
        )?;
        Ok(rows
            .into_iter()
            .map(|r| AlertRow {
                id: r[0].int(),
                check: r[1].text(),
                target: r[2].text(),
                port: r[3].text(),
                seq: r[4].int(),
                reminder: r[5].int(),
                kind: r[6].text(),
                instance: r[7].text(),
                ts: r[8].text(),
                payload: r[9].text(),
            })
            .collect())
    }

    /// Delivery records of an alert.
    pub fn deliveries(&mut self, alert_id: i64) -> Result<Vec<DeliveryRow>> {
        let rows = self.db.query(
            "SELECT alert_id, sink, ok, attempts, error, ts FROM deliveries WHERE alert_id = $1 \
             ORDER BY id",
            &[Val::Int(alert_id)],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| DeliveryRow {
                alert_id: r[0].int(),
                sink: r[1].text(),
                ok: r[2].int() != 0,
                attempts: r[3].int(),
                error: r[4].opt_text(),
                ts: r[5].text(),
            })
            .collect())
    }

    /// The latest raw state of every (check, target, port) at or before `at`.
    pub fn states_at(&mut self, at: DateTime<Utc>) -> Result<BTreeMap<Key, String>> {
        let rows = self.db.query(
            "SELECT r.check_name, r.target, r.port, r.state FROM results r JOIN \
             (SELECT MAX(id) AS id FROM results WHERE ts <= $1 \
              GROUP BY check_name, target, port) m ON r.id = m.id",
            &[t(ts(at))],
        )?;
        Ok(key_map(rows))
    }

    /// The raw states of one run.
    pub fn states_of_run(&mut self, run_id: i64) -> Result<BTreeMap<Key, String>> {
        let rows = self.db.query(
            "SELECT check_name, target, port, state FROM results WHERE run_id = $1",
            &[Val::Int(run_id)],
        )?;
        if rows.is_empty() {
            let exists = self
                .db
                .query("SELECT id FROM runs WHERE id = $1", &[Val::Int(run_id)])?;
            if exists.is_empty() {
                return Err(StoreError(format!("no run {run_id}")));
            }
        }
        Ok(key_map(rows))
    }

    /// The id of the latest run (0 if none).
    pub fn last_run(&mut self) -> Result<i64> {
        let rows = self.db.query("SELECT MAX(id) FROM runs", &[])?;
        Ok(rows.first().and_then(|r| r.first()).map_or(0, Val::int))
    }

    /// Number of rows in a table (tests and `status`).
    pub fn count(&mut self, table: &str) -> Result<i64> {
        if ![
            "runs",
            "results",
            "current",
            "changes",
            "alerts",
            "deliveries",
            "claims",
            "pending",
            "instances",
        ]
        .contains(&table)
        {
            return Err(StoreError(format!("no table {table}")));
        }
        let rows = self
            .db
            .query(&format!("SELECT COUNT(*) FROM {table}"), &[])?;
        Ok(rows.first().and_then(|r| r.first()).map_or(0, Val::int))
    }

    /// Delete results, runs, changes, alerts and deliveries older than `before` (the
    /// `current` table is kept). Returns the rows deleted.
    pub fn prune(&mut self, before: DateTime<Utc>) -> Result<u64> {
        let b = [t(ts(before))];
        self.tx(|db| {
            let mut n = 0;
            n += db.exec("DELETE FROM results WHERE ts < $1", &b)?;
            n += db.exec("DELETE FROM runs WHERE finished_at < $1", &b)?;
            n += db.exec("DELETE FROM changes WHERE ts < $1", &b)?;
            n += db.exec("DELETE FROM deliveries WHERE ts < $1", &b)?;
            n += db.exec("DELETE FROM alerts WHERE ts < $1", &b)?;
            Ok(n)
        })
    }

    /// SQLite `PRAGMA integrity_check` (`ok` when sound); PostgreSQL: `ok`.
    pub fn integrity_check(&mut self) -> Result<String> {
        if self.db.dialect() == Dialect::Postgres {
            return Ok("ok".into());
        }
        let rows = self.db.query("PRAGMA integrity_check", &[])?;
        Ok(rows
            .iter()
            .map(|r| r.first().map(Val::text).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("; "))
    }
}

fn key_map(rows: Vec<Vec<Val>>) -> BTreeMap<Key, String> {
    rows.into_iter()
        .map(|r| {
            (
                Key {
                    check: r[0].text(),
                    target: r[1].text(),
                    port: r[2].text(),
                },
                r[3].text(),
            )
        })
        .collect()
}

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffEntry {
    pub check: String,
    pub target: String,
    pub port: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The keys whose state differs between two snapshots.
pub fn diff(a: &BTreeMap<Key, String>, b: &BTreeMap<Key, String>) -> Vec<DiffEntry> {
    let mut keys: Vec<&Key> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| DiffEntry {
            check: k.check.clone(),
            target: k.target.clone(),
            port: k.port.clone(),
            from: a.get(k).cloned(),
            to: b.get(k).cloned(),
        })
        .collect()
}
