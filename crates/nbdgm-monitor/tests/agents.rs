//! Vantage points on loopback: the `[agents]`/`[[agent]]` configuration, the validation of
//! pushed cycles, the agent API over TLS (tokens, 401, assignment, targets, idempotence,
//! body cap), and an agent (scripted prober) that buffers while the central is stopped
//! and delivers in order, once, after its restart. The namespace test with real probes
//! and a firewall that differs by source is `crates/nbdgm/tests/monitor_agents.rs`.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod monitor_support;

use chrono::Utc;
use monitor_support::host_result;
use nbdgm_monitor::agent::client::{self, AgentOptions, Client, ClientError};
use nbdgm_monitor::agent::proto::{self, Batch, Cycle, TargetSet};
use nbdgm_monitor::config::MonitorConfig;
use nbdgm_monitor::store::{Query, Store};
use nbdgm_monitor::{Monitor, ScriptedProber};
use nbdgm_probe::probe::{HostResult, Port, PortState};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const INSIDE_TOKEN: &str = "inside-token-0123456789abcdef";
const OUTSIDE_TOKEN: &str = "outside-token-0123456789abcdef";

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn config(dir: &Path, listen: &str, interval: &str) -> MonitorConfig {
    let token_file = dir.join("inside.token");
    std::fs::write(&token_file, format!("{INSIDE_TOKEN}\n")).unwrap();
    let outside = hex(&nbdgm_monitor::config::agents::token_digest(OUTSIDE_TOKEN));
    let text = format!(
        r#"
[store]
url = "{db}"
instance = "central"
[agents]
listen = "{listen}"
tls_cert = "{cert}"
tls_key = "{key}"
[[agent]]
name = "inside"
location = "lan"
token_file = "{token}"
[[agent]]
name = "outside"
location = "wan"
token_sha256 = "{outside}"
[[check]]
name = "exp"
targets = ["198.51.100.10", "203.0.113.0/28"]
ports = ["139/tcp", "445/tcp"]
interval = "{interval}"
confirmations = 1
agents = ["inside", "outside"]
[[check]]
name = "other"
targets = ["198.51.100.11"]
ports = ["139/tcp"]
interval = "1h"
"#,
        db = dir.join("m.db").display(),
        cert = dir.join("cert.pem").display(),
        key = dir.join("key.pem").display(),
        token = token_file.display(),
    );
    MonitorConfig::parse(&text, None).unwrap_or_else(|e| panic!("{e}"))
}

fn host(addr: &str, p139: PortState) -> HostResult {
    let mut h = host_result(addr, &[(Port::Ssn139Tcp, p139, "test")]);
    h.ports[0].rtt_ms = Some(1.0);
    h
}

fn cycle(check: &str, results: Vec<HostResult>) -> Cycle {
    let now = Utc::now();
    Cycle {
        id: client::cycle_id(),
        check: check.into(),
        started: now - chrono::Duration::milliseconds(20),
        finished: now,
        results,
    }
}

fn parse_err(text: &str) -> String {
    MonitorConfig::parse(text, None).unwrap_err().to_string()
}

#[test]
fn agent_configuration_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "127.0.0.1:0", "1h");
    let a = cfg.agents.as_ref().unwrap();
    assert_eq!(a.agents.len(), 2);
    assert_eq!(a.agents[0].location, "lan");
    assert_eq!(
        a.agents[0].token_sha256,
        nbdgm_monitor::config::agents::token_digest(INSIDE_TOKEN)
    );
    assert!(!format!("{cfg:?}").contains(INSIDE_TOKEN));
    assert_eq!(cfg.checks[0].agents, ["inside", "outside"]);
    assert!(cfg.checks[1].agents.is_empty());

    let check = "[[check]]\ntargets = [\"198.51.100.10\"]\n";
    let sha = format!("token_sha256 = \"{}\"\n", "ab".repeat(32));
    let agents = "[agents]\nlisten = \"127.0.0.1:0\"\nallow_plaintext = true\n";
    let e = parse_err(&format!("{check}agents = [\"dmz\"]\n"));
    assert!(e.contains("check[0].agents") && e.contains("dmz"), "{e}");
    let e = parse_err(&format!("{check}[[agent]]\nname = \"a\"\n{sha}"));
    assert!(e.contains("[agents]"), "{e}");
    let e = parse_err(&format!("{check}[agents]\nlisten = \"127.0.0.1:0\"\n"));
    assert!(
        e.contains("agents.tls_cert") && e.contains("allow_plaintext"),
        "{e}"
    );
    let e = parse_err(&format!(
        "{check}{agents}[[agent]]\nname = \"a\"\nlocation = \"x@y\"\n{sha}"
    ));
    assert!(e.contains("agent[0].location"), "{e}");
    let e = parse_err(&format!(
        "{check}{agents}[[agent]]\nname = \"a\"\nlocation = \"l\"\n{sha}[[agent]]\nname = \"b\"\nlocation = \"l\"\n{sha}"
    ));
    assert!(e.contains("agent[1].location"), "{e}");
    let e = parse_err(&format!("{check}{agents}[[agent]]\nname = \"a\"\n"));
    assert!(e.contains("token_file"), "{e}");
    let e = parse_err(&format!(
        "{check}{agents}[[agent]]\nname = \"a\"\ntoken_sha256 = \"xyz\"\n"
    ));
    assert!(e.contains("token_sha256"), "{e}");
    let short = dir.path().join("short.token");
    std::fs::write(&short, "short\n").unwrap();
    let e = parse_err(&format!(
        "{check}{agents}[[agent]]\nname = \"a\"\ntoken_file = \"{}\"\n",
        short.display()
    ));
    assert!(e.contains("at least 16"), "{e}");
    let e = parse_err("[[check]]\nname = \"a@b\"\ntargets = [\"198.51.100.10\"]\n");
    assert!(e.contains("check[0].name"), "{e}");
    let ok = format!("{check}{agents}[[agent]]\nname = \"a\"\n{sha}");
    let cfg = MonitorConfig::parse(&ok, None).unwrap();
    assert_eq!(cfg.agents.unwrap().agents[0].location, "a");
}

#[test]
fn pushed_cycles_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "127.0.0.1:0", "1h");
    // A host name target too (only in the check validated here: the central never resolves it).
    let mut check = cfg.checks[0].clone();
    check.targets.push("files.example".into());
    let check = &check;
    let set = TargetSet::of(check);
    let now = Utc::now();
    let ok = cycle(
        "exp",
        vec![
            host("198.51.100.10", PortState::Open),
            host("203.0.113.5", PortState::Filtered),
        ],
    );
    proto::validate_cycle(&ok, check, &set, now).unwrap();
    let mut named = ok.clone();
    named.results[0].address = "192.0.2.7".parse().unwrap();
    named.results[0].hostname = Some("Files.Example".into());
    proto::validate_cycle(&named, check, &set, now).unwrap();
    let bad = |f: &dyn Fn(&mut Cycle)| {
        let mut c = ok.clone();
        f(&mut c);
        proto::validate_cycle(&c, check, &set, now).unwrap_err()
    };
    assert!(bad(&|c| c.id = "xyz".into()).contains("cycle id"));
    assert!(bad(&|c| c.id = "0".repeat(65)).contains("cycle id"));
    assert!(
        bad(&|c| c.results[0].address = "198.51.100.99".parse().unwrap()).contains("not a target")
    );
    // .0/28 covers .0-.15 only.
    assert!(
        bad(&|c| c.results[1].address = "203.0.113.16".parse().unwrap()).contains("not a target")
    );
    assert!(bad(&|c| c.results[1].hostname = Some("evil.example".into())).contains("not a target"));
    assert!(bad(&|c| c.results[1].address = c.results[0].address).contains("twice"));
    assert!(bad(&|c| {
        c.results[0].hostname = Some("files.example".into());
        c.results[1].hostname = Some("FILES.example".into());
    })
    .contains("host name reported twice"));
    assert!(bad(&|c| c.results[0].ports[0].port = Port::Ns137Udp).contains("port"));
    assert!(bad(&|c| {
        let p = c.results[0].ports[0].clone();
        c.results[0].ports.push(p);
    })
    .contains("port"));
    assert!(bad(&|c| c.results[0].ports[0].evidence = "x".repeat(10_000)).contains("range"));
    assert!(bad(&|c| c.results[0].ports[0].rtt_ms = Some(f64::NAN)).contains("range"));
    assert!(bad(&|c| c.results[0].duration_ms = -1.0).contains("duration"));
    assert!(bad(&|c| c.finished = now + chrono::Duration::hours(1)).contains("times"));
    assert!(bad(&|c| c.started = c.finished + chrono::Duration::seconds(1)).contains("times"));
    assert!(bad(&|c| c.started = now - chrono::Duration::days(8)).contains("times"));
    assert!(bad(&|c| {
        c.results = (0..5000u32)
            .map(|i| host(&std::net::Ipv4Addr::from(i).to_string(), PortState::Open))
            .collect()
    })
    .contains("more than"));
    // What the central sends back to the agent makes the same check.
    let ac = proto::AgentCheck::from_check(check);
    let back = ac.to_check().unwrap();
    assert_eq!(
        (back.name.as_str(), &back.ports, back.interval),
        ("exp", &check.ports, check.interval)
    );
    let mut evil = ac.clone();
    evil.name = "../x".into();
    assert!(evil.to_check().is_err());
    evil = ac.clone();
    evil.targets = vec!["10.0.0.0/8".into()];
    assert!(evil.to_check().is_err());
    assert_eq!(proto::vantage_name("exp", "lan"), "exp@lan");
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn history(store: &mut Store, check: &str) -> Vec<nbdgm_monitor::store::ResultRow> {
    store
        .history(&Query {
            check: Some(check.into()),
            port: Some("139/tcp".into()),
            limit: 10_000,
            ..Query::default()
        })
        .unwrap()
}

#[test]
fn agent_api_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = nbdgm_lab::test_certs(dir.path(), "127.0.0.1").unwrap().ca;
    let cfg = config(dir.path(), "127.0.0.1:0", "1h");
    let rt = rt();
    let prober = Arc::new(ScriptedProber {
        path: dir.path().join("none"),
    });
    let m = rt
        .block_on(Monitor::start(cfg.clone(), prober.clone()))
        .unwrap();
    let url = format!("https://{}", m.agents_addr().unwrap());
    let inside = Client::new(&url, INSIDE_TOKEN, Some(&ca), false).unwrap();

    let reply = inside.checks().unwrap();
    assert_eq!(
        (reply.agent.as_str(), reply.location.as_str()),
        ("inside", "lan")
    );
    let names: Vec<&str> = reply.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["exp"]);

    // The server certificate is checked: not trusted by the webpki roots.
    let untrusting = Client::new(&url, INSIDE_TOKEN, None, false).unwrap();
    assert!(matches!(
        untrusting.checks(),
        Err(ClientError::Unavailable(_))
    ));
    // No plaintext unless asked for.
    let e = Client::new("http://127.0.0.1:1", INSIDE_TOKEN, None, false).unwrap_err();
    assert!(e.contains("plaintext"), "{e}");
    // A wrong token: 401, nothing stored.
    let wrong = Client::new(&url, "wrong-token-0123456789abcdef", Some(&ca), false).unwrap();
    assert!(matches!(
        wrong.checks(),
        Err(ClientError::Unauthorized(401))
    ));
    let c = cycle("exp", vec![host("198.51.100.10", PortState::Open)]);
    let batch = |location: &str, cycles: Vec<Cycle>| Batch {
        location: location.into(),
        cycles,
    };
    assert!(matches!(
        wrong.push(&batch("lan", vec![c.clone()])),
        Err(ClientError::Unauthorized(401))
    ));
    // Another agent's location: refused.
    assert!(matches!(
        inside.push(&batch("wan", vec![c.clone()])),
        Err(ClientError::Unauthorized(403))
    ));
    let store = m.store();
    assert!(history(&mut store.lock().unwrap(), "exp@lan").is_empty());

    let r = inside.push(&batch("lan", vec![c.clone()])).unwrap();
    assert_eq!((r.accepted, r.duplicates, r.rejected.len()), (1, 0, 0));
    let r = inside.push(&batch("lan", vec![c.clone()])).unwrap();
    assert_eq!(
        (r.accepted, r.duplicates),
        (0, 1),
        "a retried cycle is stored once"
    );
    let r = inside
        .push(&batch(
            "lan",
            vec![
                cycle("other", vec![host("198.51.100.11", PortState::Open)]),
                cycle("exp", vec![host("198.51.100.12", PortState::Open)]),
            ],
        ))
        .unwrap();
    assert_eq!((r.accepted, r.rejected.len()), (0, 2), "{r:?}");
    assert!(r.rejected[0].reason.contains("not assigned"));
    assert!(r.rejected[1].reason.contains("not a target"));

    let outside = Client::new(&url, OUTSIDE_TOKEN, Some(&ca), false).unwrap();
    let r = outside
        .push(&batch(
            "wan",
            vec![cycle(
                "exp",
                vec![host("198.51.100.10", PortState::Filtered)],
            )],
        ))
        .unwrap();
    assert_eq!(r.accepted, 1);
    {
        let mut s = store.lock().unwrap();
        let lan = history(&mut s, "exp@lan");
        assert_eq!(lan.len(), 1);
        assert_eq!(
            (lan[0].target.as_str(), lan[0].state.as_str()),
            ("198.51.100.10", "open")
        );
        let wan = history(&mut s, "exp@wan");
        assert_eq!(wan.len(), 1);
        assert_eq!(wan[0].state, "filtered");
        // Confirmed (confirmations = 1) like a local check: the engine ran.
        let cur = s.current(Some("exp@lan")).unwrap();
        assert!(
            cur.iter().any(|r| r.port == "139/tcp" && r.value == "open"),
            "{cur:?}"
        );
        assert!(history(&mut s, "other@lan").is_empty());
    }

    let metrics = m.metrics().encode();
    for line in [
        "nbdgm_agent_cycles_total{agent=\"inside\",location=\"lan\",result=\"accepted\"} 1",
        "nbdgm_agent_cycles_total{agent=\"inside\",location=\"lan\",result=\"duplicate\"} 1",
        "nbdgm_agent_cycles_total{agent=\"inside\",location=\"lan\",result=\"rejected\"} 2",
        "nbdgm_agent_unauthorized_total 2",
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
    assert!(metrics.contains("nbdgm_agent_last_seen_seconds{agent=\"outside\",location=\"wan\"}"));

    // A body over the cap: 413 before any parsing.
    let tls = client::client_tls(&ca).unwrap();
    let raw = ureq::AgentBuilder::new().tls_config(Arc::new(tls)).build();
    let big = vec![b' '; proto::MAX_BODY + 1024];
    let r = raw
        .post(&format!("{url}{}", proto::PATH_RESULTS))
        .set("Authorization", &format!("Bearer {INSIDE_TOKEN}"))
        .send_bytes(&big);
    assert!(matches!(r, Err(ureq::Error::Status(413, _))), "{r:?}");
    let r = raw
        .post(&format!("{url}{}", proto::PATH_RESULTS))
        .set("Authorization", &format!("Bearer {INSIDE_TOKEN}"))
        .send_string("{\"location\":\"lan\",\"cycles\":[{\"id\":1}]}");
    assert!(matches!(r, Err(ureq::Error::Status(400, _))), "{r:?}");

    // After a restart of the central (its memory of cycle ids gone) the store still knows.
    rt.block_on(m.stop());
    let m = rt.block_on(Monitor::start(cfg, prober)).unwrap();
    let url = format!("https://{}", m.agents_addr().unwrap());
    let inside = Client::new(&url, INSIDE_TOKEN, Some(&ca), false).unwrap();
    let r = inside.push(&batch("lan", vec![c.clone()])).unwrap();
    assert_eq!(
        (r.accepted, r.duplicates),
        (0, 1),
        "stored twice after a restart"
    );
    assert_eq!(history(&mut m.store().lock().unwrap(), "exp@lan").len(), 1);
    rt.block_on(m.stop());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Poll `f` every 100 ms for at most `limit`.
fn wait_for(limit: Duration, f: impl FnMut() -> bool) -> bool {
    nbdgm_lab::wait_until(limit, Duration::from_millis(100), f)
}

#[test]
fn agent_buffers_while_the_central_is_away() {
    let dir = tempfile::tempdir().unwrap();
    let ca = nbdgm_lab::test_certs(dir.path(), "127.0.0.1").unwrap().ca;
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = config(dir.path(), &listen, "300ms");
    let states = dir.path().join("states");
    std::fs::write(&states, "139/tcp open\n445/tcp closed\n").unwrap();
    let rt = rt();
    let central_prober = Arc::new(ScriptedProber {
        path: dir.path().join("none"),
    });
    let m = rt
        .block_on(Monitor::start(cfg.clone(), central_prober.clone()))
        .unwrap();
    let state_dir = dir.path().join("agent-state");
    let opts = AgentOptions {
        central: format!("https://{listen}"),
        token: INSIDE_TOKEN.into(),
        location: "lan".into(),
        ca_file: Some(ca.clone()),
        allow_plaintext: false,
        buffer_cycles: 1000,
        buffer_bytes: 1 << 20,
        state_dir: Some(state_dir.clone()),
        refresh: Duration::from_secs(1),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agent = rt.spawn(client::run_agent(
        opts,
        Arc::new(ScriptedProber { path: states }),
        stop_rx,
    ));
    let db = dir.path().join("m.db");
    let runs = |db: &Path| -> Vec<String> {
        let mut s = Store::open(db.to_str().unwrap(), "test").unwrap();
        history(&mut s, "exp@lan")
            .into_iter()
            .filter(|r| r.target == "198.51.100.10")
            .map(|r| r.ts)
            .collect()
    };
    assert!(
        wait_for(Duration::from_secs(20), || runs(&db).len() >= 2),
        "the agent's cycles never arrived"
    );
    assert!(state_dir.join("checks.json").exists());
    rt.block_on(m.stop());
    let before = runs(&db).len();
    let down = Utc::now();
    std::thread::sleep(Duration::from_millis(2500));
    let up = Utc::now();
    let m = rt.block_on(Monitor::start(cfg, central_prober)).unwrap();
    // The cycles probed while the central was down arrive (about 8 at 300 ms).
    let ts_in_outage = |ts: &Vec<String>| {
        ts.iter()
            .filter_map(|t| nbdgm_monitor::store::parse_ts(t))
            .filter(|t| *t > down && *t < up)
            .count()
    };
    assert!(
        wait_for(Duration::from_secs(30), || ts_in_outage(&runs(&db)) >= 3),
        "buffered cycles not delivered: {} before, {:?}",
        before,
        runs(&db)
    );
    let all = runs(&db);
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a cycle was stored twice: {all:?}");
    let mut sorted = all.clone();
    sorted.sort();
    // Newest first from history: delivered in order means the same order reversed.
    let mut rev = all.clone();
    rev.reverse();
    assert_eq!(rev, sorted, "cycles stored out of order");

    // Central down again, agent stopped: the unsent cycles are saved for the next start.
    rt.block_on(m.stop());
    std::thread::sleep(Duration::from_millis(800));
    stop_tx.send(true).unwrap();
    let r = rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), agent).await });
    r.expect("agent did not stop in time").unwrap().unwrap();
    let saved = std::fs::read_to_string(state_dir.join("buffer.jsonl")).unwrap_or_default();
    assert!(saved.lines().count() >= 1, "nothing saved");
    for line in saved.lines() {
        let c: Cycle = serde_json::from_str(line).unwrap();
        assert_eq!(c.check, "exp");
    }
}
