//! `nbdd_bench`: benchmarks of the NBDD relay (issue 7 §4, §5), each against "the best
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

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use mio::net::UdpSocket as MioUdp;
use mio::{Events, Interest, Poll, Token};
use nbdgm_bench::daemon::{free_ports, iface_counter, start_daemon, stats, Daemon};
use nbdgm_bench::nbdd::{group_datagram, nbdd_toml, read_stamp, register_members, stamp};
use nbdgm_bench::procfs;
use nbdgm_bench::report::{median, thousands};
use nbdgm_nbdd::{Nbdd, NbddAction, NbddConfig, Rate, RelayPolicy, Resolution};
use nbdgm_wire::Name;
use socket2::{Domain, Protocol, Socket, Type};
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

#[derive(Parser, Debug)]
#[command(about = "NBDD relay benchmarks (see docs/BENCHMARKS.md §6)")]
struct Cli {
    /// The nbdgm binary [default: $NBDGM_BIN, else target/{release,debug}/nbdgm].
    #[arg(long, global = true)]
    nbdgm: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

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
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("nbdd_bench: {e:#}");
        std::process::exit(1);
    }
}

fn nbdgm_bin(p: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let bin = match p {
        Some(p) => p,
        None => nbdgm_lab::find_nbdgm_binary()?,
    };
    let bin = bin.canonicalize().context("nbdgm binary")?;
    eprintln!("nbdgm binary: {}", bin.display());
    Ok(bin)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Engine(a) => engine(&a),
        Cmd::Sockets(a) => {
            let bin = nbdgm_bin(cli.nbdgm)?;
            let mut m = Members::bind(a.members.iter().copied().max().unwrap_or(1))?;
            sockets(&bin, &a, &mut m)
        }
        Cmd::Amplification(a) => {
            let bin = nbdgm_bin(cli.nbdgm)?;
            let mut m = Members::bind(a.members)?;
            amplification(&bin, &a, &mut m)
        }
        Cmd::All => {
            let bin = nbdgm_bin(cli.nbdgm)?;
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
    let b = procfs::wait_idle(0.10, Duration::from_secs(60));
    eprintln!(
        "[{what}] machine busy before: {:.0} % of {} CPUs (load average {:.2})",
        100.0 * b,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        procfs::loadavg1()
    );
}

fn group(name: &str) -> anyhow::Result<Name> {
    Ok(Name::new(name, 0)?)
}

// ---------------------------------------------------------------------------------------
// 1. The engine in process
// ---------------------------------------------------------------------------------------

/// Allow-list policy for 10/8, no limiter in the way (per-source and total), no
/// re-fragmenting: what is measured is parse, policy, cache lookup and copies.
fn engine_config() -> NbddConfig {
    NbddConfig {
        policy: RelayPolicy::AllowList("10.0.0.0/8".parse().expect("prefix")),
        own_addresses: vec![Ipv4Addr::new(10, 0, 0, 1)],
        relay_bytes_per_source_per_s: Rate::new(1e15, u32::MAX),
        relay_bytes_total_per_s: None,
        refragment: false,
        max_fanout: 256,
        ..NbddConfig::default()
    }
}

fn engine_members(n: usize) -> Vec<Ipv4Addr> {
    (0..n)
        .map(|i| Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250 + 1) as u8))
        .collect()
}

/// One timed measurement: packets and copies in `secs`.
#[derive(Debug, Clone, Copy)]
struct Timed {
    packets: u64,
    copies: u64,
    secs: f64,
}

impl Timed {
    fn pps(&self) -> f64 {
        self.packets as f64 / self.secs
    }
    fn cps(&self) -> f64 {
        self.copies as f64 / self.secs
    }
    fn ns_per_packet(&self) -> f64 {
        1e9 * self.secs / self.packets as f64
    }
}

/// Hard bound on the packets of one timed loop (besides its time).
const MAX_LOOP_PACKETS: u64 = 200_000_000;

/// Answer every ResolveMembers with `members` (the runtime with a combined NBNS).
fn answer_all(e: &mut Nbdd, now: Instant, members: &[Ipv4Addr]) {
    while let Some(a) = e.poll_action() {
        if let NbddAction::ResolveMembers(name) = a {
            e.members_resolved(now, &name, Resolution::Members(members.to_vec()));
        }
    }
}

fn engine_relay(n: usize, secs: f64, user_len: usize) -> anyhow::Result<Timed> {
    let from = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 5), 138);
    let g = group("BENCHGRP")?;
    let (mut pkt, off) = group_datagram(from, &g, user_len)?;
    let members = engine_members(n);
    let t = Instant::now();
    let mut e = Nbdd::new(engine_config(), t).map_err(anyhow::Error::msg)?;
    // Resolve once (the first packet waits for it), then cached for member_cache_ttl (60 s).
    e.handle(t, from, &pkt);
    answer_all(&mut e, t, &members);
    while e.poll_transmit().is_some() {}
    while e.poll_event().is_some() {}
    let dur = Duration::from_secs_f64(secs);
    let t0 = Instant::now();
    let (mut packets, mut copies) = (0u64, 0u64);
    loop {
        for _ in 0..256 {
            stamp(&mut pkt, off, packets, 0);
            let now = Instant::now();
            e.handle(now, from, &pkt);
            while let Some(tx) = e.poll_transmit() {
                black_box(&tx);
                copies += 1;
            }
            while let Some(ev) = e.poll_event() {
                black_box(&ev);
            }
            packets += 1;
        }
        if t0.elapsed() >= dur || packets >= MAX_LOOP_PACKETS {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    if e.stats().drops.total() > 0 || e.stats().copies_rate_limited > 0 {
        bail!("engine dropped in the throughput loop: {:?}", e.stats());
    }
    Ok(Timed {
        packets,
        copies,
        secs,
    })
}

/// The best possible copy loop: the same bytes into N freshly allocated (address,
/// Vec<u8>) outputs per packet, as the engine must hand owned copies over.
fn copy_alloc(n: usize, secs: f64, user_len: usize) -> anyhow::Result<Timed> {
    let from = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 5), 138);
    let (mut pkt, off) = group_datagram(from, &group("BENCHGRP")?, user_len)?;
    let to: Vec<SocketAddrV4> = engine_members(n)
        .into_iter()
        .map(|ip| SocketAddrV4::new(ip, 138))
        .collect();
    let mut outs: Vec<(SocketAddrV4, Vec<u8>)> = Vec::with_capacity(n);
    let dur = Duration::from_secs_f64(secs);
    let t0 = Instant::now();
    let (mut packets, mut copies) = (0u64, 0u64);
    loop {
        for _ in 0..256 {
            stamp(&mut pkt, off, packets, 0);
            for &a in &to {
                outs.push((a, pkt.to_vec()));
            }
            copies += outs.len() as u64;
            for o in outs.drain(..) {
                black_box(&o);
            }
            packets += 1;
        }
        if t0.elapsed() >= dur || packets >= MAX_LOOP_PACKETS {
            break;
        }
    }
    Ok(Timed {
        packets,
        copies,
        secs: t0.elapsed().as_secs_f64(),
    })
}

/// The floor: the same bytes copied into N reused buffers (memcpy only, no allocation).
fn copy_reuse(n: usize, secs: f64, user_len: usize) -> anyhow::Result<Timed> {
    let from = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 5), 138);
    let (mut pkt, off) = group_datagram(from, &group("BENCHGRP")?, user_len)?;
    let mut outs: Vec<Vec<u8>> = (0..n).map(|_| Vec::with_capacity(pkt.len())).collect();
    let dur = Duration::from_secs_f64(secs);
    let t0 = Instant::now();
    let (mut packets, mut copies) = (0u64, 0u64);
    loop {
        for _ in 0..256 {
            stamp(&mut pkt, off, packets, 0);
            for o in outs.iter_mut() {
                o.clear();
                o.extend_from_slice(&pkt);
                black_box(&o);
            }
            copies += n as u64;
            packets += 1;
        }
        if t0.elapsed() >= dur || packets >= MAX_LOOP_PACKETS {
            break;
        }
    }
    Ok(Timed {
        packets,
        copies,
        secs: t0.elapsed().as_secs_f64(),
    })
}

fn engine(a: &EngineArgs) -> anyhow::Result<()> {
    note_load("engine");
    let me = std::process::id();
    let rss_start = procfs::mem(me)?;
    println!("\n### 6.1 Engine in process (`nbdd_bench engine`)\n");
    println!(
        "One DIRECT_GROUP datagram ({} bytes of user data, {} bytes in all) relayed again and \
         again from one allow-listed source to a cached group; rate limits out of the way; \
         every transmit and event drained and dropped, as a runtime would. {:.1} s per \
         measurement, median of {} runs (engine and copy loops alternate).\n",
        a.user_len,
        a.user_len + 82,
        a.secs,
        a.runs
    );
    println!(
        "| members | engine packets/s | engine copies/s | engine ns/packet | alloc+copy loop packets/s | ns/packet | memcpy loop packets/s | ns/packet | engine / alloc+copy |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &a.members {
        let (mut e, mut c, mut r) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..a.runs {
            let te = engine_relay(n, a.secs, a.user_len)?;
            let tc = copy_alloc(n, a.secs, a.user_len)?;
            let tr = copy_reuse(n, a.secs, a.user_len)?;
            eprintln!(
                "[engine] members {n} run {}: engine {} pkt/s ({} copies/s), alloc+copy {} pkt/s, memcpy {} pkt/s",
                i + 1,
                thousands(te.pps()),
                thousands(te.cps()),
                thousands(tc.pps()),
                thousands(tr.pps())
            );
            e.push(te);
            c.push(tc);
            r.push(tr);
        }
        let m = |v: &[Timed], f: fn(&Timed) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
        let (ep, ec, en) = (
            m(&e, Timed::pps),
            m(&e, Timed::cps),
            m(&e, Timed::ns_per_packet),
        );
        let (cp, cn) = (m(&c, Timed::pps), m(&c, Timed::ns_per_packet));
        let (rp, rn) = (m(&r, Timed::pps), m(&r, Timed::ns_per_packet));
        println!(
            "| {n} | {} | {} | {en:.0} | {} | {cn:.0} | {} | {rn:.0} | {:.2}× |",
            thousands(ep),
            thousands(ec),
            thousands(cp),
            thousands(rp),
            en / cn
        );
    }
    let rss_after_tput = procfs::mem(me)?;
    engine_long(a, rss_start, rss_after_tput)
}

/// The long run: 100 members, 60,000 distinct sources (> max_sources 4,096), one packet
/// in 8 to one of 100,000 other groups of which half are answered (1 member: fills the
/// member cache, max_cached_groups 4,096) and half never (fills the pending queue and
/// the in-flight table, max_pending 1,024, until resolve_timeout 5 s). Default caps.
fn engine_long(
    a: &EngineArgs,
    rss_start: procfs::Mem,
    rss_tput: procfs::Mem,
) -> anyhow::Result<()> {
    let me = std::process::id();
    let cfg = NbddConfig {
        policy: RelayPolicy::AllowList("10.0.0.0/8".parse().expect("prefix")),
        own_addresses: vec![Ipv4Addr::new(10, 0, 0, 1)],
        relay_bytes_per_source_per_s: Rate::new(1e15, u32::MAX),
        relay_bytes_total_per_s: None,
        refragment: false,
        ..NbddConfig::default()
    };
    let caps = (
        cfg.max_pending,
        cfg.max_pending_bytes,
        cfg.max_cached_groups,
        cfg.max_sources,
        cfg.max_transmit_queue,
    );
    let members = engine_members(100);
    let g = group("BENCHGRP")?;
    let src0 = SocketAddrV4::new(Ipv4Addr::new(10, 2, 0, 1), 138);
    let (mut pkt, off) = group_datagram(src0, &g, a.user_len)?;
    let t = Instant::now();
    let mut e = Nbdd::new(cfg, t).map_err(anyhow::Error::msg)?;
    let dur = Duration::from_secs_f64(a.long_secs);
    let t0 = Instant::now();
    let mut i: u64 = 0;
    let mut copies = 0u64;
    let mut checkpoints: Vec<(f64, procfs::Mem, usize, usize, usize, usize)> = Vec::new();
    let mut next_cp = Duration::from_secs(5);
    let sample = |e: &Nbdd, secs: f64, cps: &mut Vec<_>| -> anyhow::Result<()> {
        cps.push((
            secs,
            procfs::mem(me)?,
            e.pending_len(),
            e.cached_groups(),
            e.tracked_sources(),
            e.in_flight(),
        ));
        Ok(())
    };
    loop {
        for _ in 0..256 {
            let k = (i % 60_000) as u32;
            let ip = Ipv4Addr::new(10, 2 + (k >> 16) as u8, (k >> 8) as u8, k as u8);
            let from = SocketAddrV4::new(ip, 138);
            let now = Instant::now();
            if i % 8 == 7 {
                let j = (i / 8) % 100_000;
                let other = group(&format!("U{j:06}"))?;
                let (p, _) = group_datagram(from, &other, a.user_len)?;
                let mut p = p;
                p[4..8].copy_from_slice(&ip.octets());
                e.handle(now, from, &p);
            } else {
                stamp(&mut pkt, off, i, 0);
                pkt[4..8].copy_from_slice(&ip.octets());
                e.handle(now, from, &pkt);
            }
            while let Some(act) = e.poll_action() {
                if let NbddAction::ResolveMembers(name) = act {
                    if name == g {
                        e.members_resolved(now, &name, Resolution::Members(members.clone()));
                    } else if name.raw()[5] % 2 == 0 {
                        // "U00000x": even last digit answered with one member.
                        e.members_resolved(now, &name, Resolution::Members(vec![members[0]]));
                    }
                }
            }
            while let Some(tx) = e.poll_transmit() {
                black_box(&tx);
                copies += 1;
            }
            while e.poll_event().is_some() {}
            i += 1;
        }
        let now = Instant::now();
        if e.poll_timeout().is_some_and(|d| d <= now) {
            e.handle_timeout(now);
        }
        let el = t0.elapsed();
        if el >= next_cp {
            sample(&e, el.as_secs_f64(), &mut checkpoints)?;
            next_cp += Duration::from_secs(5);
        }
        if el >= dur || i >= MAX_LOOP_PACKETS {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    if checkpoints.last().is_none_or(|c| secs - c.0 > 0.5) {
        sample(&e, secs, &mut checkpoints)?;
    }
    let s = e.stats();
    println!(
        "\nLong run with churn ({:.0} s, default caps: max_pending {}, max_pending_bytes {}, \
         max_cached_groups {}, max_sources {}, max_transmit_queue {}): {} packets in \
         ({} /s), {} copies out, from 60,000 sources; one packet in 8 to one of 100,000 \
         other groups, half answered with one member, half never answered. RSS of the \
         benchmark process (the engine plus the benchmark's own few MiB): {} KiB at start, \
         {} KiB after the throughput runs.\n",
        secs,
        caps.0,
        caps.1,
        caps.2,
        caps.3,
        caps.4,
        thousands(i as f64),
        thousands(i as f64 / secs),
        thousands(copies as f64),
        thousands(rss_start.rss_kib as f64),
        thousands(rss_tput.rss_kib as f64),
    );
    println!("| at s | VmRSS KiB | VmHWM KiB | pending | cached groups | sources with buckets | in flight |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (t, m, p, cg, ts, inf) in &checkpoints {
        println!(
            "| {t:.0} | {} | {} | {p} | {cg} | {ts} | {inf} |",
            thousands(m.rss_kib as f64),
            thousands(m.hwm_kib as f64)
        );
    }
    println!(
        "\nCounters: member-cache evictions {}, sources overflowed {}, drops: pending_full {}, \
         resolver_busy {}, resolve_timeout {}, group_not_found {} (all drops {}).",
        thousands(s.member_cache_evictions as f64),
        thousands(s.sources_overflowed as f64),
        thousands(s.drops.get(nbdgm_nbdd::DropReason::PendingFull) as f64),
        thousands(s.drops.get(nbdgm_nbdd::DropReason::ResolverBusy) as f64),
        thousands(s.drops.get(nbdgm_nbdd::DropReason::ResolveTimeout) as f64),
        thousands(s.drops.get(nbdgm_nbdd::DropReason::GroupNotFound) as f64),
        thousands(s.drops.total() as f64),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. Over sockets
// ---------------------------------------------------------------------------------------

/// Member sockets on 127.0.9.x:PORT, all polled by one receiver thread.
struct Members {
    socks: Vec<MioUdp>,
    poll: Poll,
    port: u16,
    n: usize,
}

fn udp(addr: SocketAddrV4, rcvbuf: usize) -> anyhow::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_recv_buffer_size(rcvbuf)?;
    s.bind(&SocketAddr::V4(addr).into())
        .with_context(|| format!("bind {addr}"))?;
    Ok(s.into())
}

impl Members {
    /// `n` sockets; the port is chosen later by [`Members::rebind`].
    fn bind(n: usize) -> anyhow::Result<Self> {
        if n == 0 || n > MAX_MEMBERS {
            bail!("members must be within 1..={MAX_MEMBERS}");
        }
        Ok(Members {
            socks: Vec::with_capacity(n),
            poll: Poll::new()?,
            port: 0,
            n,
        })
    }

    fn count(&self) -> usize {
        self.n
    }

    /// Bind the member sockets on `port` (the daemon's datagram port: the NBDD relays to
    /// members on its own port), unless already there.
    fn rebind(&mut self, port: u16) -> anyhow::Result<()> {
        if self.port == port && !self.socks.is_empty() {
            return Ok(());
        }
        let n = self.count();
        for mut s in self.socks.drain(..) {
            let _ = self.poll.registry().deregister(&mut s);
        }
        for i in 0..n {
            let s = udp(SocketAddrV4::new(member_addr(i), port), RECV_BUFFER)?;
            s.set_nonblocking(true)?;
            let mut m = MioUdp::from_std(s);
            self.poll
                .registry()
                .register(&mut m, Token(i), Interest::READABLE)?;
            self.socks.push(m);
        }
        self.port = port;
        Ok(())
    }

    fn addrs(&self, n: usize) -> Vec<SocketAddrV4> {
        (0..n)
            .map(|i| SocketAddrV4::new(member_addr(i), self.port))
            .collect()
    }
}

/// What the members received in one run.
#[derive(Debug, Default, Clone)]
struct Rx {
    copies: u64,
    bytes: u64,
    /// Copies of other runs (late), ignored.
    stale: u64,
    /// Latencies in ns (send stamp to receive), at most LAT_CAP.
    lat: Vec<u64>,
    /// Copies per 100-ms bin from the sender's start.
    bins: Vec<u64>,
    per_member_min: u64,
    per_member_max: u64,
}

const LAT_CAP: usize = 4_000_000;
const BIN: Duration = Duration::from_millis(100);

/// Receive on the first `n` member sockets until `stop` (checked every 50 ms), keeping
/// copies of `run` only.
#[allow(clippy::too_many_arguments)] // a benchmark's measuring loop: every knob is a parameter
fn receive(
    m: &mut Members,
    n: usize,
    run: u64,
    off: usize,
    base: Instant,
    start_ns: u64,
    stop: &AtomicBool,
    hard: Duration,
) -> Rx {
    let mut rx = Rx::default();
    let mut per = vec![0u64; n];
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 2048];
    let began = Instant::now();
    let mut first = true;
    loop {
        let stopping = stop.load(Ordering::Acquire) || began.elapsed() > hard;
        let _ = m.poll.poll(&mut events, Some(Duration::from_millis(50)));
        let ready: Vec<usize> = if first {
            // Edge-triggered: drain everything once at the start.
            first = false;
            (0..m.socks.len()).collect()
        } else {
            events.iter().map(|e| e.token().0).collect()
        };
        for idx in ready {
            let Some(s) = m.socks.get(idx) else { continue };
            // Bounded drain (a socket holds at most RECV_BUFFER bytes).
            for _ in 0..100_000 {
                match s.recv_from(&mut buf) {
                    Ok((len, _)) => {
                        let now_ns = base.elapsed().as_nanos() as u64;
                        match read_stamp(&buf[..len], off) {
                            Some((seq, t)) if seq >> 40 == run && idx < n => {
                                rx.copies += 1;
                                rx.bytes += len as u64;
                                per[idx] += 1;
                                if rx.lat.len() < LAT_CAP {
                                    rx.lat.push(now_ns.saturating_sub(t));
                                }
                                let b = (now_ns.saturating_sub(start_ns) / BIN.as_nanos() as u64)
                                    as usize;
                                if b < 10_000 {
                                    if rx.bins.len() <= b {
                                        rx.bins.resize(b + 1, 0);
                                    }
                                    rx.bins[b] += 1;
                                }
                            }
                            _ => rx.stale += 1,
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        if stopping {
            break;
        }
    }
    rx.per_member_min = per.iter().copied().min().unwrap_or(0);
    rx.per_member_max = per.iter().copied().max().unwrap_or(0);
    rx
}

/// What a sender did.
#[derive(Debug, Clone, Copy, Default)]
struct Tx {
    packets: u64,
    bytes: u64,
    errors: u64,
    secs: f64,
}

/// Send `group` datagrams from `from_ip` to `to`: `rate` packets/s (0: as fast as
/// possible) for `secs`, at most `max` packets; paced in bursts every millisecond.
/// Sequence numbers carry `run` in their top bits.
#[allow(clippy::too_many_arguments)]
fn send(
    from_ip: Ipv4Addr,
    to: SocketAddrV4,
    g: &Name,
    user_len: usize,
    rate: u64,
    secs: f64,
    max: u64,
    run: u64,
    base: Instant,
) -> anyhow::Result<Tx> {
    let sock = udp(SocketAddrV4::new(from_ip, 0), 1 << 16)?;
    let SocketAddr::V4(local) = sock.local_addr()? else {
        bail!("sender socket is not IPv4");
    };
    let (mut pkt, off) = group_datagram(local, g, user_len)?;
    let count = if rate == 0 {
        max
    } else {
        ((rate as f64 * secs) as u64).min(max)
    };
    let t0 = Instant::now();
    let hard = Duration::from_secs_f64(secs * 2.0 + 2.0);
    let mut tx = Tx::default();
    let mut i = 0u64;
    while i < count {
        let due = if rate == 0 {
            count
        } else {
            ((t0.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(count)
        };
        while i < due {
            let t = base.elapsed().as_nanos() as u64;
            stamp(&mut pkt, off, (run << 40) | i, t);
            match sock.send_to(&pkt, to) {
                Ok(n) => {
                    tx.packets += 1;
                    tx.bytes += n as u64;
                }
                Err(_) => tx.errors += 1,
            }
            i += 1;
        }
        if t0.elapsed() > hard {
            break;
        }
        if i < count && rate > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    tx.secs = t0.elapsed().as_secs_f64();
    Ok(tx)
}

/// The baseline: recv on `sock`, then send_to each member, until `stop`.
fn relay_loop(
    sock: UdpSocket,
    members: Vec<SocketAddrV4>,
    stop: Arc<AtomicBool>,
) -> (u64, u64, u64, f64) {
    let _ = sock.set_read_timeout(Some(Duration::from_millis(50)));
    let out = match UdpSocket::bind((LOOP_ADDR, 0)) {
        Ok(s) => s,
        Err(_) => return (0, 0, 0, f64::NAN),
    };
    let mut buf = vec![0u8; 2048];
    let tid = nix::unistd::gettid().as_raw() as u32;
    let cpu0 = procfs::cpu_seconds(tid).unwrap_or(f64::NAN);
    let (mut pin, mut copies, mut errors) = (0u64, 0u64, 0u64);
    let began = Instant::now();
    while !stop.load(Ordering::Acquire) && began.elapsed() < Duration::from_secs(120) {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            pin += 1;
            for m in &members {
                match out.send_to(&buf[..n], m) {
                    Ok(_) => copies += 1,
                    Err(_) => errors += 1,
                }
            }
        }
    }
    let cpu = procfs::cpu_seconds(tid).unwrap_or(f64::NAN) - cpu0;
    (pin, copies, errors, cpu)
}

#[derive(Debug, Clone, Default)]
struct RunResult {
    rx: Rx,
    /// Copies/s over the whole run (received / sender's seconds).
    cps: f64,
    /// Copies/s over the second half of the sender's time (after any burst allowance).
    steady: f64,
    p50_us: f64,
    p99_us: f64,
    loss: f64,
    /// Daemon CPU seconds per copy received (nbdgm only), µs.
    cpu_us_per_copy: f64,
    rate_limited: u64,
    tx_errors: u64,
    kernel_drops: u64,
}

fn summarize(sent: Tx, mut rx: Rx, n: usize) -> RunResult {
    let expected = sent.packets * n as u64;
    rx.lat.sort_unstable();
    let p = |q: f64| -> f64 {
        if rx.lat.is_empty() {
            return f64::NAN;
        }
        let rank = ((q / 100.0) * rx.lat.len() as f64).ceil() as usize;
        rx.lat[rank.clamp(1, rx.lat.len()) - 1] as f64 / 1000.0
    };
    let half = (sent.secs / 2.0 / BIN.as_secs_f64()) as usize;
    let end = (sent.secs / BIN.as_secs_f64()) as usize;
    let steady = if end > half {
        rx.bins.iter().skip(half).take(end - half).sum::<u64>() as f64
            / ((end - half) as f64 * BIN.as_secs_f64())
    } else {
        f64::NAN
    };
    RunResult {
        cps: rx.copies as f64 / sent.secs,
        steady,
        p50_us: p(50.0),
        p99_us: p(99.0),
        loss: if expected > 0 {
            1.0 - rx.copies as f64 / expected as f64
        } else {
            f64::NAN
        },
        rx,
        ..Default::default()
    }
}

/// Member sockets' kernel drops (receive buffer full), summed over the first `n`.
fn member_drops(m: &Members, n: usize) -> u64 {
    (0..n)
        .filter_map(|i| procfs::udp_drops(member_addr(i), m.port))
        .sum()
}

/// One run through the daemon.
#[allow(clippy::too_many_arguments)]
fn run_nbdgm(
    d: &Daemon,
    m: &mut Members,
    n: usize,
    g: &Name,
    pps: u64,
    a: &SocketArgs,
    run: u64,
    dgm_port: u16,
) -> anyhow::Result<RunResult> {
    let base = Instant::now();
    let st0 = stats(d.socket())?;
    let cpu0 = procfs::cpu_seconds(d.pid())?;
    let drops0 = member_drops(m, n) + procfs::udp_drops(NBDD_ADDR, dgm_port).unwrap_or(0);
    let (_, off) = group_datagram(SocketAddrV4::new(sender_addr(1), 1), g, a.user_len)?;
    let stop = AtomicBool::new(false);
    let hard = Duration::from_secs_f64(a.secs * 3.0 + 10.0);
    let start_ns = base.elapsed().as_nanos() as u64;
    let (sent, rx) = std::thread::scope(|s| -> anyhow::Result<(Tx, Rx)> {
        let h = s.spawn(|| receive(m, n, run, off, base, start_ns, &stop, hard));
        let sent = send(
            sender_addr(1),
            SocketAddrV4::new(NBDD_ADDR, dgm_port),
            g,
            a.user_len,
            pps,
            a.secs,
            u64::MAX,
            run,
            base,
        );
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Release);
        let rx = h.join().map_err(|_| anyhow::anyhow!("receiver panicked"))?;
        Ok((sent?, rx))
    })?;
    let cpu = procfs::cpu_seconds(d.pid())? - cpu0;
    let st1 = stats(d.socket())?;
    let c = |p: &str| iface_counter(&st1, p).saturating_sub(iface_counter(&st0, p));
    let mut r = summarize(sent, rx, n);
    r.cpu_us_per_copy = 1e6 * cpu / r.rx.copies.max(1) as f64;
    r.rate_limited = c("/roles/nbdd/copies_rate_limited");
    r.tx_errors = c("/runtime/tx_errors");
    r.kernel_drops = (member_drops(m, n) + procfs::udp_drops(NBDD_ADDR, dgm_port).unwrap_or(0))
        .saturating_sub(drops0);
    Ok(r)
}

/// One run through the benchmark's own relay loop.
fn run_loop(
    m: &mut Members,
    n: usize,
    g: &Name,
    pps: u64,
    a: &SocketArgs,
    run: u64,
) -> anyhow::Result<RunResult> {
    let base = Instant::now();
    let lsock = udp(SocketAddrV4::new(LOOP_ADDR, 0), 4 << 20)?;
    let SocketAddr::V4(laddr) = lsock.local_addr()? else {
        bail!("loop socket is not IPv4");
    };
    let drops0 = member_drops(m, n) + procfs::udp_drops(LOOP_ADDR, laddr.port()).unwrap_or(0);
    let members = m.addrs(n);
    let (_, off) = group_datagram(SocketAddrV4::new(sender_addr(1), 1), g, a.user_len)?;
    let stop = AtomicBool::new(false);
    let hard = Duration::from_secs_f64(a.secs * 3.0 + 10.0);
    let lstop = Arc::new(AtomicBool::new(false));
    let start_ns = base.elapsed().as_nanos() as u64;
    let lstop2 = lstop.clone();
    let relay = std::thread::spawn(move || relay_loop(lsock, members, lstop2));
    let res = std::thread::scope(|s| -> anyhow::Result<(Tx, Rx)> {
        let h = s.spawn(|| receive(m, n, run, off, base, start_ns, &stop, hard));
        let sent = send(
            sender_addr(1),
            laddr,
            g,
            a.user_len,
            pps,
            a.secs,
            u64::MAX,
            run,
            base,
        );
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Release);
        let rx = h.join().map_err(|_| anyhow::anyhow!("receiver panicked"))?;
        Ok((sent?, rx))
    });
    let kd = (member_drops(m, n) + procfs::udp_drops(LOOP_ADDR, laddr.port()).unwrap_or(0))
        .saturating_sub(drops0);
    lstop.store(true, Ordering::Release);
    let (_, _, errors, cpu) = relay
        .join()
        .map_err(|_| anyhow::anyhow!("relay loop panicked"))?;
    let (sent, rx) = res?;
    let mut r = summarize(sent, rx, n);
    r.tx_errors = errors;
    r.kernel_drops = kd;
    r.cpu_us_per_copy = 1e6 * cpu / r.rx.copies.max(1) as f64;
    Ok(r)
}

fn nbdd_daemon(
    bin: &Path,
    dir: &Path,
    tag: &str,
    ports: (u16, u16),
    server: &str,
) -> anyhow::Result<Daemon> {
    let sock = dir.join(format!("{tag}.sock"));
    let toml = nbdd_toml(NBDD_ADDR, ports, &sock, server);
    start_daemon(bin, &toml, &sock, dir, tag, None)
}

fn sockets(bin: &Path, a: &SocketArgs, m: &mut Members) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ports = free_ports(NBDD_ADDR)?;
    m.rebind(ports.1)?;
    let server = "policy = \"allow_list\"\nallow = [\"127.0.0.0/8\"]\nmax_fanout = 256\n\
                  relay_bytes_per_source_per_s = 1e12\nrelay_burst_bytes = 4000000000\n\
                  refragment = false\n";
    let d = nbdd_daemon(bin, dir.path(), "nbdd", ports, server)?;
    let pid = d.pid();
    let nbns = SocketAddrV4::new(NBDD_ADDR, ports.0);
    let mem_boot = procfs::mem(pid)?;
    let mut groups = Vec::new();
    for &n in &a.members {
        if n > m.count() {
            bail!("{n} members but only {} sockets", m.count());
        }
        let g = group(&format!("GROUP{n}"))?;
        let ips: Vec<Ipv4Addr> = (0..n).map(member_addr).collect();
        register_members(nbns, &g, &ips)?;
        groups.push((n, g));
    }
    let mem0 = procfs::mem(pid)?;
    eprintln!(
        "[sockets] daemon pid {pid}: VmRSS {} KiB after start, {} KiB after {} registrations",
        mem0.rss_kib,
        mem0.rss_kib,
        a.members.iter().sum::<usize>()
    );
    let _ = mem_boot;
    note_load("sockets");
    println!("\n### 6.2 Over sockets on loopback (`nbdd_bench sockets`)\n");
    println!(
        "`nbdgm serve` with `role = [\"nbns\", \"nbdd\"]` on {NBDD_ADDR}/8 (`[nbdd_server]` policy \
         allow_list 127.0.0.0/8, relay_bytes_per_source_per_s 1e12, `[limits]` raised); \
         members are sockets of the benchmark on 127.0.9.x at the daemon's datagram port, \
         registered in its NBNS with NAME REGISTRATION REQUESTs for GROUPn<00>; one sender \
         on 127.0.10.1 sends DIRECT_GROUP datagrams ({} bytes) paced in 1-ms bursts for \
         {:.0} s. Baseline: a relay loop in the benchmark on {LOOP_ADDR} (recv_from, then \
         send_to each member), same members, same load. Latency: send stamp in the \
         payload to receive, all copies. Steady: copies/s received over the second half \
         of the run. Median of {} runs; nbdgm and the loop alternate.\n",
        a.user_len + 82,
        a.secs,
        a.runs
    );
    println!(
        "| members | offered copies/s | who | received copies/s | steady copies/s | loss | p50 µs | p99 µs | relay CPU µs/copy | NBDD copies rate-limited | kernel drops |"
    );
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut run_id = 1u64;
    for (n, g) in &groups {
        for &copies in &a.copies {
            let pps = (copies / *n as u64).max(1);
            let (mut rn, mut rl) = (Vec::new(), Vec::new());
            for i in 0..a.runs {
                let r = run_nbdgm(&d, m, *n, g, pps, a, run_id, ports.1)?;
                run_id += 1;
                eprintln!(
                    "[sockets] n={n} offered {copies}/s run {}: nbdgm {} copies/s (steady {}), loss {:.2} %, p50 {:.0} µs, p99 {:.0} µs, rate-limited {}, tx errors {}, stale {}",
                    i + 1,
                    thousands(r.cps),
                    thousands(r.steady),
                    100.0 * r.loss,
                    r.p50_us,
                    r.p99_us,
                    r.rate_limited,
                    r.tx_errors,
                    r.rx.stale
                );
                rn.push(r);
                let r = run_loop(m, *n, g, pps, a, run_id)?;
                run_id += 1;
                eprintln!(
                    "[sockets] n={n} offered {copies}/s run {}: loop  {} copies/s (steady {}), loss {:.2} %, p50 {:.0} µs, p99 {:.0} µs",
                    i + 1,
                    thousands(r.cps),
                    thousands(r.steady),
                    100.0 * r.loss,
                    r.p50_us,
                    r.p99_us
                );
                rl.push(r);
            }
            for (who, v) in [("nbdgm", &rn), ("relay loop", &rl)] {
                let md = |f: fn(&RunResult) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
                let cpu = md(|r| r.cpu_us_per_copy);
                println!(
                    "| {n} | {} | {who} | {} | {} | {:.2} % | {:.0} | {:.0} | {} | {} | {} |",
                    thousands((pps * *n as u64) as f64),
                    thousands(md(|r| r.cps)),
                    thousands(md(|r| r.steady)),
                    100.0 * md(|r| r.loss),
                    md(|r| r.p50_us),
                    md(|r| r.p99_us),
                    if cpu.is_finite() {
                        format!("{cpu:.1}")
                    } else {
                        "–".into()
                    },
                    if who == "nbdgm" {
                        thousands(md(|r| r.rate_limited as f64))
                    } else {
                        "–".into()
                    },
                    thousands(md(|r| r.kernel_drops as f64)),
                );
            }
        }
    }
    let mem1 = procfs::mem(pid)?;
    let st = stats(d.socket())?;
    println!(
        "\nDaemon memory: VmRSS {} KiB before the traffic, {} KiB after; VmHWM {} KiB before, \
         {} KiB after. NBDD counters over all runs: {} packets in, {} copies relayed, {} \
         copies rate-limited, global-bucket drops of whole packets {}.",
        thousands(mem0.rss_kib as f64),
        thousands(mem1.rss_kib as f64),
        thousands(mem0.hwm_kib as f64),
        thousands(mem1.hwm_kib as f64),
        thousands(iface_counter(&st, "/roles/nbdd/packets_in") as f64),
        thousands(iface_counter(&st, "/roles/nbdd/relayed_copies") as f64),
        thousands(iface_counter(&st, "/roles/nbdd/copies_rate_limited") as f64),
        thousands(iface_counter(&st, "/roles/nbdd/drops/rate_limited") as f64),
    );
    drop(d);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. Amplification
// ---------------------------------------------------------------------------------------

fn amplification(bin: &Path, a: &AmpArgs, m: &mut Members) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ports = free_ports(NBDD_ADDR)?;
    m.rebind(ports.1)?;
    // Default relay limits (relay_bytes_per_source_per_s, relay_burst_bytes); only the
    // policy is an allow list, so no NBNS verification is involved.
    let server = "policy = \"allow_list\"\nallow = [\"127.0.0.0/8\"]\n";
    let d = nbdd_daemon(bin, dir.path(), "amp", ports, server)?;
    let def = NbddConfig::default();
    let (rate, burst) = (
        def.relay_bytes_per_source_per_s.rate,
        def.relay_bytes_per_source_per_s.burst,
    );
    let g = group("AMPGROUP")?;
    let ips: Vec<Ipv4Addr> = (0..a.members).map(member_addr).collect();
    register_members(SocketAddrV4::new(NBDD_ADDR, ports.0), &g, &ips)?;
    note_load("amplification");
    println!("\n### 6.3 Amplification (`nbdd_bench amplification`)\n");
    println!(
        "The same daemon with the default `[nbdd_server]` relay limit ({} bytes/s per source, \
         burst {} bytes; total {} bytes/s, burst {}), policy allow_list, `[limits]` raised so \
         that the NBDD sees every packet. One sender per row (a fresh bucket each) sends \
         DIRECT_GROUP datagrams ({} bytes) to a {}-member group for {:.0} s (the flood: as \
         fast as one thread sends, ≤ {} packets). Bound: burst + rate × seconds of the \
         sender.\n",
        thousands(rate),
        thousands(burst as f64),
        thousands(def.relay_bytes_total_per_s.map_or(f64::NAN, |r| r.rate)),
        thousands(
            def.relay_bytes_total_per_s
                .map_or(f64::NAN, |r| r.burst as f64)
        ),
        a.user_len + 82,
        a.members,
        a.secs,
        thousands(a.flood_count as f64)
    );
    println!(
        "| sender packets/s | sent packets | NBDD bytes in | NBDD bytes out | out / in (NBDD stats) | copies relayed | copies rate-limited | packets refused (rate) | bytes received by members | received / sent | bound (bytes) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (k, &r) in a.rates.iter().enumerate() {
        let base = Instant::now();
        let st0 = stats(d.socket())?;
        let (_, off) = group_datagram(SocketAddrV4::new(sender_addr(1), 1), &g, a.user_len)?;
        let stop = AtomicBool::new(false);
        let hard = Duration::from_secs_f64(a.secs * 3.0 + 10.0);
        let run = 1000 + k as u64;
        let from = sender_addr(20 + k as u8);
        let n = a.members;
        let (sent, rx) = std::thread::scope(|s| -> anyhow::Result<(Tx, Rx)> {
            let h = s.spawn(|| receive(m, n, run, off, base, 0, &stop, hard));
            let sent = send(
                from,
                SocketAddrV4::new(NBDD_ADDR, ports.1),
                &g,
                a.user_len,
                r,
                a.secs,
                a.flood_count,
                run,
                base,
            );
            std::thread::sleep(Duration::from_millis(700));
            stop.store(true, Ordering::Release);
            let rx = h.join().map_err(|_| anyhow::anyhow!("receiver panicked"))?;
            Ok((sent?, rx))
        })?;
        let st1 = stats(d.socket())?;
        let c = |p: &str| iface_counter(&st1, p).saturating_sub(iface_counter(&st0, p));
        let (bin_, bout) = (c("/roles/nbdd/bytes_in"), c("/roles/nbdd/bytes_out"));
        let bound = burst as f64 + rate * sent.secs;
        eprintln!(
            "[amplification] {} pkt/s: sent {} in {:.2} s, NBDD in {bin_} out {bout}, members {} bytes",
            if r == 0 { "flood".into() } else { r.to_string() },
            sent.packets,
            sent.secs,
            rx.bytes
        );
        println!(
            "| {} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {:.2} | {} |",
            if r == 0 {
                format!("flood ({}/s)", thousands(sent.packets as f64 / sent.secs))
            } else {
                thousands(r as f64)
            },
            thousands(sent.packets as f64),
            thousands(bin_ as f64),
            thousands(bout as f64),
            if bin_ > 0 {
                bout as f64 / bin_ as f64
            } else {
                f64::NAN
            },
            thousands(c("/roles/nbdd/relayed_copies") as f64),
            thousands(c("/roles/nbdd/copies_rate_limited") as f64),
            thousands(c("/roles/nbdd/drops/rate_limited") as f64),
            thousands(rx.bytes as f64),
            rx.bytes as f64 / sent.bytes.max(1) as f64,
            thousands(bound),
        );
    }
    drop(d);
    Ok(())
}
