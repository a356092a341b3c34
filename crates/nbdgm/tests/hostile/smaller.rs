//! Attack: smaller (issue 12 item 12, tool side) and terminal injection (item 4) in
//! `probe` and `monitor` text. A hostile NetBIOS responder (a) plants spreadsheet formulas
//! and terminal escapes; hostile names plant chat mentions; a fake `nft` first in `$PATH`
//! must never run as root; `firewall --apply` for nftables is one transaction.

use crate::common::{bin, Scratch};
use nbdgm_lab::{require_or_skip, Lab, LabSpec};
use nbdgm_wire::browser::{BrowserFrame, GetBackupListResponse};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::{self, MailslotWrite};
use nbdgm_wire::nbns::{self, NodeName, NodeStatus, Packet, RData, Record};
use nbdgm_wire::Name;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BAD_SERVER: &str = "EVIL\x1b[2J\nX\u{9b}Y";

fn raw_name(s: &[u8], suffix: u8) -> Name {
    let mut raw = [b' '; 16];
    raw[..s.len()].copy_from_slice(s);
    raw[15] = suffix;
    Name::from_raw(raw)
}

/// Answers NODE STATUS on 137 with formula names, and anything on 138 with a
/// GetBackupListResponse naming a server full of control characters (bounded: 60 s).
fn hostile_responder(u137: UdpSocket, u138: UdpSocket, me: Ipv4Addr) {
    for s in [&u137, &u138] {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
    }
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let mut buf = [0u8; 2048];
        while t0.elapsed() < Duration::from_secs(60) {
            if let Ok((n, from)) = u137.recv_from(&mut buf) {
                if let Ok(req) = Packet::parse(&buf[..n]) {
                    let status = NodeStatus {
                        names: vec![
                            NodeName {
                                name: raw_name(b"=1+1", 0x20),
                                flags: nbns::NAME_ACT,
                            },
                            NodeName {
                                name: raw_name(b"@SUM(A1)", 0x00),
                                flags: nbns::NAME_ACT | nbns::NB_GROUP,
                            },
                        ],
                        statistics: None,
                        extra: vec![],
                    };
                    let resp = Packet {
                        id: req.id,
                        flags: 0x8400,
                        questions: vec![],
                        answers: vec![Record {
                            name: Name::wildcard(),
                            rr_type: nbns::TYPE_NBSTAT,
                            rr_class: nbns::CLASS_IN,
                            ttl: 0,
                            rdata: RData::NodeStatus(status),
                        }],
                        authority: vec![],
                        additional: vec![],
                        trailing: vec![],
                    };
                    let _ = u137.send_to(&resp.to_bytes().unwrap(), from);
                }
            }
            if let Ok((_, from)) = u138.recv_from(&mut buf) {
                let mut data = Vec::new();
                BrowserFrame::GetBackupListResponse(GetBackupListResponse {
                    count: 1,
                    token: 1,
                    servers: vec![BAD_SERVER.into()],
                    ..GetBackupListResponse::default()
                })
                .emit(&mut data)
                .unwrap();
                let d = Datagram::data(
                    MsgType::DirectUnique,
                    NodeType::B,
                    1,
                    (me, 138),
                    Name::new("HOSTILE", 0).unwrap(),
                    Name::new("NBDGMPROBE", 0).unwrap(),
                    MailslotWrite::new(mailslot::BROWSE, data)
                        .to_bytes()
                        .unwrap(),
                )
                .to_bytes()
                .unwrap();
                let _ = u138.send_to(&d, from);
            }
        }
    });
}

fn no_raw_controls(t: &str) -> bool {
    !t.chars().any(|c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })
}

#[test]
fn probe_output_against_a_hostile_responder() {
    if !require_or_skip("probe_output_against_a_hostile_responder") {
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let (u137, u138) = a
        .in_netns(|| {
            (
                UdpSocket::bind("0.0.0.0:137").unwrap(),
                UdpSocket::bind("0.0.0.0:138").unwrap(),
            )
        })
        .unwrap();
    hostile_responder(u137, u138, a.addr());
    let probe = |format: &str| {
        let o = b
            .output_timeout(
                env!("CARGO_BIN_EXE_nbdgm"),
                [
                    "probe",
                    "198.51.100.10",
                    "--ports",
                    "137,138/udp",
                    "--timeout-ms",
                    "300",
                    "--retries",
                    "1",
                    "--format",
                    format,
                ],
                Duration::from_secs(30),
            )
            .unwrap();
        String::from_utf8(o.stdout).expect("UTF-8 output")
    };

    // CSV: no cell from the network starts a formula.
    let csv = probe("csv");
    let mut r = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    for row in &rows {
        for cell in row.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "formula cell {cell:?} in\n{csv}"
            );
        }
        assert_eq!(&row[7], "'@SUM(A1)", "{csv}");
        assert!(row[10].starts_with("'=1+1<20>"), "{csv}");
    }

    // JSON: the exact strings.
    let json = probe("json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["info"]["names"][0]["name"], "=1+1<20>");
    let ev = v[0]["ports"][1]["evidence"].as_str().unwrap();
    assert!(ev.contains(BAD_SERVER), "{ev:?}");

    // Text: escaped, no raw control character, one line per port.
    let text = probe("text");
    assert!(no_raw_controls(&text), "{text:?}");
    assert!(text.contains("EVIL\\x1b[2J\\nX\\u{9b}Y"), "{text}");
}

/// A webhook receiver that stores each request body (bounded: 100 requests, 30 s).
fn receiver() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        l.set_nonblocking(true).unwrap();
        let t0 = Instant::now();
        let mut n = 0;
        while t0.elapsed() < Duration::from_secs(30) && n < 100 {
            let Ok((mut s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            n += 1;
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(k) = s.read(&mut buf) {
                if k == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..k]);
                let t = String::from_utf8_lossy(&req);
                if let Some(i) = t.find("\r\n\r\n") {
                    let len = t[..i]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if req.len() >= i + 4 + len {
                        g.lock().unwrap().push(t[i + 4..].to_string());
                        break;
                    }
                }
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (port, got)
}

struct Monitor(Child);

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const HOSTILE_NAMES: &str =
    "@everyone<20>,@here<03>,<!channel>,<!here>,<@U012AB>,EV\x1b[2JIL\u{202e}<00>";

#[test]
fn chat_alerts_and_monitor_text_neutralise_hostile_names() {
    let dir = Scratch::new("smaller-chat");
    let (port, got) = receiver();
    let db = dir.0.join("m.db");
    std::fs::write(
        dir.0.join("m.toml"),
        format!(
            "[store]\nurl = \"{}\"\ninstance = \"t\"\n[alerts]\nattempts = 1\n\
             [[check]]\nname = \"c\"\ntargets = [\"198.51.100.10\"]\nports = [\"138/udp\"]\n\
             interval = \"200ms\"\nconfirmations = 1\n\
             [[sink]]\nname = \"slack\"\ntype = \"webhook\"\nformat = \"slack\"\nurl = \"http://127.0.0.1:{port}/s\"\n\
             [[sink]]\nname = \"discord\"\ntype = \"webhook\"\nformat = \"discord\"\nurl = \"http://127.0.0.1:{port}/d\"\n",
            db.display()
        ),
    )
    .unwrap();
    let states = dir.0.join("states");
    std::fs::write(&states, "138/udp closed\nnames GOOD<20>\n").unwrap();
    let m = Monitor(
        bin()
            .args(["monitor", "run", "--config"])
            .arg(dir.0.join("m.toml"))
            .arg("--fake-states")
            .arg(&states)
            .env("NBDGM_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(&states, format!("138/udp closed\nnames {HOSTILE_NAMES}\n")).unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(15) && got.lock().unwrap().len() < 2 {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(m);
    let bodies = got.lock().unwrap().clone();
    assert!(bodies.len() >= 2, "{bodies:?}");
    for body in &bodies {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let text = v["text"].as_str().or(v["content"].as_str()).unwrap();
        assert!(text.contains("SERVICE_CHANGED"), "{text}");
        for live in ["@everyone", "@here", "<!channel>", "<!here>", "<@U012AB>"] {
            assert!(!text.contains(live), "live mention {live} in {text:?}");
        }
        assert!(
            !text.contains('\x1b') && !text.contains('\u{202e}'),
            "{text:?}"
        );
        if v.get("content").is_some() {
            assert_eq!(v["allowed_mentions"]["parse"], serde_json::json!([]));
        }
    }

    // monitor status / history --changes / diff: escaped text, exact JSON.
    for args in [
        &["status"][..],
        &["history", "--changes"][..],
        &["diff", "--from", "1h"][..],
    ] {
        let o = bin()
            .arg("monitor")
            .args(args)
            .arg("--store")
            .arg(&db)
            .output()
            .unwrap();
        let t = String::from_utf8(o.stdout).unwrap();
        assert!(no_raw_controls(&t), "{args:?}: {t:?}");
    }
    let o = bin()
        .args(["monitor", "status", "--format", "json", "--store"])
        .arg(&db)
        .output()
        .unwrap();
    let t = String::from_utf8(o.stdout).unwrap();
    assert!(t.contains("EV\\u001b[2JIL\u{202e}<00>"), "{t}");
}

fn fake_tools(dir: &Path, marker: &Path) -> String {
    let fake = dir.join("bin");
    std::fs::create_dir_all(&fake).unwrap();
    for tool in ["nft", "iptables", "iptables-save", "ip6tables", "ufw", "ip"] {
        let p = fake.join(tool);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\necho {tool} \"$@\" >> {}\nexit 0\n",
                marker.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        fake.display()
    )
}

#[test]
fn firewall_tools_come_from_system_paths_and_nft_apply_is_one_transaction() {
    if !require_or_skip("firewall_tools_come_from_system_paths") {
        return;
    }
    if !Path::new("/usr/sbin/nft").exists() && !Path::new("/sbin/nft").exists() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("nft not installed");
        }
        eprintln!("SKIPPED firewall_tools_come_from_system_paths: nft not installed");
        return;
    }
    let dir = Scratch::new("smaller-fw");
    let marker = dir.0.join("ran");
    let path = fake_tools(&dir.0, &marker);
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let run = |args: &[&str]| {
        let mut all = vec![
            "netns".to_string(),
            "exec".into(),
            a.netns().into(),
            "/usr/bin/env".into(),
            format!("PATH={path}"),
            env!("CARGO_BIN_EXE_nbdgm").into(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let o = std::process::Command::new("/usr/sbin/ip")
            .args(&all)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[
        "firewall",
        "--backend",
        "nftables",
        "--allow",
        "198.51.100.0/24",
        "--apply",
        "--format",
        "json",
    ]);
    let ran = std::fs::read_to_string(&marker).unwrap_or_default();
    assert!(ran.is_empty(), "a tool from $PATH ran as root: {ran}");
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cmds = v["commands"].as_array().unwrap();
    assert_eq!(cmds.len(), 1, "one nft invocation: {out}");
    assert_eq!(cmds[0]["argv"][0], "/usr/sbin/nft", "{out}");
    // The table is there, whole; applying again replaces it (same rule count).
    let list = || {
        let o = a
            .output_timeout(
                "/usr/sbin/nft",
                ["-a", "list", "table", "inet", "nbdgm"],
                Duration::from_secs(10),
            )
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let first = list();
    assert!(
        first.contains("198.51.100.0/24") && first.contains("drop"),
        "{first}"
    );
    let (code, out, err) = run(&["firewall", "--backend", "nftables", "--apply"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let second = list();
    assert!(!second.contains("198.51.100.0/24"), "replaced: {second}");
    assert_eq!(
        first.matches("drop").count(),
        second.matches("drop").count(),
        "{second}"
    );
    // The audit reads the firewall with the system tools too.
    let (_, out, err) = run(&["audit", "--format", "json"]);
    let ran = std::fs::read_to_string(&marker).unwrap_or_default();
    assert!(
        ran.is_empty(),
        "audit ran a tool from $PATH: {ran}\n{out}{err}"
    );
    let (code, out, err) = run(&["firewall", "--backend", "nftables", "--remove"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(std::fs::read_to_string(&marker)
        .unwrap_or_default()
        .is_empty());
}
