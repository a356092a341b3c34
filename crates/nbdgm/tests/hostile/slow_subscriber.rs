//! Attack: a slow subscriber pins memory (issue 12 item 6). Attacker (c) subscribes to
//! everything and stops reading while attacker (a) sends thousands of ~60 KB datagrams:
//! the daemon's memory must stay bounded and the drops must be counted.

use crate::common::{fragments, ports, Daemon, DaemonSpec, Scratch};
use nbdgm_client::proto::Subscription;
use nbdgm_wire::datagram::MsgType;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// `VmRSS` / `VmHWM` of `pid` in KiB.
fn mem_kib(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

#[test]
fn slow_subscriber_memory_is_bounded() {
    const DATAGRAMS: usize = 3000;
    const BOUND_MIB: u64 = 64;
    let s = Scratch::new("hostile-slow");
    let addr = Ipv4Addr::new(127, 0, 51, 1);
    let ports = ports();
    // One source may send fast (a spoofing attacker uses many sources anyway).
    let extra = "[reassembly]\nmax_bytes_per_source = 1048576\nmax_total_bytes = 4194304\n\
                 [limits]\nrx_per_source = { rate = 1000000.0, burst = 1000000 }\n";
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0, "slow", "SLOWNODE", addr, ports, extra,
    ));
    d.wait_names(&["SLOWNODE<00>"]);

    // The slow subscriber: everything, then never reads.
    let mut slow = d.client();
    slow.subscribe(Subscription {
        all: true,
        ..Default::default()
    })
    .unwrap();
    let pid = d.pid();
    let rss0 = mem_kib(pid, "VmRSS:");

    let sender = UdpSocket::bind((Ipv4Addr::new(127, 0, 51, 2), 0)).unwrap();
    let src = match sender.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    };
    let to = SocketAddrV4::new(addr, ports.1);
    let data: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
    let start = Instant::now();
    for i in 0..DATAGRAMS {
        let id = i as u16;
        for f in fragments(MsgType::DirectGroup, src, "TESTGROUP<00>", &data, id, 8000) {
            let _ = sender.send_to(&f, to);
        }
        // Pace so that the socket buffer is not what drops them.
        std::thread::sleep(Duration::from_micros(700));
        if start.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let hwm = mem_kib(pid, "VmHWM:");
    let rss = mem_kib(pid, "VmRSS:");
    let st = d.stats();
    let api = &st["api"];
    let published = api["events_published"].as_u64().unwrap();
    let dropped = api["events_dropped_queue_full"].as_u64().unwrap();
    let growth_mib = hwm.saturating_sub(rss0) / 1024;
    eprintln!(
        "slow subscriber: {published} events published, {dropped} dropped; \
         RSS {rss0} KiB -> {rss} KiB, peak {hwm} KiB (growth {growth_mib} MiB)"
    );
    assert!(
        published >= 1000,
        "too few datagrams reached the daemon: {st}"
    );
    assert!(
        dropped > 0,
        "the slow subscriber's drops are not counted: {st}"
    );
    assert!(
        growth_mib < BOUND_MIB,
        "memory grew by {growth_mib} MiB (bound {BOUND_MIB} MiB): {st}"
    );
    // The slow subscriber is still connected and still gets its overflow notice.
    drop(slow);
    d.client().hello().unwrap();
}
