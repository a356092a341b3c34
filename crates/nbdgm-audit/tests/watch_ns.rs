//! `nbdgm_audit::watch` in a network namespace of the lab (the loop runs in-process on a
//! thread inside the namespace): nmbd starts, the drop rule goes, comes back, is shadowed by
//! an accept rule, a new interface appears: one alert each, no repeats over several more
//! polls. Then the same for iptables, and for ufw: the namespace gets its own copy of
//! /etc/ufw and /etc/default under /etc/netns/NS/ (bind-mounted over /etc by `ip netns exec`
//! and, for the watch thread, by a private mount namespace of its own), and the host's ufw
//! files and netfilter rules are checked to be unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_audit::drift::{DriftAlert, DriftKind};
use nbdgm_audit::watch::{self, WatchEvent, WatchOptions, WatchSummary};
use nbdgm_lab::{Host, Lab, LabSpec};
use std::path::{Path, PathBuf};
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
        Watcher::start_with(host, None)
    }

    /// Like [`Watcher::start`]; with `etc`, the thread first gets a private mount namespace
    /// in which every entry of `etc` is bind-mounted over the same name in /etc, as `ip netns
    /// exec` does (the commands the loop runs, such as `ufw status`, then see that /etc).
    fn start_with(host: &Host, etc: Option<PathBuf>) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let alerts = Arc::new(Mutex::new(Vec::new()));
        let baseline = Arc::new(AtomicBool::new(false));
        let (s, a, b) = (stop.clone(), alerts.clone(), baseline.clone());
        let handle = host
            .in_netns(move || {
                // A thread started here inherits the namespace.
                std::thread::spawn(move || {
                    if let Some(etc) = &etc {
                        private_etc(etc);
                    }
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

/// Table `inet nbt` with an accepting input chain, for the rules of [`nft_rule`].
fn nft_input_chain(host: &Host) {
    run(host, "nft", &["add", "table", "inet", "nbt"]);
    run(
        host,
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
    if !nbdgm_lab::require_tools_or_skip(t, &["nft", "nmbd", "ip"]) {
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).unwrap();
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    nft_input_chain(&a);
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
    if !nbdgm_lab::require_tools_or_skip(t, &["iptables", "ip6tables"]) {
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
    if !nbdgm_lab::require_tools_or_skip(t, &["nft"]) {
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).unwrap();
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    nft_input_chain(&a);
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

/// This thread into a mount namespace of its own (its mounts never reach the host: `/` is
/// made a slave first), with every entry of `etc` bind-mounted over /etc/ENTRY.
fn private_etc(etc: &Path) {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
    let mount = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new("mount")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    mount(&["--make-rslave".as_ref(), "/".as_ref()]);
    for e in std::fs::read_dir(etc).unwrap() {
        let e = e.unwrap();
        let target = Path::new("/etc").join(e.file_name());
        mount(&["--bind".as_ref(), e.path().as_os_str(), target.as_os_str()]);
    }
}

/// /etc/netns/NS with copies of the host's /etc/ufw and /etc/default, removed on drop
/// (also when the test panics).
struct NetnsEtc {
    dir: PathBuf,
}

impl NetnsEtc {
    fn new(netns: &str) -> NetnsEtc {
        let dir = Path::new("/etc/netns").join(netns);
        assert!(!dir.exists(), "{} exists already", dir.display());
        std::fs::create_dir_all(&dir).unwrap();
        let guard = NetnsEtc { dir };
        for sub in ["ufw", "default"] {
            let out = std::process::Command::new("cp")
                .arg("-a")
                .arg(Path::new("/etc").join(sub))
                .arg(guard.dir.join(sub))
                .output()
                .unwrap();
            assert!(out.status.success(), "cp -a /etc/{sub}: {out:?}");
        }
        guard
    }
}

impl Drop for NetnsEtc {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("cannot remove {}: {e}", self.dir.display());
        }
        // /etc/netns itself only when nothing else is in it.
        let _ = std::fs::remove_dir("/etc/netns");
    }
}

/// The host's ufw state and netfilter rules: every file under /etc/ufw, /etc/default/ufw,
/// the sysctls of /etc/ufw/sysctl.conf, and the rule listings (without the dated comment
/// lines of the save tools).
fn host_firewall_state() -> Vec<(String, Vec<u8>)> {
    fn files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                files(&p, out);
            } else {
                out.push((
                    p.display().to_string(),
                    std::fs::read(&p).unwrap_or_default(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    files(Path::new("/etc/ufw"), &mut out);
    let d = Path::new("/etc/default/ufw");
    out.push((
        d.display().to_string(),
        std::fs::read(d).unwrap_or_default(),
    ));
    // The host's values of the sysctls `ufw enable` sets (in the namespace only).
    let sysctl = std::fs::read_to_string("/etc/ufw/sysctl.conf").unwrap_or_default();
    for key in sysctl
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.trim())
    {
        if key.starts_with('#') || key.contains("..") {
            continue;
        }
        let p = Path::new("/proc/sys").join(key);
        out.push((
            p.display().to_string(),
            std::fs::read(&p).unwrap_or_default(),
        ));
    }
    for (tool, args) in [
        ("iptables-save", &[][..]),
        ("ip6tables-save", &[][..]),
        ("nft", &["list", "ruleset"][..]),
    ] {
        let Some(bin) = nbdgm_lab::tool_path(tool) else {
            continue;
        };
        let o = std::process::Command::new(bin).args(args).output().unwrap();
        let text: Vec<u8> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(|l| format!("{l}\n").into_bytes())
            .collect();
        out.push((tool.to_string(), text));
    }
    out
}

#[test]
fn ufw_removal_and_shadowing() {
    let t = "ufw_removal_and_shadowing";
    if !nbdgm_lab::require_tools_or_skip(t, &["ufw", "iptables", "mount", "cp"]) {
        return;
    }
    let host_before = host_firewall_state();
    let lab = Lab::new(LabSpec::one_subnet()).unwrap();
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let etc = NetnsEtc::new(a.netns());
    // Allow by default, so that the deny rules are what closes the ports; the denies as
    // `nbdgm firewall --backend ufw` adds them.
    run(&a, "ufw", &["default", "allow", "incoming"]);
    run(&a, "ufw", &["--force", "enable"]);
    for spec in ["445/tcp", "139/tcp", "138/udp", "137/udp"] {
        run(&a, "ufw", &["prepend", "deny", spec, "comment", "nbdgm"]);
    }
    let status = run(&a, "ufw", &["status", "verbose"]);
    assert!(status.contains("Status: active"), "{status}");
    let _l139 = a
        .in_netns(|| std::net::TcpListener::bind("0.0.0.0:139"))
        .unwrap()
        .unwrap();
    let w = Watcher::start_with(&a, Some(etc.dir.clone()));
    assert!(w.alerts().is_empty(), "clean baseline: {:#?}", w.alerts());

    let deny139 = "ufw rule: 139/tcp DENY IN Anywhere # nbdgm";
    run(&a, "ufw", &["delete", "deny", "139/tcp"]);
    let r = w.expect(DriftKind::RuleRemoved, 1);
    assert_eq!(r.rule.as_deref(), Some(deny139), "{r:#?}");
    assert_eq!(r.ports, ["139/tcp"]);
    assert!(r.exposed, "the listener on 139: {r:#?}");
    no_repeats(&w);
    assert_eq!(w.count(DriftKind::RuleRemoved), 1, "{:#?}", w.alerts());

    run(
        &a,
        "ufw",
        &["prepend", "deny", "139/tcp", "comment", "nbdgm"],
    );
    let c = w.expect(DriftKind::ExposureClosed, 1);
    assert_eq!(c.ended, Some(DriftKind::RuleRemoved));
    // ufw takes `allow 139/tcp` for the deny's own rule (it skips the insert, or turns
    // the deny into an allow); an allow of 139 for both protocols above it shadows it.
    let out = run(&a, "ufw", &["insert", "1", "allow", "139"]);
    assert!(out.contains("Rule inserted"), "{out}");
    let s = w.expect(DriftKind::RuleShadowed, 1);
    assert_eq!(s.rule.as_deref(), Some(deny139), "{s:#?}");
    assert_eq!(s.by, ["ufw rule: 139 ALLOW IN Anywhere"], "{s:#?}");
    assert_eq!(s.ports, ["139/tcp"]);
    assert!(s.exposed);
    no_repeats(&w);
    let kinds: Vec<DriftKind> = w.alerts().iter().map(|a| a.alert).collect();
    assert_eq!(
        kinds,
        [
            DriftKind::RuleRemoved,
            DriftKind::ExposureClosed,
            DriftKind::RuleShadowed
        ]
    );
    let summary = w.finish();
    assert_eq!(summary.drift.firewall_unread, 0, "{summary:?}");
    let netns = a.netns().to_string();
    drop(etc);
    drop(lab);
    assert!(!Path::new("/etc/netns").join(netns).exists());
    let host_after = host_firewall_state();
    for (b, f) in host_before.iter().zip(&host_after) {
        assert!(b == f, "the host's {} changed", b.0);
    }
    assert_eq!(host_before.len(), host_after.len());
}
