//! Unit tests of the drift engine: one alert per fact, no repeats while it holds, a new
//! alert after it went away and came back, the caps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn l(port: u16, proto: &str, addr: &str, pid: u32, command: &str) -> Listener {
    Listener {
        proto: proto.into(),
        port,
        address: addr.parse().unwrap(),
        pid,
        command: command.into(),
        user: "root".into(),
    }
}

/// A port closed by `drop` (an nftables rule id), or open to everyone accepted by `accept`.
fn port(name: &str, closed_by: Option<&str>, accept: Option<&str>, bound: &[&str]) -> PortState {
    let (verdict, open) = if closed_by.is_some() && accept.is_none() {
        (VerdictKind::Closed, AddrSet::empty())
    } else {
        (VerdictKind::OpenToEveryone, AddrSet::outside())
    };
    PortState {
        port: name.into(),
        verdict,
        open,
        undetermined: AddrSet::empty(),
        accept_by: accept.map(|a| vec![a.to_string()]).unwrap_or_default(),
        drops: if accept.is_none() {
            closed_by
                .map(|d| vec![(d.to_string(), AddrSet::outside())])
                .unwrap_or_default()
        } else {
            Vec::new()
        },
        reasons: Vec::new(),
        listening_outside: bound.iter().any(|b| !b.starts_with("127.")),
        bound: bound.iter().map(|b| b.parse().unwrap()).collect(),
    }
}

const DROP: &str = "inet t input handle 4";
const ACCEPT: &str = "inet t input handle 9";

struct World {
    listeners: Vec<Listener>,
    rules: Vec<&'static str>,
    accept: bool,
    addrs: Vec<(&'static str, &'static str)>,
}

impl World {
    fn new() -> Self {
        World {
            listeners: Vec::new(),
            rules: vec![DROP],
            accept: false,
            addrs: vec![("veth0", "198.51.100.10")],
        }
    }

    fn snap(&self) -> Snapshot {
        let closed_by = self.rules.contains(&DROP).then_some(DROP);
        let accept = self.accept.then_some(ACCEPT);
        let ports = ["137/udp", "138/udp"]
            .iter()
            .map(|p| {
                let bound: Vec<String> = self
                    .listeners
                    .iter()
                    .filter(|l| format!("{}/{}", l.port, l.proto) == *p)
                    .map(|l| l.address.to_string())
                    .collect();
                let bound: Vec<&str> = bound.iter().map(String::as_str).collect();
                port(p, closed_by, accept, &bound)
            })
            .collect();
        let mut rules: HashSet<String> = self.rules.iter().map(|r| r.to_string()).collect();
        if self.accept {
            rules.insert(ACCEPT.into());
        }
        Snapshot {
            listeners: self.listeners.clone(),
            ports,
            firewall_ok: true,
            rules,
            addresses: self
                .addrs
                .iter()
                .map(|(i, a)| (i.to_string(), a.parse().unwrap()))
                .collect(),
        }
    }
}

fn kinds(a: &[DriftAlert]) -> Vec<DriftKind> {
    a.iter().map(|a| a.alert).collect()
}

#[test]
fn scenario_one_alert_per_fact_and_no_repeats() {
    let mut w = World::new();
    let mut e = DriftEngine::new();
    assert!(e.observe(&w.snap()).is_empty(), "clean baseline: no alert");
    // nmbd binds 137 and 138 on two addresses: one alert naming it.
    w.listeners = vec![
        l(137, "udp", "0.0.0.0", 812, "nmbd"),
        l(138, "udp", "0.0.0.0", 812, "nmbd"),
        l(137, "udp", "198.51.100.10", 812, "nmbd"),
    ];
    let a = e.observe(&w.snap());
    assert_eq!(kinds(&a), [DriftKind::ListenerAppeared]);
    assert_eq!(a[0].ports, ["137/udp", "138/udp"]);
    assert_eq!(a[0].listeners.len(), 3);
    assert_eq!(a[0].severity, Severity::Medium, "closed by the firewall");
    assert!(a[0].title.contains("nmbd[812]"), "{}", a[0].title);
    for _ in 0..5 {
        assert!(e.observe(&w.snap()).is_empty(), "no repeats");
    }
    // The drop rule goes: one rule-removed for both ports, exposed.
    w.rules.clear();
    let a = e.observe(&w.snap());
    assert_eq!(kinds(&a), [DriftKind::RuleRemoved]);
    assert_eq!(a[0].rule.as_deref(), Some(DROP));
    assert_eq!(a[0].ports, ["137/udp", "138/udp"]);
    assert_eq!(a[0].severity, Severity::High);
    assert!(e.observe(&w.snap()).is_empty());
    // Back: the fact ends once.
    w.rules = vec![DROP];
    let a = e.observe(&w.snap());
    assert_eq!(kinds(&a), [DriftKind::ExposureClosed]);
    assert_eq!(a[0].ended, Some(DriftKind::RuleRemoved));
    assert!(e.observe(&w.snap()).is_empty());
    // An accept above the drop: shadowed, naming both rules.
    w.accept = true;
    let a = e.observe(&w.snap());
    assert_eq!(kinds(&a), [DriftKind::RuleShadowed]);
    assert_eq!(a[0].rule.as_deref(), Some(DROP));
    assert_eq!(a[0].by, [ACCEPT]);
    assert!(e.observe(&w.snap()).is_empty());
    // A new address while exposed: interface-new; a second address on it: no new alert.
    w.addrs.push(("dum0", "203.0.113.5"));
    let a = e.observe(&w.snap());
    assert_eq!(kinds(&a), [DriftKind::InterfaceNew]);
    assert_eq!(a[0].interface.as_deref(), Some("dum0"));
    assert_eq!(a[0].addresses, ["203.0.113.5"]);
    w.addrs.push(("dum0", "203.0.113.6"));
    assert!(e.observe(&w.snap()).is_empty());
    // nmbd stops: one listener-gone.
    w.listeners.clear();
    let a = e.observe(&w.snap());
    assert!(
        a.iter().any(|a| a.alert == DriftKind::ListenerGone),
        "{a:?}"
    );
    assert_eq!(
        a.iter()
            .filter(|a| a.alert == DriftKind::ListenerGone)
            .count(),
        1
    );
    // Nothing listens on dum0 any more: interface-new ends, the address becomes known.
    assert!(a.iter().any(|a| a.ended == Some(DriftKind::InterfaceNew)));
    assert!(e.observe(&w.snap()).is_empty());
    assert_eq!(e.stats().facts_dropped, 0);
}

#[test]
fn fact_that_comes_back_alerts_again_with_next_episode() {
    let mut w = World::new();
    let mut e = DriftEngine::new();
    e.observe(&w.snap());
    for round in 1..=3u64 {
        w.listeners = vec![l(139, "tcp", "0.0.0.0", 900 + round as u32, "smbd")];
        let a = e.observe(&w.snap());
        assert_eq!(kinds(&a), [DriftKind::ListenerAppeared]);
        assert_eq!(a[0].episode, round);
        assert!(e.observe(&w.snap()).is_empty());
        w.listeners.clear();
        assert_eq!(kinds(&e.observe(&w.snap())), [DriftKind::ListenerGone]);
    }
    // A new pid of the same command and user is the same fact.
    w.listeners = vec![l(139, "tcp", "0.0.0.0", 1, "smbd")];
    e.observe(&w.snap());
    w.listeners = vec![l(139, "tcp", "0.0.0.0", 2, "smbd")];
    assert!(e.observe(&w.snap()).is_empty());
}

#[test]
fn baseline_reports_exposure_once_and_its_recovery() {
    let mut w = World::new();
    w.rules.clear();
    w.listeners = vec![l(137, "udp", "0.0.0.0", 5, "nmbd")];
    let mut e = DriftEngine::new();
    let a = e.observe(&w.snap());
    assert_eq!(
        kinds(&a),
        [DriftKind::BaselineExposed],
        "listeners are not alerted"
    );
    assert_eq!(a[0].ports, ["137/udp"]);
    assert!(e.observe(&w.snap()).is_empty());
    // No known closer: nothing about rules. Closing it ends the fact.
    w.rules = vec![DROP];
    let a = e.observe(&w.snap());
    assert_eq!(kinds(&a), [DriftKind::ExposureClosed]);
    assert_eq!(a[0].ended, Some(DriftKind::BaselineExposed));
    // Opening it again: a removed rule now, not the baseline fact again.
    w.rules.clear();
    assert_eq!(kinds(&e.observe(&w.snap())), [DriftKind::RuleRemoved]);
}

#[test]
fn unreadable_firewall_carries_facts_over() {
    let mut w = World::new();
    let mut e = DriftEngine::new();
    e.observe(&w.snap());
    w.rules.clear();
    assert_eq!(kinds(&e.observe(&w.snap())), [DriftKind::RuleRemoved]);
    let mut s = w.snap();
    s.firewall_ok = false;
    s.rules.clear();
    assert!(e.observe(&s).is_empty(), "no end, no new fact");
    assert!(e.observe(&w.snap()).is_empty(), "still the same fact");
    assert_eq!(e.stats().firewall_unread, 1);
}

#[test]
fn loopback_listener_is_low_and_new_address_without_exposure_is_known() {
    let mut w = World::new();
    let mut e = DriftEngine::new();
    e.observe(&w.snap());
    w.listeners = vec![l(445, "tcp", "127.0.0.1", 7, "x\x1b[2J")];
    let a = e.observe(&w.snap());
    assert_eq!(a[0].severity, Severity::Low);
    assert_eq!(a[0].listeners[0].command, "x\x1b[2J", "JSON stays exact");
    // Closed everywhere: a new address is recorded as known, no alert, also later.
    w.addrs.push(("dum1", "203.0.113.9"));
    assert!(e.observe(&w.snap()).is_empty());
    w.rules.clear();
    let a = e.observe(&w.snap());
    assert_eq!(kinds(&a), [DriftKind::RuleRemoved], "not interface-new");
}

#[test]
fn fact_table_is_capped() {
    let mut e = DriftEngine::new();
    let w = World::new();
    e.observe(&w.snap());
    let mut s = w.snap();
    s.listeners = (0..(MAX_FACTS as u32 + 50))
        .map(|i| l(137, "udp", "0.0.0.0", i, &format!("p{i}")))
        .collect();
    let a = e.observe(&s);
    assert_eq!(a.len(), MAX_FACTS);
    assert_eq!(e.stats().facts_dropped, 50);
    assert_eq!(e.active_keys().len(), MAX_FACTS);
    // The untracked ones stay silent (they are dropped again, not alerted).
    assert!(e.observe(&s).is_empty());
    assert_eq!(e.stats().facts_dropped, 100);
}

#[test]
fn rule_ids_ignore_line_numbers() {
    assert_eq!(
        rule_id("iptables filter line 7: -A INPUT -p udp --dport 137 -j DROP"),
        "iptables filter: -A INPUT -p udp --dport 137 -j DROP"
    );
    assert_eq!(
        rule_id("ufw rule line 12: 137/udp DENY IN Anywhere"),
        "ufw rule: 137/udp DENY IN Anywhere"
    );
    // The IPv4 and IPv6 rows of one ufw rule, with ufw's column padding: one id.
    let v4 = "ufw rule line 8: 139/tcp                    DENY IN     Anywhere                   # nbdgm";
    let v6 = "ufw rule line 14: 139/tcp (v6)               DENY IN     Anywhere (v6)              # nbdgm";
    assert_eq!(rule_id(v4), "ufw rule: 139/tcp DENY IN Anywhere # nbdgm");
    assert_eq!(rule_id(v6), rule_id(v4));
    assert_eq!(rule_id("inet t input handle 4"), "inet t input handle 4");
    assert_eq!(rule_id("x line y: z"), "x line y: z");
}

/// Netfilter rules that cannot be evaluated (ufw's own chains use `-m addrtype`): the
/// verdicts then come from `ufw status`.
const UNDETERMINED_IPT: &str =
    "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m addrtype --dst-type LOCAL -j RETURN\nCOMMIT\n";

const DENY139: &str = "139/tcp                    DENY IN     Anywhere                   # nbdgm";
const DENY139_V6: &str =
    "139/tcp (v6)               DENY IN     Anywhere (v6)              # nbdgm";
const DENY137: &str = "137/udp                    DENY IN     Anywhere                   # nbdgm";
const DENY137_V6: &str =
    "137/udp (v6)               DENY IN     Anywhere (v6)              # nbdgm";

/// A snapshot of a host with ufw active (default allow incoming) and the table `rows`,
/// through the audit's own evaluation.
fn ufw_snap(rows: &[&str]) -> Snapshot {
    let text = format!(
        "Status: active\nLogging: on (low)\n\
         Default: allow (incoming), allow (outgoing), disabled (routed)\n\
         New profiles: skip\n\n\
         To                         Action      From\n\
         --                         ------      ----\n{}\n",
        rows.join("\n")
    );
    let mut view = crate::FirewallView::default();
    for name in ["iptables", "ip6tables"] {
        let rs = crate::ipt::parse(UNDETERMINED_IPT, name);
        view.ruleset.chains.extend(rs.chains);
    }
    view.ufw = Some(crate::ufw::parse(&text).ruleset);
    let local = AddrSet::empty();
    let report = crate::assemble(Vec::new(), &view, &local, Vec::new());
    assert!(
        report
            .ports
            .iter()
            .all(|p| p.firewall.evaluated_from == "ufw status"),
        "{report:#?}"
    );
    Snapshot::new(&report, &view, &local, Vec::new())
}

#[test]
fn ufw_delete_gives_one_rule_removed_for_both_rows() {
    let mut e = DriftEngine::new();
    assert!(e
        .observe(&ufw_snap(&[DENY137, DENY139, DENY137_V6, DENY139_V6]))
        .is_empty());
    // `ufw delete deny 139/tcp` removes both rows; the rows below move up a line.
    let a = e.observe(&ufw_snap(&[DENY137, DENY137_V6]));
    assert_eq!(kinds(&a), [DriftKind::RuleRemoved], "{a:#?}");
    assert_eq!(
        a[0].rule.as_deref(),
        Some("ufw rule: 139/tcp DENY IN Anywhere # nbdgm")
    );
    assert_eq!(a[0].ports, ["139/tcp"]);
    assert!(e.observe(&ufw_snap(&[DENY137, DENY137_V6])).is_empty());
    let a = e.observe(&ufw_snap(&[DENY139, DENY137, DENY139_V6, DENY137_V6]));
    assert_eq!(kinds(&a), [DriftKind::ExposureClosed], "{a:#?}");
}

#[test]
fn ufw_deleting_only_the_v6_row_is_a_removal_not_a_shadowing() {
    let mut e = DriftEngine::new();
    assert!(e.observe(&ufw_snap(&[DENY139, DENY139_V6])).is_empty());
    // `ufw delete NUM` of the (v6) row: the rule stays for IPv4 sources only.
    let a = e.observe(&ufw_snap(&[DENY139]));
    assert_eq!(kinds(&a), [DriftKind::RuleRemoved], "{a:#?}");
    assert!(e.observe(&ufw_snap(&[DENY139])).is_empty());
}

#[test]
fn ufw_allow_above_a_deny_shadows_it_once_naming_the_allow() {
    let mut e = DriftEngine::new();
    let base = [DENY137, DENY139, DENY137_V6, DENY139_V6];
    assert!(e.observe(&ufw_snap(&base)).is_empty());
    // `ufw insert 1 allow 139`: a row above each family's deny; line numbers all shift.
    let allow = "139                        ALLOW IN    Anywhere";
    let allow6 = "139 (v6)                   ALLOW IN    Anywhere (v6)";
    let rows = [allow, DENY137, DENY139, allow6, DENY137_V6, DENY139_V6];
    let a = e.observe(&ufw_snap(&rows));
    assert_eq!(kinds(&a), [DriftKind::RuleShadowed], "{a:#?}");
    assert_eq!(
        a[0].rule.as_deref(),
        Some("ufw rule: 139/tcp DENY IN Anywhere # nbdgm")
    );
    // The allow once (both rows are one rule), not the netfilter rules ufw status replaced.
    assert_eq!(a[0].by, ["ufw rule: 139 ALLOW IN Anywhere"], "{a:#?}");
    assert_eq!(a[0].ports, ["139/tcp"]);
    for _ in 0..3 {
        assert!(e.observe(&ufw_snap(&rows)).is_empty());
    }
    let a = e.observe(&ufw_snap(&base));
    assert_eq!(kinds(&a), [DriftKind::ExposureClosed], "{a:#?}");
}
