//! Host audit of the NetBIOS ports (`nbdgm audit`): on the host itself, the sockets bound to the NetBIOS ports
//! (137, 138, 139, 445; UDP and TCP; IPv4 and IPv6) with their owning processes, and the
//! firewall's verdict for an unsolicited packet from outside to each of 137/udp, 138/udp,
//! 138/tcp, 139/tcp and 445/tcp: open to everyone, open to some networks, closed, or
//! undetermined (with the rule that could not be evaluated). The evaluation rules and their
//! limits are in `docs/audit.md`.
//!
//! Everything read here (`/proc`, `nft -j`, `iptables-save`, `ufw status`) is treated as
//! untrusted input: malformed parts are skipped or reported, never a panic; every external
//! command is bounded in time.
//!
//! [`firewall`] (`nbdgm firewall`) writes, applies, removes and verifies the rules that close
//! these ports.
//!
//! [`drift`], [`netlink`] and [`watch`] implement `nbdgm audit --watch`: repeated audits,
//! re-run on link, address and nftables change notifications, with one alert per new fact.
#![forbid(unsafe_code)]

pub mod addrset;
pub mod command;
pub mod drift;
pub mod eval;
pub mod firewall;
pub mod ipt;
pub mod netlink;
pub mod nft;
pub mod sockets;
pub mod ufw;
pub mod watch;

use addrset::AddrSet;
use eval::{Outcome, Packet, Ruleset};
use nbdgm_probe::probe::Port;
use serde::{Deserialize, Serialize};
use sockets::BoundSocket;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Exit codes of `nbdgm audit`.
pub const EXIT_CLEAN: u8 = 0;
pub const EXIT_EXPOSED: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

pub use command::{
    find_tool, run_bounded, run_bounded_with_input, CommandError, ToolError, COMMAND_TIMEOUT,
    MAX_OUTPUT, SYSTEM_DIRS,
};

/// What to read.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The `/proc` mount (tests may point elsewhere).
    pub proc_root: PathBuf,
    /// Read the firewall at all.
    pub firewall: bool,
    pub timeout: Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            proc_root: PathBuf::from("/proc"),
            firewall: true,
            timeout: COMMAND_TIMEOUT,
        }
    }
}

/// One firewall source and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// `nftables`, `iptables`, `ip6tables`, `ufw`.
    pub name: String,
    /// Its rules are part of the evaluation.
    pub used: bool,
    pub detail: String,
}

/// The firewall as read.
#[derive(Debug, Clone, Default)]
pub struct FirewallView {
    /// Netfilter rules (nftables, plus legacy iptables tables).
    pub ruleset: Ruleset,
    /// `ufw status`, when ufw is installed and active.
    pub ufw: Option<Ruleset>,
    pub sources: Vec<SourceStatus>,
    /// A source exists but could not be read: every verdict is undetermined.
    pub unreadable: Option<String>,
    pub notes: Vec<String>,
}

/// The verdict of the firewall for one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictKind {
    OpenToEveryone,
    OpenTo,
    Closed,
    Undetermined,
}

impl VerdictKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::OpenToEveryone => "open to everyone",
            VerdictKind::OpenTo => "open to",
            VerdictKind::Closed => "closed",
            VerdictKind::Undetermined => "undetermined",
        }
    }
}

/// The firewall's view of one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallVerdict {
    pub verdict: VerdictKind,
    /// The source networks an unsolicited packet passes from (empty when closed).
    pub open_to: Vec<String>,
    /// The rules (or policies) that decide, for the open and the closed part.
    pub decided_by: Vec<String>,
    /// Why part of the address space is undetermined (`undetermined: rule N uses X`).
    pub undetermined: Vec<String>,
    /// `netfilter` or `ufw status` (when netfilter could not be evaluated).
    pub evaluated_from: String,
}

impl FirewallVerdict {
    /// `open to everyone`, `open to 198.51.100.0/24`, `closed`, `undetermined: ...`.
    pub fn text(&self) -> String {
        match self.verdict {
            VerdictKind::OpenTo => {
                let mut s = format!("open to {}", self.open_to.join(", "));
                if let Some(u) = self.undetermined.first() {
                    s.push_str(&format!(" (elsewhere {u})"));
                }
                s
            }
            VerdictKind::Undetermined => self
                .undetermined
                .first()
                .cloned()
                .unwrap_or_else(|| "undetermined".into()),
            k => k.as_str().to_string(),
        }
    }
}

/// One audited port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortAudit {
    pub port: Port,
    /// Sockets on this port and protocol.
    pub listening: Vec<BoundSocket>,
    /// Some socket is bound to a non-loopback address.
    pub listening_outside: bool,
    pub firewall: FirewallVerdict,
    /// Listening from outside and not closed by the firewall.
    pub exposed: bool,
}

/// The whole audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Every socket on 137, 138, 139 and 445 (UDP and TCP, also on ports not in `ports`).
    pub sockets: Vec<BoundSocket>,
    pub ports: Vec<PortAudit>,
    pub firewall_sources: Vec<SourceStatus>,
    pub notes: Vec<String>,
    pub exposed: bool,
    pub summary: String,
}

/// Read the firewall of this thread's network namespace (commands started from a thread
/// that joined a namespace run in it).
pub fn read_firewall(timeout: Duration) -> FirewallView {
    let mut view = FirewallView::default();
    let nft_ok = read_nftables(&mut view, timeout);
    for (name, save) in [
        ("iptables", "iptables-save"),
        ("ip6tables", "ip6tables-save"),
    ] {
        read_iptables(&mut view, name, save, nft_ok, timeout);
    }
    read_ufw(&mut view, timeout);
    if view.sources.iter().all(|s| !s.used) && view.unreadable.is_none() {
        view.notes.push(
            "no firewall rules found (no nft, iptables or ufw to read): nothing filters".into(),
        );
    }
    view
}

fn source(name: &str, used: bool, detail: String) -> SourceStatus {
    SourceStatus {
        name: name.into(),
        used,
        detail,
    }
}

/// The nftables ruleset into `view`; whether it could be read.
fn read_nftables(view: &mut FirewallView, timeout: Duration) -> bool {
    let Ok(nft) = find_tool("nft") else {
        view.sources
            .push(source("nftables", false, "nft not installed".into()));
        return false;
    };
    let parsed = command::output(&nft, &["-j", "list", "ruleset"], timeout)
        .map_err(|e| e.to_string())
        .and_then(|t| nft::parse(&t).map_err(|e| e.to_string()));
    match parsed {
        Ok(p) => {
            view.sources.push(source(
                "nftables",
                true,
                format!("{} tables, {} chains", p.tables, p.ruleset.chains.len()),
            ));
            view.notes.extend(p.notes);
            view.ruleset.chains.extend(p.ruleset.chains);
            true
        }
        Err(e) => {
            view.sources.push(source("nftables", false, e.clone()));
            view.unreadable
                .get_or_insert(format!("cannot read the nftables ruleset: {e}"));
            false
        }
    }
}

/// The rules of `name` (iptables or ip6tables) from `save` into `view`. With the
/// nf_tables backend (`nft_ok`), they replace the same tables of the nftables view.
fn read_iptables(view: &mut FirewallView, name: &str, save: &str, nft_ok: bool, timeout: Duration) {
    let (Ok(bin), Ok(save_bin)) = (find_tool(name), find_tool(save)) else {
        view.sources
            .push(source(name, false, format!("{save} not installed")));
        return;
    };
    let version = command::output(&bin, &["-V"], timeout).unwrap_or_default();
    let legacy = version.contains("legacy");
    match command::output(&save_bin, &[], timeout) {
        Ok(text) => {
            let rs = ipt::parse(&text, name);
            let mut detail = format!("{} ({} chains)", version.trim(), rs.chains.len());
            if !legacy && nft_ok {
                // iptables-nft: its tables are in the nftables ruleset too, but with `xt`
                // matches nft cannot show; read them from iptables-save instead.
                let family = if name == "iptables" {
                    eval::Family::Ip
                } else {
                    eval::Family::Ip6
                };
                let tables: std::collections::HashSet<String> =
                    rs.chains.iter().map(|c| c.table.clone()).collect();
                let before = view.ruleset.chains.len();
                view.ruleset.chains.retain(|c| {
                    !(c.source == "nftables" && c.family == family && tables.contains(&c.table))
                });
                detail.push_str(&format!(
                    "; nf_tables backend: read with {save}, replacing {} chains of the nftables view",
                    before - view.ruleset.chains.len()
                ));
            }
            view.sources.push(source(name, true, detail));
            view.ruleset.chains.extend(rs.chains);
        }
        Err(e) if !legacy && nft_ok => {
            view.sources.push(source(
                name,
                false,
                format!("{e}; its nf_tables rules are read from the nftables ruleset"),
            ));
        }
        Err(e) => {
            view.sources.push(source(name, false, e.to_string()));
            view.unreadable
                .get_or_insert(format!("cannot read {name} rules: {e}"));
        }
    }
}

/// ufw's rules into `view` when ufw is installed and active.
fn read_ufw(view: &mut FirewallView, timeout: Duration) {
    let Ok(ufw_bin) = find_tool("ufw") else {
        return;
    };
    match command::output(&ufw_bin, &["status", "verbose"], timeout) {
        Ok(text) => {
            let st = ufw::parse(&text);
            let state = if st.active { "active" } else { "inactive" };
            view.sources.push(source("ufw", st.active, state.into()));
            if st.active {
                view.ufw = Some(st.ruleset);
            }
        }
        Err(e) => view.sources.push(source("ufw", false, e.to_string())),
    }
}

/// This host's non-loopback addresses (and their broadcast addresses), for destination
/// matches.
pub fn local_addresses() -> AddrSet {
    let mut set = AddrSet::empty();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs.take(10_000) {
            for sa in [ifa.address, ifa.broadcast].into_iter().flatten() {
                let ip: Option<IpAddr> = if let Some(s) = sa.as_sockaddr_in() {
                    Some(IpAddr::V4(s.ip()))
                } else {
                    sa.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip()))
                };
                if let Some(ip) = ip.filter(|ip| !ip.is_loopback()) {
                    set = set.union(&AddrSet::addr(ip));
                }
            }
        }
    }
    set
}

fn proto_num(p: Port) -> u8 {
    if p.is_udp() {
        17
    } else {
        6
    }
}

/// CIDRs of an accepted set, loopback left out.
fn display_cidrs(set: &AddrSet) -> Vec<String> {
    let lo = AddrSet::all().subtract(&AddrSet::outside());
    set.union(&lo)
        .to_cidrs()
        .into_iter()
        .filter(|c| {
            c.parse::<ipnet::IpNet>()
                .map(|n| !lo.contains_set(&AddrSet::net(&n)))
                .unwrap_or(true)
        })
        .collect()
}

fn verdict_of(o: &Outcome, from: &str) -> FirewallVerdict {
    let outside = AddrSet::outside();
    let acc = o.accepted.intersect(&outside);
    let mut decided_by: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        if !decided_by.iter().any(|d| d == s) && decided_by.len() < 16 {
            decided_by.push(s.to_string())
        }
    };
    for d in o
        .accepted_by
        .iter()
        .filter(|d| !d.set.intersect(&acc).is_empty())
    {
        add(&format!("accept: {}", d.by));
    }
    for d in &o.dropped {
        add(&format!("drop: {}", d.by));
    }
    let mut undetermined: Vec<String> = Vec::new();
    for d in &o.undetermined {
        if !undetermined.contains(&d.by) && undetermined.len() < 16 {
            undetermined.push(d.by.clone());
        }
    }
    let verdict = if acc.contains_set(&outside) {
        VerdictKind::OpenToEveryone
    } else if !acc.is_empty() {
        VerdictKind::OpenTo
    } else if !undetermined.is_empty() {
        VerdictKind::Undetermined
    } else {
        VerdictKind::Closed
    };
    FirewallVerdict {
        verdict,
        open_to: display_cidrs(&acc),
        decided_by,
        undetermined,
        evaluated_from: from.into(),
    }
}

/// The firewall's verdict for an unsolicited packet from outside to `port`.
pub fn port_verdict(view: &FirewallView, port: Port, local: &AddrSet) -> FirewallVerdict {
    if let Some(why) = &view.unreadable {
        return FirewallVerdict {
            verdict: VerdictKind::Undetermined,
            open_to: Vec::new(),
            decided_by: Vec::new(),
            undetermined: vec![format!("undetermined: {why}")],
            evaluated_from: "netfilter".into(),
        };
    }
    let pkt = Packet {
        proto: proto_num(port),
        dport: port.number(),
        local: local.clone(),
    };
    let v = verdict_of(&eval::evaluate(&view.ruleset, &pkt), "netfilter");
    if v.verdict == VerdictKind::Undetermined {
        if let Some(ufw) = &view.ufw {
            let mut u = verdict_of(&eval::evaluate(ufw, &pkt), "ufw status");
            u.undetermined.extend(v.undetermined);
            return u;
        }
    }
    v
}

/// Put the sockets and the firewall verdicts together.
pub fn assemble(
    sockets: Vec<BoundSocket>,
    view: &FirewallView,
    local: &AddrSet,
    mut notes: Vec<String>,
) -> AuditReport {
    let mut ports = Vec::new();
    for port in Port::ALL {
        let proto = if port.is_udp() { "udp" } else { "tcp" };
        let listening: Vec<BoundSocket> = sockets
            .iter()
            .filter(|s| s.port == port.number() && s.proto == proto)
            .cloned()
            .collect();
        let listening_outside = listening.iter().any(|s| !s.loopback_only());
        let firewall = port_verdict(view, port, local);
        let exposed = listening_outside && firewall.verdict != VerdictKind::Closed;
        ports.push(PortAudit {
            port,
            listening,
            listening_outside,
            firewall,
            exposed,
        });
    }
    notes.extend(view.notes.iter().cloned());
    let exposed: Vec<String> = ports
        .iter()
        .filter(|p| p.exposed)
        .map(|p| {
            let who = p
                .listening
                .iter()
                .filter(|s| !s.loopback_only())
                .map(BoundSocket::owner_text)
                .next()
                .unwrap_or_default();
            format!("{} ({who}) {}", p.port, p.firewall.text())
        })
        .collect();
    let summary = if exposed.is_empty() {
        let listening = ports.iter().filter(|p| p.listening_outside).count();
        if listening == 0 {
            "nothing exposed: no socket on a NetBIOS port is reachable from outside".to_string()
        } else {
            format!("nothing exposed: the firewall closes all {listening} ports that have a socket reachable from outside")
        }
    } else {
        format!("{} exposed: {}", exposed.len(), exposed.join("; "))
    };
    AuditReport {
        sockets,
        exposed: ports.iter().any(|p| p.exposed),
        ports,
        firewall_sources: view.sources.clone(),
        notes,
        summary,
    }
}

/// Audit this thread's network namespace: sockets, owners and firewall.
pub fn audit(opts: &AuditOptions) -> AuditReport {
    let mut notes = Vec::new();
    let sockets = sockets::bound_sockets(&opts.proc_root, &mut notes);
    let view = if opts.firewall {
        read_firewall(opts.timeout)
    } else {
        FirewallView::default()
    };
    assemble(sockets, &view, &local_addresses(), notes)
}

/// Exit code: 0 nothing exposed, 1 something exposed.
pub fn exit_code(r: &AuditReport) -> u8 {
    if r.exposed {
        EXIT_EXPOSED
    } else {
        EXIT_CLEAN
    }
}

/// Pretty JSON of the report.
pub fn to_json(r: &AuditReport) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|_| "{}".into())
}

/// The report as text.
pub fn to_text(r: &AuditReport) -> String {
    use nbdgm_wire::text::Escaped;
    let mut s = String::new();
    for p in &r.ports {
        let listen = if p.listening.is_empty() {
            "not listening".to_string()
        } else {
            p.listening
                .iter()
                .map(|b| format!("{}:{} {}", b.local, b.port, Escaped(&b.owner_text())))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push_str(&format!(
            "{:<8} {}{}\n         listening: {listen}\n         firewall:  {} [{}]\n",
            p.port.as_str(),
            if p.exposed { "EXPOSED" } else { "ok" },
            if p.listening_outside || p.listening.is_empty() {
                ""
            } else {
                " (loopback only)"
            },
            p.firewall.text(),
            p.firewall.evaluated_from,
        ));
        for d in p.firewall.decided_by.iter().take(4) {
            s.push_str(&format!("           {}\n", Escaped(d)));
        }
        for u in p.firewall.undetermined.iter().skip(1).take(3) {
            s.push_str(&format!("           also {}\n", Escaped(u)));
        }
    }
    let others: Vec<&BoundSocket> = r
        .sockets
        .iter()
        .filter(|b| !r.ports.iter().any(|p| p.listening.contains(b)))
        .collect();
    for b in others {
        s.push_str(&format!(
            "other    {}/{} on {} {}\n",
            b.port,
            b.proto,
            b.local,
            Escaped(&b.owner_text())
        ));
    }
    s.push_str("firewall sources:\n");
    for f in &r.firewall_sources {
        s.push_str(&format!(
            "  {:<9} {} {}\n",
            f.name,
            if f.used { "used" } else { "not used:" },
            Escaped(&f.detail)
        ));
    }
    for n in &r.notes {
        s.push_str(&format!("note: {}\n", Escaped(n)));
    }
    for b in r
        .sockets
        .iter()
        .filter_map(|b| b.note.as_ref().map(|n| (b, n)))
    {
        s.push_str(&format!(
            "note: {}/{} inode {}: {}\n",
            b.0.port,
            b.0.proto,
            b.0.inode,
            Escaped(b.1)
        ));
    }
    s.push_str(&format!("summary: {}\n", r.summary));
    s
}
