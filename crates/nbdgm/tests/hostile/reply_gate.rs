//! Attack: reflection and amplification (issue 12 item 2). An attacker on the served
//! subnet spoofs a victim's address as the UDP source of requests; every answer goes
//! to the victim. On loopback the "spoofed" source is simply a socket bound to the
//! victim's address, which also counts what arrives. For every request kind that gets
//! an answer (node NAME QUERY and NODE STATUS, DATAGRAM ERROR, the browser's
//! GetBackupListRequest, the NBNS role's query, the NBDD role's DATAGRAM QUERY) the
//! bytes arriving at the victim ÷ the bytes sent must stay within the default factor
//! (`[limits] reply_amplification`), and a flood gets no more answers than the
//! per-destination reply rate allows.
//!
//! `cargo test --release -p nbdgm --test hostile reply_gate -- --nocapture` prints the
//! table of ratios used in docs/BENCHMARKS.md ("Amplification").

use crate::common::*;
use nbdgm_wire::browser::{Announcement, BrowserFrame, GetBackupListRequest, ServerType};
use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// The default `[limits] reply_amplification`.
const FACTOR: f64 = 4.0;
/// The default `[limits] replies_per_source`.
const REPLY_RATE: f64 = 50.0;
const REPLY_BURST: f64 = 100.0;

fn ip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 40, d)
}

fn name(s: &str) -> Name {
    s.parse().unwrap()
}

fn ns_header(id: u16, flags: u16, qd: u16, ar: u16) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [id, flags, qd, 0, 0, ar] {
        v.extend_from_slice(&w.to_be_bytes());
    }
    v
}

/// NAME QUERY REQUEST (unicast, RD) or NODE STATUS REQUEST for `n`.
fn query(id: u16, n: &Name, nbstat: bool) -> Vec<u8> {
    let mut v = ns_header(id, if nbstat { 0 } else { 0x0100 }, 1, 0);
    n.emit(&mut v);
    v.extend_from_slice(&[0, if nbstat { 0x21 } else { 0x20 }, 0, 1]);
    v
}

/// Unicast NAME REGISTRATION REQUEST of a group name at `at`.
fn group_registration(id: u16, n: &Name, at: Ipv4Addr) -> Vec<u8> {
    let mut v = ns_header(id, 0x2900, 1, 1);
    n.emit(&mut v);
    v.extend_from_slice(&[0, 0x20, 0, 1, 0xC0, 0x0C, 0, 0x20, 0, 1]);
    v.extend_from_slice(&300_000u32.to_be_bytes());
    v.extend_from_slice(&[0, 6, 0x80, 0]);
    v.extend_from_slice(&at.octets());
    v
}

fn datagram(msg_type: MsgType, src: SocketAddrV4, from: &Name, to: Name, data: Vec<u8>) -> Vec<u8> {
    Datagram {
        msg_type,
        flags: Flags {
            more: false,
            first: true,
            node_type: NodeType::B,
            reserved: 0,
        },
        id: 0x5151,
        source_ip: *src.ip(),
        source_port: src.port(),
        body: Body::Data {
            length: None,
            offset: 0,
            body: DataBody::Names {
                source_name: from.clone(),
                destination_name: to,
                user_data: data,
            },
        },
    }
    .to_bytes()
    .unwrap()
}

fn browse_frame(f: &BrowserFrame) -> Vec<u8> {
    MailslotWrite::new(BROWSE, f.to_bytes().unwrap())
        .to_bytes()
        .unwrap()
}

/// DATAGRAM QUERY REQUEST (0x14) for `n` from `src`.
fn datagram_query(src: SocketAddrV4, n: &Name) -> Vec<u8> {
    let mut v = vec![0x14, 0x02, 0x61, 0x62];
    v.extend_from_slice(&src.ip().octets());
    v.extend_from_slice(&src.port().to_be_bytes());
    n.emit(&mut v);
    v
}

fn local(s: &UdpSocket) -> SocketAddrV4 {
    match s.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    }
}

/// A victim: every packet arriving at its address and port is counted.
struct Victim {
    sock: UdpSocket,
}

impl Victim {
    fn new(d: u8) -> Victim {
        let sock = UdpSocket::bind((ip(d), 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Victim { sock }
    }

    fn addr(&self) -> SocketAddrV4 {
        local(&self.sock)
    }

    /// Send `requests` (spaced by `gap`) to `to`, then read what arrives until it is
    /// quiet for `quiet`. Returns (bytes sent, bytes received, packets received).
    fn attack(
        &self,
        requests: &[Vec<u8>],
        to: SocketAddrV4,
        gap: Duration,
        quiet: Duration,
    ) -> (u64, u64, u64) {
        let mut sent = 0u64;
        let (mut got, mut pkts) = (0u64, 0u64);
        let mut buf = vec![0u8; 65_536];
        for r in requests {
            sent += self.sock.send_to(r, to).unwrap() as u64;
            if gap.is_zero() {
                continue; // a flood: read it all afterwards
            }
            while let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                got += n as u64;
                pkts += 1;
            }
            std::thread::sleep(gap);
        }
        let mut last = Instant::now();
        let until = Instant::now() + Duration::from_secs(10);
        while last.elapsed() < quiet && Instant::now() < until {
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                got += n as u64;
                pkts += 1;
                last = Instant::now();
            }
        }
        (sent, got, pkts)
    }
}

struct Row {
    kind: &'static str,
    sent: u64,
    got: u64,
    answers: u64,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.got as f64 / self.sent.max(1) as f64
    }
}

fn print_table(rows: &[Row]) {
    println!("\n| request | requests × bytes | bytes in | bytes out | answers | out ÷ in |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.2} |",
            r.kind,
            r.sent,
            r.sent,
            r.got,
            r.answers,
            r.ratio()
        );
    }
}

#[test]
fn every_answer_passes_the_reply_gate() {
    let s = Scratch::new("hostile-reply-gate");
    let ports = ports();
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0,
        "gate",
        "GATEKEEP",
        ip(1),
        ports,
        "[node]\nrole = [\"nbns\", \"nbdd\"]\n\n[browser]\nannounce = true\nlocal_master = true\n\
         os_level = 60\npreferred_master = true\n",
    ));
    d.wait_names(&["GATEKEEP<00>"]);
    let name_port = SocketAddrV4::new(ip(1), ports.0);
    let dgm_port = SocketAddrV4::new(ip(1), ports.1);
    let mut rows = Vec::new();
    let quiet = Duration::from_millis(400);
    let gap = Duration::from_millis(25);

    // The NBNS role: a group with 40 members (each registered from its own address).
    let group = name("BIGGROUP<20>");
    for k in 0..40u8 {
        let m = UdpSocket::bind((ip(100 + k), 0)).unwrap();
        m.send_to(
            &group_registration(0x100 + u16::from(k), &group, ip(100 + k)),
            name_port,
        )
        .unwrap();
    }
    // The browser: wait until we are master, then fill the list with 120 servers that
    // announce the backup-browser bit, each from its own address, twice.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let r = d.client().browse(None).expect("browse");
        if r.interfaces[0].role == "master" {
            break;
        }
        assert!(
            Instant::now() < until,
            "not master: {r:?}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for round in 0..2 {
        for k in 0..120u8 {
            let a = UdpSocket::bind((Ipv4Addr::new(127, 0, 42, k + 1), ports.1)).unwrap();
            let server = format!("BACKUPSERVER{k:03}");
            let f = BrowserFrame::HostAnnouncement(Announcement {
                periodicity_ms: 720_000,
                server_name: server.clone(),
                os_major: 10,
                server_type: ServerType::WORKSTATION
                    | ServerType::SERVER
                    | ServerType::POTENTIAL_BROWSER
                    | ServerType::BACKUP_BROWSER,
                comment: "x".into(),
                ..Default::default()
            });
            let bytes = datagram(
                MsgType::DirectGroup,
                local(&a),
                &Name::new(&server, 0).unwrap(),
                Name::new("TESTGROUP", 0x1D).unwrap(),
                browse_frame(&f),
            );
            a.send_to(&bytes, dgm_port).unwrap();
        }
        if round == 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    std::thread::sleep(Duration::from_millis(500));

    // 1. NAME QUERY for our name.
    let v = Victim::new(10);
    let reqs: Vec<_> = (0..20)
        .map(|i| query(i, &name("GATEKEEP<00>"), false))
        .collect();
    let (sent, got, answers) = v.attack(&reqs, name_port, gap, quiet);
    rows.push(Row {
        kind: "NAME QUERY (node)",
        sent,
        got,
        answers,
    });
    // 2. NODE STATUS.
    let v = Victim::new(11);
    let reqs: Vec<_> = (0..20).map(|i| query(i, &name("*<00>"), true)).collect();
    let (sent, got, answers) = v.attack(&reqs, name_port, gap, quiet);
    rows.push(Row {
        kind: "NODE STATUS (node)",
        sent,
        got,
        answers,
    });
    // 3. DATAGRAM ERROR: a DIRECT_UNIQUE datagram to a name we do not hold.
    let v = Victim::new(12);
    let reqs: Vec<_> = (0..20)
        .map(|_| {
            datagram(
                MsgType::DirectUnique,
                v.addr(),
                &name("SENDER<00>"),
                name("NOBODYHERE<00>"),
                Vec::new(),
            )
        })
        .collect();
    let (sent, got, answers) = v.attack(&reqs, dgm_port, gap, quiet);
    rows.push(Row {
        kind: "DATAGRAM ERROR (node)",
        sent,
        got,
        answers,
    });
    // 4. GetBackupListRequest to TESTGROUP<1D> (we are master), asking for 255.
    let v = Victim::new(13);
    let req = BrowserFrame::GetBackupListRequest(GetBackupListRequest {
        count: 255,
        token: 7,
        ..Default::default()
    });
    let reqs: Vec<_> = (0..10)
        .map(|_| {
            datagram(
                MsgType::DirectGroup,
                v.addr(),
                &name("VICTIM<00>"),
                Name::new("TESTGROUP", 0x1D).unwrap(),
                browse_frame(&req),
            )
        })
        .collect();
    let (sent, got, answers) = v.attack(&reqs, dgm_port, Duration::from_millis(100), quiet);
    rows.push(Row {
        kind: "GetBackupListRequest (browser)",
        sent,
        got,
        answers,
    });
    // 5. NAME QUERY for the 40-member group: the NBNS role answers.
    let v = Victim::new(14);
    let reqs: Vec<_> = (0..20).map(|i| query(i, &group, false)).collect();
    let (sent, got, answers) = v.attack(&reqs, name_port, gap, quiet);
    rows.push(Row {
        kind: "NAME QUERY (NBNS role, 40-member group)",
        sent,
        got,
        answers,
    });
    // 6. DATAGRAM QUERY REQUEST: the NBDD role answers.
    let v = Victim::new(15);
    let reqs: Vec<_> = (0..20).map(|_| datagram_query(v.addr(), &group)).collect();
    let (sent, got, answers) = v.attack(&reqs, dgm_port, gap, quiet);
    rows.push(Row {
        kind: "DATAGRAM QUERY (NBDD role)",
        sent,
        got,
        answers,
    });

    // The rate bound: 400 NAME QUERYs as fast as possible.
    let v = Victim::new(16);
    let reqs: Vec<_> = (0..400)
        .map(|i| query(i, &name("GATEKEEP<00>"), false))
        .collect();
    let t0 = Instant::now();
    let (sent, got, answers) = v.attack(&reqs, name_port, Duration::ZERO, quiet);
    let elapsed = t0.elapsed().as_secs_f64();
    rows.push(Row {
        kind: "NAME QUERY flood (rate)",
        sent,
        got,
        answers,
    });

    print_table(&rows);
    let st = d.stats();
    println!("reply_gate: {}", st["interfaces"][0]["reply_gate"]);
    for r in &rows {
        assert!(
            r.ratio() <= FACTOR,
            "{}: {} bytes out for {} bytes in ({:.2}x > {FACTOR})\n{}",
            r.kind,
            r.got,
            r.sent,
            r.ratio(),
            st
        );
    }
    for r in &rows[..2] {
        assert!(r.answers > 0, "{}: legitimate requests get answers", r.kind);
    }
    let allowed = REPLY_BURST + REPLY_RATE * elapsed + 2.0;
    assert!(
        (answers as f64) <= allowed,
        "{answers} answers to a flood in {elapsed:.2} s > {allowed:.0}"
    );
    assert!(
        counter(&st, "reply_gate.refused.rate.name") > 0,
        "the flood was refused by rate: {st}"
    );
}
