//! `decode`'s JSON writer (`nbdgm::decode::json`) against `serde_json`, which wrote the
//! decode output before it: the same bytes for random strings, for every record of the
//! bundled captures, and for those records' payloads with random bytes changed.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/captures.rs"]
mod captures;

use nbdgm::decode::json;
use nbdgm::decode::record::{Meta, Protocol, Record};
use nbdgm::decode::{Format, Style};
use proptest::prelude::*;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

fn fast<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    json::write(&mut out, v);
    out
}

#[test]
fn every_ascii_byte_at_every_offset_escapes_as_serde_json() {
    for b in 0u8..0x80 {
        for at in 0..26 {
            let mut s = "x".repeat(at);
            s.push(char::from(b));
            s.push_str("tail");
            assert_eq!(fast(&s), serde_json::to_vec(&s).unwrap(), "{b:#x} at {at}");
        }
    }
}

#[test]
fn shapes_match_serde_json() {
    use std::collections::BTreeMap;
    let mut m = BTreeMap::new();
    m.insert("k\"1".to_owned(), vec![Some(1.5f64), None, Some(f64::NAN)]);
    m.insert("k2".to_owned(), vec![Some(-0.0), Some(1e300)]);
    assert_eq!(fast(&m), serde_json::to_vec(&m).unwrap());
    // Integer keys: left to serde_json, which quotes them.
    let mut n = BTreeMap::new();
    n.insert(7u16, "seven");
    assert_eq!(fast(&n), serde_json::to_vec(&n).unwrap());
    let v = (i64::MIN, u64::MAX, 'é', (), "a\u{7f}\u{2028}\u{9b}b", -5i8);
    assert_eq!(fast(&v), serde_json::to_vec(&v).unwrap());
    let bytes = serde_bytes_like(&[0, 7, 255]);
    assert_eq!(fast(&bytes), serde_json::to_vec(&bytes).unwrap());
}

struct BytesLike<'a>(&'a [u8]);
impl Serialize for BytesLike<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}
fn serde_bytes_like(b: &[u8]) -> BytesLike<'_> {
    BytesLike(b)
}

proptest! {
    #[test]
    fn random_strings_escape_as_serde_json(s in ".{0,80}", bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        prop_assert_eq!(fast(&s), serde_json::to_vec(&s).unwrap());
        let lossy = String::from_utf8_lossy(&bytes).into_owned();
        prop_assert_eq!(fast(&lossy), serde_json::to_vec(&lossy).unwrap());
        let ascii: String = bytes.iter().map(|&b| char::from(b & 0x7f)).collect();
        prop_assert_eq!(fast(&ascii), serde_json::to_vec(&ascii).unwrap());
    }
}

/// The record and file-name wrapper that `decode` printed with serde_json.
#[derive(Serialize)]
struct WithFile<'a> {
    file: &'a str,
    #[serde(flatten)]
    record: &'a Record,
}

fn check(rec: &Record, styles: &[Style]) {
    assert_eq!(
        fast(rec),
        serde_json::to_vec(rec).unwrap(),
        "frame {}",
        rec.frame
    );
    for style in styles {
        let mut got = Vec::new();
        style.render(rec, &mut got);
        let mut want = match &style.file {
            Some(f) => serde_json::to_vec(&WithFile {
                file: f,
                record: rec,
            })
            .unwrap(),
            None => serde_json::to_vec(rec).unwrap(),
        };
        if style.format == Format::Ndjson {
            want.push(b'\n');
        }
        assert_eq!(got, want, "frame {}", rec.frame);
    }
}

#[test]
fn bundled_capture_records_and_mutations_match_serde_json() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/captures");
    let styles = [
        Style {
            format: Format::Ndjson,
            verbose: false,
            file: None,
        },
        Style {
            format: Format::Json,
            verbose: false,
            file: Some(Arc::from("dir/a \"b\".pcap")),
        },
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut records, mut mutated) = (0, 0);
    for path in captures::capture_files(&dir) {
        let f = std::fs::File::open(&path).unwrap();
        let Ok(mut reader) = nbdgm_capture::CaptureReader::new(f) else {
            continue;
        };
        reader.set_port_filter(nbdgm::decode::port_filter(&[]));
        while let Some(Ok(d)) = reader.next_udp() {
            let meta = Meta {
                frame: d.frame,
                time: d.time.to_rfc3339_micros(),
                time_epoch: d.time.as_f64(),
                src: d.src,
                dst: d.dst,
            };
            let protocol = Protocol::guess(d.src.port(), d.dst.port(), &d.payload);
            check(&Record::decode(meta.clone(), protocol, &d.payload), &styles);
            records += 1;
            // The same packet with a few bytes changed: odd names, strings, errors.
            let mut p = d.payload.into_owned();
            for _ in 0..4 {
                if p.is_empty() {
                    break;
                }
                let r = next();
                let at = (r % p.len() as u64) as usize;
                p[at] = (r >> 32) as u8;
                check(&Record::decode(meta.clone(), protocol, &p), &styles);
                mutated += 1;
            }
        }
    }
    assert!(records > 1000, "only {records} records");
    assert!(mutated > 1000, "only {mutated} mutated records");
}
