//! The lab itself: topology, nmbd, nmblookup, tshark. Needs root, iproute2, Samba and tshark;
//! skipped (or failed under CI=true) otherwise.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_lab::{nmblookup, require_or_skip, Lab, LabSpec, Nmbd, NmbdOptions, Tshark};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fn netns_list() -> Vec<String> {
    let out = std::process::Command::new(nbdgm_lab::tool_path("ip").expect("ip"))
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn topology_reachability_and_teardown() {
    if !require_or_skip("topology_reachability_and_teardown") {
        return;
    }
    let t0 = Instant::now();
    let lab = Lab::new(LabSpec::two_subnets()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").expect("host a");
    let b = lab.add_host("b", "198.51.100.20/24").expect("host b");
    let d = lab.add_host("d", "203.0.113.40/24").expect("host d");
    eprintln!("lab up in {:?}", t0.elapsed());

    // Rules enforced by add_host.
    assert!(lab.add_host("x", "192.0.2.5/24").is_err(), "non-doc net");
    assert!(
        lab.add_host("y", "198.51.100.1/24").is_err(),
        "router address"
    );
    assert!(
        lab.add_host("a", "198.51.100.11/24").is_err(),
        "duplicate name"
    );

    assert_eq!(a.broadcast(), Ipv4Addr::new(198, 51, 100, 255));
    assert_eq!(d.broadcast(), Ipv4Addr::new(203, 0, 113, 255));
    assert_eq!(a.iface(), "vetha");
    assert!(a.netns().starts_with(lab.prefix()));

    // Same subnet, both directions; across the router, both directions; the router itself.
    assert!(a.tcp_refused(b.addr(), 9).unwrap(), "a -> b");
    assert!(b.tcp_refused(a.addr(), 9).unwrap(), "b -> a");
    assert!(a.tcp_refused(d.addr(), 9).unwrap(), "a -> d via router");
    assert!(d.tcp_refused(b.addr(), 9).unwrap(), "d -> b via router");
    assert!(d.tcp_refused(Ipv4Addr::new(203, 0, 113, 1), 9).unwrap());
    // Nobody at .99: no answer (bounded at 2 s).
    assert!(!a.tcp_refused(Ipv4Addr::new(198, 51, 100, 99), 9).unwrap());
    // Only documentation nets and loopback may be targeted.
    assert!(a.tcp_refused(Ipv4Addr::new(192, 0, 2, 1), 9).is_err());

    // No default route, IPv6 off, the expected routes.
    for h in [&a, &b, &d] {
        let routes = h.output("ip", ["-4", "route", "show"]).unwrap();
        let routes = String::from_utf8_lossy(&routes.stdout).into_owned();
        assert!(!routes.contains("default"), "{}: {routes}", h.name());
        let via = if h.subnet() == 1 {
            "203.0.113.0/24 via 198.51.100.1"
        } else {
            "198.51.100.0/24 via 203.0.113.1"
        };
        assert!(routes.contains(via), "{}: {routes}", h.name());
        let v6 = h
            .output("cat", ["/proc/sys/net/ipv6/conf/all/disable_ipv6"])
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&v6.stdout).trim(), "1");
    }

    // A tracked process is stopped by the lab's drop.
    let mut sleeper = a.cmd("sleep");
    sleeper.arg("300");
    let sleeper = a.spawn(sleeper).unwrap();
    let sleeper_pid = sleeper.pid();
    assert!(sleeper.is_running());

    let ours = lab.namespaces();
    assert_eq!(ours.len(), 5, "{ours:?}");
    let listed = netns_list();
    for ns in &ours {
        assert!(listed.contains(ns), "{ns} missing from {listed:?}");
    }
    let t1 = Instant::now();
    drop(lab);
    eprintln!("lab down in {:?}", t1.elapsed());
    assert!(!pid_alive(sleeper_pid), "sleep {sleeper_pid} survived");
    let listed = netns_list();
    for ns in &ours {
        assert!(!listed.contains(ns), "{ns} still exists");
    }
    // Handles outliving the lab fail instead of touching anything.
    assert!(a.tcp_refused(b.addr(), 9).is_err());
    drop(sleeper);
}

#[test]
fn nmbd_answers_unicast_and_local_broadcast_only() {
    if !require_or_skip("nmbd_answers_unicast_and_local_broadcast_only") {
        return;
    }
    let t0 = Instant::now();
    let lab = Lab::new(LabSpec::two_subnets()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let d = lab.add_host("d", "203.0.113.40/24").unwrap();

    let nmbd = Nmbd::start(&a, NmbdOptions::default()).expect("nmbd");
    // Capture the name service on b while nmbd registers and we query.
    let pcap = lab.dir().join("b.pcap");
    let tshark = Tshark::start(&b, "udp port 137", &pcap).expect("tshark");
    nmbd.wait_registered(Duration::from_secs(20))
        .expect("names registered");
    eprintln!("nmbd registered after {:?}", t0.elapsed());

    let r = nmblookup(&b, ["-U", "198.51.100.10", "SAMBAA"]).unwrap();
    assert!(r.success(), "{r:?}");
    assert_eq!(r.addresses("SAMBAA"), vec![a.addr()], "{r:?}");

    let r = nmblookup(&b, ["-U", "198.51.100.10", "NOSUCHNAME"]).unwrap();
    assert!(!r.success(), "{r:?}");
    assert!(r.addresses("NOSUCHNAME").is_empty());

    let r = nmblookup(&b, ["-B", "198.51.100.255", "SAMBAA"]).unwrap();
    eprintln!("b: nmblookup -B 198.51.100.255 SAMBAA -> {:?}", r.stdout);
    assert!(r.success(), "{r:?}");
    let addrs = r.addresses("SAMBAA");
    assert!(
        !addrs.is_empty() && addrs.iter().all(|x| *x == a.addr()),
        "{r:?}"
    );

    // Unicast crosses the router; broadcasts (local or directed) do not.
    let r = nmblookup(&d, ["-U", "198.51.100.10", "SAMBAA"]).unwrap();
    assert_eq!(r.addresses("SAMBAA"), vec![a.addr()], "{r:?}");
    let t = Instant::now();
    let r = nmblookup(&d, ["-B", "198.51.100.255", "SAMBAA"]).unwrap();
    eprintln!(
        "d: nmblookup -B 198.51.100.255 -> {:?} in {:?}",
        r.stdout,
        t.elapsed()
    );
    assert!(!r.success() && r.addresses("SAMBAA").is_empty(), "{r:?}");
    let r = nmblookup(&d, ["-B", "203.0.113.255", "SAMBAA"]).unwrap();
    assert!(!r.success() && r.addresses("SAMBAA").is_empty(), "{r:?}");

    // The capture saw nmbd's registrations and our queries.
    let pcap = tshark.stop().expect("tshark stop");
    let dec = b
        .output(
            "tshark",
            [
                "-r",
                pcap.to_str().unwrap(),
                "-T",
                "fields",
                "-e",
                "ip.src",
                "-e",
                "nbns.flags.opcode",
                "-e",
                "nbns.name",
            ],
        )
        .unwrap();
    let dec = String::from_utf8_lossy(&dec.stdout).into_owned();
    assert!(dec.contains("SAMBAA<20>"), "{dec}");
    assert!(
        dec.lines()
            .any(|l| l.starts_with("198.51.100.10\t5\t") && l.contains("SAMBAA")),
        "no registration from nmbd in:\n{dec}"
    );
    assert!(
        !dec.contains("203.0.113.40"),
        "subnet-2 traffic leaked onto subnet 1 capture"
    );

    let pid = nmbd.pid();
    assert!(pid_alive(pid));
    let ours = lab.namespaces();
    drop(lab); // stops nmbd by PID before deleting namespaces
    assert!(!pid_alive(pid), "nmbd {pid} survived the lab");
    assert!(nmbd.proc().try_status().is_some());
    let listed = netns_list();
    assert!(ours.iter().all(|ns| !listed.contains(ns)));
    drop(nmbd);
    eprintln!("nmbd test took {:?}", t0.elapsed());
}

#[test]
fn nmbd_becomes_local_master_and_writes_browse_dat() {
    if !require_or_skip("nmbd_becomes_local_master_and_writes_browse_dat") {
        return;
    }
    let t0 = Instant::now();
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let nmbd = Nmbd::start(&a, NmbdOptions::default()).expect("nmbd");
    nmbd.wait_local_master(Duration::from_secs(60))
        .expect("local master");
    eprintln!("local master after {:?}", t0.elapsed());
    let dat = nmbd
        .wait_browse_dat("\"TESTGROUP\"", Duration::from_secs(30))
        .expect("browse.dat");
    assert!(dat.contains("\"SAMBAA\""), "{dat}");
    // As LMB it owns TESTGROUP<1d> on the subnet.
    let r = nmblookup(&b, ["-U", "198.51.100.10", "TESTGROUP#1d"]).unwrap();
    assert_eq!(r.addresses("TESTGROUP"), vec![a.addr()], "{r:?}");
    let pid = nmbd.pid();
    let st = nmbd.stop().expect("stop");
    eprintln!("nmbd exited: {st}");
    assert!(!pid_alive(pid));
    eprintln!("lmb test took {:?}", t0.elapsed());
}
