//! Conformance: every bundled capture decodes to its checked-in golden NDJSON, and
//! every capture in the shared collection decodes without a panic.
//! Regenerate the goldens with `UPDATE_GOLDEN=1 cargo test -p nbdgm --test golden`.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/captures.rs"]
mod captures;

use captures::capture_files;
use nbdgm::decode::{decode_stream, port_filter, Format, Sink, Totals};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn decode(path: &Path) -> (String, Totals, Option<String>) {
    let mut out = Vec::new();
    let mut totals = Totals::default();
    let err = {
        let mut sink = Sink::new(&mut out, Format::Ndjson, false);
        let f = std::fs::File::open(path).unwrap();
        let r = decode_stream(f, &port_filter(&[]), &mut sink, &mut totals, 1, |_| {});
        sink.end().unwrap();
        r.err().map(|e| format!("{e:?}"))
    };
    (String::from_utf8(out).unwrap(), totals, err)
}

#[test]
fn bundled_captures_match_golden_output() {
    let dir = repo().join("tests/captures");
    let golden = dir.join("golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    if update {
        std::fs::create_dir_all(&golden).unwrap();
    }
    let files = capture_files(&dir);
    assert!(
        files.len() >= 70,
        "expected the bundled captures, found {}",
        files.len()
    );
    let mut mismatches = Vec::new();
    let mut packets = 0;
    for f in &files {
        let (out, totals, err) = decode(f);
        packets += totals.packets;
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let mut text = out;
        if let Some(e) = err {
            text.push_str(&format!("# error: {e}\n"));
        }
        let g = golden.join(format!("{name}.ndjson"));
        if update {
            std::fs::write(&g, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&g).unwrap_or_else(|e| panic!("{}: {e}", g.display()));
        if want != text {
            let line = want
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(want.lines().count().min(text.lines().count()));
            mismatches.push(format!("{name}: first difference at line {}", line + 1));
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden mismatches:\n{}",
        mismatches.join("\n")
    );
    assert!(packets > 1000, "decoded only {packets} packets");
}

#[test]
fn shared_captures_decode_without_panic() {
    let dir = repo().join("../shared/captures");
    if !dir.is_dir() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "../shared/captures is required in CI"
        );
        eprintln!("SKIP: {} not present", dir.display());
        return;
    }
    let mut n = 0;
    for f in capture_files(&dir) {
        let (_, totals, _) = decode(&f);
        n += totals.packets;
    }
    assert!(n > 0);
}

#[test]
fn known_malformed_samples_are_reported() {
    let dir = repo().join("tests/captures");
    let (out, totals, _) = decode(&dir.join("tcpdump__smb_print_trans-oobr2.pcap"));
    assert_eq!(totals.malformed, 1);
    assert!(out.contains("first-level encoding character outside A..P"));
    let (out, totals, _) = decode(&dir.join("samba-nmbd-probes.pcap"));
    assert!(totals.malformed > 0, "{out}");
}
