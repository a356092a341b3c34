//! Compares the UDP extraction with TShark on every capture in the shared folder
//! (`shared/captures`, beside the repository root).
//!
//! For each file, the datagrams to or from ports 137/138 must be the frames that
//! `tshark -r F -Y 'udp.port==137||udp.port==138'` lists (TShark reassembles IPv4
//! by default, as this crate does): same count, and for each the same frame number,
//! timestamp (to the nanosecond), ports and payload bytes.
//!
//! Skipped only when TShark is missing and the environment variable `CI` is not
//! `"true"`; with `CI=true` a missing TShark fails the test.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use nbdgm_capture::{CaptureError, CaptureOptions, CaptureReader, PortFilter};

const FILTER: &str = "udp.port==137||udp.port==138";

fn captures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/captures")
}

fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// One datagram: frame, "secs.nanos", source port, destination port, payload hex.
type Row = (u64, String, u16, u16, String);

struct TsharkResult {
    rows: Vec<Row>,
    /// TShark reported a damaged file (and still printed what it read).
    damaged: bool,
}

/// The last value of a possibly multi-valued field (tunnels give several).
fn last(field: &str) -> &str {
    field.rsplit(',').next().unwrap_or("")
}

fn run_tshark(path: &Path) -> TsharkResult {
    let out = Command::new("tshark")
        .args(["-n", "-o", "ip.defragment:TRUE", "-r"])
        .arg(path)
        .args(["-Y", FILTER, "-T", "fields"])
        .args(["-e", "frame.number", "-e", "frame.time_epoch"])
        .args([
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
            "-e",
            "udp.payload",
        ])
        .output()
        .expect("run tshark");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let damaged = !out.status.success() || stderr.contains("cut short");
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("");
            (
                get(0).parse().expect("frame number"),
                get(1).to_string(),
                last(get(2)).parse().expect("source port"),
                last(get(3)).parse().expect("destination port"),
                last(get(4)).to_string(),
            )
        })
        .collect();
    TsharkResult { rows, damaged }
}

fn run_ours(path: &Path) -> (Vec<Row>, Option<CaptureError>) {
    let file = std::fs::File::open(path).expect("open capture");
    let opts = CaptureOptions {
        ports: PortFilter::netbios(),
        ..CaptureOptions::default()
    };
    let mut reader = CaptureReader::with_options(file, opts).expect("recognised capture");
    let mut rows = Vec::new();
    while let Some(d) = reader.next_udp() {
        match d {
            Ok(d) => {
                let mut hex = String::with_capacity(d.payload.len() * 2);
                for b in d.payload.iter() {
                    let _ = write!(hex, "{b:02x}");
                }
                rows.push((
                    d.frame,
                    format!("{}.{:09}", d.time.secs, d.time.nanos),
                    d.src.port(),
                    d.dst.port(),
                    hex,
                ));
            }
            Err(e) => return (rows, Some(e)),
        }
    }
    (rows, None)
}

fn compare(path: &Path) -> Result<usize, String> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let want = run_tshark(path);
    let (got, err) = run_ours(path);
    let mut problems = String::new();
    if got.len() != want.rows.len() {
        let _ = writeln!(
            problems,
            "{name}: {} datagrams on 137/138, tshark counts {}",
            got.len(),
            want.rows.len()
        );
    }
    for (g, w) in got.iter().zip(&want.rows) {
        if g != w {
            let _ = writeln!(problems, "{name}: ours {g:?}\n{name}: tshark {w:?}");
            break;
        }
    }
    match (&err, want.damaged) {
        (None, false) => {}
        (Some(CaptureError::Truncated { .. } | CaptureError::Corrupt { .. }), true) => {}
        (e, damaged) => {
            let _ = writeln!(
                problems,
                "{name}: our error {e:?}, tshark reports damage: {damaged}"
            );
        }
    }
    if problems.is_empty() {
        Ok(got.len())
    } else {
        Err(problems)
    }
}

#[test]
fn udp_extraction_matches_tshark() {
    let ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false);
    if !tshark_available() {
        assert!(!ci, "CI=true but tshark is not installed");
        eprintln!("tshark not found: skipping the comparison with tshark");
        return;
    }
    let dir = captures_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng" | "cap")
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no captures in {}", dir.display());

    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let total = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                match compare(path) {
                    Ok(n) => {
                        total.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => failures.lock().unwrap().push(e),
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} captures differ from tshark:\n{}",
        failures.len(),
        files.len(),
        failures.concat()
    );
    eprintln!(
        "{} captures, {} datagrams on ports 137/138, all equal to tshark",
        files.len(),
        total.load(Ordering::Relaxed)
    );
}
