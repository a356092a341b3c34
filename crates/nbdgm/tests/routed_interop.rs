//! Routed networks in network namespaces (issue 7 §1 interop, §4): two subnets,
//! 198.51.100.0/24 and 203.0.113.0/24, joined by a router that does not forward
//! broadcasts. Group datagrams from P-nodes through our NBDD reach every member exactly
//! once; DATAGRAM QUERY positive and negative answers decoded by tshark; M/H-nodes fall
//! back to broadcasting and P-nodes fail when the NBDD is gone; the NBDD's relay rate
//! caps a flood; and Samba nmbd as the WINS server for nbdgm P-nodes. Facts about nmbd:
//! /work/shared/design/SAMBA-LAB.md. Skipped locally without root, Samba and tshark; a
//! failure under CI=true.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_client::proto::{DatagramEvent, ErrorCode, Event, NameState, SendArgs, SendMode};
use nbdgm_client::{Client, Error};
use nbdgm_lab::{nmblookup, require_or_skip, Host, Lab, LabSpec, Nmbd, NmbdOptions, Tshark};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const NBDD_IP: &str = "198.51.100.10";

/// Start `nbdgm serve` inside a host's namespace on the real ports; `node` holds more
/// `[node]` keys (node_type, role).
fn daemon_in(host: &Host, dir: &std::path::Path, name: &str, node: &str, extra: &str) -> Daemon {
    let extra = format!("[node]\n{node}\n{extra}");
    Daemon::start(DaemonSpec::in_host(host, dir, name, &extra))
}

/// `[node]` keys of a P/M/H node using our NBNS (and NBDD) at 198.51.100.10.
fn client_node(node_type: &str) -> String {
    format!("node_type = \"{node_type}\"")
}

fn nbns_client(extra: &str) -> String {
    format!("[nbns]\nservers = [\"{NBDD_IP}\"]\n{extra}\n{ACCESS}")
}

/// Both subnets may talk to every daemon here. The default `access` lists (`auto`: the
/// interface's own subnet) drop everything that crosses the router: the NBNS's answers
/// to a P-node on the other subnet, and the NBNS/NBDD's requests from there.
const ACCESS: &str =
    "[access]\nname_service = { allow = [\"198.51.100.0/24\", \"203.0.113.0/24\"] }\n\
                      datagram = { allow = [\"198.51.100.0/24\", \"203.0.113.0/24\"] }\n";

/// The NBNS + NBDD daemon (a B-node itself).
const SERVER_NODE: &str = "role = [\"nbns\", \"nbdd\"]";

/// Wait until `names` are settled and assert they are Registered.
fn registered(d: &Daemon, names: &[&str]) {
    let list = d.wait_names(names);
    for n in names {
        assert!(
            list.iter()
                .any(|(x, s)| x == n && *s == NameState::Registered),
            "{n} not registered: {list:?}\n{}",
            d.log_text()
        );
    }
}

fn subscriber(d: &Daemon) -> Client {
    let mut c = d.client();
    c.subscribe(nbdgm_client::proto::Subscription::default())
        .unwrap();
    c
}

/// Datagram events carrying `payload` until `deadline`; after the first one keep
/// reading for `linger` more to catch duplicates.
fn copies_of(
    sub: &mut Client,
    payload: &[u8],
    deadline: Instant,
    linger: Duration,
) -> Vec<DatagramEvent> {
    copies_of_each(sub, &[payload], deadline, linger)
        .pop()
        .unwrap()
}

/// Datagram events carrying each of `payloads` (in that order) until `deadline`; once
/// every payload has arrived keep reading for `linger` more to catch duplicates.
/// Events with other data are ignored.
fn copies_of_each(
    sub: &mut Client,
    payloads: &[&[u8]],
    deadline: Instant,
    linger: Duration,
) -> Vec<Vec<DatagramEvent>> {
    let want: Vec<String> = payloads
        .iter()
        .map(|p| nbdgm_wire::hex::encode(p))
        .collect();
    let mut got: Vec<Vec<DatagramEvent>> = vec![Vec::new(); payloads.len()];
    let mut end = deadline;
    loop {
        let now = Instant::now();
        if now >= end {
            return got;
        }
        let wait = (end - now).min(Duration::from_millis(200));
        if let Some(Event::Datagram(ev)) = sub.next_event(Some(wait)).unwrap() {
            if let Some(i) = want
                .iter()
                .position(|w| ev.data_hex.eq_ignore_ascii_case(w))
            {
                got[i].push(ev);
                if got.iter().all(|g| !g.is_empty()) {
                    end = end.min(Instant::now() + linger);
                }
            }
        }
    }
}

fn payload(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(37).wrapping_add(tag as u32) as u8)
        .collect()
}

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

fn elapsed_ms(t: Instant) -> u128 {
    t.elapsed().as_millis()
}

/// Issue 7 §4: a P-node on 203.0.113.0/24 sends a group datagram to TESTGROUP<00>; the
/// NBDD on 198.51.100.0/24 relays it, every member (P-nodes on the other subnet) gets it
/// exactly once, byte for byte, with the sender's SOURCE_IP, and the sender gets none.
#[test]
fn group_datagram_through_the_nbdd_reaches_every_member_once() {
    if !require_or_skip("group_datagram_through_the_nbdd_reaches_every_member_once") {
        return;
    }
    let t0 = Instant::now();
    let s = Scratch::new("routed-members");
    let lab = Lab::new(LabSpec::two_subnets()).expect("lab");
    let hs = lab.add_host("s", "198.51.100.10/24").unwrap();
    let hm: Vec<Host> = [20, 30, 40]
        .iter()
        .enumerate()
        .map(|(i, o)| {
            lab.add_host(&format!("m{i}"), &format!("198.51.100.{o}/24"))
                .unwrap()
        })
        .collect();
    let hx = lab.add_host("x", "203.0.113.40/24").unwrap();

    let server = daemon_in(&hs, &s.0, "NBDDSRV", SERVER_NODE, ACCESS);
    registered(&server, &["NBDDSRV<00>", "TESTGROUP<00>"]);
    let members: Vec<Daemon> = hm
        .iter()
        .enumerate()
        .map(|(i, h)| {
            daemon_in(
                h,
                &s.0,
                &format!("PMEMBER{i}"),
                &client_node("p"),
                &nbns_client(""),
            )
        })
        .collect();
    let sender = daemon_in(&hx, &s.0, "PSENDER", &client_node("p"), &nbns_client(""));
    for (i, m) in members.iter().enumerate() {
        registered(m, &[&format!("PMEMBER{i}<00>"), "TESTGROUP<00>"]);
    }
    registered(&sender, &["PSENDER<00>", "TESTGROUP<00>"]);
    let nbns = server.stats();
    // Every P-node name (2 each) reached the NBNS.
    assert_eq!(counter(&nbns, "roles.nbns.granted"), 8, "{nbns}");
    let mut subs: Vec<Client> = members.iter().map(subscriber).collect();
    let mut own = subscriber(&sender);
    let mut srv_sub = subscriber(&server);
    let ready = Instant::now();

    let data = payload(1, 300);
    let r = sender
        .client()
        .send(SendArgs::new("TESTGROUP<00>", SendMode::Group, &data))
        .expect("group send through the NBDD");
    assert_eq!(r.to.to_string(), "198.51.100.10:138", "{r:?}");
    let sent = Instant::now();

    let deadline = Instant::now() + Duration::from_secs(5);
    for (i, sub) in subs.iter_mut().enumerate() {
        let got = copies_of(sub, &data, deadline, Duration::from_millis(1000));
        assert_eq!(
            got.len(),
            1,
            "member {i}: {got:?}\n{}",
            members[i].log_text()
        );
        let ev = &got[0];
        assert_eq!(ev.header_source, sa(hx.addr(), 138), "{ev:?}");
        assert_eq!(ev.from, sa(hs.addr(), 138), "relayed by the NBDD: {ev:?}");
        assert_eq!(ev.msg_type, "direct_group", "{ev:?}");
        assert_eq!(ev.source, "PSENDER<00>", "{ev:?}");
        assert_eq!(ev.destination, "TESTGROUP<00>", "{ev:?}");
        assert!(!ev.broadcast && ev.for_us, "{ev:?}");
        assert_eq!(nbdgm_wire::hex::decode(&ev.data_hex).unwrap(), data);
    }
    let first_copies = elapsed_ms(sent);
    // The sender is a TESTGROUP member too, but gets no copy of its own datagram.
    let mine = copies_of(
        &mut own,
        &data,
        Instant::now() + Duration::from_millis(300),
        Duration::ZERO,
    );
    assert!(mine.is_empty(), "sender got its own datagram: {mine:?}");
    // The NBDD's own node is a member by broadcast registration only; it sees the
    // datagram it relays (unicast to it), once.
    let at_srv = copies_of(
        &mut srv_sub,
        &data,
        Instant::now() + Duration::from_millis(300),
        Duration::from_millis(300),
    );
    assert!(at_srv.len() <= 1, "{at_srv:?}");

    let st = sender.stats();
    assert_eq!(counter(&st, "node.nbdd_queries_sent"), 1, "{st}");
    assert_eq!(counter(&st, "node.nbdd_positive"), 1, "{st}");
    assert_eq!(counter(&st, "node.nbdd_relayed"), 1, "{st}");
    assert_eq!(counter(&st, "node.nbdd_fallbacks"), 0, "{st}");
    let sv = server.stats();
    assert_eq!(counter(&sv, "roles.nbdd.relayed_packets"), 1, "{sv}");
    assert_eq!(counter(&sv, "roles.nbdd.relayed_copies"), 3, "{sv}");
    assert_eq!(counter(&sv, "roles.nbdd.queries_positive"), 1, "{sv}");
    eprintln!(
        "timings: setup+registrations {} ms, send→all copies checked {} ms, total {} ms \
         (at the NBDD's own node: {} copy)",
        ready.duration_since(t0).as_millis(),
        first_copies,
        elapsed_ms(t0),
        at_srv.len()
    );
}

/// Issue 7 §4: DATAGRAM QUERY REQUEST (0x14) answered positively (0x15) for a group with
/// members and negatively (0x16) for an unknown group; the P-node reports the failure.
/// Decoded by tshark on the NBDD's host.
#[test]
fn datagram_query_positive_and_negative_decoded_by_tshark() {
    if !require_or_skip("datagram_query_positive_and_negative_decoded_by_tshark") {
        return;
    }
    let t0 = Instant::now();
    let s = Scratch::new("routed-query");
    let lab = Lab::new(LabSpec::two_subnets()).expect("lab");
    let hs = lab.add_host("s", "198.51.100.10/24").unwrap();
    let hm = lab.add_host("m", "198.51.100.20/24").unwrap();
    let hx = lab.add_host("x", "203.0.113.40/24").unwrap();
    let cap = s.0.join("nbdd.pcap");
    let shark = Tshark::start(&hs, "udp port 138", &cap).expect("tshark");
    let server = daemon_in(&hs, &s.0, "NBDDSRV", SERVER_NODE, ACCESS);
    let member = daemon_in(&hm, &s.0, "PMEMBER", &client_node("p"), &nbns_client(""));
    let sender = daemon_in(&hx, &s.0, "PSENDER", &client_node("p"), &nbns_client(""));
    registered(&server, &["NBDDSRV<00>"]);
    registered(&member, &["PMEMBER<00>", "TESTGROUP<00>"]);
    registered(&sender, &["PSENDER<00>", "TESTGROUP<00>"]);
    let mut sub = subscriber(&member);

    let data = payload(2, 64);
    sender
        .client()
        .send(SendArgs::new("TESTGROUP<00>", SendMode::Group, &data))
        .expect("positive: relayed");
    let got = copies_of(
        &mut sub,
        &data,
        Instant::now() + Duration::from_secs(5),
        Duration::ZERO,
    );
    assert_eq!(got.len(), 1, "{got:?}");

    let t = Instant::now();
    let err = sender
        .client()
        .send(SendArgs::new("NOSUCHGROUP<00>", SendMode::Group, &data))
        .expect_err("negative answer: the P-node cannot send");
    let neg_ms = elapsed_ms(t);
    match &err {
        Error::Server { code, message } => {
            assert_eq!(*code, ErrorCode::NotFound, "{err:?}");
            assert!(message.to_ascii_lowercase().contains("nbdd"), "{message}");
        }
        e => panic!("unexpected error {e:?}"),
    }
    let st = sender.stats();
    assert_eq!(counter(&st, "node.nbdd_queries_sent"), 2, "{st}");
    assert_eq!(counter(&st, "node.nbdd_positive"), 1, "{st}");
    assert_eq!(counter(&st, "node.nbdd_negative"), 1, "{st}");
    assert_eq!(counter(&st, "node.nbdd_timeouts"), 0, "{st}");
    let sv = server.stats();
    assert_eq!(counter(&sv, "roles.nbdd.queries_received"), 2, "{sv}");
    assert_eq!(counter(&sv, "roles.nbdd.queries_negative"), 1, "{sv}");

    // dumpcap writes what it captured with some delay: wait until the file holds the
    // six frames (2 queries, 2 answers, DIRECT_GROUP in and out), then stop it.
    let until = Instant::now() + Duration::from_secs(10);
    while decode_nbdgm(shark.path()).lines().count() < 6 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(sender);
    let path = shark.stop().expect("tshark stop");
    let text = decode_nbdgm(&path);
    let rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect();
    let find = |ty: &str, name: &str, src: &str| -> Vec<&Vec<String>> {
        rows.iter()
            .filter(|r| {
                r.len() >= 5
                    && r[2] == ty
                    && r[4].to_ascii_uppercase().starts_with(name)
                    && r[0] == src
            })
            .collect()
    };
    let x = "203.0.113.40";
    // tshark prints nbdgm.type in decimal: 17 = 0x11 DIRECT_GROUP, 20 = 0x14 DATAGRAM
    // QUERY REQUEST, 21 = 0x15 POSITIVE, 22 = 0x16 NEGATIVE QUERY RESPONSE.
    for (name, answer) in [("TESTGROUP<00>", "21"), ("NOSUCHGROUP<00>", "22")] {
        let q = find("20", name, x);
        let a = find(answer, name, NBDD_IP);
        assert_eq!(q.len(), 1, "query for {name}:\n{text}");
        assert_eq!(a.len(), 1, "answer {answer} for {name}:\n{text}");
        assert_eq!(a[0][1], x, "{text}");
        assert_eq!(q[0][3], a[0][3], "DGM_ID echoed: {text}");
    }
    // The relayed datagram: DIRECT_GROUP from the sender to the NBDD, then to the member.
    assert_eq!(find("17", "TESTGROUP<00>", x).len(), 1, "{text}");
    assert!(
        rows.iter()
            .any(|r| r.len() >= 5 && r[0] == NBDD_IP && r[1] == "198.51.100.20" && r[2] == "17"),
        "{text}"
    );
    // Nothing is sent for NOSUCHGROUP after the negative answer.
    assert!(find("17", "NOSUCHGROUP<00>", x).is_empty(), "{text}");
    eprintln!(
        "timings: negative answer → error {neg_ms} ms, total {} ms",
        elapsed_ms(t0)
    );
}

/// Issue 7 §4: the NBNS/NBDD stops. M- and H-nodes (H with `[nbdd] address`) fall back
/// to broadcasting group datagrams on their subnet; a P-node's send fails (API error,
/// `nbdgm send` exit 1).
#[test]
fn nbdd_gone_m_and_h_broadcast_p_fails() {
    if !require_or_skip("nbdd_gone_m_and_h_broadcast_p_fails") {
        return;
    }
    let t0 = Instant::now();
    let s = Scratch::new("routed-fallback");
    let lab = Lab::new(LabSpec::two_subnets()).expect("lab");
    let hs = lab.add_host("s", "198.51.100.10/24").unwrap();
    let hm = lab.add_host("m", "198.51.100.20/24").unwrap();
    let hh = lab.add_host("h", "198.51.100.30/24").unwrap();
    let hl = lab.add_host("l", "198.51.100.40/24").unwrap();
    let hp = lab.add_host("p", "198.51.100.50/24").unwrap();
    let mut server = daemon_in(&hs, &s.0, "NBDDSRV", SERVER_NODE, ACCESS);
    registered(&server, &["NBDDSRV<00>"]);
    let m = daemon_in(&hm, &s.0, "MNODE", &client_node("m"), &nbns_client(""));
    let h = daemon_in(
        &hh,
        &s.0,
        "HNODE",
        &client_node("h"),
        &nbns_client(&format!("\n[nbdd]\naddress = \"{NBDD_IP}\"\n")),
    );
    let listener = daemon_in(&hl, &s.0, "LISTENER", "", "");
    let p = daemon_in(&hp, &s.0, "PNODE", &client_node("p"), &nbns_client(""));
    for (d, n) in [
        (&m, "MNODE<00>"),
        (&h, "HNODE<00>"),
        (&listener, "LISTENER<00>"),
        (&p, "PNODE<00>"),
    ] {
        registered(d, &[n, "TESTGROUP<00>"]);
    }
    // The NBNS knew the P/M/H names (unicast registrations).
    let sv = server.stats();
    assert_eq!(counter(&sv, "roles.nbns.granted"), 6, "{sv}");
    assert!(server.stop().is_some(), "NBDD daemon stopped");
    let mut sub = subscriber(&listener);

    let dm = payload(3, 120);
    let dh = payload(4, 120);
    let dp = payload(5, 120);
    let t = Instant::now();
    let send = |d: &Daemon, data: &[u8]| {
        let mut c = d.client();
        c.set_timeout(Duration::from_secs(15)).unwrap();
        c.send(SendArgs::new("TESTGROUP<00>", SendMode::Group, data))
    };
    let (rm, rh, rp, cli) = std::thread::scope(|sc| {
        let jm = sc.spawn(|| send(&m, &dm));
        let jh = sc.spawn(|| send(&h, &dh));
        let jp = sc.spawn(|| send(&p, &dp));
        let jc = sc.spawn(|| {
            hp.cmd(env!("CARGO_BIN_EXE_nbdgm"))
                .args([
                    "send",
                    "--daemon",
                    "--to",
                    "TESTGROUP<00>",
                    "--group",
                    "--text",
                    "from the cli",
                    "--timeout-ms",
                    "15000",
                    "--api-socket",
                ])
                .arg(&p.socket)
                .output()
                .unwrap()
        });
        (
            jm.join().unwrap(),
            jh.join().unwrap(),
            jp.join().unwrap(),
            jc.join().unwrap(),
        )
    });
    let fail_ms = elapsed_ms(t);
    let rm = rm.unwrap_or_else(|e| panic!("M-node send: {e:?}\n{}", m.log_text()));
    let rh = rh.unwrap_or_else(|e| panic!("H-node send: {e:?}\n{}", h.log_text()));
    assert_eq!(rm.to.to_string(), "198.51.100.255:138", "{rm:?}");
    assert_eq!(rh.to.to_string(), "198.51.100.255:138", "{rh:?}");
    match &rp {
        Err(Error::Server { code, message }) => {
            assert_eq!(*code, ErrorCode::NotFound, "{rp:?}");
            assert!(message.to_ascii_lowercase().contains("nbdd"), "{message}");
        }
        other => panic!("P-node send should fail: {other:?}"),
    }
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert_eq!(cli.status.code(), Some(1), "nbdgm send: {stderr}");
    assert!(stderr.to_ascii_lowercase().contains("nbdd"), "{stderr}");

    // The listener on the same subnet gets both broadcasts, from their senders.
    let all = copies_of_each(
        &mut sub,
        &[&dm, &dh, &dp],
        Instant::now() + Duration::from_secs(3),
        Duration::from_millis(300),
    );
    assert!(
        all[2].is_empty(),
        "the P-node must not broadcast: {:?}",
        all[2]
    );
    for (got, from) in [(&all[0], hm.addr()), (&all[1], hh.addr())] {
        assert_eq!(
            got.len(),
            1,
            "from {from}: {got:?}\n{}",
            listener.log_text()
        );
        assert_eq!(got[0].from, sa(from, 138));
        assert_eq!(got[0].header_source, sa(from, 138));
        assert!(got[0].broadcast, "{:?}", got[0]);
        assert_eq!(got[0].msg_type, "direct_group");
    }
    for (d, what) in [(&m, "M"), (&h, "H")] {
        let st = d.stats();
        assert!(counter(&st, "node.nbdd_fallbacks") >= 1, "{what}: {st}");
        assert!(counter(&st, "node.nbdd_timeouts") >= 1, "{what}: {st}");
        assert!(counter(&st, "node.nbdd_queries_sent") >= 3, "{what}: {st}");
    }
    let st = p.stats();
    assert_eq!(counter(&st, "node.nbdd_fallbacks"), 0, "{st}");
    assert_eq!(counter(&st, "node.nbdd_timeouts"), 2, "{st}");
    eprintln!(
        "timings: NBDD silent → fallback/failure {fail_ms} ms, total {} ms",
        elapsed_ms(t0)
    );
}

/// A DIRECT_GROUP datagram to TESTGROUP<00> from FLOODER<00> at `src`.
fn flood_packet(src: Ipv4Addr, id: u16, data: &[u8]) -> Vec<u8> {
    use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
    use nbdgm_wire::Name;
    let d: Datagram = Datagram {
        msg_type: MsgType::DirectGroup,
        flags: Flags {
            more: false,
            first: true,
            node_type: NodeType::P,
            reserved: 0,
        },
        id,
        source_ip: src,
        source_port: 138,
        body: Body::Data {
            length: None,
            offset: 0,
            body: DataBody::Names {
                source_name: Name::new("FLOODER", 0).unwrap(),
                destination_name: Name::new("TESTGROUP", 0).unwrap(),
                user_data: data.to_vec(),
            },
        },
    };
    d.to_bytes().unwrap()
}

/// Issue 7 §4: a flood of relayable group datagrams from one sender through the NBDD
/// to a group of 3 members: the relay rate per source bounds bytes out, the
/// amplification stays below 1 and the drop counters count the rest.
#[test]
fn nbdd_amplification_bounded_under_a_flood() {
    if !require_or_skip("nbdd_amplification_bounded_under_a_flood") {
        return;
    }
    const RATE: f64 = 4096.0;
    const BURST: f64 = 8192.0;
    const PACKETS: u16 = 5000;
    let t0 = Instant::now();
    let s = Scratch::new("routed-flood");
    let lab = Lab::new(LabSpec::two_subnets()).expect("lab");
    let hs = lab.add_host("s", "198.51.100.10/24").unwrap();
    let hm: Vec<Host> = [20, 30, 40]
        .iter()
        .enumerate()
        .map(|(i, o)| {
            lab.add_host(&format!("m{i}"), &format!("198.51.100.{o}/24"))
                .unwrap()
        })
        .collect();
    let hx = lab.add_host("x", "203.0.113.40/24").unwrap();
    let server = daemon_in(
        &hs,
        &s.0,
        "NBDDSRV",
        SERVER_NODE,
        // The daemon's own per-source receive limit (200 packets/s by default) would stop
        // most of the flood before the NBDD: raised, so the NBDD's relay cap is measured.
        &format!(
            "[nbdd_server]\npolicy = \"allow_list\"\nallow = [\"203.0.113.0/24\"]\n\
             relay_bytes_per_source_per_s = {RATE:.1}\nrelay_burst_bytes = {BURST}\n{ACCESS}\n\
             [limits]\nrx_per_source = {{ rate = 100000.0, burst = 10000 }}\n"
        ),
    );
    registered(&server, &["NBDDSRV<00>"]);
    let members: Vec<Daemon> = hm
        .iter()
        .enumerate()
        .map(|(i, h)| {
            daemon_in(
                h,
                &s.0,
                &format!("PMEMBER{i}"),
                &client_node("p"),
                &nbns_client(""),
            )
        })
        .collect();
    for (i, m) in members.iter().enumerate() {
        registered(m, &[&format!("PMEMBER{i}<00>"), "TESTGROUP<00>"]);
    }

    // The flood: 5,000 packets of 200 bytes of user data, 25 every 10 ms (about 2 s).
    let src = hx.addr();
    let flood_start = Instant::now();
    let sent = hx
        .in_netns(move || {
            let sock = UdpSocket::bind((src, 138)).unwrap();
            let data = payload(6, 200);
            let mut n = 0u64;
            for id in 0..PACKETS {
                let p = flood_packet(src, id, &data);
                if sock.send_to(&p, (NBDD_IP, 138)).is_ok() {
                    n += 1;
                }
                if id % 25 == 24 {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            n
        })
        .unwrap();
    let flood_ms = elapsed_ms(flood_start);
    assert_eq!(sent, PACKETS as u64);
    // Wait until the NBDD has taken in everything it is going to (packets_in stable).
    let mut last = u64::MAX;
    let until = Instant::now() + Duration::from_secs(10);
    let st = loop {
        let st = server.stats();
        let n = counter(&st, "roles.nbdd.packets_in");
        if n == last {
            break st;
        }
        last = n;
        assert!(Instant::now() < until, "packets_in keeps changing: {st}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let window = flood_start.elapsed().as_secs_f64();
    let nb = &st["interfaces"][0]["roles"]["nbdd"];
    let bytes_in = counter(&st, "roles.nbdd.bytes_in");
    let bytes_out = counter(&st, "roles.nbdd.bytes_out");
    let packets_in = counter(&st, "roles.nbdd.packets_in");
    let copies = counter(&st, "roles.nbdd.relayed_copies");
    let rate_drops = counter(&st, "roles.nbdd.drops.rate_limited");
    let copies_limited = counter(&st, "roles.nbdd.copies_rate_limited");
    let ratio = bytes_out as f64 / bytes_in as f64;
    // Whatever went out was paid from the source's bucket: burst + rate × time.
    let bound_bytes = BURST + RATE * window;
    let bound_ratio = bound_bytes / bytes_in as f64;
    eprintln!(
        "flood: {sent} packets sent in {flood_ms} ms; NBDD packets_in {packets_in}, bytes_in \
         {bytes_in}, bytes_out {bytes_out}, relayed_copies {copies}, drops.rate_limited \
         {rate_drops}, copies_rate_limited {copies_limited}; amplification bytes_out/bytes_in \
         = {ratio:.4} (bound {bound_ratio:.4} = ({BURST} + {RATE} B/s × {window:.2} s) / \
         bytes_in); total {} ms",
        elapsed_ms(t0)
    );
    assert!(packets_in >= PACKETS as u64 * 9 / 10, "{nb}");
    assert!(copies > 0, "some copies are relayed: {nb}");
    assert!(
        (bytes_out as f64) <= bound_bytes,
        "bytes_out {bytes_out} > {bound_bytes}: {nb}"
    );
    assert!(ratio <= bound_ratio && ratio < 1.0, "ratio {ratio}: {nb}");
    assert!(rate_drops + copies_limited > 0, "{nb}");
    assert!(rate_drops > 0, "{nb}");
    // The members got what was relayed, no more.
    let mut delivered = 0;
    for m in &members {
        delivered += counter(&m.stats(), "node.datagrams_delivered");
    }
    assert!(
        delivered <= copies,
        "delivered {delivered} > relayed {copies}"
    );
}

/// Issue 7 §1 interop: Samba nmbd (`wins support = yes`) on 198.51.100.10 is the NBNS
/// of two nbdgm P-nodes, one on each subnet. Their registrations reach the WINS
/// (nmblookup -R resolves them), `nbdgm lookup` resolves names through it, and a
/// DIRECT_UNIQUE datagram to a name resolved via WINS crosses the router.
#[test]
fn nmbd_wins_is_the_nbns_of_nbdgm_p_nodes() {
    if !require_or_skip("nmbd_wins_is_the_nbns_of_nbdgm_p_nodes") {
        return;
    }
    let t0 = Instant::now();
    let s = Scratch::new("routed-wins");
    let lab = Lab::new(LabSpec::two_subnets()).expect("lab");
    let ha = lab.add_host("a", "198.51.100.10/24").unwrap();
    let hb = lab.add_host("b", "198.51.100.20/24").unwrap();
    let hc = lab.add_host("c", "198.51.100.30/24").unwrap();
    let hd = lab.add_host("d", "203.0.113.40/24").unwrap();
    let nmbd = Nmbd::start(
        &ha,
        NmbdOptions {
            extra_global: vec!["wins support = yes".into()],
            ..NmbdOptions::default()
        },
    )
    .expect("nmbd");
    // The WINS answers for its own name once it is up.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let r = nmblookup(&hc, ["-U", NBDD_IP, "--recursion", "SAMBAA"]).unwrap();
        if r.addresses("SAMBAA") == vec![ha.addr()] {
            break;
        }
        assert!(
            Instant::now() < until,
            "WINS does not answer: {r:?}\n{}",
            nmbd.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let wins_up = Instant::now();
    let wins = |node_type: &str| format!("node_type = \"{node_type}\"");
    let b = daemon_in(&hb, &s.0, "WINSNODEB", &wins("p"), &nbns_client(""));
    let d = daemon_in(&hd, &s.0, "WINSNODED", &wins("p"), &nbns_client(""));
    registered(&b, &["WINSNODEB<00>", "TESTGROUP<00>"]);
    registered(&d, &["WINSNODED<00>", "TESTGROUP<00>"]);
    let st = d.stats();
    assert!(
        counter(&st, "node.nbns_registrations_accepted") >= 2,
        "{st}"
    );
    // The WINS has both names: nmblookup from a third host.
    for (name, addr) in [("WINSNODED", hd.addr()), ("WINSNODEB", hb.addr())] {
        let r = nmblookup(&hc, ["-U", NBDD_IP, "--recursion", name]).unwrap();
        assert_eq!(
            r.addresses(name),
            vec![addr],
            "{r:?}\n{}",
            tail(&nmbd.log(), 40)
        );
    }
    // nbdgm lookup on the P-node across the router: the other node's name and nmbd's.
    for (name, addr) in [("WINSNODEB", hb.addr()), ("SAMBAA", ha.addr())] {
        let out = hd
            .cmd(env!("CARGO_BIN_EXE_nbdgm"))
            .args([
                "lookup",
                name,
                "--daemon",
                "--format",
                "json",
                "--api-socket",
            ])
            .arg(&d.socket)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "lookup {name}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(&addr.to_string()), "lookup {name}: {text}");
    }
    // The resolution went to the WINS by unicast, not by broadcast.
    let st = d.stats();
    assert_eq!(counter(&st, "node.broadcast_fallbacks"), 0, "{st}");

    // A DIRECT_UNIQUE datagram by name, resolved via WINS, across the router.
    let mut sub = subscriber(&b);
    let data = payload(7, 400);
    let r = d
        .client()
        .send(SendArgs::new("WINSNODEB<00>", SendMode::Unique, &data))
        .expect("unique send resolved via WINS");
    assert_eq!(r.to.to_string(), "198.51.100.20:138", "{r:?}");
    let got = copies_of(
        &mut sub,
        &data,
        Instant::now() + Duration::from_secs(5),
        Duration::from_millis(300),
    );
    assert_eq!(got.len(), 1, "{got:?}\n{}", b.log_text());
    assert_eq!(got[0].msg_type, "direct_unique");
    assert_eq!(got[0].from, sa(hd.addr(), 138));
    assert_eq!(got[0].source, "WINSNODED<00>");
    assert_eq!(got[0].destination, "WINSNODEB<00>");
    eprintln!(
        "timings: nmbd start → WINS answers {} ms, registrations+checks+datagram {} ms, \
         total {} ms",
        wins_up.duration_since(t0).as_millis(),
        elapsed_ms(wins_up),
        elapsed_ms(t0)
    );
}

/// `ip.src|ip.dst|nbdgm.type|nbdgm.dgram_id|nbdgm.destination_name` of every NBDGM
/// frame in a capture (a partial file is fine).
fn decode_nbdgm(path: &std::path::Path) -> String {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args([
            "-Y",
            "nbdgm",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "nbdgm.type",
            "-e",
            "nbdgm.dgram_id",
            "-e",
            "nbdgm.destination_name",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A daemon serving two interfaces of one host registers its unique names with Samba's
/// WINS by multi-homed registration (opcode 0xF, MS-NBTE §3.1.4.1) from each address,
/// and the WINS ends up with both addresses for the name.
#[test]
fn multihomed_registration_with_nmbd_wins() {
    if !require_or_skip("multihomed_registration_with_nmbd_wins") {
        return;
    }
    let s = Scratch::new("routed-mh");
    let lab = Lab::new(LabSpec::two_subnets()).expect("lab");
    let ha = lab.add_host("a", "198.51.100.10/24").unwrap();
    let hb = lab.add_host("b", "198.51.100.20/24").unwrap();
    let hc = lab.add_host("c", "198.51.100.30/24").unwrap();
    // A second address on b's interface: b is a multi-homed host.
    let out = hb
        .cmd("ip")
        .args(["addr", "add", "198.51.100.21/24", "dev", hb.iface()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nmbd = Nmbd::start(
        &ha,
        NmbdOptions {
            extra_global: vec!["wins support = yes".into()],
            ..NmbdOptions::default()
        },
    )
    .expect("nmbd");
    let until = Instant::now() + Duration::from_secs(30);
    while nmblookup(&hc, ["-U", NBDD_IP, "--recursion", "SAMBAA"])
        .unwrap()
        .addresses("SAMBAA")
        .is_empty()
    {
        assert!(
            Instant::now() < until,
            "WINS does not answer\n{}",
            nmbd.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let extra = format!(
        "{}\n[[interface]]\naddress = \"198.51.100.21/24\"\n",
        nbns_client("")
    );
    let b = daemon_in(&hb, &s.0, "WINSMH", &client_node("h"), &extra);
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let st = b.stats();
        let ifs = st["interfaces"].as_array().cloned().unwrap_or_default();
        let sent: u64 = ifs
            .iter()
            .map(|i| {
                i["node"]["multihomed_registrations_sent"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .sum();
        let accepted: u64 = ifs
            .iter()
            .map(|i| {
                i["node"]["nbns_registrations_accepted"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .sum();
        if ifs.len() == 2 && sent >= 2 && accepted >= 4 {
            break;
        }
        assert!(
            Instant::now() < until,
            "multi-homed registration: {st}\n{}\nnmbd:\n{}",
            b.log_text(),
            tail(&nmbd.log(), 60)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The WINS answers with both addresses of the name.
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let r = nmblookup(&hc, ["-U", NBDD_IP, "--recursion", "WINSMH"]).unwrap();
        let mut got = r.addresses("WINSMH");
        got.sort();
        if got
            == vec![
                Ipv4Addr::new(198, 51, 100, 20),
                Ipv4Addr::new(198, 51, 100, 21),
            ]
        {
            break;
        }
        assert!(
            Instant::now() < until,
            "WINS has {got:?} for WINSMH\n{}\nnmbd:\n{}",
            b.log_text(),
            tail(&nmbd.log(), 80)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
