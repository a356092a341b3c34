//! `nbdgm firewall`: rules that close 137/udp, 138/udp, 138/tcp, 139/tcp (and
//! 445/tcp on request) to everyone except loopback and the allowed networks, for nftables
//! (own table `inet nbdgm`), iptables/ip6tables (own chain `NBDGM` jumped to from INPUT) and
//! ufw. Rules are argument vectors run without a shell; applying replaces a previous
//! application (idempotent) and removing deletes exactly what applying created. After
//! applying, a [`Verifier`] probes the host from another vantage point.
//!
//! Tools are run from the system directories only ([`crate::find_tool`], never
//! `$PATH`); nftables rules go in as one `nft -f -` transaction (all or nothing); ufw rules
//! are prepended (they win over earlier allow rules) and tagged with the comment
//! [`UFW_TAG`], by which `--remove` finds exactly them.

use crate::command::{find_tool, run_bounded, run_bounded_with_input, ToolError};
pub use ipnet::IpNet;
use nbdgm_probe::probe::{HostResult, Port, PortResult, PortState};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
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
/// The comment on every ufw rule nbdgm adds.
pub const UFW_TAG: &str = "nbdgm";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Nftables,
    Iptables,
    Ufw,
}

/// Why rules cannot be made, applied or verified.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("{0:?} is not a CIDR or an address")]
    BadNet(String),
    #[error("at most {MAX_ALLOW} --allow networks")]
    TooManyNets,
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("ufw status: {0}")]
    UfwStatusRun(#[source] std::io::Error),
    #[error("ufw status: {status}: {stderr}")]
    UfwStatus { status: ExitStatus, stderr: String },
    /// A command that may not fail failed.
    #[error("`{line}` failed: {message}")]
    CommandFailed { line: String, message: String },
    #[error("{0:?} is not a network namespace name")]
    BadNetns(String),
    #[error("probe: {0}")]
    ProbeRun(#[source] std::io::Error),
    #[error("probe from {netns} gave no result ({status}): {error} {stderr}")]
    ProbeOutput {
        netns: String,
        status: ExitStatus,
        error: serde_json::Error,
        stderr: String,
    },
    #[error("probe returned no host")]
    NoHost,
    /// A [`Verifier`]'s own reason.
    #[error("{0}")]
    Verifier(String),
}

/// What to close and for whom to keep it open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallOptions {
    pub backend: Backend,
    pub allow: Vec<IpNet>,
    pub include_445: bool,
}

/// Parse an `--allow` value: a CIDR or a single address (IPv4 or IPv6), host bits cleared.
pub fn parse_net(s: &str) -> Result<IpNet, FirewallError> {
    s.trim()
        .parse::<IpNet>()
        .or_else(|_| s.trim().parse::<std::net::IpAddr>().map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| FirewallError::BadNet(s.to_owned()))
}

/// One command: an argument vector, run without a shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwCommand {
    pub argv: Vec<String>,
    /// Cleanup of a previous application: failing is fine (nothing to clean).
    pub may_fail: bool,
    /// Written to the command's standard input (the ruleset of `nft -f -`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
}

fn cmd(argv: &[&str], may_fail: bool) -> FwCommand {
    FwCommand {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        may_fail,
        stdin: None,
    }
}

impl FirewallOptions {
    /// Check the options: at most [`MAX_ALLOW`] networks, given in canonical form.
    pub fn validate(&self) -> Result<(), FirewallError> {
        if self.allow.len() > MAX_ALLOW {
            return Err(FirewallError::TooManyNets);
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
        self.port_numbers(true)
    }

    fn tcp_ports(&self) -> Vec<u16> {
        self.port_numbers(false)
    }

    fn port_numbers(&self, udp: bool) -> Vec<u16> {
        self.ports()
            .iter()
            .filter(|p| p.is_udp() == udp)
            .map(|p| p.number())
            .collect()
    }

    fn allow_v4(&self) -> Vec<String> {
        self.allowed(|n| matches!(n, IpNet::V4(_)))
    }

    fn allow_v6(&self) -> Vec<String> {
        self.allowed(|n| matches!(n, IpNet::V6(_)))
    }

    fn allowed(&self, family: impl Fn(&IpNet) -> bool) -> Vec<String> {
        self.allow
            .iter()
            .filter(|n| family(n))
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
        Backend::Ufw => ufw_commands(o),
    }
}

/// The commands that remove what [`apply_commands`] created. For ufw they depend on the
/// rule numbers of the moment: see [`ufw_remove_commands`] (this gives none).
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
        Backend::Ufw => Vec::new(),
    }
}

/// The nftables ruleset [`apply_commands`] loads: declare the table, delete it, declare it
/// whole. In one `nft -f` this replaces an earlier application atomically and never fails
/// for want of one.
pub fn nft_ruleset(o: &FirewallOptions) -> String {
    use std::fmt::Write as _;
    let t = NFT_TABLE;
    let udp = format!("{{ {} }}", join(&o.udp_ports(), ", "));
    let tcp = format!("{{ {} }}", join(&o.tcp_ports(), ", "));
    let mut s = format!("table inet {t}\ndelete table inet {t}\ntable inet {t} {{\n");
    s.push_str("\tchain input {\n");
    let _ = writeln!(
        s,
        "\t\ttype filter hook input priority {NFT_PRIORITY}; policy accept;"
    );
    s.push_str("\t\tiifname \"lo\" accept\n");
    for (fam, nets) in [("ip", o.allow_v4()), ("ip6", o.allow_v6())] {
        for n in nets {
            for (proto, set) in [("udp", &udp), ("tcp", &tcp)] {
                let _ = writeln!(s, "\t\t{fam} saddr {n} {proto} dport {set} accept");
            }
        }
    }
    for (proto, set) in [("udp", &udp), ("tcp", &tcp)] {
        let _ = writeln!(s, "\t\t{proto} dport {set} drop");
    }
    s.push_str("\t}\n}\n");
    s
}

fn nft_apply(o: &FirewallOptions) -> Vec<FwCommand> {
    vec![FwCommand {
        argv: vec!["nft".into(), "-f".into(), "-".into()],
        may_fail: false,
        stdin: Some(nft_ruleset(o)),
    }]
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
        // `-A <chain> [-s <net>] -p <proto> -m multiport --dports <ports> -j <target>`.
        let mut port_rules = |source: &[&str], target: &str| {
            for (proto, ports) in [("udp", &udp), ("tcp", &tcp)] {
                let mut argv = vec![tool, "-w", "-A", c];
                argv.extend_from_slice(source);
                argv.extend([
                    "-p",
                    proto,
                    "-m",
                    "multiport",
                    "--dports",
                    ports.as_str(),
                    "-j",
                    target,
                ]);
                v.push(cmd(&argv, false));
            }
        };
        for n in &nets {
            port_rules(&["-s", n], "RETURN");
        }
        port_rules(&[], "DROP");
        v.push(cmd(&[tool, "-w", "-I", "INPUT", "1", "-j", c], false));
    }
    v
}

/// ufw: every rule is prepended (`ufw prepend`: to the top of the list, so it wins over
/// any earlier allow; `insert 1` fails on an empty list) and tagged `comment nbdgm`. Each
/// prepend lands above the previous one, so the denies go in first and the allows last:
/// the list then starts with the allows, then the denies. ufw skips rules it already has,
/// so applying twice changes nothing.
fn ufw_commands(o: &FirewallOptions) -> Vec<FwCommand> {
    let mut v = Vec::new();
    let ports: Vec<(u16, &str)> = o
        .ports()
        .iter()
        .map(|p| (p.number(), if p.is_udp() { "udp" } else { "tcp" }))
        .collect();
    for (port, proto) in ports.iter().rev() {
        let spec = format!("{port}/{proto}");
        v.push(cmd(
            &["ufw", "prepend", "deny", &spec, "comment", UFW_TAG],
            false,
        ));
    }
    let nets: Vec<String> = o.allow.iter().map(|n| n.trunc().to_string()).collect();
    for n in nets.iter().rev() {
        for (port, proto) in ports.iter().rev() {
            let port = port.to_string();
            v.push(cmd(
                &[
                    "ufw", "prepend", "allow", "from", n, "to", "any", "port", &port, "proto",
                    proto, "comment", UFW_TAG,
                ],
                false,
            ));
        }
    }
    v
}

/// The numbers of the rules tagged [`UFW_TAG`] in `ufw status numbered` output.
pub fn ufw_tagged_rules(status_numbered: &str) -> Vec<u32> {
    status_numbered
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let (num, rest) = l.strip_prefix('[')?.split_once(']')?;
            let (_, comment) = rest.rsplit_once('#')?;
            (comment.trim() == UFW_TAG).then(|| num.trim().parse().ok())?
        })
        .collect()
}

/// The commands that delete exactly the rules nbdgm added, by number, highest first (so
/// the remaining numbers stay valid), given the `ufw status numbered` output.
pub fn ufw_remove_commands(status_numbered: &str) -> Vec<FwCommand> {
    let mut nums = ufw_tagged_rules(status_numbered);
    nums.sort_unstable_by(|a, b| b.cmp(a));
    nums.dedup();
    nums.iter()
        .map(|n| cmd(&["ufw", "--force", "delete", &n.to_string()], false))
        .collect()
}

/// `ufw status numbered`, run from the system path.
pub fn ufw_status_numbered(timeout: Duration) -> Result<String, FirewallError> {
    let ufw = find_tool("ufw")?;
    let mut c = Command::new(ufw);
    c.args(["status", "numbered"]);
    let o = run_bounded(c, timeout).map_err(FirewallError::UfwStatusRun)?;
    if !o.status.success() {
        return Err(FirewallError::UfwStatus {
            status: o.status,
            stderr: nbdgm_wire::text::escape(String::from_utf8_lossy(&o.stderr).trim())
                .into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
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

/// The commands as a shell script (cleanup steps get `|| true`; standard input as a
/// quoted here-document).
pub fn to_script(cmds: &[FwCommand]) -> String {
    let mut s = String::from("#!/bin/sh\n# generated by nbdgm firewall\nset -e\n");
    for c in cmds {
        let line: Vec<String> = c.argv.iter().map(|w| shell_quote(w)).collect();
        s.push_str(&line.join(" "));
        if c.may_fail {
            s.push_str(" 2>/dev/null || true");
        }
        match &c.stdin {
            Some(input) => {
                s.push_str(" <<'NBDGM_EOF'\n");
                s.push_str(input);
                if !input.ends_with('\n') {
                    s.push('\n');
                }
                s.push_str("NBDGM_EOF\n");
            }
            None => s.push('\n'),
        }
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
) -> Result<Vec<CmdOutcome>, (Vec<CmdOutcome>, FirewallError)> {
    let mut out = Vec::new();
    for c in cmds {
        let Some(prog) = c.argv.first() else { continue };
        // The system's tool, never one found through $PATH (we run as root).
        let path = match find_tool(prog) {
            Ok(p) => p,
            Err(e) => return Err((out, e.into())),
        };
        let mut command = Command::new(&path);
        command.args(&c.argv[1..]);
        let r = run_bounded_with_input(command, c.stdin.as_deref(), timeout);
        let (ok, message) = match r {
            Ok(o) if o.status.success() => (true, String::new()),
            Ok(o) => (
                false,
                format!(
                    "{}: {}",
                    o.status,
                    nbdgm_wire::text::escape(String::from_utf8_lossy(&o.stderr).trim())
                ),
            ),
            Err(e) => (false, e.to_string()),
        };
        let mut argv = c.argv.clone();
        argv[0] = path.display().to_string();
        out.push(CmdOutcome {
            argv,
            ok,
            message: message.clone(),
        });
        if !ok && !c.may_fail {
            let line = c.argv.join(" ");
            return Err((out, FirewallError::CommandFailed { line, message }));
        }
    }
    Ok(out)
}

/// Something that probes `target` from another vantage point.
pub trait Verifier {
    /// Probe the ports of `target`.
    fn probe(&self, target: Ipv4Addr, ports: &[Port]) -> Result<Vec<PortResult>, FirewallError>;
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
    fn probe(&self, target: Ipv4Addr, ports: &[Port]) -> Result<Vec<PortResult>, FirewallError> {
        if self.netns.is_empty() || self.netns.contains('/') || self.netns.starts_with('.') {
            return Err(FirewallError::BadNetns(self.netns.clone()));
        }
        let ip = find_tool("ip")?;
        let mut c = Command::new(ip);
        c.args(["netns", "exec", &self.netns])
            .arg(&self.program)
            .args(["probe", &target.to_string(), "--ports", &ports_arg(ports)])
            .args(["--format", "json", "--no-progress"])
            .args(["--timeout-ms", &self.timeout_ms.to_string()])
            .args(["--retries", &self.retries.to_string()]);
        let o = run_bounded(c, Duration::from_secs(120)).map_err(FirewallError::ProbeRun)?;
        let hosts: Vec<HostResult> =
            serde_json::from_slice(&o.stdout).map_err(|error| FirewallError::ProbeOutput {
                netns: self.netns.clone(),
                status: o.status,
                error,
                stderr: String::from_utf8_lossy(&o.stderr).trim().to_owned(),
            })?;
        hosts
            .into_iter()
            .next()
            .map(|h| h.ports)
            .ok_or(FirewallError::NoHost)
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
pub fn verify(
    v: &dyn Verifier,
    target: Ipv4Addr,
    ports: &[Port],
) -> Result<Verification, FirewallError> {
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
