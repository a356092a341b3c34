//! `nbdgm message send|listen` and the daemon's messenger (exec hook, log): on loopback
//! (127.0.5.0/24 inside 127/8), and between two daemons in network namespaces on
//! 198.51.100.0/24 with tshark checking the mailslot (lab test: skipped locally without
//! root/iproute2/tshark, a failure under CI=true).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_client::proto::{Event, Subscription};
use nbdgm_client::Client;
use nbdgm_lab::{require_or_skip, Host, Lab, LabSpec, Tshark};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Every character a shell would care about, quotes, a newline and a forged log line.
const HOSTILE: &str =
    "a;b $(touch /tmp/nbdgm-pwned) `id` 'q' \"dq\" \\ |& >x\nINFO forged log line\n-rf *";
const HOSTILE_SENDER: &str = "EVIL;$(id)";

fn ip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 5, d)
}

/// A hook script that writes its arguments, NUL-separated, to a new file in `out`.
fn hook_script(dir: &Path, out: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(out).unwrap();
    let p = dir.join("hook.sh");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nf=\"{}/call.$$\"\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"$f.tmp\"\nmv \"$f.tmp\" \"$f\"\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// The hook calls recorded so far, each an argument vector.
fn hook_calls(out: &Path) -> Vec<Vec<String>> {
    let mut v: Vec<Vec<String>> = std::fs::read_dir(out)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
                .filter_map(|e| std::fs::read(e.path()).ok())
                .map(|b| {
                    b.split(|c| *c == 0)
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                })
                .map(|mut a| {
                    a.pop(); // after the last NUL
                    a
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn arg<'a>(call: &'a [String], key: &str) -> Option<&'a str> {
    call.iter()
        .position(|a| a == key)
        .and_then(|i| call.get(i + 1))
        .map(String::as_str)
}

/// Start `nbdgm serve` with a full configuration text (the harness' DaemonSpec cannot
/// put `messenger = true` into `[node]`).
fn start_daemon(dir: &Path, tag: &str, addr: Ipv4Addr, toml: &str, wrapper: &[String]) -> Daemon {
    Daemon::start_toml(dir, tag, addr, toml, wrapper)
}

fn config(
    dir: &Path,
    tag: &str,
    name: &str,
    cidr: &str,
    ports: (u16, u16),
    messenger: &str,
) -> String {
    format!(
        "[node]\nname = \"{name}\"\nworkgroup = \"TESTGROUP\"\nmessenger = true\n\n\
         [[interface]]\naddress = \"{cidr}\"\n\n[ports]\nname = {}\ndatagram = {}\n\n\
         [api]\nsocket = \"{}\"\n\n[log]\nlevel = \"info\"\n\n\
         [browser]\nlisten = false\nannounce = false\nlocal_master = false\n\n\
         [messenger]\n{messenger}\n",
        ports.0,
        ports.1,
        dir.join(format!("{tag}.sock")).display()
    )
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn messages_reach_the_exec_hook_the_log_and_listen() {
    let s = Scratch::new("message");
    let ports = ports();
    let out = s.0.join("calls");
    let hook = hook_script(&s.0, &out);
    let a = start_daemon(
        &s.0,
        "a",
        ip(10),
        &config(
            &s.0,
            "a",
            "MSGA",
            &format!("{}/8", ip(10)),
            ports,
            &format!(
                "exec = [\"{}\", \"--fixed\"]\nexec_timeout_s = 5\n",
                hook.display()
            ),
        ),
        &[],
    );
    let b = start_daemon(
        &s.0,
        "b",
        ip(11),
        &config(
            &s.0,
            "b",
            "MSGB",
            &format!("{}/8", ip(11)),
            ports,
            "log = false\n",
        ),
        &[],
    );
    a.wait_names(&["MSGA<03>", "MSGA<00>"]);
    b.wait_names(&["MSGB<03>", "MSGB<00>"]);
    let a_sock = a.socket.display().to_string();
    let b_sock = b.socket.display().to_string();

    let listener = bin()
        .args(["message", "listen", "--daemon", "--api-socket", &a_sock])
        .args(["--format", "ndjson", "--count", "2", "--timeout-s", "15"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));

    // 1. Standalone sender, resolving MSGA<03> by broadcast.
    let r = run(&[
        "message",
        "send",
        "MSGA",
        HOSTILE,
        "--from",
        HOSTILE_SENDER,
        "--standalone",
        "--interface",
        &format!("{}/8", ip(12)),
        "--bind",
        &ip(12).to_string(),
        "--port",
        &ports.1.to_string(),
        "--name-port",
        &ports.0.to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(j["destination"], "MSGA<03>");
    assert_eq!(j["to"], format!("{}:{}", ip(10), ports.1));
    assert_eq!(j["via"], "standalone");

    let calls = wait_for("the first hook call", 10, || {
        Some(hook_calls(&out)).filter(|c| c.len() == 1)
    });
    let c = &calls[0];
    assert_eq!(c[0], "--fixed");
    assert_eq!(arg(c, "--from"), Some(HOSTILE_SENDER));
    assert_eq!(arg(c, "--to"), Some("MSGA"));
    assert_eq!(arg(c, "--destination"), Some("MSGA<03>"));
    assert_eq!(arg(c, "--address"), Some(ip(12).to_string().as_str()));
    let want_text = nbdgm_wire::messenger::crlf(HOSTILE);
    assert_eq!(arg(c, "--text"), Some(want_text.as_str()), "byte for byte");
    assert_eq!(c.last().map(String::as_str), Some(want_text.as_str()));
    assert!(!Path::new("/tmp/nbdgm-pwned").exists());

    // 2. Through daemon B, to the workgroup (DIRECT_GROUP TESTGROUP<00>).
    let r = run(&[
        "message",
        "send",
        "TESTGROUP",
        "to everyone",
        "--to-group",
        "--daemon",
        "--api-socket",
        &b_sock,
        "--format",
        "ndjson",
    ]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(j["destination"], "TESTGROUP<00>");
    assert_eq!(j["sender"], "MSGB");
    let calls = wait_for("the second hook call", 10, || {
        Some(hook_calls(&out)).filter(|c| c.len() == 2)
    });
    let group = calls
        .iter()
        .find(|c| arg(c, "--destination") == Some("TESTGROUP<00>"))
        .expect("group message hook call");
    assert_eq!(arg(group, "--from"), Some("MSGB"));
    assert_eq!(arg(group, "--to"), Some("TESTGROUP"));
    assert_eq!(arg(group, "--text"), Some("to everyone"));

    // `message listen` through daemon A printed both.
    let o = listener.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["sender"], HOSTILE_SENDER);
    assert_eq!(lines[0]["recipient"], "MSGA");
    assert_eq!(lines[0]["text"], want_text.as_str());
    assert_eq!(lines[0]["destination"], "MSGA<03>");
    assert_eq!(lines[0]["for_us"], true);
    assert_eq!(lines[1]["sender"], "MSGB");
    assert_eq!(lines[1]["text"], "to everyone");
    assert!(lines[0]["time"].as_str().is_some_and(|t| t.ends_with('Z')));

    // The log has the message with its text escaped: no forged line.
    let log = a.log_text();
    assert!(log.contains("WinPopup message"), "{log}");
    assert!(log.contains("INFO forged log line"), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("INFO forged")),
        "a forged log line:\n{log}"
    );
    // B logs nothing (log = false), though it got the group message too.
    assert!(!b.log_text().contains("WinPopup message"));
    let stats = a.stats();
    let m = &stats["interfaces"][0]["messenger"];
    if !m.is_null() {
        assert_eq!(m["received"], 2, "{m}");
        assert_eq!(m["hook_started"], 2, "{m}");
    }

    // JSON format of listen with nothing arriving: [] and exit 1.
    let o = run(&[
        "message",
        "listen",
        "--daemon",
        "--api-socket",
        &a_sock,
        "--format",
        "json",
        "--timeout-s",
        "0.5",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v, serde_json::json!([]));
}

#[test]
fn send_errors_and_exit_codes() {
    let s = Scratch::new("message-err");
    let ports = ports();
    let standalone = |name: &str, text: &str| {
        run(&[
            "message",
            "send",
            name,
            text,
            "--standalone",
            "--interface",
            &format!("{}/8", ip(20)),
            "--bind",
            &ip(20).to_string(),
            "--port",
            &ports.1.to_string(),
            "--name-port",
            &ports.0.to_string(),
            "--timeout-ms",
            "1500",
        ])
    };
    // Nobody holds the name: 1.
    let o = standalone("NOBODYHERE", "hi");
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Not Latin-1, too long, bad name: 2.
    assert_eq!(standalone("FRED", "snow ☃").status.code(), Some(2));
    assert_eq!(standalone("FRED", &"x".repeat(500)).status.code(), Some(2));
    assert_eq!(
        standalone("NAME-TOO-LONG-FOR-NETBIOS", "x").status.code(),
        Some(2)
    );
    let o = run(&["message", "send", "FRED"]);
    assert_eq!(o.status.code(), Some(2));
    // --daemon without one: 2.
    let o = run(&[
        "message",
        "send",
        "FRED",
        "x",
        "--daemon",
        "--api-socket",
        &s.0.join("none.sock").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    // Help has the examples.
    let o = run(&["message", "send", "--help"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Exit codes"));
}

#[test]
fn a_malformed_message_is_counted_and_reported() {
    let s = Scratch::new("message-bad");
    let ports = ports();
    let a = start_daemon(
        &s.0,
        "a",
        ip(30),
        &config(&s.0, "a", "MSGBAD", &format!("{}/8", ip(30)), ports, ""),
        &[],
    );
    a.wait_names(&["MSGBAD<03>"]);
    let listener = bin()
        .args(["message", "listen", "--daemon", "--api-socket"])
        .arg(&a.socket)
        .args(["--count", "1", "--timeout-s", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    // A mailslot write whose data is a sender with no NUL.
    let smb = nbdgm_wire::mailslot::MailslotWrite::new(
        nbdgm_wire::mailslot::MESSNGR,
        b"NO TERMINATOR".to_vec(),
    )
    .to_bytes()
    .unwrap();
    // From another address (the daemon drops its own packets).
    let sock = std::net::UdpSocket::bind((ip(31), 0)).unwrap();
    let src = match sock.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    };
    for f in fragments(
        nbdgm_wire::datagram::MsgType::DirectUnique,
        src,
        "MSGBAD<03>",
        &smb,
        0x4242,
        1000,
    ) {
        sock.send_to(&f, (ip(30), ports.1)).unwrap();
    }
    let o = listener.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("malformed message"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let log = wait_for("the warning", 5, || {
        Some(a.log_text()).filter(|l| l.contains("malformed WinPopup message"))
    });
    assert!(!log.contains("panicked"));
}

// ------------------------------------------------------------------ lab

fn wrapper(host: &Host) -> Vec<String> {
    vec![
        "ip".into(),
        "netns".into(),
        "exec".into(),
        host.netns().to_string(),
    ]
}

#[test]
fn winpopup_round_trip_between_nbdgm_nodes_decoded_by_tshark() {
    if !require_or_skip("winpopup_round_trip_between_nbdgm_nodes_decoded_by_tshark") {
        return;
    }
    let s = Scratch::new("message-lab");
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let c = lab.add_host("c", "198.51.100.30/24").unwrap();
    let pcap = s.0.join("messngr.pcap");
    let cap = Tshark::start(&b, "udp port 138", &pcap).expect("tshark");
    let nb = start_daemon(
        &s.0,
        "b",
        b.addr(),
        &config(&s.0, "b", "NODEB", "198.51.100.20/24", (137, 138), ""),
        &wrapper(&b),
    );
    let nc = start_daemon(
        &s.0,
        "c",
        c.addr(),
        &config(&s.0, "c", "NODEC", "198.51.100.30/24", (137, 138), ""),
        &wrapper(&c),
    );
    nb.wait_names(&["NODEB<03>"]);
    nc.wait_names(&["NODEC<03>"]);
    let mut sub_b = nb.client();
    sub_b
        .subscribe(Subscription {
            mailslot: Some("\\MAILSLOT\\MESSNGR".into()),
            ..Default::default()
        })
        .unwrap();
    let mut sub_c = nc.client();
    sub_c
        .subscribe(Subscription {
            mailslot: Some("\\MAILSLOT\\MESSNGR".into()),
            ..Default::default()
        })
        .unwrap();

    let send = |from: &Daemon, to: &str, text: &str| {
        let o = run(&[
            "message",
            "send",
            to,
            text,
            "--daemon",
            "--api-socket",
            &from.socket.display().to_string(),
            "--format",
            "json",
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let j = send(&nb, "NODEC", "hello C\nfrom B");
    assert_eq!(j["to"], "198.51.100.30:138");
    let j = send(&nc, "NODEB", "hello B");
    assert_eq!(j["to"], "198.51.100.20:138");

    let recv = |sub: &mut Client| {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < until, "no message");
            if let Some(Event::Datagram(ev)) =
                sub.next_event(Some(Duration::from_millis(500))).unwrap()
            {
                let data = nbdgm_wire::hex::decode(&ev.data_hex).unwrap();
                let w = nbdgm_wire::mailslot::MailslotWrite::parse(&data).unwrap();
                return (ev, nbdgm_wire::messenger::Message::parse(&w.data).unwrap());
            }
        }
    };
    let (ev, m) = recv(&mut sub_c);
    assert_eq!(ev.destination, "NODEC<03>");
    assert_eq!(ev.msg_type, "direct_unique");
    assert_eq!(
        (m.sender.as_str(), m.recipient.as_str()),
        ("NODEB", "NODEC")
    );
    assert_eq!(m.text, "hello C\r\nfrom B");
    let (ev, m) = recv(&mut sub_b);
    assert_eq!(ev.destination, "NODEB<03>");
    assert_eq!(
        (m.sender.as_str(), m.recipient.as_str()),
        ("NODEC", "NODEB")
    );
    assert_eq!(m.text, "hello B");
    assert!(nc.log_text().contains("WinPopup message"));
    assert!(nb.log_text().contains("WinPopup message"));

    std::thread::sleep(Duration::from_millis(300));
    let path = cap.stop().expect("stop tshark");
    let o = b
        .output(
            "tshark",
            [
                "-r",
                &path.display().to_string(),
                "-Y",
                "mailslot.name == \"\\\\MAILSLOT\\\\MESSNGR\"",
                "-T",
                "fields",
                "-E",
                "separator=|",
                "-e",
                "nbdgm.type",
                "-e",
                "nbdgm.source_name",
                "-e",
                "nbdgm.destination_name",
                "-e",
                "mailslot.name",
                "-e",
                "data.data",
            ],
        )
        .expect("tshark -r");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(rows.len(), 2, "{text}");
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let want = [
        ("NODEC<03>", "NODEB\0NODEC\0hello C\r\nfrom B\0"),
        ("NODEB<03>", "NODEC\0NODEB\0hello B\0"),
    ];
    for (dest, payload) in want {
        let row = rows
            .iter()
            .find(|r| r.get(2).is_some_and(|d| d.starts_with(dest)))
            .unwrap_or_else(|| panic!("no datagram to {dest}: {text}"));
        assert_eq!(row[0], "16", "DIRECT_UNIQUE (0x10): {text}");
        assert_eq!(row[3], "\\MAILSLOT\\MESSNGR");
        assert!(
            row[4].replace(':', "").contains(&hex(payload)),
            "{dest}: {} lacks {}",
            row[4],
            hex(payload)
        );
    }
}
