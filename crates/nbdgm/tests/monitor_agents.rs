//! Vantage points end to end with the real binary and real probes: a central
//! `nbdgm monitor run` (agent API over TLS, self-signed CA) and two `nbdgm monitor agent`s,
//! "inside" in the target's subnet and "outside" behind the router, against a target whose
//! nftables drop 137-139 and 445 from the outside subnet only. The store shows 139/tcp open
//! from inside and not from outside; cycles probed while the central is stopped arrive
//! after its restart, once; a wrong token gets 401 and stores nothing; a plaintext URL is
//! refused without --allow-plaintext.

#![cfg(feature = "monitor")]
// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_lab::{Host, Lab, LabSpec, Proc, Signal};
use nbdgm_monitor::agent::client::{self, Client, ClientError};
use nbdgm_monitor::agent::proto::{Batch, Cycle};
use nbdgm_monitor::chrono::{Duration as CDuration, Utc};
use nbdgm_monitor::store::{parse_ts, Query, Store};
use nbdgm_probe::probe::{HostResult, Port, PortResult, PortState};
use std::collections::HashSet;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_nbdgm");
const CENTRAL: &str = "198.51.100.2";
const TARGET: &str = "198.51.100.10";

fn central_config(dir: &Path) -> PathBuf {
    for (name, token) in [
        ("inside", "inside-token-0123456789abcdef"),
        ("outside", "outside-token-0123456789abcdef"),
    ] {
        std::fs::write(dir.join(format!("{name}.token")), format!("{token}\n")).unwrap();
    }
    let d = dir.display();
    let text = format!(
        r#"
[store]
url = "{d}/central.db"
instance = "central"
retention_days = 0
[agents]
listen = "{CENTRAL}:8443"
tls_cert = "{d}/cert.pem"
tls_key = "{d}/key.pem"
[[agent]]
name = "inside"
location = "inside"
token_file = "{d}/inside.token"
[[agent]]
name = "outside"
location = "outside"
token_file = "{d}/outside.token"
[[check]]
name = "smb"
targets = ["{TARGET}"]
ports = ["139/tcp", "445/tcp"]
interval = "2s"
timeout = "1s"
retries = 0
confirmations = 1
agents = ["inside", "outside"]
"#
    );
    let p = dir.join("central.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn start_central(host: &Host, cfg: &Path) -> Proc {
    let mut cmd = host.cmd(BIN);
    cmd.args(["monitor", "run", "--config"]).arg(cfg);
    host.spawn(cmd).unwrap()
}

fn start_agent(host: &Host, dir: &Path, name: &str) -> Proc {
    let mut cmd = host.cmd(BIN);
    cmd.args(["monitor", "agent", "--central"])
        .arg(format!("https://{CENTRAL}:8443"))
        .arg("--token-file")
        .arg(dir.join(format!("{name}.token")))
        .args(["--location", name, "--ca-file"])
        .arg(dir.join("ca.pem"))
        .arg("--state-dir")
        .arg(dir.join(format!("state-{name}")))
        .args(["--buffer-cycles", "100", "--refresh-secs", "2"]);
    host.spawn(cmd).unwrap()
}

/// Poll `f` every 200 ms for at most `limit`.
fn wait_for(limit: Duration, f: impl FnMut() -> bool) -> bool {
    nbdgm_lab::wait_until(limit, Duration::from_millis(200), f)
}

/// `nbdgm monitor status --format json` of the central's store.
fn status(cfg: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(BIN)
        .args(["monitor", "status", "--format", "json", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

fn state_of(rows: &[serde_json::Value], check: &str, port: &str) -> Option<String> {
    rows.iter()
        .find(|r| r["check"] == check && r["port"] == port && r["target"] == TARGET)
        .and_then(|r| r["state"].as_str().map(str::to_owned))
}

/// Finish times of the stored 139/tcp results of `check`.
fn result_times(db: &Path, check: &str) -> Vec<String> {
    let Ok(mut s) = Store::open(db.to_str().unwrap(), "test") else {
        return Vec::new();
    };
    s.history(&Query {
        check: Some(check.into()),
        port: Some("139/tcp".into()),
        limit: 100_000,
        ..Query::default()
    })
    .unwrap_or_default()
    .into_iter()
    .map(|r| r.ts)
    .collect()
}

/// An accepting 139/tcp listener inside the target's namespace (closed on drop).
struct Listener139(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Listener139 {
    fn start(target: &Host) -> Listener139 {
        let l = target
            .in_netns(|| TcpListener::bind(format!("{TARGET}:139")))
            .unwrap()
            .unwrap();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let t = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
                        let _ = c.read(&mut [0u8; 64]);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Listener139(stop, Some(t))
    }
}

impl Drop for Listener139 {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

fn firewall_outside(target: &Host, dir: &Path) {
    let rules = "table inet nbdgmagents {\n  chain input {\n    \
        type filter hook input priority 0; policy accept;\n    \
        ip saddr 203.0.113.0/24 tcp dport { 137-139, 445 } drop\n    \
        ip saddr 203.0.113.0/24 udp dport { 137-138 } drop\n  }\n}\n";
    let p = dir.join("target.nft");
    std::fs::write(&p, rules).unwrap();
    let out = target
        .output("nft", [std::ffi::OsStr::new("-f"), p.as_os_str()])
        .unwrap();
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn logs(procs: &[&Proc]) -> String {
    procs
        .iter()
        .map(|p| {
            format!(
                "--- {}:\n{}",
                p.label(),
                p.read_stderr().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn plaintext_central_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("t");
    std::fs::write(&token, "a-token-of-enough-length\n").unwrap();
    let out = Command::new(BIN)
        .args(["monitor", "agent", "--central", "http://198.51.100.2:8443"])
        .arg("--token-file")
        .arg(&token)
        .args(["--location", "x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("plaintext"), "{err}");
}

#[test]
fn vantage_points_see_what_the_firewall_lets_through() {
    let t = "vantage_points_see_what_the_firewall_lets_through";
    if !nbdgm_lab::require_tools_or_skip(t, &["nft"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let ca = nbdgm_lab::test_certs(dir, CENTRAL).unwrap().ca;
    let cfg = central_config(dir);
    let db = dir.join("central.db");
    let lab = Lab::new(LabSpec::two_subnets()).expect("lab");
    let central = lab.add_host("central", &format!("{CENTRAL}/24")).unwrap();
    let target = lab.add_host("target", &format!("{TARGET}/24")).unwrap();
    let inside = lab.add_host("inside", "198.51.100.3/24").unwrap();
    let outside = lab.add_host("outside", "203.0.113.3/24").unwrap();
    let _listener = Listener139::start(&target);
    firewall_outside(&target, dir);
    let addr: SocketAddr = format!("{TARGET}:139").parse().unwrap();
    let reach = inside
        .in_netns(|| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok())
        .unwrap();
    assert!(reach, "the target's 139/tcp is not reachable from inside");

    let mut c = start_central(&central, &cfg);
    let a_in = start_agent(&inside, dir, "inside");
    let a_out = start_agent(&outside, dir, "outside");
    let seen = wait_for(Duration::from_secs(45), || {
        let rows = status(&cfg);
        state_of(&rows, "smb@inside", "139/tcp").is_some()
            && state_of(&rows, "smb@outside", "139/tcp").is_some()
    });
    assert!(seen, "no agent results: {}", logs(&[&c, &a_in, &a_out]));
    let rows = status(&cfg);
    let st = |check: &str, port: &str| state_of(&rows, check, port).unwrap_or_default();
    assert_eq!(st("smb@inside", "139/tcp"), "open", "{rows:?}");
    assert_eq!(st("smb@inside", "445/tcp"), "closed", "{rows:?}");
    for port in ["139/tcp", "445/tcp"] {
        let s = st("smb@outside", port);
        assert!(
            s == "filtered" || s == "unknown",
            "outside {port}: {s} ({rows:?})"
        );
    }
    // The central probes too (it is in the target's subnet): its own view, unsuffixed.
    assert!(wait_for(Duration::from_secs(20), || state_of(
        &status(&cfg),
        "smb",
        "139/tcp"
    )
    .is_some_and(|s| s == "open")));

    // A wrong token: 401 for both endpoints, and its cycle is not stored.
    let url = format!("https://{CENTRAL}:8443");
    let stale = Utc::now() - CDuration::days(2);
    let wrong = outside
        .in_netns(|| {
            let cl = Client::new(&url, "wrong-token-0123456789abcdef", Some(&ca), false).unwrap();
            let checks = cl.checks();
            let push = cl.push(&Batch {
                location: "outside".into(),
                cycles: vec![Cycle {
                    id: client::cycle_id(),
                    check: "smb".into(),
                    started: stale,
                    finished: stale,
                    results: vec![HostResult {
                        address: TARGET.parse().unwrap(),
                        hostname: None,
                        ports: vec![PortResult {
                            port: Port::Ssn139Tcp,
                            state: PortState::Open,
                            evidence: "forged".into(),
                            rtt_ms: None,
                            attempts: 1,
                        }],
                        info: None,
                        duration_ms: 1.0,
                    }],
                }],
            });
            (checks.err(), push.err())
        })
        .unwrap();
    assert!(
        matches!(wrong.0, Some(ClientError::Unauthorized(401))),
        "{wrong:?}"
    );
    assert!(
        matches!(wrong.1, Some(ClientError::Unauthorized(401))),
        "{wrong:?}"
    );

    // The central goes away for a while; the agents keep probing and buffer.
    c.signal(Signal::SIGTERM).unwrap();
    let stopped = c.wait_timeout(Duration::from_secs(20)).unwrap();
    assert!(stopped.is_some(), "central did not stop");
    let down = Utc::now();
    std::thread::sleep(Duration::from_secs(7));
    let up = Utc::now();
    c = start_central(&central, &cfg);
    let in_outage = |check: &str| {
        result_times(&db, check)
            .iter()
            .filter_map(|t| parse_ts(t))
            .filter(|t| *t > down && *t < up)
            .count()
    };
    let delivered = wait_for(Duration::from_secs(60), || {
        in_outage("smb@inside") >= 2 && in_outage("smb@outside") >= 2
    });
    assert!(
        delivered,
        "buffered cycles not delivered: inside {}, outside {}\n{}",
        in_outage("smb@inside"),
        in_outage("smb@outside"),
        logs(&[&c, &a_in, &a_out])
    );
    for check in ["smb@inside", "smb@outside"] {
        let all = result_times(&db, check);
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(
            unique.len(),
            all.len(),
            "{check}: a cycle stored twice: {all:?}"
        );
        assert!(
            all.iter()
                .filter_map(|t| parse_ts(t))
                .all(|t| t > Utc::now() - CDuration::days(1)),
            "{check}: the wrong token's cycle was stored"
        );
    }
    for p in [&a_in, &a_out, &c] {
        p.signal(Signal::SIGTERM).unwrap();
    }
    for p in [&a_in, &a_out, &c] {
        let s = p.wait_timeout(Duration::from_secs(60)).unwrap();
        assert!(
            s.is_some_and(|s| s.success()),
            "{} did not stop cleanly",
            p.label()
        );
    }
}
