//! `nbdgm audit`: on the host itself, who is bound to 137, 138, 139 and 445
//! and whether the firewall lets an unsolicited packet from outside reach each NetBIOS port.
//! The work is `nbdgm_audit`; this is its command line (docs/audit.md).

use crate::exit;
use clap::{Args, ValueEnum};
use nbdgm_audit::{self as audit, AuditOptions};
use std::path::PathBuf;
use std::time::Duration;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    sudo nbdgm audit\n  \
    sudo nbdgm audit --format json | jq '.ports[] | select(.exposed)'\n  \
    sudo ip netns exec lab1 nbdgm audit\n\n\
For each of 137/udp, 138/udp, 138/tcp, 139/tcp and 445/tcp: the sockets bound to it (pid,\n\
command, user) and the firewall's verdict for an unsolicited packet from outside (open to\n\
everyone, open to <networks>, closed, or undetermined with the rule that could not be\n\
evaluated), from nftables (`nft -j list ruleset`), legacy iptables (`iptables-save`) and ufw.\n\
Run as root to see every socket's owner and to read the firewall. Rules: docs/audit.md.\n\n\
Exit codes: 0 nothing exposed; 1 some port listens on a non-loopback address and the firewall\n\
does not close it (findings); 2 error.")]
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
    let report = audit::audit(&AuditOptions {
        proc_root: args.proc_root.clone(),
        firewall: !args.no_firewall,
        timeout: Duration::from_secs(args.timeout),
    });
    match args.format {
        AuditFormat::Text => print!("{}", audit::to_text(&report)),
        AuditFormat::Json => println!("{}", audit::to_json(&report)),
    }
    audit::exit_code(&report)
}
