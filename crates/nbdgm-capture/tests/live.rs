//! Live capture (feature `live`) on a veth pair between two network namespaces
//! the test creates (198.51.100.0/24; 203.0.113.0/24 in VLAN-tagged frames) and removes
//! again, even on failure. Checks the kernel filter: every port-138 datagram (plain,
//! VLAN-tagged, fragmented) reaches user space and no port-9999 datagram does.
//!
//! Needs root (network namespaces, CAP_NET_RAW), `ip`, `python3` and scapy (the sender).
//! Without them the test is skipped with a message, except under `CI=true`, where
//! it fails.
#![cfg(feature = "live")]
// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use nbdgm_capture::{LiveCapture, LiveError, LiveOptions, LiveStats, UdpDatagram};

const SENDER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x53, 0x01];
const PLAIN: usize = 1000;
const VLAN: usize = 200;
const FRAGMENTED: usize = 20;
const BIG: usize = 3000;

/// Skips (prints why) or, under `CI=true`, fails.
fn missing(what: &str) {
    let ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false);
    assert!(!ci, "CI=true but the live capture test cannot run: {what}");
    eprintln!("SKIPPED live capture test: {what}");
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The two namespaces; deleting them removes the veth pair and VLAN devices.
struct Netns {
    names: Vec<String>,
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn setup(ns_s: &str, ns_r: &str, vs: &str, vr: &str) -> Netns {
    let guard = Netns {
        names: vec![ns_s.to_string(), ns_r.to_string()],
    };
    run(&["ip", "netns", "add", ns_s]);
    run(&["ip", "netns", "add", ns_r]);
    let mac_s = "02:00:5e:00:53:01";
    let mac_r = "02:00:5e:00:53:02";
    run(&[
        "ip", "link", "add", vs, "address", mac_s, "netns", ns_s, "type", "veth", "peer", "name",
        vr, "address", mac_r, "netns", ns_r,
    ]);
    for (ns, dev, a, peer_mac, peer_a) in [
        (ns_s, vs, "198.51.100.1", mac_r, "198.51.100.2"),
        (ns_r, vr, "198.51.100.2", mac_s, "198.51.100.1"),
    ] {
        let ip = |args: &[&str]| {
            let mut all = vec!["ip", "-n", ns];
            all.extend_from_slice(args);
            run(&all);
        };
        run(&[
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.disable_ipv6=1",
        ]);
        run(&[
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        ip(&["addr", "add", &format!("{a}/24"), "dev", dev]);
        ip(&["link", "set", "lo", "up"]);
        ip(&["link", "set", dev, "up"]);
        // Static neighbours: no ARP, so no packet waits (or is dropped) for resolution.
        ip(&[
            "neigh",
            "replace",
            peer_a,
            "lladdr",
            peer_mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ]);
    }
    guard
}

/// The sender, run in the sending namespace with the sending interface as argument:
/// a UDP socket for the plain and fragmented datagrams, scapy for VLAN-tagged frames
/// (no 802.1Q devices needed; the receiving kernel drops them after the capture).
const SENDER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: fragment
for i in range(1000):
    s.sendto(b'nbdgm-live-%d' % i, ('198.51.100.2', 138))
    s.sendto(b'noise-%d' % i, ('198.51.100.2', 9999))
for i in range(20):
    s.sendto(bytes([i]) * 3000, ('198.51.100.2', 138))
from scapy.all import Ether, Dot1Q, IP, UDP, sendp
eth = Ether(src='02:00:5e:00:53:01', dst='02:00:5e:00:53:02') / Dot1Q(vlan=10)
ip = IP(src='203.0.113.1', dst='203.0.113.2')
frames = []
for i in range(200):
    frames.append(eth / ip / UDP(sport=40000, dport=138) / (b'vlan-%d' % i))
    frames.append(eth / ip / UDP(sport=40000, dport=9999) / (b'vlan-noise-%d' % i))
sendp(frames, iface=sys.argv[1], verbose=False)
"#;

struct Captured {
    datagrams: Vec<UdpDatagram<'static>>,
    stats: LiveStats,
    filter: String,
}

/// Captures on `dev` inside namespace `ns` until `expected` datagrams came after
/// `sent` is set, or 20 s; then drains for 300 ms.
fn capture(
    ns: String,
    dev: String,
    expected: usize,
    ready: mpsc::Sender<Result<(), LiveError>>,
    sent: Arc<AtomicBool>,
) -> Captured {
    let fd = File::open(format!("/run/netns/{ns}")).unwrap();
    nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    let mut cap = match LiveCapture::open(&dev, LiveOptions::default()) {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            ready.send(Err(e)).unwrap();
            panic!("open: {msg}");
        }
    };
    ready.send(Ok(())).unwrap();
    let mut datagrams = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !(sent.load(Ordering::SeqCst) && datagrams.len() >= expected)
    {
        cap.next_batch(&mut datagrams, 256).unwrap();
    }
    let drain = Instant::now() + Duration::from_millis(300);
    while Instant::now() < drain {
        cap.next_batch(&mut datagrams, 256).unwrap();
    }
    Captured {
        datagrams,
        stats: cap.stats().unwrap(),
        filter: cap.filter().to_string(),
    }
}

#[test]
fn kernel_filter_on_veth() {
    if !nix::unistd::geteuid().is_root() {
        return missing("not root (needs network namespaces and CAP_NET_RAW)");
    }
    // The distribution's python3 (python3-scapy's), not a pyenv one first on PATH.
    let py = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    for tool in ["ip", py] {
        if Command::new(tool).arg("-V").output().is_err() {
            return missing(&format!("{tool} is not installed"));
        }
    }
    let scapy = Command::new(py).args(["-c", "import scapy.all"]).output();
    if !scapy.is_ok_and(|o| o.status.success()) {
        return missing("python3-scapy is not installed");
    }
    let pid = std::process::id();
    let (ns_s, ns_r) = (format!("nbdgm-lc-s-{pid}"), format!("nbdgm-lc-r-{pid}"));
    let (vs, vr) = (format!("lcs{pid}"), format!("lcr{pid}"));
    let _guard = setup(&ns_s, &ns_r, &vs, &vr);

    let expected = PLAIN + VLAN + FRAGMENTED;
    let (ready_tx, ready_rx) = mpsc::channel();
    let sent = Arc::new(AtomicBool::new(false));
    let sent2 = sent.clone();
    let (ns, dev) = (ns_r.clone(), vr.clone());
    let capturer = std::thread::spawn(move || capture(ns, dev, expected, ready_tx, sent2));
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("capture thread did not start")
        .expect("LiveCapture::open");

    let status = Command::new("timeout")
        .args(["30", "ip", "netns", "exec", &ns_s, py, "-c", SENDER, &vs])
        .status()
        .unwrap();
    sent.store(true, Ordering::SeqCst);
    assert!(status.success(), "sender failed: {status}");
    let got = capturer.join().expect("capture thread panicked");

    let r = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));
    let v = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 2));
    let plain = got
        .datagrams
        .iter()
        .filter(|d| d.dst.ip() == r && d.dst.port() == 138 && !d.ip_reassembled)
        .count();
    let vlan = got
        .datagrams
        .iter()
        .filter(|d| d.dst.ip() == v && d.dst.port() == 138)
        .count();
    let big: Vec<_> = got.datagrams.iter().filter(|d| d.ip_reassembled).collect();
    let s = &got.stats;
    eprintln!(
        "filter {:?}: kernel received {}, dropped {}, interface dropped {}; user space frames {}, \
         UDP {}, matched {}; plain {plain}, VLAN {vlan}, reassembled {}",
        got.filter,
        s.received,
        s.dropped,
        s.if_dropped,
        s.decoder.frames,
        s.decoder.udp,
        s.decoder.udp_matched,
        big.len()
    );
    assert_eq!(plain, PLAIN, "port-138 datagrams captured");
    assert_eq!(vlan, VLAN, "VLAN-tagged port-138 datagrams captured");
    assert_eq!(big.len(), FRAGMENTED, "fragmented datagrams reassembled");
    assert!(big
        .iter()
        .all(|d| d.payload.len() == BIG && d.warnings.is_empty()));
    assert!(got.datagrams.iter().all(|d| d.src_mac == Some(SENDER_MAC)));
    assert!(got.datagrams.iter().all(|d| d.dst.port() != 9999));
    // The kernel filter: no port-9999 datagram reached user space at all (the
    // decoder sees every UDP datagram before its own port filter) ...
    assert_eq!(
        s.decoder.udp, s.decoder.udp_matched,
        "non-matching UDP reached user space"
    );
    // ... and the kernel counted only what passed its filter: 1200 + 20 * 3 fragments.
    let passing = (PLAIN + VLAN + FRAGMENTED * 3) as u64;
    assert!(
        (passing..passing + 20).contains(&s.received),
        "kernel received {} (expected about {passing}; 2400 would mean the 9999 traffic passed)",
        s.received
    );
    assert_eq!(s.decoder.frames, s.received, "frames read vs kernel count");
    assert_eq!((s.dropped, s.if_dropped), (0, 0), "kernel drops");
}
