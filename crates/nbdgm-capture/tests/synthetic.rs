//! Captures built byte by byte in the tests.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use common::*;
use nbdgm_capture::*;

struct Out {
    udp: Vec<UdpDatagram<'static>>,
    problems: Vec<FrameProblem>,
    error: Option<CaptureError>,
    stats: Stats,
}

fn read_with<R: std::io::Read>(input: R, opts: CaptureOptions) -> Out {
    let mut r = CaptureReader::with_options(input, opts).expect("open");
    let mut out = Out {
        udp: Vec::new(),
        problems: Vec::new(),
        error: None,
        stats: Stats::default(),
    };
    while let Some(ev) = r.next_event() {
        match ev {
            Ok(Event::Udp(d)) => out.udp.push(d.into_owned()),
            Ok(Event::Skipped(p)) => out.problems.push(p),
            Err(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    assert!(r.next_event().is_none(), "reader is fused");
    out.stats = r.stats();
    out
}

fn read(bytes: &[u8]) -> Out {
    read_with(Cursor::new(bytes), CaptureOptions::default())
}

fn v4(a: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port)
}

fn v6(a: [u8; 16], port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), port)
}

fn one_frame(linktype: u32, frame: &[u8]) -> Out {
    let cap = Pcap::new(linktype, false, false)
        .record(1_600_000_000, 250_000, frame)
        .bytes();
    read(&cap)
}

fn assert_one_v4(out: &Out, payload: &[u8]) {
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    assert_eq!(out.udp.len(), 1);
    let d = &out.udp[0];
    assert_eq!(d.frame, 1);
    assert_eq!(d.src, v4(A, 138));
    assert_eq!(d.dst, v4(B, 138));
    assert_eq!(&*d.payload, payload);
    assert!(d.warnings.is_empty(), "{}", d.warnings);
    assert!(!d.ip_reassembled);
}

#[test]
fn every_link_type() {
    let ip = ipv4_udp(138, 138, b"hello");
    let mut null_le = 2u32.to_le_bytes().to_vec();
    null_le.extend(&ip);
    let mut null_be = 2u32.to_be_bytes().to_vec();
    null_be.extend(&ip);
    let mut loop_ = 2u32.to_be_bytes().to_vec();
    loop_.extend(&ip);
    let cases: Vec<(u32, Vec<u8>)> = vec![
        (LINKTYPE_ETHERNET, eth(0x0800, &ip)),
        (LINKTYPE_LINUX_SLL, sll(0x0800, &ip)),
        (LINKTYPE_LINUX_SLL2, sll2(0x0800, &ip)),
        (LINKTYPE_RAW, ip.clone()),
        (LINKTYPE_DLT_RAW12, ip.clone()),
        (LINKTYPE_DLT_RAW14, ip.clone()),
        (LINKTYPE_IPV4, ip.clone()),
        (LINKTYPE_NULL, null_le),
        (LINKTYPE_NULL, null_be),
        (LINKTYPE_LOOP, loop_),
    ];
    for (lt, frame) in cases {
        let out = one_frame(lt, &frame);
        assert_one_v4(&out, b"hello");
        assert_eq!(out.udp[0].linktype, lt);
        assert_eq!(
            out.udp[0].time.to_rfc3339_micros(),
            "2020-09-13T12:26:40.250000Z"
        );
    }
}

#[test]
fn ipv6_link_types_and_extension_headers() {
    let ip6 = ipv6_udp(137, 138, b"six");
    let mut null_bsd = 24u32.to_le_bytes().to_vec();
    null_bsd.extend(&ip6);
    let mut loop_ = 28u32.to_be_bytes().to_vec();
    loop_.extend(&ip6);
    // Hop-by-hop (8 bytes) then destination options (16 bytes) then UDP.
    let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0];
    ext.extend([17, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    ext.extend(udp(&A6, &B6, 137, 138, b"six"));
    let with_ext = ipv6(A6, B6, 0, &ext);
    let cases: Vec<(u32, Vec<u8>)> = vec![
        (LINKTYPE_IPV6, ip6.clone()),
        (LINKTYPE_RAW, ip6.clone()),
        (LINKTYPE_ETHERNET, eth(0x86DD, &ip6)),
        (LINKTYPE_LINUX_SLL2, sll2(0x86DD, &ip6)),
        (LINKTYPE_NULL, null_bsd),
        (LINKTYPE_LOOP, loop_),
        (LINKTYPE_ETHERNET, eth(0x86DD, &with_ext)),
    ];
    for (lt, frame) in cases {
        let out = one_frame(lt, &frame);
        assert!(out.problems.is_empty(), "{lt}: {:?}", out.problems);
        assert_eq!(out.udp.len(), 1, "linktype {lt}");
        let d = &out.udp[0];
        assert_eq!(d.src, v6(A6, 137));
        assert_eq!(d.dst, v6(B6, 138));
        assert_eq!(&*d.payload, b"six");
        assert!(d.warnings.is_empty(), "{}", d.warnings);
    }
}

#[test]
fn vlan_tags() {
    let ip = ipv4_udp(138, 138, b"tagged");
    for tags in [
        &[0x8100][..],
        &[0x88A8, 0x8100][..],
        &[0x9100, 0x9100, 0x8100][..],
    ] {
        let out = one_frame(LINKTYPE_ETHERNET, &eth_vlan(tags, 0x0800, &ip));
        assert_one_v4(&out, b"tagged");
    }
    // A tag cut short is a per-frame problem, and reading goes on.
    let cap = Pcap::new(LINKTYPE_ETHERNET, false, false)
        .record(1, 0, &eth_vlan(&[0x8100], 0x0800, &ip)[..16])
        .record(2, 0, &eth_vlan(&[0x8100], 0x0800, &ip))
        .bytes();
    let out = read(&cap);
    assert_eq!(out.problems.len(), 1);
    assert_eq!(out.problems[0].frame, 1);
    assert_eq!(out.problems[0].reason, MalformedReason::VlanTagTruncated);
    assert_eq!(out.udp.len(), 1);
    assert_eq!(out.udp[0].frame, 2);
    assert_eq!(out.stats.malformed(MalformedReason::VlanTagTruncated), 1);
}

#[test]
fn sll_with_vlan_protocol() {
    let ip = ipv4_udp(138, 138, b"x");
    let mut tagged = vec![0, 5, 8, 0];
    tagged.extend(&ip);
    let out = one_frame(LINKTYPE_LINUX_SLL, &sll(0x8100, &tagged));
    assert_one_v4(&out, b"x");
}

/// Fragments of one IPv4/UDP datagram: (offset in 8-byte units, more, bytes).
fn fragments(id: u16, udp_dgram: &[u8], cuts: &[(usize, usize)]) -> Vec<Vec<u8>> {
    cuts.iter()
        .map(|&(from, to)| {
            let more = to < udp_dgram.len();
            let frag = ((from / 8) as u16) | if more { 0x2000 } else { 0 };
            eth(0x0800, &ipv4(A, B, 17, id, frag, &udp_dgram[from..to]))
        })
        .collect()
}

#[test]
fn ipv4_fragments_out_of_order_with_overlap() {
    let payload: Vec<u8> = (0..100u8).collect();
    let dgram = udp(&A, &B, 138, 138, &payload);
    assert_eq!(dgram.len(), 108);
    // Overlapping pieces: [48,108) last, [16,64) overlaps it, [0,24) overlaps that.
    let f = fragments(7, &dgram, &[(48, 108), (16, 64), (0, 24)]);
    let cap = Pcap::new(LINKTYPE_ETHERNET, false, false)
        .record(10, 0, &f[0])
        .record(10, 1, &eth(0x0806, &[0; 28]))
        .record(10, 2, &f[1])
        .record(10, 3, &f[2])
        .bytes();
    let out = read(&cap);
    assert!(out.problems.is_empty());
    assert_eq!(out.udp.len(), 1);
    let d = &out.udp[0];
    assert_eq!(d.frame, 4, "the frame that completed the datagram");
    assert!(d.ip_reassembled);
    assert_eq!(&*d.payload, payload.as_slice());
    assert!(d.warnings.is_empty(), "checksum verifies: {}", d.warnings);
    assert_eq!(out.stats.frames, 4);
    assert_eq!(out.stats.ip_fragments, 3);
    assert_eq!(out.stats.reassembled, 1);
    assert_eq!(out.stats.reassembly_overlaps, 2);
    assert_eq!(out.stats.non_udp, 1);
    assert_eq!(out.stats.reassembly_dropped.total(), 0);
}

#[test]
fn overlap_cannot_rewrite_received_bytes() {
    let payload = vec![0xAAu8; 40];
    let dgram = udp(&A, &B, 138, 138, &payload);
    let first = eth(0x0800, &ipv4(A, B, 17, 9, 0x2000, &dgram[..24]));
    // A forged fragment overlapping bytes 16..24 with different contents.
    let mut forged = dgram[16..32].to_vec();
    forged[..8].fill(0x55);
    let middle = eth(0x0800, &ipv4(A, B, 17, 9, 2 | 0x2000, &forged));
    let last = eth(0x0800, &ipv4(A, B, 17, 9, 4, &dgram[32..]));
    let cap = Pcap::new(LINKTYPE_ETHERNET, false, false)
        .record(1, 0, &first)
        .record(1, 0, &middle)
        .record(1, 0, &last)
        .bytes();
    let out = read(&cap);
    assert_eq!(out.udp.len(), 1);
    assert_eq!(&*out.udp[0].payload, payload.as_slice());
}

#[test]
fn reassembly_caps() {
    let dg1 = udp(&A, &B, 138, 138, &[1; 40]);
    let dg2 = udp(&A, &B, 138, 138, &[2; 40]);
    let f1 = fragments(1, &dg1, &[(0, 24), (24, 48)]);
    let f2 = fragments(2, &dg2, &[(0, 24), (24, 48)]);
    // One pending datagram at most: the second evicts the first.
    let cap = Pcap::new(LINKTYPE_ETHERNET, false, false)
        .record(1, 0, &f1[0])
        .record(1, 0, &f2[0])
        .record(1, 0, &f1[1])
        .record(1, 0, &f2[1])
        .bytes();
    let opts = CaptureOptions {
        reassembly: ReassemblyLimits {
            max_pending: 1,
            ..ReassemblyLimits::default()
        },
        ..CaptureOptions::default()
    };
    let out = read_with(Cursor::new(&cap), opts);
    assert_eq!(out.udp.len(), 0);
    assert_eq!(out.stats.reassembly_dropped.pending_limit, 3);
    assert_eq!(out.stats.reassembly_dropped.incomplete_at_end, 1);
    assert_eq!(out.stats.ip_fragments, 4);

    // Age in capture time: the last fragment comes 31 s after the first.
    let cap = Pcap::new(LINKTYPE_ETHERNET, false, false)
        .record(100, 0, &f1[0])
        .record(131, 0, &f1[1])
        .record(131, 0, &f2[0])
        .record(132, 0, &f2[1])
        .bytes();
    let out = read(&cap);
    assert_eq!(out.udp.len(), 1);
    assert_eq!(out.udp[0].frame, 4);
    assert_eq!(out.stats.reassembly_dropped.timeout, 1);
    assert_eq!(out.stats.reassembly_dropped.incomplete_at_end, 1);

    // Byte cap smaller than one datagram.
    let opts = CaptureOptions {
        reassembly: ReassemblyLimits {
            max_bytes: 16,
            ..ReassemblyLimits::default()
        },
        ..CaptureOptions::default()
    };
    let cap = Pcap::new(LINKTYPE_ETHERNET, false, false)
        .record(1, 0, &f1[0])
        .record(1, 0, &f1[1])
        .bytes();
    let out = read_with(Cursor::new(&cap), opts);
    assert_eq!(out.udp.len(), 0);
    assert_eq!(out.stats.reassembly_dropped.byte_limit, 2);

    // Reassembly off: fragments are counted only.
    let opts = CaptureOptions {
        reassembly: ReassemblyLimits {
            enabled: false,
            ..ReassemblyLimits::default()
        },
        ..CaptureOptions::default()
    };
    let cap = Pcap::new(LINKTYPE_ETHERNET, false, false)
        .record(1, 0, &f1[0])
        .record(1, 0, &f1[1])
        .bytes();
    let out = read_with(Cursor::new(&cap), opts);
    assert_eq!(out.udp.len(), 0);
    assert_eq!(out.stats.ip_fragments, 2);
    assert_eq!(out.stats.reassembled, 0);

    // Oversize (ping-of-death style) fragment.
    let big = eth(0x0800, &ipv4(A, B, 17, 3, 8190, &[0; 64]));
    let out = one_frame(LINKTYPE_ETHERNET, &big);
    assert_eq!(out.stats.reassembly_dropped.oversize, 1);
}

#[test]
fn ipv6_fragments() {
    let payload: Vec<u8> = (0..60u8).collect();
    let dgram = udp(&A6, &B6, 138, 138, &payload);
    let frag = |off: usize, more: bool, data: &[u8]| {
        let mut p = vec![17, 0];
        p.extend((((off / 8) as u16) << 3 | u16::from(more)).to_be_bytes());
        p.extend(0xDEAD_BEEFu32.to_be_bytes());
        p.extend(data);
        eth(0x86DD, &ipv6(A6, B6, 44, &p))
    };
    let cap = Pcap::new(LINKTYPE_ETHERNET, false, false)
        .record(1, 0, &frag(32, false, &dgram[32..]))
        .record(1, 0, &frag(0, true, &dgram[..32]))
        .bytes();
    let out = read(&cap);
    assert_eq!(out.udp.len(), 1);
    let d = &out.udp[0];
    assert!(d.ip_reassembled);
    assert_eq!(d.frame, 2);
    assert_eq!(d.src, v6(A6, 138));
    assert_eq!(&*d.payload, payload.as_slice());
    assert!(d.warnings.is_empty(), "{}", d.warnings);
    // An atomic fragment (offset 0, M=0) is just a header.
    let out = one_frame(LINKTYPE_ETHERNET, &frag(0, false, &dgram));
    assert_eq!(out.udp.len(), 1);
    assert!(!out.udp[0].ip_reassembled);
}

#[test]
fn snaplen_truncation_is_a_warning() {
    let ip = ipv4_udp(137, 137, &[7; 50]);
    let frame = eth(0x0800, &ip);
    let cap = Pcap::new(LINKTYPE_ETHERNET, false, false)
        .record_len(1, 0, &frame[..14 + 20 + 8 + 10], frame.len() as u32)
        .bytes();
    let out = read(&cap);
    assert_eq!(out.udp.len(), 1);
    let d = &out.udp[0];
    assert!(d.warnings.truncated);
    assert!(!d.warnings.bad_checksum, "not verified when truncated");
    assert_eq!(&*d.payload, &[7; 10]);
    assert_eq!(d.udp_length, 58);
    assert_eq!(out.stats.udp_truncated, 1);
}

#[test]
fn bad_udp_length_and_checksum() {
    let mut ip = ipv4_udp(138, 138, b"abcdef");
    // UDP length 200 > IP payload (14).
    ip[24..26].copy_from_slice(&200u16.to_be_bytes());
    let out = one_frame(LINKTYPE_RAW, &ip);
    assert!(out.udp[0].warnings.bad_length);
    assert_eq!(&*out.udp[0].payload, b"abcdef");
    // Ethernet padding after the IP datagram is not payload.
    let mut frame = eth(0x0800, &ipv4_udp(138, 138, b"ab"));
    frame.extend([0; 20]);
    let out = one_frame(LINKTYPE_ETHERNET, &frame);
    assert_eq!(&*out.udp[0].payload, b"ab");
    assert!(out.udp[0].warnings.is_empty());
    // Corrupted payload: bad checksum.
    let mut ip = ipv4_udp(138, 138, b"abcdef");
    ip[30] ^= 0xFF;
    let out = one_frame(LINKTYPE_RAW, &ip);
    assert!(out.udp[0].warnings.bad_checksum);
    assert_eq!(out.stats.udp_bad_checksum, 1);
    // Checksum 0 over IPv4 means none.
    let mut ip = ipv4_udp(138, 138, b"abcdef");
    ip[26..28].fill(0);
    let out = one_frame(LINKTYPE_RAW, &ip);
    assert!(out.udp[0].warnings.is_empty());
    // ... and is flagged over IPv6.
    let mut ip = ipv6_udp(138, 138, b"abcdef");
    ip[46..48].fill(0);
    let out = one_frame(LINKTYPE_RAW, &ip);
    assert!(out.udp[0].warnings.zero_checksum_ipv6);
    // Verification can be turned off.
    let mut ip = ipv4_udp(138, 138, b"abcdef");
    ip[30] ^= 0xFF;
    let cap = Pcap::new(LINKTYPE_RAW, false, false)
        .record(1, 0, &ip)
        .bytes();
    let out = read_with(
        Cursor::new(&cap),
        CaptureOptions {
            verify_checksums: false,
            ..CaptureOptions::default()
        },
    );
    assert!(out.udp[0].warnings.is_empty());
}

#[test]
fn short_frames_are_problems_not_errors() {
    let good = eth(0x0800, &ipv4_udp(138, 138, b"ok"));
    let ip = ipv4_udp(138, 138, b"ok");
    let mut bad_version = ip.clone();
    bad_version[0] = 0x55;
    let mut bad_total = ip.clone();
    bad_total[2..4].copy_from_slice(&10u16.to_be_bytes());
    let cases: Vec<(u32, Vec<u8>, MalformedReason)> = vec![
        (LINKTYPE_ETHERNET, vec![], MalformedReason::EmptyFrame),
        (
            LINKTYPE_ETHERNET,
            good[..10].to_vec(),
            MalformedReason::LinkHeaderTruncated,
        ),
        (
            LINKTYPE_ETHERNET,
            good[..20].to_vec(),
            MalformedReason::Ipv4HeaderTruncated,
        ),
        (
            LINKTYPE_ETHERNET,
            good[..38].to_vec(),
            MalformedReason::UdpHeaderTruncated,
        ),
        (
            LINKTYPE_LINUX_SLL,
            vec![0; 10],
            MalformedReason::LinkHeaderTruncated,
        ),
        (
            LINKTYPE_LINUX_SLL2,
            vec![0; 19],
            MalformedReason::LinkHeaderTruncated,
        ),
        (
            LINKTYPE_NULL,
            vec![2, 0],
            MalformedReason::LinkHeaderTruncated,
        ),
        (LINKTYPE_IPV4, bad_version, MalformedReason::Ipv4BadHeader),
        (
            LINKTYPE_IPV4,
            bad_total,
            MalformedReason::Ipv4BadTotalLength,
        ),
        (
            LINKTYPE_IPV6,
            vec![0x60; 30],
            MalformedReason::Ipv6HeaderTruncated,
        ),
        (
            LINKTYPE_IPV6,
            ipv4_udp(138, 138, &[0; 30]),
            MalformedReason::Ipv6BadHeader,
        ),
        (105, good.clone(), MalformedReason::UnsupportedLinktype),
    ];
    for (lt, frame, reason) in cases {
        let cap = Pcap::new(lt, false, false)
            .record(1, 0, &frame)
            .record(2, 0, if lt == LINKTYPE_ETHERNET { &good } else { &[] })
            .bytes();
        let out = read(&cap);
        assert!(out.error.is_none());
        assert_eq!(out.problems[0].reason, reason, "linktype {lt}");
        assert_eq!(out.problems[0].frame, 1);
        assert_eq!(out.stats.frames, 2);
        assert_eq!(out.stats.malformed(reason), 1);
        if lt == LINKTYPE_ETHERNET {
            assert_eq!(out.udp.len(), 1);
            assert_eq!(out.udp[0].frame, 2);
        }
    }
    let p = FrameProblem {
        frame: 3,
        time: Timestamp::default(),
        linktype: 105,
        reason: MalformedReason::UnsupportedLinktype,
    };
    assert_eq!(
        p.to_string(),
        "frame 3: unsupported link-layer type 105 (IEEE802_11)"
    );
}

#[test]
fn caplen_zero_frame() {
    let good = eth(0x0800, &ipv4_udp(138, 138, b"after"));
    let cap = Pcap::new(LINKTYPE_ETHERNET, false, false)
        .record_len(1, 0, &[], 60)
        .record(2, 0, &good)
        .bytes();
    let out = read(&cap);
    assert_eq!(out.problems.len(), 1);
    assert_eq!(out.problems[0].reason, MalformedReason::EmptyFrame);
    assert_eq!(out.udp.len(), 1);
    assert_eq!(out.udp[0].frame, 2);
    // next_udp skips the problem silently.
    let mut r = CaptureReader::new(Cursor::new(&cap)).unwrap();
    assert_eq!(r.next_udp().unwrap().unwrap().frame, 2);
    assert!(r.next_udp().is_none());
    assert_eq!(r.stats().malformed_frames, 1);
}

#[test]
fn pcap_byte_orders_and_nanoseconds() {
    let frame = eth(0x0800, &ipv4_udp(138, 138, b"t"));
    for be in [false, true] {
        for nanos in [false, true] {
            let frac = if nanos { 123_456_789 } else { 123_456 };
            let cap = Pcap::new(LINKTYPE_ETHERNET, be, nanos)
                .record(1_000_000_000, frac, &frame)
                .bytes();
            let mut r = CaptureReader::new(Cursor::new(&cap)).unwrap();
            assert_eq!(
                r.format(),
                CaptureFormat::Pcap {
                    nanosecond: nanos,
                    big_endian: be,
                    linktype: 1,
                    snaplen: 65_535
                }
            );
            let d = r.next_udp().unwrap().unwrap();
            let want = if nanos { 123_456_789 } else { 123_456_000 };
            assert_eq!(d.time, Timestamp::new(1_000_000_000, want));
            assert_eq!(d.time.to_epoch_micros(), "1000000000.123456");
            assert!(r.next_udp().is_none());
        }
    }
}

#[test]
fn truncated_file_reports_offset_after_good_packets() {
    let f1 = eth(0x0800, &ipv4_udp(138, 138, b"one"));
    let f2 = eth(0x0800, &ipv4_udp(138, 138, b"two"));
    let cap = Pcap::new(LINKTYPE_ETHERNET, false, false)
        .record(1, 0, &f1)
        .record(2, 0, &f2)
        .record(3, 0, &f2)
        .bytes();
    let damage = 24 + 2 * (16 + f1.len());
    for cut in [damage + 3, damage + 16 + 5, cap.len() - 1] {
        let out = read(&cap[..cut]);
        assert_eq!(out.udp.len(), 2, "cut at {cut}");
        match out.error {
            Some(CaptureError::Truncated { offset, .. }) => assert_eq!(offset, damage as u64),
            other => panic!("expected truncation, got {other:?}"),
        }
    }
    // A truncated file header.
    match CaptureReader::new(Cursor::new(&cap[..10])) {
        Err(CaptureError::Truncated { offset: 0, .. }) => {}
        other => panic!("{other:?}"),
    }
    // pcapng: cut inside the second EPB.
    let mut ng = PcapNg::new(false);
    ng.idb(1, 0, None).epb(0, 5, &f1);
    let damage = ng.buf.len();
    ng.epb(0, 6, &f2);
    let bytes = ng.bytes();
    let out = read(&bytes[..bytes.len() - 6]);
    assert_eq!(out.udp.len(), 1);
    let e = out.error.expect("error");
    assert_eq!(e.offset(), Some(damage as u64));
    assert!(e.to_string().contains(&format!("offset {damage}")), "{e}");
}

#[test]
fn not_a_capture() {
    let e = CaptureReader::new(Cursor::new(b"GET / HTTP/1.1\r\n".to_vec())).unwrap_err();
    assert!(matches!(e, CaptureError::NotCapture { magic: 0x4745_5420 }));
    assert_eq!(
        e.to_string(),
        "not a pcap or pcapng file (magic 0x47455420)"
    );
    let e = CaptureReader::new(Cursor::new(Vec::new())).unwrap_err();
    assert!(matches!(e, CaptureError::Empty));
    assert!(e.to_string().starts_with("not a pcap or pcapng file"));
    let e = CaptureReader::new(Cursor::new(vec![0xd4, 0xc3])).unwrap_err();
    assert!(matches!(e, CaptureError::TooShort { len: 2 }));
    // pcapng magic with a bad byte-order magic.
    let mut bad = PcapNg::new(false).bytes();
    bad[8] = 0;
    assert!(matches!(
        CaptureReader::new(Cursor::new(bad)).unwrap_err(),
        CaptureError::Corrupt { offset: 0, .. }
    ));
}

#[test]
fn pcapng_two_interfaces_and_all_packet_blocks() {
    let f_eth = eth(0x0800, &ipv4_udp(138, 138, b"eth"));
    let f_raw = ipv6_udp(137, 137, b"raw");
    for be in [false, true] {
        let mut ng = PcapNg::new(be);
        ng.idb(1, 0, None) // Ethernet, microseconds
            .idb(101, 0, Some(9)) // raw IP, nanoseconds
            .block(0x0000_0BAD, &[1, 2, 3, 4, 5]) // unknown block: skipped
            .epb(0, 1_600_000_000_123_456, &f_eth)
            .epb(1, 1_600_000_000_123_456_789, &f_raw)
            .spb(&f_eth)
            .pb(1, 2_000_000_000_000_000_001, &f_raw)
            .block(5, &[0; 8]) // interface statistics: skipped
            .epb(7, 0, &f_eth); // no interface 7
                                // A new section forgets the interfaces.
        ng.shb().idb(229, 0, Some(3)).epb(0, 1_500, &f_raw);
        let out = read(&ng.bytes());
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(out.problems.len(), 1);
        assert_eq!(out.problems[0].reason, MalformedReason::UnknownInterface);
        assert_eq!(out.problems[0].frame, 5);
        let got: Vec<_> = out
            .udp
            .iter()
            .map(|d| (d.frame, d.interface, d.linktype, d.time, d.payload.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    1,
                    0,
                    1,
                    Timestamp::new(1_600_000_000, 123_456_000),
                    b"eth".to_vec()
                ),
                (
                    2,
                    1,
                    101,
                    Timestamp::new(1_600_000_000, 123_456_789),
                    b"raw".to_vec()
                ),
                (3, 0, 1, Timestamp::new(0, 0), b"eth".to_vec()),
                (4, 1, 101, Timestamp::new(2_000_000_000, 1), b"raw".to_vec()),
                (6, 0, 229, Timestamp::new(1, 500_000_000), b"raw".to_vec()),
            ],
            "big endian: {be}"
        );
        assert_eq!(out.stats.frames, 6);
    }
}

#[test]
fn pcapng_bad_block_body_is_skipped_but_broken_framing_is_fatal() {
    let f = eth(0x0800, &ipv4_udp(138, 138, b"x"));
    let mut ng = PcapNg::new(false);
    ng.idb(1, 0, None).epb(0, 1, &f);
    // An EPB whose captured length exceeds its block.
    let mut body = Vec::new();
    body.extend(0u32.to_le_bytes());
    body.extend([0; 8]);
    body.extend(5000u32.to_le_bytes());
    body.extend(5000u32.to_le_bytes());
    body.extend([0; 8]);
    ng.block(6, &body);
    ng.epb(0, 3, &f);
    let good_len = ng.buf.len();
    // Then a block whose trailing length disagrees.
    ng.epb(0, 4, &f);
    let n = ng.buf.len();
    ng.buf[n - 4] ^= 0x40;
    ng.epb(0, 5, &f);
    let out = read(&ng.bytes());
    assert_eq!(out.udp.len(), 2);
    assert_eq!(out.udp[1].frame, 3);
    assert_eq!(out.problems.len(), 1);
    assert_eq!(out.problems[0].reason, MalformedReason::BadBlock);
    assert_eq!(out.problems[0].frame, 2);
    let e = out.error.expect("fatal");
    assert_eq!(e.offset(), Some(good_len as u64), "{e}");
}

#[test]
fn absurd_pcap_record_length_is_corrupt() {
    let f = eth(0x0800, &ipv4_udp(138, 138, b"x"));
    let mut cap = Pcap::new(LINKTYPE_ETHERNET, false, false)
        .record(1, 0, &f)
        .record(2, 0, &f)
        .bytes();
    let second = 24 + 16 + f.len();
    cap[second + 8..second + 12].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
    cap.extend(vec![0u8; 3 << 20]);
    let out = read(&cap);
    assert_eq!(out.udp.len(), 1);
    match out.error {
        Some(CaptureError::Corrupt { offset, .. }) => assert_eq!(offset, second as u64),
        other => panic!("{other:?}"),
    }
}

#[test]
fn streaming_from_a_slow_reader_and_large_blocks() {
    let f = eth(0x0800, &ipv4_udp(138, 138, b"slow"));
    let mut ng = PcapNg::new(false);
    ng.idb(1, 0, None);
    for i in 0..50 {
        ng.epb(0, i, &f);
    }
    // A 3 MiB unknown block forces the buffer to grow.
    ng.block(0x0000_0BAD, &vec![0x5A; 3 << 20]);
    ng.epb(0, 99, &f);
    let bytes = ng.bytes();
    let out = read_with(
        Trickle {
            data: &bytes,
            chunk: 7,
        },
        CaptureOptions::default(),
    );
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.udp.len(), 51);
    assert!(out.udp.iter().all(|d| &*d.payload == b"slow"));
    let pcap = Pcap::new(LINKTYPE_ETHERNET, true, false)
        .record(1, 0, &f)
        .record(2, 0, &f)
        .bytes();
    let out = read_with(
        Trickle {
            data: &pcap,
            chunk: 1,
        },
        CaptureOptions::default(),
    );
    assert_eq!(out.udp.len(), 2);
    assert!(out.error.is_none());
}

#[test]
fn port_filter() {
    let cap = Pcap::new(LINKTYPE_RAW, false, false)
        .record(1, 0, &ipv4_udp(53, 40_000, b"dns"))
        .record(2, 0, &ipv4_udp(40_000, 137, b"nbns"))
        .record(3, 0, &ipv4_udp(138, 138, b"dgm"))
        .bytes();
    let opts = CaptureOptions {
        ports: PortFilter::netbios(),
        ..CaptureOptions::default()
    };
    let out = read_with(Cursor::new(&cap), opts);
    let frames: Vec<u64> = out.udp.iter().map(|d| d.frame).collect();
    assert_eq!(frames, vec![2, 3]);
    assert_eq!(out.stats.udp, 3);
    assert_eq!(out.stats.udp_matched, 2);
    let mut r = CaptureReader::new(Cursor::new(&cap)).unwrap();
    r.set_port_filter(PortFilter::ports([53]));
    let all: Vec<_> = r.into_owned_iter().map(|d| d.unwrap().frame).collect();
    assert_eq!(all, vec![1]);
}

#[test]
fn tunnels() {
    let inner_eth = eth(0x0800, &ipv4_udp(138, 138, b"inner"));
    let inner_ip = ipv4_udp(138, 138, b"inner");
    // GRE with key, transparent Ethernet bridging (as in zeek's erspan.pcap).
    let mut gre = vec![0x20, 0x00, 0x65, 0x58, 0, 0, 0, 1];
    gre.extend(&inner_eth);
    // ERSPAN type II: sequence number, 8-byte header.
    let mut erspan2 = vec![0x10, 0x00, 0x88, 0xBE, 0, 0, 0, 9];
    erspan2.extend([0x10, 0x01, 0, 0, 0, 0, 0, 0]);
    erspan2.extend(&inner_eth);
    // ERSPAN type III with the platform subheader.
    let mut erspan3 = vec![0x10, 0x00, 0x22, 0xEB, 0, 0, 0, 9];
    erspan3.extend([0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    erspan3.extend([0; 8]);
    erspan3.extend(&inner_eth);
    // GRE carrying IPv4 directly.
    let mut gre_ip = vec![0, 0, 0x08, 0];
    gre_ip.extend(&inner_ip);
    let outer = |proto: u8, payload: &[u8]| {
        eth(
            0x0800,
            &ipv4([10, 0, 0, 1], [10, 0, 0, 2], proto, 5, 0, payload),
        )
    };
    // VXLAN.
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    vx.extend(&inner_eth);
    let vxlan = outer(17, &udp(&[10, 0, 0, 1], &[10, 0, 0, 2], 50_000, 4789, &vx));
    // Teredo: IPv6 in UDP 3544.
    let teredo = outer(
        17,
        &udp(
            &[10, 0, 0, 1],
            &[10, 0, 0, 2],
            3544,
            50_000,
            &ipv6_udp(138, 138, b"inner"),
        ),
    );
    for (name, frame) in [
        ("gre", outer(47, &gre)),
        ("erspan2", outer(47, &erspan2)),
        ("erspan3", outer(47, &erspan3)),
        ("gre-ip", outer(47, &gre_ip)),
        ("ipip", outer(4, &inner_ip)),
        ("vxlan", vxlan),
        ("teredo", teredo),
    ] {
        let out = one_frame(LINKTYPE_ETHERNET, &frame);
        assert_eq!(out.udp.len(), 1, "{name}");
        assert_eq!(&*out.udp[0].payload, b"inner", "{name}");
        assert_eq!(out.udp[0].dst.port(), 138, "{name}");
    }
    // Tunnels off: GRE is not UDP, VXLAN is the outer datagram.
    let opts = CaptureOptions {
        tunnels: false,
        ..CaptureOptions::default()
    };
    let cap = Pcap::new(LINKTYPE_ETHERNET, false, false)
        .record(1, 0, &outer(47, &gre))
        .bytes();
    assert_eq!(read_with(Cursor::new(&cap), opts).udp.len(), 0);
    // A VXLAN-port datagram that is not VXLAN stays itself.
    let not_vx = outer(17, &udp(&[10, 0, 0, 1], &[10, 0, 0, 2], 1, 4789, b"plain"));
    let out = one_frame(LINKTYPE_ETHERNET, &not_vx);
    assert_eq!(&*out.udp[0].payload, b"plain");
}

#[test]
fn mutated_captures_never_panic() {
    let mut ng = PcapNg::new(false);
    let dgram = udp(&A, &B, 138, 138, &[9; 40]);
    let frags = fragments(4, &dgram, &[(0, 24), (24, 48)]);
    ng.idb(1, 0, Some(9))
        .idb(276, 0, None)
        .epb(
            0,
            1,
            &eth_vlan(&[0x8100], 0x0800, &ipv4_udp(138, 138, b"a")),
        )
        .epb(0, 2, &frags[0])
        .epb(0, 3, &frags[1])
        .epb(1, 4, &sll2(0x86DD, &ipv6_udp(137, 137, b"b")))
        .spb(&eth(0x86DD, &ipv6_udp(137, 137, b"c")))
        .pb(0, 5, &eth(0x0800, &ipv4_udp(138, 138, b"d")));
    let base_ng = ng.bytes();
    let base_pcap = Pcap::new(LINKTYPE_ETHERNET, false, false)
        .record(1, 0, &frags[1])
        .record(1, 0, &frags[0])
        .record(1, 0, &eth(0x86DD, &ipv6_udp(137, 137, b"c")))
        .bytes();
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for base in [&base_ng, &base_pcap] {
        for _ in 0..1500 {
            let mut m = base.to_vec();
            for _ in 0..(1 + rnd() % 4) {
                let i = (rnd() as usize) % m.len();
                m[i] = rnd() as u8;
            }
            if rnd() % 4 == 0 {
                let cut = (rnd() as usize) % m.len();
                m.truncate(cut);
            }
            let opts = CaptureOptions {
                buffer_size: 0,
                ..CaptureOptions::default()
            };
            if let Ok(mut r) = CaptureReader::with_options(Cursor::new(&m), opts) {
                let mut n = 0;
                while let Some(ev) = r.next_event() {
                    n += 1;
                    if ev.is_err() || n > 100 {
                        break;
                    }
                }
                let _ = r.stats();
            }
        }
    }
}

#[test]
fn reader_is_send_and_reports_interfaces() {
    fn assert_send<T: Send>() {}
    assert_send::<CaptureReader<std::fs::File>>();
    assert_send::<UdpDatagram<'static>>();
    let mut ng = PcapNg::new(false);
    ng.idb(1, 1500, None).idb(276, 0, Some(9));
    let bytes = ng.bytes();
    let mut r = CaptureReader::new(Cursor::new(&bytes)).unwrap();
    assert_eq!(r.format(), CaptureFormat::PcapNg);
    assert!(r.next_event().is_none());
    let ifs = r.interfaces();
    assert_eq!(ifs.len(), 2);
    assert_eq!((ifs[0].linktype, ifs[0].snaplen), (1, 1500));
    assert_eq!(ifs[0].ts_units_per_sec(), 1_000_000);
    assert_eq!(ifs[1].linktype, LINKTYPE_LINUX_SLL2);
    assert_eq!(ifs[1].ts_units_per_sec(), 1_000_000_000);
    assert_eq!(linktype_name(ifs[1].linktype), "LINUX_SLL2");
}
