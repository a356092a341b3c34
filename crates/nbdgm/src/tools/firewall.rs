//! `nbdgm firewall`: print, apply or remove rules closing 137–139 (and 445 on request) to
//! everyone but loopback and the allowed networks, for nftables, iptables or ufw, and verify
//! the result with a probe from another network namespace. The rules are
//! `nbdgm_audit::firewall`; this is the command line (docs/audit.md).

use crate::exit;
use clap::{Args, ValueEnum};
use nbdgm_audit::firewall::{
    self, Backend, CmdOutcome, FirewallError, FirewallOptions, FwCommand, NetnsExecVerifier,
    Verification,
};
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

/// Why `nbdgm firewall` stopped (exit status 2).
#[derive(Debug, thiserror::Error)]
enum FwCliError {
    #[error("--allow: {0}")]
    Allow(#[source] FirewallError),
    #[error("{0}")]
    Options(#[source] FirewallError),
    #[error("--verify-target must be an IPv4 address")]
    VerifyTarget,
    #[error("--verify-from needs --verify-target")]
    VerifyFromAlone,
    #[error("remove: {0}")]
    UfwStatus(#[source] FirewallError),
    #[error("{what}: {source}")]
    Run {
        what: &'static str,
        #[source]
        source: FirewallError,
    },
    #[error("cannot find my own binary for the probe: {0}")]
    OwnBinary(#[source] std::io::Error),
    #[error("verification failed: {0}")]
    Verify(#[source] FirewallError),
}

pub fn run(args: &FirewallArgs) -> u8 {
    match run_checked(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nbdgm firewall: {e}");
            exit::USAGE
        }
    }
}

fn run_checked(args: &FirewallArgs) -> Result<u8, FwCliError> {
    let (opts, target) = options(args)?;
    let cmds = commands(args, &opts)?;
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
        return Ok(exit::OK);
    }
    let what = if args.apply { "apply" } else { "remove" };
    let outcomes = firewall::run_commands(&cmds, firewall::COMMAND_TIMEOUT)
        .map_err(|(_, source)| FwCliError::Run { what, source })?;
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
        return Ok(exit::OK);
    };
    let verifier = NetnsExecVerifier {
        netns,
        program: std::env::current_exe().map_err(FwCliError::OwnBinary)?,
        timeout_ms: 500,
        retries: 1,
    };
    let v = firewall::verify(&verifier, target, &ports).map_err(FwCliError::Verify)?;
    print_verification(text, what, &outcomes, &v);
    let failed = v.ports.iter().any(|r| r.state == PortState::Error);
    Ok(if failed {
        exit::USAGE
    } else if args.apply && !v.still_exposed.is_empty() {
        exit::FINDINGS
    } else {
        exit::OK
    })
}

/// The options, and the verification target, checked in the order of the arguments.
fn options(args: &FirewallArgs) -> Result<(FirewallOptions, Option<Ipv4Addr>), FwCliError> {
    let allow = args
        .allow
        .iter()
        .map(|a| firewall::parse_net(a).map_err(FwCliError::Allow))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = FirewallOptions {
        backend: match args.backend {
            BackendArg::Ufw => Backend::Ufw,
            BackendArg::Nftables => Backend::Nftables,
            BackendArg::Iptables => Backend::Iptables,
        },
        allow,
        include_445: args.include_445,
    };
    opts.validate().map_err(FwCliError::Options)?;
    let target: Option<Ipv4Addr> = match args.verify_target.as_deref().map(str::parse) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => return Err(FwCliError::VerifyTarget),
    };
    if args.verify_from.is_some() && target.is_none() {
        return Err(FwCliError::VerifyFromAlone);
    }
    Ok((opts, target))
}

/// The commands to print or run.
fn commands(args: &FirewallArgs, opts: &FirewallOptions) -> Result<Vec<FwCommand>, FwCliError> {
    Ok(if args.remove && opts.backend == Backend::Ufw {
        // ufw deletes by rule number: the rules tagged nbdgm, read now.
        let status = firewall::ufw_status_numbered(firewall::COMMAND_TIMEOUT)
            .map_err(FwCliError::UfwStatus)?;
        firewall::ufw_remove_commands(&status)
    } else if args.remove {
        firewall::remove_commands(opts)
    } else {
        firewall::apply_commands(opts)
    })
}

fn print_verification(text: bool, what: &str, outcomes: &[CmdOutcome], v: &Verification) {
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
}
