//! Drift of the audit (`nbdgm audit --watch`): a [`Snapshot`] of the listeners, the
//! firewall verdicts and the interface addresses, and the [`DriftEngine`] that compares
//! each snapshot with what it knows and emits one [`DriftAlert`] per new fact:
//! `listener-appeared`, `rule-removed`, `rule-shadowed`, `interface-new` and
//! `baseline-exposed`; `listener-gone` and `exposure-closed` when a fact ends.
//!
//! Alerts are state based: a fact alerts when it appears, stays silent while it holds and
//! alerts again only after it went away and came back. Every table is capped and counted.

use crate::addrset::AddrSet;
use crate::eval::{self, Action, Packet};
use crate::{AuditReport, FirewallView, VerdictKind};
use nbdgm_probe::probe::Port;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

/// Most facts held at once (listeners and firewall facts); beyond, new facts are not
/// tracked (counted in [`DriftStats::facts_dropped`]).
pub const MAX_FACTS: usize = 1024;
/// Most interface addresses remembered as known.
pub const MAX_KNOWN_ADDRS: usize = 4096;
/// Most listeners, ports, rules and addresses carried in one alert.
pub const MAX_ITEMS: usize = 32;

/// Severity of a drift alert; ordered `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftKind {
    ListenerAppeared,
    ListenerGone,
    RuleRemoved,
    RuleShadowed,
    InterfaceNew,
    BaselineExposed,
    ExposureClosed,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::ListenerAppeared => "listener-appeared",
            DriftKind::ListenerGone => "listener-gone",
            DriftKind::RuleRemoved => "rule-removed",
            DriftKind::RuleShadowed => "rule-shadowed",
            DriftKind::InterfaceNew => "interface-new",
            DriftKind::BaselineExposed => "baseline-exposed",
            DriftKind::ExposureClosed => "exposure-closed",
        }
    }
}

/// One socket × owning process on a NetBIOS port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Listener {
    pub proto: String,
    pub port: u16,
    pub address: IpAddr,
    /// 0 when the owner is not known.
    pub pid: u32,
    /// `/proc/PID/comm`, `?` when the owner is not known.
    pub command: String,
    /// User name (or uid) of the process, else of the socket.
    pub user: String,
}

/// One audited port as the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PortState {
    /// `137/udp` ...
    pub port: String,
    pub verdict: VerdictKind,
    /// Outside sources the firewall lets through.
    pub open: AddrSet,
    /// Outside sources whose fate is undetermined.
    pub undetermined: AddrSet,
    /// Rule ids (see [`rule_id`]) of the accepting rules that decide.
    pub accept_by: Vec<String>,
    /// Rule ids of the dropping rules (and policies), with the sources each drops.
    pub drops: Vec<(String, AddrSet)>,
    /// The undetermined reasons.
    pub reasons: Vec<String>,
    /// Some socket is bound to a non-loopback address.
    pub listening_outside: bool,
    /// The local addresses of its sockets.
    pub bound: Vec<IpAddr>,
}

impl PortState {
    /// Listening from outside and not closed.
    pub fn exposed(&self) -> bool {
        self.listening_outside && self.verdict != VerdictKind::Closed
    }

    /// A packet to `addr` reaches a socket of this port.
    fn reaches(&self, addr: IpAddr) -> bool {
        self.bound.iter().any(|b| {
            *b == addr || (b.is_unspecified() && (b.is_ipv6() || addr.is_ipv4() == b.is_ipv4()))
        })
    }
}

/// What one evaluation saw.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub listeners: Vec<Listener>,
    pub ports: Vec<PortState>,
    /// The firewall was read completely (else firewall facts are carried over unchanged).
    pub firewall_ok: bool,
    /// Ids of every rule and every dropping base-chain policy present; ufw rules (one id
    /// for the IPv4 and the IPv6 row of a rule) also as `ID|ip` and `ID|ip6` by row family.
    pub rules: HashSet<String>,
    /// Non-loopback interface addresses: (interface, address).
    pub addresses: Vec<(String, IpAddr)>,
}

/// The id of a rule label, stable when rules are inserted above it: the line numbers of
/// iptables-save and ufw labels are left out (`iptables filter line 7: -A ...` →
/// `iptables filter: -A ...`); nftables labels carry the rule's handle and stay as they are.
/// A ufw row also loses its column padding and `(v6)` marks: the IPv4 and IPv6 rows that
/// one `ufw allow|deny` creates (and one `ufw delete` removes) are one rule.
pub fn rule_id(label: &str) -> String {
    if let Some((num, text)) = label
        .strip_prefix(UFW_RULE)
        .and_then(|r| r.split_once(": "))
    {
        if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) {
            let words: Vec<&str> = text.split_whitespace().filter(|w| *w != "(v6)").collect();
            return format!("ufw rule: {}", words.join(" "));
        }
    }
    if let Some(i) = label.find(" line ") {
        let rest = &label[i + 6..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(':') {
            return format!("{}{}", &label[..i], &rest[digits..]);
        }
    }
    label.to_string()
}

/// How [`crate::ufw`] labels a rule row (then the line number, `: ` and the row).
const UFW_RULE: &str = "ufw rule line ";

/// The key in [`Snapshot::rules`] of a ufw rule id's row of family `v6` or IPv4.
fn ufw_row_key(id: &str, v6: bool) -> String {
    format!("{id}|{}", if v6 { "ip6" } else { "ip" })
}

/// `closer` is still there for the sources `lost`: present, and for a ufw rule with a
/// row of each family that `lost` has addresses of (deleting only the IPv6 row of a ufw
/// rule removes the rule for IPv6 sources).
fn present(s: &Snapshot, closer: &str, lost: &AddrSet) -> bool {
    if !s.rules.contains(closer) {
        return false;
    }
    if !closer.starts_with("ufw rule: ") {
        return true;
    }
    [(AddrSet::all_v4(), false), (AddrSet::all_v6(), true)]
        .iter()
        .all(|(fam, v6)| {
            lost.intersect(fam).is_empty() || s.rules.contains(&ufw_row_key(closer, *v6))
        })
}

/// The label of a base chain's dropping policy, as [`crate::port_verdict`] prints it.
fn policy_label(c: &crate::eval::Chain) -> String {
    format!("policy of chain {} ({})", c.label(), c.source)
}

impl Snapshot {
    /// From an audit report, the firewall view and local addresses it was made with, and
    /// the interface addresses.
    pub fn new(
        report: &AuditReport,
        view: &FirewallView,
        local: &AddrSet,
        addresses: Vec<(String, IpAddr)>,
    ) -> Self {
        let mut rules = HashSet::new();
        for c in view
            .ruleset
            .chains
            .iter()
            .chain(view.ufw.iter().flat_map(|u| u.chains.iter()))
        {
            if c.base
                .as_ref()
                .is_some_and(|b| matches!(b.policy, Action::Drop | Action::Reject))
            {
                rules.insert(policy_label(c));
            }
            for r in &c.rules {
                let id = rule_id(&r.label);
                if c.source == "ufw" {
                    let v6 = r.conds.contains(&eval::Cond::Family(eval::Family::Ip6));
                    rules.insert(ufw_row_key(&id, v6));
                }
                rules.insert(id);
            }
        }
        let mut listeners = Vec::new();
        for s in &report.sockets {
            if s.owners.is_empty() {
                let user = crate::sockets::user_name(s.socket_uid)
                    .unwrap_or_else(|| s.socket_uid.to_string());
                listeners.push(listener(s, 0, "?", user));
            }
            for o in &s.owners {
                let user = o
                    .user
                    .clone()
                    .or_else(|| o.uid.map(|u| u.to_string()))
                    .unwrap_or_else(|| "?".into());
                listeners.push(listener(s, o.pid, &o.command, user));
            }
        }
        let ports = report
            .ports
            .iter()
            .map(|p| port_state(p, view, local))
            .collect();
        Snapshot {
            listeners,
            ports,
            firewall_ok: view.unreadable.is_none(),
            rules,
            addresses,
        }
    }
}

fn listener(s: &crate::sockets::BoundSocket, pid: u32, command: &str, user: String) -> Listener {
    Listener {
        proto: s.proto.clone(),
        port: s.port,
        address: s.local,
        pid,
        command: command.to_string(),
        user,
    }
}

/// What [`drops_of`] finds: the sources each dropping rule drops, the undetermined
/// sources and why they are undetermined.
type Drops = (Vec<(String, AddrSet)>, AddrSet, Vec<String>);

/// The sources each dropping rule drops, and the undetermined ones, for `port` (from the
/// ruleset the verdict was evaluated from).
fn drops_of(view: &FirewallView, port: Port, from_ufw: bool, local: &AddrSet) -> Drops {
    let rs = match (&view.ufw, from_ufw) {
        (Some(u), true) => u,
        _ => &view.ruleset,
    };
    let pkt = Packet {
        proto: if port.is_udp() { 17 } else { 6 },
        dport: port.number(),
        local: local.clone(),
    };
    let o = eval::evaluate(rs, &pkt);
    let outside = AddrSet::outside();
    let mut drops: Vec<(String, AddrSet)> = Vec::new();
    for d in &o.dropped {
        let id = rule_id(&d.by);
        let set = d.set.intersect(&outside);
        if let Some(e) = drops.iter_mut().find(|(i, _)| *i == id) {
            e.1 = e.1.union(&set);
        } else if drops.len() < MAX_ITEMS {
            drops.push((id, set));
        }
    }
    let undet = o
        .undetermined
        .iter()
        .fold(AddrSet::empty(), |a, d| a.union(&d.set))
        .intersect(&outside);
    let mut reasons: Vec<String> = Vec::new();
    for d in &o.undetermined {
        push_unique(&mut reasons, &rule_id(&d.by));
    }
    (drops, undet, reasons)
}

fn port_state(p: &crate::PortAudit, view: &FirewallView, local: &AddrSet) -> PortState {
    let open = p
        .firewall
        .open_to
        .iter()
        .filter_map(|c| c.parse::<ipnet::IpNet>().ok())
        .fold(AddrSet::empty(), |a, n| a.union(&AddrSet::net(&n)));
    let by = |prefix: &str| -> Vec<String> {
        p.firewall
            .decided_by
            .iter()
            .filter_map(|d| d.strip_prefix(prefix))
            .fold(Vec::new(), |mut v, d| {
                push_unique(&mut v, &rule_id(d));
                v
            })
    };
    let from_ufw = p.firewall.evaluated_from == "ufw status";
    let (drops, undetermined, ufw_reasons) = drops_of(view, p.port, from_ufw, local);
    // From ufw status: its own reasons (the netfilter ones only say why it was used).
    let reasons = if from_ufw {
        ufw_reasons
    } else {
        p.firewall.undetermined.iter().fold(Vec::new(), |mut v, r| {
            push_unique(&mut v, &rule_id(r));
            v
        })
    };
    PortState {
        port: p.port.as_str().to_string(),
        verdict: p.firewall.verdict,
        open,
        undetermined,
        accept_by: by("accept: "),
        drops,
        reasons,
        listening_outside: p.listening_outside,
        bound: p.listening.iter().map(|s| s.local).collect(),
    }
}

/// One drift alert. Strings are exact (the text output escapes them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftAlert {
    pub alert: DriftKind,
    pub severity: Severity,
    /// The fact (`listener|137/udp|nmbd|root`, `rule-removed|RULE`, ...).
    pub key: String,
    /// How many times this fact has appeared (1 the first time).
    pub episode: u64,
    /// One line.
    pub title: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Listener>,
    /// The rule that closed the ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// What lets the packets through now (accepting rules, undetermined reasons).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// For `exposure-closed` and `listener-gone`: the fact that ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<DriftKind>,
    /// Some of `ports` is exposed now (listening from outside, not closed).
    pub exposed: bool,
}

impl DriftAlert {
    fn new(alert: DriftKind, key: String, title: String) -> Self {
        DriftAlert {
            alert,
            severity: Severity::Medium,
            key,
            episode: 0,
            title,
            ports: Vec::new(),
            listeners: Vec::new(),
            rule: None,
            by: Vec::new(),
            interface: None,
            addresses: Vec::new(),
            ended: None,
            exposed: false,
        }
    }
}

/// Counters of the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DriftStats {
    pub evaluations: u64,
    pub alerts: u64,
    /// Snapshots whose firewall could not be read (firewall facts carried over).
    pub firewall_unread: u64,
    /// New facts not tracked: the fact table was full.
    pub facts_dropped: u64,
    /// Known addresses forgotten: the table was full.
    pub addrs_evicted: u64,
    /// Episode counters forgotten: the table was full.
    pub episodes_evicted: u64,
}

/// A port's reference: the tightest state seen, and the rules that closed it then.
#[derive(Debug, Clone)]
struct PortRef {
    open: AddrSet,
    undetermined: AddrSet,
    closers: Vec<(String, AddrSet)>,
}

/// A fact held now: its grouping and the alert it gave (or would give).
#[derive(Debug, Clone)]
struct Fact {
    /// Listener facts: `command|user`, the alert groups by it.
    group: Option<String>,
    alert: DriftAlert,
}

/// The drift engine: facts, port references and known addresses.
#[derive(Debug, Default)]
pub struct DriftEngine {
    active: BTreeMap<String, Fact>,
    episodes: HashMap<String, u64>,
    refs: HashMap<String, PortRef>,
    known: HashSet<(String, IpAddr)>,
    stats: DriftStats,
}

fn capped<T: Clone>(v: &[T]) -> Vec<T> {
    v.iter().take(MAX_ITEMS).cloned().collect()
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if v.len() < MAX_ITEMS && !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

impl DriftEngine {
    pub fn new() -> Self {
        DriftEngine::default()
    }

    pub fn stats(&self) -> DriftStats {
        self.stats
    }

    /// Keys of the facts held now.
    pub fn active_keys(&self) -> Vec<String> {
        self.active.keys().cloned().collect()
    }

    /// Compare `s` with what is known and return the alerts. The first call is the
    /// baseline: it records listeners and addresses without alerting, and alerts
    /// `baseline-exposed` once when some port is exposed.
    pub fn observe(&mut self, s: &Snapshot) -> Vec<DriftAlert> {
        let first = self.stats.evaluations == 0;
        self.stats.evaluations += 1;
        let mut facts = listener_facts(s);
        if s.firewall_ok {
            facts.extend(self.port_facts(s));
            facts.extend(self.interface_facts(s, first));
            if let Some(f) = self.baseline_fact(s, first) {
                facts.insert(f.alert.key.clone(), f);
            }
        } else {
            self.stats.firewall_unread += 1;
            for (k, f) in &self.active {
                if f.group.is_none() {
                    facts.insert(k.clone(), f.clone());
                }
            }
        }
        let alerts = self.diff(facts, first);
        self.stats.alerts += alerts.len() as u64;
        alerts
    }

    /// Compare the facts of now with the active ones; update the table.
    fn diff(&mut self, facts: BTreeMap<String, Fact>, first: bool) -> Vec<DriftAlert> {
        let gone: Vec<String> = self
            .active
            .keys()
            .filter(|k| !facts.contains_key(*k))
            .cloned()
            .collect();
        let mut out = Vec::new();
        let mut gone_listeners: BTreeMap<String, Vec<Fact>> = BTreeMap::new();
        for k in gone {
            let Some(f) = self.active.remove(&k) else {
                continue;
            };
            match &f.group {
                Some(g) => gone_listeners.entry(g.clone()).or_default().push(f),
                None => out.push(recovery(&f.alert)),
            }
        }
        for (g, fs) in gone_listeners {
            out.push(group_listeners(DriftKind::ListenerGone, &g, &fs));
        }
        let mut new_listeners: BTreeMap<String, Vec<Fact>> = BTreeMap::new();
        let mut new_others = Vec::new();
        for (k, mut f) in facts {
            if let Some(held) = self.active.get_mut(&k) {
                // Still holds: keep the episode, refresh what it says.
                f.alert.episode = held.alert.episode;
                *held = f;
                continue;
            }
            if self.active.len() >= MAX_FACTS {
                self.stats.facts_dropped += 1;
                continue;
            }
            f.alert.episode = self.next_episode(&k);
            self.active.insert(k, f.clone());
            match &f.group {
                Some(g) if !first => new_listeners.entry(g.clone()).or_default().push(f),
                Some(_) => {}
                None => new_others.push(f.alert),
            }
        }
        for (g, fs) in new_listeners {
            out.push(group_listeners(DriftKind::ListenerAppeared, &g, &fs));
        }
        out.extend(new_others);
        out
    }

    fn next_episode(&mut self, key: &str) -> u64 {
        if !self.episodes.contains_key(key) && self.episodes.len() >= 4 * MAX_FACTS {
            let active = &self.active;
            let before = self.episodes.len();
            self.episodes.retain(|k, _| active.contains_key(k));
            self.stats.episodes_evicted += (before - self.episodes.len()) as u64;
        }
        let e = self.episodes.entry(key.to_string()).or_insert(0);
        *e += 1;
        *e
    }

    /// `rule-removed` and `rule-shadowed` facts; updates the port references.
    fn port_facts(&mut self, s: &Snapshot) -> BTreeMap<String, Fact> {
        let mut facts: BTreeMap<String, Fact> = BTreeMap::new();
        for p in &s.ports {
            let Some(r) = self.refs.get(&p.port) else {
                self.refs.insert(p.port.clone(), reference(p));
                continue;
            };
            // Sources let through (or undetermined) now that were not then.
            let grown = p
                .open
                .subtract(&r.open)
                .union(&p.undetermined.subtract(&r.undetermined));
            if grown.is_empty() {
                self.refs.insert(p.port.clone(), reference(p));
                continue;
            }
            for (closer, dropped) in &r.closers {
                let lost = grown.intersect(dropped);
                if lost.is_empty() {
                    continue;
                }
                let (kind, key, by) = if present(s, closer, &lost) {
                    let mut by: Vec<String> = p.accept_by.clone();
                    by.extend(p.reasons.iter().cloned());
                    by.truncate(MAX_ITEMS);
                    let key = format!("rule-shadowed|{closer}|{}", by.join("|"));
                    (DriftKind::RuleShadowed, key, by)
                } else {
                    let key = format!("rule-removed|{closer}");
                    (DriftKind::RuleRemoved, key, Vec::new())
                };
                let f = facts.entry(key.clone()).or_insert_with(|| Fact {
                    group: None,
                    alert: DriftAlert {
                        rule: Some(closer.clone()),
                        by,
                        ..DriftAlert::new(kind, key, String::new())
                    },
                });
                push_unique(&mut f.alert.ports, &p.port);
                f.alert.exposed |= p.exposed();
            }
        }
        for f in facts.values_mut() {
            let a = &mut f.alert;
            a.severity = if a.exposed {
                Severity::High
            } else {
                Severity::Medium
            };
            let rule = a.rule.as_deref().unwrap_or("");
            a.title = match a.alert {
                DriftKind::RuleRemoved => format!(
                    "the rule that closed {} is gone: {rule}",
                    a.ports.join(", ")
                ),
                _ => format!(
                    "{} reachable again although {rule} is still there: {}",
                    a.ports.join(", "),
                    a.by.first().map_or("", String::as_str)
                ),
            };
        }
        facts
    }

    /// `interface-new` facts; records addresses that expose nothing as known.
    fn interface_facts(&mut self, s: &Snapshot, first: bool) -> BTreeMap<String, Fact> {
        let mut facts: BTreeMap<String, Fact> = BTreeMap::new();
        for (ifname, addr) in &s.addresses {
            let ports: Vec<&PortState> = s
                .ports
                .iter()
                .filter(|p| p.verdict != VerdictKind::Closed && p.reaches(*addr))
                .collect();
            let id = (ifname.clone(), *addr);
            if first || ports.is_empty() {
                if !self.known.contains(&id) {
                    if self.known.len() >= MAX_KNOWN_ADDRS {
                        let present: HashSet<&(String, IpAddr)> = s.addresses.iter().collect();
                        let before = self.known.len();
                        self.known.retain(|k| present.contains(k));
                        self.stats.addrs_evicted += (before - self.known.len()) as u64;
                    }
                    if self.known.len() < MAX_KNOWN_ADDRS {
                        self.known.insert(id);
                    }
                }
                continue;
            }
            if self.known.contains(&id) {
                continue;
            }
            let key = format!("interface-new|{ifname}");
            let f = facts.entry(key.clone()).or_insert_with(|| Fact {
                group: None,
                alert: DriftAlert {
                    interface: Some(ifname.clone()),
                    severity: Severity::High,
                    exposed: true,
                    ..DriftAlert::new(DriftKind::InterfaceNew, key, String::new())
                },
            });
            push_unique(&mut f.alert.addresses, &addr.to_string());
            for p in ports {
                push_unique(&mut f.alert.ports, &p.port);
            }
        }
        for f in facts.values_mut() {
            let a = &mut f.alert;
            a.title = format!(
                "new address {} on {} exposes {}",
                a.addresses.join(", "),
                a.interface.as_deref().unwrap_or(""),
                a.ports.join(", ")
            );
        }
        facts
    }

    /// `baseline-exposed`: created by the baseline, held while one of its ports stays exposed.
    fn baseline_fact(&self, s: &Snapshot, first: bool) -> Option<Fact> {
        let exposed: Vec<&PortState> = s.ports.iter().filter(|p| p.exposed()).collect();
        let held = self.active.get("baseline-exposed");
        let ports: Vec<String> = match (first, held) {
            (true, _) => exposed.iter().map(|p| p.port.clone()).collect(),
            (false, Some(f)) => exposed
                .iter()
                .filter(|p| f.alert.ports.contains(&p.port))
                .map(|p| p.port.clone())
                .collect(),
            (false, None) => return None,
        };
        if ports.is_empty() {
            return None;
        }
        let listeners: Vec<Listener> = s
            .listeners
            .iter()
            .filter(|l| {
                !l.address.is_loopback() && ports.contains(&format!("{}/{}", l.port, l.proto))
            })
            .cloned()
            .collect();
        let key = "baseline-exposed".to_string();
        Some(Fact {
            group: None,
            alert: DriftAlert {
                severity: Severity::High,
                title: format!("exposed at start: {}", ports.join(", ")),
                ports,
                listeners: capped(&listeners),
                exposed: true,
                ..DriftAlert::new(DriftKind::BaselineExposed, key.clone(), String::new())
            },
        })
    }
}

fn reference(p: &PortState) -> PortRef {
    PortRef {
        open: p.open.clone(),
        undetermined: p.undetermined.clone(),
        closers: capped(&p.drops),
    }
}

/// One fact per (port, command, user) of the listeners.
fn listener_facts(s: &Snapshot) -> BTreeMap<String, Fact> {
    let mut facts: BTreeMap<String, Fact> = BTreeMap::new();
    for l in &s.listeners {
        let port = format!("{}/{}", l.port, l.proto);
        let key = format!("listener|{port}|{}|{}", l.command, l.user);
        let f = facts.entry(key.clone()).or_insert_with(|| Fact {
            group: Some(format!("{}|{}", l.command, l.user)),
            alert: DriftAlert {
                ports: vec![port.clone()],
                ..DriftAlert::new(DriftKind::ListenerAppeared, key, String::new())
            },
        });
        let outside = !l.address.is_loopback();
        let exposed = outside
            && s.ports
                .iter()
                .any(|p| p.port == port && p.verdict != VerdictKind::Closed);
        f.alert.exposed |= exposed;
        let sev = match (exposed, outside) {
            (true, _) => Severity::High,
            (false, true) => Severity::Medium,
            _ => Severity::Low,
        };
        f.alert.severity = f.alert.severity.max(sev);
        if f.alert.listeners.len() < MAX_ITEMS && !f.alert.listeners.contains(l) {
            f.alert.listeners.push(l.clone());
        }
    }
    for f in facts.values_mut() {
        // A loopback-only listener stays Low; the default Medium is only a placeholder.
        if f.alert.listeners.iter().all(|l| l.address.is_loopback()) {
            f.alert.severity = Severity::Low;
        }
    }
    facts
}

/// One alert for the listener facts of one process (command and user) that appeared or ended.
fn group_listeners(kind: DriftKind, group: &str, fs: &[Fact]) -> DriftAlert {
    let (command, user) = group.split_once('|').unwrap_or((group, ""));
    let mut a = DriftAlert::new(kind, format!("listener|{group}"), String::new());
    for f in fs {
        for p in &f.alert.ports {
            push_unique(&mut a.ports, p);
        }
        for l in &f.alert.listeners {
            if a.listeners.len() < MAX_ITEMS && !a.listeners.contains(l) {
                a.listeners.push(l.clone());
            }
        }
        a.exposed |= f.alert.exposed;
        a.severity = a.severity.max(f.alert.severity);
        a.episode = a.episode.max(f.alert.episode);
    }
    if fs.iter().all(|f| f.alert.severity == Severity::Low) {
        a.severity = Severity::Low;
    }
    let mut pids: Vec<u32> = a.listeners.iter().map(|l| l.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    if kind == DriftKind::ListenerGone {
        a.severity = Severity::Low;
        a.exposed = false;
        a.ended = Some(DriftKind::ListenerAppeared);
        a.title = format!(
            "{command} (user {user}) no longer listens on {}",
            a.ports.join(", ")
        );
    } else {
        a.title = format!(
            "{command}[{}] (user {user}) listens on {}{}",
            pids.join(","),
            a.ports.join(", "),
            if a.exposed {
                " and the firewall does not close it"
            } else {
                ""
            }
        );
    }
    a
}

/// `exposure-closed` for an ended firewall or interface fact.
fn recovery(a: &DriftAlert) -> DriftAlert {
    DriftAlert {
        severity: Severity::Low,
        title: format!("ended: {}", a.title),
        ended: Some(a.alert),
        exposed: false,
        ..DriftAlert {
            alert: DriftKind::ExposureClosed,
            ..a.clone()
        }
    }
}

#[cfg(test)]
#[path = "drift_tests.rs"]
mod tests;
