//! `nbdgm probe`: exposure probes of the NetBIOS ports (DIGEST §4.3 NODE STATUS,
//! §5 mailslot write, §6 GetBackupListRequest; RFC 1002 §4.3.2 SESSION REQUEST). The probing
//! itself is `nbdgm_probe::probe`; this module is the command line, the progress bar and the
//! exit codes (docs/probe.md).

use crate::exit;
use clap::{Args, ValueEnum};
use nbdgm_probe::probe::{self, Expect, Port, ProbeOptions};
use nbdgm_probe::target;
use std::io::IsTerminal;
use std::time::Duration;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeFormat {
    Text,
    Json,
    Csv,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectArg {
    Closed,
    Open,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm probe 198.51.100.10\n  \
    nbdgm probe 198.51.100.0/24 --ports 137,138/udp --format csv > exposure.csv\n  \
    nbdgm probe fileserver.example --format json\n  \
    nbdgm probe 198.51.100.10 --ports 138/udp --expect closed      # Nagios check\n  \
    nbdgm probe 198.51.100.0/24 --rate 200 --concurrency 32 --timeout-ms 500 --retries 1\n\n\
States: open, open|filtered (UDP silence), filtered (no answer to SYN, ICMP admin-prohibited,\n\
or 137/udp silent on a host discovery found up), closed (ICMP port unreachable, TCP reset),\n\
host-down (host unreachable, no ARP answer), error. Details: docs/probe.md.\n\n\
Host discovery: targets on a directly connected subnet are ARP-swept first (CAP_NET_RAW;\n\
without it the kernel resolves them and its neighbour table is read) and only those that\n\
answer are probed; the others are host-down. --no-discovery probes every address. Standard\n\
error and JSON (\"discovery\") say which ran: arp-raw, neighbour-table or none.\n\n\
Exit codes without --expect: 0 probed, nothing open; 1 some port open (findings);\n\
2 usage error, or no probe could be made at all.\n\
With --expect (Nagios plugin): 0 OK, 1 WARNING (uncertain: open|filtered),\n\
2 CRITICAL (open when expecting closed; closed/filtered/host-down when expecting open),\n\
3 UNKNOWN (a probe failed); one summary line with performance data is printed last.")]
pub struct ProbeArgs {
    /// IPv4 addresses, CIDR ranges (network and broadcast address skipped up to /30) or host
    /// names (resolved to IPv4).
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Ports to probe: 137, 138/udp, 138/tcp, 139, 445 (138 = both 138s; all).
    #[arg(
        long,
        default_value = "137,138/udp,138/tcp,139,445",
        value_name = "LIST"
    )]
    pub ports: String,
    #[arg(long, value_enum, default_value_t = ProbeFormat::Text)]
    pub format: ProbeFormat,
    /// Nagios mode: what the ports should be.
    #[arg(long, value_enum)]
    pub expect: Option<ExpectArg>,
    /// Packets and connection attempts per second, over all hosts (0 = unlimited). The
    /// default keeps the kernel's "host unreachable" errors for absent hosts under its ICMP
    /// rate limit (net.ipv4.icmp_msgs_per_sec 1000), so they are reported as host-down.
    #[arg(long, default_value_t = probe::DEFAULT_RATE, value_name = "N")]
    pub rate: u32,
    /// Hosts probed at the same time (1-4096).
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub concurrency: usize,
    /// First wait for an answer, in milliseconds (10-30000); doubled on each retry
    /// [default: 1000; 100 (or 4 x the ARP round trip) for hosts found by host discovery].
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Retries after the first packet or connect (0-8).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub retries: u32,
    /// Workgroup for the 138/udp probe when 137/udp does not tell [default: WORKGROUP].
    #[arg(long, value_name = "NAME")]
    pub workgroup: Option<String>,
    /// Refuse target lists longer than this.
    #[arg(long, default_value_t = target::DEFAULT_MAX_HOSTS, value_name = "N")]
    pub max_hosts: usize,
    /// Probe every address: no ARP host discovery first for targets on a directly connected
    /// subnet (nmap's -Pn). Discovery needs CAP_NET_RAW; without it every address is probed.
    #[arg(long)]
    pub no_discovery: bool,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

pub fn run(args: &ProbeArgs) -> u8 {
    match options(args) {
        Ok((targets, opts)) => probe_and_report(args, targets, &opts),
        Err(e) => {
            // As a Nagios plugin (--expect), a check that cannot run is UNKNOWN.
            if args.expect.is_some() {
                println!("NBDGM PROBE UNKNOWN - {e}");
                NAGIOS_UNKNOWN
            } else {
                eprintln!("nbdgm probe: {e}");
                exit::USAGE
            }
        }
    }
}

/// Nagios UNKNOWN.
const NAGIOS_UNKNOWN: u8 = 3;

/// A usage error of `nbdgm probe` (exit status 2, or Nagios UNKNOWN).
#[derive(Debug, thiserror::Error)]
enum ProbeCliError {
    #[error("--ports: {0}")]
    Ports(#[from] probe::PortListError),
    #[error("--timeout-ms must be 10-30000")]
    Timeout,
    #[error("--retries must be 0-{}", probe::MAX_RETRIES)]
    Retries,
    #[error("--concurrency must be 1-{}", probe::MAX_CONCURRENCY)]
    Concurrency,
    #[error("--max-hosts must be at least 1")]
    MaxHosts,
    #[error("--workgroup {0:?}: {1}")]
    Workgroup(String, #[source] nbdgm_wire::Error),
    #[error(transparent)]
    Targets(#[from] target::TargetError),
}

fn options(args: &ProbeArgs) -> Result<(Vec<target::Target>, ProbeOptions), ProbeCliError> {
    let ports = Port::parse_list(&args.ports)?;
    let timeout_ms = args.timeout_ms.unwrap_or(1000);
    if !(10..=30_000).contains(&timeout_ms) {
        return Err(ProbeCliError::Timeout);
    }
    if args.retries > probe::MAX_RETRIES {
        return Err(ProbeCliError::Retries);
    }
    if !(1..=probe::MAX_CONCURRENCY).contains(&args.concurrency) {
        return Err(ProbeCliError::Concurrency);
    }
    if args.max_hosts == 0 {
        return Err(ProbeCliError::MaxHosts);
    }
    if let Some(w) = &args.workgroup {
        nbdgm_wire::Name::new(w, 0x1D).map_err(|e| ProbeCliError::Workgroup(w.clone(), e))?;
    }
    let targets = target::parse_targets(&args.targets, args.max_hosts)?;
    Ok((
        targets,
        ProbeOptions {
            ports,
            timeout: Duration::from_millis(timeout_ms),
            retries: args.retries,
            rate: args.rate,
            concurrency: args.concurrency,
            workgroup: args.workgroup.clone(),
        },
    ))
}

fn probe_and_report(args: &ProbeArgs, targets: Vec<target::Target>, opts: &ProbeOptions) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nbdgm probe: cannot start the runtime: {e}");
            return exit::USAGE;
        }
    };
    let bar =
        (targets.len() > 1 && !args.no_progress && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(targets.len() as u64),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} probing [{bar:30}] {pos}/{len} hosts, {elapsed} (eta {eta})",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
    let dopts = probe::DiscoveryOptions {
        mode: if args.no_discovery {
            probe::DiscoveryMode::Off
        } else {
            probe::DiscoveryMode::Auto
        },
        // An explicit --timeout-ms is used as given for every host.
        on_link_timeout: args.timeout_ms.is_none().then_some(probe::ON_LINK_TIMEOUT),
    };
    let (results, discovery) = rt.block_on(probe::probe_all_with(
        targets,
        opts,
        &dopts,
        |done, _total| {
            if let Some(b) = &bar {
                b.set_position(done as u64);
            }
        },
    ));
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let out = match args.format {
        ProbeFormat::Text => probe::to_text(&results),
        ProbeFormat::Json => probe::to_json_with_discovery(&results, &discovery.methods) + "\n",
        ProbeFormat::Csv => match probe::to_csv(&results) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("nbdgm probe: CSV output: {e}");
                return exit::USAGE;
            }
        },
    };
    let verdict = args.expect.map(|e| {
        probe::nagios(
            &results,
            match e {
                ExpectArg::Closed => Expect::Closed,
                ExpectArg::Open => Expect::Open,
            },
        )
    });
    match &verdict {
        // A Nagios plugin's first stdout line is its status; the table is the long output.
        Some(v) if args.format == ProbeFormat::Text => println!("{}", v.summary),
        // Keep JSON/CSV stdout machine-readable: the status line goes to stderr.
        Some(v) => eprintln!("{}", v.summary),
        None => {}
    }
    print!("{out}");
    // What host discovery did (arp-raw or none), on standard error after the Nagios status
    // line (a plugin's stderr starts with it): stdout stays the report.
    eprintln!("nbdgm probe: {}", discovery.summary());
    match verdict {
        Some(v) => v.code,
        None => probe::exit_code(&results),
    }
}
