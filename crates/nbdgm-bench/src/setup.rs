//! What every benchmark program does first: find the `nbdgm` binary, wait for a quiet
//! machine, build the three-host lab (198.51.100.10/20/30) and start nmbd quietly.

use crate::procfs;
use anyhow::{bail, Context};
use nbdgm_lab::{Host, Lab, LabSpec, Nmbd, NmbdOptions};
use std::path::PathBuf;
use std::time::Duration;

/// The command line of `browse_bench`, `daemon_bench` and `nbdd_bench`: `--nbdgm` and
/// the program's subcommand `C`.
#[derive(clap::Parser, Debug)]
pub struct Cli<C: clap::Subcommand> {
    /// The nbdgm binary [default: $NBDGM_BIN, else target/{release,debug}/nbdgm].
    #[arg(long, global = true)]
    pub nbdgm: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: C,
}

/// A benchmark program's `main`: parse its command line (`about` its help line), hand it
/// to `run`, and on an error print it after `name` and exit with status 1.
pub fn main<C: clap::Subcommand>(
    name: &str,
    about: &'static str,
    run: impl FnOnce(Cli<C>) -> anyhow::Result<()>,
) {
    use clap::{CommandFactory, FromArgMatches};
    let mut matches = Cli::<C>::command().about(about).get_matches();
    let cli = Cli::<C>::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.exit());
    if let Err(e) = run(cli) {
        eprintln!("{name}: {e:#}");
        std::process::exit(1);
    }
}

/// `p`, else `$NBDGM_BIN` or `target/{release,debug}/nbdgm`; canonical, and printed.
pub fn nbdgm_binary(p: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let bin = match p {
        Some(p) => p,
        None => nbdgm_lab::find_nbdgm_binary()?,
    };
    let bin = bin.canonicalize().context("nbdgm binary")?;
    eprintln!("nbdgm binary: {}", bin.display());
    Ok(bin)
}

/// Wait (≤ `max`) until the machine is < 10 % busy (niced tasks not counted) over one
/// second, and say how busy it was; the load average is printed too (it lags, and counts
/// our own earlier runs). Returns the busy fraction.
pub fn note_load(what: &str, max: Duration) -> f64 {
    let b = procfs::wait_idle(0.10, max);
    eprintln!(
        "[{what}] machine busy before: {:.0} % of {} CPUs (load average {:.2})",
        100.0 * b,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        procfs::loadavg1()
    );
    b
}

/// A one-subnet lab with hosts a (198.51.100.10), b (.20) and c (.30); fails when the lab
/// prerequisites are missing (`bench` names the program in the message).
pub fn lab_abc(bench: &str) -> anyhow::Result<(Lab, Host, Host, Host)> {
    if !nbdgm_lab::require_or_skip(bench) {
        bail!("lab prerequisites missing (root, ip, nmbd, nmblookup, tshark, setsid)");
    }
    let lab = Lab::new(LabSpec::one_subnet())?;
    let a = lab.add_host("a", "198.51.100.10/24")?;
    let b = lab.add_host("b", "198.51.100.20/24")?;
    let c = lab.add_host("c", "198.51.100.30/24")?;
    Ok((lab, a, b, c))
}

/// nmbd in `host` at `log level` `level` (the lab's default of 10 writes every packet to
/// a file), with more `[global]` lines.
pub fn quiet_nmbd(host: &Host, level: u8, extra: &[&str]) -> anyhow::Result<Nmbd> {
    let mut global = vec![format!("log level = {level}")];
    global.extend(extra.iter().map(|s| s.to_string()));
    Ok(Nmbd::start(
        host,
        NmbdOptions {
            extra_global: global,
            ..Default::default()
        },
    )?)
}
