//! Monitor tests: configuration errors, the SQLite and PostgreSQL stores (two instances,
//! no double alerts), the whole service with a scripted prober and a webhook receiver
//! (alerts once per change, maintenance, reload, web page in headless Chromium, metrics),
//! the SMTP and webhook sinks, and the lab test against a real nmbd.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod monitor_support;

use chrono::{Duration as CDuration, Utc};
use monitor_support::*;
use nbdgm_monitor::config::MonitorConfig;
use nbdgm_monitor::engine::{AlertKind, Key};
use nbdgm_monitor::store::{self, NewChange, Query, Store};
use nbdgm_monitor::{alert, Monitor, RealProber, ScriptedProber};
use nbdgm_probe::probe::{HostResult, Port, PortState};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn parse_err(text: &str) -> (usize, String, String) {
    let e = MonitorConfig::parse(text, Some(Path::new("m.toml"))).unwrap_err();
    (e.line, e.key.clone(), e.to_string())
}

const MIN: &str = "[[check]]\nname = \"a\"\ntargets = [\"198.51.100.10\"]\n";

#[test]
fn config_errors_name_key_and_line() {
    let (line, key, msg) = parse_err(&format!("{MIN}interval = \"5 parsecs\"\n"));
    assert_eq!((line, key.as_str()), (4, "check[0].interval"), "{msg}");
    assert!(msg.starts_with("m.toml:4: check[0].interval:"), "{msg}");

    let (line, key, msg) = parse_err(&format!(
        "[store]\nurl = \"x.db\"\n\n{MIN}\n[[check]]\nname = \"b\"\ntargets = [\"198.51.100.11\"]\nports = [\"137/udp\", \"999/tcp\"]\n"
    ));
    assert_eq!((line, key.as_str()), (11, "check[1].ports"), "{msg}");

    let (line, key, msg) = parse_err(&format!("{MIN}retires = 3\n"));
    assert_eq!(line, 4, "{msg}");
    assert!(key.ends_with("retires"), "{key}");
    assert!(msg.contains("unknown field"), "{msg}");

    let (line, key, msg) = parse_err(&format!("{MIN}retries = \"three\"\n"));
    assert_eq!((line, key.as_str()), (4, "check[0].retries"), "{msg}");

    let (line, key, _) = parse_err(&format!("[http]\nlisten = \"nowhere\"\n{MIN}"));
    assert_eq!((line, key.as_str()), (2, "http.listen"));

    let (line, key, _) = parse_err(&format!(
        "{MIN}[[check.maintenance]]\ndays = [\"mon\"]\nstart = \"25:00\"\nend = \"02:00\"\n"
    ));
    assert_eq!((line, key.as_str()), (6, "check[0].maintenance[0].start"));

    let (line, key, _) = parse_err(&format!("{MIN}sinks = [\"nope\"]\n"));
    assert_eq!((line, key.as_str()), (4, "check[0].sinks"));

    let (line, key, _) = parse_err(&format!(
        "{MIN}\n[[sink]]\nname = \"x\"\ntype = \"pager\"\n"
    ));
    assert_eq!((line, key.as_str()), (7, "sink[0].type"));

    let (_, key, _) = parse_err("[store]\nurl = \"x\"\n");
    assert_eq!(key, "check");

    let (line, _, msg) = parse_err(&format!("{MIN}targets = [\"198.51.100.0/16\"\n"));
    assert!(line >= 4, "{msg}");

    let (line, key, _) = parse_err("[[check]]\nname = \"a\"\ntargets = [\"10.0.0.0/8\"]\n");
    assert_eq!((line, key.as_str()), (3, "check[0].targets"));
}

#[test]
fn config_defaults_and_dist_example() {
    let c = MonitorConfig::parse(MIN, None).unwrap();
    let ch = &c.checks[0];
    assert_eq!(ch.confirmations, 2);
    assert_eq!(ch.ports.len(), 4);
    assert!(!ch.ambiguous_as_open);
    assert_eq!(ch.expect.as_str(), "closed");
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/monitor.toml");
    let c = MonitorConfig::load(&dist).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.checks.len() >= 2);
    assert!(c.sinks.len() >= 4);
    assert!(c.http.is_some());
}

fn host(addr: &str, states: &[(Port, PortState)]) -> HostResult {
    let ports: Vec<_> = states
        .iter()
        .map(|&(port, state)| (port, state, "test <evidence>"))
        .collect();
    HostResult {
        duration_ms: 3.0,
        ..host_result(addr, &ports)
    }
}

fn key(t: &str, p: &str) -> Key {
    Key {
        check: "c".into(),
        target: t.into(),
        port: p.into(),
    }
}

/// The same round trip on any store.
fn round_trip(s: &mut Store) {
    let t0 = Utc::now() - CDuration::seconds(100);
    let t1 = t0 + CDuration::seconds(10);
    let r1 = s
        .record_cycle(
            "c",
            t0,
            t0,
            &[host(
                "198.51.100.10",
                &[
                    (Port::Ns137Udp, PortState::Closed),
                    (Port::Dgm138Udp, PortState::OpenFiltered),
                ],
            )],
        )
        .unwrap();
    let r2 = s
        .record_cycle(
            "c",
            t1,
            t1,
            &[host(
                "198.51.100.10",
                &[
                    (Port::Ns137Udp, PortState::Open),
                    (Port::Dgm138Udp, PortState::OpenFiltered),
                ],
            )],
        )
        .unwrap();
    assert!(r2 > r1);
    let h = s
        .history(&Query {
            limit: 10,
            ..Query::default()
        })
        .unwrap();
    assert_eq!(h.len(), 4);
    assert_eq!(h[0].run_id, r2);
    assert_eq!(h[1].state, "open");
    assert_eq!(h[0].state, "open|filtered");
    assert_eq!(h[0].rtt_ms, Some(1.5));
    assert_eq!(h[0].evidence, "test <evidence>");
    let h = s
        .history(&Query {
            port: Some("137/udp".into()),
            limit: 10,
            ..Query::default()
        })
        .unwrap();
    assert_eq!(h.len(), 2);

    let k = key("198.51.100.10", "137/udp");
    let ch = |new: &'static str, at| NewChange {
        key: Box::leak(Box::new(k.clone())),
        old: None,
        new,
        kind: Some(AlertKind::PortNewOpen),
        expected: "closed",
        bad: new != "closed",
        in_maintenance: false,
        at,
    };
    let c = s.commit_change(&ch("closed", t0)).unwrap();
    assert!(c.applied);
    assert_eq!(c.seq, 1);
    let again = s.commit_change(&ch("closed", t0)).unwrap();
    assert!(!again.applied);
    assert_eq!(again.seq, 1);
    let c = s.commit_change(&ch("open", t1)).unwrap();
    assert!(c.applied);
    assert_eq!(c.seq, 2);
    let id = s
        .claim_alert(&k, 2, 0, AlertKind::PortNewOpen, "{}", t1)
        .unwrap()
        .expect("first claim");
    assert_eq!(
        s.claim_alert(&k, 2, 0, AlertKind::PortNewOpen, "{}", t1)
            .unwrap(),
        None
    );
    assert!(s
        .claim_alert(&k, 2, 1, AlertKind::PortNewOpen, "{}", t1)
        .unwrap()
        .is_some());
    s.record_delivery(id, "hook", false, 3, Some("HTTP 500"), t1)
        .unwrap();
    let d = s.deliveries(id).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].error.as_deref(), Some("HTTP 500"));

    let cur = s.current(Some("c")).unwrap();
    assert_eq!(cur.len(), 1);
    assert_eq!(cur[0].value, "open");
    assert!(cur[0].bad);
    assert_eq!(cur[0].last_state.as_deref(), Some("open"));
    let changes = s
        .changes(&Query {
            limit: 10,
            ..Query::default()
        })
        .unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].old.as_deref(), Some("closed"));
    assert_eq!(changes[0].kind.as_deref(), Some("PORT_NEW_OPEN"));

    let a = s.states_at(t0 + CDuration::seconds(1)).unwrap();
    let b = s.states_at(t1 + CDuration::seconds(1)).unwrap();
    let d = store::diff(&a, &b);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].from.as_deref(), Some("closed"));
    assert_eq!(d[0].to.as_deref(), Some("open"));
    assert!(store::diff(&b, &b).is_empty());
    assert_eq!(
        store::diff(&s.states_of_run(r1).unwrap(), &s.states_of_run(r2).unwrap()).len(),
        1
    );
    assert!(s.states_of_run(999_999).is_err());
    assert_eq!(s.last_run().unwrap(), r2);

    assert!(s.prune(t0 + CDuration::seconds(5)).unwrap() > 0);
    assert_eq!(s.count("runs").unwrap(), 1);
    assert_eq!(s.count("current").unwrap(), 1);
    assert_eq!(s.integrity_check().unwrap(), "ok");
}

#[test]
fn sqlite_store_round_trip() {
    let d = TempDir::new("sqlite");
    let path = d.path().join("sub/m.db");
    let mut s = Store::open(path.to_str().unwrap(), "a").unwrap();
    round_trip(&mut s);
    drop(s);
    // Reopen: schema version kept, data kept.
    let mut s = Store::open(&format!("sqlite:{}", path.display()), "a").unwrap();
    assert_eq!(s.count("current").unwrap(), 1);
    assert_eq!(s.kind(), "sqlite");
}

#[test]
fn postgres_store_round_trip_and_two_instances() {
    let Some(pg) = PgCluster::start("postgres_store_round_trip_and_two_instances") else {
        return;
    };
    let url = pg.database("roundtrip");
    let mut s = Store::open(&url, "a").unwrap();
    assert_eq!(s.kind(), "postgres");
    round_trip(&mut s);

    // Two instances on one store race on the same changes: each change is committed once,
    // each alert claimed once.
    let url = pg.database("shared");
    let run = |instance: &'static str, url: String| {
        std::thread::spawn(move || {
            let mut s = Store::open(&url, instance).unwrap();
            let mut applied = 0;
            let mut claimed = 0;
            let k = key("198.51.100.20", "138/udp");
            let t = Utc::now();
            for (i, v) in ["closed", "open", "closed", "open", "closed"]
                .iter()
                .enumerate()
            {
                let c = s
                    .commit_change(&NewChange {
                        key: &k,
                        old: None,
                        new: v,
                        kind: Some(AlertKind::PortNowClosed),
                        expected: "closed",
                        bad: *v != "closed",
                        in_maintenance: false,
                        at: t + CDuration::seconds(i as i64),
                    })
                    .unwrap();
                if c.applied {
                    applied += 1;
                }
                if s.claim_alert(&k, i as i64 + 1, 0, AlertKind::PortNowClosed, "{}", t)
                    .unwrap()
                    .is_some()
                {
                    claimed += 1;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (applied, claimed)
        })
    };
    let a = run("a", url.clone());
    let b = run("b", url.clone());
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(a.1 + b.1, 5, "each alert claimed exactly once: {a:?} {b:?}");
    let mut s = Store::open(&url, "check").unwrap();
    let changes = s
        .changes(&Query {
            limit: 100,
            ..Query::default()
        })
        .unwrap();
    assert_eq!(changes.len() as i64, a.0 + b.0);
    let mut seqs: Vec<i64> = changes.iter().map(|c| c.seq).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), changes.len(), "no seq twice");
    assert_eq!(s.count("alerts").unwrap(), 5);
}

#[test]
fn smtp_and_webhook_sinks() {
    use nbdgm_monitor::config::{EmailTls, Sink, SinkKind, WebhookFormat};
    let e = alert::AlertEvent {
        kind: AlertKind::PortNewOpen,
        check: "office".into(),
        target: "198.51.100.10".into(),
        hostname: None,
        port: "138/udp".into(),
        old: Some("closed".into()),
        new: "open".into(),
        expected: Some("closed".into()),
        seq: 2,
        reminder: 0,
        since: Utc::now(),
        at: Utc::now(),
        instance: "t".into(),
        detection: None,
    };
    let smtp = SmtpSink::start();
    let sink = Sink {
        name: "mail".into(),
        kind: SinkKind::Email {
            server: "127.0.0.1".into(),
            port: smtp.addr.port(),
            tls: EmailTls::None,
            from: "nbdgm@example.invalid".into(),
            to: vec!["ops@example.invalid".into()],
            username: None,
            password_env: None,
            timeout: Duration::from_secs(5),
        },
        kinds: vec![],
    };
    alert::deliver_once(&sink, &e).unwrap();
    let msg = smtp.next(Duration::from_secs(5)).expect("a message");
    assert!(msg.contains("RCPT TO:<ops@example.invalid>"), "{msg}");
    assert!(
        msg.contains("Subject: nbdgm: PORT_NEW_OPEN 198.51.100.10 138/udp"),
        "{msg}"
    );
    assert!(msg.contains("expected: closed"), "{msg}");

    // Webhook: two failures, then success on the third attempt (backoff in between).
    let hook = HttpSink::start(2);
    let sink = Sink {
        name: "ntfy".into(),
        kind: SinkKind::Webhook {
            url: hook.url("/topic"),
            format: WebhookFormat::Ntfy,
            timeout: Duration::from_secs(5),
            headers: [("X-Extra".to_string(), "1".to_string())].into(),
        },
        kinds: vec![],
    };
    let t0 = Instant::now();
    let o = alert::deliver(&sink, &e, 3, Duration::from_millis(100), &|| false);
    assert!(o.ok, "{o:?}");
    assert_eq!(o.attempts, 3);
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "backoff 100 + 200 ms"
    );
    let reqs = hook.take(Duration::from_millis(200));
    assert_eq!(reqs.len(), 3);
    let r = &reqs[2];
    assert_eq!(r.path, "/topic");
    assert_eq!(
        r.header("Title"),
        Some("nbdgm: PORT_NEW_OPEN 198.51.100.10 138/udp")
    );
    assert_eq!(r.header("Priority"), Some("4"));
    assert_eq!(r.header("X-Extra"), Some("1"));
    assert!(r.body.starts_with("PORT_NEW_OPEN office"));
    // Out of attempts: failure reported.
    let hook = HttpSink::start(usize::MAX);
    let sink = Sink {
        name: "h".into(),
        kind: SinkKind::Webhook {
            url: hook.url("/"),
            format: WebhookFormat::Slack,
            timeout: Duration::from_secs(5),
            headers: Default::default(),
        },
        kinds: vec![],
    };
    let o = alert::deliver(&sink, &e, 2, Duration::from_millis(10), &|| false);
    assert!(!o.ok);
    assert_eq!(o.attempts, 2);
    assert!(o.error.unwrap().contains("500"));
    let reqs = hook.take(Duration::from_millis(200));
    assert_eq!(
        reqs[0].json()["text"].as_str().unwrap().split(':').next(),
        Some("PORT_NEW_OPEN office 198.51.100.10 138/udp")
    );
}

fn scripted_config(dir: &Path, hook: &str, interval_ms: u64, extra: &str) -> MonitorConfig {
    let text = format!(
        r#"
[store]
url = "{db}"
instance = "test"
[http]
listen = "127.0.0.1:0"
[alerts]
attempts = 2
backoff = "50ms"
[[check]]
name = "lab"
targets = ["198.51.100.10", "198.51.100.11"]
ports = ["137/udp", "138/udp"]
interval = "{interval_ms}ms"
confirmations = 2
{extra}
[[sink]]
name = "hook"
type = "webhook"
url = "{hook}"
format = "json"
"#,
        db = dir.join("m.db").display()
    );
    MonitorConfig::parse(&text, None).unwrap_or_else(|e| panic!("{e}"))
}

fn kinds_of(reqs: &[Request]) -> Vec<String> {
    reqs.iter()
        .map(|r| {
            let v = r.json();
            format!(
                "{} {} {}",
                v["kind"].as_str().unwrap_or("?"),
                v["target"].as_str().unwrap_or("?"),
                v["port"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[test]
fn scripted_monitor_alerts_once_per_change_and_respects_maintenance() {
    let dir = TempDir::new("scripted");
    let states = dir.path().join("states");
    let hook = HttpSink::start(0);
    let interval = Duration::from_millis(300);
    let cfg = scripted_config(dir.path(), &hook.url("/hook"), 300, "");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let prober = Arc::new(ScriptedProber {
        path: states.clone(),
    });
    let mut m = rt.block_on(Monitor::start(cfg.clone(), prober)).unwrap();
    let addr = m.http_addr().unwrap();
    let wait_current = |n: usize| {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let c = m.store().lock().unwrap().current(None).unwrap();
            if c.len() >= n {
                return c;
            }
            assert!(Instant::now() < end, "no baseline: {c:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // Baseline: everything closed, host up: no alert.
    let cur = wait_current(6);
    assert!(cur.iter().all(|r| !r.bad), "{cur:?}");
    assert!(hook.take(interval * 2).is_empty());

    // 137/udp opens on .10: exactly one PORT_NEW_OPEN, within two intervals (+ slack).
    std::fs::write(&states, "198.51.100.10 137/udp open\n").unwrap();
    let t0 = Instant::now();
    let mut seen = Vec::new();
    let r = hook
        .wait_for(interval * 2 + Duration::from_secs(1), &mut seen, |_| true)
        .expect("PORT_NEW_OPEN alert");
    assert!(r.at - t0 <= interval * 2 + Duration::from_secs(1));
    let v = r.json();
    assert_eq!(v["kind"], "PORT_NEW_OPEN");
    assert_eq!(v["target"], "198.51.100.10");
    assert_eq!(v["port"], "137/udp");
    assert_eq!(v["old"], "closed");
    assert_eq!(v["expected"], "closed");
    std::thread::sleep(interval * 4);
    assert!(hook.take(Duration::ZERO).is_empty(), "only once");

    // Flapping (one-cycle blips) never alerts.
    for _ in 0..3 {
        std::fs::write(
            &states,
            "198.51.100.10 137/udp open\n198.51.100.11 138/udp open\n",
        )
        .unwrap();
        std::thread::sleep(interval / 2 + Duration::from_millis(20));
        std::fs::write(&states, "198.51.100.10 137/udp open\n").unwrap();
        std::thread::sleep(interval * 2);
    }
    // open|filtered is "ambiguous" (ambiguous_as_open = false).
    std::fs::write(
        &states,
        "198.51.100.10 137/udp open\n198.51.100.10 138/udp open|filtered\n",
    )
    .unwrap();
    let r = hook
        .wait_for(interval * 3 + Duration::from_secs(1), &mut seen, |_| true)
        .expect("ambiguous alert");
    assert_eq!(
        kinds_of(&[r]),
        ["PORT_STATE_AMBIGUOUS 198.51.100.10 138/udp"]
    );
    std::fs::write(&states, "").unwrap();
    let got = hook.take(interval * 5);
    let mut k = kinds_of(&got);
    k.sort();
    assert_eq!(
        k,
        [
            "PORT_NOW_CLOSED 198.51.100.10 137/udp",
            "PORT_NOW_CLOSED 198.51.100.10 138/udp"
        ],
        "blips must not alert"
    );

    // Web: JSON, metrics and the page.
    let (code, body) = http_get(addr, "/api/state");
    assert_eq!(code, 200);
    let state: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(state.as_array().unwrap().len(), 6);
    // The probe's own latest state and a verdict for every key, as `monitor status` shows them.
    let (code, body) = http_get(addr, "/api/latest?check=lab");
    assert_eq!(code, 200);
    let latest: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert!(latest.len() >= 6, "{body}");
    assert!(latest.iter().all(|r| r["check"] == "lab"
        && ["ok", "violation", "unknown"].contains(&r["verdict"].as_str().unwrap_or(""))));
    let (code, body) = http_get(addr, "/api/latest?check=none");
    assert_eq!((code, body.as_str()), (200, "[]"));
    let (code, body) = http_get(addr, "/api/changes?limit=3");
    assert_eq!(code, 200);
    let changes: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(changes.as_array().unwrap().len(), 3);
    let (code, metrics) = http_get(addr, "/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains(
        "nbdgm_port_state{check=\"lab\",target=\"198.51.100.10\",port=\"137\",proto=\"udp\",expected=\"closed\"} 0"
    ), "{metrics}");
    assert!(
        metrics.contains("nbdgm_alerts_sent_total{sink=\"hook\",kind=\"PORT_NEW_OPEN\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("nbdgm_probe_duration_seconds_bucket"));
    let (code, page) = http_get(addr, "/");
    assert_eq!(code, 200);
    assert!(page.contains("id=\"summary\""));
    assert!(page.contains("PORT_STATE_AMBIGUOUS"));
    if let Some(dom) = chromium_dump_dom("scripted_monitor (chromium)", &format!("http://{addr}/"))
    {
        assert!(dom.contains("id=\"violation-count\""), "{dom}");
        assert!(dom.contains(">local: closed</span>"), "{dom}");
        assert!(dom.contains("id=\"timeline\""), "{dom}");
        assert!(dom.contains("PORT_NEW_OPEN"), "{dom}");
        assert!(dom.contains("PORT_NOW_CLOSED"), "{dom}");
    }

    // Reload with a maintenance window around now: the change is stored, not alerted.
    let now = Utc::now();
    let window = format!(
        "[[check.maintenance]]\nfrom = {}\nuntil = {}\n",
        (now - CDuration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        (now + CDuration::seconds(4)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    );
    let cfg2 = scripted_config(dir.path(), &hook.url("/hook"), 300, &window);
    rt.block_on(m.reload(cfg2));
    std::fs::write(&states, "198.51.100.11 138/udp open\n").unwrap();
    let end = Instant::now() + Duration::from_secs(3);
    let mut stored = false;
    while Instant::now() < end {
        let c = m
            .store()
            .lock()
            .unwrap()
            .changes(&Query {
                target: Some("198.51.100.11".into()),
                port: Some("138/udp".into()),
                limit: 1,
                ..Query::default()
            })
            .unwrap();
        if c.first()
            .is_some_and(|c| c.new == "open" && c.in_maintenance)
        {
            stored = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(stored, "change stored during maintenance");
    let during = hook.take(Duration::ZERO);
    assert!(
        during.is_empty(),
        "no alert during maintenance: {:?}",
        kinds_of(&during)
    );
    // The window ends while the port is still open: one late alert.
    let r = hook
        .wait_for(Duration::from_secs(8), &mut seen, |_| true)
        .expect("alert after the window");
    assert_eq!(kinds_of(&[r]), ["PORT_NEW_OPEN 198.51.100.11 138/udp"]);
    assert!(Utc::now() >= now + CDuration::seconds(4) - CDuration::milliseconds(500));
    std::thread::sleep(interval * 3);
    assert!(hook.take(Duration::ZERO).is_empty());
    rt.block_on(m.stop());
}

/// The real probe against a real nmbd in a lab namespace: the monitor runs as a library
/// inside another lab host's namespace with the webhook receiver on that namespace's
/// loopback, sees nmbd start, stop and start again, alerts once per change within two
/// intervals, and sends nothing during a maintenance window.
#[test]
fn monitor_sees_nmbd_start_stop_start() {
    use nbdgm_lab::{Lab, LabSpec, Nmbd, NmbdOptions};
    if !nbdgm_lab::require_or_skip("monitor_sees_nmbd_start_stop_start") {
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).unwrap();
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let mh = lab.add_host("m", "198.51.100.20/24").unwrap();
    let dir = TempDir::new("lab");
    let interval = Duration::from_secs(1);
    let config = |hook: &str, extra: &str| {
        let text = format!(
            r#"
[store]
url = "{db}"
[alerts]
attempts = 3
backoff = "100ms"
[[check]]
name = "lab"
targets = ["198.51.100.10"]
ports = ["137/udp", "138/udp"]
interval = "1s"
timeout = "300ms"
retries = 0
confirmations = 2
ambiguous_as_open = true
{extra}
[[sink]]
name = "hook"
type = "webhook"
url = "{hook}"
"#,
            db = dir.path().join("lab.db").display()
        );
        MonitorConfig::parse(&text, None).unwrap_or_else(|e| panic!("{e}"))
    };
    // Everything async lives in the monitor host's namespace.
    let (rt, mon, hook) = mh
        .in_netns(|| {
            let hook = HttpSink::start(0);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let m = rt
                .block_on(Monitor::start(
                    config(&hook.url("/hook"), ""),
                    Arc::new(RealProber::new()),
                ))
                .unwrap();
            (rt, m, hook)
        })
        .unwrap();
    let mut mon = Some(mon);
    let store = mon.as_ref().unwrap().store();
    let value_of = |port: &str| {
        store
            .lock()
            .unwrap()
            .current(Some("lab"))
            .unwrap()
            .into_iter()
            .find(|r| r.port == port)
            .map(|r| r.value)
    };
    let wait_value = |port: &str, v: &str, within: Duration| {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if value_of(port).as_deref() == Some(v) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    assert!(
        wait_value("137/udp", "closed", Duration::from_secs(10)),
        "baseline closed"
    );
    assert!(
        hook.take(Duration::ZERO).is_empty(),
        "a good baseline does not alert"
    );
    let expect = |what: &str, kind: &str, started: Instant, seen: &mut Vec<Request>| {
        // Both ports, each exactly once, within two intervals of nmbd answering (the
        // probe's own time is added as slack).
        let deadline = interval * 2 + Duration::from_secs(3);
        let mut got = Vec::new();
        for _ in 0..2 {
            let r = hook
                .wait_for(deadline.saturating_sub(started.elapsed()), seen, |r| {
                    r.json()["kind"] == kind
                })
                .unwrap_or_else(|| panic!("{what}: no {kind} alert; seen {:?}", kinds_of(seen)));
            got.push(r.json()["port"].as_str().unwrap().to_owned());
        }
        got.sort();
        assert_eq!(got, ["137/udp", "138/udp"], "{what}");
    };
    let mut seen = Vec::new();
    let nmbd = Nmbd::start(&a, NmbdOptions::default()).unwrap();
    let t = Instant::now();
    expect("nmbd started", "PORT_NEW_OPEN", t, &mut seen);
    nmbd.stop().unwrap();
    let t = Instant::now();
    expect("nmbd stopped", "PORT_NOW_CLOSED", t, &mut seen);
    let nmbd = Nmbd::start(&a, NmbdOptions::default()).unwrap();
    let t = Instant::now();
    expect("nmbd started again", "PORT_NEW_OPEN", t, &mut seen);
    seen.extend(hook.take(interval * 4));
    assert_eq!(
        seen.len(),
        6,
        "exactly once per change: {:?}",
        kinds_of(&seen)
    );

    // Maintenance: reload with a window now; stopping nmbd is stored, not alerted.
    let now = Utc::now();
    let window = format!(
        "[[check.maintenance]]\nfrom = {}\nuntil = {}\n",
        (now - CDuration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        (now + CDuration::minutes(10)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    );
    let hook_url = hook.url("/hook");
    let mut m = mon.take().unwrap();
    let m = mh
        .in_netns(|| {
            rt.block_on(m.reload(config(&hook_url, &window)));
            m
        })
        .unwrap();
    nmbd.stop().unwrap();
    assert!(
        wait_value("137/udp", "closed", interval * 2 + Duration::from_secs(3)),
        "change stored during maintenance"
    );
    std::thread::sleep(interval * 2);
    let during = hook.take(Duration::ZERO);
    assert!(
        during.is_empty(),
        "no alert in maintenance: {:?}",
        kinds_of(&during)
    );
    let c = store
        .lock()
        .unwrap()
        .changes(&Query {
            port: Some("137/udp".into()),
            limit: 1,
            ..Query::default()
        })
        .unwrap();
    assert!(c[0].in_maintenance);
    mh.in_netns(|| rt.block_on(m.stop())).unwrap();
    drop(rt);
}

/// SERVICE_CHANGED, HOST_DOWN and reminders through an exec hook (no shell: the program
/// gets the event as arguments and environment).
#[test]
fn exec_hook_service_change_host_down_and_reminders() {
    let dir = TempDir::new("exec");
    let states = dir.path().join("states");
    let out = dir.path().join("alerts.txt");
    let script = dir.path().join("hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1|$2|$NBDGM_PORT|$NBDGM_REMINDER\" >> {}\n",
            out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(&states, "names SAMBAA<00>,SAMBAA<20>\n").unwrap();
    let text = format!(
        r#"
[store]
url = "{db}"
[[check]]
name = "svc"
targets = ["198.51.100.30"]
ports = ["139/tcp"]
expect = "open"
interval = "200ms"
confirmations = 2
remind_every = "1s"
[[sink]]
name = "hook"
type = "exec"
program = "{script}"
args = ["{{kind}}", "{{target}}"]
timeout = "5s"
"#,
        db = dir.path().join("m.db").display(),
        script = script.display()
    );
    let cfg = MonitorConfig::parse(&text, None).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let m = rt
        .block_on(Monitor::start(
            cfg,
            Arc::new(ScriptedProber {
                path: states.clone(),
            }),
        ))
        .unwrap();
    let lines = || -> Vec<String> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let wait = |pred: &dyn Fn(&[String]) -> bool, what: &str| {
        let end = Instant::now() + Duration::from_secs(8);
        while Instant::now() < end {
            if pred(&lines()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{what}: {:?}", lines());
    };
    // Expecting open, 139/tcp closed: a bad baseline alerts, and reminds every second.
    wait(
        &|l| {
            l.iter()
                .any(|x| x == "PORT_NOW_CLOSED|198.51.100.30|139/tcp|0")
        },
        "bad baseline",
    );
    wait(
        &|l| {
            l.iter()
                .any(|x| x == "PORT_NOW_CLOSED|198.51.100.30|139/tcp|1")
        },
        "reminder 1",
    );
    // The name table changes: SERVICE_CHANGED once.
    std::fs::write(&states, "139/tcp open\nnames SAMBAB<00>,SAMBAB<20>\n").unwrap();
    wait(
        &|l| {
            l.iter()
                .any(|x| x.starts_with("SERVICE_CHANGED|198.51.100.30|service"))
        },
        "service change",
    );
    // The host goes away: HOST_DOWN; no port alert for it.
    std::fs::write(&states, "down\n").unwrap();
    wait(
        &|l| l.iter().any(|x| x == "HOST_DOWN|198.51.100.30|host|0"),
        "host down",
    );
    std::thread::sleep(Duration::from_millis(600));
    let l = lines();
    assert_eq!(
        l.iter()
            .filter(|x| x.starts_with("SERVICE_CHANGED"))
            .count(),
        1,
        "{l:?}"
    );
    assert_eq!(
        l.iter().filter(|x| x.starts_with("PORT_NEW_OPEN")).count(),
        1,
        "{l:?}"
    );
    let store = m.store();
    let cur = store.lock().unwrap().current(Some("svc")).unwrap();
    let host = cur.iter().find(|r| r.port == "host").unwrap();
    assert_eq!(host.value, "down");
    assert!(host.bad);
    rt.block_on(m.stop());
}

#[test]
fn store_urls_are_redacted() {
    assert_eq!(
        store::redact_url("postgres://nbdgm:S3cret@127.0.0.1:5432/nbdgm"),
        "postgres://nbdgm:…@127.0.0.1:5432/nbdgm"
    );
    assert_eq!(
        store::redact_url("postgresql:///nbdgm?host=/run/postgresql"),
        "postgresql:///nbdgm?host=/run/postgresql"
    );
    assert_eq!(store::redact_url("/var/lib/x\n.db"), "/var/lib/x\\n.db");
}
