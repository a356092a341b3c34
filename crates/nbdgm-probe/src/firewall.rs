//! `nbdgm firewall` (issue 5 §3): rules that close 137/udp, 138/udp, 138/tcp, 139/tcp (and
//! 445/tcp on request) to everyone except loopback and the allowed networks, for nftables
//! (own table `inet nbdgm`), iptables/ip6tables (own chain `NBDGM` jumped to from INPUT) and
//! ufw. Rules are argument vectors run without a shell; applying replaces a previous
//! application (idempotent) and removing deletes exactly what applying created. After
//! applying, a [`Verifier`] probes the host from another vantage point.

use crate::audit::{find_tool, run_bounded};
use crate::probe::{HostResult, Port, PortResult, PortState};
pub use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The nftables table (family `inet`).
pub const NFT_TABLE: &str = "nbdgm";
/// The nftables base chain's priority: before the usual filter chains (0).
pub const NFT_PRIORITY: i32 = -10;
/// The iptables/ip6tables chain.
pub const IPT_CHAIN: &str = "NBDGM";
/// Longest wait for one firewall command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Most `--allow` networks.
pub const MAX_ALLOW: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Nftables,
    Iptables,
    Ufw,
}

/// What to close and for whom to keep it open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallOptions {
    pub backend: Backend,
    pub allow: Vec<IpNet>,
    pub include_445: bool,
}

/// Parse an `--allow` value: a CIDR or a single address (IPv4 or IPv6), host bits cleared.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    s.trim()
        .parse::<IpNet>()
        .or_else(|_| s.trim().parse::<std::net::IpAddr>().map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("{s:?} is not a CIDR or an address"))
}

/// One command: an argument vector, run without a shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwCommand {
    pub argv: Vec<String>,
    /// Cleanup of a previous application: failing is fine (nothing to clean).
    pub may_fail: bool,
}

fn cmd(argv: &[&str], may_fail: bool) -> FwCommand {
    FwCommand {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        may_fail,
    }
}

impl FirewallOptions {
    /// Check the options: at most [`MAX_ALLOW`] networks, given in canonical form.
    pub fn validate(&self) -> Result<(), String> {
        if self.allow.len() > MAX_ALLOW {
            return Err(format!("at most {MAX_ALLOW} --allow networks"));
        }
        Ok(())
    }

    /// The ports closed, in report order.
    pub fn ports(&self) -> Vec<Port> {
        Port::ALL
            .iter()
            .copied()
            .filter(|p| self.include_445 || *p != Port::Smb445Tcp)
            .collect()
    }

    fn udp_ports(&self) -> Vec<u16> {
        self.ports()
            .iter()
            .filter(|p| p.is_udp())
            .map(|p| p.number())
            .collect()
    }

    fn tcp_ports(&self) -> Vec<u16> {
        self.ports()
            .iter()
            .filter(|p| !p.is_udp())
            .map(|p| p.number())
            .collect()
    }

    fn allow_v4(&self) -> Vec<String> {
        self.allow
            .iter()
            .filter(|n| matches!(n, IpNet::V4(_)))
            .map(|n| n.trunc().to_string())
            .collect()
    }

    fn allow_v6(&self) -> Vec<String> {
        self.allow
            .iter()
            .filter(|n| matches!(n, IpNet::V6(_)))
            .map(|n| n.trunc().to_string())
            .collect()
    }
}

fn join(ports: &[u16], sep: &str) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// The commands that (re)apply the rules.
pub fn apply_commands(o: &FirewallOptions) -> Vec<FwCommand> {
    match o.backend {
        Backend::Nftables => nft_apply(o),
        Backend::Iptables => ipt_apply(o),
        Backend::Ufw => ufw_commands(o, false),
    }
}

/// The commands that remove what [`apply_commands`] created.
pub fn remove_commands(o: &FirewallOptions) -> Vec<FwCommand> {
    match o.backend {
        Backend::Nftables => vec![cmd(&["nft", "delete", "table", "inet", NFT_TABLE], false)],
        Backend::Iptables => ["iptables", "ip6tables"]
            .iter()
            .flat_map(|t| {
                [
                    cmd(&[t, "-w", "-D", "INPUT", "-j", IPT_CHAIN], false),
                    cmd(&[t, "-w", "-F", IPT_CHAIN], false),
                    cmd(&[t, "-w", "-X", IPT_CHAIN], false),
                ]
            })
            .collect(),
        Backend::Ufw => ufw_commands(o, true),
    }
}

fn nft_apply(o: &FirewallOptions) -> Vec<FwCommand> {
    let t = NFT_TABLE;
    let udp = format!("{{ {} }}", join(&o.udp_ports(), ", "));
    let tcp = format!("{{ {} }}", join(&o.tcp_ports(), ", "));
    let chain = format!("{{ type filter hook input priority {NFT_PRIORITY} ; policy accept ; }}");
    let mut v = vec![
        // `add` then `delete` then `add`: replaces an earlier application, never fails.
        cmd(&["nft", "add", "table", "inet", t], false),
        cmd(&["nft", "delete", "table", "inet", t], false),
        cmd(&["nft", "add", "table", "inet", t], false),
        cmd(&["nft", "add", "chain", "inet", t, "input", &chain], false),
        cmd(
            &[
                "nft", "add", "rule", "inet", t, "input", "iifname", "lo", "accept",
            ],
            false,
        ),
    ];
    for (fam, nets) in [("ip", o.allow_v4()), ("ip6", o.allow_v6())] {
        for n in nets {
            for (proto, set) in [("udp", &udp), ("tcp", &tcp)] {
                v.push(cmd(
                    &[
                        "nft", "add", "rule", "inet", t, "input", fam, "saddr", &n, proto, "dport",
                        set, "accept",
                    ],
                    false,
                ));
            }
        }
    }
    for (proto, set) in [("udp", &udp), ("tcp", &tcp)] {
        v.push(cmd(
            &[
                "nft", "add", "rule", "inet", t, "input", proto, "dport", set, "drop",
            ],
            false,
        ));
    }
    v
}

fn ipt_apply(o: &FirewallOptions) -> Vec<FwCommand> {
    let mut v = Vec::new();
    let udp = join(&o.udp_ports(), ",");
    let tcp = join(&o.tcp_ports(), ",");
    for (tool, nets) in [("iptables", o.allow_v4()), ("ip6tables", o.allow_v6())] {
        let c = IPT_CHAIN;
        v.push(cmd(&[tool, "-w", "-D", "INPUT", "-j", c], true));
        v.push(cmd(&[tool, "-w", "-F", c], true));
        v.push(cmd(&[tool, "-w", "-X", c], true));
        v.push(cmd(&[tool, "-w", "-N", c], false));
        v.push(cmd(
            &[tool, "-w", "-A", c, "-i", "lo", "-j", "RETURN"],
            false,
        ));
        for n in &nets {
            for (proto, ports) in [("udp", &udp), ("tcp", &tcp)] {
                v.push(cmd(
                    &[
                        tool,
                        "-w",
                        "-A",
                        c,
                        "-s",
                        n,
                        "-p",
                        proto,
                        "-m",
                        "multiport",
                        "--dports",
                        ports,
                        "-j",
                        "RETURN",
                    ],
                    false,
                ));
            }
        }
        for (proto, ports) in [("udp", &udp), ("tcp", &tcp)] {
            v.push(cmd(
                &[
                    tool,
                    "-w",
                    "-A",
                    c,
                    "-p",
                    proto,
                    "-m",
                    "multiport",
                    "--dports",
                    ports,
                    "-j",
                    "DROP",
                ],
                false,
            ));
        }
        v.push(cmd(&[tool, "-w", "-I", "INPUT", "1", "-j", c], false));
    }
    v
}

/// ufw: the allows first (ufw applies the first matching rule), then the denies. ufw skips
/// rules it already has, so applying twice changes nothing.
fn ufw_commands(o: &FirewallOptions, remove: bool) -> Vec<FwCommand> {
    let pre: &[&str] = if remove {
        &["ufw", "--force", "delete"]
    } else {
        &["ufw"]
    };
    let mut v = Vec::new();
    let ports: Vec<(u16, &str)> = o
        .ports()
        .iter()
        .map(|p| (p.number(), if p.is_udp() { "udp" } else { "tcp" }))
        .collect();
    for n in o.allow.iter().map(|n| n.trunc().to_string()) {
        for (port, proto) in &ports {
            let port = port.to_string();
            let mut a: Vec<&str> = pre.to_vec();
            a.extend([
                "allow", "from", &n, "to", "any", "port", &port, "proto", proto,
            ]);
            v.push(cmd(&a, false));
        }
    }
    for (port, proto) in &ports {
        let spec = format!("{port}/{proto}");
        let mut a: Vec<&str> = pre.to_vec();
        a.extend(["deny", &spec]);
        v.push(cmd(&a, false));
    }
    v
}

/// Quote one word for a POSIX shell (only for display: commands are run without a shell).
pub fn shell_quote(w: &str) -> String {
    if !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:,=@+".contains(&b))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// The commands as a shell script (cleanup steps get `|| true`).
pub fn to_script(cmds: &[FwCommand]) -> String {
    let mut s = String::from("#!/bin/sh\n# generated by nbdgm firewall\nset -e\n");
    for c in cmds {
        let line: Vec<String> = c.argv.iter().map(|w| shell_quote(w)).collect();
        s.push_str(&line.join(" "));
        if c.may_fail {
            s.push_str(" 2>/dev/null || true");
        }
        s.push('\n');
    }
    s
}

/// One command's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmdOutcome {
    pub argv: Vec<String>,
    pub ok: bool,
    pub message: String,
}

/// Run the commands in order. A failing command that may not fail stops the run; the
/// outcomes so far come back with the error.
pub fn run_commands(
    cmds: &[FwCommand],
    timeout: Duration,
) -> Result<Vec<CmdOutcome>, (Vec<CmdOutcome>, String)> {
    let mut out = Vec::new();
    for c in cmds {
        let Some(prog) = c.argv.first() else { continue };
        let path = find_tool(prog).unwrap_or_else(|| PathBuf::from(prog));
        let mut command = Command::new(path);
        command.args(&c.argv[1..]);
        let r = run_bounded(command, timeout);
        let (ok, message) = match r {
            Ok(o) if o.status.success() => (true, String::new()),
            Ok(o) => (
                false,
                format!(
                    "{}: {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            ),
            Err(e) => (false, e.to_string()),
        };
        out.push(CmdOutcome {
            argv: c.argv.clone(),
            ok,
            message: message.clone(),
        });
        if !ok && !c.may_fail {
            let line = c.argv.join(" ");
            return Err((out, format!("`{line}` failed: {message}")));
        }
    }
    Ok(out)
}

/// Something that probes `target` from another vantage point.
pub trait Verifier {
    /// Probe the ports of `target`.
    fn probe(&self, target: Ipv4Addr, ports: &[Port]) -> Result<Vec<PortResult>, String>;
    /// `from network namespace X`.
    fn describe(&self) -> String;
}

/// Probes from a network namespace by running `ip netns exec NETNS PROGRAM probe ...`
/// (`PROGRAM` is the `nbdgm` binary; its `probe` command is `probe::probe_host`).
#[derive(Debug, Clone)]
pub struct NetnsExecVerifier {
    pub netns: String,
    pub program: PathBuf,
    pub timeout_ms: u64,
    pub retries: u32,
}

/// The `--ports` value for `nbdgm probe`.
pub fn ports_arg(ports: &[Port]) -> String {
    ports
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

impl Verifier for NetnsExecVerifier {
    fn probe(&self, target: Ipv4Addr, ports: &[Port]) -> Result<Vec<PortResult>, String> {
        if self.netns.is_empty() || self.netns.contains('/') || self.netns.starts_with('.') {
            return Err(format!("{:?} is not a network namespace name", self.netns));
        }
        let ip = find_tool("ip").ok_or("`ip` not found")?;
        let mut c = Command::new(ip);
        c.args(["netns", "exec", &self.netns])
            .arg(&self.program)
            .args(["probe", &target.to_string(), "--ports", &ports_arg(ports)])
            .args(["--format", "json", "--no-progress"])
            .args(["--timeout-ms", &self.timeout_ms.to_string()])
            .args(["--retries", &self.retries.to_string()]);
        let o = run_bounded(c, Duration::from_secs(120)).map_err(|e| format!("probe: {e}"))?;
        let hosts: Vec<HostResult> = serde_json::from_slice(&o.stdout).map_err(|e| {
            format!(
                "probe from {} gave no result ({}): {} {}",
                self.netns,
                o.status,
                e,
                String::from_utf8_lossy(&o.stderr).trim()
            )
        })?;
        hosts
            .into_iter()
            .next()
            .map(|h| h.ports)
            .ok_or_else(|| "probe returned no host".into())
    }

    fn describe(&self) -> String {
        format!("network namespace {}", self.netns)
    }
}

/// The verification after applying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub from: String,
    pub target: Ipv4Addr,
    pub ports: Vec<PortResult>,
    /// Ports that still answer (open / likely-open).
    pub still_exposed: Vec<Port>,
}

/// Probe `target` with `v` and report which ports still answer.
pub fn verify(v: &dyn Verifier, target: Ipv4Addr, ports: &[Port]) -> Result<Verification, String> {
    let results = v.probe(target, ports)?;
    Ok(Verification {
        from: v.describe(),
        target,
        still_exposed: results
            .iter()
            .filter(|r| r.state.is_exposed())
            .map(|r| r.port)
            .collect(),
        ports: results,
    })
}

/// Whether a probe state shows the port closed off by a firewall or nothing listening.
pub fn is_blocked(s: PortState) -> bool {
    matches!(
        s,
        PortState::Filtered | PortState::OpenFiltered | PortState::Closed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(backend: Backend, allow: &[&str], include_445: bool) -> FirewallOptions {
        FirewallOptions {
            backend,
            allow: allow.iter().map(|a| a.parse().unwrap()).collect(),
            include_445,
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("abc"), "abc");
        assert_eq!(shell_quote("{ 137, 138 }"), "'{ 137, 138 }'");
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn ports_selection() {
        let o = opts(Backend::Nftables, &[], false);
        assert_eq!(o.udp_ports(), vec![137, 138]);
        assert_eq!(o.tcp_ports(), vec![138, 139]);
        let o = opts(Backend::Nftables, &[], true);
        assert_eq!(o.tcp_ports(), vec![138, 139, 445]);
    }
}
