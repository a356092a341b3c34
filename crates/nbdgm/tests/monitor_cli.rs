//! `nbdgm monitor` end to end through the binary: the SQLite store survives `kill -9`
//! mid-write and the monitor continues after a restart; SIGTERM stops it cleanly;
//! `status`, `history` and `diff` (exit codes 0/1/2) read the store; configuration errors
//! name the line. Probing is scripted (hidden `--fake-states`), so nothing leaves the host.

#![cfg(feature = "monitor")]
// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_monitor::chrono::{Duration as CDuration, Utc};
use nbdgm_monitor::store::{Query, Store, MAX_ROWS};
use nbdgm_probe::probe::{HostResult, Port, PortResult, PortState};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nbdgm"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run nbdgm")
}

/// A scratch directory (`tempfile`), removed on drop.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        Scratch(nbdgm_lab::daemon::scratch_dir(&format!("moncli-{tag}")).expect("scratch dir"))
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

/// A monitor process, killed by PID on drop.
struct MonitorProc(Child);

impl Drop for MonitorProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_monitor(dir: &Path, n: usize) -> MonitorProc {
    let err = std::fs::File::create(dir.join(format!("run{n}.log"))).unwrap();
    let child = bin()
        .args(["monitor", "run", "--config"])
        .arg(dir.join("m.toml"))
        .arg("--fake-states")
        .arg(dir.join("states"))
        .env("NBDGM_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start nbdgm monitor run");
    MonitorProc(child)
}

const PORTS: usize = 4;
const TARGETS: usize = 62; // 198.51.100.0/26 without network and broadcast

fn write_config(dir: &Path) {
    std::fs::write(
        dir.join("m.toml"),
        format!(
            r#"[store]
url = "{db}"
instance = "killtest"
[[check]]
name = "fast"
targets = ["198.51.100.0/26"]
ports = ["137/udp", "138/udp", "139/tcp", "445/tcp"]
interval = "100ms"
confirmations = 1
[[sink]]
name = "true"
type = "exec"
program = "/bin/true"
args = ["{{kind}}", "{{target}}"]
"#,
            db = dir.join("m.db").display()
        ),
    )
    .unwrap();
}

fn open(dir: &Path) -> Store {
    Store::open(dir.join("m.db").to_str().unwrap(), "reader").unwrap()
}

/// Every committed row is readable and whole: integrity ok, each run has all its results,
/// change sequences are gap-free and match `current`.
fn check_store(dir: &Path) -> i64 {
    let mut s = open(dir);
    assert_eq!(s.integrity_check().unwrap(), "ok");
    let runs = s.count("runs").unwrap();
    let rows = s
        .history(&Query {
            limit: MAX_ROWS,
            ..Query::default()
        })
        .unwrap();
    assert!(rows.len() < MAX_ROWS, "test store too large to check");
    let mut per_run: HashMap<i64, usize> = HashMap::new();
    for r in &rows {
        *per_run.entry(r.run_id).or_default() += 1;
    }
    assert_eq!(per_run.len() as i64, runs, "every run has results");
    for (run, n) in per_run {
        // One result per port and one `host` row per target (issue 15).
        assert_eq!(n, TARGETS * (PORTS + 1), "run {run} is complete");
    }
    let changes = s
        .changes(&Query {
            limit: MAX_ROWS,
            ..Query::default()
        })
        .unwrap();
    let mut seqs: HashMap<(String, String), Vec<i64>> = HashMap::new();
    for c in &changes {
        seqs.entry((c.target.clone(), c.port.clone()))
            .or_default()
            .push(c.seq);
    }
    for cur in s.current(None).unwrap() {
        let mut v = seqs
            .remove(&(cur.target.clone(), cur.port.clone()))
            .unwrap();
        v.sort();
        let want: Vec<i64> = (1..=cur.seq).collect();
        assert_eq!(v, want, "{cur:?}");
    }
    assert!(seqs.is_empty());
    runs
}

fn wait_runs(dir: &Path, more_than: i64, within: Duration) -> i64 {
    let end = Instant::now() + within;
    loop {
        if dir.join("m.db").exists() {
            if let Ok(mut s) = Store::open(dir.join("m.db").to_str().unwrap(), "reader") {
                let n = s.count("runs").unwrap_or(0);
                if n > more_than {
                    return n;
                }
            }
        }
        assert!(Instant::now() < end, "no new runs after {more_than}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sqlite_store_survives_kill_9_and_monitor_continues() {
    let dir = Scratch::new("kill9");
    write_config(dir.path());
    // Flip a port every 130 ms so that changes and alerts are written too.
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, states) = (stop.clone(), dir.path().join("states"));
        std::thread::spawn(move || {
            let mut open = false;
            while !stop.load(Ordering::Relaxed) {
                let text = if open { "138/udp open\n" } else { "" };
                let _ = std::fs::write(&states, text);
                open = !open;
                std::thread::sleep(Duration::from_millis(130));
            }
        })
    };
    let mut committed = 0;
    for round in 0..3 {
        let mut m = start_monitor(dir.path(), round);
        committed = wait_runs(dir.path(), committed + 5, Duration::from_secs(60));
        // Kill in the middle of writing: a few ms after a fresh commit.
        std::thread::sleep(Duration::from_millis(37 * (round as u64 + 1)));
        m.0.kill().unwrap(); // SIGKILL, by PID
        let status = m.0.wait().unwrap();
        assert!(!status.success());
        let after = check_store(dir.path());
        assert!(
            after >= committed,
            "lost committed runs: {after} < {committed}"
        );
        committed = after;
    }
    // Restart: it continues (new runs) and SIGTERM stops it cleanly.
    let mut m = start_monitor(dir.path(), 9);
    wait_runs(dir.path(), committed + 3, Duration::from_secs(60));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(m.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = m.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "no clean stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(dir.path().join("run9.log")).unwrap_or_default();
    assert!(status.success(), "exit {status:?}: {log}");
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    check_store(dir.path());
    let mut s = open(dir.path());
    assert!(s.count("alerts").unwrap() > 0);
    assert!(s.count("deliveries").unwrap() > 0);
}

fn host(states: &[(Port, PortState)]) -> HostResult {
    HostResult {
        address: "198.51.100.10".parse().unwrap(),
        hostname: None,
        ports: states
            .iter()
            .map(|&(port, state)| PortResult {
                port,
                state,
                evidence: "e".into(),
                rtt_ms: None,
                attempts: 1,
            })
            .collect(),
        info: None,
        duration_ms: 1.0,
    }
}

#[test]
fn status_history_diff() {
    let dir = Scratch::new("views");
    let db = dir.path().join("v.db");
    let dbs = db.to_str().unwrap();
    let t0 = Utc::now() - CDuration::hours(2);
    let t1 = Utc::now() - CDuration::hours(1);
    let (r1, r2) = {
        let mut s = Store::open(dbs, "t").unwrap();
        let r1 = s
            .record_cycle("c", t0, t0, &[host(&[(Port::Ns137Udp, PortState::Closed)])])
            .unwrap();
        let r2 = s
            .record_cycle("c", t1, t1, &[host(&[(Port::Ns137Udp, PortState::Open)])])
            .unwrap();
        let key = nbdgm_monitor::engine::Key {
            check: "c".into(),
            target: "198.51.100.10".into(),
            port: "137/udp".into(),
        };
        s.commit_change(&nbdgm_monitor::store::NewChange {
            key: &key,
            old: None,
            new: "open",
            kind: Some(nbdgm_monitor::engine::AlertKind::PortNewOpen),
            expected: "closed",
            bad: true,
            in_maintenance: false,
            at: t1,
        })
        .unwrap();
        (r1, r2)
    };
    let o = run(&["monitor", "status", "--store", dbs, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["port"], "137/udp");
    assert_eq!(v[0]["state"], "open");
    assert_eq!(v[0]["value"], "open");
    assert_eq!(v[0]["bad"], true);
    assert_eq!(v[0]["verdict"], "violation");
    let o = run(&["monitor", "status", "--store", dbs]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("137/udp") && l.contains(" open ") && l.contains("violation")),
        "{text}"
    );

    let o = run(&[
        "monitor", "history", "--store", dbs, "--limit", "1", "--format", "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["state"], "open");
    let o = run(&["monitor", "history", "--store", dbs, "--changes"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("PORT_NEW_OPEN"));
    let o = run(&[
        "monitor", "history", "--store", dbs, "--since", "90m", "--format", "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);

    let (r1, r2) = (r1.to_string(), r2.to_string());
    let o = run(&[
        "monitor", "diff", "--store", dbs, "--from", &r1, "--to", &r2,
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "c 198.51.100.10 137/udp: closed -> open"
    );
    let o = run(&[
        "monitor", "diff", "--store", dbs, "--from", &r2, "--to", &r2,
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = run(&[
        "monitor", "diff", "--store", dbs, "--from", "30m", "--format", "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = run(&["monitor", "diff", "--store", dbs, "--from", "3h"]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&["monitor", "diff", "--store", dbs, "--from", "999999"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["monitor", "diff", "--store", dbs, "--from", "someday"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["monitor", "status", "--store", "/nonexistent/x.db"]);
    assert_eq!(o.status.code(), Some(2));

    // A key with results but nothing confirmed still has a row: its own state, verdict
    // unknown, and the evidence escaped in text, exact in JSON.
    let mut h = host(&[(Port::Dgm138Udp, PortState::OpenFiltered)]);
    h.ports[0].evidence = "no answer\x1b[31m".into();
    let now = Utc::now();
    Store::open(dbs, "t")
        .unwrap()
        .record_cycle("d", now, now, &[h])
        .unwrap();
    let o = run(&[
        "monitor", "status", "--store", dbs, "--check", "d", "--format", "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["port"], "138/udp");
    assert_eq!(v[0]["state"], "open|filtered");
    assert_eq!(v[0]["verdict"], "unknown");
    assert_eq!(v[0]["value"], serde_json::Value::Null);
    assert_eq!(v[0]["evidence"], "no answer\x1b[31m");
    let o = run(&["monitor", "status", "--store", dbs, "--check", "d"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("open|filtered") && text.contains("unknown"),
        "{text}"
    );
    assert!(
        text.contains("no answer\\x1b[31m") && !text.contains('\x1b'),
        "{text}"
    );
}

#[test]
fn config_errors_and_check_config() {
    let dir = Scratch::new("cfg");
    let f = dir.path().join("bad.toml");
    std::fs::write(
        &f,
        "[[check]]\nname = \"a\"\ntargets = [\"198.51.100.1\"]\nconfirmations = 0\n",
    )
    .unwrap();
    let o = run(&["monitor", "run", "--config", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.toml:4: check[0].confirmations"), "{err}");
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/monitor.toml");
    let o = run(&[
        "monitor",
        "run",
        "--check-config",
        "--config",
        dist.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("ok:"));
}

/// `run --check-config` in a namespace where the target is on a directly connected subnet:
/// a check whose probe waits less than the neighbour resolution time is named in a warning
/// (issue 15); an off-link target or a long enough wait is not.
#[test]
fn check_config_warns_about_short_timeouts_on_link() {
    const T: &str = "check_config_warns_about_short_timeouts_on_link";
    if !nbdgm_lab::require_or_skip(T) {
        return;
    }
    let lab = nbdgm_lab::Lab::new(nbdgm_lab::LabSpec::one_subnet()).unwrap();
    let m = lab.add_host("m", "198.51.100.20/24").unwrap();
    let dir = Scratch::new("warn");
    let f = dir.path().join("m.toml");
    let check = |name: &str, target: &str, timeout: &str, retries: u32| {
        format!(
            "[[check]]\nname = \"{name}\"\ntargets = [\"{target}\"]\ntimeout = \"{timeout}\"\n\
             retries = {retries}\n"
        )
    };
    std::fs::write(
        &f,
        format!(
            "[store]\nurl = \"{}\"\n{}{}{}",
            dir.path().join("m.db").display(),
            check("short", "198.51.100.99", "1s", 0),
            check("long", "198.51.100.98", "1s", 2),
            check("offlink", "192.0.2.1", "1s", 0),
        ),
    )
    .unwrap();
    let o = m
        .cmd(env!("CARGO_BIN_EXE_nbdgm"))
        .args(["monitor", "run", "--check-config", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    let warnings: Vec<&str> = out.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{out}");
    assert!(
        warnings[0].contains("check \"short\": timeout 1s with 0 retries waits 1s per port")
            && warnings[0].contains("neighbour resolution time 3s"),
        "{out}"
    );
}
