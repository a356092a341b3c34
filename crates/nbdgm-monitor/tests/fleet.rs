//! Issue 16 §4: several monitor instances on one PostgreSQL store split the targets
//! (claims with leases): every target stored exactly once per cycle, a killed instance's
//! chunk taken over within the interval, one change alerted once across the instances;
//! SQLite keeps one instance probing everything; a version 1 store is upgraded.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod monitor_support;

use monitor_support::*;
use nbdgm_monitor::config::MonitorConfig;
use nbdgm_monitor::prober::BoxFuture;
use nbdgm_monitor::store::Store;
use nbdgm_monitor::{Monitor, Prober, ScriptedProber};
use nbdgm_probe::probe::{HostResult, ProbeOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The scripted prober, slowed down so that an instance holds its claim for a while.
struct Slow {
    inner: ScriptedProber,
    delay: Duration,
}

impl Prober for Slow {
    fn probe(&self, t: Ipv4Addr, h: Option<String>, o: &ProbeOptions) -> BoxFuture<HostResult> {
        let f = self.inner.probe(t, h, o);
        let d = self.delay;
        Box::pin(async move {
            tokio::time::sleep(d).await;
            f.await
        })
    }
}

const CHECK: &str = "fleet";
const TARGETS: usize = 30; // 127.0.1.0/27
const INTERVAL_MS: u64 = 4000;

fn config(url: &str, instance: &str, hook: &str) -> MonitorConfig {
    let text = format!(
        r#"
[store]
url = "{url}"
instance = "{instance}"
chunk = 4
[alerts]
attempts = 1
[[check]]
name = "{CHECK}"
targets = ["127.0.1.0/27"]
ports = ["137/udp", "138/udp"]
interval = "{INTERVAL_MS}ms"
confirmations = 2
[[sink]]
name = "hook"
type = "webhook"
url = "{hook}"
format = "json"
"#
    );
    MonitorConfig::parse(&text, None).unwrap_or_else(|e| panic!("{e}"))
}

fn wait_until<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Cycles whose chunks are all done: cycle → owners of its chunks.
fn done_cycles(s: &mut Store) -> BTreeMap<i64, Vec<String>> {
    let mut by: BTreeMap<i64, (bool, Vec<String>)> = BTreeMap::new();
    for (cycle, _, owner, done, _) in s.claims(CHECK).unwrap() {
        let e = by.entry(cycle).or_insert((true, Vec::new()));
        e.0 &= done;
        e.1.push(owner);
    }
    by.into_iter()
        .filter(|(_, (done, _))| *done)
        .map(|(c, (_, o))| (c, o))
        .collect()
}

fn targets_of_cycle(url: &str, cycle: i64) -> BTreeSet<String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query(
        "SELECT r.target FROM results r JOIN runs u ON u.id = r.run_id \
         WHERE u.cycle = $1 AND r.port = 'host'",
        &[&cycle],
    )
    .unwrap()
    .iter()
    .map(|r| r.get::<_, String>(0))
    .collect()
}

#[test]
fn three_instances_split_take_over_and_alert_once() {
    let Some(pg) = PgCluster::start("three_instances_split_take_over_and_alert_once") else {
        return;
    };
    let url = pg.database("fleet");
    let dir = TempDir::new("fleet");
    let states = dir.path().join("states");
    std::fs::write(&states, "").unwrap();
    let hook = HttpSink::start(0);
    let mut instances = Vec::new();
    for name in ["i0", "i1", "i2"] {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let prober = Arc::new(Slow {
            inner: ScriptedProber {
                path: states.clone(),
            },
            delay: Duration::from_millis(300),
        });
        let cfg = config(&url, name, &hook.url("/hook"));
        assert!(cfg.store.partition, "partitioned by default on PostgreSQL");
        let m = rt.block_on(Monitor::start(cfg, prober)).unwrap();
        instances.push((rt, m));
    }
    let mut s = Store::open(&url, "observer").unwrap();
    let interval = Duration::from_millis(INTERVAL_MS);

    // Two complete cycles: every target once per cycle, the chunks spread over all three.
    let done = wait_until(interval * 5, "two complete cycles", || {
        let d = done_cycles(&mut s);
        (d.len() >= 2).then_some(d)
    });
    let owners: BTreeSet<&String> = done.values().flatten().collect();
    assert_eq!(owners.len(), 3, "every instance claimed chunks: {done:?}");
    for c in done.keys() {
        assert_eq!(targets_of_cycle(&url, *c).len(), TARGETS, "cycle {c}");
    }
    assert_eq!(s.cycle_counts_not(CHECK, 1).unwrap(), [], "none twice");
    // `status` (Store::latest) shows every target, not only the last chunk's.
    let latest: BTreeSet<String> = s
        .latest(Some(CHECK))
        .unwrap()
        .into_iter()
        .filter(|r| r.port == "host" && r.state.is_some())
        .map(|r| r.target)
        .collect();
    assert_eq!(latest.len(), TARGETS, "{latest:?}");

    // One change, confirmed over two cycles (counted across instances): one alert.
    std::fs::write(&states, "127.0.1.5 137/udp open\n").unwrap();
    let mut seen = Vec::new();
    let r = hook
        .wait_for(interval * 4, &mut seen, |_| true)
        .expect("PORT_NEW_OPEN");
    assert_eq!(r.json()["kind"], "PORT_NEW_OPEN");
    assert_eq!(r.json()["target"], "127.0.1.5");
    std::thread::sleep(interval * 2);
    assert!(hook.take(Duration::ZERO).is_empty(), "alerted once");
    assert_eq!(s.count("alerts").unwrap(), 1);

    // Kill i0 while it holds an unfinished claim: its runtime is dropped, its lease stays.
    let (cycle, chunk) = wait_until(interval * 3, "i0 holding a claim", || {
        s.claims(CHECK)
            .unwrap()
            .into_iter()
            .find(|(_, _, o, done, _)| o == "i0" && !done)
            .map(|(c, k, ..)| (c, k))
    });
    let (rt, m) = instances.remove(0);
    std::mem::forget(m);
    rt.shutdown_background();
    // The chunk is taken over by another instance in the same cycle (the lease is 1 s of
    // the 4 s interval), and the next cycles are complete without i0.
    let done = wait_until(interval * 4, "the cycles after the kill", || {
        let d = done_cycles(&mut s);
        d.contains_key(&(cycle + 1)).then_some(d)
    });
    assert!(
        done.contains_key(&cycle),
        "the killed instance's cycle completed"
    );
    let claims = s.claims(CHECK).unwrap();
    let (_, _, owner, _, takeovers) = claims
        .iter()
        .find(|(c, k, ..)| *c == cycle && *k == chunk)
        .unwrap();
    assert_ne!(owner, "i0");
    // At least once (a loaded machine may delay a heartbeat past the lease: taken again).
    assert!(
        *takeovers >= 1,
        "chunk {chunk} of cycle {cycle}: {claims:?}"
    );
    assert!(!done[&(cycle + 1)].iter().any(|o| o == "i0"));
    for c in [cycle, cycle + 1] {
        assert_eq!(targets_of_cycle(&url, c).len(), TARGETS, "cycle {c}");
    }
    assert_eq!(s.cycle_counts_not(CHECK, 1).unwrap(), [], "none twice");
    assert!(hook.take(Duration::ZERO).is_empty(), "no alert repeated");
    for (rt, m) in instances {
        // Keep the store (a blocking PostgreSQL client) to drop it outside the runtime.
        let store = m.store();
        rt.block_on(m.stop());
        drop(store);
    }
}

#[test]
fn sqlite_is_one_instance_and_partition_needs_postgres() {
    let text = "[store]\nurl = \"/tmp/x.db\"\npartition = true\n[[check]]\nname = \"a\"\ntargets = [\"198.51.100.10\"]\n";
    let e = MonitorConfig::parse(text, Some(Path::new("m.toml"))).unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (3, "store.partition"), "{e}");
    let c = MonitorConfig::parse(&text.replace("partition = true\n", ""), None).unwrap();
    assert!(!c.store.partition);
    let c = MonitorConfig::parse(
        &text
            .replace("/tmp/x.db", "postgres://u@127.0.0.1/m")
            .replace("partition = true\n", "chunk = 0\n"),
        Some(Path::new("m.toml")),
    )
    .unwrap_err();
    assert_eq!(c.key, "store.chunk");
}

#[test]
fn version_1_store_is_upgraded() {
    let dir = TempDir::new("upgrade");
    let path = dir.path().join("m.db");
    drop(Store::open(path.to_str().unwrap(), "t").unwrap());
    {
        // Make it a version 1 store.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "DROP TABLE claims; DROP TABLE pending; DROP TABLE instances; DROP INDEX runs_cycle;
             ALTER TABLE runs DROP COLUMN cycle; ALTER TABLE runs DROP COLUMN chunk;
             DELETE FROM schema_version; INSERT INTO schema_version VALUES (1);",
        )
        .unwrap();
    }
    let mut s = Store::open(path.to_str().unwrap(), "t").unwrap();
    assert_eq!(s.count("claims").unwrap(), 0);
    assert_eq!(s.count("pending").unwrap(), 0);
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = c
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 2);
    c.prepare("SELECT cycle, chunk FROM runs").unwrap();
}
