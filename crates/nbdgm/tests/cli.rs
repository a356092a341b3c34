//! End-to-end tests of the `nbdgm decode` command: exit codes, formats, error
//! messages for bad input, stdin, several files.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nbdgm"))
}

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/captures")
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run nbdgm")
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nbdgm");
    // Feed stdin from another thread: the child's output may fill its pipe first.
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

fn sample(name: &str) -> String {
    captures().join(name).to_string_lossy().into_owned()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn clean_capture_exits_zero_with_one_line_per_packet() {
    let o = run(&["decode", &sample("tcpdump__eapon1__nbt-only.pcap")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert_eq!(out.lines().count(), 53);
    assert!(out.contains("LocalMasterAnnouncement server_name=\"DJP95S0J\""));
    assert!(out.contains("NAME QUERY REQUEST"));
}

#[test]
fn json_is_one_array_and_ndjson_one_object_per_line() {
    let f = sample("tcpdump__eapon1__nbt-only.pcap");
    let o = run(&["decode", "--format", "json", &f]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 53);
    let first = &arr[0];
    for key in [
        "frame",
        "time",
        "src",
        "dst",
        "protocol",
        "warnings",
        "malformed",
    ] {
        assert!(first.get(key).is_some(), "missing {key}");
    }
    assert_eq!(first["frame"], 1);
    assert_eq!(first["protocol"], "nbdgm");
    assert_eq!(first["nbdgm"]["flags"]["node_type"], "H");
    assert_eq!(first["nbdgm"]["destination_name"]["name"], "ARBEITSGRUPPE");
    assert_eq!(first["mailslot"]["name"], "\\MAILSLOT\\BROWSE");
    assert_eq!(first["browser"]["command"], "AnnouncementRequest");

    let o = run(&["decode", "--format", "ndjson", &f]);
    let lines: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 53);
    assert_eq!(lines, *arr);
}

#[test]
fn empty_result_is_an_empty_array() {
    // A capture with no NetBIOS traffic on the default ports after filtering: use a port
    // nobody uses, on a file whose 137/138 traffic we do not ask for... simplest: a pcap
    // header with no records.
    let mut hdr = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    hdr.extend_from_slice(&[0; 8]);
    hdr.extend_from_slice(&65535u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes());
    let o = run_stdin(&["decode", "--format", "json", "-"], &hdr);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v, serde_json::json!([]));
}

#[test]
fn malformed_packets_exit_one_and_are_still_printed() {
    let o = run(&["decode", &sample("tcpdump__smb_print_trans-oobr2.pcap")]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert_eq!(out.lines().count(), 1);
    assert!(out.contains("MALFORMED"), "{out}");
    assert!(out.contains("first-level encoding"), "{out}");
    assert!(text(&o.stderr).contains("1 of 1 packets malformed"));
}

#[test]
fn not_a_capture_exits_two_and_goes_on_with_the_next_file() {
    let dir = nbdgm_lab::daemon::scratch_dir("cli").unwrap();
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    let good = sample("zeek__raw_ntlm_in_smb__nbt-only.pcap");
    let o = run(&[
        "decode",
        "--format",
        "ndjson",
        junk.to_str().unwrap(),
        &good,
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("junk.txt"), "{err}");
    // The good file after it is still decoded, and each record names its file.
    let lines: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["file"]
        .as_str()
        .unwrap()
        .ends_with("zeek__raw_ntlm_in_smb__nbt-only.pcap"));
}

#[test]
fn missing_file_exits_two() {
    let o = run(&["decode", "/nonexistent/x.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("/nonexistent/x.pcap"));
}

#[test]
fn truncated_capture_prints_what_came_before_then_an_error_with_offset() {
    let bytes = std::fs::read(sample("tcpdump__eapon1__nbt-only.pcap")).unwrap();
    let cut = &bytes[..bytes.len() - 30];
    let o = run_stdin(&["decode", "-"], cut);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(text(&o.stdout).lines().count(), 52);
    let err = text(&o.stderr);
    assert!(err.contains("offset"), "{err}");
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(run(&["decode"]).status.code(), Some(2));
    assert_eq!(
        run(&["decode", "--format", "xml", "x"]).status.code(),
        Some(2)
    );
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    let help = run(&["decode", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("Examples:"));
}

#[test]
fn verbose_prints_the_field_tree() {
    let o = run(&[
        "decode",
        "-v",
        &sample("zeek__smb3_multichannel__nbt-only.pcap"),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let out = text(&o.stdout);
    for needle in [
        "nbdgm:",
        "type: \"DIRECT_GROUP\"",
        "source_name:",
        "browser:",
        "server_name: \"CLIENT-WIN-FR\"",
        "periodicity_ms:",
    ] {
        assert!(out.contains(needle), "missing {needle} in\n{out}");
    }
}

#[test]
fn extra_port_is_decoded() {
    // Rewrite the UDP ports of a sample to 1138 -> 1138 and check --port picks it up.
    let bytes = std::fs::read(sample("zeek__raw_ntlm_in_smb__nbt-only.pcap")).unwrap();
    let mut moved = bytes.clone();
    let pat = [0x00, 0x8a, 0x00, 0x8a];
    let mut n = 0;
    for i in 0..moved.len() - 4 {
        if moved[i..i + 4] == pat {
            moved[i..i + 4].copy_from_slice(&[0x04, 0x72, 0x04, 0x72]);
            n += 1;
        }
    }
    assert!(n >= 2);
    let o = run_stdin(&["decode", "-"], &moved);
    assert_eq!(text(&o.stdout).lines().count(), 0);
    let o = run_stdin(&["decode", "--port", "1138", "-"], &moved);
    assert_eq!(text(&o.stdout).lines().count(), 2, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("LocalMasterAnnouncement"));
}

#[test]
fn output_is_identical_whatever_the_thread_count() {
    // Several batches' worth of packets: the records of a sample repeated 60 times.
    let bytes = std::fs::read(sample("tcpdump__eapon1__nbt-only.pcap")).unwrap();
    let mut big = bytes.clone();
    for _ in 1..60 {
        big.extend_from_slice(&bytes[24..]);
    }
    let one = run_stdin(&["decode", "--format", "json", "--threads", "1", "-"], &big);
    let three = run_stdin(&["decode", "--format", "json", "--threads", "3", "-"], &big);
    assert_eq!(one.status.code(), Some(0));
    assert_eq!(three.status.code(), Some(0));
    assert!(one.stdout == three.stdout, "outputs differ");
    let v: serde_json::Value = serde_json::from_slice(&three.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 60 * 53);
    let frames: Vec<u64> = arr.iter().map(|r| r["frame"].as_u64().unwrap()).collect();
    assert!(
        frames.windows(2).all(|w| w[0] < w[1]),
        "frames out of order"
    );
}

// ---------------------------------------------------------------------------------------
// The network tools' shared options (docs/cli.md "Daemon or standalone", "Durations").

/// With `--daemon`, a standalone option the daemon's request cannot carry is a usage error
/// naming it, for every tool, before any socket is opened (the API socket here does not
/// exist: the error is not "no daemon").
#[test]
fn daemon_flag_with_a_standalone_only_option_is_a_usage_error_naming_it() {
    let no_daemon = [
        "--daemon",
        "--api-socket",
        "/nonexistent/nbdgm-cli-test.sock",
    ];
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "send",
                "--to",
                "A<00>",
                "--text",
                "x",
                "--bind",
                "127.0.0.1",
            ],
            "--bind",
        ),
        (
            &[
                "send",
                "--to",
                "A<00>",
                "--text",
                "x",
                "--name-port",
                "1137",
            ],
            "--name-port",
        ),
        (
            &["send", "--to", "A<00>", "--text", "x", "--port", "1138"],
            "--port",
        ),
        (
            &[
                "send",
                "--to",
                "A<00>",
                "--text",
                "x",
                "--max-length",
                "1000",
            ],
            "--max-length",
        ),
        (&["listen", "--bind", "127.0.0.1"], "--bind"),
        (&["listen", "--port", "1138"], "--port"),
        (
            &["message", "send", "FRED", "hi", "--bind", "127.0.0.1"],
            "--bind",
        ),
        (&["message", "listen", "--port", "1138"], "--port"),
        (&["browse", "--bind", "127.0.0.1"], "--bind"),
        (&["browse", "--solicit", "--workgroup", "W"], "--solicit"),
        (&["dc-ping", "DOM", "--bind", "127.0.0.1"], "--bind"),
        (&["dc-ping", "DOM", "--name-port", "1137"], "--name-port"),
        (
            &["lookup", "FRED", "--broadcast", "127.255.255.255"],
            "--broadcast",
        ),
        (&["lookup", "FRED", "--port", "1137"], "--port"),
        (
            &["lookup", "FRED", "--interface", "127.0.0.1/8"],
            "--interface",
        ),
        (&["status", "127.0.0.1", "--port", "1137"], "--port"),
    ];
    for (args, flag) in cases {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(no_daemon);
        let o = run(&all);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{all:?}: {err}");
        assert!(
            err.contains(&format!("{flag} works only without a daemon")),
            "{all:?}: {err}"
        );
    }
    // Options the daemon's request carries are not refused: the error is the missing daemon.
    for args in [
        &[
            "send",
            "--to",
            "A<00>",
            "--text",
            "x",
            "--interface",
            "127.0.0.1/8",
        ][..],
        &[
            "send",
            "--to",
            "A<00>",
            "--address",
            "127.0.0.2",
            "--text",
            "x",
            "--port",
            "1138",
        ],
        &["listen", "--interface", "127.0.0.1/8"],
        &["browse", "--interface", "127.0.0.1/8"],
        &[
            "dc-ping",
            "DOM",
            "--interface",
            "127.0.0.1/8",
            "--port",
            "1138",
        ],
    ] {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(no_daemon);
        let o = run(&all);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{all:?}: {err}");
        assert!(err.contains("no daemon at /nonexistent"), "{all:?}: {err}");
    }
}

/// A free loopback UDP port (nobody answers there).
fn quiet_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// Run with a 10 s guard; the exit code and how long it took.
fn timed(args: &[&str]) -> (Option<i32>, std::time::Duration, String) {
    let start = std::time::Instant::now();
    let mut child = bin()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (st.code(), start.elapsed(), err);
        }
        if start.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            return (
                None,
                start.elapsed(),
                format!("{args:?}: still running after 10 s"),
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Each timeout in its new spelling (`--timeout 400ms`) and its old one with its old unit
/// (`--timeout-ms 400`, `--timeout-s 0.4`, `--wait-ms 400`, `--wait 0.4`) waits the same
/// 0.4 s, standalone on loopback where nothing answers.
#[test]
fn every_timeout_spelling_waits_its_time() {
    let p = quiet_port().to_string();
    let np = quiet_port().to_string();
    let standalone = [
        "--standalone",
        "--interface",
        "127.0.0.1/8",
        "--bind",
        "127.0.0.1",
        "--port",
        &p,
    ];
    let with = |head: &[&str], tail: &[&str]| -> Vec<String> {
        head.iter()
            .chain(standalone.iter())
            .chain(tail.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            with(&["listen"], &["--timeout", "400ms"]),
            with(&["listen"], &["--timeout-s", "0.4"]),
        ),
        (
            with(&["message", "listen"], &["--timeout", "0.4s"]),
            with(&["message", "listen"], &["--timeout-s", "0.4"]),
        ),
        (
            with(&["browse"], &["--timeout", "400ms"]),
            with(&["browse"], &["--wait", "0.4"]),
        ),
        (
            with(
                &["dc-ping", "DOM", "--server", "127.0.0.1"],
                &["--timeout", "400ms"],
            ),
            with(
                &["dc-ping", "DOM", "--server", "127.0.0.1"],
                &["--wait", "0.4"],
            ),
        ),
        (
            with(
                &[
                    "send",
                    "--to",
                    "NOBODY<00>",
                    "--text",
                    "x",
                    "--name-port",
                    &np,
                ],
                &["--timeout", "400ms"],
            ),
            with(
                &[
                    "send",
                    "--to",
                    "NOBODY<00>",
                    "--text",
                    "x",
                    "--name-port",
                    &np,
                ],
                &["--timeout-ms", "400"],
            ),
        ),
        (
            with(
                &["message", "send", "NOBODY", "x", "--name-port", &np],
                &["--timeout", "400ms"],
            ),
            with(
                &["message", "send", "NOBODY", "x", "--name-port", &np],
                &["--timeout-ms", "400"],
            ),
        ),
    ];
    let lookup = |t: &[&str]| -> Vec<String> {
        [
            "lookup",
            "FRED",
            "--server",
            "127.0.0.1",
            "--port",
            &np,
            "--tries",
            "1",
        ]
        .iter()
        .chain(t)
        .map(|s| s.to_string())
        .collect()
    };
    let status = |t: &[&str]| -> Vec<String> {
        [
            "status",
            "127.0.0.1",
            "--port",
            &np,
            "--tries",
            "1",
            "--standalone",
        ]
        .iter()
        .chain(t)
        .map(|s| s.to_string())
        .collect()
    };
    let mut all = cases;
    all.push((
        lookup(&["--timeout", "400ms"]),
        lookup(&["--wait-ms", "400"]),
    ));
    all.push((
        status(&["--timeout", "400ms"]),
        status(&["--wait-ms", "400"]),
    ));
    for (new, old) in all {
        for args in [new, old] {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, took, err) = timed(&a);
            assert_eq!(code, Some(1), "{a:?}: {err}");
            assert!(
                took >= std::time::Duration::from_millis(400)
                    && took < std::time::Duration::from_secs(4),
                "{a:?} took {took:?}: {err}"
            );
        }
    }
    // Not both spellings at once, and no bare number for --timeout.
    let o = run(&["listen", "--timeout", "1s", "--timeout-s", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["browse", "--timeout", "3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("1.5s, 500ms, 2m"),
        "{}",
        text(&o.stderr)
    );
}

/// The help of every network tool keeps its examples and shows `--timeout`, not the old
/// spellings.
#[test]
fn help_shows_examples_and_the_new_spellings_only() {
    for cmd in [
        &["send"][..],
        &["listen"],
        &["lookup"],
        &["status"],
        &["browse"],
        &["dc-ping"],
        &["message", "send"],
        &["message", "listen"],
    ] {
        let mut a = cmd.to_vec();
        a.push("--help");
        let o = run(&a);
        assert_eq!(o.status.code(), Some(0), "{a:?}");
        let help = text(&o.stdout);
        assert!(help.contains("Examples:"), "{a:?}: {help}");
        assert!(help.contains("--timeout <DURATION>"), "{a:?}: {help}");
        for old in ["--timeout-ms", "--timeout-s", "--wait-ms", "--wait "] {
            assert!(!help.contains(old), "{a:?} shows {old}: {help}");
        }
    }
}

/// `nbdgm generate` (packaging): one man page per visible command, completions for
/// bash, zsh and fish, and none of them mentions the generator itself.
#[test]
fn generate_writes_man_pages_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man");
    let out = run(&["generate", "man", man.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for page in [
        "nbdgm.1",
        "nbdgm-serve.1",
        "nbdgm-listen.1",
        "nbdgm-message-send.1",
    ] {
        let text = std::fs::read_to_string(man.join(page)).unwrap();
        let stem = page.trim_end_matches(".1");
        assert!(text.contains(&format!("\n.TH {stem} 1 ")), "{page}: {text}");
        assert!(!text.contains("generate"), "{page} mentions generate");
    }
    let serve = std::fs::read_to_string(man.join("nbdgm-serve.1")).unwrap();
    assert!(serve.contains("\\-\\-config"), "{serve}");
    let comp = dir.path().join("completions");
    for (shell, file) in [
        ("bash", "nbdgm.bash"),
        ("zsh", "_nbdgm"),
        ("fish", "nbdgm.fish"),
    ] {
        let out = run(&["generate", "completions", shell, comp.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = std::fs::read_to_string(comp.join(file)).unwrap();
        assert!(text.contains("serve") && text.contains("dc-ping"), "{file}");
        assert!(!text.contains("generate"), "{file} mentions generate");
    }
    let out = run(&["generate", "completions", "tcsh", comp.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let help = run(&["--help"]);
    assert!(!String::from_utf8_lossy(&help.stdout).contains("generate"));
}
