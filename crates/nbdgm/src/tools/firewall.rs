//! `nbdgm firewall`: print, apply or remove rules closing 137–139 (and 445 on request) to
//! everyone but loopback and the allowed networks, for nftables, iptables or ufw, and verify
//! the result with a probe from another network namespace. The rules are
//! `nbdgm_audit::firewall`; this is the command line (docs/audit.md).

use crate::exit;
use clap::{Args, ValueEnum};
use nbdgm_audit::firewall::{self, Backend, FirewallOptions, NetnsExecVerifier};
use nbdgm_probe::probe::PortState;
use std::net::Ipv4Addr;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendArg {
    Ufw,
    Nftables,
    Iptables,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm firewall --backend nftables                      # print the rules as a script\n  \
    nbdgm firewall --backend iptables --allow 198.51.100.0/24 --format json\n  \
    sudo nbdgm firewall --backend nftables --allow 198.51.100.0/24 --apply \\\n      \
    --verify-from labns --verify-target 198.51.100.10\n  \
    sudo nbdgm firewall --backend nftables --remove\n\n\
Closes 137/udp, 138/udp, 138/tcp and 139/tcp (445/tcp with --include-445) to everyone but\n\
loopback and the --allow networks. nftables: table `inet nbdgm`; iptables: chain NBDGM\n\
jumped to from INPUT (iptables and ip6tables); ufw: allow/deny rules prepended to the list\n\
and tagged `comment nbdgm`. --apply replaces an earlier application (nftables: in one\n\
transaction); --remove deletes it (ufw: every rule tagged nbdgm). The tools are run from\n\
/usr/sbin, /sbin, /usr/bin or /bin, never from $PATH.\n\n\
Exit codes: 0 done (and, with --verify-from, no port answers); 1 a port still answers after\n\
--apply; 2 usage error or a command failed.")]
pub struct FirewallArgs {
    #[arg(long, value_enum)]
    pub backend: BackendArg,
    /// A network that keeps access (IPv4 or IPv6 CIDR or address); repeatable.
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<String>,
    /// Also close 445/tcp (SMB direct).
    #[arg(long)]
    pub include_445: bool,
    /// Apply the rules (needs root), then verify.
    #[arg(long, conflicts_with = "remove")]
    pub apply: bool,
    /// Remove the rules applied earlier.
    #[arg(long)]
    pub remove: bool,
    /// Verify from this network namespace (`ip netns` name) after --apply or --remove.
    #[arg(long, value_name = "NETNS")]
    pub verify_from: Option<String>,
    /// The address to probe when verifying.
    #[arg(long, value_name = "IP")]
    pub verify_target: Option<String>,
    #[arg(long, value_enum, default_value_t = FwFormat::Text)]
    pub format: FwFormat,
}

pub fn run(args: &FirewallArgs) -> u8 {
    let allow = match args
        .allow
        .iter()
        .map(|a| firewall::parse_net(a).map_err(|e| format!("--allow: {e}")))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nbdgm firewall: {e}");
            return exit::USAGE;
        }
    };
    let opts = FirewallOptions {
        backend: match args.backend {
            BackendArg::Ufw => Backend::Ufw,
            BackendArg::Nftables => Backend::Nftables,
            BackendArg::Iptables => Backend::Iptables,
        },
        allow,
        include_445: args.include_445,
    };
    if let Err(e) = opts.validate() {
        eprintln!("nbdgm firewall: {e}");
        return exit::USAGE;
    }
    let target: Option<Ipv4Addr> = match args.verify_target.as_deref().map(str::parse) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => {
            eprintln!("nbdgm firewall: --verify-target must be an IPv4 address");
            return exit::USAGE;
        }
    };
    if args.verify_from.is_some() && target.is_none() {
        eprintln!("nbdgm firewall: --verify-from needs --verify-target");
        return exit::USAGE;
    }
    let cmds = if args.remove && opts.backend == Backend::Ufw {
        // ufw deletes by rule number: the rules tagged nbdgm, read now.
        match firewall::ufw_status_numbered(firewall::COMMAND_TIMEOUT) {
            Ok(status) => firewall::ufw_remove_commands(&status),
            Err(e) => {
                eprintln!("nbdgm firewall: remove: {e}");
                return exit::USAGE;
            }
        }
    } else if args.remove {
        firewall::remove_commands(&opts)
    } else {
        firewall::apply_commands(&opts)
    };
    if !args.apply && !args.remove {
        match args.format {
            FwFormat::Text => print!("{}", firewall::to_script(&cmds)),
            FwFormat::Json => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&cmds).unwrap_or_default()
                )
            }
        }
        return exit::OK;
    }
    let what = if args.apply { "apply" } else { "remove" };
    let outcomes = match firewall::run_commands(&cmds, firewall::COMMAND_TIMEOUT) {
        Ok(o) => o,
        Err((_, e)) => {
            eprintln!("nbdgm firewall: {what}: {e}");
            return exit::USAGE;
        }
    };
    let text = args.format == FwFormat::Text;
    if text {
        println!("{what}: {} commands run", outcomes.len());
    }
    let ports = opts.ports();
    let (Some(netns), Some(target)) = (args.verify_from.clone(), target) else {
        let t = target.map_or("<this host's address>".to_string(), |t| t.to_string());
        let msg = format!(
            "verification needs another vantage point: give --verify-from NETNS --verify-target IP \
             (or run `nbdgm probe {t} --ports {}` from another host)",
            firewall::ports_arg(&ports)
        );
        if text {
            println!("{msg}");
        } else {
            println!(
                "{}",
                serde_json::json!({ "action": what, "commands": outcomes, "verification": null, "note": msg })
            );
        }
        return exit::OK;
    };
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nbdgm firewall: cannot find my own binary for the probe: {e}");
            return exit::USAGE;
        }
    };
    let verifier = NetnsExecVerifier {
        netns,
        program,
        timeout_ms: 500,
        retries: 1,
    };
    let v = match firewall::verify(&verifier, target, &ports) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("nbdgm firewall: verification failed: {e}");
            return exit::USAGE;
        }
    };
    if text {
        println!("verification: probe of {} from {}", v.target, v.from);
        for r in &v.ports {
            println!(
                "  {:<8} {:<14} {}",
                r.port.as_str(),
                r.state.as_str(),
                nbdgm_wire::text::Escaped(&r.evidence)
            );
        }
        if v.still_exposed.is_empty() {
            println!("no port answers from {}", v.from);
        } else {
            println!(
                "still answering from {}: {}",
                v.from,
                firewall::ports_arg(&v.still_exposed)
            );
        }
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "action": what, "commands": outcomes, "verification": v
            }))
            .unwrap_or_default()
        );
    }
    let failed = v.ports.iter().any(|r| r.state == PortState::Error);
    if failed {
        exit::USAGE
    } else if args.apply && !v.still_exposed.is_empty() {
        exit::FINDINGS
    } else {
        exit::OK
    }
}
