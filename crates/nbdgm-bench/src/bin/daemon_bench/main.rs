//! `daemon_bench`: benchmarks of `nbdgm serve`, each against its peer in the
//! same run, printing markdown tables for docs/BENCHMARKS.md. Run by `bench/daemon.sh`.
//!
//! - `throughput`: a flood of HostAnnouncements on loopback into the daemon and out to an
//!   API subscriber, against a plain Rust `recv_from` loop on the same address and port
//!   ("the limit"); then a paced run at half the limit's rate, counting loss.
//! - `names`: NAME QUERY and NODE STATUS latency and reply rate, nbdgm vs Samba nmbd on
//!   one veth bridge (network namespaces on 198.51.100.0/24 made by `nbdgm-lab`).
//! - `rss`: the daemon's memory while many loopback sources send first fragments that
//!   never complete, against the configured reassembly caps.
//!
//! Every traffic loop is bounded in count and in time; every process started is stopped
//! by PID. Needs root for `names` (namespaces, nmbd on port 137).

#![forbid(unsafe_code)]
// Benchmark tool (never shipped): a failed setup or a dead worker thread aborts the run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clap::{Args, Subcommand, ValueEnum};
use nbdgm_bench::setup;
use std::net::Ipv4Addr;
use std::time::Duration;

mod names;
mod rss;
mod throughput;

use names::names;
use rss::rss;
use throughput::throughput;

/// Address the loopback daemon (and the limit receiver) listens on.
const DAEMON_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 77, 2);
/// Address the flood generator sends from.
const GEN_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 77, 1);
/// Workgroup of the loopback daemon; datagrams go to `BENCHWG<00>`.
const WORKGROUP: &str = "BENCHWG";
/// Kernel receive buffer: the same as the daemon asks for on its sockets.
const RECV_BUFFER: usize = 4 << 20;

type Cli = setup::Cli<Cmd>;

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Receive-and-deliver throughput on loopback vs a plain recv_from loop; paced loss run.
    Throughput(ThroughputArgs),
    /// NAME QUERY / NODE STATUS latency and reply rate, nbdgm vs nmbd (needs root).
    Names(NamesArgs),
    /// Peak RSS under a flood of first fragments that never complete.
    Rss(RssArgs),
    /// All three, with their default arguments.
    All,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum SubscriberKind {
    /// Count event lines on the raw socket (measures the daemon, not a JSON parser).
    Raw,
    /// `nbdgm_client::Client::next_event` (parses every event).
    Client,
}

#[derive(Args, Debug, Clone)]
struct ThroughputArgs {
    /// Datagrams per flood run (each run also stops after --max-secs).
    #[arg(long, default_value_t = 2_000_000)]
    count: u64,
    #[arg(long, default_value_t = 10.0)]
    max_secs: f64,
    /// Repetitions (limit and nbdgm alternate in each); medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Datagrams in the paced run (at half the limit's median rate; also ≤ 10 s).
    #[arg(long, default_value_t = 1_000_000)]
    paced_count: u64,
    #[arg(long, value_enum, default_value_t = SubscriberKind::Raw)]
    subscriber: SubscriberKind,
    /// Event encoding the subscriber asks for in `hello` (`hex`: the default, no `hello`).
    #[arg(long, value_enum, default_value_t = Encoding::Hex)]
    encoding: Encoding,
}

/// `hello` `encoding` of the throughput subscriber (`docs/api.md` "Event encoding").
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Hex,
    Base64,
}

impl Default for ThroughputArgs {
    fn default() -> Self {
        ThroughputArgs {
            count: 2_000_000,
            max_secs: 10.0,
            runs: 3,
            paced_count: 1_000_000,
            subscriber: SubscriberKind::Raw,
            encoding: Encoding::Hex,
        }
    }
}

#[derive(Args, Debug, Clone)]
struct NamesArgs {
    /// Sequential requests per latency measurement.
    #[arg(long, default_value_t = 2000)]
    latency_count: u32,
    /// Requests outstanding in the closed-loop rate measurement (sent in bursts of up to
    /// 64 and read in batches of up to 64; 128 was no faster on a quiet machine).
    #[arg(long, default_value_t = 32)]
    outstanding: usize,
    /// Seconds per closed-loop rate measurement.
    #[arg(long, default_value_t = 5.0)]
    rate_secs: f64,
    /// Repetitions (nmbd and nbdgm alternate in each); medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Send each burst of the rate measurement as one UDP_SEGMENT (GSO) `send` instead of
    /// a `sendmmsg` (the daemons receive the same datagrams).
    #[arg(long)]
    gso: bool,
    /// Longest wait for a quiet machine before the measurements and each run (seconds).
    #[arg(long, default_value = "120", value_parser = parse_secs)]
    quiet_wait: Duration,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| format!("not a number of seconds: {s}"))
}

impl Default for NamesArgs {
    fn default() -> Self {
        NamesArgs {
            latency_count: 2000,
            outstanding: 32,
            rate_secs: 5.0,
            runs: 3,
            gso: false,
            quiet_wait: Duration::from_secs(120),
        }
    }
}

#[derive(Args, Debug, Clone)]
struct RssArgs {
    /// Distinct source addresses (127.77.x.y), one socket each.
    #[arg(long, default_value_t = 1000)]
    sources: u32,
    /// First fragments sent in all (round-robin over the sources; also ≤ 30 s).
    #[arg(long, default_value_t = 300_000)]
    count: u64,
    /// User-data bytes in each first fragment, one scenario (and daemon) per value; the
    /// DGM_LENGTH announced is 3 × chunk (capped at 65,535), so nothing ever completes.
    #[arg(long, value_delimiter = ',', default_values_t = [480usize, 4000])]
    chunks: Vec<usize>,
}

impl Default for RssArgs {
    fn default() -> Self {
        RssArgs {
            sources: 1000,
            count: 300_000,
            chunks: vec![480, 4000],
        }
    }
}

fn main() {
    setup::main(
        "daemon_bench",
        "Benchmarks of `nbdgm serve` (see docs/BENCHMARKS.md)",
        run,
    );
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let bin = setup::nbdgm_binary(cli.nbdgm)?;
    match cli.cmd {
        Cmd::Throughput(a) => throughput(&bin, &a),
        Cmd::Names(a) => names(&bin, &a),
        Cmd::Rss(a) => rss(&bin, &a),
        Cmd::All => {
            throughput(&bin, &ThroughputArgs::default())?;
            rss(&bin, &RssArgs::default())?;
            names(&bin, &NamesArgs::default())
        }
    }
}

/// Wait (≤ 120 s) until the machine is < 10 % busy (niced tasks not counted) over one
/// second, and say how busy it was; the load average is printed too (it lags, and counts
/// our own earlier runs).
fn note_load(what: &str) -> f64 {
    setup::note_load(what, Duration::from_secs(120))
}
