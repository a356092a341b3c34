//! What real peers send that the specifications do not allow (docs/peers.md): each
//! leniency with the bytes quoted, through the wire codec, `decode` (a warning, fields
//! kept) and the browser engine (the host kept, a counter).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm::decode::record::{Meta, Protocol, Record};
use nbdgm::decode::{Format, Style};
use nbdgm_browser::{Browser, BrowserConfig, Inbound};
use nbdgm_wire::browser::BrowserFrame;
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Instant;

/// A HostAnnouncement as Samba 3 nmbd writes it for a host whose NetBIOS name has 16
/// characters (`push_string(p+5, name, 16, STR_ASCII|STR_TERMINATE)`: the conversion stops
/// when the 16 bytes are full, so no NUL), the layout of SAMBA-LAB malformed case 23
/// ("MALF23XXXXXXXXXX", accepted by nmbd 4.17). Mailslot data of `\MAILSLOT\BROWSE`.
const SAMBA_16_BYTE_HOST_ANNOUNCEMENT: [u8; 45] = [
    0x01, // HostAnnouncement
    0x00, // UpdateCount
    0x60, 0xea, 0x00, 0x00, // Periodicity 60000 ms
    b'F', b'I', b'L', b'E', b'S', b'E', b'R', b'V', b'E', b'R', b'-', b'B', b'U', b'I', b'L',
    b'D', // ServerName: 16 bytes, no NUL
    0x04, 0x09, // OS version 4.9 (Samba's announce version)
    0x03, 0x9a, 0x81, 0x00, // ServerType 0x00819a03
    0x0f, 0x01, // BrowserVersion 0x010f
    0x55, 0xaa, // Signature
    b'S', b'a', b'm', b'b', b'a', b' ', b'3', b'.', b'0', b'.', b'3', b'7', 0x00, // Comment
];

/// The same bytes as a DomainAnnouncement (opcode 0x0C): MachineGroup of 16 bytes.
fn domain_announcement_16() -> Vec<u8> {
    let mut d = SAMBA_16_BYTE_HOST_ANNOUNCEMENT.to_vec();
    d[0] = 0x0c;
    d[6..22].copy_from_slice(b"ENGINEERING-LABS");
    d[32..].copy_from_slice(b"FILESERVER-B\0");
    d
}

fn datagram(source: &str, destination: Name, data: &[u8]) -> Vec<u8> {
    let w = MailslotWrite::new(BROWSE, data.to_vec())
        .to_bytes()
        .unwrap();
    Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        0x20c0,
        (Ipv4Addr::new(198, 51, 100, 10), 138),
        Name::new(source, 0).unwrap(),
        destination,
        w,
    )
    .to_bytes()
    .unwrap()
}

fn decode(payload: &[u8]) -> Record {
    let meta = Meta {
        frame: 1,
        time: "2026-12-07T00:00:00.000000Z".into(),
        time_epoch: 0.0,
        src: SocketAddr::from(([198, 51, 100, 10], 138)),
        dst: SocketAddr::from(([198, 51, 100, 255], 138)),
    };
    Record::decode(meta, Protocol::Nbdgm, payload)
}

fn render(r: &Record, format: Format) -> String {
    let style = Style {
        format,
        verbose: false,
        file: None,
    };
    let mut out = Vec::new();
    style.render(r, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn codec_keeps_a_16_byte_server_name_and_emits_it_back() {
    let f = BrowserFrame::parse(&SAMBA_16_BYTE_HOST_ANNOUNCEMENT).unwrap();
    let BrowserFrame::HostAnnouncement(a) = &f else {
        panic!("{f:?}")
    };
    assert_eq!(a.server_name, "FILESERVER-BUILD");
    assert!(a.server_name_unterminated);
    assert_eq!(a.server_type, 0x0081_9a03);
    assert_eq!(a.comment, "Samba 3.0.37");
    assert_eq!(f.to_bytes().unwrap(), SAMBA_16_BYTE_HOST_ANNOUNCEMENT);
    let d = domain_announcement_16();
    let f = BrowserFrame::parse(&d).unwrap();
    let BrowserFrame::DomainAnnouncement(g) = &f else {
        panic!("{f:?}")
    };
    assert_eq!(g.machine_group, "ENGINEERING-LABS");
    assert!(g.machine_group_unterminated);
    assert_eq!(f.to_bytes().unwrap(), d);
}

#[test]
fn decode_shows_the_frame_with_a_warning() {
    let p = datagram(
        "FILESERVER-BUIL",
        Name::new("TESTGROUP", 0x1d).unwrap(),
        &SAMBA_16_BYTE_HOST_ANNOUNCEMENT,
    );
    let r = decode(&p);
    assert_eq!(r.malformed, None);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("ServerName"), "{:?}", r.warnings);
    let json = render(&r, Format::Ndjson);
    let v: serde_json::Value = serde_json::from_str(json.trim_end()).unwrap();
    assert_eq!(v["browser"]["server_name"], "FILESERVER-BUILD");
    assert_eq!(v["browser"]["server_name_unterminated"], true);
    assert_eq!(v["browser"]["server_type"], 0x0081_9a03);
    assert_eq!(v["malformed"], serde_json::Value::Null);
    // The direct writer and serde agree on the flagged frame too.
    assert_eq!(json.trim_end(), serde_json::to_string(&r).unwrap());
    let text = render(&r, Format::Text);
    assert!(text.contains("[warning: ServerName fills"), "{text}");
    assert!(!text.contains("MALFORMED"), "{text}");

    let p = datagram("FILESERVER-B", Name::msbrowse(), &domain_announcement_16());
    let r = decode(&p);
    assert_eq!(r.malformed, None);
    assert!(
        r.warnings.iter().any(|w| w.contains("MachineGroup")),
        "{:?}",
        r.warnings
    );
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["browser"]["machine_group"], "ENGINEERING-LABS");
    assert_eq!(v["browser"]["machine_group_unterminated"], true);

    // A normal announcement: no warning, no flag key.
    let mut normal = SAMBA_16_BYTE_HOST_ANNOUNCEMENT;
    normal[21] = 0;
    let r = decode(&datagram(
        "FILESERVER-BUIL",
        Name::new("TESTGROUP", 0x1d).unwrap(),
        &normal,
    ));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let json = render(&r, Format::Ndjson);
    assert!(!json.contains("unterminated"), "{json}");
}

fn feed(b: &mut Browser, now: Instant, src: &str, dst: &Name, data: &[u8]) {
    let source = Name::new(src, 0).unwrap();
    b.handle(
        now,
        Inbound {
            from: SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 10), 138),
            source: &source,
            destination: dst,
            mailslot: BROWSE,
            data,
            broadcast: true,
            request_len: 82 + data.len(),
        },
    );
}

#[test]
fn browser_keeps_the_host_under_its_15_character_netbios_name_and_counts_it() {
    let t0 = Instant::now();
    let cfg = BrowserConfig::new("RUSTHOST", "TESTGROUP");
    let mut b = Browser::new(cfg, t0, 7).unwrap();
    b.start(t0);
    b.name_registered(t0, &Name::new("RUSTHOST", 0).unwrap());
    while b.poll_action().is_some() {}
    let wg = Name::new("TESTGROUP", 0x1d).unwrap();
    feed(
        &mut b,
        t0,
        "FILESERVER-BUIL",
        &wg,
        &SAMBA_16_BYTE_HOST_ANNOUNCEMENT,
    );
    feed(
        &mut b,
        t0,
        "FILESERVER-B",
        &Name::msbrowse(),
        &domain_announcement_16(),
    );
    let st = b.stats();
    assert_eq!(st.unterminated_names_accepted, 2);
    assert_eq!(st.refused_malformed, 0);
    let list = b.list(t0);
    let s = list
        .servers
        .iter()
        .find(|s| s.name == "FILESERVER-BUIL")
        .unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(s.workgroup, "TESTGROUP");
    assert_eq!(s.server_type, 0x0081_9a03);
    assert_eq!(s.comment, "Samba 3.0.37");
    assert!(
        list.workgroups.iter().any(|w| w.name == "ENGINEERING-LAB"),
        "{list:?}"
    );
    // The counter is a field of the stats the daemon serializes.
    let v = serde_json::to_value(st).unwrap();
    assert_eq!(v["unterminated_names_accepted"], 2);
}

/// Captured in the lab (issue 17): Samba 4.17.12 nmbd with `netbios name =
/// LONGSAMBAHOSTNAME` (17 characters), as LMB of TESTGROUP: its DomainAnnouncement names
/// the whole netbios name as LocalMasterBrowserName, beyond the 15 characters MS-BRWS
/// allows. Mailslot data of `\MAILSLOT\BROWSE` (frame 10 of the lab capture).
const SAMBA_4_17_DOMAIN_ANNOUNCEMENT: [u8; 50] = [
    0x0c, 0x02, 0xc0, 0xd4, 0x01, 0x00, // DomainAnnouncement, UpdateCount 2, 120000 ms
    b'T', b'E', b'S', b'T', b'G', b'R', b'O', b'U', b'P', 0, 0, 0, 0, 0, 0, 0, // MachineGroup
    0x06, 0x01, 0x00, 0x10, 0x00, 0x80, 0x0f, 0x01, 0x55, 0xaa, // version, type, 0x010f, sig
    b'L', b'O', b'N', b'G', b'S', b'A', b'M', b'B', b'A', b'H', b'O', b'S', b'T', b'N', b'A', b'M',
    b'E', 0, // LocalMasterBrowserName: 17 characters
];

/// The same nmbd's HostAnnouncement (frame 1): `push_string(p+5, name, 16,
/// STR_ASCII|STR_TERMINATE)` fails with E2BIG and Samba 4's `push_ascii` then zeroes the
/// first byte, so ServerName is empty with "ONGSAMBAHOSTNAM" after its NUL. The datagram's
/// source name is blank too. Nothing names the host: parsed (padding kept), refused by the
/// browser as before.
const SAMBA_4_17_HOST_ANNOUNCEMENT: [u8; 42] = [
    0x01, 0x00, 0x60, 0xea, 0x00, 0x00, // HostAnnouncement, UpdateCount 0, 60000 ms
    0x00, b'O', b'N', b'G', b'S', b'A', b'M', b'B', b'A', b'H', b'O', b'S', b'T', b'N', b'A',
    b'M', // ServerName: NUL, then 15 bytes of the name
    0x06, 0x01, 0x03, 0x9a, 0x81, 0x00, 0x0f, 0x01, 0x55, 0xaa, // version, type, 0x010f, sig
    b'p', b'e', b'e', b'r', b's', b' ', b'l', b'a', b'b', 0, // Comment
];

fn started() -> (Browser, Instant) {
    let t0 = Instant::now();
    let cfg = BrowserConfig::new("RUSTHOST", "OTHERGROUP");
    let mut b = Browser::new(cfg, t0, 7).unwrap();
    b.start(t0);
    b.name_registered(t0, &Name::new("RUSTHOST", 0).unwrap());
    while b.poll_action().is_some() {}
    (b, t0)
}

#[test]
fn samba_4_17_long_local_master_name_keeps_the_workgroup() {
    let f = BrowserFrame::parse(&SAMBA_4_17_DOMAIN_ANNOUNCEMENT).unwrap();
    assert_eq!(f.to_bytes().unwrap(), SAMBA_4_17_DOMAIN_ANNOUNCEMENT);
    assert!(f.check_sender_limits().is_err());
    let (mut b, t0) = started();
    feed(
        &mut b,
        t0,
        "SAMBA",
        &Name::msbrowse(),
        &SAMBA_4_17_DOMAIN_ANNOUNCEMENT,
    );
    assert_eq!(b.stats().long_master_names_accepted, 1);
    assert_eq!(b.stats().refused_malformed, 0);
    let list = b.list(t0);
    let w = list
        .workgroups
        .iter()
        .find(|w| w.name == "TESTGROUP")
        .unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(w.master, "LONGSAMBAHOSTNA");
    // decode: no warning needed, nothing refused.
    let r = decode(&datagram(
        "SAMBA",
        Name::msbrowse(),
        &SAMBA_4_17_DOMAIN_ANNOUNCEMENT,
    ));
    assert_eq!(r.malformed, None);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["browser"]["local_master_name"], "LONGSAMBAHOSTNAME");
}

#[test]
fn samba_4_17_clobbered_server_name_is_decoded_and_refused() {
    let f = BrowserFrame::parse(&SAMBA_4_17_HOST_ANNOUNCEMENT).unwrap();
    let BrowserFrame::HostAnnouncement(a) = &f else {
        panic!("{f:?}")
    };
    assert_eq!(a.server_name, "");
    assert!(!a.server_name_unterminated);
    assert_eq!(a.server_name_padding, b"ONGSAMBAHOSTNAM");
    assert_eq!(f.to_bytes().unwrap(), SAMBA_4_17_HOST_ANNOUNCEMENT);
    let r = decode(&datagram(
        "SAMBA",
        Name::new("OTHERGROUP", 0x1d).unwrap(),
        &SAMBA_4_17_HOST_ANNOUNCEMENT,
    ));
    assert_eq!(r.malformed, None);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(
        v["browser"]["server_name_padding"],
        "4f4e4753414d4241484f53544e414d"
    );
    let (mut b, t0) = started();
    feed(
        &mut b,
        t0,
        "SAMBA",
        &Name::new("OTHERGROUP", 0x1d).unwrap(),
        &SAMBA_4_17_HOST_ANNOUNCEMENT,
    );
    assert_eq!(b.stats().refused_malformed, 1, "{:?}", b.stats());
    let list = b.list(t0);
    assert!(
        list.servers.iter().all(|s| s.name == "RUSTHOST"),
        "{list:?}"
    );
}
