//! Standalone `nbdgm listen` on 0.0.0.0:138 tells broadcast from unicast by each
//! datagram's destination address (`IP_PKTINFO`), in network namespaces (198.51.100.0/24
//! only): the output shows where each datagram was sent, and a unicast DIRECT_UNIQUE to a
//! name other than `--name` is answered with DATAGRAM ERROR 0x82 (RFC 1002 §4.4.3) at
//! its UDP source, a broadcast never; the answers pass the reply gate (per-source rate,
//! bytes out at most 4 × bytes in). Needs root and iproute2: skipped locally without
//! them, a failure under CI=true.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_lab::{require_or_skip, Host, Lab, LabSpec, Proc};
use nbdgm_wire::datagram::{Body, Datagram, MsgType, NodeType};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

const LISTENER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);
const BROADCAST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 255);

/// The `[limits]` defaults the standalone gate uses: replies per source (rate, burst)
/// and the amplification factor.
const RATE: f64 = 50.0;
const BURST: u64 = 100;
const FACTOR: usize = 4;

/// A DIRECT_UNIQUE from WKS01 at `src` to `dest`<00>, DGM_ID `id`.
fn direct_unique(src: SocketAddrV4, dest: &str, id: u16) -> Vec<u8> {
    Datagram::data(
        MsgType::DirectUnique,
        NodeType::B,
        id,
        (*src.ip(), src.port()),
        Name::new("WKS01", 0).unwrap(),
        Name::new(dest, 0).unwrap(),
        b"hello".to_vec(),
    )
    .to_bytes()
    .unwrap()
}

/// `nbdgm listen --standalone` on b with `extra` arguments, once 0.0.0.0:138 is bound.
fn start_listen(b: &Host, extra: &[&str]) -> Proc {
    let mut cmd = b.cmd(env!("CARGO_BIN_EXE_nbdgm"));
    cmd.args([
        "listen",
        "--standalone",
        "--interface",
        "198.51.100.20/24",
        "--format",
        "ndjson",
    ]);
    cmd.args(extra);
    let listener = b.spawn(cmd).unwrap();
    // Bound when 0.0.0.0:138 shows up (bounded).
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let ss = b.output("ss", ["-Hlun", "sport = :138"]).unwrap();
        if String::from_utf8_lossy(&ss.stdout).contains("0.0.0.0:138") {
            return listener;
        }
        assert!(
            Instant::now() < end && listener.is_running(),
            "listen did not bind: {}",
            listener.read_stderr().unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A socket on a's 198.51.100.10:138 (it stays in a's namespace).
fn sender(a: &Host) -> (UdpSocket, SocketAddrV4) {
    let src = SocketAddrV4::new(a.addr(), 138);
    let s = a
        .in_netns(move || {
            let s = UdpSocket::bind(src).unwrap();
            s.set_broadcast(true).unwrap();
            s
        })
        .unwrap();
    (s, src)
}

/// Everything already queued on `s`, with its source.
fn drain(s: &UdpSocket) -> Vec<(Vec<u8>, std::net::SocketAddr)> {
    s.set_nonblocking(true).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    // Bounded: at most what the receive buffer can hold.
    for _ in 0..100_000 {
        match s.recv_from(&mut buf) {
            Ok((n, from)) => out.push((buf[..n].to_vec(), from)),
            Err(_) => break,
        }
    }
    s.set_nonblocking(false).unwrap();
    out
}

/// A DATAGRAM ERROR 0x82 (destination name not present) from the listener's port 138,
/// its DGM_ID.
fn error_id(bytes: &[u8], from: std::net::SocketAddr) -> u16 {
    assert_eq!(from, SocketAddrV4::new(LISTENER, 138).into());
    let d = Datagram::parse(bytes).unwrap();
    assert_eq!(d.msg_type, MsgType::Error, "{d:?}");
    assert!(matches!(d.body, Body::Error { code: 0x82 }), "{d:?}");
    d.id
}

/// Exit status 0 after at most `wait`; stdout as JSON lines, and stderr.
fn finish(listener: &Proc, wait: Duration) -> (Vec<serde_json::Value>, String) {
    let status = listener.wait_timeout(wait).unwrap();
    let (out, err) = (
        listener.read_stdout().unwrap(),
        listener.read_stderr().unwrap_or_default(),
    );
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{out} {err}");
    let lines = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, err)
}

/// The counts of listen's stderr line `answers: S sent, R refused by the reply gate, F
/// failed`.
fn answers(err: &str) -> (u64, u64, u64) {
    let line = err
        .lines()
        .find_map(|l| l.split_once("answers: ").map(|(_, r)| r.to_owned()))
        .unwrap_or_else(|| panic!("no answers line: {err}"));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(n.len(), 3, "{line}");
    (n[0], n[1], n[2])
}

#[test]
fn standalone_listen_shows_the_arrival_and_errors_only_unicasts() {
    if !require_or_skip("standalone_listen_shows_the_arrival_and_errors_only_unicasts") {
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let listener = start_listen(&b, &["--count", "2", "--timeout-s", "20"]);

    // From a: a broadcast (id 1), then a unicast (id 2), both to a name nobody holds.
    let (s, src) = sender(&a);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.send_to(&direct_unique(src, "NOBODY", 1), (BROADCAST, 138))
        .unwrap();
    s.send_to(&direct_unique(src, "NOBODY", 2), (LISTENER, 138))
        .unwrap();
    // The first answer is the unicast's (an answer to the broadcast would come first).
    let mut buf = [0u8; 1500];
    let (n, from) = s.recv_from(&mut buf).expect("no DATAGRAM ERROR");
    assert_eq!(error_id(&buf[..n], from), 2);

    let (lines, err) = finish(&listener, Duration::from_secs(15));
    // Nothing else came: the listener has handled both (its answers leave first).
    assert!(drain(&s).is_empty());
    assert_eq!(answers(&err), (1, 0, 0), "{err}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["arrival"], "broadcast", "{lines:?}");
    assert_eq!(lines[0]["dst"], "198.51.100.255:138", "{lines:?}");
    assert_eq!(lines[1]["arrival"], "unicast", "{lines:?}");
    assert_eq!(lines[1]["dst"], "198.51.100.20:138", "{lines:?}");
    for l in &lines {
        assert_eq!(l["from"], "198.51.100.10:138", "{lines:?}");
        assert_eq!(l["for_us"], false, "{lines:?}");
    }
}

/// With `--name KNOWN<00>`, unicasts to it get no error (the name counts as known, yet
/// it is not held: not for us), another name's do.
#[test]
fn standalone_listen_name_counts_as_known() {
    if !require_or_skip("standalone_listen_name_counts_as_known") {
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let listener = start_listen(
        &b,
        &["--name", "KNOWN<00>", "--count", "2", "--timeout-s", "20"],
    );
    let (s, src) = sender(&a);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for (dest, id) in [("KNOWN", 3), ("NOBODY", 4), ("KNOWN", 5)] {
        s.send_to(&direct_unique(src, dest, id), (LISTENER, 138))
            .unwrap();
    }
    let mut buf = [0u8; 1500];
    let (n, from) = s.recv_from(&mut buf).expect("no DATAGRAM ERROR");
    assert_eq!(error_id(&buf[..n], from), 4);
    let (lines, err) = finish(&listener, Duration::from_secs(15));
    // Listen stopped after id 5, whose answer would have left before.
    assert!(drain(&s).is_empty());
    assert_eq!(answers(&err), (1, 0, 0), "{err}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    for l in &lines {
        assert_eq!(l["arrival"], "unicast", "{lines:?}");
        assert_eq!(l["for_us"], false, "{lines:?}");
    }
}

/// A flood of unicasts to an unknown name from one source: the errors stay within the
/// gate's burst plus its rate over the time they took, and their bytes within the
/// factor × the bytes received.
#[test]
fn standalone_listen_errors_pass_the_reply_gate() {
    if !require_or_skip("standalone_listen_errors_pass_the_reply_gate") {
        return;
    }
    const FLOOD: u16 = 600;
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let count = FLOOD.to_string();
    let listener = start_listen(&b, &["--count", &count, "--timeout-s", "20"]);
    let (s, src) = sender(&a);
    // Room for every answer the gate could let through (they are read at the end).
    socket2::SockRef::from(&s)
        .set_recv_buffer_size(4 << 20)
        .unwrap();
    let start = Instant::now();
    let mut bytes_in = 0;
    for id in 0..FLOOD {
        let dg = direct_unique(src, "NOBODY", id);
        bytes_in += dg.len();
        s.send_to(&dg, (LISTENER, 138)).unwrap();
        // Bounded pace (the listener's socket buffer): a pause every 100 datagrams.
        if id % 100 == 99 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (lines, err) = finish(&listener, Duration::from_secs(30));
    let elapsed = start.elapsed().as_secs_f64();
    let errors = drain(&s);
    let bytes_out: usize = errors.iter().map(|(b, _)| b.len()).sum();
    for (b, from) in &errors {
        error_id(b, *from);
    }
    let (sent, refused, failed) = answers(&err);
    let delivered = lines.len() as u64;
    eprintln!(
        "flood {FLOOD} in, {delivered} delivered, {} errors back ({bytes_out} of {bytes_in} \
         bytes), {sent} sent, {refused} refused, {elapsed:.2} s",
        errors.len()
    );
    assert!(delivered > BURST, "{delivered} {err}");
    assert_eq!(failed, 0, "{err}");
    assert_eq!(sent + refused, delivered, "{err}");
    assert_eq!(errors.len() as u64, sent, "{err}");
    assert!(sent >= 1, "{err}");
    // Burst plus rate over the whole run (an upper bound on the time the errors took).
    let bound = BURST + (RATE * elapsed).ceil() as u64 + 1;
    assert!(sent <= bound, "{sent} errors > {bound} in {elapsed:.2} s");
    assert!(refused > 0, "the gate refused nothing: {err}");
    assert!(
        bytes_out <= FACTOR * bytes_in,
        "{bytes_out} > {FACTOR} x {bytes_in}"
    );
}
