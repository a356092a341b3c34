//! The HTTP list pull of browsing across subnets (issue 17 §3) against a running
//! `nbdgm serve` on loopback: the daemon hears two HostAnnouncements (one of another
//! workgroup, one with a name and comment of control characters), and
//! `nbdgm_daemon::browse_sync::fetch_http_list` reads its `/api/browse` with and
//! without `local=true`: our workgroup's server, exact bytes, each once; the other
//! workgroup's server not taken; `sync_list` goes by HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_browser::SyncKind;
use nbdgm_daemon::browse_sync::{fetch_http_list, sync_list};
use nbdgm_wire::browser::{Announcement, BrowserFrame};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

/// A HostAnnouncement of `server` in `workgroup` from `src`, to `TESTGROUP<1D>`.
fn announcement(src: Ipv4Addr, server: &str, comment: &str, workgroup: &str) -> Vec<u8> {
    let frame = BrowserFrame::HostAnnouncement(Announcement {
        server_name: server.into(),
        periodicity_ms: 720_000,
        os_major: 10,
        os_minor: 0,
        server_type: 0x0000_1003,
        comment: comment.into(),
        ..Default::default()
    });
    let data = MailslotWrite::new(BROWSE, frame.to_bytes().unwrap())
        .to_bytes()
        .unwrap();
    Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        7,
        (src, 138),
        Name::new(server, 0).unwrap(),
        Name::new(workgroup, 0x1D).unwrap(),
        data,
    )
    .to_bytes()
    .unwrap()
}

#[test]
fn http_list_pull_from_a_running_daemon() {
    let s = Scratch::new("browse-sync");
    let ports = ports();
    let addr = Ipv4Addr::new(127, 0, 87, 10);
    let http_port = {
        let l = std::net::TcpListener::bind((addr, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let extra = format!("[browser]\nlisten = true\nhttp = \"{addr}:{http_port}\"\n");
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0, "s", "BSYNC", addr, ports, &extra,
    ));
    d.wait_names(&["BSYNC<00>"]);
    let hostile = "EVIL\x1b[2J\x07";
    let comment = "line\nbreak\x1b]0;x\x07";
    let sends = [
        (
            Ipv4Addr::new(127, 0, 87, 20),
            "FARSRV",
            "plain",
            "TESTGROUP",
        ),
        (Ipv4Addr::new(127, 0, 87, 21), hostile, comment, "TESTGROUP"),
        (Ipv4Addr::new(127, 0, 87, 22), "OTHERSRV", "", "OTHERWG"),
    ];
    // Announced until listed: at most 20 rounds, 250 ms apart.
    let mut servers = 0;
    for _ in 0..20 {
        for (src, name, c, wg) in sends {
            let sock = UdpSocket::bind((src, 0)).unwrap();
            sock.send_to(&announcement(src, name, c, wg), (addr, ports.1))
                .unwrap();
        }
        let until = Instant::now() + Duration::from_millis(250);
        while Instant::now() < until {
            servers = counter(&d.stats(), "browser.servers");
            if servers >= 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if servers >= 3 {
            break;
        }
    }
    assert!(servers >= 3, "{}", d.stats());

    for local in [false, true] {
        let (got, _groups) = fetch_http_list(addr, http_port, "testgroup", local).unwrap();
        let mut names: Vec<&str> = got.iter().map(|l| l.name.as_str()).collect();
        names.sort_unstable();
        // Heard here, so `local=true` keeps them (the daemon does not announce itself).
        assert_eq!(names, [hostile, "FARSRV"], "local={local}");
        let evil = got.iter().find(|l| l.name == hostile).unwrap();
        assert_eq!(evil.comment, comment, "JSON keeps the exact bytes");
        assert_eq!((evil.os_major, evil.os_minor), (10, 0));
        assert_eq!(evil.server_type & 0x0000_1003, 0x0000_1003);
    }
    let got = sync_list(
        addr,
        addr,
        "BSYNC",
        "TESTGROUP",
        SyncKind::FromLocalMaster,
        http_port,
    )
    .unwrap();
    assert_eq!(got.via, "http");
    assert_eq!(got.servers.len(), 2);
}
