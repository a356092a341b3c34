//! `nbdgm dc-ping`: a fake DC on loopback (answering, silent, garbage), and interop with a
//! real Samba nmbd with `domain logons = yes` in network namespaces (198.51.100.0/24
//! only; skipped locally without root/Samba, a failure under CI=true).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_lab::{require_or_skip, Host, Lab, LabSpec, Nmbd, NmbdOptions};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::MailslotWrite;
use nbdgm_wire::netlogon::{NetlogonMessage, PrimaryResponse};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, UdpSocket};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fake {
    /// A LOGON_PRIMARY_RESPONSE naming FAKEDC.
    Answer,
    /// Nothing.
    Silent,
    /// Bytes that are not a datagram.
    GarbageDatagram,
    /// A valid datagram and mailslot write to the reply mailslot with a truncated body.
    GarbageNetlogon,
}

/// A fake DC on 127.0.0.2 (not 127.0.0.1: the standalone node takes 127.0.0.1:port, the
/// remote port, as its own address and drops packets from it). Returns its port, the
/// number of requests it saw, and a stop flag.
struct FakeDc {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<NetlogonMessage>>>,
}

impl FakeDc {
    fn start(mode: Fake) -> FakeDc {
        let sock = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0)).expect("bind 127.0.0.2");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 2048];
            // Bounded: at most 30 s.
            let until = Instant::now() + Duration::from_secs(30);
            while !flag.load(Ordering::Relaxed) && Instant::now() < until {
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
                let Ok(msg) = NetlogonMessage::parse(&w.data) else {
                    continue;
                };
                seen.push(msg.clone());
                let NetlogonMessage::PrimaryQuery(q) = msg else {
                    continue;
                };
                let body = match mode {
                    Fake::Silent => continue,
                    Fake::GarbageDatagram => {
                        sock.send_to(b"\x11\x02garbage", from).unwrap();
                        continue;
                    }
                    Fake::GarbageNetlogon => vec![0x0C, 0x00, b'F', b'A'],
                    Fake::Answer => NetlogonMessage::PrimaryResponse(PrimaryResponse {
                        primary_dc_name: "FAKEDC".into(),
                        unicode_primary_dc_name: Some("FAKEDC".into()),
                        unicode_domain_name: Some("FAKEDOM".into()),
                        nt_version: Some(1),
                        lmnt_token: Some(0xFFFF),
                        lm20_token: Some(0xFFFF),
                        ..PrimaryResponse::default()
                    })
                    .to_bytes()
                    .unwrap(),
                };
                let data = MailslotWrite::new(&q.mailslot_name, body)
                    .to_bytes()
                    .unwrap();
                let reply = Datagram::data(
                    MsgType::DirectUnique,
                    NodeType::B,
                    7,
                    (Ipv4Addr::new(127, 0, 0, 2), port),
                    Name::new("FAKEDC", 0).unwrap(),
                    src,
                    data,
                );
                sock.send_to(&reply.to_bytes().unwrap(), from).unwrap();
            }
            seen
        });
        FakeDc {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<NetlogonMessage> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for FakeDc {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn loopback_ping(port: u16, extra: &[&str]) -> Output {
    let port = port.to_string();
    let mut args = vec![
        "dc-ping",
        "FAKEDOM",
        "--standalone",
        "--interface",
        "127.0.0.1/8",
        "--server",
        "127.0.0.2",
        "--port",
        &port,
        "--query",
        "primary",
        "--wait",
        "1",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn fake_dc_answer_is_printed_with_time() {
    let dc = FakeDc::start(Fake::Answer);
    let out = loopback_ping(dc.port, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("LOGON_PRIMARY_RESPONSE")
            && stdout.contains("dc=FAKEDC")
            && stdout.contains("domain=FAKEDOM")
            && stdout.contains(" ms"),
        "{stdout}"
    );
    assert!(stdout.contains("127.0.0.2:"), "{stdout}");
    let seen = dc.finish();
    assert_eq!(seen.len(), 1);
    match &seen[0] {
        NetlogonMessage::PrimaryQuery(q) => {
            assert!(
                q.mailslot_name.starts_with("\\MAILSLOT\\NET\\GETDC"),
                "{q:?}"
            );
            assert_eq!(q.mailslot_name.len(), "\\MAILSLOT\\NET\\GETDC".len() + 8);
        }
        m => panic!("{m:?}"),
    }
}

#[test]
fn fake_dc_answer_as_json_and_ndjson() {
    let dc = FakeDc::start(Fake::Answer);
    let out = loopback_ping(dc.port, &["--format", "json", "--count", "2"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(v["summary"]["answers"], 2, "{v}");
    assert_eq!(v["summary"]["requests"], 2, "{v}");
    let r = &v["responses"][0];
    assert_eq!(r["command"], "LOGON_PRIMARY_RESPONSE");
    assert_eq!(r["request"], "LOGON_PRIMARY_QUERY");
    assert_eq!(r["dc_name"], "FAKEDC");
    assert_eq!(r["source"].as_str().unwrap().to_uppercase(), "FAKEDC<00>");
    assert!(r["time_ms"].as_f64().unwrap() < 1000.0, "{r}");
    assert_eq!(v["responses"][1]["round"], 1);
    drop(dc);

    let dc = FakeDc::start(Fake::Answer);
    let out = loopback_ping(dc.port, &["--format", "ndjson"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("ndjson line"))
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["request"]["request"] == "LOGON_PRIMARY_QUERY"));
    assert!(lines.iter().any(|l| l["response"]["dc_name"] == "FAKEDC"));
    assert_eq!(lines.last().unwrap()["summary"]["answers"], 1);
}

#[test]
fn silent_server_exits_1() {
    let dc = FakeDc::start(Fake::Silent);
    let started = Instant::now();
    let out = loopback_ping(dc.port, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("no DC of FAKEDOM answered"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(dc.finish().len(), 1, "the request reached the server");
}

#[test]
fn garbage_replies_are_reported_and_exit_1() {
    for mode in [Fake::GarbageDatagram, Fake::GarbageNetlogon] {
        let dc = FakeDc::start(mode);
        let out = loopback_ping(dc.port, &["--format", "json"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
        assert_eq!(v["summary"]["answers"], 0);
        assert_eq!(v["summary"]["errors"], 1, "{v}");
        let err = v["responses"][0]["error"].as_str().unwrap();
        if mode == Fake::GarbageDatagram {
            assert!(err.contains("malformed_datagram"), "{err}");
        } else {
            assert!(err.contains("malformed NETLOGON"), "{err}");
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
        // Text shows it too.
        let out = loopback_ping(dc.port, &[]);
        let (stdout, _) = text(&out);
        assert_eq!(out.status.code(), Some(1));
        assert!(stdout.contains("error:"), "{stdout}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["dc-ping", "A-DOMAIN-NAME-TOO-LONG", "--standalone"],
        vec!["dc-ping", "D", "--standalone", "--wait", "-1"],
        vec!["dc-ping", "D", "--standalone", "--target", "1d"],
        vec!["dc-ping", "D", "--standalone", "--nt-version", "zz"],
        vec!["dc-ping", "D", "--standalone", "--count", "0"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {:?}", text(&out));
    }
    let out = run(&["dc-ping", "--help"]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("Exit codes") && stdout.contains("--server"));
}

// ---------------------------------------------------------------------------------------
// Interop with Samba nmbd

/// nmbd as a classic PDC: `domain logons = yes` (answers LOGON_PRIMARY_QUERY and registers
/// <DOMAIN><1C>) and `domain master = yes` (<DOMAIN><1B>).
fn pdc(a: &Host) -> Nmbd {
    let nmbd = Nmbd::start(
        a,
        NmbdOptions {
            extra_global: vec![
                "server role = classic primary domain controller".into(),
                "domain logons = yes".into(),
                "domain master = yes".into(),
            ],
            ..NmbdOptions::default()
        },
    )
    .expect("nmbd");
    nmbd.wait_registered(Duration::from_secs(20))
        .expect("nmbd registered");
    nmbd.wait_for_log(
        "success in registering name TESTGROUP<1c>",
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| {
        let log = nmbd.log();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("<1c>") || l.contains("<1b>") || l.contains("logon")
            })
            .collect();
        panic!("{e}\n{}", lines.join("\n"))
    });
    nmbd
}

fn ping_in(host: &Host, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = host
        .cmd(env!("CARGO_BIN_EXE_nbdgm"))
        .arg("dc-ping")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (out.status.code(), v, stderr)
}

fn primary_answers(v: &serde_json::Value) -> Vec<&serde_json::Value> {
    v["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["command"] == "LOGON_PRIMARY_RESPONSE" && r["error"].is_null())
        .collect()
}

#[test]
fn nmbd_pdc_answers_primary_query() {
    if !require_or_skip("nmbd_pdc_answers_primary_query") {
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let nmbd = pdc(&a);
    let iface = "198.51.100.20/24";

    // --server: DIRECT_UNIQUE to TESTGROUP<1C> at nmbd, reply to our ephemeral port.
    let (code, v, stderr) = ping_in(
        &b,
        &[
            "TESTGROUP",
            "--standalone",
            "--interface",
            iface,
            "--server",
            "198.51.100.10",
            "--query",
            "primary",
            "--wait",
            "2",
        ],
    );
    let log = || nmbd.log();
    assert_eq!(code, Some(0), "{v}\n{stderr}\n{}", log());
    let answers = primary_answers(&v);
    assert_eq!(answers.len(), 1, "{v}");
    assert_eq!(answers[0]["dc_name"], "SAMBAA", "{v}");
    assert_eq!(answers[0]["domain"], "TESTGROUP", "{v}");
    assert!(answers[0]["from"]
        .as_str()
        .unwrap()
        .starts_with("198.51.100.10:"));
    let t = answers[0]["time_ms"].as_f64().unwrap();
    eprintln!("nmbd LOGON_PRIMARY_RESPONSE (--server) after {t:.3} ms");
    assert!(t < 2000.0);

    // Broadcast <1C>, both queries: nmbd answers LOGON_PRIMARY_QUERY with a
    // LOGON_PRIMARY_RESPONSE and LOGON_SAM_LOGON_REQUEST with an NT 4.0-style
    // LOGON_SAM_LOGON_RESPONSE (\\SAMBAA). The broadcast reaches two of its sockets
    // (0.0.0.0:138 and 198.51.100.255:138), so it answers each request twice.
    let (code, v, stderr) = ping_in(
        &b,
        &[
            "TESTGROUP",
            "--standalone",
            "--interface",
            iface,
            "--target",
            "1c",
            "--wait",
            "2",
        ],
    );
    assert_eq!(code, Some(0), "{v}\n{stderr}\n{}", log());
    let answers = primary_answers(&v);
    assert!(!answers.is_empty(), "{v}");
    assert!(answers.iter().all(|r| r["dc_name"] == "SAMBAA"), "{v}");
    let sam: Vec<&serde_json::Value> = v["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["request"] == "LOGON_SAM_LOGON_REQUEST")
        .collect();
    assert!(!sam.is_empty(), "{v}");
    assert_eq!(sam[0]["command"], "LOGON_SAM_LOGON_RESPONSE", "{v}");
    assert_eq!(sam[0]["dc_name"], "SAMBAA", "{v}");
    for r in v["responses"].as_array().unwrap() {
        assert!(r["error"].is_null(), "{r}");
        eprintln!(
            "nmbd {} to {} (broadcast) after {:.3} ms{}",
            r["command"],
            r["target"],
            r["time_ms"].as_f64().unwrap_or(-1.0),
            if r["duplicate"] == true {
                " (duplicate)"
            } else {
                ""
            }
        );
    }

    // <1B> straight to the PDC.
    let (code, v, stderr) = ping_in(
        &b,
        &[
            "TESTGROUP",
            "--standalone",
            "--interface",
            iface,
            "--server",
            "198.51.100.10",
            "--target",
            "1b",
            "--query",
            "primary",
            "--wait",
            "1",
        ],
    );
    assert_eq!(code, Some(0), "{v}\n{stderr}\n{}", log());
    let answers = primary_answers(&v);
    assert_eq!(answers.len(), 1, "{v}");
    assert_eq!(
        answers[0]["target"].as_str().unwrap().to_ascii_uppercase(),
        "TESTGROUP<1B>"
    );

    // <1B> resolved by a broadcast name query: it depends on nmbd having finished
    // registering TESTGROUP<1b> as domain master (seen both ways), so only print it.
    let (code, v, _) = ping_in(
        &b,
        &[
            "TESTGROUP",
            "--standalone",
            "--interface",
            iface,
            "--target",
            "1b",
            "--query",
            "primary",
            "--wait",
            "1",
        ],
    );
    eprintln!("<1B> by broadcast lookup: exit {code:?}: {}", v["requests"]);
    assert!(code == Some(0) || code == Some(1), "{v}");
}

#[test]
fn nmbd_pdc_answers_through_the_daemon() {
    if !require_or_skip("nmbd_pdc_answers_through_the_daemon") {
        return;
    }
    let s = Scratch::new("dcping-daemon");
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let nmbd = pdc(&a);
    let ours = Daemon::start(DaemonSpec {
        dir: &s.0,
        tag: b.name(),
        name: "NBDGMB",
        addr: b.addr(),
        prefix: 24,
        ports: (137, 138),
        // Browsing plays no part here.
        extra: "[browser]\nlisten = false\nannounce = false\nlocal_master = false\n",
        wrapper: vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            b.netns().to_string(),
        ],
    });
    ours.wait_names(&["NBDGMB<00>"]);
    let sock = ours.socket.to_string_lossy().into_owned();
    for extra in [&["--server", "198.51.100.10"][..], &["--target", "1c"][..]] {
        let mut args = vec![
            "TESTGROUP",
            "--daemon",
            "--api-socket",
            &sock,
            "--query",
            "primary",
            "--wait",
            "2",
        ];
        args.extend_from_slice(extra);
        let (code, v, stderr) = ping_in(&b, &args);
        assert_eq!(
            code,
            Some(0),
            "{extra:?}: {v}\n{stderr}\n{}\n{}",
            ours.log_text(),
            nmbd.log()
        );
        assert_eq!(v["summary"]["via"], "daemon");
        // A broadcast is answered once per nmbd socket it reaches (marked duplicate).
        let answers = primary_answers(&v);
        assert_eq!(
            answers.iter().filter(|r| r["duplicate"] != true).count(),
            1,
            "{v}"
        );
        assert_eq!(answers[0]["dc_name"], "SAMBAA");
        assert_eq!(
            answers[0]["source"].as_str().unwrap().to_ascii_uppercase(),
            "SAMBAA<00>"
        );
        eprintln!(
            "nmbd via daemon {extra:?}: {:.3} ms",
            answers[0]["time_ms"].as_f64().unwrap()
        );
    }
}
