//! `nbdgm probe` without CAP_NET_RAW (issue 16 §3, docs/probe.md "Host discovery"): the raw
//! ARP socket cannot be opened, so discovery goes through the kernel's neighbour table (one
//! UDP datagram to port 9 per address, then `RTM_GETNEIGH`). In network namespaces on
//! 198.51.100.0/28 created and removed by nbdgm-lab: nmbd (.2), a host with nothing listening
//! (.3), nmbd behind `nft ... udp dport { 137, 138 } drop` (.4), the scanner (.14), and
//! empty addresses. The probe runs as root with CAP_NET_RAW removed from its bounding set
//! (`setpriv`), then as the user nobody. Needs root, iproute2, nft, nmbd and setpriv: skipped locally without them, a
//! failure under CI=true. No timed assertions.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_lab::{require_tools_or_skip, Host, Lab, LabSpec, Nmbd, NmbdOptions};
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_nbdgm");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `nbdgm probe ARGS` in `host`'s namespace without CAP_NET_RAW.
fn probe_unprivileged(host: &Host, args: &[&str]) -> Output {
    let mut all = vec![
        "--inh-caps=-all",
        "--ambient-caps=-all",
        "--bounding-set=-net_raw",
        BIN,
        "probe",
    ];
    all.extend_from_slice(args);
    host.output_timeout("setpriv", &all, Duration::from_secs(90))
        .expect("run nbdgm in the namespace")
}

fn host(v: &[Value], last_octet: u8) -> &Value {
    let a = format!("198.51.100.{last_octet}");
    v.iter()
        .find(|h| h["address"] == a.as_str())
        .unwrap_or_else(|| panic!("{a} not in the report"))
}

fn states(h: &Value) -> Vec<String> {
    h["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap().to_string())
        .collect()
}

fn nft(host: &Host, script: &str) {
    let path = host.lab_dir().join(format!("{}.nft", host.iface()));
    std::fs::write(&path, script).unwrap();
    let out = host
        .output("nft", ["-f".as_ref(), path.as_os_str()])
        .unwrap();
    assert!(out.status.success(), "nft: {}", text(&out.stderr));
}

#[test]
fn without_cap_net_raw_the_neighbour_table_decides_host_down() {
    if !require_tools_or_skip(
        "without_cap_net_raw_the_neighbour_table_decides_host_down",
        &["nft", "nmbd", "setpriv"],
    ) {
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.2/24").unwrap();
    let _b = lab.add_host("b", "198.51.100.3/24").unwrap();
    let c = lab.add_host("c", "198.51.100.4/24").unwrap();
    let scanner = lab.add_host("s", "198.51.100.14/24").unwrap();
    nft(
        &c,
        "table inet t16 {\n chain input {\n  type filter hook input priority 0; policy accept;\n  \
         udp dport { 137, 138 } drop\n }\n}\n",
    );
    let nmbd = Nmbd::start(&a, NmbdOptions::default()).expect("nmbd");
    let nmbd_c = Nmbd::start(&c, NmbdOptions::default()).expect("nmbd behind drop");
    nmbd.wait_registered(Duration::from_secs(20))
        .expect("nmbd registered");

    let out = probe_unprivileged(
        &scanner,
        &[
            "198.51.100.0/28",
            "--ports",
            "137,138/udp",
            "--format",
            "json",
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The raw socket was refused, and the neighbour table was used instead.
    assert!(err.contains("no ARP socket on "), "{err}");
    assert!(
        err.contains("discovery: neighbour-table on ")
            && err.contains("13 swept, 3 up, 10 host-down"),
        "{err}"
    );
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON: {e}; stderr: {err}"));
    let v = v.as_array().unwrap();
    assert_eq!(v.len(), 14);

    // Live hosts are probed, with the neighbour state as their proof of life.
    let h2 = host(v, 2);
    assert_eq!(states(h2)[0], "open", "{h2}");
    assert_eq!(h2["discovery"], "neighbour-table");
    assert_eq!(states(host(v, 3)), ["closed", "closed"], "{}", host(v, 3));
    // nmbd behind a drop of 137 and 138: the host is up, NODE STATUS unanswered = filtered;
    // 138 stays open|filtered (a listening nmbd is silent as well).
    let h4 = host(v, 4);
    assert_eq!(states(h4), ["filtered", "open|filtered"], "{h4}");
    let ev = h4["ports"][0]["evidence"].as_str().unwrap();
    assert!(ev.contains("host up: neighbour entry "), "{ev}");
    assert!(h4["ports"][0]["attempts"].as_u64().unwrap() >= 1);
    // The scanner itself is not on-link for itself: probed without discovery.
    assert_eq!(states(host(v, 14)), ["closed", "closed"]);
    assert_eq!(host(v, 14)["discovery"], "none");

    // Empty addresses: host-down from the neighbour table, no probe sent.
    for n in (1..=13).filter(|n| ![2, 3, 4].contains(n)) {
        let h = host(v, n);
        assert_eq!(states(h), ["host-down", "host-down"], "{h}");
        assert_eq!(h["discovery"], "neighbour-table");
        let ev = h["ports"][0]["evidence"].as_str().unwrap();
        assert!(ev.contains("neighbour entry"), "{ev}");
        assert!(ev.contains("(UDP to port 9)"), "{ev}");
        assert_eq!(h["ports"][0]["attempts"], 0, "no probe to an empty address");
    }

    // An ordinary user (nobody: no capability at all, cannot bind port 138): the same
    // discovery, and 138/udp cannot use the AnnouncementRequest (it needs port 138).
    let out = scanner
        .output_timeout(
            "setpriv",
            [
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                BIN,
                "probe",
                "198.51.100.2",
                "198.51.100.5",
                "--ports",
                "137,138/udp",
                "--format",
                "json",
            ],
            Duration::from_secs(90),
        )
        .expect("run nbdgm as nobody");
    let err = text(&out.stderr);
    assert!(
        err.contains("discovery: neighbour-table on ")
            && err.contains("2 swept, 1 up, 1 host-down"),
        "{err}"
    );
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON: {e}; stderr: {err}"));
    let v = v.as_array().unwrap();
    assert_eq!(states(host(v, 5)), ["host-down", "host-down"]);
    let s2 = states(host(v, 2));
    assert_eq!(s2[0], "open", "{}", host(v, 2));
    let ev138 = host(v, 2)["ports"][1]["evidence"].as_str().unwrap();
    assert!(
        !ev138.contains("AnnouncementRequest"),
        "no port-138 socket for nobody: {ev138}"
    );
    nmbd.stop().expect("stop nmbd");
    nmbd_c.stop().expect("stop nmbd c");
}
