//! `nbdgm`: NetBIOS Datagram Service toolkit.

// Unsafe only in `restore_default_sigpipe`, allowed there.
#![deny(unsafe_code)]

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "nbdgm",
    version,
    about = "NetBIOS Datagram Service (UDP 138) toolkit: a node daemon, send/listen/lookup tools, and a capture decoder",
    after_help = "Exit codes: 0 success, 1 findings (e.g. malformed packets), 2 usage or input error.\n\
                  Run `nbdgm <command> --help` for examples."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode NetBIOS datagram and name-service packets in pcap/pcapng captures.
    Decode(nbdgm::decode::Args),
    /// Run the datagram node daemon (B-node on each interface, local API, access control).
    Serve(nbdgm::tools::serve::ServeArgs),
    /// Send a datagram or mailslot message (through the daemon, or standalone).
    Send(nbdgm::tools::send::SendArgs),
    /// Print datagrams as they arrive, decoded.
    Listen(nbdgm::tools::listen::ListenArgs),
    /// Resolve a NetBIOS name (NAME QUERY).
    Lookup(nbdgm::tools::lookup::LookupArgs),
    /// Ask a host for its name table (NODE STATUS, like `nmblookup -A`).
    Status(nbdgm::tools::status::StatusArgs),
    /// List the workgroups and servers of the network neighbourhood (browse list).
    Browse(nbdgm::tools::browse::BrowseArgs),
    /// Ping the domain controllers of a domain over NETLOGON (LOGON_PRIMARY_QUERY, SAM logon).
    #[command(name = "dc-ping")]
    DcPing(nbdgm::tools::dcping::DcPingArgs),
    /// Send or receive WinPopup messages (\MAILSLOT\MESSNGR).
    Message(nbdgm::tools::message::MessageArgs),
    /// Probe hosts for exposed NetBIOS ports (137/udp, 138/udp, 138/tcp, 139/tcp, 445/tcp).
    Probe(nbdgm::tools::probe::ProbeArgs),
    /// On this host: who listens on 137-139/445 and whether the firewall lets outsiders in.
    #[cfg(feature = "audit")]
    Audit(nbdgm::tools::audit::AuditArgs),
    /// Print, apply or remove firewall rules closing 137-139 (445 optional), then verify.
    #[cfg(feature = "audit")]
    Firewall(nbdgm::tools::firewall::FirewallArgs),
    /// Watch hosts' NetBIOS ports on a schedule: store, alerts, metrics, web page.
    #[cfg(feature = "monitor")]
    Monitor(nbdgm::tools::monitor::MonitorArgs),
    /// Show the daemon's counters.
    Stats(nbdgm::tools::stats::StatsArgs),
    /// Detect name poisoning, rogue browsers and port-138 abuse in captures or live traffic.
    Watch(nbdgm::tools::watch::WatchArgs),
    /// List, add or delete names of the daemon's NBNS (WINS) role.
    Wins(nbdgm::tools::wins::WinsArgs),
}

/// Die quietly on a closed pipe (`nbdgm stats | head`) like other command-line tools,
/// instead of panicking in println!.
#[allow(unsafe_code)] // signal(2); see the SAFETY comment
fn restore_default_sigpipe() {
    // SAFETY: called first in main, before any thread exists; SIG_DFL is always valid.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
}

fn main() -> ExitCode {
    restore_default_sigpipe();
    // `nbdgm generate` (packaging) stays outside `Cli`, so no page or completion shows it.
    if std::env::args_os().nth(1).is_some_and(|a| a == "generate") {
        return ExitCode::from(nbdgm::generate::main(Cli::command()));
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Decode(args) => nbdgm::decode::run(&args),
        Command::Serve(args) => nbdgm::tools::serve::run(&args),
        Command::Send(args) => nbdgm::tools::send::run(&args),
        Command::Listen(args) => nbdgm::tools::listen::run(&args),
        Command::Lookup(args) => nbdgm::tools::lookup::run(&args),
        Command::Status(args) => nbdgm::tools::status::run(&args),
        Command::Stats(args) => nbdgm::tools::stats::run(&args),
        #[cfg(feature = "monitor")]
        Command::Monitor(args) => nbdgm::tools::monitor::run(&args),
        Command::Browse(args) => nbdgm::tools::browse::run(&args),
        Command::DcPing(args) => nbdgm::tools::dcping::run(&args),
        Command::Message(args) => nbdgm::tools::message::run(&args),
        Command::Probe(args) => nbdgm::tools::probe::run(&args),
        Command::Watch(args) => nbdgm::tools::watch::run(&args),
        Command::Wins(args) => nbdgm::tools::wins::run(&args),
        #[cfg(feature = "audit")]
        Command::Audit(args) => nbdgm::tools::audit::run(&args),
        #[cfg(feature = "audit")]
        Command::Firewall(args) => nbdgm::tools::firewall::run(&args),
    };
    ExitCode::from(code)
}
