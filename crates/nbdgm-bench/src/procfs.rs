//! Reading `/proc` (with the `procfs` crate): a process's memory (VmRSS, VmHWM) and CPU
//! time, the machine's CPU counters and load average; and the kernel's per-socket UDP
//! `drops` column (`/proc/net/udp`, which `procfs` does not parse).

use procfs::process::Process;
use procfs::{Current, CurrentSI, KernelStats, LoadAverage};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Memory of a process from `/proc/PID/status`, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

fn process(pid: u32) -> anyhow::Result<Process> {
    Ok(Process::new(i32::try_from(pid)?)?)
}

/// VmRSS and VmHWM of `pid` (0 when the kernel does not report them).
pub fn mem(pid: u32) -> anyhow::Result<Mem> {
    let s = process(pid)?.status()?;
    Ok(Mem {
        rss_kib: s.vmrss.unwrap_or(0),
        hwm_kib: s.vmhwm.unwrap_or(0),
    })
}

/// User + system CPU time of `pid` (all its threads) in seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let st = process(pid)?.stat()?;
    Ok((st.utime + st.stime) as f64 / procfs::ticks_per_second() as f64)
}

/// The `drops` column of the UDP socket bound to `addr:port` in `/proc/net/udp` of the
/// calling thread's network namespace (packets the kernel discarded because the socket's
/// receive buffer was full).
pub fn udp_drops(addr: Ipv4Addr, port: u16) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/net/udp").ok()?;
    // The kernel prints the address as the raw (network-order) u32 with %08X.
    let want = format!("{:08X}:{:04X}", u32::from_ne_bytes(addr.octets()), port);
    let drops = udp_drops_where(&text, |a| a == want).next();
    drops
}

/// Sum of the `drops` column of the UDP sockets on `port` (any address) in the `/proc/net/udp`
/// table `text`.
pub fn udp_port_drops(text: &str, port: u16) -> u64 {
    let want = format!(":{port:04X}");
    let sum = udp_drops_where(text, |a| a.ends_with(&want)).sum();
    sum
}

/// The `drops` column (the last) of the rows of a `/proc/net/udp` table whose local address
/// (the second column) matches.
fn udp_drops_where<'a>(
    text: &'a str,
    matches: impl Fn(&str) -> bool + 'a,
) -> impl Iterator<Item = u64> + 'a {
    text.lines().skip(1).filter_map(move |l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1)
            .is_some_and(|a| matches(a))
            .then(|| f.last().and_then(|d| d.parse().ok()))
            .flatten()
    })
}

/// CPU time counters of all CPUs: (busy, total) in ticks. Time spent in niced (nice > 0)
/// tasks counts as idle: they barely compete with the benchmark.
fn cpu_ticks() -> Option<(u64, u64)> {
    let t = KernelStats::current().ok()?.total;
    let opt = |v: Option<u64>| v.unwrap_or(0);
    let total = t.user
        + t.nice
        + t.system
        + t.idle
        + opt(t.iowait)
        + opt(t.irq)
        + opt(t.softirq)
        + opt(t.steal);
    let idle = t.nice + t.idle + opt(t.iowait);
    Some((total - idle, total))
}

/// Fraction (0–1) of all CPUs that was busy during `window` (whole machine).
pub fn cpu_busy(window: Duration) -> f64 {
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
pub fn wait_idle(threshold: f64, max: Duration) -> f64 {
    let until = Instant::now() + max;
    loop {
        let b = cpu_busy(Duration::from_secs(1));
        if b < threshold || Instant::now() >= until {
            return b;
        }
    }
}

/// The 1-minute load average.
pub fn loadavg1() -> f64 {
    LoadAverage::current().map_or(f64::NAN, |l| f64::from(l.one))
}

/// Wait (up to `max`) until the 1-minute load average is below `threshold`; returns it.
pub fn wait_quiet(threshold: f64, max: Duration) -> f64 {
    let until = Instant::now() + max;
    loop {
        let l = loadavg1();
        if l < threshold || Instant::now() >= until {
            return l;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UDP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n \
        1: 024D007F:008A 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777001 2 0000000000000000 5\n \
        2: 0100007F:008A 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777002 2 0000000000000000 7\n \
        3: 0100007F:0089 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777003 2 0000000000000000 100\n";

    #[test]
    fn drops_by_port_and_by_address() {
        assert_eq!(udp_port_drops(UDP, 138), 12);
        assert_eq!(udp_port_drops(UDP, 137), 100);
        assert_eq!(udp_port_drops(UDP, 139), 0);
        let want = format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(Ipv4Addr::new(127, 0, 77, 2).octets()),
            138
        );
        assert_eq!(
            udp_drops_where(UDP, |a| a == want).collect::<Vec<_>>(),
            vec![5]
        );
    }

    #[test]
    fn own_process_and_machine() {
        let m = mem(std::process::id()).unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        // Burn a little CPU so the counter moves.
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0 && cpu_seconds(std::process::id()).unwrap() > 0.0);
        assert!(cpu_ticks().is_some_and(|(busy, total)| busy <= total && total > 0));
        assert!(loadavg1() >= 0.0);
    }
}
