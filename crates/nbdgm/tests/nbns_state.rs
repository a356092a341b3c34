//! The NBNS role's table across restarts, static names and `nbdgm wins` end to end on
//! loopback (127.0.17.0/24 of 127.0.0.0/8, unprivileged ports): names registered on
//! the wire and added through the API survive a restart (the state file, written at
//! shutdown), a configured static name is defended (ACT_ERR) and never saved, a
//! corrupt state file is set aside and the daemon starts empty (RFC 1001 §15.1.1;
//! RFC 1002 §5.1.4.1).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_wire::nbns::{NbAddress, Packet, Question, RData, Record, CLASS_IN, TYPE_NB};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

const SRV: Ipv4Addr = Ipv4Addr::new(127, 0, 17, 1);

fn registration(id: u16, name: &Name, ip: Ipv4Addr) -> Vec<u8> {
    Packet {
        id,
        flags: 0x2900, // opcode 5, RD
        questions: vec![Question {
            name: name.clone(),
            qtype: TYPE_NB,
            qclass: CLASS_IN,
        }],
        answers: vec![],
        authority: vec![],
        additional: vec![Record {
            name: name.clone(),
            rr_type: TYPE_NB,
            rr_class: CLASS_IN,
            ttl: 3_600,
            rdata: RData::Nb(vec![NbAddress { flags: 0x6000, ip }]),
        }],
        trailing: vec![],
    }
    .to_bytes()
    .unwrap()
}

/// Register `name` from `ip` and return the answer's RCODE (bounded retries).
fn register(port: u16, name: &Name, ip: Ipv4Addr) -> u8 {
    let sock = UdpSocket::bind((ip, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let req = registration(0x4242, name, ip);
    let mut buf = [0u8; 1500];
    for _ in 0..10 {
        sock.send_to(&req, SocketAddrV4::new(SRV, port)).unwrap();
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                if let Ok(p) = Packet::parse(&buf[..n]) {
                    // A WACK (opcode 7) is not the final answer.
                    if p.is_response() && p.id == 0x4242 && (p.flags >> 11) & 0xF != 7 {
                        return p.rcode();
                    }
                }
            }
        }
    }
    panic!("no answer from the NBNS");
}

fn wins(d: &Daemon, args: &[&str]) -> (String, String, i32) {
    let sock = d.socket.display().to_string();
    let mut all = vec!["wins", "--api-socket", &sock];
    all.extend_from_slice(args);
    let out = run(&all);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn start(s: &Scratch, tag: &'static str, ports: (u16, u16)) -> Daemon {
    let state = s.0.join("wins-{interface}.jsonl");
    let toml = format!(
        "[node]\nrole = [\"nbns\"]\n[browser]\nlisten = false\n\
         [nbns_server]\nstate_file = \"{}\"\n\
         [[nbns_server.static]]\nname = \"DC1\"\nsuffix = 0x20\naddresses = [\"127.0.17.9\"]\n",
        state.display()
    );
    let toml: &'static str = Box::leak(toml.into_boxed_str());
    Daemon::start(DaemonSpec::loopback(&s.0, tag, "WINSSRV", SRV, ports, toml))
}

fn state_file(dir: &Path) -> std::path::PathBuf {
    dir.join(format!("wins-{SRV}.jsonl"))
}

#[test]
fn names_survive_a_restart_and_statics_are_defended() {
    let s = Scratch::new("nbns-state");
    let ports = ports();
    let mut d = start(&s, "first", ports);
    let laptop = Name::new("LAPTOP", 0x00).unwrap();
    assert_eq!(register(ports.0, &laptop, Ipv4Addr::new(127, 0, 17, 2)), 0);
    // The static name: another host's registration is refused with ACT_ERR.
    let dc = Name::new("DC1", 0x20).unwrap();
    assert_eq!(register(ports.0, &dc, Ipv4Addr::new(127, 0, 17, 3)), 6);

    let (out, err, code) = wins(&d, &["add", "FILESRV<20>", "127.0.17.5", "--ttl", "7200"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("FILESRV<20> added on 127.0.17.1"), "{out}");
    let (out, err, code) = wins(&d, &["add", "GONE<20>", "127.0.17.6"]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, err, code) = wins(&d, &["delete", "GONE<20>"]);
    assert_eq!(code, 0, "{err}");
    // The configured name cannot be deleted through the API.
    let (_, err, code) = wins(&d, &["delete", "DC1<20>"]);
    assert_eq!(code, 2);
    assert!(err.contains("configuration"), "{err}");

    let (out, _, code) = wins(&d, &["list"]);
    assert_eq!(code, 0);
    assert!(out.contains("interface 127.0.17.1 (3 names)"), "{out}");
    assert!(out.contains("DC1<20>") && out.contains("static"), "{out}");
    assert!(!out.contains("GONE"), "{out}");

    d.stop();
    let saved = std::fs::read_to_string(state_file(&s.0)).expect("state file written");
    assert!(saved.starts_with("{\"format\":\"nbdgm-nbns-state\",\"version\":1,"));
    assert!(
        saved.contains("LAPTOP<00>") && saved.contains("FILESRV<20>"),
        "{saved}"
    );
    assert!(
        !saved.contains("DC1"),
        "configured names are not saved: {saved}"
    );

    let d = start(&s, "second", ports);
    let (out, _, code) = wins(&d, &["list", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = v["interfaces"][0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["DC1<20>", "FILESRV<20>", "LAPTOP<00>"], "{out}");
    let left = v["interfaces"][0]["entries"][1]["members"][0]["expires_in_s"]
        .as_u64()
        .unwrap();
    assert!(
        left > 7_000 && left <= 7_200 + 300,
        "the TTL went on: {left}"
    );
    // The loaded name is still held: another host cannot take it without a challenge
    // (127.0.17.2 does not answer, so it would move, but only after the challenge).
    assert!(d.log_text().contains("state file loaded"));
}

#[test]
fn a_corrupt_state_file_is_set_aside() {
    let s = Scratch::new("nbns-corrupt");
    let ports = ports();
    std::fs::write(state_file(&s.0), b"{\"format\":\"nbdgm-nbns-state\",\"version\":1,\"saved_unix\":0,\"names\":1}\n{not json\n").unwrap();
    let d = start(&s, "corrupt", ports);
    let (out, _, code) = wins(&d, &["list"]);
    assert_eq!(code, 0);
    assert!(out.contains("(1 names)"), "only the static name: {out}");
    let aside: Vec<String> = std::fs::read_dir(&s.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the bad file is kept aside");
    assert!(d.log_text().contains("state file refused"));
    // The daemon keeps serving: a registration still works.
    let n = Name::new("AFTER", 0x00).unwrap();
    assert_eq!(register(ports.0, &n, Ipv4Addr::new(127, 0, 17, 4)), 0);
}
