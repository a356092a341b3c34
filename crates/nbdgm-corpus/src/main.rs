//! `nbdgm-corpus`: writes a generated test capture (for the conformance tests and
//! benchmarks). Formerly the hidden `nbdgm corpus` subcommand; same flags, same bytes.

#![forbid(unsafe_code)]

use clap::Parser;
use nbdgm_corpus::{generate, write_pcap, Mix};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Write a generated test capture (for the conformance tests and benchmarks).
#[derive(Parser, Debug)]
#[command(name = "nbdgm-corpus", version)]
struct Args {
    /// Number of packets to write.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Seed of the generator: the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output pcap file.
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// What to generate.
    #[arg(long, value_enum, default_value = "mixed")]
    mix: Mix,
}

/// Exit code of a file that cannot be created or written (as `nbdgm`'s usage errors).
const FAILURE: u8 = 2;

fn main() -> ExitCode {
    let args = Args::parse();
    let file = match File::create(&args.output) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "nbdgm-corpus: {}: cannot create: {e}",
                args.output.display()
            );
            return ExitCode::from(FAILURE);
        }
    };
    let mut out = BufWriter::with_capacity(1 << 16, file);
    let written = write_pcap(&mut out, generate(args.count, args.seed, args.mix))
        .and_then(|n| out.flush().map(|()| n));
    match written {
        Ok(n) => {
            let bytes = std::fs::metadata(&args.output).map_or(0, |m| m.len());
            eprintln!(
                "nbdgm-corpus: wrote {n} packets ({bytes} bytes, mix {:?}, seed {}) to {}",
                args.mix,
                args.seed,
                args.output.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nbdgm-corpus: {}: cannot write: {e}", args.output.display());
            ExitCode::from(FAILURE)
        }
    }
}
