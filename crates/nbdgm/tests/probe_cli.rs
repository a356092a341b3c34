//! `nbdgm probe` from the command line (issue 5 §1, docs/probe.md): usage errors, and in
//! network namespaces (198.51.100.0/24 only) against a real Samba nmbd: JSON/CSV/text
//! output, exit codes with and without `--expect` (Nagios). The lab part needs root,
//! iproute2 and Samba: skipped locally without them, a failure under CI=true.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_lab::{require_or_skip, Host, Lab, LabSpec, Nmbd, NmbdOptions};
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_nbdgm");

fn nbdgm(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run nbdgm")
}

fn in_ns(host: &Host, args: &[&str]) -> Output {
    let mut all = vec!["probe"];
    all.extend_from_slice(args);
    host.output_timeout(BIN, &all, Duration::from_secs(60))
        .expect("run nbdgm in the namespace")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_lists_examples_states_and_exit_codes() {
    let out = nbdgm(&["probe", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let s = text(&out.stdout);
    for want in [
        "Examples:",
        "--expect",
        "--rate",
        "--concurrency",
        "--timeout-ms",
        "--retries",
        "--ports",
        "--workgroup",
        "--format",
        "open|filtered",
        "neighbour-table",
        "UNKNOWN",
    ] {
        assert!(s.contains(want), "{want} missing in:\n{s}");
    }
}

#[test]
fn usage_errors_exit_2_without_probing() {
    for args in [
        vec!["probe"],
        vec!["probe", "198.51.100.300"],
        vec!["probe", "2001:db8::1"],
        vec!["probe", "198.51.100.0/33"],
        vec!["probe", "224.0.0.1"],
        vec!["probe", "198.51.100.0/24", "--max-hosts", "100"],
        vec!["probe", "198.51.100.10", "--ports", "80"],
        vec!["probe", "198.51.100.10", "--retries", "99"],
        vec!["probe", "198.51.100.10", "--timeout-ms", "0"],
        vec!["probe", "198.51.100.10", "--concurrency", "0"],
        vec![
            "probe",
            "198.51.100.10",
            "--workgroup",
            "MUCH_TOO_LONG_WORKGROUP",
        ],
        vec!["probe", "198.51.100.10", "--format", "xml"],
        vec!["probe", "198.51.100.10", "--expect", "maybe"],
    ] {
        let out = nbdgm(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?} printed results");
        assert!(!out.stderr.is_empty(), "{args:?} gave no message");
    }
    // As a Nagios check, a probe that cannot run is UNKNOWN (3), with a status line.
    let out = nbdgm(&["probe", "198.51.100.300", "--expect", "closed"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("NBDGM PROBE UNKNOWN - "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn cli_against_nmbd() {
    if !require_or_skip("cli_against_nmbd") {
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let nmbd = Nmbd::start(&a, NmbdOptions::default()).expect("nmbd");
    nmbd.wait_registered(Duration::from_secs(20))
        .expect("nmbd registered");
    let fast = ["--timeout-ms", "200", "--retries", "1"];

    // JSON: an array of host results; 137/udp open → findings (exit 1).
    let mut args = vec!["198.51.100.10", "--format", "json"];
    args.extend(fast);
    let out = in_ns(&b, &args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let host = &v.as_array().expect("array")[0];
    assert_eq!(host["address"], "198.51.100.10");
    assert_eq!(host["ports"].as_array().unwrap().len(), 5);
    assert_eq!(host["ports"][0]["port"], "137/udp");
    assert_eq!(host["ports"][0]["state"], "open");
    assert_eq!(host["info"]["workgroup"], "TESTGROUP");
    assert!(host["info"]["names"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["name"] == "SAMBAA<00>"));
    let s138 = host["ports"][1]["state"].as_str().unwrap();
    assert!(s138 == "open|filtered" || s138 == "open", "{host}");
    assert_eq!(host["ports"][4]["state"], "closed");

    // CSV: header + one row per port.
    let mut args = vec!["198.51.100.10", "--format", "csv", "--ports", "137,445"];
    args.extend(fast);
    let out = in_ns(&b, &args);
    let csv = text(&out.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("address,hostname,port,state,evidence"));
    assert!(
        lines[1].starts_with("198.51.100.10,,137/udp,open,"),
        "{csv}"
    );
    assert!(
        lines[2].starts_with("198.51.100.10,,445/tcp,closed,"),
        "{csv}"
    );

    // Nagios: expecting closed, 137 open is CRITICAL; the status line comes first.
    let mut args = vec!["198.51.100.10", "--expect", "closed"];
    args.extend(fast);
    let out = in_ns(&b, &args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let first = text(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        first.starts_with("NBDGM PROBE CRITICAL - expected closed: "),
        "{first}"
    );
    assert!(first.contains("198.51.100.10 137/udp open"), "{first}");
    assert!(text(&out.stdout).contains("workgroup: TESTGROUP"));
    // Expecting 445 open: it is closed → CRITICAL.
    let mut args = vec!["198.51.100.10", "--expect", "open", "--ports", "445"];
    args.extend(fast);
    assert_eq!(in_ns(&b, &args).status.code(), Some(2));

    // nmbd stopped: everything closed → OK / exit 0, with a range that also holds
    // absent hosts (silence is open|filtered: WARNING when expecting closed).
    nmbd.stop().expect("stop nmbd");
    let mut args = vec!["198.51.100.10", "--expect", "closed"];
    args.extend(fast);
    let out = in_ns(&b, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).starts_with("NBDGM PROBE OK - 5 port(s) on 1 host(s)"));
    let mut args = vec!["198.51.100.10"];
    args.extend(fast);
    assert_eq!(in_ns(&b, &args).status.code(), Some(0));
    let mut args = vec![
        "198.51.100.8/30",
        "198.51.100.10",
        "--ports",
        "137",
        "--expect",
        "closed",
        "--format",
        "csv",
        // Probe the empty .9 through the kernel (host discovery would say host-down).
        "--no-discovery",
    ];
    args.extend(fast);
    let out = in_ns(&b, &args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let csv = text(&out.stdout);
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows[0].starts_with("198.51.100.9,,137/udp,open|filtered,"),
        "{csv}"
    );
    assert!(
        rows[1].starts_with("198.51.100.10,,137/udp,closed,"),
        "{csv}"
    );
    assert!(text(&out.stderr).starts_with("NBDGM PROBE WARNING"));
}
