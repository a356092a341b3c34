//! Issue 15 §1, "never claim what was not seen", against real hosts in namespaces: the
//! monitor (real prober, in the monitor host's namespace) probes (a) an address where no
//! host exists with a 1 s timeout, (b) a host that drops everything, (c) a host that
//! rejects everything (TCP reset, ICMP port unreachable) and (d) a host listening on
//! 139/tcp; `Store::latest` must show each probe's own state with its evidence, the verdict
//! apart, and `host` up only with evidence from the host. Plus `Store::latest` on SQLite.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod monitor_support;

use chrono::Utc;
use monitor_support::*;
use nbdgm_monitor::config::MonitorConfig;
use nbdgm_monitor::engine::{AlertKind, Key};
use nbdgm_monitor::evidence::{self, HostObservation, Neighbours};
use nbdgm_monitor::store::{LatestRow, NewChange, Store, Verdict};
use nbdgm_monitor::{Monitor, RealProber};
use nbdgm_probe::probe::{HostResult, Port, PortState};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOHOST: &str = "198.51.100.99";
const DROP: &str = "198.51.100.11";
const REJECT: &str = "198.51.100.12";
const LISTEN: &str = "198.51.100.13";

fn row<'a>(rows: &'a [LatestRow], check: &str, port: &str) -> Option<&'a LatestRow> {
    rows.iter().find(|r| r.check == check && r.port == port)
}

fn state<'a>(rows: &'a [LatestRow], check: &str, port: &str) -> Option<&'a str> {
    row(rows, check, port).and_then(|r| r.state.as_deref())
}

fn nft(host: &nbdgm_lab::Host, rules: &str) {
    let path = host.lab_dir().join(format!("{}.nft", host.name()));
    std::fs::write(&path, rules).unwrap();
    let o = host.output("nft", ["-f", path.to_str().unwrap()]).unwrap();
    assert!(o.status.success(), "nft: {o:?}");
}

fn config(db: &std::path::Path) -> MonitorConfig {
    let check = |name: &str, target: &str| {
        format!(
            "[[check]]\nname = \"{name}\"\ntargets = [\"{target}\"]\n\
             ports = [\"137/udp\", \"138/udp\", \"138/tcp\", \"139/tcp\", \"445/tcp\"]\n\
             expect = \"closed\"\ninterval = \"1s\"\ntimeout = \"1s\"\nretries = 0\n\
             confirmations = 2\n"
        )
    };
    let text = format!(
        "[store]\nurl = \"{}\"\n{}{}{}{}",
        db.display(),
        check("nohost", NOHOST),
        check("drop", DROP),
        check("reject", REJECT),
        check("listen", LISTEN),
    );
    MonitorConfig::parse(&text, None).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn states_and_host_evidence_in_namespaces() {
    use nbdgm_lab::{Lab, LabSpec};
    const T: &str = "states_and_host_evidence_in_namespaces";
    if !nbdgm_lab::require_or_skip(T) {
        return;
    }
    if nbdgm_lab::tool_path("nft").is_none() {
        skip(T, "nft not installed");
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).unwrap();
    let mh = lab.add_host("m", "198.51.100.20/24").unwrap();
    let drop_h = lab.add_host("b", &format!("{DROP}/24")).unwrap();
    let reject_h = lab.add_host("c", &format!("{REJECT}/24")).unwrap();
    let listen_h = lab.add_host("d", &format!("{LISTEN}/24")).unwrap();
    nft(
        &drop_h,
        "table ip f {\n chain in { type filter hook input priority 0; policy drop; }\n}\n",
    );
    nft(
        &reject_h,
        "table ip f {\n chain in { type filter hook input priority 0;\n  \
         tcp dport { 138, 139, 445 } reject with tcp reset\n  \
         udp dport { 137, 138 } reject with icmp type port-unreachable\n }\n}\n",
    );
    // Port unreachables of two UDP ports every second exceed the default ICMP rate limit.
    let o = reject_h
        .output("sysctl", ["-w", "net.ipv4.icmp_ratelimit=0"])
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let listener = listen_h
        .in_netns(|| std::net::TcpListener::bind((LISTEN, 139)))
        .unwrap()
        .unwrap();

    let dir = TempDir::new("evidence");
    let cfg = config(&dir.path().join("e.db"));
    // The start-up warning, from this namespace's routes and neighbour settings.
    let warnings = mh
        .in_netns(|| evidence::short_timeout_warnings(&cfg.checks, &mut Neighbours::read()))
        .unwrap();
    let w = warnings
        .iter()
        .find(|w| w.contains("\"nohost\""))
        .unwrap_or_else(|| panic!("no warning for nohost: {warnings:?}"));
    assert!(
        w.contains("timeout 1s") && w.contains("resolution time 3s") && w.contains(mh.iface()),
        "{w}"
    );
    let (rt, mon) = mh
        .in_netns(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let m = rt
                .block_on(Monitor::start(cfg.clone(), Arc::new(RealProber::new())))
                .unwrap();
            (rt, m)
        })
        .unwrap();
    let store = mon.store();
    let latest = || store.lock().unwrap().latest(None).unwrap();
    let value = |rows: &[LatestRow], c: &str, p: &str| {
        row(rows, c, p)
            .and_then(|r| r.value.clone())
            .unwrap_or_default()
    };
    let settled = |rows: &[LatestRow]| {
        value(rows, "drop", "139/tcp") == "closed"
            && value(rows, "reject", "445/tcp") == "closed"
            && value(rows, "reject", "host") == "up"
            && value(rows, "listen", "139/tcp") == "open"
            && row(rows, "nohost", "445/tcp").and_then(|r| r.run_id) > Some(3)
    };
    let end = Instant::now() + Duration::from_secs(60);
    let mut rows = latest();
    while !settled(&rows) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(250));
        rows = latest();
    }
    mh.in_netns(|| rt.block_on(mon.stop())).unwrap();
    drop(rt);
    drop(listener);
    let dump = format!("{rows:#?}");
    for r in &rows {
        eprintln!(
            "{} {} {:?} {} {:?}",
            r.check, r.port, r.state, r.verdict, r.evidence
        );
    }
    assert!(settled(&rows), "not settled in 60 s: {dump}");
    let ports = ["137/udp", "138/udp", "138/tcp", "139/tcp", "445/tcp"];

    // (a) No host, 1 s timeout: nothing seen, so nothing claimed.
    for p in ports {
        let r = row(&rows, "nohost", p).unwrap_or_else(|| panic!("nohost {p} has no row: {dump}"));
        let s = r.state.as_deref().unwrap();
        assert!(
            s == "unknown" || s == "host-down",
            "nohost {p}: {s}: {dump}"
        );
        assert_eq!(r.verdict, Verdict::Unknown, "nohost {p}: {dump}");
        assert!(r.value.is_none(), "nohost {p} confirmed: {dump}");
    }
    let unknown = ports
        .iter()
        .filter(|p| state(&rows, "nohost", p) == Some("unknown"))
        .count();
    assert!(unknown > 0, "{dump}");
    let e = row(&rows, "nohost", "137/udp")
        .unwrap()
        .evidence
        .clone()
        .unwrap();
    if state(&rows, "nohost", "137/udp") == Some("unknown") {
        assert!(
            e.contains("shorter than the neighbour resolution time 3s"),
            "{e}"
        );
    }
    let host = row(&rows, "nohost", "host").unwrap();
    assert_ne!(host.state.as_deref(), Some("up"), "{dump}");
    assert_ne!(host.value.as_deref(), Some("up"), "{dump}");

    // (b) Drops everything: the probe's own filtered / open|filtered, verdict from the
    // confirmed value, and no evidence of the host.
    for p in ["138/tcp", "139/tcp", "445/tcp"] {
        assert_eq!(
            state(&rows, "drop", p),
            Some("filtered"),
            "drop {p}: {dump}"
        );
        assert_eq!(
            row(&rows, "drop", p).unwrap().verdict,
            Verdict::Ok,
            "{dump}"
        );
    }
    for p in ["137/udp", "138/udp"] {
        assert_eq!(
            state(&rows, "drop", p),
            Some("open|filtered"),
            "drop {p}: {dump}"
        );
    }
    let host = row(&rows, "drop", "host").unwrap();
    assert_eq!(host.state.as_deref(), Some("unknown"), "{dump}");
    assert_eq!(host.value, None, "{dump}");
    assert_eq!(host.verdict, Verdict::Unknown);

    // (c) Rejects everything: closed, and the host is up on its own reset / ICMP error.
    for p in ports {
        assert_eq!(
            state(&rows, "reject", p),
            Some("closed"),
            "reject {p}: {dump}"
        );
    }
    let e = row(&rows, "reject", "137/udp")
        .unwrap()
        .evidence
        .clone()
        .unwrap();
    assert!(e.contains(&format!("from {REJECT}")), "{e}");
    let e = row(&rows, "reject", "445/tcp")
        .unwrap()
        .evidence
        .clone()
        .unwrap();
    assert!(e.contains("TCP reset"), "{e}");
    let host = row(&rows, "reject", "host").unwrap();
    assert_eq!(host.state.as_deref(), Some("up"));
    assert_eq!(host.verdict, Verdict::Ok);
    let e = host.evidence.clone().unwrap();
    assert!(
        e.contains(&format!("from {REJECT}")) || e.contains("TCP reset"),
        "{e}"
    );

    // (d) A listener on 139/tcp: open, a violation of expect = closed; the host is up.
    let r = row(&rows, "listen", "139/tcp").unwrap();
    assert_eq!(r.state.as_deref(), Some("open"), "{dump}");
    assert_eq!(r.verdict, Verdict::Violation);
    assert_eq!(r.expected.as_deref(), Some("closed"));
    assert_eq!(state(&rows, "listen", "445/tcp"), Some("closed"), "{dump}");
    assert_eq!(state(&rows, "listen", "host"), Some("up"), "{dump}");

    // A faster neighbour setting on the monitor's device makes 1 s long enough: no warning.
    let dev = mh.iface().to_owned();
    for (k, v) in [
        ("mcast_solicit", "1"),
        ("app_solicit", "0"),
        ("retrans_time_ms", "200"),
    ] {
        let o = mh
            .output("sysctl", ["-w", &format!("net.ipv4.neigh.{dev}.{k}={v}")])
            .unwrap();
        assert!(o.status.success(), "{o:?}");
    }
    let warnings = mh
        .in_netns(|| evidence::short_timeout_warnings(&cfg.checks, &mut Neighbours::read()))
        .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}

fn result(addr: &str, ports: &[(Port, PortState, &str)]) -> HostResult {
    HostResult {
        hostname: Some("fs1".into()),
        ..host_result(addr, ports)
    }
}

/// `Store::latest` on one store: rows for unconfirmed keys, the host row, the verdicts.
pub fn latest_round_trip(s: &mut Store) {
    let t0 = Utc::now();
    let r = result(
        "198.51.100.10",
        &[
            (
                Port::Ns137Udp,
                PortState::Closed,
                "ICMP type 3 code 3 (port unreachable) from 198.51.100.10",
            ),
            (Port::Dgm138Udp, PortState::Unknown, "no answer within 1s"),
            (
                Port::Ssn139Tcp,
                PortState::Open,
                "TCP handshake completed (SYN-ACK)",
            ),
        ],
    );
    let host = evidence::host_observation(&r);
    assert_eq!(host.state, "up");
    let run = s
        .record_run("c", t0, t0, std::slice::from_ref(&r), &[host])
        .unwrap();
    let commit = |s: &mut Store, port: &str, new: &str, expected: &str, bad: bool| {
        let key = Key {
            check: "c".into(),
            target: "198.51.100.10".into(),
            port: port.into(),
        };
        s.commit_change(&NewChange {
            key: &key,
            old: None,
            new,
            kind: bad.then_some(AlertKind::PortNewOpen),
            expected,
            bad,
            in_maintenance: false,
            at: t0,
        })
        .unwrap();
    };
    commit(s, "137/udp", "closed", "closed", false);
    commit(s, "138/udp", "closed", "closed", false);
    commit(s, "139/tcp", "open", "closed", true);
    commit(s, "service", "FS1<20>", "", false);
    let rows = s.latest(Some("c")).unwrap();
    let ports: Vec<&str> = rows.iter().map(|r| r.port.as_str()).collect();
    assert_eq!(ports, ["host", "137/udp", "138/udp", "139/tcp", "service"]);
    let h = &rows[0];
    assert_eq!(h.state.as_deref(), Some("up"));
    assert_eq!(h.verdict, Verdict::Unknown, "host has no confirmed value");
    assert!(h
        .evidence
        .as_deref()
        .unwrap()
        .starts_with("137/udp closed: ICMP"));
    assert_eq!(rows[1].verdict, Verdict::Ok);
    assert_eq!(rows[1].run_id, Some(run));
    assert_eq!(rows[1].rtt_ms, Some(1.5));
    assert_eq!(rows[1].hostname.as_deref(), Some("fs1"));
    assert_eq!(rows[2].state.as_deref(), Some("unknown"));
    assert_eq!(rows[2].value.as_deref(), Some("closed"));
    assert_eq!(
        rows[2].verdict,
        Verdict::Unknown,
        "latest result saw nothing"
    );
    assert_eq!(rows[3].verdict, Verdict::Violation);
    assert_eq!(rows[3].expected.as_deref(), Some("closed"));
    assert_eq!(rows[4].state, None);
    assert_eq!(rows[4].value.as_deref(), Some("FS1<20>"));
    assert_eq!(rows[4].hostname.as_deref(), Some("fs1"));
    assert_eq!(rows[4].verdict, Verdict::Ok);
    // A newer run wins; another check is filtered out; the host row follows the run.
    let t1 = t0 + chrono::Duration::seconds(1);
    let r2 = result(
        "198.51.100.10",
        &[(
            Port::Ssn139Tcp,
            PortState::Filtered,
            "no answer to 1 SYN(s)",
        )],
    );
    let h2 = HostObservation {
        address: r2.address,
        state: "unknown",
        evidence: "none".into(),
    };
    s.record_run("c", t1, t1, std::slice::from_ref(&r2), &[h2])
        .unwrap();
    s.record_cycle("other", t1, t1, &[r2]).unwrap();
    let rows = s.latest(Some("c")).unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0].state.as_deref(), Some("unknown"));
    assert_eq!(rows[3].state.as_deref(), Some("filtered"));
    assert_eq!(rows[3].value.as_deref(), Some("open"));
    assert_eq!(
        rows[1].state.as_deref(),
        Some("closed"),
        "older result kept"
    );
    assert_eq!(s.latest(None).unwrap().len(), 6);
    let json = serde_json::to_value(&rows[3]).unwrap();
    assert_eq!(json["verdict"], "violation");
    assert_eq!(json["state"], "filtered");
}

#[test]
fn latest_on_sqlite() {
    let dir = TempDir::new("latest");
    let mut s = Store::open(dir.path().join("l.db").to_str().unwrap(), "t").unwrap();
    latest_round_trip(&mut s);
}

#[test]
fn latest_on_postgres() {
    let Some(pg) = PgCluster::start("latest_on_postgres") else {
        return;
    };
    let url = pg.database("latest");
    let mut s = Store::open(&url, "t").unwrap();
    latest_round_trip(&mut s);
}
