//! `daemon_bench throughput`: receive-and-deliver throughput on loopback, the daemon
//! against a plain `recv_from` loop ("the limit"), and a paced loss run.

use crate::{
    note_load, SubscriberKind, ThroughputArgs, DAEMON_ADDR, GEN_ADDR, RECV_BUFFER, WORKGROUP,
};
use anyhow::{bail, Context};
use nbdgm_bench::daemon::{
    api_counter, free_ports, iface_counter, stats, wait_names, Daemon, DaemonConfig,
};
use nbdgm_bench::packets;
use nbdgm_bench::procfs;
use nbdgm_bench::report::{join_with, median, median_row, median_row_bold, thousands};
use nbdgm_client::proto::{Event, Subscription};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

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
    /// CPU time of the receiving thread (the limit's loop; 0 for the subscriber).
    cpu_s: f64,
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
            packets::set_dgm_id(b, id);
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
    let cpu0 = thread_cpu_seconds();
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
        cpu_s: thread_cpu_seconds() - cpu0,
    }
}

/// CPU time (user + system) of the calling thread, from `/proc/thread-self/stat` (clock
/// ticks: 10 ms resolution, 0.5 % of the loop's time in a run of 10^6 datagrams); 0 when
/// unreadable.
fn thread_cpu_seconds() -> f64 {
    let Ok(text) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0.0;
    };
    // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / ::procfs::ticks_per_second() as f64
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
                if let Some(hello) = hello_line() {
                    // Taken before the subscribe line is read; its answer is checked below.
                    s.write_all(hello.as_bytes())?;
                }
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
                        if v.get("id").and_then(serde_json::Value::as_u64) == Some(2)
                            && v["result"]["encoding"] != "base64"
                        {
                            bail!("hello with encoding base64 failed: {v}");
                        }
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
                if hello_line().is_some() {
                    c.hello_encoding(nbdgm_client::proto::EventEncoding::Base64)?;
                }
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
            cpu_s: 0.0,
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

pub(crate) fn start_loopback_daemon(
    bin: &Path,
    dir: &Path,
    tag: &str,
    ports: (u16, u16),
    extra: &str,
) -> anyhow::Result<Daemon> {
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
    let d = cfg.start(bin, dir, tag, None)?;
    wait_names(
        d.socket(),
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
    let sub = Subscriber::connect(d.socket(), kind)?;
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
    let stats = stats(d.socket())?;
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

/// The subscriber's event encoding (`--encoding`), set once by [`throughput`].
static ENCODING: std::sync::OnceLock<crate::Encoding> = std::sync::OnceLock::new();

/// The `hello` line asking for base64 events (id 2), when `--encoding base64`.
fn hello_line() -> Option<&'static str> {
    (ENCODING.get() == Some(&crate::Encoding::Base64))
        .then_some("{\"id\":2,\"op\":\"hello\",\"encoding\":\"base64\"}\n")
}

pub(crate) fn throughput(bin: &Path, a: &ThroughputArgs) -> anyhow::Result<()> {
    let _ = ENCODING.set(a.encoding);
    println!("Subscriber event encoding: {:?}.\n", a.encoding);
    let dir = tempfile::Builder::new().prefix("nbdgm-bench-").tempdir()?;
    let flood = flood_runs(bin, dir.path(), a)?;
    print_flood(a, &flood)?;
    // Paced run at half the limit's median rate.
    let lim_rx: Vec<f64> = flood.limit.iter().map(|l| l.1.rate()).collect();
    paced(bin, dir.path(), a, median(&lim_rx) / 2.0)
}

/// The flood runs: the limit's (sent, received, kernel drops) and the daemon's, and how
/// busy the machine was before each.
struct Flood {
    limit: Vec<(Sent, Received, u64)>,
    daemon: Vec<DaemonRun>,
    busy: Vec<f64>,
}

fn flood_runs(bin: &Path, dir: &Path, a: &ThroughputArgs) -> anyhow::Result<Flood> {
    let max = Duration::from_secs_f64(a.max_secs);
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
            dir,
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
    Ok(Flood {
        limit,
        daemon,
        busy,
    })
}

/// The flood table of docs/BENCHMARKS.md and the daemon's counters after the last run.
fn print_flood(a: &ThroughputArgs, f: &Flood) -> anyhow::Result<()> {
    let (limit, daemon, busy) = (&f.limit, &f.daemon, &f.busy);
    let dg_len = packets::host_announcement(SocketAddrV4::new(GEN_ADDR, 1), WORKGROUP, 0)?.len();
    let ms_len = packets::host_announcement_mailslot_len()?;
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
        "{}",
        median_row("generator send rate, limit runs (datagrams/s)", &lim_gen)
    );
    println!(
        "{}",
        median_row_bold("**limit**: plain `recv_from` loop (datagrams/s)", &lim_rx)
    );
    println!(
        "{}",
        median_row("limit: kernel drops (receive buffer full)", &lim_drop)
    );
    println!(
        "{}",
        median_row("generator send rate, nbdgm runs (datagrams/s)", &d_gen)
    );
    println!(
        "{}",
        median_row_bold(
            "**nbdgm delivered** to the API subscriber (datagrams/s)",
            &d_rx
        )
    );
    let d_proc: Vec<f64> = daemon
        .iter()
        .map(|d| iface_counter(&d.stats, "/runtime/rx_datagram") as f64 / d.sent.secs)
        .collect();
    println!(
        "{}",
        median_row(
            "(diagnosis) nbdgm received and parsed: runtime.rx_datagram ÷ generator time (datagrams/s)",
            &d_proc
        )
    );
    let d_qfull: Vec<f64> = daemon
        .iter()
        .map(|d| api_counter(&d.stats, "events_dropped_queue_full") as f64)
        .collect();
    println!(
        "{}",
        median_row(
            "(diagnosis) events dropped at the subscriber's queue (api.events_dropped_queue_full)",
            &d_qfull
        )
    );
    println!(
        "{}",
        median_row("nbdgm: kernel drops on its socket", &d_drop)
    );
    println!(
        "| **ratio** nbdgm / limit (goal ≥ 90 % in every run) | **{:.1} %** | {} |",
        median(&ratios),
        join_with(&ratios, " / ", |r| format!("{r:.1} %"))
    );
    println!(
        "| nbdgm CPU per received datagram (µs, all daemon threads) | {:.2} | {} |",
        median(&us_per_dg),
        join_with(&us_per_dg, " / ", |r| format!("{r:.2}"))
    );
    print_loop_cpu(limit, &us_per_dg);
    let hwm_mib: Vec<f64> = daemon.iter().map(|d| d.hwm_kib as f64 / 1024.0).collect();
    println!(
        "| nbdgm peak RSS (VmHWM, MiB) | {:.1} | {} |",
        median(&hwm_mib),
        join_with(&hwm_mib, " / ", |m| format!("{m:.1}"))
    );
    println!(
        "\nMachine busy (not counting niced tasks) in the second before each measurement: {}.",
        join_with(busy, ", ", |b| format!("{:.0} %", 100.0 * b))
    );
    if let Some(d) = daemon.last() {
        print_daemon_counters("last flood run", d);
    }
    Ok(())
}

/// The loop's own CPU per datagram and nbdgm's per datagram over it (issue 16: ≤ 2).
fn print_loop_cpu(limit: &[(Sent, Received, u64)], us_per_dg: &[f64]) {
    let lim_us: Vec<f64> = limit
        .iter()
        .map(|l| 1e6 * l.1.cpu_s / l.1.count.max(1) as f64)
        .collect();
    println!(
        "| limit: CPU per received datagram (µs, the loop's thread) | {:.2} | {} |",
        median(&lim_us),
        join_with(&lim_us, " / ", |r| format!("{r:.2}"))
    );
    let cpu_ratio: Vec<f64> = us_per_dg.iter().zip(&lim_us).map(|(d, l)| d / l).collect();
    println!(
        "| **CPU ratio** nbdgm / limit per datagram (goal ≤ 2) | **{:.2}** | {} |",
        median(&cpu_ratio),
        join_with(&cpu_ratio, " / ", |r| format!("{r:.2}"))
    );
}

/// The paced run at `rate` datagrams/s (half the limit's median): loss of the limit and of
/// the daemon.
fn paced(bin: &Path, dir: &Path, a: &ThroughputArgs, rate: f64) -> anyhow::Result<()> {
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
    let pd = run_daemon(bin, dir, "paced", count, pmax, Some(rate), a.subscriber)?;
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
