//! `nbdgm audit --watch` end to end: the binary runs in a lab namespace (`ip netns exec`)
//! with an nftables drop rule; a listener appears and the rule is deleted: one NDJSON
//! alert each on stdout, the same alerts at a webhook receiver (bound on the namespace's
//! loopback) through `[[sink]]` and `[audit.alerts]`, no repeats, SIGTERM ends it with
//! exit 0. The drift scenarios themselves (nmbd, shadowing, new interface, iptables) are
//! in crates/nbdgm-audit/tests/watch_ns.rs.

#![cfg(feature = "audit")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_lab::{Host, Lab, LabSpec, Proc, Signal};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nbdgm");

/// An HTTP receiver on `l` answering 200 to each request and sending each body on the
/// channel (at most `max` requests).
fn receiver(l: TcpListener, max: usize) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for c in l.incoming().take(max) {
            let Ok(mut c) = c else { return };
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len.min(1 << 20)];
            if r.read_exact(&mut body).is_err() {
                continue;
            }
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if tx
                .send(String::from_utf8_lossy(&body).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

fn run(host: &Host, prog: &str, args: &[&str]) -> String {
    let out = host.output(prog, args).unwrap();
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The NDJSON records printed so far.
fn records(p: &Proc) -> Vec<Value> {
    p.read_stdout()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn alerts(p: &Proc) -> Vec<Value> {
    records(p)
        .into_iter()
        .filter(|r| r["type"] == "alert")
        .collect()
}

fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

#[test]
fn watch_ndjson_webhook_and_sigterm() {
    let t = "watch_ndjson_webhook_and_sigterm";
    if !nbdgm_lab::require_tools_or_skip(t, &["nft"]) {
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).unwrap();
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    run(&a, "nft", &["add", "table", "inet", "nbt"]);
    run(
        &a,
        "nft",
        &[
            "add",
            "chain",
            "inet",
            "nbt",
            "input",
            "{ type filter hook input priority 0; policy accept; }",
        ],
    );
    run(
        &a,
        "nft",
        &[
            "add",
            "rule",
            "inet",
            "nbt",
            "input",
            "udp",
            "dport",
            "{ 137, 138 }",
            "drop",
        ],
    );
    let hook = a
        .in_netns(|| TcpListener::bind("127.0.0.1:0"))
        .unwrap()
        .unwrap();
    let url = format!("http://{}/hook", hook.local_addr().unwrap());
    let bodies = receiver(hook, 20);
    let dir = lab.dir().join("audit-watch");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("audit.toml");
    std::fs::write(
        &cfg,
        format!(
            "[audit.alerts]\nmin_severity = \"medium\"\n\n\
             [[sink]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{url}\"\n"
        ),
    )
    .unwrap();
    let mut cmd = a.cmd(BIN);
    cmd.args([
        "audit",
        "--watch",
        "--format",
        "ndjson",
        "--interval",
        "1s",
        "--duration",
        "120s",
        "--config",
    ]);
    cmd.arg(&cfg);
    let p = a.spawn(cmd).unwrap();
    assert!(
        wait(Duration::from_secs(30), || records(&p)
            .iter()
            .filter(|r| r["type"] == "state")
            .count()
            == 5),
        "no baseline: {:?} {:?}",
        p.read_stdout(),
        p.read_stderr()
    );
    let start = &records(&p)[0];
    assert_eq!(start["type"], "watch", "{start}");
    assert_eq!(start["sinks"][0], "hook", "{start}");
    assert!(alerts(&p).is_empty(), "clean baseline: {:?}", alerts(&p));

    // A listener appears (this test process, as root).
    let _u137 = a
        .in_netns(|| std::net::UdpSocket::bind("0.0.0.0:137"))
        .unwrap()
        .unwrap();
    assert!(
        wait(Duration::from_secs(15), || alerts(&p).len() == 1),
        "{:?}",
        p.read_stdout()
    );
    let l = &alerts(&p)[0];
    assert_eq!(l["alert"], "listener-appeared", "{l}");
    assert_eq!(l["severity"], "medium", "closed by the drop rule: {l}");
    assert_eq!(l["listeners"][0]["pid"], std::process::id(), "{l}");
    assert_eq!(l["listeners"][0]["user"], "root", "{l}");
    let body = bodies.recv_timeout(Duration::from_secs(15)).unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["kind"], "DETECTION", "{v}");
    assert_eq!(v["detection"]["source"], "audit", "{v}");
    assert_eq!(
        v["detection"]["details"]["alert"], "listener-appeared",
        "{v}"
    );
    assert!(
        v["detection"]["key"]
            .as_str()
            .unwrap()
            .starts_with("audit|listener|"),
        "{v}"
    );

    // The drop rule goes: one rule-removed (exposed now: high), also at the webhook.
    let list = run(&a, "nft", &["-a", "list", "chain", "inet", "nbt", "input"]);
    let handle = list
        .lines()
        .find(|l| l.contains("drop"))
        .and_then(|l| l.rsplit("# handle ").next())
        .unwrap()
        .trim()
        .to_string();
    run(
        &a,
        "nft",
        &["delete", "rule", "inet", "nbt", "input", "handle", &handle],
    );
    assert!(
        wait(Duration::from_secs(15), || alerts(&p).len() == 2),
        "{:?}",
        p.read_stdout()
    );
    let r = &alerts(&p)[1];
    assert_eq!(r["alert"], "rule-removed", "{r}");
    assert_eq!(r["severity"], "high", "{r}");
    assert_eq!(r["rule"], format!("inet nbt input handle {handle}"), "{r}");
    let body = bodies.recv_timeout(Duration::from_secs(15)).unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["detection"]["details"]["alert"], "rule-removed", "{v}");
    assert_eq!(v["detection"]["severity"], "high", "{v}");

    // Several more polls: no repeats, on stdout or at the webhook.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(alerts(&p).len(), 2, "{:?}", p.read_stdout());
    assert!(bodies.recv_timeout(Duration::from_millis(300)).is_err());

    // SIGTERM: clean exit 0 with a summary.
    p.signal(Signal::SIGTERM).unwrap();
    let st = p.wait_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(st.and_then(|s| s.code()), Some(0), "{:?}", p.read_stderr());
    let recs = records(&p);
    let s = recs.last().unwrap();
    assert_eq!(s["type"], "summary", "{s}");
    assert_eq!(s["alerts"], 2, "{s}");
    assert!(s["evaluations"].as_u64().unwrap() >= 5, "{s}");
    assert_eq!(s["sinks"]["delivered"], 2, "{s}");
}

#[test]
fn watch_bounded_by_count_and_usage_errors() {
    // Reads /proc only (no firewall): safe in the test's own namespace, no root needed.
    let out = std::process::Command::new(BIN)
        .args([
            "audit",
            "--watch",
            "--no-firewall",
            "--no-events",
            "--interval",
            "1s",
            "--count",
            "2",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("watching: polling every 1s"), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("state ")).count(), 5);
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("summary: 2 evaluations"),
        "{text}"
    );
    // The example configuration loads; a wrong value in it is a usage error (it is read).
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/audit.toml");
    let example = [
        "audit",
        "--watch",
        "--no-firewall",
        "--no-events",
        "--count",
        "1",
        "--config",
    ];
    let out = std::process::Command::new(BIN)
        .args(example)
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("audit.toml");
    let body = std::fs::read_to_string(&conf).unwrap();
    assert!(body.contains("min_severity = \"medium\""));
    std::fs::write(
        &broken,
        body.replace("min_severity = \"medium\"", "min_severity = \"loud\""),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(example)
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("min_severity"),
        "{out:?}"
    );
    for bad in [
        vec!["audit", "--watch", "--interval", "0s"],
        vec!["audit", "--interval", "5s"],
        vec!["audit", "--watch", "--count", "0"],
        vec![
            "audit",
            "--watch",
            "--config",
            "/nonexistent/nbdgm-audit.toml",
        ],
    ] {
        let out = std::process::Command::new(BIN).args(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}
