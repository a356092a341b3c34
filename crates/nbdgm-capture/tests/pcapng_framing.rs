//! pcapng block framing is checked before pcap-parser reads a block.
//!
//! pcap-parser 0.17.0 subtracts 12 from the block total length of a Process
//! Information Block (type 0x80000001) after checking it against only 4, so a block
//! of 4 to 11 bytes panicked with overflow checks on (debug and test builds) and was
//! reported as a truncation in release builds (docs/FUZZING.md, finding 3). These
//! tests run in the default (debug) profile, where that subtraction would panic.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Cursor;

use common::*;
use nbdgm_capture::*;

/// The fuzzer's minimal input: a 28-byte little-endian section header block, then a
/// block of type `01 00 00 80` (Process Information) with total length 8.
const PIB_LEN_8: &str = "0a0d0d0a1c0000004d3c2b1a01000000ffffffffffffffff1c0000000100008008000000";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every event until the end or the first error, the error, and the frame count.
fn drain(bytes: &[u8], buffer_size: usize) -> (Vec<Event<'static>>, Option<CaptureError>, u64) {
    let opts = CaptureOptions {
        buffer_size,
        ..CaptureOptions::default()
    };
    let mut r = CaptureReader::with_options(Cursor::new(bytes), opts).expect("open");
    let mut events = Vec::new();
    let mut error = None;
    while let Some(ev) = r.next_event() {
        match ev {
            Ok(Event::Udp(d)) => events.push(Event::Udp(d.into_owned())),
            Ok(Event::Skipped(p)) => events.push(Event::Skipped(p)),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert!(r.next_event().is_none(), "reader is fused");
    (events, error, r.stats().frames)
}

fn expect_corrupt(err: Option<CaptureError>, offset: u64, needle: &str) {
    match err {
        Some(CaptureError::Corrupt { offset: o, reason }) => {
            assert_eq!(o, offset, "{reason}");
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
        other => panic!("expected Corrupt at {offset}, got {other:?}"),
    }
}

#[test]
fn short_process_information_block_is_corrupt_not_a_panic() {
    let bytes = unhex(PIB_LEN_8);
    assert_eq!(bytes.len(), 36);
    let (events, err, frames) = drain(&bytes, 0);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(frames, 0);
    let e = err.expect("an error");
    assert_eq!(
        e.to_string(),
        "capture file corrupt at byte offset 28: pcapng block (type 0x80000001) \
         total length 8 is below the minimum of 12"
    );
    expect_corrupt(Some(e), 28, "below the minimum of 12");

    // The same through next_udp.
    let mut r = CaptureReader::new(Cursor::new(&bytes)).unwrap();
    match r.next_udp() {
        Some(Err(CaptureError::Corrupt { offset: 28, .. })) => {}
        other => panic!("{other:?}"),
    }
    assert!(r.next_udp().is_none());
}

#[test]
fn every_short_or_unaligned_length_of_every_block_type_is_corrupt() {
    let f = eth(0x0800, &ipv4_udp(138, 138, b"ok"));
    for be in [false, true] {
        // Each block type pcap-parser knows (PIB in both byte orders), and an unknown one.
        for btype in [
            1u32,
            2,
            3,
            4,
            5,
            6,
            0x0A0D_0D0A,
            0x0000_0BAD,
            0x0000_0BAD_u32.swap_bytes(),
            0x5344_4D4A,
            0x0000_0BAC,
            0x4000_0BAC,
            0x8000_0001,
            0x0100_0080,
        ] {
            for len in [0u32, 1, 4, 7, 8, 11, 13, 14, 15, 30, 0x7FFF_FFFE] {
                let mut ng = PcapNg::new(be);
                ng.idb(1, 0, None).epb(0, 1, &f);
                let at = ng.buf.len();
                let w = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
                ng.buf.extend(w(btype));
                ng.buf.extend(w(len));
                // Enough bytes after it for whatever the length claims (up to 64).
                ng.buf.extend(w(0x1A2B_3C4D));
                ng.buf.extend([0u8; 52]);
                ng.buf.extend(w(len));
                let bytes = ng.bytes();
                for buffer_size in [0, 1 << 20] {
                    let (events, err, frames) = drain(&bytes, buffer_size);
                    assert_eq!(frames, 1, "type {btype:#x} len {len} be {be}");
                    assert!(matches!(events.as_slice(), [Event::Udp(_)]), "{events:?}");
                    let needle = if len < 12 {
                        "below the minimum of 12"
                    } else {
                        "not a multiple of 4"
                    };
                    expect_corrupt(err, at as u64, needle);
                }
            }
        }
    }
}

#[test]
fn consistent_short_process_information_block_is_skipped() {
    // 12 bytes (no process id) and 16 bytes: framing intact, so reading goes on.
    let f = eth(0x0800, &ipv4_udp(138, 138, b"after"));
    for be in [false, true] {
        let mut ng = PcapNg::new(be);
        ng.idb(1, 0, None)
            .block(0x8000_0001, &[])
            .block(0x8000_0001, &[1, 0, 0, 0])
            .epb(0, 2, &f);
        let (events, err, frames) = drain(&ng.bytes(), 0);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(frames, 1);
        match events.as_slice() {
            [Event::Udp(d)] => assert_eq!(&*d.payload, b"after"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn block_longer_than_the_rest_of_the_file_is_truncated() {
    let f = eth(0x0800, &ipv4_udp(138, 138, b"ok"));
    for btype in [6u32, 0x8000_0001, 0x0000_0BAD] {
        let mut ng = PcapNg::new(false);
        ng.idb(1, 0, None).epb(0, 1, &f);
        let at = ng.buf.len();
        ng.buf.extend(btype.to_le_bytes());
        ng.buf.extend(64u32.to_le_bytes());
        ng.buf.extend([0u8; 20]);
        let (events, err, _) = drain(&ng.bytes(), 0);
        assert_eq!(events.len(), 1);
        match err {
            Some(CaptureError::Truncated { offset, .. }) => assert_eq!(offset, at as u64),
            other => panic!("type {btype:#x}: {other:?}"),
        }
    }
    // A header cut short (fewer than 8 bytes) is a truncation too.
    let bytes = unhex(PIB_LEN_8);
    for cut in 29..35 {
        let (_, err, _) = drain(&bytes[..cut], 0);
        match err {
            Some(CaptureError::Truncated { offset: 28, .. }) => {}
            other => panic!("cut {cut}: {other:?}"),
        }
    }
}

#[test]
fn header_split_across_reads_is_checked_once_complete() {
    // The block header arrives a byte at a time: no verdict before the length is in.
    let bytes = unhex(PIB_LEN_8);
    let mut r = CaptureReader::new(Trickle {
        data: &bytes,
        chunk: 1,
    })
    .unwrap();
    match r.next_event() {
        Some(Err(CaptureError::Corrupt { offset: 28, .. })) => {}
        other => panic!("{other:?}"),
    }
}
