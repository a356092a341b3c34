//! `nbdgm audit`: on the host itself, who is bound to 137, 138, 139 and 445
//! and whether the firewall lets an unsolicited packet from outside reach each NetBIOS port.
//! The work is `nbdgm_audit`; this is its command line (docs/audit.md). `--watch` is in
//! [`watch`].

use crate::exit;
use clap::{Args, ValueEnum};
use nbdgm_audit::{self as audit, AuditOptions};
use std::path::PathBuf;
use std::time::Duration;

mod watch;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFormat {
    Text,
    Json,
    /// One JSON record a line (`--watch`; one audit: the report on one line).
    Ndjson,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    sudo nbdgm audit\n  \
    sudo nbdgm audit --format json | jq '.ports[] | select(.exposed)'\n  \
    sudo ip netns exec lab1 nbdgm audit\n  \
    sudo nbdgm audit --watch                                  # alerts on drift, until SIGINT/SIGTERM\n  \
    sudo nbdgm audit --watch --interval 10s --format ndjson --config /etc/nbdgm/audit.toml\n  \
    sudo ip netns exec lab1 nbdgm audit --watch --duration 1m --format ndjson\n\n\
For each of 137/udp, 138/udp, 138/tcp, 139/tcp and 445/tcp: the sockets bound to it (pid,\n\
command, user) and the firewall's verdict for an unsolicited packet from outside (open to\n\
everyone, open to <networks>, closed, or undetermined with the rule that could not be\n\
evaluated), from nftables (`nft -j list ruleset`), legacy iptables (`iptables-save`) and ufw.\n\
Run as root to see every socket's owner and to read the firewall. Rules: docs/audit.md.\n\n\
Exit codes: 0 nothing exposed; 1 some port listens on a non-loopback address and the firewall\n\
does not close it (findings); 2 error.\n\n\
--watch: a baseline audit (printed as `state` lines), then a new audit every --interval and\n\
soon after each link, address or nftables change (netlink notifications; listeners are\n\
polled). One alert per new fact, again only after it went away and came back:\n\
listener-appeared, listener-gone, rule-removed, rule-shadowed, interface-new,\n\
baseline-exposed, exposure-closed. --config FILE sends them through its [[sink]] tables\n\
(webhook, chat, email, exec) with [audit.alerts] (min_severity, queue, attempts). Exit 0 on\n\
SIGINT, SIGTERM, --duration or --count; 2 on a usage error.")]
pub struct AuditArgs {
    #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
    pub format: AuditFormat,
    /// Only list the sockets; do not read the firewall (every verdict is "open to everyone").
    #[arg(long)]
    pub no_firewall: bool,
    /// Longest wait for each firewall command, in seconds (1-300).
    #[arg(long, default_value_t = 20, value_name = "S")]
    pub timeout: u64,
    /// The proc file system to read (for tests).
    #[arg(long, default_value = "/proc", value_name = "DIR", hide = true)]
    pub proc_root: PathBuf,
    /// Keep watching and alert on drift (new listener, removed or shadowed rule, new interface).
    #[arg(long)]
    pub watch: bool,
    /// Time between two polls with --watch (1s-1h).
    #[arg(long, default_value = "30s", value_name = "DURATION",
          value_parser = crate::tools::parse_duration, requires = "watch")]
    pub interval: Duration,
    /// Stop watching after this long.
    #[arg(long, value_name = "DURATION", value_parser = crate::tools::parse_duration,
          requires = "watch")]
    pub duration: Option<Duration>,
    /// Stop watching after this many audits (the baseline counts).
    #[arg(long, value_name = "N", requires = "watch",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// A file with [[sink]] tables and [audit.alerts] (the monitor's sinks) for --watch alerts.
    #[arg(long, value_name = "FILE", requires = "watch")]
    pub config: Option<PathBuf>,
    /// Do not subscribe to netlink change events; poll only.
    #[arg(long, requires = "watch")]
    pub no_events: bool,
}

pub fn run(args: &AuditArgs) -> u8 {
    if !(1..=300).contains(&args.timeout) {
        eprintln!("nbdgm audit: --timeout must be 1-300");
        return exit::USAGE;
    }
    if !args.proc_root.join("net").exists() && !args.proc_root.join("thread-self/net").exists() {
        eprintln!(
            "nbdgm audit: {} has no net/ directory (is /proc mounted?)",
            args.proc_root.display()
        );
        return exit::USAGE;
    }
    if args.watch {
        return watch::run(args);
    }
    let report = audit::audit(&AuditOptions {
        proc_root: args.proc_root.clone(),
        firewall: !args.no_firewall,
        timeout: Duration::from_secs(args.timeout),
    });
    match args.format {
        AuditFormat::Text => print!("{}", audit::to_text(&report)),
        AuditFormat::Json => println!("{}", audit::to_json(&report)),
        AuditFormat::Ndjson => println!(
            "{}",
            serde_json::to_string(&report).unwrap_or_else(|_| "{}".into())
        ),
    }
    audit::exit_code(&report)
}
