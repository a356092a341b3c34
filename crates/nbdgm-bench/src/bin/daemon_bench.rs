//! `daemon_bench`: benchmarks of `nbdgm serve` (issue 4), each against its peer in the
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

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use nbdgm_bench::daemon::{
    api_counter, free_ports, iface_counter, stats, wait_api, wait_names, DaemonConfig, LocalDaemon,
};
use nbdgm_bench::packets;
use nbdgm_bench::procfs;
use nbdgm_bench::report::{median, percentile, runs, thousands};
use nbdgm_client::proto::{Event, Subscription};
use nbdgm_lab::{Lab, LabSpec, Nmbd, NmbdOptions};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Address the loopback daemon (and the limit receiver) listens on.
const DAEMON_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 77, 2);
/// Address the flood generator sends from.
const GEN_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 77, 1);
/// Workgroup of the loopback daemon; datagrams go to `BENCHWG<00>`.
const WORKGROUP: &str = "BENCHWG";
/// Kernel receive buffer: the same as the daemon asks for on its sockets.
const RECV_BUFFER: usize = 4 << 20;

#[derive(Parser, Debug)]
#[command(about = "Benchmarks of `nbdgm serve` (see docs/BENCHMARKS.md)")]
struct Cli {
    /// The nbdgm binary [default: $NBDGM_BIN, else target/{release,debug}/nbdgm].
    #[arg(long, global = true)]
    nbdgm: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

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
}

impl Default for ThroughputArgs {
    fn default() -> Self {
        ThroughputArgs {
            count: 2_000_000,
            max_secs: 10.0,
            runs: 3,
            paced_count: 1_000_000,
            subscriber: SubscriberKind::Raw,
        }
    }
}

#[derive(Args, Debug, Clone)]
struct NamesArgs {
    /// Sequential requests per latency measurement.
    #[arg(long, default_value_t = 2000)]
    latency_count: u32,
    /// Requests outstanding in the closed-loop rate measurement.
    #[arg(long, default_value_t = 32)]
    outstanding: usize,
    /// Seconds per closed-loop rate measurement.
    #[arg(long, default_value_t = 5.0)]
    rate_secs: f64,
    /// Repetitions (nmbd and nbdgm alternate in each); medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

impl Default for NamesArgs {
    fn default() -> Self {
        NamesArgs {
            latency_count: 2000,
            outstanding: 32,
            rate_secs: 5.0,
            runs: 3,
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
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("daemon_bench: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let bin = match cli.nbdgm {
        Some(p) => p,
        None => nbdgm_lab::find_nbdgm_binary()?,
    };
    let bin = bin.canonicalize().context("nbdgm binary")?;
    eprintln!("nbdgm binary: {}", bin.display());
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
    let b = procfs::wait_idle(0.10, Duration::from_secs(120));
    eprintln!(
        "[{what}] machine busy before: {:.0} % of 2 CPUs (load average {:.2})",
        100.0 * b,
        procfs::loadavg1()
    );
    b
}

// ---------------------------------------------------------------------------------------
// 1. Throughput
// ---------------------------------------------------------------------------------------

/// What the generator did.
#[derive(Debug, Clone, Copy)]
struct Sent {
    count: u64,
    errors: u64,
    secs: f64,
}

impl Sent {
    fn rate(&self) -> f64 {
        self.count as f64 / self.secs
    }
}

/// What a receiver counted: datagrams and the time from the generator's start to the last.
#[derive(Debug, Clone, Copy, Default)]
struct Received {
    count: u64,
    secs: f64,
    /// Events the daemon reported as dropped for this subscriber (`overflow`).
    overflow: u64,
}

impl Received {
    fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.count as f64 / self.secs
        } else {
            0.0
        }
    }
}

/// Datagrams per `sendmmsg` call.
const BURST: usize = 32;

/// Send HostAnnouncements from `GEN_ADDR` to `target` (connected UDP socket, `sendmmsg`
/// with bursts of 32): `count` at most, for `max` at most, paced at `pace` datagrams/s if
/// given. DGM_ID changes with every datagram. Starts when `go` is passed.
fn generate(
    target: SocketAddrV4,
    count: u64,
    max: Duration,
    pace: Option<f64>,
    go: &Barrier,
    start: &std::sync::OnceLock<Instant>,
) -> anyhow::Result<Sent> {
    use nix::sys::socket::{sendmmsg, MsgFlags, MultiHeaders, SockaddrIn};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    let sock = UdpSocket::bind((GEN_ADDR, 0))?;
    sock.connect(target)?;
    let SocketAddr::V4(local) = sock.local_addr()? else {
        bail!("generator socket is not IPv4");
    };
    let pkt = packets::host_announcement(local, WORKGROUP, 0)?;
    let mut bufs: Vec<Vec<u8>> = vec![pkt; BURST];
    let addrs: Vec<Option<SockaddrIn>> = vec![None; BURST];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BURST, None);
    go.wait();
    let t0 = *start.get_or_init(Instant::now);
    let deadline = t0 + max;
    let mut sent = 0u64;
    let mut errors = 0u64;
    let mut id = 0u16;
    while sent + errors < count {
        if let Some(rate) = pace {
            let due = t0 + Duration::from_secs_f64((sent + errors) as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let n = (BURST as u64).min(count - sent - errors) as usize;
        for b in bufs.iter_mut().take(n) {
            b[2..4].copy_from_slice(&id.to_be_bytes());
            id = id.wrapping_add(1);
        }
        let slices: Vec<[IoSlice<'_>; 1]> = bufs[..n].iter().map(|b| [IoSlice::new(b)]).collect();
        match sendmmsg(
            sock.as_raw_fd(),
            &mut headers,
            &slices,
            &addrs[..n],
            [],
            MsgFlags::empty(),
        ) {
            Ok(r) => {
                let k = r.count() as u64;
                sent += k;
                errors += n as u64 - k;
            }
            Err(_) => errors += n as u64,
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Ok(Sent {
        count: sent,
        errors,
        secs: t0.elapsed().as_secs_f64(),
    })
}

/// Bound by how long a receiver may wait for more after the generator has finished.
const IDLE_AFTER_SENDER: Duration = Duration::from_millis(1000);

/// The limit: a plain receive loop on `target`, same buffer size as the daemon's.
fn limit_receiver(
    sock: &UdpSocket,
    done: &AtomicBool,
    start: &std::sync::OnceLock<Instant>,
    hard: Duration,
) -> Received {
    let mut buf = vec![0u8; 65_536];
    let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
    let mut count = 0u64;
    let mut last = None;
    let began = Instant::now();
    let mut idle_since: Option<Instant> = None;
    loop {
        match sock.recv_from(&mut buf) {
            Ok(_) => {
                count += 1;
                last = Some(Instant::now());
                idle_since = None;
            }
            Err(_) => {
                if done.load(Ordering::Acquire) {
                    let s = *idle_since.get_or_insert_with(Instant::now);
                    if s.elapsed() >= IDLE_AFTER_SENDER {
                        break;
                    }
                }
            }
        }
        if began.elapsed() > hard {
            break;
        }
    }
    let secs = match (start.get(), last) {
        (Some(t0), Some(l)) => l.duration_since(*t0).as_secs_f64(),
        _ => 0.0,
    };
    Received {
        count,
        secs,
        overflow: 0,
    }
}

fn bind_limit_socket(target: SocketAddrV4) -> anyhow::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(RECV_BUFFER);
    s.bind(&SocketAddr::V4(target).into())?;
    Ok(s.into())
}

/// A subscriber connected and subscribed to `WORKGROUP<00>`, not yet counting.
enum Subscriber {
    Raw(UnixStream),
    Client(Box<nbdgm_client::Client>),
}

impl Subscriber {
    fn connect(socket: &Path, kind: SubscriberKind) -> anyhow::Result<Self> {
        let name = format!("{WORKGROUP}<00>");
        match kind {
            SubscriberKind::Raw => {
                let mut s = UnixStream::connect(socket)?;
                s.write_all(
                    format!("{{\"id\":1,\"op\":\"subscribe\",\"name\":\"{name}\"}}\n").as_bytes(),
                )?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                // Read byte by byte up to the response, so nothing after it is consumed.
                let mut line = Vec::new();
                let mut b = [0u8; 1];
                loop {
                    s.read_exact(&mut b)?;
                    if b[0] == b'\n' {
                        let v: serde_json::Value = serde_json::from_slice(&line)?;
                        if v.get("id").and_then(serde_json::Value::as_u64) == Some(1) {
                            if v.get("ok") != Some(&serde_json::Value::Bool(true)) {
                                bail!("subscribe failed: {v}");
                            }
                            break;
                        }
                        line.clear();
                    } else {
                        line.push(b[0]);
                    }
                }
                Ok(Subscriber::Raw(s))
            }
            SubscriberKind::Client => {
                let mut c = nbdgm_client::Client::connect(socket)?;
                c.subscribe(Subscription {
                    name: Some(name),
                    ..Default::default()
                })?;
                Ok(Subscriber::Client(Box::new(c)))
            }
        }
    }

    /// Count datagram events until the generator is done and nothing came for a second.
    fn count(
        self,
        done: &AtomicBool,
        start: &std::sync::OnceLock<Instant>,
        hard: Duration,
    ) -> anyhow::Result<Received> {
        let began = Instant::now();
        let mut count = 0u64;
        let mut overflow = 0u64;
        let mut last = None;
        let mut idle_since: Option<Instant> = None;
        let mut idle = |got: bool, last: &mut Option<Instant>| -> bool {
            if got {
                *last = Some(Instant::now());
                idle_since = None;
                return false;
            }
            if done.load(Ordering::Acquire) {
                let s = *idle_since.get_or_insert_with(Instant::now);
                return s.elapsed() >= IDLE_AFTER_SENDER;
            }
            false
        };
        match self {
            Subscriber::Raw(mut s) => {
                s.set_read_timeout(Some(Duration::from_millis(100)))?;
                let mut buf = vec![0u8; 1 << 20];
                let mut partial: Vec<u8> = Vec::new();
                loop {
                    let got = match s.read(&mut buf) {
                        Ok(0) => bail!("daemon closed the API connection"),
                        Ok(n) => {
                            let mut data = &buf[..n];
                            while let Some(i) = data.iter().position(|&b| b == b'\n') {
                                let piece = &data[..i];
                                let line: &[u8] = if partial.is_empty() {
                                    piece
                                } else {
                                    partial.extend_from_slice(piece);
                                    &partial
                                };
                                if line.starts_with(b"{\"event\":\"datagram\"") {
                                    count += 1;
                                } else if line.starts_with(b"{\"event\":\"overflow\"") {
                                    let v: serde_json::Value = serde_json::from_slice(line)?;
                                    overflow += v["dropped"].as_u64().unwrap_or(0);
                                }
                                partial.clear();
                                data = &data[i + 1..];
                            }
                            partial.extend_from_slice(data);
                            true
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            false
                        }
                        Err(e) => return Err(e.into()),
                    };
                    if idle(got, &mut last) || began.elapsed() > hard {
                        break;
                    }
                }
            }
            Subscriber::Client(mut c) => loop {
                let got = match c.next_event(Some(Duration::from_millis(100)))? {
                    Some(Event::Datagram(_)) => {
                        count += 1;
                        true
                    }
                    Some(Event::Overflow { dropped }) => {
                        overflow += dropped;
                        true
                    }
                    Some(_) => true,
                    None => false,
                };
                if idle(got, &mut last) || began.elapsed() > hard {
                    break;
                }
            },
        }
        let secs = match (start.get(), last) {
            (Some(t0), Some(l)) => l.duration_since(*t0).as_secs_f64(),
            _ => 0.0,
        };
        Ok(Received {
            count,
            secs,
            overflow,
        })
    }
}

/// One measurement against the limit receiver.
fn run_limit(
    target: SocketAddrV4,
    count: u64,
    max: Duration,
    pace: Option<f64>,
) -> anyhow::Result<(Sent, Received, u64)> {
    let sock = bind_limit_socket(target)?;
    let drops0 = procfs::udp_drops(*target.ip(), target.port()).unwrap_or(0);
    let go = Barrier::new(2);
    let start = std::sync::OnceLock::new();
    let done = AtomicBool::new(false);
    let hard = max + Duration::from_secs(15);
    let (sent, recv) = std::thread::scope(|s| {
        let rx = s.spawn(|| {
            go.wait();
            limit_receiver(&sock, &done, &start, hard)
        });
        let sent = generate(target, count, max, pace, &go, &start);
        done.store(true, Ordering::Release);
        let recv = rx.join().expect("receiver thread");
        (sent, recv)
    });
    let drops = procfs::udp_drops(*target.ip(), target.port()).unwrap_or(0) - drops0;
    Ok((sent?, recv, drops))
}

/// Result of one daemon run.
struct DaemonRun {
    sent: Sent,
    recv: Received,
    kernel_drops: u64,
    cpu_s: f64,
    hwm_kib: u64,
    stats: serde_json::Value,
}

fn start_loopback_daemon(
    bin: &Path,
    dir: &Path,
    tag: &str,
    ports: (u16, u16),
    extra: &str,
) -> anyhow::Result<LocalDaemon> {
    let cfg = DaemonConfig {
        name: "BENCHNODE".into(),
        workgroup: WORKGROUP.into(),
        address: DAEMON_ADDR,
        prefix: 8,
        ports,
        socket: dir.join(format!("{tag}.sock")),
        raised_limits: true,
        extra: extra.into(),
    };
    let d = LocalDaemon::start(bin, &cfg, dir, tag)?;
    wait_names(
        &d.socket,
        &["BENCHNODE<00>", &format!("{WORKGROUP}<00>")],
        Duration::from_secs(15),
    )
    .with_context(|| d.log_text())?;
    Ok(d)
}

fn run_daemon(
    bin: &Path,
    dir: &Path,
    tag: &str,
    count: u64,
    max: Duration,
    pace: Option<f64>,
    kind: SubscriberKind,
) -> anyhow::Result<DaemonRun> {
    let ports = free_ports(DAEMON_ADDR)?;
    let target = SocketAddrV4::new(DAEMON_ADDR, ports.1);
    let d = start_loopback_daemon(bin, dir, tag, ports, "")?;
    let sub = Subscriber::connect(&d.socket, kind)?;
    let pid = d.pid();
    let cpu0 = procfs::cpu_seconds(pid)?;
    let drops0 = procfs::udp_drops(DAEMON_ADDR, ports.1).unwrap_or(0);
    let go = Barrier::new(2);
    let start = std::sync::OnceLock::new();
    let done = AtomicBool::new(false);
    let hard = max + Duration::from_secs(30);
    let (sent, recv) = std::thread::scope(|s| {
        let rx = s.spawn(|| {
            go.wait();
            sub.count(&done, &start, hard)
        });
        let sent = generate(target, count, max, pace, &go, &start);
        done.store(true, Ordering::Release);
        let recv = rx.join().expect("subscriber thread");
        (sent, recv)
    });
    let cpu_s = procfs::cpu_seconds(pid)? - cpu0;
    let kernel_drops = procfs::udp_drops(DAEMON_ADDR, ports.1).unwrap_or(0) - drops0;
    let hwm_kib = procfs::mem(pid)?.hwm_kib;
    let stats = stats(&d.socket)?;
    drop(d);
    Ok(DaemonRun {
        sent: sent?,
        recv: recv?,
        kernel_drops,
        cpu_s,
        hwm_kib,
        stats,
    })
}

fn throughput(bin: &Path, a: &ThroughputArgs) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("nbdgm-bench-").tempdir()?;
    let max = Duration::from_secs_f64(a.max_secs);
    let dg_len = packets::host_announcement(SocketAddrV4::new(GEN_ADDR, 1), WORKGROUP, 0)?.len();
    let ms_len = packets::host_announcement_mailslot_len()?;
    let mut limit = Vec::new();
    let mut daemon = Vec::new();
    let mut busy = Vec::new();
    for r in 0..a.runs {
        busy.push(note_load(&format!("throughput run {r}, limit")));
        let ports = free_ports(DAEMON_ADDR)?;
        let target = SocketAddrV4::new(DAEMON_ADDR, ports.1);
        let l = run_limit(target, a.count, max, None)?;
        eprintln!(
            "run {r}: limit: sent {} ({:.0}/s, {} send errors), received {} ({:.0}/s), kernel drops {}, load {:.2}",
            l.0.count,
            l.0.rate(),
            l.0.errors,
            l.1.count,
            l.1.rate(),
            l.2,
            procfs::loadavg1()
        );
        limit.push(l);
        busy.push(note_load(&format!("throughput run {r}, nbdgm")));
        let d = run_daemon(
            bin,
            dir.path(),
            &format!("tp{r}"),
            a.count,
            max,
            None,
            a.subscriber,
        )?;
        eprintln!(
            "run {r}: nbdgm: sent {} ({:.0}/s, {} send errors), delivered {} ({:.0}/s), kernel drops {}, cpu {:.2} s, load {:.2}",
            d.sent.count,
            d.sent.rate(),
            d.sent.errors,
            d.recv.count,
            d.recv.rate(),
            d.kernel_drops,
            d.cpu_s,
            procfs::loadavg1()
        );
        daemon.push(d);
    }
    let lim_gen: Vec<f64> = limit.iter().map(|l| l.0.rate()).collect();
    let lim_rx: Vec<f64> = limit.iter().map(|l| l.1.rate()).collect();
    let lim_drop: Vec<f64> = limit.iter().map(|l| l.2 as f64).collect();
    let d_gen: Vec<f64> = daemon.iter().map(|d| d.sent.rate()).collect();
    let d_rx: Vec<f64> = daemon.iter().map(|d| d.recv.rate()).collect();
    let d_drop: Vec<f64> = daemon.iter().map(|d| d.kernel_drops as f64).collect();
    let ratios: Vec<f64> = lim_rx
        .iter()
        .zip(&d_rx)
        .map(|(l, d)| 100.0 * d / l)
        .collect();
    let us_per_dg: Vec<f64> = daemon
        .iter()
        .map(|d| {
            let n = iface_counter(&d.stats, "/runtime/rx_datagram").max(1);
            1e6 * d.cpu_s / n as f64
        })
        .collect();

    println!("\n### Receive-and-deliver throughput (loopback)\n");
    println!(
        "Datagram: DIRECT_GROUP {dg_len} bytes (UDP payload) to {WORKGROUP}<00> carrying a \
         {ms_len}-byte mailslot write (HostAnnouncement to \\MAILSLOT\\BROWSE); {} datagrams \
         or {} s per run, {} runs (limit and nbdgm alternate), subscriber: {:?}.\n",
        thousands(a.count as f64),
        a.max_secs,
        a.runs,
        a.subscriber
    );
    println!("| measure | median | runs |");
    println!("| --- | ---: | ---: |");
    println!(
        "| generator send rate, limit runs (datagrams/s) | {} | {} |",
        thousands(median(&lim_gen)),
        runs(&lim_gen)
    );
    println!(
        "| **limit**: plain `recv_from` loop (datagrams/s) | **{}** | {} |",
        thousands(median(&lim_rx)),
        runs(&lim_rx)
    );
    println!(
        "| limit: kernel drops (receive buffer full) | {} | {} |",
        thousands(median(&lim_drop)),
        runs(&lim_drop)
    );
    println!(
        "| generator send rate, nbdgm runs (datagrams/s) | {} | {} |",
        thousands(median(&d_gen)),
        runs(&d_gen)
    );
    println!(
        "| **nbdgm delivered** to the API subscriber (datagrams/s) | **{}** | {} |",
        thousands(median(&d_rx)),
        runs(&d_rx)
    );
    let d_proc: Vec<f64> = daemon
        .iter()
        .map(|d| iface_counter(&d.stats, "/runtime/rx_datagram") as f64 / d.sent.secs)
        .collect();
    println!(
        "| (diagnosis) nbdgm received and parsed: runtime.rx_datagram ÷ generator time (datagrams/s) | {} | {} |",
        thousands(median(&d_proc)),
        runs(&d_proc)
    );
    let d_qfull: Vec<f64> = daemon
        .iter()
        .map(|d| api_counter(&d.stats, "events_dropped_queue_full") as f64)
        .collect();
    println!(
        "| (diagnosis) events dropped at the subscriber's queue (api.events_dropped_queue_full) | {} | {} |",
        thousands(median(&d_qfull)),
        runs(&d_qfull)
    );
    println!(
        "| nbdgm: kernel drops on its socket | {} | {} |",
        thousands(median(&d_drop)),
        runs(&d_drop)
    );
    println!(
        "| **ratio** nbdgm / limit (goal ≥ 70 %) | **{:.1} %** | {} |",
        median(&ratios),
        ratios
            .iter()
            .map(|r| format!("{r:.1} %"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!(
        "| nbdgm CPU per received datagram (µs, all daemon threads) | {:.2} | {} |",
        median(&us_per_dg),
        us_per_dg
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!(
        "| nbdgm peak RSS (VmHWM, MiB) | {:.1} | {} |",
        median(&daemon.iter().map(|d| d.hwm_kib as f64).collect::<Vec<_>>()) / 1024.0,
        daemon
            .iter()
            .map(|d| format!("{:.1}", d.hwm_kib as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!(
        "\nMachine busy (not counting niced tasks) in the second before each measurement: {}.",
        busy.iter()
            .map(|b| format!("{:.0} %", 100.0 * b))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(d) = daemon.last() {
        print_daemon_counters("last flood run", d);
    }

    // Paced run at half the limit's median rate.
    let rate = median(&lim_rx) / 2.0;
    let count = a.paced_count.min((rate * 10.0) as u64).max(1);
    let pmax = Duration::from_secs_f64(count as f64 / rate + 5.0);
    note_load("paced");
    let ports = free_ports(DAEMON_ADDR)?;
    let pl = run_limit(
        SocketAddrV4::new(DAEMON_ADDR, ports.1),
        count,
        pmax,
        Some(rate),
    )?;
    note_load("paced, nbdgm");
    let pd = run_daemon(
        bin,
        dir.path(),
        "paced",
        count,
        pmax,
        Some(rate),
        a.subscriber,
    )?;
    println!("\n### Paced run at 50 % of the limit's rate\n");
    println!(
        "{} datagrams at {} datagrams/s (bursts of 32), same datagram and path.\n",
        thousands(count as f64),
        thousands(rate)
    );
    println!("| receiver | sent | achieved send rate | received / delivered | lost | loss | kernel drops |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, sent, recv, drops) in [
        ("limit (`recv_from` loop)", pl.0, pl.1, pl.2),
        ("nbdgm → API subscriber", pd.sent, pd.recv, pd.kernel_drops),
    ] {
        let lost = sent.count.saturating_sub(recv.count);
        println!(
            "| {name} | {} | {} | {} | {} | {:.3} % | {} |",
            thousands(sent.count as f64),
            thousands(sent.rate()),
            thousands(recv.count as f64),
            thousands(lost as f64),
            100.0 * lost as f64 / sent.count.max(1) as f64,
            thousands(drops as f64)
        );
    }
    print_daemon_counters("paced run", &pd);
    Ok(())
}

fn print_daemon_counters(what: &str, d: &DaemonRun) {
    let s = &d.stats;
    println!("\nDaemon counters after the {what} (`nbdgm stats --format json`):\n");
    println!("| counter | value |");
    println!("| --- | ---: |");
    for (k, v) in [
        ("generator sent", d.sent.count),
        ("kernel drops on the datagram socket", d.kernel_drops),
        (
            "runtime.rx_datagram",
            iface_counter(s, "/runtime/rx_datagram"),
        ),
        (
            "runtime.rate_limited_rx",
            iface_counter(s, "/runtime/rate_limited_rx"),
        ),
        (
            "node.datagrams_delivered",
            iface_counter(s, "/node/datagrams_delivered"),
        ),
        (
            "node.events_dropped",
            iface_counter(s, "/node/events_dropped"),
        ),
        (
            "runtime.delivered_to_api",
            iface_counter(s, "/runtime/delivered_to_api"),
        ),
        ("api.events_delivered", api_counter(s, "events_delivered")),
        (
            "api.events_dropped_queue_full",
            api_counter(s, "events_dropped_queue_full"),
        ),
        ("subscriber: overflow events' dropped", d.recv.overflow),
        ("subscriber: datagram events counted", d.recv.count),
    ] {
        println!("| {k} | {} |", thousands(v as f64));
    }
}

// ---------------------------------------------------------------------------------------
// 2. Name service: nbdgm vs nmbd
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Query {
    Name,
    Status,
}

impl Query {
    fn label(self) -> &'static str {
        match self {
            Query::Name => "NAME QUERY",
            Query::Status => "NODE STATUS",
        }
    }
}

/// A target of the name-service benchmarks.
struct Target {
    label: &'static str,
    addr: SocketAddrV4,
    name: String,
}

impl Target {
    fn packet(&self, q: Query) -> anyhow::Result<Vec<u8>> {
        match q {
            Query::Name => packets::name_query(&format!("{}<00>", self.name), 0),
            Query::Status => packets::node_status(0),
        }
    }
}

/// Sequential request/response: RTTs in µs of the answered ones, and the unanswered count.
fn latency(
    sock: &UdpSocket,
    to: SocketAddrV4,
    template: &[u8],
    n: u32,
    first_id: u16,
) -> anyhow::Result<(Vec<f64>, u32)> {
    let mut pkt = template.to_vec();
    let mut buf = [0u8; 2048];
    let mut rtts = Vec::with_capacity(n as usize);
    let mut lost = 0;
    let timeout = Duration::from_millis(500);
    for i in 0..n {
        let id = first_id.wrapping_add(i as u16);
        packets::set_trn_id(&mut pkt, id);
        let t = Instant::now();
        sock.send_to(&pkt, to)?;
        let deadline = t + timeout;
        loop {
            let now = Instant::now();
            if now >= deadline {
                lost += 1;
                break;
            }
            sock.set_read_timeout(Some(deadline - now))?;
            match sock.recv_from(&mut buf) {
                Ok((len, _)) => {
                    if packets::positive_response_id(&buf[..len]) == Some(id) {
                        rtts.push(t.elapsed().as_secs_f64() * 1e6);
                        break;
                    }
                }
                Err(_) => {
                    lost += 1;
                    break;
                }
            }
        }
    }
    rtts.sort_by(f64::total_cmp);
    Ok((rtts, lost))
}

/// Closed loop with `outstanding` requests in flight for `secs`: (answers/s, answered,
/// sent, timed out). A request unanswered after 200 ms is replaced by a new one.
fn closed_loop(
    sock: &UdpSocket,
    to: SocketAddrV4,
    template: &[u8],
    outstanding: usize,
    secs: f64,
    first_id: u16,
) -> anyhow::Result<(f64, u64, u64, u64)> {
    let mut pkt = template.to_vec();
    let mut buf = [0u8; 2048];
    let timeout = Duration::from_millis(200);
    let mut in_flight: Vec<Option<Instant>> = vec![None; 65_536];
    let mut live = std::collections::VecDeque::new();
    let mut next_id = first_id;
    let (mut answered, mut sent, mut timed_out) = (0u64, 0u64, 0u64);
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(secs);
    let mut send_one = |in_flight: &mut Vec<Option<Instant>>,
                        live: &mut std::collections::VecDeque<u16>,
                        sent: &mut u64|
     -> anyhow::Result<()> {
        let id = next_id;
        next_id = next_id.wrapping_add(1);
        packets::set_trn_id(&mut pkt, id);
        sock.send_to(&pkt, to)?;
        in_flight[id as usize] = Some(Instant::now());
        live.push_back(id);
        *sent += 1;
        Ok(())
    };
    for _ in 0..outstanding {
        send_one(&mut in_flight, &mut live, &mut sent)?;
    }
    sock.set_read_timeout(Some(Duration::from_millis(5)))?;
    while Instant::now() < end {
        if let Ok((len, _)) = sock.recv_from(&mut buf) {
            if let Some(id) = packets::positive_response_id(&buf[..len]) {
                if in_flight[id as usize].take().is_some() {
                    answered += 1;
                    send_one(&mut in_flight, &mut live, &mut sent)?;
                }
            }
        }
        // Expire the oldest requests (ids are sent in order, so the front is oldest).
        let now = Instant::now();
        while let Some(&id) = live.front() {
            match in_flight[id as usize] {
                None => {
                    live.pop_front();
                }
                Some(t) if now.duration_since(t) >= timeout => {
                    in_flight[id as usize] = None;
                    live.pop_front();
                    timed_out += 1;
                    send_one(&mut in_flight, &mut live, &mut sent)?;
                }
                Some(_) => break,
            }
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    Ok((answered as f64 / elapsed, answered, sent, timed_out))
}

/// Wait (≤ `timeout`) until `target` answers a NAME QUERY for its name.
fn wait_answers(sock: &UdpSocket, t: &Target, timeout: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + timeout;
    let pkt = t.packet(Query::Name)?;
    while Instant::now() < until {
        let (rtts, _) = latency(sock, t.addr, &pkt, 1, 0xfff0)?;
        if !rtts.is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{} does not answer a NAME QUERY for {}", t.label, t.name)
}

/// Start nbdgm serve in host `b`'s namespace; returns the tracked process and API socket.
fn start_lab_nbdgm(
    bin: &Path,
    lab: &Lab,
    b: &nbdgm_lab::Host,
    raised: bool,
    tag: &str,
) -> anyhow::Result<(nbdgm_lab::Proc, PathBuf)> {
    let socket = lab.dir().join(format!("{tag}.sock"));
    let cfg = DaemonConfig {
        name: "NBDGMB".into(),
        workgroup: "TESTGROUP".into(),
        address: b.addr(),
        prefix: 24,
        ports: (137, 138),
        socket: socket.clone(),
        raised_limits: raised,
        extra: String::new(),
    };
    let conf = lab.dir().join(format!("{tag}.toml"));
    cfg.write(&conf)?;
    let mut cmd = b.cmd(bin);
    cmd.args(["serve", "--config"]).arg(&conf);
    let proc = b.spawn(cmd)?;
    wait_api(&socket, Duration::from_secs(10), || proc.is_running())
        .with_context(|| proc.read_stderr().unwrap_or_default())?;
    wait_names(
        &socket,
        &["NBDGMB<00>", "TESTGROUP<00>"],
        Duration::from_secs(15),
    )?;
    Ok((proc, socket))
}

#[derive(Default)]
struct NameResults {
    p50: Vec<f64>,
    p99: Vec<f64>,
    lat_lost: Vec<f64>,
    rate: Vec<f64>,
    rate_timeouts: Vec<f64>,
}

fn names(bin: &Path, a: &NamesArgs) -> anyhow::Result<()> {
    if !nbdgm_lab::require_or_skip("daemon_bench names") {
        bail!("lab prerequisites missing (root, ip, nmbd, nmblookup, tshark, setsid)");
    }
    let lab = Lab::new(LabSpec::one_subnet())?;
    let ha = lab.add_host("a", "198.51.100.10/24")?;
    let hb = lab.add_host("b", "198.51.100.20/24")?;
    let hc = lab.add_host("c", "198.51.100.30/24")?;
    // Samba's default log level (0): the lab's default of 10 writes every packet to a file.
    let nmbd = Nmbd::start(
        &ha,
        NmbdOptions {
            extra_global: vec!["log level = 0".into()],
            ..Default::default()
        },
    )?;
    let (nb_proc, nb_sock) = start_lab_nbdgm(bin, &lab, &hb, true, "nbdgm-raised")?;
    let sock = hc.in_netns(|| UdpSocket::bind((hc.addr(), 0)))??;
    let targets = [
        Target {
            label: "nmbd 4.17",
            addr: SocketAddrV4::new(ha.addr(), 137),
            name: "SAMBAA".into(),
        },
        Target {
            label: "nbdgm (limits raised)",
            addr: SocketAddrV4::new(hb.addr(), 137),
            name: "NBDGMB".into(),
        },
    ];
    for t in &targets {
        wait_answers(&sock, t, Duration::from_secs(30))?;
    }
    note_load("names");
    // results[target][query]
    let mut res: Vec<Vec<NameResults>> = (0..2)
        .map(|_| (0..2).map(|_| NameResults::default()).collect())
        .collect();
    let queries = [Query::Name, Query::Status];
    let mut id: u16 = 1;
    for r in 0..a.runs {
        note_load(&format!("names run {r}"));
        for (ti, t) in targets.iter().enumerate() {
            for (qi, q) in queries.iter().enumerate() {
                let pkt = t.packet(*q)?;
                let (rtts, lost) = latency(&sock, t.addr, &pkt, a.latency_count, id)?;
                id = id.wrapping_add(a.latency_count as u16);
                let (rate, answered, sent, timeouts) =
                    closed_loop(&sock, t.addr, &pkt, a.outstanding, a.rate_secs, id)?;
                id = id.wrapping_add(sent as u16);
                eprintln!(
                    "run {r}: {} {}: p50 {:.0} µs p99 {:.0} µs lost {lost}; rate {rate:.0}/s ({answered}/{sent}, {timeouts} timeouts), load {:.2}",
                    t.label,
                    q.label(),
                    percentile(&rtts, 50.0),
                    percentile(&rtts, 99.0),
                    procfs::loadavg1()
                );
                let e = &mut res[ti][qi];
                e.p50.push(percentile(&rtts, 50.0));
                e.p99.push(percentile(&rtts, 99.0));
                e.lat_lost.push(f64::from(lost));
                e.rate.push(rate);
                e.rate_timeouts.push(timeouts as f64);
            }
        }
    }
    let raised_stats = stats(&nb_sock)?;
    let nmbd_pid = nmbd.pid();
    let nmbd_cpu = procfs::cpu_seconds(nmbd_pid).unwrap_or(f64::NAN);
    let nb_cpu = procfs::cpu_seconds(nb_proc.pid()).unwrap_or(f64::NAN);
    let nmbd_mem = procfs::mem(nmbd_pid).unwrap_or_default();
    let nb_mem = procfs::mem(nb_proc.pid()).unwrap_or_default();
    nb_proc.stop()?;

    // nbdgm with its default limits (rx 200/s burst 400, replies 50/s burst 100 per source).
    let (nbd_proc, nbd_sock) = start_lab_nbdgm(bin, &lab, &hb, false, "nbdgm-default")?;
    let tdef = Target {
        label: "nbdgm (default limits)",
        addr: SocketAddrV4::new(hb.addr(), 137),
        name: "NBDGMB".into(),
    };
    let mut def = Vec::new();
    for q in queries {
        // Full buckets for each measurement (refill: burst / rate = 2 s).
        std::thread::sleep(Duration::from_secs(3));
        let before = stats(&nbd_sock)?;
        let pkt = tdef.packet(q)?;
        let (rate, answered, sent, timeouts) =
            closed_loop(&sock, tdef.addr, &pkt, a.outstanding, a.rate_secs, id)?;
        id = id.wrapping_add(sent as u16);
        let after = stats(&nbd_sock)?;
        let delta = |p: &str| iface_counter(&after, p) - iface_counter(&before, p);
        eprintln!(
            "default limits {}: {rate:.0}/s answered {answered} of {sent}",
            q.label()
        );
        def.push((
            q,
            rate,
            answered,
            sent,
            timeouts,
            delta("/runtime/rate_limited_rx"),
            delta("/runtime/rate_limited_reply"),
        ));
    }
    nbd_proc.stop()?;
    nmbd.stop()?;

    println!("\n### Name service: nbdgm vs nmbd on one veth bridge\n");
    println!(
        "Lab: host a 198.51.100.10 runs nmbd (SAMBAA, `log level = 0`), host b 198.51.100.20 \
         runs `nbdgm serve` (NBDGMB, rx_per_source and replies_per_source raised to \
         1e9/s, burst 1,000,000), host c 198.51.100.30 asks by unicast to port 137: NAME QUERY \
         for NAME<00> (RD set) and NODE STATUS for `*<00>`. Latency: {} sequential requests \
         (500 ms timeout); rate: closed loop, {} outstanding, {} s, a request unanswered \
         after 200 ms is replaced. {} runs, nmbd and nbdgm alternating; medians.\n",
        a.latency_count, a.outstanding, a.rate_secs, a.runs
    );
    println!("| daemon | request | p50 latency (µs) | p99 latency (µs) | unanswered (latency) | replies/s (closed loop) | runs (replies/s) | timeouts (rate) |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (ti, t) in targets.iter().enumerate() {
        for (qi, q) in queries.iter().enumerate() {
            let e = &res[ti][qi];
            println!(
                "| {} | {} | {:.0} | {:.0} | {} | **{}** | {} | {} |",
                t.label,
                q.label(),
                median(&e.p50),
                median(&e.p99),
                thousands(median(&e.lat_lost)),
                thousands(median(&e.rate)),
                runs(&e.rate),
                thousands(median(&e.rate_timeouts)),
            );
        }
    }
    for qi in 0..2 {
        let n = median(&res[0][qi].rate);
        let b = median(&res[1][qi].rate);
        println!(
            "\nnbdgm / nmbd reply rate, {}: **{:.2}×**",
            queries[qi].label(),
            b / n
        );
    }
    println!(
        "\nCPU time over the whole name benchmark: nmbd {nmbd_cpu:.2} s, nbdgm {nb_cpu:.2} s; \
         RSS at the end (VmRSS / VmHWM): nmbd {:.1} / {:.1} MiB, nbdgm {:.1} / {:.1} MiB. \
         nbdgm counters: queries_answered {}, node_status_answered {}, rate_limited_reply {}.",
        nmbd_mem.rss_kib as f64 / 1024.0,
        nmbd_mem.hwm_kib as f64 / 1024.0,
        nb_mem.rss_kib as f64 / 1024.0,
        nb_mem.hwm_kib as f64 / 1024.0,
        iface_counter(&raised_stats, "/node/queries_answered"),
        iface_counter(&raised_stats, "/node/node_status_answered"),
        iface_counter(&raised_stats, "/runtime/rate_limited_reply"),
    );
    println!(
        "\n#### nbdgm with its default limits (rx 200/s burst 400, replies 50/s burst 100, per source)\n"
    );
    println!(
        "Same closed loop ({} outstanding, {} s, 200 ms timeout), buckets full at the start. \
         Expected answers ≈ burst + rate × time = 100 + 50 × {} = {}.\n",
        a.outstanding,
        a.rate_secs,
        a.rate_secs,
        100.0 + 50.0 * a.rate_secs
    );
    println!("| request | requests sent | answered | replies/s | timeouts | runtime.rate_limited_rx | runtime.rate_limited_reply |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (q, rate, answered, sent, timeouts, lrx, lrep) in def {
        println!(
            "| {} | {} | {} | {:.1} | {} | {} | {} |",
            q.label(),
            thousands(sent as f64),
            thousands(answered as f64),
            rate,
            thousands(timeouts as f64),
            thousands(lrx as f64),
            thousands(lrep as f64)
        );
    }
    drop(lab);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. RSS under a reassembly flood
// ---------------------------------------------------------------------------------------

/// One reassembly-flood scenario.
struct RssRun {
    chunk: usize,
    total: u16,
    frame_len: usize,
    secs: f64,
    sent: u64,
    errors: u64,
    idle: procfs::Mem,
    after: procfs::Mem,
    peak_rss: u64,
    before: serde_json::Value,
    stats: serde_json::Value,
}

fn rss_scenario(bin: &Path, dir: &Path, a: &RssArgs, chunk: usize) -> anyhow::Result<RssRun> {
    let total = u16::try_from((chunk * 3).min(65_535))?;
    note_load(&format!("rss, chunk {chunk}"));
    let ports = free_ports(DAEMON_ADDR)?;
    let target = SocketAddrV4::new(DAEMON_ADDR, ports.1);
    let d = start_loopback_daemon(bin, dir, &format!("rss{chunk}"), ports, "")?;
    let pid = d.pid();
    std::thread::sleep(Duration::from_secs(2));
    let idle = procfs::mem(pid)?;
    let before = stats(&d.socket)?;

    // Sources 127.77.x.y, one socket each.
    let mut socks = Vec::new();
    for i in 0..a.sources {
        let ip = Ipv4Addr::new(127, 77, (i / 250) as u8, (i % 250 + 1) as u8);
        let s = UdpSocket::bind((ip, 0))?;
        s.connect(target)?;
        let SocketAddr::V4(local) = s.local_addr()? else {
            bail!("not IPv4");
        };
        let pkt = packets::first_fragment(local, WORKGROUP, 0, chunk, total)?;
        socks.push((s, pkt));
    }
    let frame_len = socks.first().map_or(0, |(_, p)| p.len());
    let t0 = Instant::now();
    let max = Duration::from_secs(30);
    let mut sent = 0u64;
    let mut errors = 0u64;
    let mut peak_rss = 0u64;
    'outer: for round in 0u64.. {
        for (s, pkt) in socks.iter_mut() {
            if sent + errors >= a.count {
                break 'outer;
            }
            pkt[2..4].copy_from_slice(&(round as u16).to_be_bytes());
            match s.send(pkt) {
                Ok(_) => sent += 1,
                Err(_) => errors += 1,
            }
        }
        if round % 16 == 0 {
            peak_rss = peak_rss.max(procfs::mem(pid)?.rss_kib);
        }
        if t0.elapsed() > max {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let after = procfs::mem(pid)?;
    peak_rss = peak_rss.max(after.rss_kib);
    let stats = stats(&d.socket)?;
    drop(socks);
    drop(d);
    Ok(RssRun {
        chunk,
        total,
        frame_len,
        secs,
        sent,
        errors,
        idle,
        after,
        peak_rss,
        before,
        stats,
    })
}

fn rss(bin: &Path, a: &RssArgs) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("nbdgm-bench-").tempdir()?;
    let mut runs_ = Vec::new();
    for &chunk in &a.chunks {
        runs_.push(rss_scenario(bin, dir.path(), a, chunk)?);
    }
    println!("\n### Peak RSS under a reassembly flood (loopback)\n");
    println!(
        "{} sources (127.77.x.y, one UDP socket each) send first fragments (F=1, M=1) that \
         never complete (DGM_LENGTH = 3 × the fragment's user data), round-robin with a new \
         DGM_ID each round, so every fragment opens a new (ip, port, id) set: {} fragments \
         per scenario, a fresh daemon for each. Rate limits raised (as in the throughput \
         bench); reassembly caps at their defaults: max_pending 256, max_bytes_per_source \
         16,384, max_total_bytes 1,048,576 (each set is charged its data + 256 bytes).\n",
        a.sources,
        thousands(a.count as f64),
    );
    print!("| measure |");
    for r in &runs_ {
        print!(" {}-byte fragments |", r.chunk);
    }
    println!();
    print!("| --- |");
    for _ in &runs_ {
        print!(" ---: |");
    }
    println!();
    type Row = (&'static str, Box<dyn Fn(&RssRun) -> String>);
    let delta = |r: &RssRun, p: &str| {
        iface_counter(&r.stats, p).saturating_sub(iface_counter(&r.before, p)) as f64
    };
    let rows: Vec<Row> = vec![
        (
            "UDP payload / DGM_LENGTH (bytes)",
            Box::new(|r: &RssRun| format!("{} / {}", r.frame_len, r.total)),
        ),
        (
            "fragments sent (send errors)",
            Box::new(|r: &RssRun| format!("{} ({})", thousands(r.sent as f64), r.errors)),
        ),
        (
            "flood duration (s)",
            Box::new(|r: &RssRun| format!("{:.2}", r.secs)),
        ),
        (
            "idle daemon VmRSS / VmHWM (KiB)",
            Box::new(|r: &RssRun| {
                format!(
                    "{} / {}",
                    thousands(r.idle.rss_kib as f64),
                    thousands(r.idle.hwm_kib as f64)
                )
            }),
        ),
        (
            "VmRSS / **VmHWM** after the flood (KiB)",
            Box::new(|r: &RssRun| {
                format!(
                    "{} / **{}**",
                    thousands(r.after.rss_kib as f64),
                    thousands(r.after.hwm_kib as f64)
                )
            }),
        ),
        (
            "highest VmRSS sampled during the flood (KiB)",
            Box::new(|r: &RssRun| thousands(r.peak_rss as f64)),
        ),
        (
            "VmHWM growth over idle (KiB)",
            Box::new(|r: &RssRun| thousands(r.after.hwm_kib as f64 - r.idle.hwm_kib as f64)),
        ),
        (
            "runtime.rx_datagram",
            Box::new(move |r: &RssRun| thousands(delta(r, "/runtime/rx_datagram"))),
        ),
        (
            "node.fragments_received",
            Box::new(move |r: &RssRun| thousands(delta(r, "/node/fragments_received"))),
        ),
        (
            "**node.reassembly_bytes_peak** (cap 1,048,576)",
            Box::new(|r: &RssRun| {
                format!(
                    "**{}**",
                    thousands(iface_counter(&r.stats, "/node/reassembly_bytes_peak") as f64)
                )
            }),
        ),
        (
            "node.reassembly_bytes at the end",
            Box::new(|r: &RssRun| {
                thousands(iface_counter(&r.stats, "/node/reassembly_bytes") as f64)
            }),
        ),
        (
            "node.reassembly_pending at the end (cap 256)",
            Box::new(|r: &RssRun| {
                thousands(iface_counter(&r.stats, "/node/reassembly_pending") as f64)
            }),
        ),
        (
            "**node.dropped.fragment_evicted**",
            Box::new(move |r: &RssRun| {
                format!(
                    "**{}**",
                    thousands(delta(r, "/node/dropped/fragment_evicted"))
                )
            }),
        ),
        (
            "node.dropped.fragment_oversize",
            Box::new(move |r: &RssRun| thousands(delta(r, "/node/dropped/fragment_oversize"))),
        ),
        (
            "node.datagrams_reassembled",
            Box::new(move |r: &RssRun| thousands(delta(r, "/node/datagrams_reassembled"))),
        ),
    ];
    for (label, f) in &rows {
        print!("| {label} |");
        for r in &runs_ {
            print!(" {} |", f(r));
        }
        println!();
    }
    Ok(())
}
