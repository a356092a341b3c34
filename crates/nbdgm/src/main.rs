//! `nbdgm`: NetBIOS Datagram Service toolkit.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "nbdgm",
    version,
    about = "NetBIOS Datagram Service (UDP 138) toolkit: decode captures, and more",
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
    /// Write a generated test capture (for the conformance tests and benchmarks).
    #[command(hide = true)]
    Corpus(nbdgm::corpus::Args),
}

fn main() -> ExitCode {
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
        Command::Corpus(args) => nbdgm::corpus::run(&args),
    };
    ExitCode::from(code)
}
