//! `nbdgm watch` from the command line (issue 14, docs/watch.md): help, the signature
//! table, every shared capture read with exit 0 or 1 and valid EVE lines, bad input with
//! exit 2, and a hostile capture whose strings reach the text output escaped while the
//! JSON keeps them exact.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/captures.rs"]
mod captures;

use captures::capture_files;
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::MailslotWrite;
use nbdgm_wire::Name;
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_nbdgm");

fn nbdgm(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run nbdgm")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn shared_captures() -> Option<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/captures");
    if !dir.is_dir() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "../shared/captures is required in CI"
        );
        eprintln!("SKIP: {} not present", dir.display());
        return None;
    }
    Some(capture_files(&dir))
}

/// One UDP packet of a test capture.
struct Pkt {
    secs: u32,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    payload: Vec<u8>,
}

/// A pcap (Ethernet, IPv4, UDP) of `pkts`.
fn pcap(pkts: &[Pkt]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65535, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for p in pkts {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let total = (20 + 8 + p.payload.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&p.src.0.octets());
        ip.extend_from_slice(&p.dst.0.octets());
        let mut sum = 0u32;
        for c in ip.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&p.src.1.to_be_bytes());
        f.extend_from_slice(&p.dst.1.to_be_bytes());
        f.extend_from_slice(&((8 + p.payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&p.payload);
        for v in [p.secs, 0, f.len() as u32, f.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&f);
    }
    out
}

const ATTACKER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 66);
const VICTIM: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const BCAST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 255);
/// Latin-1 comment: ESC sequences, newline, C1 CSI, DEL; longer than the 43-byte limit.
const COMMENT: &[u8] =
    b"x\x1b[2J\x1b]0;owned\x07\n\x9b31m\x7f AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
/// LLMNR name (UTF-8): ESC, newline, bidi override.
const LLMNR_NAME: &[u8] = b"ev\x1b[2k\n\xe2\x80\xaegpj";

/// A HostAnnouncement on \MAILSLOT\BROWSE with an over-long hostile comment.
fn hostile_announcement() -> Vec<u8> {
    let mut d = vec![0x01, 0x01];
    d.extend_from_slice(&720_000u32.to_le_bytes());
    let mut name = [0u8; 16];
    name[..4].copy_from_slice(b"EVIL");
    d.extend_from_slice(&name);
    d.extend_from_slice(&[6, 1]);
    d.extend_from_slice(&0x0000_1003u32.to_le_bytes());
    d.extend_from_slice(&[15, 1, 0x55, 0xaa]);
    d.extend_from_slice(COMMENT);
    d.push(0);
    let w = MailslotWrite::new("\\MAILSLOT\\BROWSE", d)
        .to_bytes()
        .unwrap();
    Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        0x77,
        (ATTACKER, 138),
        Name::new("EVIL", 0).unwrap(),
        Name::new("WORKGROUP", 0x1d).unwrap(),
        w,
    )
    .to_bytes()
    .unwrap()
}

/// An LLMNR response (RFC 4795 §2.1.1) for `LLMNR_NAME` that no query asked for.
fn hostile_llmnr_answer() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x80, 0x00, 0, 1, 0, 1, 0, 0, 0, 0];
    m.push(LLMNR_NAME.len() as u8);
    m.extend_from_slice(LLMNR_NAME);
    m.push(0);
    m.extend_from_slice(&[0, 1, 0, 1]);
    m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
    m.extend_from_slice(&ATTACKER.octets());
    m
}

/// An LLMNR query for another name: the poisoning detectors start their clock.
fn llmnr_query() -> Vec<u8> {
    let mut m = vec![0x55, 0x55, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(b"\x05other\x00");
    m.extend_from_slice(&[0, 1, 0, 1]);
    m
}

fn hostile_capture(dir: &Path) -> PathBuf {
    let pkts = [
        Pkt {
            secs: 1_700_000_000,
            src: (VICTIM, 50001),
            dst: (Ipv4Addr::new(224, 0, 0, 252), 5355),
            payload: llmnr_query(),
        },
        Pkt {
            secs: 1_700_000_000,
            src: (ATTACKER, 138),
            dst: (BCAST, 138),
            payload: hostile_announcement(),
        },
        Pkt {
            secs: 1_700_000_030,
            src: (ATTACKER, 5355),
            dst: (VICTIM, 50000),
            payload: hostile_llmnr_answer(),
        },
    ];
    let path = dir.join("hostile.pcap");
    std::fs::write(&path, pcap(&pkts)).unwrap();
    path
}

fn json_lines(out: &Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn help_has_examples_and_exit_codes() {
    let o = nbdgm(&["watch", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let h = text(&o.stdout);
    for want in [
        "Examples:",
        "--read",
        "--interface",
        "--format",
        "--fail-on",
        "--list-signatures",
        "Exit codes",
    ] {
        assert!(h.contains(want), "{want} missing in:\n{h}");
    }
    let top = text(&nbdgm(&["--help"]).stdout);
    assert!(top.contains("watch"), "{top}");
}

#[test]
fn list_signatures_lists_every_id() {
    let o = nbdgm(&["watch", "--list-signatures", "--format", "text"]);
    assert_eq!(o.status.code(), Some(0));
    let t = text(&o.stdout);
    let j = nbdgm(&["watch", "--list-signatures", "--format", "ndjson"]);
    assert_eq!(j.status.code(), Some(0));
    let ids: Vec<u64> = json_lines(&j)
        .iter()
        .map(|v| v["id"].as_u64().unwrap())
        .collect();
    for s in nbdgm_watch::signature::ALL {
        assert!(
            t.lines()
                .any(|l| l.starts_with(&s.id.to_string()) && l.contains(s.slug)),
            "{} {} missing:\n{t}",
            s.id,
            s.slug
        );
        assert!(ids.contains(&u64::from(s.id)), "{}", s.id);
    }
    assert_eq!(ids.len(), nbdgm_watch::signature::ALL.len());
}

#[test]
fn usage_errors_exit_2() {
    // Neither source, both sources, an unknown signature, --honey without --interface.
    for args in [
        &["watch"][..],
        &["watch", "--read", "/dev/null", "--count", "0"],
        &["watch", "--read", "a.pcap", "--interface", "lo"],
        &[
            "watch",
            "--read",
            "/dev/null",
            "--disable",
            "no-such-signature",
        ],
        &["watch", "--read", "/dev/null", "--honey"],
        &["watch", "--read", "/dev/null", "--duration", "1m"],
        &["watch", "--read", "/dev/null", "--local-net", "not-a-cidr"],
    ] {
        let o = nbdgm(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(!o.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn bad_files_exit_2_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all, just text\n").unwrap();
    let j = junk.to_str().unwrap();
    let o = nbdgm(&["watch", "--read", j, "--format", "eve"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.starts_with("nbdgm watch: ") && err.contains("junk.pcap"),
        "{err}"
    );
    let missing = dir.path().join("missing.pcap");
    let o = nbdgm(&["watch", "--read", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("cannot open"),
        "{}",
        text(&o.stderr)
    );
    // A bad file among good ones: the good one is still read, the status is 2.
    let good = hostile_capture(dir.path());
    let o = nbdgm(&[
        "watch",
        "--read",
        good.to_str().unwrap(),
        j,
        "--format",
        "ndjson",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!json_lines(&o).is_empty());
    // A bad configuration.
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[watch]\nno_such_key = 1\n").unwrap();
    let o = nbdgm(&[
        "watch",
        "--read",
        good.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no_such_key"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn shared_captures_give_valid_eve_and_never_exit_2() {
    let Some(files) = shared_captures() else {
        return;
    };
    assert!(!files.is_empty());
    let mut alerts = 0;
    for f in &files {
        let o = nbdgm(&["watch", "--read", f.to_str().unwrap(), "--format", "eve"]);
        let code = o.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "{}: exit {code:?}: {}",
            f.display(),
            text(&o.stderr)
        );
        for v in json_lines(&o) {
            for key in [
                "timestamp",
                "flow_id",
                "event_type",
                "src_ip",
                "src_port",
                "dest_ip",
                "dest_port",
                "proto",
                "alert",
                "nbdgm",
            ] {
                assert!(v.get(key).is_some(), "{}: {key} missing: {v}", f.display());
            }
            assert_eq!(v["event_type"], "alert");
            assert_eq!(v["proto"], "UDP");
            for key in [
                "action",
                "gid",
                "signature_id",
                "rev",
                "signature",
                "category",
                "severity",
            ] {
                assert!(v["alert"].get(key).is_some(), "{key}: {v}");
            }
            let sev = v["alert"]["severity"].as_u64().unwrap();
            assert!((1..=3).contains(&sev));
            // Exit 1 exactly when an alert of medium or above was raised (--fail-on medium).
            if sev <= 2 {
                assert_eq!(code, Some(1), "{}: {v}", f.display());
            }
            let ts = v["timestamp"].as_str().unwrap();
            assert!(ts.ends_with("+0000") && ts.len() == 31, "{ts}");
            alerts += 1;
        }
    }
    eprintln!("{} captures, {alerts} alerts", files.len());
}

#[test]
fn crafted_watch_captures_give_valid_eve() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/watch");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        eprintln!("SKIP: {} not present", dir.display());
        return;
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    for f in &files {
        let o = nbdgm(&["watch", "--read", f.to_str().unwrap(), "--format", "eve"]);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{}: {:?} {}",
            f.display(),
            o.status.code(),
            text(&o.stderr)
        );
        for v in json_lines(&o) {
            assert_eq!(v["event_type"], "alert", "{v}");
            assert!(v["nbdgm"]["slug"].is_string(), "{v}");
        }
    }
}

#[test]
fn hostile_strings_are_escaped_in_text_and_exact_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let cap = hostile_capture(dir.path());
    let c = cap.to_str().unwrap();
    let t = nbdgm(&["watch", "--read", c, "--format", "text"]);
    let out = text(&t.stdout);
    assert!(
        matches!(t.status.code(), Some(1)),
        "{out}{}",
        text(&t.stderr)
    );
    let bad = |ch: char| ch != '\n' && ch != '\\' && nbdgm_wire::text::needs_escape(ch);
    assert!(
        !out.chars().any(bad),
        "raw control in text output:\n{out:?}"
    );
    // One line per alert: the newlines of the names did not split lines.
    let j = nbdgm(&["watch", "--read", c, "--format", "ndjson"]);
    let alerts = json_lines(&j);
    assert_eq!(out.lines().count(), alerts.len(), "{out}");
    // The over-long comment: escaped in text, exact in JSON.
    let overlong = alerts
        .iter()
        .find(|a| a["slug"] == "overlong-browser-field")
        .unwrap_or_else(|| panic!("no overlong-browser-field alert: {alerts:?}"));
    let sample = overlong["evidence"]["sample"].as_str().unwrap();
    assert!(
        sample.starts_with("x\u{1b}[2J\u{1b}]0;owned\u{7}\n\u{9b}31m\u{7f}"),
        "{sample:?}"
    );
    assert!(
        out.contains(r"x\x1b[2J\x1b]0;owned\x07\n\u{9b}31m\x7f"),
        "{out}"
    );
    // The LLMNR name with a bidi override (an unsolicited answer): exact in JSON,
    // escaped in text.
    let llmnr: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["evidence"]["protocol"] == "llmnr")
        .collect();
    assert!(!llmnr.is_empty(), "no LLMNR alert: {alerts:?}");
    for a in &llmnr {
        let name = a["evidence"]["name"].as_str().unwrap();
        assert!(
            name.contains('\u{202e}') && name.contains('\u{1b}'),
            "{name:?}"
        );
    }
    assert!(out.contains(r"name=ev\x1b[2k\n\u{202e}gpj"), "{out}");
    // EVE of the same alerts, strings exact.
    let e = nbdgm(&["watch", "--read", c, "--format", "eve"]);
    let eve = json_lines(&e);
    assert_eq!(eve.len(), alerts.len());
    let ov = eve
        .iter()
        .find(|a| a["nbdgm"]["slug"] == "overlong-browser-field")
        .unwrap();
    assert_eq!(ov["nbdgm"]["sample"], sample);
    assert_eq!(ov["app_proto"], "netbios-dgm");
    assert_eq!(ov["alert"]["signature_id"], 1_138_208);
}

#[test]
fn filters_count_config_and_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let cap = hostile_capture(dir.path());
    let c = cap.to_str().unwrap();
    let all = json_lines(&nbdgm(&["watch", "--read", c, "--format", "ndjson"]));
    assert!(all.iter().any(|a| a["severity_name"] == "high"), "{all:?}");
    // --min-severity high prints only high alerts; the status still follows --fail-on.
    let o = nbdgm(&[
        "watch",
        "--read",
        c,
        "-f",
        "ndjson",
        "--min-severity",
        "high",
    ]);
    let high = json_lines(&o);
    assert!(!high.is_empty() && high.iter().all(|a| a["severity"] == 1));
    assert_eq!(o.status.code(), Some(1));
    // --count 1 stops after one printed alert.
    let o = nbdgm(&["watch", "--read", c, "-f", "ndjson", "--count", "1"]);
    assert_eq!(json_lines(&o).len(), 1);
    // Disabling every signature seen: no alert, exit 0; the same through --config.
    let mut args = vec!["watch", "--read", c, "-f", "ndjson"];
    let slugs: Vec<String> = all
        .iter()
        .map(|a| a["slug"].as_str().unwrap().to_owned())
        .collect();
    for s in &slugs {
        args.extend(["--disable", s.as_str()]);
    }
    let o = nbdgm(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());
    let cfg = dir.path().join("watch.toml");
    let list: Vec<String> = slugs.iter().map(|s| format!("{s:?}")).collect();
    std::fs::write(
        &cfg,
        format!(
            "[other]\nx = 1\n\n[watch]\ndisable = [{}]\n",
            list.join(", ")
        ),
    )
    .unwrap();
    let o = nbdgm(&[
        "watch",
        "--read",
        c,
        "-f",
        "ndjson",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());
    // `[watch.alerts]` belongs to the alert routing, not to the engine's keys.
    std::fs::write(
        &cfg,
        "[watch]\nrepeat_window_secs = 0\n\n[watch.alerts]\ncooldown = \"1m\"\n",
    )
    .unwrap();
    let o = nbdgm(&[
        "watch",
        "--read",
        c,
        "-f",
        "ndjson",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(json_lines(&o).len(), all.len());
    // --fail-on high with only lower alerts left: exit 0.
    let o = nbdgm(&[
        "watch",
        "--read",
        c,
        "-f",
        "ndjson",
        "--fail-on",
        "high",
        "--disable",
        "overlong-browser-field",
        "--disable",
        "poisoner",
    ]);
    let left = json_lines(&o);
    let want = if left.iter().any(|a| a["severity"] == 1) {
        1
    } else {
        0
    };
    assert_eq!(o.status.code(), Some(want), "{left:?}");
    // --inventory writes JSON atomically; --stats prints the engine's JSON on stderr.
    let inv = dir.path().join("inv.json");
    let o = nbdgm(&[
        "watch",
        "--read",
        c,
        "-f",
        "ndjson",
        "--stats",
        "--inventory",
        inv.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let _: Value = serde_json::from_slice(&std::fs::read(&inv).unwrap()).unwrap();
    let stats: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(stats["counters"]["packets"], 3, "{stats}");
    // --output FILE: the same lines as standard output.
    let outf = dir.path().join("alerts.ndjson");
    let o = nbdgm(&[
        "watch",
        "--read",
        c,
        "-f",
        "ndjson",
        "-o",
        outf.to_str().unwrap(),
    ]);
    assert!(o.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(&outf).unwrap().lines().count(),
        all.len()
    );
}

#[test]
fn stdin_is_read_with_dash() {
    let dir = tempfile::tempdir().unwrap();
    let cap = hostile_capture(dir.path());
    let o = Command::new(BIN)
        .args(["watch", "--read", "-", "--format", "ndjson"])
        .stdin(std::fs::File::open(&cap).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let alerts = json_lines(&o);
    assert!(alerts.iter().any(|a| a["frame"] == 2), "{alerts:?}");
}

#[test]
fn live_capture_errors_and_duration() {
    // No such interface: exit 2, said plainly.
    let o = nbdgm(&["watch", "--interface", "nbdgm-none0", "--duration", "1s"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("no such network interface") || err.contains("without live capture"),
        "{err}"
    );
    // On lo with --duration: ends on time, quiet or not (0), or refused without
    // CAP_NET_RAW (2).
    let start = std::time::Instant::now();
    let mut child = Command::new(BIN)
        .args([
            "watch",
            "--interface",
            "lo",
            "--duration",
            "1s",
            "--format",
            "ndjson",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("--duration 1s still running after 20 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    match status.code() {
        Some(0) => {
            assert!(start.elapsed() >= std::time::Duration::from_millis(900));
            sigusr1_writes_inventory();
            live_processes_everything_captured();
        }
        Some(2) => assert!(
            err.contains("permission") || err.contains("without live capture"),
            "{err}"
        ),
        c => panic!("exit {c:?}: {err}"),
    }
}

/// Live: SIGUSR1 writes `--inventory` while the capture goes on.
fn sigusr1_writes_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.json");
    let mut child = Command::new(BIN)
        .args([
            "watch",
            "--interface",
            "lo",
            "--duration",
            "6s",
            "-f",
            "ndjson",
            "--inventory",
        ])
        .arg(&inv)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Past the capture's opening and the signal handlers' installation.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "ended early");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    let t = std::time::Instant::now();
    while !inv.exists() && t.elapsed() < std::time::Duration::from_secs(3) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(inv.exists(), "no inventory after SIGUSR1");
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGUSR1 ended the capture"
    );
    let _: Value = serde_json::from_slice(&std::fs::read(&inv).unwrap()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn syslog_gets_the_printed_alerts_as_rfc5424() {
    let dir = tempfile::tempdir().unwrap();
    let cap = hostile_capture(dir.path());
    let c = cap.to_str().unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let target = format!("udp://{}", sock.local_addr().unwrap());
    let o = nbdgm(&[
        "watch",
        "--read",
        c,
        "--format",
        "ndjson",
        "--syslog",
        &target,
        "--syslog-facility",
        "local3",
    ]);
    let alerts = json_lines(&o);
    assert!(!alerts.is_empty(), "{}", text(&o.stderr));
    let mut msgs = Vec::new();
    let mut buf = [0u8; 4096];
    while msgs.len() < alerts.len() {
        let n = sock
            .recv(&mut buf)
            .expect("a syslog message per printed alert");
        msgs.push(buf[..n].to_vec());
    }
    for (m, a) in msgs.iter().zip(&alerts) {
        let s = String::from_utf8_lossy(m);
        // local3 (19) * 8 + severity (high 2, medium 4, low 5).
        let pri = match a["severity"].as_u64().unwrap() {
            1 => 154,
            2 => 156,
            _ => 157,
        };
        assert!(s.starts_with(&format!("<{pri}>1 ")), "{s}");
        let slug = a["slug"].as_str().unwrap();
        assert!(
            s.contains(&format!(
                " {slug} [nbdgm@32473 sid=\"{}\"",
                a["signature_id"]
            )),
            "{s}"
        );
        // Network strings never reach syslog raw.
        assert!(
            !s.chars()
                .any(|ch| ch == '\u{1b}' || ch == '\n' || ch == '\u{202e}'),
            "{s:?}"
        );
    }
    // A bad target is a usage error.
    let bad = nbdgm(&["watch", "--read", c, "--syslog", "ftp://x"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
}

#[test]
fn the_example_configuration_loads() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/watch.toml");
    let cap = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/watch/benign.pcap");
    let o = nbdgm(&[
        "watch",
        "--read",
        cap.to_str().unwrap(),
        "--config",
        conf.to_str().unwrap(),
        "--stats",
    ]);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        text(&o.stderr)
    );
    // A wrong key in it would be exit 2: prove the file is really read.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let body = std::fs::read_to_string(&conf)
        .unwrap()
        .replace("many_names = 5", "many_namez = 5");
    std::fs::write(&bad, body).unwrap();
    let o = nbdgm(&[
        "watch",
        "--read",
        cap.to_str().unwrap(),
        "--config",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("many_namez"),
        "{}",
        text(&o.stderr)
    );
}

/// Live: every datagram the capture matched reaches the engine (none lost between the
/// capture thread and the engine), and `--stats` reports the kernel's counters.
fn live_processes_everything_captured() {
    let child = Command::new(BIN)
        .args([
            "watch",
            "--interface",
            "lo",
            "--duration",
            "3s",
            "--format",
            "ndjson",
            "--stats",
            "--output",
            "/dev/null",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // An NBNS name query (RFC 1002 §4.2.12) for FILESRV<20>, 2,000 times, unicast.
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0x20];
    for b in b"FILESRV        " {
        q.extend([b'A' + (b >> 4), b'A' + (b & 15)]);
    }
    q.extend([b'C', b'A', 0, 0, 0x20, 0, 1]);
    for _ in 0..2_000 {
        sock.send_to(&q, "127.0.0.1:137").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let vals: Vec<Value> = serde_json::Deserializer::from_str(&err)
        .into_iter::<Value>()
        .map(|v| v.unwrap())
        .collect();
    let cap = vals
        .iter()
        .find_map(|v| v.get("capture"))
        .expect("capture counters");
    let engine = vals
        .iter()
        .find_map(|v| v.get("counters"))
        .expect("engine counters");
    assert_eq!(cap["dropped"], 0, "{err}");
    let matched = cap["udp_matched"].as_u64().unwrap();
    assert!(matched >= 2_000, "{err}");
    assert_eq!(engine["packets"].as_u64().unwrap(), matched, "{err}");
    assert!(engine["nbns"].as_u64().unwrap() >= 2_000, "{err}");
}
