//! `nbdd_bench`: benchmarks of the NBDD relay, each against "the best
//! possible copy loop on the same path", printing markdown tables for docs/BENCHMARKS.md
//! §6. Run by `bench/nbdd.sh`.
//!
//! - `engine`: the sans-IO `nbdgm_nbdd::Nbdd` in process, relaying one group datagram
//!   to 1, 10 and 100 cached members, against a plain loop copying the same bytes into
//!   N output buffers; then a long run with churn (many sources, many groups, unanswered
//!   resolutions) and the process's RSS against the engine's caps.
//! - `sockets`: a real `nbdgm serve` (roles nbns + nbdd) on loopback relaying paced
//!   DIRECT_GROUP datagrams to 1, 10 and 100 member sockets registered in its NBNS,
//!   against a tiny UDP relay loop in this process (recv, then send_to each member):
//!   copies per second, loss, latency p50/p99, the daemon's CPU and RSS.
//! - `amplification`: the same daemon with the default per-source relay limit, one
//!   sender at several rates (and a flood) to a 100-member group: bytes out / bytes in.
//!
//! Every traffic loop is bounded in count and in time; every process started is stopped
//! by PID. Loopback only (127.0.8.x NBDD, 127.0.9.x members, 127.0.10.x senders).

#![forbid(unsafe_code)]
// Benchmark tool (never shipped): a failed setup or a dead worker thread aborts the run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clap::{Args, Subcommand};
use nbdgm_bench::setup;
use nbdgm_wire::Name;
use std::net::Ipv4Addr;
use std::time::Duration;

mod amplification;
mod engine;
mod sockets;

use amplification::amplification;
use engine::engine;
use sockets::{sockets, Members};

/// The NBDD under test.
const NBDD_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 8, 1);
/// The benchmark's own relay loop (the baseline).
const LOOP_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 8, 2);
/// Senders: 127.0.10.x.
fn sender_addr(k: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 10, k)
}
/// Members: 127.0.9.1 ...
fn member_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 9, (i + 1) as u8)
}
const MAX_MEMBERS: usize = 200;
/// Kernel receive buffer of the member sockets and of the relay loop.
const RECV_BUFFER: usize = 1 << 20;

type Cli = setup::Cli<Cmd>;

#[derive(Subcommand, Debug)]
enum Cmd {
    /// The engine in process vs a plain copy loop; RSS over a long run with churn.
    Engine(EngineArgs),
    /// `nbdgm serve` on loopback vs a UDP relay loop: copies/s, loss, latency, RSS.
    Sockets(SocketArgs),
    /// Bytes out / bytes in with the default per-source relay limit, 100 members.
    Amplification(AmpArgs),
    /// All three, with their default arguments.
    All,
}

#[derive(Args, Debug, Clone)]
struct EngineArgs {
    /// Group sizes.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 10, 100])]
    members: Vec<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 1.5)]
    secs: f64,
    /// Repetitions (engine and copy loops alternate); medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// User-data bytes of the relayed datagram (the datagram is 82 bytes more).
    #[arg(long, default_value_t = 128)]
    user_len: usize,
    /// Seconds of the long run with churn (RSS).
    #[arg(long, default_value_t = 30.0)]
    long_secs: f64,
}

impl Default for EngineArgs {
    fn default() -> Self {
        EngineArgs {
            members: vec![1, 10, 100],
            secs: 1.5,
            runs: 3,
            user_len: 128,
            long_secs: 30.0,
        }
    }
}

#[derive(Args, Debug, Clone)]
struct SocketArgs {
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 10, 100])]
    members: Vec<usize>,
    /// Offered copies per second (packets/s × members), one load per value.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 100_000])]
    copies: Vec<u64>,
    /// Seconds each sender runs.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Repetitions (nbdgm and the loop alternate); medians are reported.
    #[arg(long, default_value_t = 2)]
    runs: usize,
    #[arg(long, default_value_t = 128)]
    user_len: usize,
}

impl Default for SocketArgs {
    fn default() -> Self {
        SocketArgs {
            members: vec![1, 10, 100],
            copies: vec![10_000, 100_000],
            secs: 3.0,
            runs: 2,
            user_len: 128,
        }
    }
}

#[derive(Args, Debug, Clone)]
struct AmpArgs {
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// Sender rates in packets/s, one sender address (so one fresh bucket) each; 0 is a
    /// flood (as fast as one thread sends, at most --flood-count packets).
    #[arg(long, value_delimiter = ',', default_values_t = [20u64, 200, 2000, 0])]
    rates: Vec<u64>,
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    #[arg(long, default_value_t = 300_000)]
    flood_count: u64,
    #[arg(long, default_value_t = 128)]
    user_len: usize,
}

impl Default for AmpArgs {
    fn default() -> Self {
        AmpArgs {
            members: 100,
            rates: vec![20, 200, 2000, 0],
            secs: 5.0,
            flood_count: 300_000,
            user_len: 128,
        }
    }
}

fn main() {
    setup::main(
        "nbdd_bench",
        "NBDD relay benchmarks (see docs/BENCHMARKS.md §6)",
        run,
    );
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Engine(a) => engine(&a),
        Cmd::Sockets(a) => {
            let bin = setup::nbdgm_binary(cli.nbdgm)?;
            let mut m = Members::bind(a.members.iter().copied().max().unwrap_or(1))?;
            sockets(&bin, &a, &mut m)
        }
        Cmd::Amplification(a) => {
            let bin = setup::nbdgm_binary(cli.nbdgm)?;
            let mut m = Members::bind(a.members)?;
            amplification(&bin, &a, &mut m)
        }
        Cmd::All => {
            let bin = setup::nbdgm_binary(cli.nbdgm)?;
            engine(&EngineArgs::default())?;
            let s = SocketArgs::default();
            let a = AmpArgs::default();
            let mut m = Members::bind(100)?;
            sockets(&bin, &s, &mut m)?;
            amplification(&bin, &a, &mut m)
        }
    }
}

/// Wait (≤ 60 s) until the machine is < 10 % busy, and say how busy it was.
fn note_load(what: &str) {
    setup::note_load(what, Duration::from_secs(60));
}

fn group(name: &str) -> anyhow::Result<Name> {
    Ok(Name::new(name, 0)?)
}
