//! `nbdd_bench sockets`: `nbdgm serve` (roles nbns + nbdd) relaying DIRECT_GROUP datagrams
//! to member sockets on loopback, against a tiny relay loop in this process.

use crate::{
    group, member_addr, note_load, sender_addr, SocketArgs, LOOP_ADDR, MAX_MEMBERS, NBDD_ADDR,
    RECV_BUFFER,
};
use anyhow::{bail, Context};
use mio::net::UdpSocket as MioUdp;
use mio::{Events, Interest, Poll, Token};
use nbdgm_bench::daemon::{free_ports, iface_counter, start_daemon, stats, Daemon};
use nbdgm_bench::nbdd::{group_datagram, nbdd_toml, read_stamp, register_members, stamp};
use nbdgm_bench::procfs;
use nbdgm_bench::report::{median, thousands};
use nbdgm_wire::Name;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Member sockets on 127.0.9.x:PORT, all polled by one receiver thread.
pub(crate) struct Members {
    pub(crate) socks: Vec<MioUdp>,
    pub(crate) poll: Poll,
    pub(crate) port: u16,
    pub(crate) n: usize,
}

pub(crate) fn udp(addr: SocketAddrV4, rcvbuf: usize) -> anyhow::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_recv_buffer_size(rcvbuf)?;
    s.bind(&SocketAddr::V4(addr).into())
        .with_context(|| format!("bind {addr}"))?;
    Ok(s.into())
}

impl Members {
    /// `n` sockets; the port is chosen later by [`Members::rebind`].
    pub(crate) fn bind(n: usize) -> anyhow::Result<Self> {
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

    pub(crate) fn count(&self) -> usize {
        self.n
    }

    /// Bind the member sockets on `port` (the daemon's datagram port: the NBDD relays to
    /// members on its own port), unless already there.
    pub(crate) fn rebind(&mut self, port: u16) -> anyhow::Result<()> {
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

    pub(crate) fn addrs(&self, n: usize) -> Vec<SocketAddrV4> {
        (0..n)
            .map(|i| SocketAddrV4::new(member_addr(i), self.port))
            .collect()
    }
}

/// What the members received in one run.
#[derive(Debug, Default, Clone)]
pub(crate) struct Rx {
    pub(crate) copies: u64,
    pub(crate) bytes: u64,
    /// Copies of other runs (late), ignored.
    pub(crate) stale: u64,
    /// Latencies in ns (send stamp to receive), at most LAT_CAP.
    pub(crate) lat: Vec<u64>,
    /// Copies per 100-ms bin from the sender's start.
    pub(crate) bins: Vec<u64>,
    pub(crate) per_member_min: u64,
    pub(crate) per_member_max: u64,
}

pub(crate) const LAT_CAP: usize = 4_000_000;
pub(crate) const BIN: Duration = Duration::from_millis(100);

/// Receive on the first `n` member sockets until `stop` (checked every 50 ms), keeping
/// copies of `run` only.
#[allow(clippy::too_many_arguments)] // a benchmark's measuring loop: every knob is a parameter
pub(crate) fn receive(
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
pub(crate) struct Tx {
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) errors: u64,
    pub(crate) secs: f64,
}

/// Send `group` datagrams from `from_ip` to `to`: `rate` packets/s (0: as fast as
/// possible) for `secs`, at most `max` packets; paced in bursts every millisecond.
/// Sequence numbers carry `run` in their top bits.
#[allow(clippy::too_many_arguments)]
pub(crate) fn send(
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
pub(crate) fn relay_loop(
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
pub(crate) struct RunResult {
    pub(crate) rx: Rx,
    /// Copies/s over the whole run (received / sender's seconds).
    pub(crate) cps: f64,
    /// Copies/s over the second half of the sender's time (after any burst allowance).
    pub(crate) steady: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) loss: f64,
    /// Daemon CPU seconds per copy received (nbdgm only), µs.
    pub(crate) cpu_us_per_copy: f64,
    pub(crate) rate_limited: u64,
    pub(crate) tx_errors: u64,
    pub(crate) kernel_drops: u64,
}

pub(crate) fn summarize(sent: Tx, mut rx: Rx, n: usize) -> RunResult {
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
pub(crate) fn member_drops(m: &Members, n: usize) -> u64 {
    (0..n)
        .filter_map(|i| procfs::udp_drops(member_addr(i), m.port))
        .sum()
}

/// Paced DIRECT_GROUP datagrams from the sender to `to` (the NBDD or the relay loop) for
/// `a.secs`, while the `n` members receive; the receivers stop 500 ms after the sender.
#[allow(clippy::too_many_arguments)]
fn send_and_receive(
    m: &mut Members,
    n: usize,
    g: &Name,
    pps: u64,
    a: &SocketArgs,
    run: u64,
    base: Instant,
    to: SocketAddrV4,
) -> anyhow::Result<(Tx, Rx)> {
    let (_, off) = group_datagram(SocketAddrV4::new(sender_addr(1), 1), g, a.user_len)?;
    let stop = AtomicBool::new(false);
    let hard = Duration::from_secs_f64(a.secs * 3.0 + 10.0);
    let start_ns = base.elapsed().as_nanos() as u64;
    std::thread::scope(|s| -> anyhow::Result<(Tx, Rx)> {
        let h = s.spawn(|| receive(m, n, run, off, base, start_ns, &stop, hard));
        let sent = send(
            sender_addr(1),
            to,
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
    })
}

/// One run through the daemon.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_nbdgm(
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
    let to = SocketAddrV4::new(NBDD_ADDR, dgm_port);
    let (sent, rx) = send_and_receive(m, n, g, pps, a, run, base, to)?;
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
pub(crate) fn run_loop(
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
    let lstop = Arc::new(AtomicBool::new(false));
    let lstop2 = lstop.clone();
    let relay = std::thread::spawn(move || relay_loop(lsock, members, lstop2));
    let res = send_and_receive(m, n, g, pps, a, run, base, laddr);
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

pub(crate) fn nbdd_daemon(
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

pub(crate) fn sockets(bin: &Path, a: &SocketArgs, m: &mut Members) -> anyhow::Result<()> {
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
            print_rows(*n, pps, &rn, &rl);
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

/// The table rows of one (members, offered rate) cell: medians of nbdgm's runs and of the
/// relay loop's.
fn print_rows(n: usize, pps: u64, rn: &[RunResult], rl: &[RunResult]) {
    for (who, v) in [("nbdgm", rn), ("relay loop", rl)] {
        let md = |f: fn(&RunResult) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
        let cpu = md(|r| r.cpu_us_per_copy);
        println!(
            "| {n} | {} | {who} | {} | {} | {:.2} % | {:.0} | {:.0} | {} | {} | {} |",
            thousands((pps * n as u64) as f64),
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
