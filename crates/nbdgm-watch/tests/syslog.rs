//! RFC 5424 alerts: exact bytes, hostile values, and the UDP (RFC 5426), TCP (RFC 6587
//! octet counting) and local datagram transports, all on loopback or a temp dir.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_capture::Timestamp;
use nbdgm_watch::signature::{ANSWER_NOT_OWNER, POISONER};
use nbdgm_watch::syslog::{format, Syslog, SyslogOptions, Target, UDP_MAX};
use nbdgm_watch::{Alert, Severity};
use serde_json::Map;
use std::io::Read;
use std::time::Duration;

fn opts() -> SyslogOptions {
    SyslogOptions {
        facility: 4,
        hostname: "sensor1".into(),
        app_name: "nbdgm-watch".into(),
        procid: "4242".into(),
        timeout: Duration::from_millis(500),
    }
}

fn alert() -> Alert {
    Alert {
        signature: &ANSWER_NOT_OWNER,
        severity: Severity::Medium,
        time: Timestamp {
            secs: 1_700_000_000,
            nanos: 5_000_000,
        },
        frame: 7,
        src: "198.51.100.66:137".parse().unwrap(),
        dst: "198.51.100.10:137".parse().unwrap(),
        evidence: Map::new(),
        key: String::new(),
    }
    .with("name", "FILESRV<20>")
    .with("owner", "198.51.100.5")
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn exact_bytes() {
    let m = format(&alert(), &opts(), 2048);
    assert_eq!(
        text(&m),
        "<36>1 2023-11-14T22:13:20.005000Z sensor1 nbdgm-watch 4242 answer-not-owner \
         [nbdgm@32473 sid=\"1138101\" rev=\"1\" gid=\"1\" severity=\"medium\" category=\"Name Poisoning\" \
         src=\"198.51.100.66:137\" dst=\"198.51.100.10:137\" frame=\"7\" name=\"FILESRV<20>\" owner=\"198.51.100.5\"] \
         \u{feff}NBDGM positive name answer from a host that does not own the name: \
         198.51.100.66:137 -> 198.51.100.10:137 name=FILESRV<20> owner=198.51.100.5"
    );
    // High -> crit (2), Low -> notice (5); facility local0 (16).
    let mut o = opts();
    o.facility = 16;
    let mut a = alert();
    a.signature = &POISONER;
    a.severity = Severity::High;
    assert!(text(&format(&a, &o, 2048)).starts_with("<130>1 "));
    a.severity = Severity::Low;
    assert!(text(&format(&a, &o, 2048)).starts_with("<133>1 "));
}

#[test]
fn hostile_values_are_escaped() {
    let a = alert().with("name", "A]\"B\\C\nD\x1b[2J\u{202e}");
    let m = text(&format(&a, &opts(), 2048));
    // One line, no raw ESC or bidi override anywhere.
    assert!(!m.contains('\n') && !m.contains('\x1b') && !m.contains('\u{202e}'));
    // SD: text::escape, then RFC 5424 §6.3.3 escapes `"`, `\` and `]`.
    assert!(
        m.contains(r#" name="A\]\"B\\\\C\\nD\\x1b[2J\\u{202e}" "#),
        "{m}"
    );
    // The SD element ends right before the MSG: no `]` inside a value is left bare.
    let sd_end = m.find("] \u{feff}").unwrap();
    let sd = &m[m.find('[').unwrap()..=sd_end];
    let bare = sd
        .char_indices()
        .filter(|&(i, c)| c == ']' && (i == 0 || sd.as_bytes()[i - 1] != b'\\'))
        .count();
    assert_eq!(bare, 1, "{sd}");
    // MSG: text::escape only.
    assert!(
        m.ends_with("name=A]\"B\\\\C\\nD\\x1b[2J\\u{202e} owner=198.51.100.5"),
        "{m}"
    );
    // Header fields: PRINTUSASCII only.
    let mut o = opts();
    o.hostname = "evil host\n".into();
    o.app_name = "x".repeat(100);
    let m = text(&format(&alert(), &o, 2048));
    let head: Vec<&str> = m.splitn(7, ' ').collect();
    assert_eq!(head[2], "evil_host_");
    assert_eq!(head[3].len(), 48);
}

#[test]
fn long_messages_fit_the_limit_at_a_char_boundary() {
    let mut a = alert();
    for i in 0..40 {
        a = a.with(&format!("k{i}"), "é".repeat(300));
    }
    let m = format(&a, &opts(), UDP_MAX);
    assert!(m.len() <= UDP_MAX && m.len() > UDP_MAX - 4);
    let m = text(&m); // valid UTF-8: cut at a char boundary
                      // The evidence parameters went, the core ones stayed and the SD is closed.
    assert!(m.contains("frame=\"7\"] \u{feff}"), "{m}");
}

#[test]
fn udp_one_datagram_per_alert() {
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t: Target = format!("udp://{}", rx.local_addr().unwrap())
        .parse()
        .unwrap();
    let mut s = Syslog::open(&t, opts()).unwrap();
    s.send(&alert());
    s.send(&alert().severity(Severity::High));
    let mut buf = [0u8; 4096];
    let n = rx.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], &format(&alert(), &opts(), UDP_MAX)[..]);
    let n = rx.recv(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"<34>1 "));
    assert_eq!(s.stats().sent, 2);
    assert_eq!(s.stats().failed, 0);
}

#[test]
fn tcp_octet_counting() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let t: Target = format!("tcp://{}", l.local_addr().unwrap())
        .parse()
        .unwrap();
    let mut s = Syslog::open(&t, opts()).unwrap();
    let (mut conn, _) = l.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let one = format(&alert(), &opts(), 8192);
    s.send(&alert());
    s.send(&alert());
    drop(s);
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    let mut want = format!("{} ", one.len()).into_bytes();
    want.extend_from_slice(&one);
    assert_eq!(got, [want.clone(), want].concat());
}

#[test]
fn tcp_failure_is_counted_not_blocking() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t: Target = format!("tcp://{addr}").parse().unwrap();
    let mut s = Syslog::open(&t, opts()).unwrap();
    drop(l.accept().unwrap());
    drop(l);
    let t0 = std::time::Instant::now();
    for _ in 0..50 {
        s.send(&alert());
    }
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(s.stats().failed >= 1, "{:?}", s.stats());
    assert!(s.last_error.is_some());
    // No listener at all: a configuration error at open.
    assert!(Syslog::open(&t, opts()).is_err());
}

#[test]
fn unix_datagram_socket() {
    let dir = std::env::temp_dir().join(format!("nbdgm-syslog-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("log");
    let _ = std::fs::remove_file(&path);
    let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t: Target = format!("unix://{}", path.display()).parse().unwrap();
    let mut s = Syslog::open(&t, opts()).unwrap();
    s.send(&alert());
    let mut buf = [0u8; 8192];
    let n = rx.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], &format(&alert(), &opts(), 8192)[..]);
    assert_eq!(s.stats().sent, 1);
    // The daemon went away: counted, not fatal.
    drop(rx);
    s.send(&alert());
    assert_eq!(s.stats().failed, 1);
    assert!(Syslog::open(&Target::Unix(dir.join("none")), opts()).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
