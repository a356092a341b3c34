//! `daemon_bench rss`: the daemon's memory under a flood of first fragments that never
//! complete (RFC 1001 §17.1.2 reassembly), against the configured reassembly caps.

use crate::throughput::start_loopback_daemon;
use crate::{note_load, RssArgs, DAEMON_ADDR, WORKGROUP};
use anyhow::bail;
use nbdgm_bench::daemon::{free_ports, iface_counter, stats};
use nbdgm_bench::packets;
use nbdgm_bench::procfs;
use nbdgm_bench::report::thousands;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

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
    let before = stats(d.socket())?;

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
            packets::set_dgm_id(pkt, round as u16);
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
    let stats = stats(d.socket())?;
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

pub(crate) fn rss(bin: &Path, a: &RssArgs) -> anyhow::Result<()> {
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
    for (label, f) in &rows() {
        print!("| {label} |");
        for r in &runs_ {
            print!(" {} |", f(r));
        }
        println!();
    }
    Ok(())
}

/// A row of the RSS table: its label and how a scenario fills its cell.
type Row = (&'static str, Box<dyn Fn(&RssRun) -> String>);

/// Growth of a counter (JSON pointer below `/interfaces/0`) over the flood.
fn delta(r: &RssRun, p: &str) -> f64 {
    iface_counter(&r.stats, p).saturating_sub(iface_counter(&r.before, p)) as f64
}

/// The rows of the RSS table.
fn rows() -> Vec<Row> {
    vec![
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
            Box::new(|r: &RssRun| rss_hwm(&r.idle, "")),
        ),
        (
            "VmRSS / **VmHWM** after the flood (KiB)",
            Box::new(|r: &RssRun| rss_hwm(&r.after, "**")),
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
            Box::new(|r: &RssRun| thousands(delta(r, "/runtime/rx_datagram"))),
        ),
        (
            "node.fragments_received",
            Box::new(|r: &RssRun| thousands(delta(r, "/node/fragments_received"))),
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
            Box::new(|r: &RssRun| {
                format!(
                    "**{}**",
                    thousands(delta(r, "/node/dropped/fragment_evicted"))
                )
            }),
        ),
        (
            "node.dropped.fragment_oversize",
            Box::new(|r: &RssRun| thousands(delta(r, "/node/dropped/fragment_oversize"))),
        ),
        (
            "node.datagrams_reassembled",
            Box::new(|r: &RssRun| thousands(delta(r, "/node/datagrams_reassembled"))),
        ),
    ]
}

/// "VmRSS / VmHWM" of `m` in KiB, the VmHWM between `mark`s.
fn rss_hwm(m: &procfs::Mem, mark: &str) -> String {
    format!(
        "{} / {mark}{}{mark}",
        thousands(m.rss_kib as f64),
        thousands(m.hwm_kib as f64)
    )
}
