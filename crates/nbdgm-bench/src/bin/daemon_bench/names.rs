//! `daemon_bench names`: NAME QUERY (RFC 1002 §4.2.12) and NODE STATUS (§4.2.17) latency
//! and reply rate, nbdgm vs Samba nmbd on one veth bridge.

use crate::NamesArgs;
use anyhow::bail;
use nbdgm_bench::daemon::{iface_counter, stats, wait_names, Daemon, DaemonConfig};
use nbdgm_bench::mmsg::{BatchReceiver, BurstSender, GsoSender, MAX_GSO_SEGMENTS};
use nbdgm_bench::packets;
use nbdgm_bench::procfs;
use nbdgm_bench::report::{median, percentile, runs, thousands};
use nbdgm_bench::setup;
use nbdgm_lab::Lab;
use std::net::{SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    /// The daemon's process, for its CPU time.
    pid: u32,
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

/// Datagrams per `sendmmsg` burst (per `send` with `--gso`: at most
/// [`MAX_GSO_SEGMENTS`]) and per `recvmmsg` read of the closed loop.
const BATCH: usize = 64;

/// Bound of the closed loop's window (transaction ids are 16 bits).
const MAX_OUTSTANDING: usize = 16_384;

/// One closed-loop run: answers/s, answered, sent, timed out, and the CPU seconds the
/// daemon (from `/proc/PID/stat`) and this generator process spent during it.
#[derive(Debug, Clone, Copy, Default)]
struct Rate {
    per_sec: f64,
    answered: u64,
    sent: u64,
    timed_out: u64,
    daemon_cpu: f64,
    gen_cpu: f64,
}

impl Rate {
    /// Daemon CPU per answer in µs.
    fn daemon_us(&self) -> f64 {
        self.daemon_cpu * 1e6 / self.answered.max(1) as f64
    }

    /// Generator CPU per answer in µs.
    fn gen_us(&self) -> f64 {
        self.gen_cpu * 1e6 / self.answered.max(1) as f64
    }
}

/// The ids in flight of the closed loop: send time per NAME_TRN_ID, the ids in send order
/// (front = oldest), and how many are in flight.
struct Window {
    in_flight: Vec<Option<Instant>>,
    order: std::collections::VecDeque<u16>,
    pending: usize,
    timed_out: u64,
}

impl Window {
    fn new() -> Self {
        Window {
            in_flight: vec![None; 65_536],
            order: std::collections::VecDeque::new(),
            pending: 0,
            timed_out: 0,
        }
    }

    fn sent(&mut self, id: u16, at: Instant) {
        // An id still in flight after 65,536 newer ones counts as timed out.
        if self.in_flight[id as usize].replace(at).is_some() {
            self.timed_out += 1;
        } else {
            self.pending += 1;
        }
        self.order.push_back(id);
    }

    fn answered(&mut self, id: u16) -> bool {
        let hit = self.in_flight[id as usize].take().is_some();
        if hit {
            self.pending -= 1;
        }
        hit
    }

    /// Forget the requests older than `timeout` (ids are sent in order, so the front is
    /// oldest); the order queue is trimmed to the oldest request still in flight.
    fn expire(&mut self, now: Instant, timeout: Duration) {
        while let Some(&id) = self.order.front() {
            match self.in_flight[id as usize] {
                None => {}
                Some(t) if now.duration_since(t) >= timeout => {
                    self.in_flight[id as usize] = None;
                    self.pending -= 1;
                    self.timed_out += 1;
                }
                Some(_) => break,
            }
            self.order.pop_front();
        }
    }
}

/// How the closed loop sends its bursts.
enum Burst {
    /// One `sendmmsg` per burst; the burst's datagrams, each a copy of the request.
    Mmsg(BurstSender, Vec<Vec<u8>>),
    /// One `send` per burst, cut by the kernel (`UDP_SEGMENT`); the burst's datagrams
    /// back to back, each `len` bytes.
    Gso(GsoSender, Vec<u8>, usize),
}

impl Burst {
    fn new(sock: &UdpSocket, template: &[u8], gso: bool) -> anyhow::Result<Burst> {
        Ok(if gso {
            let g = GsoSender::new(sock, template.len())?;
            Burst::Gso(
                g,
                template.repeat(MAX_GSO_SEGMENTS.min(BATCH)),
                template.len(),
            )
        } else {
            Burst::Mmsg(
                BurstSender::connected(BATCH),
                vec![template.to_vec(); BATCH],
            )
        })
    }

    /// Largest burst.
    fn cap(&self) -> usize {
        match self {
            Burst::Mmsg(tx, _) => tx.capacity(),
            Burst::Gso(_, buf, len) => buf.len() / len,
        }
    }

    /// Send `n` (≤ [`Burst::cap`]) requests with ids `first..first + n`; how many the
    /// kernel took.
    fn send(&mut self, sock: &UdpSocket, n: usize, first: u16) -> usize {
        match self {
            Burst::Mmsg(tx, pkts) => {
                for (k, b) in pkts.iter_mut().take(n).enumerate() {
                    packets::set_trn_id(b, first.wrapping_add(k as u16));
                }
                tx.send(sock, &pkts[..n]).unwrap_or(0)
            }
            Burst::Gso(tx, buf, len) => {
                for (k, b) in buf.chunks_exact_mut(*len).take(n).enumerate() {
                    packets::set_trn_id(b, first.wrapping_add(k as u16));
                }
                tx.send(sock, &buf[..n * *len]).unwrap_or(0)
            }
        }
    }
}

/// Closed loop with `outstanding` requests in flight for `secs` on `sock` (connected to
/// the daemon), batched: the window is refilled with bursts of up to [`BATCH`]
/// (`sendmmsg`, or one `UDP_SEGMENT` send with `gso`) and replies are read with
/// `recvmmsg` (up to [`BATCH`] per call). A reply counts when it is a positive response
/// whose NAME_TRN_ID is one of ours in flight. A request unanswered after 200 ms is
/// replaced by a new one.
#[allow(clippy::too_many_arguments)]
fn closed_loop(
    sock: &UdpSocket,
    template: &[u8],
    outstanding: usize,
    secs: f64,
    first_id: u16,
    daemon_pid: u32,
    gso: bool,
) -> anyhow::Result<Rate> {
    let outstanding = outstanding.clamp(1, MAX_OUTSTANDING);
    let mut tx = Burst::new(sock, template, gso)?;
    let mut rx = BatchReceiver::new(BATCH, 2048);
    let timeout = Duration::from_millis(200);
    let mut w = Window::new();
    let mut next_id = first_id;
    let (mut answered, mut sent) = (0u64, 0u64);
    sock.set_read_timeout(Some(Duration::from_millis(5)))?;
    let cpu = || {
        (
            procfs::cpu_seconds(daemon_pid).unwrap_or(f64::NAN),
            procfs::cpu_seconds(std::process::id()).unwrap_or(f64::NAN),
        )
    };
    let (d0, g0) = cpu();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(secs);
    let mut now = t0;
    while now < end {
        // Refill the window: at most outstanding / cap + 1 bursts.
        while w.pending < outstanding {
            let n = (outstanding - w.pending).min(tx.cap());
            let took = tx.send(sock, n, next_id);
            for _ in 0..took {
                w.sent(next_id, now);
                next_id = next_id.wrapping_add(1);
            }
            sent += took as u64;
            if took < n {
                break;
            }
        }
        if let Ok(n) = rx.recv(sock) {
            for i in 0..n {
                if let Some(id) = packets::positive_response_id(rx.get(i)) {
                    if w.answered(id) {
                        answered += 1;
                    }
                }
            }
        }
        now = Instant::now();
        w.expire(now, timeout);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let (d1, g1) = cpu();
    if gso {
        // Later single requests on this socket are no longer cut (0: off).
        let _ = GsoSender::new(sock, 0);
    }
    Ok(Rate {
        per_sec: answered as f64 / elapsed,
        answered,
        sent,
        timed_out: w.timed_out,
        daemon_cpu: d1 - d0,
        gen_cpu: g1 - g0,
    })
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
) -> anyhow::Result<(Daemon, PathBuf)> {
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
    let proc = cfg.start(bin, lab.dir(), tag, Some(b))?;
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
    /// Daemon and generator CPU µs per answer in the rate phase.
    daemon_us: Vec<f64>,
    gen_us: Vec<f64>,
}

pub(crate) fn names(bin: &Path, a: &NamesArgs) -> anyhow::Result<()> {
    let (lab, ha, hb, hc) = setup::lab_abc("daemon_bench names")?;
    // Samba's default log level (0).
    let nmbd = setup::quiet_nmbd(&ha, 0, &[])?;
    let (nb_proc, nb_sock) = start_lab_nbdgm(bin, &lab, &hb, true, "nbdgm-raised")?;
    let targets = [
        Target {
            label: "nmbd 4.17",
            addr: SocketAddrV4::new(ha.addr(), 137),
            name: "SAMBAA".into(),
            pid: nmbd.pid(),
        },
        Target {
            label: "nbdgm (limits raised)",
            addr: SocketAddrV4::new(hb.addr(), 137),
            name: "NBDGMB".into(),
            pid: nb_proc.pid(),
        },
    ];
    // One socket per target, connected to it: the kernel keeps the route (no lookup per
    // datagram) and hands the socket only that daemon's datagrams.
    let connect = |t: &Target| -> anyhow::Result<UdpSocket> {
        let s = hc.in_netns(|| UdpSocket::bind((hc.addr(), 0)))??;
        s.connect(t.addr)?;
        Ok(s)
    };
    let socks = [connect(&targets[0])?, connect(&targets[1])?];
    for (t, sock) in targets.iter().zip(&socks) {
        wait_answers(sock, t, Duration::from_secs(30))?;
    }
    setup::note_load("names", a.quiet_wait);
    let queries = [Query::Name, Query::Status];
    let mut id: u16 = 1;
    let res = measure(&socks, &targets, a, &mut id)?;
    let usage = Usage {
        raised_stats: stats(&nb_sock)?,
        nmbd_cpu: procfs::cpu_seconds(nmbd.pid()).unwrap_or(f64::NAN),
        nb_cpu: procfs::cpu_seconds(nb_proc.pid()).unwrap_or(f64::NAN),
        nmbd_mem: procfs::mem(nmbd.pid()).unwrap_or_default(),
        nb_mem: procfs::mem(nb_proc.pid()).unwrap_or_default(),
    };
    nb_proc.stop();
    // The default-limits daemon has the same address as the raised one.
    let def = default_limits(bin, &lab, &hb, &socks[1], a, &mut id)?;
    nmbd.stop()?;
    print_names(a, &targets, &queries, &res, &usage);
    print_default_limits(a, &def);
    drop(lab);
    Ok(())
}

/// The daemons' CPU time and memory over the measurements, and nbdgm's counters.
struct Usage {
    raised_stats: serde_json::Value,
    nmbd_cpu: f64,
    nb_cpu: f64,
    nmbd_mem: procfs::Mem,
    nb_mem: procfs::Mem,
}

/// One closed-loop run of nbdgm with its default limits: the request, replies/s, answered,
/// sent, timeouts, and the growth of runtime.rate_limited_rx and rate_limited_reply.
type DefaultRow = (Query, f64, u64, u64, u64, u64, u64);

/// Latency and closed-loop rate of every target and query, `a.runs` times alternating;
/// `results[target][query]`.
fn measure(
    socks: &[UdpSocket; 2],
    targets: &[Target; 2],
    a: &NamesArgs,
    id: &mut u16,
) -> anyhow::Result<Vec<Vec<NameResults>>> {
    let mut res: Vec<Vec<NameResults>> = (0..2)
        .map(|_| (0..2).map(|_| NameResults::default()).collect())
        .collect();
    let queries = [Query::Name, Query::Status];
    for r in 0..a.runs {
        setup::note_load(&format!("names run {r}"), a.quiet_wait);
        for (ti, (t, sock)) in targets.iter().zip(socks).enumerate() {
            for (qi, q) in queries.iter().enumerate() {
                let pkt = t.packet(*q)?;
                let (rtts, lost) = latency(sock, t.addr, &pkt, a.latency_count, *id)?;
                *id = id.wrapping_add(a.latency_count as u16);
                let rt = closed_loop(sock, &pkt, a.outstanding, a.rate_secs, *id, t.pid, a.gso)?;
                *id = id.wrapping_add(rt.sent as u16);
                eprintln!(
                    "run {r}: {} {}: p50 {:.0} µs p99 {:.0} µs lost {lost}; rate {:.0}/s ({}/{}, {} timeouts), \
                     daemon {:.2} µs/answer, generator {:.2} µs/answer, load {:.2}",
                    t.label,
                    q.label(),
                    percentile(&rtts, 50.0),
                    percentile(&rtts, 99.0),
                    rt.per_sec,
                    rt.answered,
                    rt.sent,
                    rt.timed_out,
                    rt.daemon_us(),
                    rt.gen_us(),
                    procfs::loadavg1()
                );
                let e = &mut res[ti][qi];
                e.p50.push(percentile(&rtts, 50.0));
                e.p99.push(percentile(&rtts, 99.0));
                e.lat_lost.push(f64::from(lost));
                e.rate.push(rt.per_sec);
                e.rate_timeouts.push(rt.timed_out as f64);
                e.daemon_us.push(rt.daemon_us());
                e.gen_us.push(rt.gen_us());
            }
        }
    }
    Ok(res)
}

/// nbdgm with its default limits (rx 200/s burst 400, replies 50/s burst 100 per source):
/// one closed-loop run per query.
fn default_limits(
    bin: &Path,
    lab: &Lab,
    hb: &nbdgm_lab::Host,
    sock: &UdpSocket,
    a: &NamesArgs,
    id: &mut u16,
) -> anyhow::Result<Vec<DefaultRow>> {
    let queries = [Query::Name, Query::Status];
    let (nbd_proc, nbd_sock) = start_lab_nbdgm(bin, lab, hb, false, "nbdgm-default")?;
    let tdef = Target {
        label: "nbdgm (default limits)",
        addr: SocketAddrV4::new(hb.addr(), 137),
        name: "NBDGMB".into(),
        pid: nbd_proc.pid(),
    };
    let mut def = Vec::new();
    for q in queries {
        // Full buckets for each measurement (refill: burst / rate = 2 s).
        std::thread::sleep(Duration::from_secs(3));
        let before = stats(&nbd_sock)?;
        let pkt = tdef.packet(q)?;
        let rt = closed_loop(sock, &pkt, a.outstanding, a.rate_secs, *id, tdef.pid, a.gso)?;
        let (rate, answered, sent, timeouts) = (rt.per_sec, rt.answered, rt.sent, rt.timed_out);
        *id = id.wrapping_add(sent as u16);
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
    nbd_proc.stop();
    Ok(def)
}

/// The name-service table of docs/BENCHMARKS.md.
fn print_names(
    a: &NamesArgs,
    targets: &[Target; 2],
    queries: &[Query; 2],
    res: &[Vec<NameResults>],
    u: &Usage,
) {
    let Usage {
        raised_stats,
        nmbd_cpu,
        nb_cpu,
        nmbd_mem,
        nb_mem,
    } = u;
    println!("\n### Name service: nbdgm vs nmbd on one veth bridge\n");
    println!(
        "Lab: host a 198.51.100.10 runs nmbd (SAMBAA, `log level = 0`), host b 198.51.100.20 \
         runs `nbdgm serve` (NBDGMB, rx_per_source and replies_per_source raised to \
         1e9/s, burst 1,000,000), host c 198.51.100.30 asks by unicast to port 137: NAME QUERY \
         for NAME<00> (RD set) and NODE STATUS for `*<00>`. Latency: {} sequential requests \
         (500 ms timeout); rate: closed loop, {} outstanding, {} s, batched ({} bursts \
         and recvmmsg reads of up to {BATCH}) on a socket connected to the daemon, a request \
         unanswered after 200 ms is replaced; a reply counts when it is a positive response \
         to one of our NAME_TRN_IDs in flight. CPU per answer: the daemon's utime + stime \
         from /proc/PID/stat over the rate phase, divided by the answers counted. {} runs, \
         nmbd and nbdgm alternating; medians.\n",
        a.latency_count,
        a.outstanding,
        a.rate_secs,
        if a.gso {
            "UDP_SEGMENT send"
        } else {
            "sendmmsg"
        },
        a.runs
    );
    println!("| daemon | request | p50 latency (µs) | p99 latency (µs) | unanswered (latency) | replies/s (closed loop) | runs (replies/s) | timeouts (rate) | daemon CPU µs / answer | generator CPU µs / answer |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (ti, t) in targets.iter().enumerate() {
        for (qi, q) in queries.iter().enumerate() {
            let e = &res[ti][qi];
            println!(
                "| {} | {} | {:.0} | {:.0} | {} | **{}** | {} | {} | {:.2} | {:.2} |",
                t.label,
                q.label(),
                median(&e.p50),
                median(&e.p99),
                thousands(median(&e.lat_lost)),
                thousands(median(&e.rate)),
                runs(&e.rate),
                thousands(median(&e.rate_timeouts)),
                median(&e.daemon_us),
                median(&e.gen_us),
            );
        }
    }
    for qi in 0..2 {
        let n = median(&res[0][qi].rate);
        let b = median(&res[1][qi].rate);
        let cn = median(&res[0][qi].daemon_us);
        let cb = median(&res[1][qi].daemon_us);
        println!(
            "\nnbdgm / nmbd reply rate, {}: **{:.2}×**; daemon CPU per answer nmbd / nbdgm: {:.2}×",
            queries[qi].label(),
            b / n,
            cn / cb
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
        iface_counter(raised_stats, "/node/queries_answered"),
        iface_counter(raised_stats, "/node/node_status_answered"),
        iface_counter(raised_stats, "/runtime/rate_limited_reply"),
    );
}

/// The table of nbdgm with its default limits.
fn print_default_limits(a: &NamesArgs, def: &[DefaultRow]) {
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
    for &(q, rate, answered, sent, timeouts, lrx, lrep) in def {
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
}
