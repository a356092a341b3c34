//! Attack: log forging (issue 12 item 3), attacker (a) on the subnet and (c) an API
//! client. Names from browser frames (LocalMasterAnnouncement server name and comment,
//! HostAnnouncement, a RequestElection winner) and the API `hello` client name carry a
//! newline with a fake log line, ESC sequences, C1 controls and bidi overrides. The
//! daemon's log, in text and JSON, must have no forged line and no raw control
//! character, and still show the (escaped) strings.

use crate::common::*;
use nbdgm_wire::browser::{Announcement, BrowserFrame, RequestElection};
use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// A browser frame in a DIRECT_GROUP datagram from `src_name` at `src` to `dest`.
pub fn browse_datagram(
    src: SocketAddrV4,
    src_name: &str,
    dest: Name,
    frame: &BrowserFrame,
) -> Vec<u8> {
    let data = MailslotWrite::new(BROWSE, frame.to_bytes().unwrap())
        .to_bytes()
        .unwrap();
    Datagram {
        msg_type: MsgType::DirectGroup,
        flags: Flags {
            more: false,
            first: true,
            node_type: NodeType::B,
            reserved: 0,
        },
        id: 0x4243,
        source_ip: *src.ip(),
        source_port: src.port(),
        body: Body::Data {
            length: None,
            offset: 0,
            body: DataBody::Names {
                source_name: Name::new(src_name, 0).unwrap(),
                destination_name: dest,
                user_data: data,
            },
        },
    }
    .to_bytes()
    .unwrap()
}

/// The first offending character of a log (or terminal) text: a control character
/// other than the newline that ends a line, DEL, C1, or a bidi/line-separator
/// character.
pub fn raw_control(text: &str) -> Option<(usize, char)> {
    text.char_indices().find(|&(_, c)| {
        c != '\n' && (c.is_control() || (nbdgm_wire::text::needs_escape(c) && c != '\\'))
    })
}

/// Lines that start with one of the injected markers (after optional spaces).
pub fn forged_lines<'a>(text: &'a str, markers: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            markers.iter().any(|m| t.starts_with(m))
        })
        .collect()
}

// Server names are at most 15 Latin-1 characters.
const LMA_NAME: &str = "\nFAKE1 x\x1b[2K\u{9b}";
const HOST_NAME: &str = "\rFAKE2\u{85}\x7f";
const HOST_COMMENT: &str = "c\nFAKE3 INFO nbdgm: root ok\x1b]0;t\x07\u{85}";
const WINNER: &str = "\nFAKE4\x1b[1A\u{9b}";
const HELLO: &str = "me\nFAKE5 INFO api hello\x1b[2K\u{202e}gpj.exe";

fn attack(format: &str, d: u8) -> String {
    let s = Scratch::new(&format!("logforge-{format}"));
    let ports = ports();
    let addr = Ipv4Addr::new(127, 0, 121, d);
    let extra = format!(
        "format = \"{format}\"\n[browser]\nannounce = true\nlocal_master = true\nos_level = 1\n\
         elections_per_minute = 100\n"
    );
    let mut daemon = Daemon::start(DaemonSpec::loopback(
        &s.0, format, "LOGFORGE", addr, ports, &extra,
    ));
    daemon.wait_names(&["LOGFORGE<00>"]);

    let sock = UdpSocket::bind((Ipv4Addr::new(127, 0, 121, d + 1), 0)).unwrap();
    let me = match sock.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    };
    let send = |dest: Name, f: &BrowserFrame| {
        let b = browse_datagram(me, "ATTACKER", dest, f);
        sock.send_to(&b, (addr, ports.1)).unwrap();
    };
    let ann = |name: &str, comment: &str| Announcement {
        periodicity_ms: 720_000,
        server_name: name.into(),
        os_major: 6,
        os_minor: 1,
        server_type: 0x0000_1003 | 0x0000_0200,
        comment: comment.into(),
        ..Default::default()
    };
    let wg = |suffix| Name::new("TESTGROUP", suffix).unwrap();
    send(
        wg(0x1E),
        &BrowserFrame::LocalMasterAnnouncement(ann(LMA_NAME, HOST_COMMENT)),
    );
    send(
        wg(0x1D),
        &BrowserFrame::HostAnnouncement(ann(HOST_NAME, HOST_COMMENT)),
    );
    // A weak ballot starts our election; a strong one from a hostile name wins it.
    send(
        wg(0x1E),
        &BrowserFrame::RequestElection(RequestElection {
            election_version: 1,
            criteria: 0,
            uptime_ms: 1,
            server_name: "WEAK".into(),
            ..Default::default()
        }),
    );
    std::thread::sleep(Duration::from_millis(100));
    send(
        wg(0x1E),
        &BrowserFrame::RequestElection(RequestElection {
            election_version: 1,
            criteria: 0xFF00_0000,
            uptime_ms: u32::MAX,
            server_name: WINNER.into(),
            ..Default::default()
        }),
    );
    // An API client's name.
    let mut c = daemon.client();
    c.request(nbdgm_client::proto::Op::Hello {
        client: Some(HELLO.into()),
    })
    .unwrap();

    // Wait until the frames were handled (bounded).
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let st = daemon.stats();
        if counter(&st, "browser.elections_received") >= 2 && counter(&st, "browser.servers") >= 2 {
            break;
        }
        assert!(Instant::now() < until, "frames not handled: {st}");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    daemon.stop();
    daemon.log_text()
}

fn check(log: &str) {
    let forged = forged_lines(log, &["FAKE"]);
    assert!(
        forged.is_empty(),
        "forged log lines: {forged:?}\nlog:\n{log}"
    );
    if let Some((i, c)) = raw_control(log) {
        panic!(
            "raw control {:?} at byte {i}: {:?}\nlog:\n{log}",
            c,
            &log[i.saturating_sub(60)..(i + 20).min(log.len())]
        );
    }
}

#[test]
fn log_forging_text() {
    let log = attack("text", 10);
    check(&log);
    // The strings are there, escaped.
    for s in [LMA_NAME, WINNER, HELLO] {
        let e = nbdgm_wire::text::escape(s);
        assert!(log.contains(&*e), "{e} missing from the log:\n{log}");
    }
}

#[test]
fn log_forging_json() {
    let log = attack("json", 20);
    check(&log);
    // Every line is one JSON object; the fields carry the escaped strings.
    let mut seen = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        for s in [LMA_NAME, WINNER, HELLO] {
            let e = nbdgm_wire::text::escape(s);
            if v.as_object()
                .unwrap()
                .values()
                .any(|f| f.as_str() == Some(&e))
            {
                seen.push(s);
            }
        }
    }
    for s in [LMA_NAME, WINNER, HELLO] {
        assert!(seen.contains(&s), "{s:?} not logged escaped:\n{log}");
    }
}
