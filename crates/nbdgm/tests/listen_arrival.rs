//! Standalone `nbdgm listen` on 0.0.0.0:138 tells broadcast from unicast by each
//! datagram's destination address (`IP_PKTINFO`), in network namespaces (198.51.100.0/24
//! only): the output shows where each datagram was sent, and the listener stays passive
//! (no DATAGRAM ERROR, not even for a unicast to a name it does not hold: the standalone
//! driver has no reply gate). Needs root and iproute2: skipped locally without them, a
//! failure under CI=true.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_lab::{require_or_skip, Lab, LabSpec};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// A DIRECT_UNIQUE from WKS01 at `src` to NOBODY<00>, DGM_ID `id`.
fn direct_unique(src: SocketAddrV4, id: u16) -> Vec<u8> {
    Datagram::data(
        MsgType::DirectUnique,
        NodeType::B,
        id,
        (*src.ip(), src.port()),
        Name::new("WKS01", 0).unwrap(),
        Name::new("NOBODY", 0).unwrap(),
        b"hello".to_vec(),
    )
    .to_bytes()
    .unwrap()
}

#[test]
fn standalone_listen_shows_the_arrival_and_sends_nothing() {
    if !require_or_skip("standalone_listen_shows_the_arrival_and_sends_nothing") {
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let mut cmd = b.cmd(env!("CARGO_BIN_EXE_nbdgm"));
    cmd.args([
        "listen",
        "--standalone",
        "--interface",
        "198.51.100.20/24",
        "--count",
        "2",
        "--timeout-s",
        "20",
        "--format",
        "ndjson",
    ]);
    let listener = b.spawn(cmd).unwrap();
    // Bound when 0.0.0.0:138 shows up (bounded).
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let ss = b.output("ss", ["-Hlun", "sport = :138"]).unwrap();
        if String::from_utf8_lossy(&ss.stdout).contains("0.0.0.0:138") {
            break;
        }
        assert!(
            Instant::now() < end && listener.is_running(),
            "listen did not bind: {}",
            listener.read_stderr().unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // From a: a broadcast (id 1), then a unicast (id 2), both to a name nobody holds.
    let src = SocketAddrV4::new(a.addr(), 138);
    let answer = a
        .in_netns(move || {
            let s = UdpSocket::bind(src).unwrap();
            s.set_broadcast(true).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            s.send_to(
                &direct_unique(src, 1),
                (Ipv4Addr::new(198, 51, 100, 255), 138),
            )
            .unwrap();
            s.send_to(
                &direct_unique(src, 2),
                (Ipv4Addr::new(198, 51, 100, 20), 138),
            )
            .unwrap();
            let mut buf = [0u8; 1500];
            s.recv_from(&mut buf)
                .ok()
                .map(|(n, from)| (buf[..n].to_vec(), from))
        })
        .unwrap();
    assert!(
        answer.is_none(),
        "a passive listener answered: {:?}",
        answer.map(|(b, from)| (from, Datagram::parse(&b).map(|d| d.msg_type)))
    );

    let status = listener.wait_timeout(Duration::from_secs(15)).unwrap();
    let out = listener.read_stdout().unwrap();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{out} {}",
        listener.read_stderr().unwrap_or_default()
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["arrival"], "broadcast", "{out}");
    assert_eq!(lines[0]["dst"], "198.51.100.255:138", "{out}");
    assert_eq!(lines[1]["arrival"], "unicast", "{out}");
    assert_eq!(lines[1]["dst"], "198.51.100.20:138", "{out}");
    for l in &lines {
        assert_eq!(l["from"], "198.51.100.10:138", "{out}");
        assert_eq!(l["for_us"], false, "{out}");
    }
}
