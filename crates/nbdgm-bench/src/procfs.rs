//! Reading `/proc`: a process's memory (VmRSS, VmHWM) and CPU time, a UDP socket's kernel
//! drop counter, and the load average.

use std::net::Ipv4Addr;

/// Memory of a process from `/proc/PID/status`, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// VmRSS and VmHWM of `pid`.
pub fn mem(pid: u32) -> anyhow::Result<Mem> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |key: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Mem {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    })
}

/// User + system CPU time of `pid` (all its threads) in seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = s
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat: no ')'"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let ticks = |i: usize| -> u64 { f.get(i - 3).and_then(|v| v.parse().ok()).unwrap_or(0) };
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    Ok((ticks(14) + ticks(15)) as f64 / hz)
}

/// The `drops` column of the UDP socket bound to `addr:port` in `/proc/net/udp` of the
/// calling thread's network namespace (packets the kernel discarded because the socket's
/// receive buffer was full).
pub fn udp_drops(addr: Ipv4Addr, port: u16) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/net/udp").ok()?;
    // The kernel prints the address as the raw (network-order) u32 with %08X.
    let want = format!("{:08X}:{:04X}", u32::from_ne_bytes(addr.octets()), port);
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&want.as_str()))
            .then(|| f.last().and_then(|d| d.parse().ok()))
            .flatten()
    })
}

/// CPU time counters of all CPUs from `/proc/stat`: (busy, total) in ticks. Time spent
/// in niced (nice > 0) tasks counts as idle: they barely compete with the benchmark.
fn cpu_ticks() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(1).copied().unwrap_or(0)
        + v.get(3).copied().unwrap_or(0)
        + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Fraction (0–1) of all CPUs that was busy during `window` (whole machine).
pub fn cpu_busy(window: std::time::Duration) -> f64 {
    let Some((b0, t0)) = cpu_ticks() else {
        return f64::NAN;
    };
    std::thread::sleep(window);
    let Some((b1, t1)) = cpu_ticks() else {
        return f64::NAN;
    };
    if t1 > t0 {
        (b1 - b0) as f64 / (t1 - t0) as f64
    } else {
        0.0
    }
}

/// Wait (up to `max`) until the machine was less than `threshold` busy for one second;
/// returns the last busy fraction seen.
pub fn wait_idle(threshold: f64, max: std::time::Duration) -> f64 {
    let until = std::time::Instant::now() + max;
    loop {
        let b = cpu_busy(std::time::Duration::from_secs(1));
        if b < threshold || std::time::Instant::now() >= until {
            return b;
        }
    }
}

/// The 1-minute load average.
pub fn loadavg1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Wait (up to `max`) until the 1-minute load average is below `threshold`; returns it.
pub fn wait_quiet(threshold: f64, max: std::time::Duration) -> f64 {
    let until = std::time::Instant::now() + max;
    loop {
        let l = loadavg1();
        if l < threshold || std::time::Instant::now() >= until {
            return l;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}
