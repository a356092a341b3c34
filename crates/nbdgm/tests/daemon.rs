//! `nbdgm serve` end to end on loopback (127.0.0.0/8, unprivileged ports): names,
//! queries, node status, send/listen through the API and standalone, fragmentation and
//! reassembly (in order and reordered), conflicts, access lists, the flood/starvation
//! check, amplification, SIGHUP reload, SIGTERM release, capture replay, bind errors.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_client::proto::{Event, NameState, SendArgs, SendMode, Subscription};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::nbns::{self, Packet, Question, CLASS_IN, TYPE_NB};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

fn ip(d: u8) -> Ipv4Addr {
    // One /8 broadcast domain; each test takes addresses from its own range.
    Ipv4Addr::new(127, 0, 4, d)
}

/// `nbdgm send --standalone --broadcast` of "to all" from `from` to datagram port `port`; it must succeed.
fn standalone_broadcast(from: Ipv4Addr, port: u16, mailslot: &str) {
    let out = run(&[
        "send",
        "--standalone",
        "--interface",
        &format!("{from}/8"),
        "--bind",
        &from.to_string(),
        "--port",
        &port.to_string(),
        "--broadcast",
        "--mailslot",
        mailslot,
        "--text",
        "to all",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spec<'a>(
    dir: &'a std::path::Path,
    tag: &'a str,
    name: &'a str,
    addr: Ipv4Addr,
    ports: (u16, u16),
    extra: &'a str,
) -> DaemonSpec<'a> {
    DaemonSpec::loopback(dir, tag, name, addr, ports, extra)
}

fn query(name: &str, id: u16) -> Vec<u8> {
    Packet {
        id,
        flags: nbns::FLAG_RD,
        questions: vec![Question {
            name: name.parse().unwrap(),
            qtype: TYPE_NB,
            qclass: CLASS_IN,
        }],
        answers: vec![],
        authority: vec![],
        additional: vec![],
        trailing: vec![],
    }
    .to_bytes()
    .unwrap()
}

/// Count answers with our ids arriving at `sock` within `wait`.
fn answers(sock: &UdpSocket, wait: Duration) -> Vec<Packet> {
    let mut out = Vec::new();
    let until = Instant::now() + wait;
    let mut buf = [0u8; 2048];
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                if let Ok(p) = Packet::parse(&buf[..n]) {
                    out.push(p);
                }
            }
            Err(_) => break,
        }
    }
    out
}

#[test]
fn two_daemons_resolve_status_send_and_reassemble() {
    let s = Scratch::new("pair");
    let ports = ports();
    let a = Daemon::start(spec(&s.0, "a", "NODEA", ip(2), ports, ""));
    let b = Daemon::start(spec(
        &s.0,
        "b",
        "NODEB",
        ip(3),
        ports,
        "[node.names]\n".replace("[node.names]\n", "").as_str(),
    ));
    let na = a.wait_names(&["NODEA<00>", "TESTGROUP<00>"]);
    let nb = b.wait_names(&["NODEB<00>", "TESTGROUP<00>"]);
    assert!(
        na.iter().all(|(_, s)| *s == NameState::Registered),
        "{na:?}"
    );
    assert!(
        nb.iter().all(|(_, s)| *s == NameState::Registered),
        "{nb:?}"
    );

    // Lookup through the API (broadcast), positive and negative.
    let mut ca = a.client();
    let r = ca.lookup("NODEB<00>", None).unwrap();
    assert_eq!(r.addresses.len(), 1);
    assert_eq!(r.addresses[0].address, std::net::IpAddr::V4(ip(3)));
    assert!(!r.addresses[0].group);
    assert!(ca.lookup("NOSUCHNAME<00>", None).is_err());

    // Node status, standalone from an ephemeral port (like nmblookup -A).
    let out = run(&[
        "status",
        &ip(3).to_string(),
        "--port",
        &ports.0.to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"NODEB<00>") && names.contains(&"TESTGROUP<00>"),
        "{v}"
    );

    // B subscribes; A sends unique (resolved), group, and a 3,000-byte fragmented datagram.
    let mut cb = b.client();
    cb.subscribe(Subscription::default()).unwrap();
    let r = ca
        .send(SendArgs::new(
            "NODEB<00>",
            SendMode::Unique,
            b"hello unique",
        ))
        .unwrap();
    assert_eq!(r.to.to_string(), format!("{}:{}", ip(3), ports.1));
    assert_eq!(r.fragments, 1);
    let big: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut g = SendArgs::new("TESTGROUP<00>", SendMode::Group, &big);
    g.mailslot = Some("\\MAILSLOT\\TEST".into());
    let r = ca.send(g).unwrap();
    assert!(
        r.fragments >= 6,
        "3,000 bytes at 576 need 6+ fragments: {r:?}"
    );

    let mut got = Vec::new();
    let until = Instant::now() + Duration::from_secs(5);
    while got.len() < 2 && Instant::now() < until {
        if let Some(Event::Datagram(d)) = cb.next_event(Some(Duration::from_millis(500))).unwrap() {
            got.push(d);
        }
    }
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].msg_type, "direct_unique");
    assert_eq!(got[0].source, "NODEA<00>");
    assert_eq!(
        nbdgm_wire::hex::decode(&got[0].data_hex).unwrap(),
        b"hello unique"
    );
    assert_eq!(got[1].msg_type, "direct_group");
    assert_eq!(got[1].mailslot.as_deref(), Some("\\MAILSLOT\\TEST"));
    assert_eq!(got[1].fragments as usize, r.fragments as usize);
    let user = nbdgm_wire::hex::decode(&got[1].data_hex).unwrap();
    let ms = nbdgm_wire::mailslot::MailslotWrite::parse(&user).unwrap();
    assert_eq!(ms.data, big, "reassembled byte for byte");
    let st = b.stats();
    assert_eq!(counter(&st, "node.datagrams_reassembled"), 1, "{st}");
}

#[test]
fn reassembles_reordered_and_drops_incomplete_fragments() {
    let s = Scratch::new("reorder");
    let ports = ports();
    let b = Daemon::start(spec(&s.0, "b", "NODEB", ip(13), ports, ""));
    b.wait_names(&["NODEB<00>"]);
    let mut cb = b.client();
    cb.subscribe(Subscription {
        all: false,
        ..Default::default()
    })
    .unwrap();
    let sender = UdpSocket::bind((ip(14), 0)).unwrap();
    let src = match sender.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    };
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 253) as u8).collect();
    let to = (ip(13), ports.1);

    // Reversed order.
    let mut f = fragments(MsgType::DirectGroup, src, "NODEB<00>", &data, 0x4242, 500);
    assert!(f.len() >= 6);
    f.reverse();
    for p in &f {
        sender.send_to(p, to).unwrap();
    }
    // Shuffled, with a duplicate.
    let f2 = fragments(MsgType::DirectGroup, src, "NODEB<00>", &data, 0x4243, 700);
    for i in [2usize, 0, 4, 1, 1, 3] {
        if let Some(p) = f2.get(i) {
            sender.send_to(p, to).unwrap();
        }
    }
    for p in f2.iter().skip(5) {
        sender.send_to(p, to).unwrap();
    }
    // Incomplete: the last fragment never comes.
    let f3 = fragments(MsgType::DirectGroup, src, "NODEB<00>", &data, 0x4244, 500);
    for p in &f3[..f3.len() - 1] {
        sender.send_to(p, to).unwrap();
    }

    let mut got = Vec::new();
    let until = Instant::now() + Duration::from_secs(5);
    while got.len() < 2 && Instant::now() < until {
        if let Some(Event::Datagram(d)) = cb.next_event(Some(Duration::from_millis(300))).unwrap() {
            got.push(d);
        }
    }
    assert_eq!(got.len(), 2, "{got:?}\n{}", b.log_text());
    for d in &got {
        assert_eq!(nbdgm_wire::hex::decode(&d.data_hex).unwrap(), data);
        assert!(d.fragments >= 5);
    }
    // The incomplete set expires after FRAGMENT_TO (2 s) and is counted.
    let until = Instant::now() + Duration::from_secs(6);
    loop {
        let st = b.stats();
        if counter(&st, "node.dropped.fragment_timeout") >= 1 {
            assert!(counter(&st, "node.dropped.fragment_duplicate") >= 1, "{st}");
            break;
        }
        assert!(Instant::now() < until, "no fragment timeout counted: {st}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(cb
        .next_event(Some(Duration::from_millis(200)))
        .unwrap()
        .is_none());
}

#[test]
fn name_conflict_between_daemons_is_detected() {
    let s = Scratch::new("conflict");
    let ports = ports();
    let a = Daemon::start(spec(&s.0, "a", "SAMENAME", ip(22), ports, ""));
    a.wait_names(&["SAMENAME<00>"]);
    let b = Daemon::start(spec(&s.0, "b", "SAMENAME", ip(23), ports, ""));
    let nb = b.wait_names(&["SAMENAME<00>", "TESTGROUP<00>"]);
    let state =
        |l: &[(String, NameState)], n: &str| l.iter().find(|(x, _)| x == n).map(|(_, s)| *s);
    assert_eq!(
        state(&nb, "SAMENAME<00>"),
        Some(NameState::Conflict),
        "{nb:?}"
    );
    // Group names never conflict.
    assert_eq!(state(&nb, "TESTGROUP<00>"), Some(NameState::Registered));
    let na = a.wait_names(&["SAMENAME<00>"]);
    assert_eq!(state(&na, "SAMENAME<00>"), Some(NameState::Registered));
    assert!(counter(&a.stats(), "node.defences_sent") >= 1);
    assert!(b.log_text().contains("name conflict"), "{}", b.log_text());

    // An API client's registration of a taken name fails with `conflict`.
    let mut cb = b.client();
    let err = cb.register("SAMENAME<20>", false);
    assert!(err.is_ok(), "SAMENAME<20> is free: {err:?}");
    let mut ca = a.client();
    let err = ca.register("SAMENAME<20>", false).unwrap_err();
    assert!(err.to_string().contains("conflict"), "{err}");
}

#[test]
fn api_names_end_with_the_client_and_sigterm_releases() {
    let s = Scratch::new("release");
    let ports = ports();
    let mut a = Daemon::start(spec(&s.0, "a", "NODEREL", ip(32), ports, ""));
    a.wait_names(&["NODEREL<00>"]);
    // A listener on the broadcast address sees the release broadcasts.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    sock.set_reuse_address(true).unwrap();
    sock.bind(&SocketAddrV4::new(Ipv4Addr::new(127, 255, 255, 255), ports.0).into())
        .unwrap();
    let sock: UdpSocket = sock.into();

    {
        let mut c = a.client();
        c.register("APPNAME<2a>", false).unwrap();
        let names = c.names().unwrap();
        assert!(names.interfaces[0]
            .names
            .iter()
            .any(|n| n.name == "APPNAME<2a>" && n.owner.is_some()));
        // Another client may not release it.
        let err = a.client().release("APPNAME<2a>").unwrap_err();
        assert!(err.to_string().contains("denied"), "{err}");
    } // disconnect: released
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let names = a.client().names().unwrap();
        if !names.interfaces[0]
            .names
            .iter()
            .any(|n| n.name == "APPNAME<2a>")
        {
            break;
        }
        assert!(
            Instant::now() < until,
            "APPNAME<2a> not released: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = a.stop();
    assert_eq!(code, Some(0), "{}", a.log_text());
    let mut released = std::collections::HashSet::new();
    for p in answers(&sock, Duration::from_millis(300)) {
        if p.opcode() == nbns::Opcode::Release {
            if let Some(q) = p.questions.first() {
                released.insert(q.name.to_string());
            }
        }
    }
    assert!(released.contains("NODEREL<00>"), "{released:?}");
    assert!(released.contains("TESTGROUP<00>"), "{released:?}");
}

#[test]
fn sighup_reloads_and_keeps_names_and_subscribers() {
    let s = Scratch::new("hup");
    let ports = ports();
    let a = Daemon::start(spec(&s.0, "a", "NODEHUP", ip(42), ports, ""));
    a.wait_names(&["NODEHUP<00>"]);
    let mut c = a.client();
    c.register("KEEPME<2b>", false).unwrap();
    c.subscribe(Subscription::default()).unwrap();
    // Add an alias and reload.
    let text = std::fs::read_to_string(&a.config).unwrap().replace(
        "workgroup = \"TESTGROUP\"",
        "workgroup = \"TESTGROUP\"\naliases = [\"NEWALIAS\"]",
    );
    std::fs::write(&a.config, text).unwrap();
    a.signal(nix::sys::signal::Signal::SIGHUP);
    let names = a.wait_names(&["NEWALIAS<00>", "KEEPME<2b>", "NODEHUP<00>"]);
    assert!(
        names.iter().all(|(_, s)| *s == NameState::Registered),
        "{names:?}"
    );
    // The subscription survived: a datagram to us still arrives.
    let sender = UdpSocket::bind((ip(43), 0)).unwrap();
    let d = Datagram::data(
        MsgType::DirectUnique,
        NodeType::B,
        9,
        (ip(43), 138),
        "X<00>".parse().unwrap(),
        "NEWALIAS<00>".parse().unwrap(),
        b"after reload".to_vec(),
    );
    sender
        .send_to(&d.to_bytes().unwrap(), (ip(42), ports.1))
        .unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        match c.next_event(Some(Duration::from_millis(500))).unwrap() {
            Some(Event::Datagram(d)) => {
                assert_eq!(d.destination, "NEWALIAS<00>");
                break;
            }
            Some(_) => {} // name events
            None => assert!(Instant::now() < until, "no datagram after reload"),
        }
    }
    // Dropping the alias from the file releases it; the API client's name stays.
    let text = std::fs::read_to_string(&a.config)
        .unwrap()
        .replace("aliases = [\"NEWALIAS\"]\n", "");
    std::fs::write(&a.config, text).unwrap();
    a.signal(nix::sys::signal::Signal::SIGHUP);
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let names = c.names().unwrap();
        let list: Vec<&str> = names.interfaces[0]
            .names
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        if !list.contains(&"NEWALIAS<00>") {
            assert!(
                list.contains(&"KEEPME<2b>") && list.contains(&"NODEHUP<00>"),
                "{list:?}"
            );
            break;
        }
        assert!(
            Instant::now() < until,
            "NEWALIAS<00> not released: {list:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A broken file is refused and the daemon keeps running with the old one.
    std::fs::write(&a.config, "[node]\nnmae = 1\n").unwrap();
    a.signal(nix::sys::signal::Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    assert!(a.log_text().contains("reload failed"), "{}", a.log_text());
    assert!(c.names().is_ok());
}

#[test]
fn access_list_and_rate_limits_protect_a_legit_peer_from_a_flood() {
    let s = Scratch::new("flood");
    let ports = ports();
    let extra = "[access.datagram]\ndeny = [\"127.0.4.66/32\"]\n\n[limits]\nrx_per_source = { rate = 100.0, burst = 50 }\nreplies_per_source = { rate = 100.0, burst = 50 }\n";
    let a = Daemon::start(spec(&s.0, "a", "VICTIM", ip(52), ports, extra));
    a.wait_names(&["VICTIM<00>"]);

    // Denied source: its datagram is counted and never delivered.
    let mut c = a.client();
    c.subscribe(Subscription::default()).unwrap();
    let denied = UdpSocket::bind((Ipv4Addr::new(127, 0, 4, 66), 0)).unwrap();
    let d = Datagram::data(
        MsgType::DirectUnique,
        NodeType::B,
        1,
        (Ipv4Addr::new(127, 0, 4, 66), 138),
        "BAD<00>".parse().unwrap(),
        "VICTIM<00>".parse().unwrap(),
        b"x".to_vec(),
    );
    denied
        .send_to(&d.to_bytes().unwrap(), (ip(52), ports.1))
        .unwrap();
    assert!(c
        .next_event(Some(Duration::from_millis(500)))
        .unwrap()
        .is_none());
    assert_eq!(counter(&a.stats(), "runtime.acl_denied_datagram"), 1);

    // A flood of 30,000 queries from one source, and a legit peer asking 40 times
    // during the flood, 25 ms apart. Bounded: count and time.
    let flooder = UdpSocket::bind((ip(53), 0)).unwrap();
    let legit = UdpSocket::bind((ip(54), 0)).unwrap();
    let to = (ip(52), ports.0);
    let q = query("VICTIM<00>", 7);
    let flood = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(5);
        let mut sent = 0;
        while sent < 30_000 && Instant::now() < until {
            let _ = flooder.send_to(&q, to);
            sent += 1;
        }
        sent
    });
    let mut answered = 0;
    for i in 0..40u16 {
        legit.send_to(&query("VICTIM<00>", 1000 + i), to).unwrap();
        answered += answers(&legit, Duration::from_millis(25))
            .iter()
            .filter(|p| p.id == 1000 + i)
            .count()
            .min(1);
    }
    let sent = flood.join().unwrap();
    let st = a.stats();
    let limited = counter(&st, "runtime.rate_limited_rx");
    assert!(sent >= 10_000, "flood too small: {sent}");
    assert!(
        limited > sent as u64 / 2,
        "flood not limited: {limited} of {sent}\n{st}"
    );
    assert!(
        answered >= 36,
        "legit peer starved: {answered}/40 answered\n{st}"
    );
}

#[test]
fn no_reply_to_responses_and_no_negative_broadcast_answers() {
    let s = Scratch::new("noreply");
    let ports = ports();
    let a = Daemon::start(spec(&s.0, "a", "QUIET", ip(62), ports, ""));
    a.wait_names(&["QUIET<00>"]);
    let sock = UdpSocket::bind((ip(63), 0)).unwrap();
    let to = (ip(62), ports.0);
    // A response (R bit) for our name: never answered.
    let mut resp = Packet::parse(&query("QUIET<00>", 5)).unwrap();
    resp.flags |= nbns::FLAG_RESPONSE;
    sock.send_to(&resp.to_bytes().unwrap(), to).unwrap();
    // A broadcast query for an unknown name: never answered negatively.
    let mut bq = Packet::parse(&query("UNKNOWN<00>", 6)).unwrap();
    bq.flags |= nbns::FLAG_B;
    sock.send_to(&bq.to_bytes().unwrap(), to).unwrap();
    // Garbage of every size: never answered, counted.
    for n in 0..64usize {
        sock.send_to(&vec![0xA5; n], to).unwrap();
    }
    assert!(answers(&sock, Duration::from_millis(500)).is_empty());
    let st = a.stats();
    assert!(
        counter(&st, "node.dropped.malformed_name_packet") >= 60,
        "{st}"
    );
    assert!(
        counter(&st, "node.dropped.unsolicited_response") >= 1,
        "{st}"
    );
    // The daemon still serves.
    sock.send_to(&query("QUIET<00>", 8), to).unwrap();
    assert_eq!(answers(&sock, Duration::from_millis(500)).len(), 1);
}

#[test]
fn replaying_real_captures_to_the_daemon_is_handled() {
    let s = Scratch::new("replay");
    let ports = ports();
    let a = Daemon::start(spec(&s.0, "a", "REPLAY", ip(72), ports, "[limits]\nrx_per_source = { rate = 100000.0, burst = 100000 }\nreplies_per_source = { rate = 100000.0, burst = 100000 }\n"));
    a.wait_names(&["REPLAY<00>"]);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/captures");
    let sock = UdpSocket::bind((ip(73), 0)).unwrap();
    let (mut name_pkts, mut dgm_pkts) = (0u64, 0u64);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !["pcap", "pcapng", "cap"].contains(&ext) {
            continue;
        }
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        let Ok(mut reader) = nbdgm_capture::CaptureReader::new(std::io::BufReader::new(file))
        else {
            continue;
        };
        let mut n = 0;
        while let Some(Ok(u)) = reader.next_udp() {
            n += 1;
            if n > 3000 {
                break; // bounded per file
            }
            let port = if u.dst.port() == 137 || u.src.port() == 137 {
                ports.0
            } else {
                ports.1
            };
            if port == ports.0 {
                name_pkts += 1
            } else {
                dgm_pkts += 1
            }
            let _ = sock.send_to(&u.payload, (ip(72), port));
            if n % 64 == 0 {
                std::thread::sleep(Duration::from_millis(1)); // stay inside the socket buffer
            }
        }
    }
    assert!(name_pkts > 100 && dgm_pkts > 100, "{name_pkts} {dgm_pkts}");
    std::thread::sleep(Duration::from_millis(300));
    let st = a.stats();
    let rx = counter(&st, "runtime.rx_name") + counter(&st, "runtime.rx_datagram");
    assert!(
        rx >= (name_pkts + dgm_pkts) * 9 / 10,
        "received {rx} of {}\n{st}",
        name_pkts + dgm_pkts
    );
    // Still alive and answering, and its own name was never lost.
    let names = a.wait_names(&["REPLAY<00>"]);
    assert!(names
        .iter()
        .any(|(n, s)| n == "REPLAY<00>" && *s == NameState::Registered));
    assert!(!a.log_text().contains("panicked"));
    let mut c = a.client();
    assert!(c.stats().is_ok());
}

#[test]
fn bind_errors_and_bad_config_are_explained() {
    let s = Scratch::new("errors");
    let ports = ports();
    let holder = UdpSocket::bind((ip(82), ports.0)).unwrap();
    let cfg = spec(&s.0, "a", "BUSY", ip(82), ports, "").toml();
    let path = s.0.join("busy.toml");
    std::fs::write(&path, cfg).unwrap();
    let out = run(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in use"), "{err}");
    drop(holder);

    std::fs::write(
        &path,
        "[node]\nname = \"OK\"\n\n[datagram]\nmax_lenght = 5\n",
    )
    .unwrap();
    let out = run(&[
        "serve",
        "--check-config",
        "--config",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":5:") && err.contains("max_lenght"), "{err}");

    let out = run(&["serve", "--check-config", "--interface", "10.0.0.1/33"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--interface"));

    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/nbdgm.toml");
    let out = run(&[
        "serve",
        "--check-config",
        "--config",
        example.to_str().unwrap(),
        "--interface",
        "198.51.100.10/24",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn api_socket_is_0660_and_logs_peer_credentials() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new("api");
    let ports = ports();
    let a = Daemon::start(spec(&s.0, "a", "APIMODE", ip(92), ports, ""));
    let mode = std::fs::metadata(&a.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let mut c = a.client();
    let h = c.hello().unwrap();
    assert_eq!(h.server, "nbdgm");
    assert_eq!(h.interfaces[0].address, std::net::IpAddr::V4(ip(92)));
    std::thread::sleep(Duration::from_millis(100));
    let log = a.log_text();
    assert!(
        log.contains("uid") && log.contains(&std::process::id().to_string()),
        "{log}"
    );
}

#[test]
fn standalone_send_and_listen_without_a_daemon() {
    let s = Scratch::new("standalone");
    let ports = ports();
    let b = Daemon::start(spec(&s.0, "b", "TARGET", ip(102), ports, ""));
    b.wait_names(&["TARGET<00>"]);
    let mut cb = b.client();
    cb.subscribe(Subscription::default()).unwrap();
    // Standalone listener on the broadcast address (the daemons hold the unicast ones).
    let listener = bin()
        .args([
            "listen",
            "--standalone",
            "--interface",
            &format!("{}/8", ip(103)),
            "--bind",
            "127.255.255.255",
            "--port",
            &ports.1.to_string(),
            "--count",
            "1",
            "--timeout-s",
            "8",
            "--format",
            "ndjson",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Standalone send: resolves TARGET<00> by broadcast, sends unicast.
    let out = run(&[
        "send",
        "--standalone",
        "--interface",
        &format!("{}/8", ip(104)),
        "--bind",
        &ip(104).to_string(),
        "--port",
        &ports.1.to_string(),
        "--name-port",
        &ports.0.to_string(),
        "--to",
        "TARGET<00>",
        "--text",
        "standalone hi",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        match cb.next_event(Some(Duration::from_millis(500))).unwrap() {
            Some(Event::Datagram(d)) => {
                assert_eq!(
                    nbdgm_wire::hex::decode(&d.data_hex).unwrap(),
                    b"standalone hi"
                );
                assert_eq!(d.from.to_string(), format!("{}:{}", ip(104), ports.1));
                break;
            }
            Some(_) => {}
            None => assert!(Instant::now() < until, "standalone send not received"),
        }
    }
    // A broadcast reaches the standalone listener.
    standalone_broadcast(ip(104), ports.1, "\\MAILSLOT\\MESSNGR");
    let out = listener.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(v["nbdgm"]["type"], "BROADCAST", "{v}");
    assert_eq!(v["mailslot"]["name"], "\\MAILSLOT\\MESSNGR", "{v}");
    // Unresolvable name: exit 1.
    let out = run(&[
        "send",
        "--standalone",
        "--interface",
        &format!("{}/8", ip(104)),
        "--bind",
        &ip(104).to_string(),
        "--port",
        &ports.1.to_string(),
        "--name-port",
        &ports.0.to_string(),
        "--to",
        "NOBODY<00>",
        "--text",
        "x",
        "--timeout-ms",
        "2000",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--daemon` with `--interface` goes through the daemon, the interface applying to the
/// request (docs/cli.md "Daemon or standalone"): `listen` keeps the datagrams that
/// arrived on it, `send` sends from it, and an interface the daemon does not serve is the
/// daemon's error — never a silent switch to standalone.
#[test]
fn daemon_flag_with_interface_goes_through_the_daemon() {
    let s = Scratch::new("daemon-iface");
    let ports = ports();
    let a = Daemon::start(spec(&s.0, "a", "IFACEA", ip(120), ports, ""));
    a.wait_names(&["IFACEA<00>"]);
    let sock = a.socket.to_str().unwrap().to_string();
    let listen = |interface: &str, timeout: &str| {
        bin()
            .args([
                "listen",
                "--daemon",
                "--api-socket",
                &sock,
                "--interface",
                interface,
                "--all",
                "--count",
                "1",
                "--timeout",
                timeout,
                "--format",
                "ndjson",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let ours = listen(&format!("{}/8", ip(120)), "8s");
    let other = listen("127.0.9.9/8", "2s");
    std::thread::sleep(Duration::from_millis(500));
    // A broadcast from a standalone sender on another address reaches the daemon.
    standalone_broadcast(ip(121), ports.1, "\\MAILSLOT\\IFACE");
    let out = ours.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(v["interface"], ip(120).to_string(), "{v}");
    assert_eq!(v["mailslot"]["name"], "\\MAILSLOT\\IFACE", "{v}");
    // Filtered to an interface the daemon does not have: nothing, exit 1 at the timeout.
    let out = other.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    // send --daemon --interface: through the daemon, from that interface.
    let send = |interface: &str| {
        run(&[
            "send",
            "--daemon",
            "--api-socket",
            &sock,
            "--interface",
            interface,
            "--broadcast",
            "--mailslot",
            "\\MAILSLOT\\IFACE",
            "--text",
            "hi",
            "--format",
            "json",
        ])
    };
    let out = send(&format!("{}/8", ip(120)));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["via"], "daemon", "{v}");
    let out = send("127.0.9.9/8");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such interface"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `nbdgm listen` (text) shows a short escaped preview of user data that is not a
/// mailslot write: `--text hello` is seen as "hello", terminal escapes as `\x1b`.
#[test]
fn listen_text_previews_plain_user_data_escaped() {
    let ports = ports();
    let listener = bin()
        .args([
            "listen",
            "--standalone",
            "--interface",
            &format!("{}/8", ip(130)),
            "--bind",
            "127.255.255.255",
            "--port",
            &ports.1.to_string(),
            "--count",
            "2",
            "--timeout-s",
            "8",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let send = |payload: &[&str]| {
        let mut args = vec![
            "send".to_owned(),
            "--standalone".to_owned(),
            "--interface".to_owned(),
            format!("{}/8", ip(131)),
            "--bind".to_owned(),
            ip(131).to_string(),
            "--port".to_owned(),
            ports.1.to_string(),
            "--broadcast".to_owned(),
        ];
        args.extend(payload.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    };
    send(&["--text", "hello"]);
    std::thread::sleep(Duration::from_millis(100));
    // ESC [31m red ESC [0m CR LF, and a quote.
    let ansi = b"\x1b[31mred\x1b[0m say \"hi\"\r\n";
    send(&["--hex", &nbdgm_wire::hex::encode(ansi)]);
    let out = listener.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout} {out:?}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].contains("BROADCAST") && lines[0].ends_with(" data(5 bytes)=\"hello\""),
        "{stdout}"
    );
    assert!(
        lines[1].ends_with(r#" data(23 bytes)="\x1b[31mred\x1b[0m say \"hi\"\r\n""#),
        "{stdout}"
    );
    assert!(!out.stdout.contains(&0x1b), "raw ESC reached the terminal");
}
