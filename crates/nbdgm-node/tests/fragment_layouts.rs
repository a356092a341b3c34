//! Fragment layouts on receive (RFC 1001 §17.1.2; RFC 1002 §5.3.3; DIGEST §2.4, §2.7):
//! the RFC layout (names in the first fragment only) and names repeated in every
//! fragment (Hertel's implementation), from quoted bytes, in and out of order, mixed,
//! and near-misses whose data only looks like repeated names.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_node::sim::Sim;
use nbdgm_node::{Delivery, FragmentLayout, Service};

/// FRED<00>, first-level encoded (RFC 1001 §14.1).
const FRED: &[u8; 34] = b"\x20EGFCEFEECACACACACACACACACACACAAA\x00";
/// BARNEY<03>.
const BARNEY: &[u8; 34] = b"\x20ECEBFCEOEFFJCACACACACACACACACAAD\x00";
/// WILMA<00>.
const WILMA: &[u8; 34] = b"\x20FHEJEMENEBCACACACACACACACACACAAA\x00";

/// DIRECT_UNIQUE header from 10.0.0.9:138 with these FLAGS, DGM_ID, DGM_LENGTH and
/// PACKET_OFFSET, followed by `rest`.
fn packet(flags: u8, id: u16, length: u16, offset: u16, rest: &[&[u8]]) -> Vec<u8> {
    let mut p = vec![0x10, flags];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[10, 0, 0, 9, 0, 138]);
    p.extend_from_slice(&length.to_be_bytes());
    p.extend_from_slice(&offset.to_be_bytes());
    for r in rest {
        p.extend_from_slice(r);
    }
    p
}

fn node() -> Sim {
    let mut sim = net(1);
    sim.register(0, "BARNEY<03>", false).unwrap();
    sim.run_for(secs(1.0));
    sim
}

fn inject(sim: &mut Sim, p: &[u8]) {
    sim.inject(0, sock(9, 138), Service::Datagram, false, p);
}

fn delivered(sim: &Sim) -> Vec<Delivery> {
    sim.delivered(0)
        .into_iter()
        .filter(|d| d.source.to_string().starts_with("FRED"))
        .collect()
}

/// Names repeated: DGM_LENGTH = 68 + this fragment's data, PACKET_OFFSET over user
/// data only. "012345" then "6789".
fn repeated(id: u16) -> [Vec<u8>; 2] {
    [
        packet(0x03, id, 74, 0, &[FRED, BARNEY, b"012345"]),
        packet(0x00, id, 72, 6, &[FRED, BARNEY, b"6789"]),
    ]
}

/// RFC 1001: DGM_LENGTH = 78 (the total) in both, PACKET_OFFSET 74 over the data
/// section.
fn rfc(id: u16) -> [Vec<u8>; 2] {
    [
        packet(0x03, id, 78, 0, &[FRED, BARNEY, b"012345"]),
        packet(0x00, id, 78, 74, &[b"6789"]),
    ]
}

#[test]
fn names_repeated_in_every_fragment_in_and_out_of_order() {
    let mut sim = node();
    let [a, b] = repeated(0x4201);
    inject(&mut sim, &a);
    inject(&mut sim, &b);
    let [a, b] = repeated(0x4202);
    inject(&mut sim, &b);
    inject(&mut sim, &a);
    let got = delivered(&sim);
    assert_eq!(got.len(), 2);
    for d in &got {
        assert_eq!(&d.data[..], b"0123456789");
        assert_eq!(d.fragments, 2);
        assert_eq!(d.fragment_layout, FragmentLayout::RepeatedNames);
        assert_eq!(d.destination.to_string(), "BARNEY<03>");
    }
    let st = sim.node(0).stats();
    assert_eq!(st.datagrams_reassembled, 2);
    assert_eq!(st.datagrams_reassembled_repeated_names, 2);
    assert_eq!(st.reassembly_pending, 0);
    assert_eq!(st.reassembly_bytes, 0);
}

#[test]
fn rfc_layout_and_interleaved_sets_of_both_layouts() {
    let mut sim = node();
    let [r1, r2] = rfc(0x5001);
    let [h1, h2] = repeated(0x5002);
    // Interleaved, each set out of order.
    for p in [&r2, &h2, &h1, &r1] {
        inject(&mut sim, p);
    }
    let got = delivered(&sim);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|d| &d.data[..] == b"0123456789"));
    let layouts: Vec<_> = got.iter().map(|d| d.fragment_layout).collect();
    assert!(layouts.contains(&FragmentLayout::Rfc));
    assert!(layouts.contains(&FragmentLayout::RepeatedNames));
    assert_eq!(sim.node(0).stats().datagrams_reassembled_repeated_names, 1);
}

#[test]
fn one_set_mixing_the_layouts_is_dropped() {
    let mut sim = node();
    // First fragment with a per-fragment length, a repeated-names middle fragment, then
    // an RFC last fragment at data-section offset 68 + 6.
    inject(
        &mut sim,
        &packet(0x03, 0x6001, 70, 0, &[FRED, BARNEY, b"01"]),
    );
    inject(
        &mut sim,
        &packet(0x01, 0x6001, 72, 2, &[FRED, BARNEY, b"2345"]),
    );
    inject(&mut sim, &packet(0x00, 0x6001, 78, 74, &[b"6789"]));
    assert!(delivered(&sim).is_empty());
    let st = sim.node(0).stats();
    assert_eq!(st.dropped.fragment_inconsistent, 1);
    assert_eq!(st.reassembly_pending, 0);
}

#[test]
fn rfc_data_that_looks_like_names_stays_data() {
    let mut sim = node();
    // 1. DGM_LENGTH the total (68 + 6 + 72): the continuation is RFC data even though
    //    it begins with the very same encoded names.
    inject(
        &mut sim,
        &packet(0x03, 0x7001, 146, 0, &[FRED, BARNEY, b"012345"]),
    );
    inject(
        &mut sim,
        &packet(0x00, 0x7001, 146, 74, &[FRED, BARNEY, b"6789"]),
    );
    // 2. The continuation has a per-fragment length and the names, but the first
    //    fragment carries the total: RFC data again.
    inject(
        &mut sim,
        &packet(0x03, 0x7002, 146, 0, &[FRED, BARNEY, b"012345"]),
    );
    inject(
        &mut sim,
        &packet(0x00, 0x7002, 72, 74, &[FRED, BARNEY, b"6789"]),
    );
    // 3. Same as 2, continuation first (it waits for the first fragment to decide).
    inject(
        &mut sim,
        &packet(0x00, 0x7003, 72, 74, &[FRED, BARNEY, b"6789"]),
    );
    inject(
        &mut sim,
        &packet(0x03, 0x7003, 146, 0, &[FRED, BARNEY, b"012345"]),
    );
    let want = [&b"012345"[..], FRED, BARNEY, b"6789"].concat();
    let got = delivered(&sim);
    assert_eq!(got.len(), 3);
    for d in &got {
        assert_eq!(&d.data[..], &want[..]);
        assert_eq!(d.fragment_layout, FragmentLayout::Rfc);
    }
    assert_eq!(sim.node(0).stats().datagrams_reassembled_repeated_names, 0);
}

#[test]
fn near_misses_with_other_names_or_broken_names() {
    let mut sim = node();
    // Per-fragment lengths in both, but the continuation names WILMA: not the first
    // fragment's names, so it is RFC data at offset 6, inside the names: inconsistent.
    inject(
        &mut sim,
        &packet(0x03, 0x7101, 74, 0, &[FRED, BARNEY, b"012345"]),
    );
    inject(
        &mut sim,
        &packet(0x00, 0x7101, 72, 6, &[FRED, WILMA, b"6789"]),
    );
    // The same, continuation first.
    inject(
        &mut sim,
        &packet(0x00, 0x7102, 72, 6, &[WILMA, BARNEY, b"6789"]),
    );
    inject(
        &mut sim,
        &packet(0x03, 0x7102, 74, 0, &[FRED, BARNEY, b"012345"]),
    );
    assert!(delivered(&sim).is_empty());
    assert_eq!(sim.node(0).stats().dropped.fragment_inconsistent, 2);
    // A label length of 0x20 followed by bytes outside 'A'..'P': not a name, so RFC
    // data; the set completes as RFC with DGM_LENGTH per fragment.
    let mut fake = FRED.to_vec();
    fake[1] = b'Z';
    let len = u16::try_from(fake.len()).unwrap();
    inject(
        &mut sim,
        &packet(0x03, 0x7103, 74, 0, &[FRED, BARNEY, b"012345"]),
    );
    inject(&mut sim, &packet(0x00, 0x7103, len, 74, &[&fake]));
    let got = delivered(&sim);
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].data[..], &[&b"012345"[..], &fake].concat()[..]);
    assert_eq!(got[0].fragment_layout, FragmentLayout::Rfc);
    // A truncated repeated-names continuation (names cut short): RFC data, which
    // never completes this set; it expires with FRAGMENT_TO and is counted.
    inject(
        &mut sim,
        &packet(0x03, 0x7104, 74, 0, &[FRED, BARNEY, b"012345"]),
    );
    inject(
        &mut sim,
        &packet(0x00, 0x7104, 40, 6, &[&FRED[..], &BARNEY[..6]]),
    );
    sim.run_for(secs(3.0));
    let st = sim.node(0).stats();
    assert_eq!(st.reassembly_pending, 0);
    assert!(st.dropped.fragment_inconsistent + st.dropped.fragment_timeout >= 3);
}
