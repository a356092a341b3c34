//! `nbdgm_audit::watch` in a network namespace of the lab (the loop runs in-process on a
//! thread inside the namespace): nmbd starts, the drop rule goes, comes back, is shadowed by
//! an accept rule, a new interface appears: one alert each, no repeats over several more
//! polls. Then the same for iptables. ufw is not tested here: its state lives in /etc/ufw
//! and cannot be confined to a namespace.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_audit::drift::{DriftAlert, DriftKind};
use nbdgm_audit::watch::{self, WatchEvent, WatchOptions, WatchSummary};
use nbdgm_lab::{Host, Lab, LabSpec};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

struct Watcher {
    stop: Arc<AtomicBool>,
    alerts: Arc<Mutex<Vec<DriftAlert>>>,
    baseline: Arc<AtomicBool>,
    handle: JoinHandle<WatchSummary>,
}

impl Watcher {
    /// The loop on a thread inside `host`'s namespace, polling every second.
    fn start(host: &Host) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let alerts = Arc::new(Mutex::new(Vec::new()));
        let baseline = Arc::new(AtomicBool::new(false));
        let (s, a, b) = (stop.clone(), alerts.clone(), baseline.clone());
        let handle = host
            .in_netns(move || {
                // A thread started here inherits the namespace.
                std::thread::spawn(move || {
                    let opts = WatchOptions {
                        interval: Duration::from_secs(1),
                        duration: Some(Duration::from_secs(240)),
                        ..WatchOptions::default()
                    };
                    watch::run(&opts, &s, |ev| match ev {
                        WatchEvent::Baseline(_) => b.store(true, Ordering::SeqCst),
                        WatchEvent::Alert(x) => a.lock().unwrap().push(x.clone()),
                        WatchEvent::Started { subscribed, failed } => {
                            eprintln!("subscribed {subscribed:?}, failed {failed:?}")
                        }
                        WatchEvent::FirewallUnread(w) => eprintln!("firewall unread: {w}"),
                    })
                })
            })
            .unwrap();
        let w = Watcher {
            stop,
            alerts,
            baseline,
            handle,
        };
        assert!(
            wait(Duration::from_secs(30), || w
                .baseline
                .load(Ordering::SeqCst)),
            "no baseline"
        );
        w
    }

    fn alerts(&self) -> Vec<DriftAlert> {
        self.alerts.lock().unwrap().clone()
    }

    fn count(&self, kind: DriftKind) -> usize {
        self.alerts().iter().filter(|a| a.alert == kind).count()
    }

    /// Waits (≤ 20 s) until there are `n` alerts of `kind`.
    fn expect(&self, kind: DriftKind, n: usize) -> DriftAlert {
        let ok = wait(Duration::from_secs(20), || self.count(kind) >= n);
        let all = self.alerts();
        assert!(ok, "no {kind:?} #{n}: {all:#?}");
        all.into_iter()
            .filter(|a| a.alert == kind)
            .nth(n - 1)
            .unwrap()
    }

    fn finish(self) -> WatchSummary {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
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

fn run(host: &Host, prog: &str, args: &[&str]) -> String {
    let out = host.output(prog, args).unwrap();
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The handle of the first rule of `inet nbt input` whose text contains `verdict`.
fn handle_of(host: &Host, verdict: &str) -> String {
    let text = run(
        host,
        "nft",
        &["-a", "list", "chain", "inet", "nbt", "input"],
    );
    text.lines()
        .find(|l| l.contains(verdict) && l.contains("# handle"))
        .and_then(|l| l.rsplit("# handle ").next())
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|| panic!("no {verdict} rule: {text}"))
}

const MATCH: [&str; 6] = [
    "meta",
    "l4proto",
    "{ tcp, udp }",
    "th",
    "dport",
    "{ 137-139, 445 }",
];

fn nft_rule(host: &Host, op: &str, verdict: &str) {
    let mut args = vec![op, "rule", "inet", "nbt", "input"];
    args.extend(MATCH);
    args.push(verdict);
    run(host, "nft", &args);
}

/// Settle: several more polls, then the alerts must not have changed.
fn no_repeats(w: &Watcher) {
    let before = w.alerts().len();
    std::thread::sleep(Duration::from_millis(3500));
    let after = w.alerts();
    assert_eq!(after.len(), before, "repeats: {:#?}", &after[before..]);
}

#[test]
fn nftables_drift_one_alert_each() {
    let t = "nftables_drift_one_alert_each";
    if !nbdgm_lab::require_or_skip(t) {
        return;
    }
    for tool in ["nft", "nmbd", "ip"] {
        if nbdgm_lab::tool_path(tool).is_none() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{t}: {tool} missing under CI=true");
            }
            eprintln!("SKIPPED {t}: {tool} not installed");
            return;
        }
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
    nft_rule(&a, "add", "drop");
    // A wildcard listener from the start: part of the baseline, closed.
    let _l445 = a
        .in_netns(|| std::net::TcpListener::bind("0.0.0.0:445"))
        .unwrap()
        .unwrap();
    let w = Watcher::start(&a);
    assert!(w.alerts().is_empty(), "clean baseline: {:#?}", w.alerts());

    let nmbd = nbdgm_lab::Nmbd::start(&a, Default::default()).unwrap();
    let l = w.expect(DriftKind::ListenerAppeared, 1);
    assert!(
        l.listeners
            .iter()
            .any(|x| x.command == "nmbd" && x.pid == nmbd.pid() && x.user == "root"),
        "{l:#?}"
    );
    assert!(l.ports.contains(&"137/udp".to_string()), "{l:#?}");
    no_repeats(&w);

    let drop = handle_of(&a, "drop");
    run(
        &a,
        "nft",
        &["delete", "rule", "inet", "nbt", "input", "handle", &drop],
    );
    let r = w.expect(DriftKind::RuleRemoved, 1);
    assert_eq!(
        r.rule.as_deref(),
        Some(format!("inet nbt input handle {drop}").as_str())
    );
    assert!(r.exposed, "nmbd listens: {r:#?}");
    assert_eq!(r.ports.len(), 5, "{r:#?}");
    no_repeats(&w);

    nft_rule(&a, "add", "drop");
    let c = w.expect(DriftKind::ExposureClosed, 1);
    assert_eq!(c.ended, Some(DriftKind::RuleRemoved));
    nft_rule(&a, "insert", "accept");
    let s = w.expect(DriftKind::RuleShadowed, 1);
    let (drop, accept) = (handle_of(&a, "drop"), handle_of(&a, "accept"));
    assert_eq!(
        s.rule.as_deref(),
        Some(format!("inet nbt input handle {drop}").as_str())
    );
    assert_eq!(s.by, [format!("inet nbt input handle {accept}")], "{s:#?}");
    no_repeats(&w);

    // A new link (a veth pair inside the namespace: no dummy module needed) with an address.
    run(
        &a,
        "ip",
        &[
            "link", "add", "nbtv0", "type", "veth", "peer", "name", "nbtv1",
        ],
    );
    run(&a, "ip", &["addr", "add", "203.0.113.5/24", "dev", "nbtv0"]);
    run(&a, "ip", &["link", "set", "nbtv1", "up"]);
    run(&a, "ip", &["link", "set", "nbtv0", "up"]);
    let i = w.expect(DriftKind::InterfaceNew, 1);
    assert_eq!(i.interface.as_deref(), Some("nbtv0"));
    assert!(i.addresses.contains(&"203.0.113.5".to_string()), "{i:#?}");
    assert!(i.ports.contains(&"445/tcp".to_string()), "{i:#?}");
    no_repeats(&w);

    let kinds: Vec<DriftKind> = w.alerts().iter().map(|a| a.alert).collect();
    assert_eq!(
        kinds,
        [
            DriftKind::ListenerAppeared,
            DriftKind::RuleRemoved,
            DriftKind::ExposureClosed,
            DriftKind::RuleShadowed,
            DriftKind::InterfaceNew
        ]
    );
    nmbd.stop().unwrap();
    let g = w.expect(DriftKind::ListenerGone, 1);
    assert!(g.title.contains("nmbd"), "{g:#?}");
    let summary = w.finish();
    assert_eq!(summary.drift.facts_dropped, 0);
    assert!(
        summary.by_events >= 1,
        "change events were used: {summary:?}"
    );
}

#[test]
fn iptables_shadowing_and_removal() {
    let t = "iptables_shadowing_and_removal";
    if !nbdgm_lab::require_or_skip(t) {
        return;
    }
    if nbdgm_lab::tool_path("iptables").is_none() || nbdgm_lab::tool_path("ip6tables").is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{t}: iptables missing under CI=true");
        }
        eprintln!("SKIPPED {t}: iptables/ip6tables not installed");
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).unwrap();
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let drop = [
        "INPUT",
        "-p",
        "udp",
        "-m",
        "multiport",
        "--dports",
        "137,138",
        "-j",
        "DROP",
    ];
    let mut add = vec!["-A"];
    add.extend(drop);
    run(&a, "iptables", &add);
    // IPv6 closed too, so that the baseline is clean (the socket is IPv4, the verdict is
    // for every source).
    run(&a, "ip6tables", &add);
    let _u138 = a
        .in_netns(|| std::net::UdpSocket::bind("0.0.0.0:138"))
        .unwrap()
        .unwrap();
    let w = Watcher::start(&a);
    assert!(w.alerts().is_empty(), "{:#?}", w.alerts());

    let accept = [
        "-I", "INPUT", "1", "-p", "udp", "--dport", "138", "-j", "ACCEPT",
    ];
    run(&a, "iptables", &accept);
    let s = w.expect(DriftKind::RuleShadowed, 1);
    let rule = s.rule.clone().unwrap_or_default();
    assert!(
        rule.starts_with("iptables filter: -A INPUT -p udp") && rule.ends_with("-j DROP"),
        "{s:#?}"
    );
    assert_eq!(s.ports, ["138/udp"]);
    assert!(
        s.by.iter()
            .any(|b| b.contains("--dport 138") && b.contains("ACCEPT")),
        "{s:#?}"
    );
    assert!(s.exposed);
    no_repeats(&w);

    run(&a, "iptables", &["-D", "INPUT", "1"]);
    w.expect(DriftKind::ExposureClosed, 1);
    let mut del = vec!["-D"];
    del.extend(drop);
    run(&a, "iptables", &del);
    let r = w.expect(DriftKind::RuleRemoved, 1);
    assert_eq!(r.rule, s.rule);
    assert_eq!(r.ports, ["137/udp", "138/udp"]);
    no_repeats(&w);
    let kinds: Vec<DriftKind> = w.alerts().iter().map(|a| a.alert).collect();
    assert_eq!(
        kinds,
        [
            DriftKind::RuleShadowed,
            DriftKind::ExposureClosed,
            DriftKind::RuleRemoved
        ]
    );
    w.finish();
}

#[test]
fn burst_of_unrelated_changes_is_debounced_and_silent() {
    let t = "burst_of_unrelated_changes_is_debounced_and_silent";
    if !nbdgm_lab::require_or_skip(t) {
        return;
    }
    if nbdgm_lab::tool_path("nft").is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{t}: nft missing under CI=true");
        }
        eprintln!("SKIPPED {t}: nft not installed");
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
    nft_rule(&a, "add", "drop");
    let w = Watcher::start(&a);
    let start = Instant::now();
    for port in 2000..2030 {
        let p = port.to_string();
        run(
            &a,
            "nft",
            &[
                "add", "rule", "inet", "nbt", "input", "tcp", "dport", &p, "accept",
            ],
        );
    }
    std::thread::sleep(Duration::from_millis(2500));
    let secs = start.elapsed().as_secs();
    let s = w.finish();
    assert_eq!(s.drift.alerts, 0, "unrelated rules: no alert: {s:?}");
    assert!(s.changes + s.changes_dropped >= 30, "{s:?}");
    // Coalesced: at most one audit a second (plus the last burst), not one per change.
    assert!(
        s.by_events >= 1 && s.by_events <= secs + 2,
        "{s:?} in {secs}s"
    );
}
