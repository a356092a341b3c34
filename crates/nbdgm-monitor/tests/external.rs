//! Alerts of other tools through the monitor's sinks (`external`): de-duplication, the
//! cooldown, an exec hook's environment, a full queue, the shared configuration file.
//! Only loopback and temp files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_monitor::external::{ExternalAlert, Level, Routed, Router, RouterConfig};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// An HTTP server on 127.0.0.1 that answers 200 to each request (after `delay`) and
/// sends each body on the channel. Serves at most `max` requests.
fn server(max: usize, delay: Duration) -> (String, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
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
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            std::thread::sleep(delay);
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if tx.send(String::from_utf8(body).unwrap()).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

fn alert(key: &str) -> ExternalAlert {
    let name = "EVIL\x1b[2J\n<20>";
    ExternalAlert {
        source: "watch".into(),
        key: key.into(),
        severity: Level::Medium,
        title: "NBDGM positive name answer from a host that does not own the name".into(),
        summary: format!("198.51.100.66:137 -> 198.51.100.10:137 name={name}"),
        target: "198.51.100.66".into(),
        port: "137/udp".into(),
        name: "answer-not-owner".into(),
        details: serde_json::json!({ "alert": { "signature_id": 1138101 }, "name": name }),
    }
}

fn config(sinks: &str, alerts: &str) -> RouterConfig {
    let text = format!(
        "[watch]\nlocal_nets = [\"198.51.100.0/24\"]\n\n[watch.alerts]\n{alerts}\n\n{sinks}"
    );
    RouterConfig::parse(&text, None).unwrap()
}

#[test]
fn webhook_dedup_and_cooldown() {
    let (url, rx) = server(10, Duration::ZERO);
    let cfg = config(
        &format!("[[sink]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{url}\"\n"),
        "cooldown = \"400ms\"\nmin_severity = \"medium\"",
    );
    assert_eq!(cfg.cooldown, Duration::from_millis(400));
    let mut r = Router::start(cfg).unwrap();
    assert_eq!(r.route(alert("1138101|198.51.100.66|EVIL")), Routed::Queued);
    assert_eq!(
        r.route(alert("1138101|198.51.100.66|EVIL")),
        Routed::Duplicate
    );
    assert_eq!(
        r.route(alert("1138101|198.51.100.66|EVIL")),
        Routed::Duplicate
    );
    let mut low = alert("other");
    low.severity = Level::Low;
    assert_eq!(r.route(low), Routed::BelowSeverity);
    let body = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["kind"], "DETECTION");
    assert_eq!(v["detection"]["key"], "1138101|198.51.100.66|EVIL");
    // JSON keeps the network string exact.
    assert_eq!(v["detection"]["details"]["name"], "EVIL\x1b[2J\n<20>");
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "one delivery only"
    );
    // After the cooldown: delivered again.
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(r.route(alert("1138101|198.51.100.66|EVIL")), Routed::Queued);
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let s = r.finish(Duration::from_secs(5));
    assert_eq!(
        (
            s.queued,
            s.duplicates,
            s.below_severity,
            s.delivered,
            s.failed,
            s.abandoned
        ),
        (2, 2, 1, 2, 0, 0),
        "{s:?}"
    );
}

#[test]
fn exec_hook_gets_exact_json_and_escaped_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    let cfg = config(
        &format!(
            "[[sink]]\nname = \"hook\"\ntype = \"exec\"\nprogram = \"/bin/sh\"\nargs = [\"-c\", \"env > {}\"]\n",
            out.display()
        ),
        "",
    );
    assert_eq!(cfg.cooldown, Duration::from_secs(900), "default 15m");
    let mut r = Router::start(cfg).unwrap();
    assert_eq!(r.route(alert("k")), Routed::Queued);
    let s = r.finish(Duration::from_secs(10));
    assert_eq!((s.delivered, s.failed), (1, 0), "{s:?}");
    let env = std::fs::read_to_string(&out).unwrap();
    let get = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing in {env}"))
            .to_owned()
    };
    assert_eq!(get("NBDGM_ALERT_KIND"), "DETECTION");
    assert_eq!(get("NBDGM_SOURCE"), "watch");
    assert_eq!(get("NBDGM_SEVERITY"), "medium");
    assert_eq!(
        get("NBDGM_SUMMARY"),
        "DETECTION medium NBDGM positive name answer from a host that does not own the name: \
         198.51.100.66:137 -> 198.51.100.10:137 name=EVIL\\x1b[2J\\n<20>"
    );
    // The JSON holds the exact string (serde escapes it as JSON, no raw newline).
    let j = get("NBDGM_EVENT_JSON");
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["detection"]["details"]["name"], "EVIL\x1b[2J\n<20>");
    assert_eq!(v["detection"]["summary"], alert("k").summary);
}

#[test]
fn full_queue_is_counted_not_blocking() {
    // A slow webhook (1 s per request): the first event occupies the worker, two fill
    // the queue, the rest are dropped at once.
    let (url, _rx) = server(3, Duration::from_secs(1));
    let cfg = config(
        &format!(
            "[[sink]]\nname = \"slow\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n"
        ),
        "queue_items = 2\nattempts = 1",
    );
    let mut r = Router::start(cfg).unwrap();
    let t0 = Instant::now();
    let mut routed = Vec::new();
    for i in 0..50 {
        routed.push(r.route(alert(&format!("k{i}"))));
        if i == 0 {
            // Let the worker take the first one.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(
        t0.elapsed() < Duration::from_millis(800),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(routed.iter().filter(|x| **x == Routed::Queued).count(), 3);
    assert_eq!(r.stats().dropped, 47);
    // finish with too short a time: the rest is abandoned, and finish returns in time.
    let t0 = Instant::now();
    let s = r.finish(Duration::from_millis(300));
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert!(s.abandoned >= 2, "{s:?}");
}

#[test]
fn queue_bytes_cap_and_config_errors() {
    let cfg = config(
        "[[sink]]\nname = \"x\"\ntype = \"exec\"\nprogram = \"/bin/sleep\"\nargs = [\"2\"]\n",
        "queue_bytes = 1024\nmin_severity = \"low\"",
    );
    let mut r = Router::start(cfg).unwrap();
    let mut big = alert("big");
    big.details = serde_json::json!({ "pad": "x".repeat(2000) });
    assert_eq!(r.route(big), Routed::Dropped);
    assert_eq!(r.stats().dropped, 1);
    drop(r);

    // Errors name the key; the monitor's sink checks apply; no sink is fine.
    let e = RouterConfig::parse("[watch.alerts]\ncooldown = \"soon\"\n", None).unwrap_err();
    assert_eq!(
        (e.key.as_str(), e.line),
        ("watch.alerts.cooldown", 2),
        "{e}"
    );
    let e = RouterConfig::parse("[watch.alerts]\nqueue = 3\n", None).unwrap_err();
    assert!(e.to_string().contains("queue"), "{e}");
    let e = RouterConfig::parse(
        "[[sink]]\nname = \"h\"\ntype = \"webhook\"\nurl = \"ftp://x\"\n",
        None,
    )
    .unwrap_err();
    assert_eq!(e.key, "sink[0].url");
    let e = RouterConfig::parse(
        "[[sink]]\nname = \"h\"\ntype = \"exec\"\nprogram = \"/bin/true\"\nkinds = [\"NOPE\"]\n",
        None,
    )
    .unwrap_err();
    assert_eq!(e.key, "sink[0].kinds");
    let c = RouterConfig::parse("[watch]\nx = 1\n[other]\ny = 2\n", None).unwrap();
    assert!(c.sinks.is_empty());
    assert_eq!(c.min_severity, Level::Medium);
}

#[test]
fn sink_kinds_filter_detections() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ran");
    // A sink for port alerts only does not take detections.
    let cfg = config(
        &format!(
            "[[sink]]\nname = \"ports\"\ntype = \"exec\"\nprogram = \"/bin/sh\"\nargs = [\"-c\", \"touch {}\"]\nkinds = [\"PORT_NEW_OPEN\"]\n",
            out.display()
        ),
        "",
    );
    let mut r = Router::start(cfg).unwrap();
    r.route(alert("k"));
    let s = r.finish(Duration::from_secs(5));
    assert_eq!((s.queued, s.delivered), (1, 0));
    assert!(!out.exists());
}

#[test]
fn alerts_table_of_another_tool() {
    let text = "[watch.alerts]\ncooldown = \"1m\"\n\n[audit]\nx = 1\n\n[audit.alerts]\ncooldown = \"2m\"\nmin_severity = \"low\"\n";
    let a = RouterConfig::parse_section(text, None, "audit").unwrap();
    assert_eq!(
        (a.cooldown, a.min_severity),
        (Duration::from_secs(120), Level::Low)
    );
    let w = RouterConfig::parse(text, None).unwrap();
    assert_eq!(
        (w.cooldown, w.min_severity),
        (Duration::from_secs(60), Level::Medium)
    );
    let e = RouterConfig::parse_section("[audit.alerts]\nattempts = 0\n", None, "audit")
        .unwrap_err()
        .to_string();
    assert!(e.contains("audit.alerts.attempts"), "{e}");
    assert!(RouterConfig::parse_section("", None, "nope").is_err());
}
