//! Attack: terminal injection (issue 12 item 4), attacker (a) on the subnet, (d) a
//! peer answering our queries. Hostile strings (ESC sequences, C1 CSI, DEL, newlines,
//! bidi overrides) in an announced server, a mailslot name, browser and NETLOGON
//! strings, a WinPopup message and a node status answer must reach the text output of
//! `browse`, `listen`, `decode`, `dc-ping`, `message listen` and `status` escaped,
//! while `--format json` keeps the exact string.

use super::log_forging::{browse_datagram, raw_control};
use crate::common::*;
use nbdgm_client::proto::{Event as ApiEvent, Subscription};
use nbdgm_wire::browser::{Announcement, BrowserFrame};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, MESSNGR};
use nbdgm_wire::messenger::Message;
use nbdgm_wire::nbns::{self, NodeName, NodeStatus, Packet, RData, Record};
use nbdgm_wire::netlogon::{NetlogonMessage, PrimaryResponse};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

// Latin-1 fields (at most 15 characters for a server name).
const SERVER: &str = "EV\x1b[2K\u{9b}1A\n\x7f";
const COMMENT: &str = "c\x1b]0;owned\x07\r\u{85}x";
const MAILSLOT: &str = "\\MAILSLOT\\EV\x1b[2J\u{9b}\n";
const SENDER: &str = "EV\x1b[1A\x1b[2K";
const TEXT: &str = "hi\x1b]0;pwn\x07\u{9b}31m";
// UTF-16 field: any character.
const DC_NAME: &str = "DC\u{202e}gpj.exe\x1b[2K";

fn me(sock: &UdpSocket) -> SocketAddrV4 {
    match sock.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn assert_clean(what: &str, text: &str) {
    if let Some((i, c)) = raw_control(text) {
        panic!("{what}: raw {c:?} at byte {i} in the text output:\n{text}");
    }
    for l in text.lines() {
        assert!(!l.starts_with('\u{7f}'), "{what}: {l:?}");
    }
}

/// Wait (bounded) for a child that stops by itself after `--count`.
fn finish(mut c: Child, secs: u64) -> Output {
    let until = Instant::now() + Duration::from_secs(secs);
    while c.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = c.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    c.wait_with_output().unwrap()
}

fn mailslot_datagram(src: SocketAddrV4, dest: Name, slot: &str, data: Vec<u8>) -> Vec<u8> {
    let w = MailslotWrite::new(slot, data).to_bytes().unwrap();
    Datagram::data(
        MsgType::DirectUnique,
        NodeType::B,
        0x77,
        (*src.ip(), src.port()),
        Name::new("ATTACKER", 0).unwrap(),
        dest,
        w,
    )
    .to_bytes()
    .unwrap()
}

#[test]
fn terminal_browse_listen_and_message() {
    let s = Scratch::new("terminal-daemon");
    let ports = ports();
    let addr = Ipv4Addr::new(127, 0, 124, 10);
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0,
        "t",
        "TERM",
        addr,
        ports,
        "[node]\nmessenger = true\n[browser]\nlisten = true\n",
    ));
    d.wait_names(&["TERM<00>", "TERM<03>"]);
    let api = d.socket.to_str().unwrap().to_owned();
    let sock = UdpSocket::bind((Ipv4Addr::new(127, 0, 124, 11), 0)).unwrap();
    let src = me(&sock);

    // browse: a server announced with a hostile name and comment.
    let ann = BrowserFrame::HostAnnouncement(Announcement {
        periodicity_ms: 720_000,
        server_name: SERVER.into(),
        os_major: 6,
        os_minor: 1,
        server_type: 0x0000_1003,
        comment: COMMENT.into(),
        ..Default::default()
    });
    let b = browse_datagram(src, "ATTACKER", Name::new("TESTGROUP", 0x1D).unwrap(), &ann);
    sock.send_to(&b, (addr, ports.1)).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while counter(&d.stats(), "browser.servers") < 1 {
        assert!(Instant::now() < until, "not listed: {}", d.stats());
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = run(&["browse", "--daemon", "--api-socket", &api]);
    assert_eq!(text.status.code(), Some(0), "{text:?}");
    let json = run(&[
        "browse",
        "--daemon",
        "--api-socket",
        &api,
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let servers = v["interfaces"][0]["servers"].as_array().unwrap();
    assert!(
        servers
            .iter()
            .any(|x| x["name"] == SERVER && x["comment"] == COMMENT),
        "JSON keeps the exact strings: {v}"
    );
    assert_clean("browse", &stdout(&text));

    // listen and message listen: a hostile mailslot name, a hostile WinPopup message.
    // The API's own event must carry the exact name too, to a subscriber by name and to
    // one that filters on that very (Latin-1) mailslot name.
    let mut by_name = d.client();
    by_name
        .subscribe(Subscription {
            name: Some("TERM<00>".into()),
            ..Default::default()
        })
        .unwrap();
    let mut by_slot = d.client();
    by_slot
        .subscribe(Subscription {
            mailslot: Some(MAILSLOT.into()),
            ..Default::default()
        })
        .expect("a Latin-1 mailslot name is a valid filter");
    let spawn = |args: &[&str]| {
        bin()
            .args(args)
            .args(["--daemon", "--api-socket", &api, "--count", "1"])
            .args(["--timeout-s", "15"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let listeners = vec![
        spawn(&["listen", "--name", "TERM<00>"]),
        spawn(&["listen", "-v", "--name", "TERM<00>"]),
        spawn(&["listen", "--format", "ndjson", "--name", "TERM<00>"]),
        spawn(&["message", "listen"]),
        spawn(&["message", "listen", "--format", "ndjson"]),
    ];
    let slot = mailslot_datagram(
        src,
        Name::new("TERM", 0).unwrap(),
        MAILSLOT,
        b"data\x1b[2K".to_vec(),
    );
    let msg = mailslot_datagram(
        src,
        Name::new("TERM", 3).unwrap(),
        MESSNGR,
        Message::new(SENDER, "TERM", TEXT).to_bytes().unwrap(),
    );
    // The listeners subscribe asynchronously: send (bounded) until all have one.
    let mut kids: Vec<Option<Child>> = listeners.into_iter().map(Some).collect();
    let mut outs: Vec<Option<Output>> = kids.iter().map(|_| None).collect();
    for _ in 0..40 {
        sock.send_to(&slot, (addr, ports.1)).unwrap();
        sock.send_to(&msg, (addr, ports.1)).unwrap();
        std::thread::sleep(Duration::from_millis(250));
        for (k, o) in kids.iter_mut().zip(outs.iter_mut()) {
            if k.as_mut().is_some_and(|c| c.try_wait().unwrap().is_some()) {
                *o = k.take().map(|c| c.wait_with_output().unwrap());
            }
        }
        if kids.iter().all(Option::is_none) {
            break;
        }
    }
    for (k, o) in kids.iter_mut().zip(outs.iter_mut()) {
        if let Some(c) = k.take() {
            *o = Some(finish(c, 1));
        }
    }
    let outs: Vec<Output> = outs.into_iter().map(Option::unwrap).collect();
    let [l_text, l_verbose, l_json, m_text, m_json] = &outs[..] else {
        unreachable!()
    };
    let parse = |o: &Output| -> serde_json::Value {
        serde_json::from_str(stdout(o).trim()).unwrap_or_else(|e| panic!("{e}: {o:?}"))
    };
    for (who, c) in [("by name", &mut by_name), ("by mailslot", &mut by_slot)] {
        match c.next_event(Some(Duration::from_secs(5))).unwrap() {
            Some(ApiEvent::Datagram(ev)) => {
                assert_eq!(ev.mailslot.as_deref(), Some(MAILSLOT), "API event {who}")
            }
            other => panic!("API subscriber {who}: {other:?}"),
        }
    }
    let j = parse(l_json);
    // JSON keeps the mailslot name exactly as it was sent: ESC, the C1 octet 0x9b
    // (Latin-1, so U+009B) and the newline.
    assert_eq!(j["mailslot"]["name"], MAILSLOT, "{j}");
    let j = parse(m_json);
    assert_eq!(j["sender"], SENDER, "{j}");
    assert!(stdout(l_text).contains("MAILSLOT"), "{l_text:?}");
    assert!(stdout(m_text).contains("message from"), "{m_text:?}");
    assert_clean("listen", &stdout(l_text));
    assert_clean("listen -v", &stdout(l_verbose));
    assert_clean("message listen", &stdout(m_text));
}

/// A pcap (Ethernet, IPv4, UDP 138) of `payloads`.
fn pcap(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65535, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for (i, p) in payloads.iter().enumerate() {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let total = (20 + 8 + p.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[198, 51, 100, 66, 198, 51, 100, 255]);
        let mut sum = 0u32;
        for c in ip.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&138u16.to_be_bytes());
        f.extend_from_slice(&138u16.to_be_bytes());
        f.extend_from_slice(&((8 + p.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(p);
        for v in [
            1_700_000_000u32 + i as u32,
            0,
            f.len() as u32,
            f.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&f);
    }
    out
}

#[test]
fn terminal_decode() {
    let s = Scratch::new("terminal-decode");
    let src = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 66), 138);
    let ann = BrowserFrame::LocalMasterAnnouncement(Announcement {
        periodicity_ms: 720_000,
        server_name: SERVER.into(),
        server_type: 0x0000_1003,
        comment: COMMENT.into(),
        ..Default::default()
    });
    let packets = vec![
        browse_datagram(src, "ATTACKER", Name::new("TESTGROUP", 0x1E).unwrap(), &ann),
        mailslot_datagram(src, Name::new("TERM", 0).unwrap(), MAILSLOT, b"x".to_vec()),
        mailslot_datagram(
            src,
            Name::new("TERM", 3).unwrap(),
            MESSNGR,
            Message::new(SENDER, "TERM", TEXT).to_bytes().unwrap(),
        ),
    ];
    let file = s.0.join("hostile.pcap");
    std::fs::write(&file, pcap(&packets)).unwrap();
    let f = file.to_str().unwrap();
    let text = run(&["decode", f]);
    let verbose = run(&["decode", "-v", f]);
    let json = run(&["decode", "--format", "json", f]);
    let v: serde_json::Value =
        serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&json)));
    assert_eq!(v[0]["browser"]["server_name"], SERVER, "{v}");
    assert_eq!(v[0]["browser"]["comment"], COMMENT, "{v}");
    assert_eq!(v[1]["mailslot"]["name"], MAILSLOT, "{v}");
    assert_eq!(v[2]["messenger"]["sender"], SENDER, "{v}");
    assert_eq!(stdout(&text).lines().count(), 3, "{}", stdout(&text));
    assert_clean("decode", &stdout(&text));
    assert_clean("decode -v", &stdout(&verbose));
}

#[test]
fn terminal_dc_ping() {
    let sock = UdpSocket::bind((Ipv4Addr::new(127, 0, 124, 2), 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let fake = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let until = Instant::now() + Duration::from_secs(15);
        let mut answered = 0;
        while Instant::now() < until && answered < 2 {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let Ok(d) = Datagram::parse(&buf[..n]) else {
                continue;
            };
            let (Some(src), Some(user)) = (d.source_name().cloned(), d.user_data()) else {
                continue;
            };
            let Ok(w) = MailslotWrite::parse(user) else {
                continue;
            };
            let Ok(NetlogonMessage::PrimaryQuery(q)) = NetlogonMessage::parse(&w.data) else {
                continue;
            };
            let body = NetlogonMessage::PrimaryResponse(PrimaryResponse {
                primary_dc_name: SERVER.into(),
                unicode_primary_dc_name: Some(DC_NAME.into()),
                unicode_domain_name: Some("FAKEDOM".into()),
                nt_version: Some(1),
                lmnt_token: Some(0xFFFF),
                lm20_token: Some(0xFFFF),
                ..PrimaryResponse::default()
            })
            .to_bytes()
            .unwrap();
            let data = MailslotWrite::new(&q.mailslot_name, body)
                .to_bytes()
                .unwrap();
            let reply = Datagram::data(
                MsgType::DirectUnique,
                NodeType::B,
                7,
                (Ipv4Addr::new(127, 0, 124, 2), port),
                Name::new("FAKEDC", 0).unwrap(),
                src,
                data,
            );
            sock.send_to(&reply.to_bytes().unwrap(), from).unwrap();
            answered += 1;
        }
    });
    let p = port.to_string();
    let ping = |fmt: &str| {
        run(&[
            "dc-ping",
            "FAKEDOM",
            "--standalone",
            "--interface",
            "127.0.0.1/8",
            "--server",
            "127.0.124.2",
            "--port",
            &p,
            "--query",
            "primary",
            "--wait",
            "1",
            "--format",
            fmt,
        ])
    };
    let text = ping("text");
    let json = ping("json");
    let _ = fake.join();
    assert!(stdout(&text).contains("dc="), "{text:?}");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(
        v.to_string()
            .contains(&serde_json::to_string(DC_NAME).unwrap()),
        "JSON keeps the exact DC name: {v}"
    );
    assert_clean("dc-ping", &stdout(&text));
}

#[test]
fn terminal_status() {
    let sock = UdpSocket::bind((Ipv4Addr::new(127, 0, 124, 3), 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let fake = std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        let until = Instant::now() + Duration::from_secs(15);
        let mut answered = 0;
        while Instant::now() < until && answered < 2 {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let Ok(q) = Packet::parse(&buf[..n]) else {
                continue;
            };
            let Some(question) = q.questions.first() else {
                continue;
            };
            let raw = *b"\x1b[2K\x9b1A\n\x7f\xe2\x80\xae   \x20";
            let reply = Packet {
                id: q.id,
                flags: nbns::FLAG_RESPONSE | nbns::FLAG_AA,
                questions: vec![],
                answers: vec![Record {
                    name: question.name.clone(),
                    rr_type: nbns::TYPE_NBSTAT,
                    rr_class: nbns::CLASS_IN,
                    ttl: 0,
                    rdata: RData::NodeStatus(NodeStatus {
                        names: vec![NodeName {
                            name: Name::from_raw(raw),
                            flags: nbns::NAME_ACT,
                        }],
                        statistics: None,
                        extra: vec![],
                    }),
                }],
                authority: vec![],
                additional: vec![],
                trailing: vec![],
            };
            sock.send_to(&reply.to_bytes().unwrap(), from).unwrap();
            answered += 1;
        }
    });
    let p = port.to_string();
    let status = |fmt: &str| {
        run(&[
            "status",
            "127.0.124.3",
            "--port",
            &p,
            "--tries",
            "2",
            "--wait-ms",
            "2000",
            "--format",
            fmt,
        ])
    };
    let text = status("text");
    let json = status("json");
    let _ = fake.join();
    assert_eq!(text.status.code(), Some(0), "{text:?}");
    assert_eq!(json.status.code(), Some(0), "{json:?}");
    assert_clean("status", &stdout(&text));
}
