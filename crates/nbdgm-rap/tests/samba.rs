//! Interop: RAP NetServerEnum2 against Samba 4.17 (nmbd as local master + smbd), and error
//! paths against a closed port and a non-SMB server. Needs root and the lab tools.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_lab::{require_or_skip, Lab, LabSpec, Nmbd, NmbdOptions, Smbd};
use nbdgm_rap::{net_server_enum2, Options, RapError, SV_TYPE_ALL, SV_TYPE_DOMAIN_ENUM};
use nbdgm_wire::browser::{Announcement, BrowserFrame};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::MailslotWrite;
use nbdgm_wire::Name;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::time::Duration;

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);

fn opts() -> Options {
    Options {
        timeout: Duration::from_secs(10),
        max_entries: 10_000,
        client_name: "RAPCLIENT".into(),
    }
}

/// A HostAnnouncement for `server` in a DIRECT_GROUP datagram from `src`:138 to TESTGROUP<1D>.
fn host_announcement_datagram(server: &str, src: Ipv4Addr) -> Vec<u8> {
    let ann = BrowserFrame::HostAnnouncement(Announcement {
        update_count: 0,
        periodicity_ms: 720_000,
        server_name: server.into(),
        server_name_unterminated: false,
        server_name_padding: vec![],
        os_major: 6,
        os_minor: 1,
        server_type: 0x0000_1003,
        browser_version_major: 0x0F,
        browser_version_minor: 0x01,
        signature: 0xAA55,
        comment: "rap interop".into(),
        comment_unterminated: false,
        trailing: vec![],
    })
    .to_bytes()
    .unwrap();
    let smb = MailslotWrite::new("\\MAILSLOT\\BROWSE", ann)
        .to_bytes()
        .unwrap();
    Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        0x4242,
        (src, 138),
        Name::new(server, 0x00).unwrap(),
        Name::new("TESTGROUP", 0x1D).unwrap(),
        smb,
    )
    .to_bytes()
    .unwrap()
}

#[test]
fn net_server_enum2_against_samba() {
    if !require_or_skip("net_server_enum2_against_samba") {
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let nmbd = Nmbd::start(&a, NmbdOptions::default()).expect("nmbd");
    let smbd = Smbd::start(&a, &nmbd).expect("smbd");

    // Before nmbd is master there may be no list yet; the session itself must work.
    nmbd.wait_local_master(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", nmbd.log()));

    let dgm = host_announcement_datagram("RAPTEST", CLIENT);
    b.in_netns(move || -> std::io::Result<()> {
        let s = UdpSocket::bind(SocketAddrV4::new(CLIENT, 138))?;
        s.set_broadcast(true)?;
        s.send_to(&dgm, SocketAddrV4::new(SERVER, 138))?;
        s.send_to(
            &dgm,
            SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 255), 138),
        )?;
        Ok(())
    })
    .unwrap()
    .expect("send HostAnnouncement");
    nmbd.wait_browse_dat("RAPTEST", Duration::from_secs(30))
        .expect("browse.dat lists RAPTEST");

    let all = b
        .in_netns(|| net_server_enum2(SERVER, "SAMBAA", "TESTGROUP", SV_TYPE_ALL, &opts()))
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}\nsmbd log:\n{}", tail(&smbd.log())));
    eprintln!("servers: {all:#?}");
    let samba = all.iter().find(|s| s.name == "SAMBAA").expect("SAMBAA");
    assert_ne!(samba.server_type & 0x1, 0, "{samba:?}");
    let rt = all.iter().find(|s| s.name == "RAPTEST").expect("RAPTEST");
    assert_eq!(rt.comment, "rap interop");
    // Samba's browse.dat keeps no OS version: smbd reports 0.0 for every entry.
    assert_eq!(rt.server_type & 0x1003, 0x1003, "{rt:?}");

    let domains = b
        .in_netns(|| net_server_enum2(SERVER, "SAMBAA", "TESTGROUP", SV_TYPE_DOMAIN_ENUM, &opts()))
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}\nsmbd log:\n{}", tail(&smbd.log())));
    eprintln!("workgroups: {domains:#?}");
    let wg = domains
        .iter()
        .find(|s| s.name == "TESTGROUP")
        .expect("TESTGROUP");
    assert_eq!(wg.comment, "SAMBAA", "master browser in the comment");

    // A wrong called name falls back to *SMBSERVER.
    let v = b
        .in_netns(|| net_server_enum2(SERVER, "NOSUCHNAME", "TESTGROUP", SV_TYPE_ALL, &opts()))
        .unwrap()
        .expect("*SMBSERVER fallback");
    assert!(v.iter().any(|s| s.name == "RAPTEST"));

    // A tiny max_entries is refused, not truncated.
    let mut small = opts();
    small.max_entries = 1;
    let e = b
        .in_netns(|| net_server_enum2(SERVER, "SAMBAA", "TESTGROUP", SV_TYPE_ALL, &small))
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, RapError::TooLarge(_)), "{e}");

    smbd.stop().unwrap();
    assert!(nmbd.proc().is_running(), "stopping smbd must not stop nmbd");
    nmbd.stop().unwrap();
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[test]
fn closed_port_and_non_smb_server() {
    if !require_or_skip("closed_port_and_non_smb_server") {
        return;
    }
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();

    // Nothing listens on 139: Connect error (refused).
    let e = b
        .in_netns(|| net_server_enum2(SERVER, "SAMBAA", "TESTGROUP", SV_TYPE_ALL, &opts()))
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, RapError::Connect { .. }), "{e}");

    // Servers that answer garbage of various kinds: Malformed (or I/O/timeout), never a panic.
    let replies: Vec<Vec<u8>> = vec![
        b"HTTP/1.0 400 Bad Request\r\n\r\n".to_vec(),
        vec![
            0x82, 0, 0, 0, 0x00, 0, 0, 8, 0xFF, b'S', b'M', b'B', 0x72, 0, 0, 0,
        ],
        vec![0x82, 0, 0, 0, 0x00, 1, 0xFF, 0xFF, 1, 2, 3],
        vec![0x83, 0, 0, 1, 0x8F],
    ];
    for reply in replies {
        let listener = a
            .in_netns(|| TcpListener::bind(SocketAddrV4::new(SERVER, 139)))
            .unwrap()
            .unwrap();
        let expected = reply.clone();
        let server = std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf);
                let _ = s.write_all(&reply);
                // Read whatever comes next, then close.
                let _ = s.read(&mut buf);
            }
        });
        let mut o = opts();
        o.timeout = Duration::from_secs(3);
        let e = b
            .in_netns(move || net_server_enum2(SERVER, "SAMBAA", "TESTGROUP", SV_TYPE_ALL, &o))
            .unwrap()
            .unwrap_err();
        eprintln!("{expected:02x?} -> {e}");
        if expected[0] == 0x83 {
            assert!(
                matches!(e, RapError::SessionRefused { code: 0x8F, .. }),
                "{e}"
            );
        } else {
            assert!(
                matches!(
                    e,
                    RapError::Malformed(_) | RapError::Io { .. } | RapError::Timeout(_)
                ),
                "{e}"
            );
        }
        if expected.starts_with(b"HTTP") {
            assert!(matches!(e, RapError::Malformed(_)), "{e}");
        }
        server.join().unwrap();
    }
}
