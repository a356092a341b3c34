//! Attack: a hostile subnet breaks `nbdgm browse` (issue 12, attacker (a)). Hosts on
//! the subnet announce servers as large as HostAnnouncements make them: 15-character
//! names and 42-character comments of control characters (six bytes each in JSON),
//! every server-type bit (a long `types` list). One API page of 500 such servers is
//! over the client's 256 KiB line limit, so `nbdgm browse` failed. The daemon caps each
//! page in bytes and the client joins pages by their real offsets: `nbdgm browse
//! --format json` lists every server, and `GET /api/browse` stays bounded.

use super::log_forging::browse_datagram;
use crate::common::*;
use nbdgm_client::proto::BrowseResult;
use nbdgm_wire::browser::{Announcement, BrowserFrame, MAX_COMMENT_LEN};
use nbdgm_wire::Name;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// Hostile servers, each announced from an address of its own (so that no per-source
/// limit holds them back).
const SERVERS: usize = 1_500;

fn server_name(i: usize) -> String {
    format!("\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e{i:04}")
}

fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 130 + (i / 250) as u8, 1 + (i % 250) as u8)
}

#[test]
fn browse_pages_survive_hostile_entries() {
    let s = Scratch::new("browse-pages");
    let ports = ports();
    let addr = Ipv4Addr::new(127, 0, 129, 10);
    let http_port = {
        let l = std::net::TcpListener::bind((addr, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let extra = format!("[browser]\nlisten = true\nhttp = \"{addr}:{http_port}\"\n");
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0, "b", "BPAGES", addr, ports, &extra,
    ));
    d.wait_names(&["BPAGES<00>"]);
    let comment = "\x1b".repeat(MAX_COMMENT_LEN);
    let frames: Vec<Vec<u8>> = (0..SERVERS)
        .map(|i| {
            let ann = BrowserFrame::HostAnnouncement(Announcement {
                periodicity_ms: 720_000,
                server_name: server_name(i),
                os_major: 255,
                os_minor: 255,
                server_type: u32::MAX,
                comment: comment.clone(),
                ..Default::default()
            });
            let src = SocketAddrV4::new(source(i), 138);
            browse_datagram(src, "ATTACKER", Name::new("TESTGROUP", 0x1D).unwrap(), &ann)
        })
        .collect();
    // At most three rounds of SERVERS datagrams, paced; each round waits up to 10 s.
    let mut listed = 0;
    for _round in 0..3 {
        for (i, f) in frames.iter().enumerate() {
            let sock = UdpSocket::bind((source(i), 0)).unwrap();
            sock.send_to(f, (addr, ports.1)).unwrap();
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            listed = counter(&d.stats(), "browser.servers");
            if listed >= SERVERS as u64 || Instant::now() > until {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if listed >= SERVERS as u64 {
            break;
        }
    }
    assert!(listed >= SERVERS as u64, "listed {listed}: {}", d.stats());
    let want: BTreeSet<String> = (0..SERVERS).map(server_name).collect();
    let names = |r: &BrowseResult| -> BTreeSet<String> {
        r.interfaces
            .iter()
            .flat_map(|i| i.servers.iter().map(|s| s.name.clone()))
            .collect()
    };

    // The CLI: every server, exactly once, with its exact comment.
    let api = d.socket.to_str().unwrap().to_owned();
    let out = run(&[
        "browse",
        "--daemon",
        "--api-socket",
        &api,
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "nbdgm browse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: BrowseResult = serde_json::from_slice(&out.stdout).unwrap();
    let i = &r.interfaces[0];
    assert_eq!(i.servers_total, SERVERS);
    assert_eq!(i.servers.len(), SERVERS);
    assert_eq!(names(&r), want);
    assert!(i.servers.iter().all(|s| s.comment == comment));

    // One API page is within the byte cap (and so under the line limit), yet not empty.
    let mut c = d.client();
    let page: BrowseResult = c
        .call(nbdgm_client::proto::Op::Browse {
            workgroup: None,
            offset: Some(0),
            limit: Some(nbdgm_client::proto::BROWSE_PAGE_MAX),
            local: false,
        })
        .unwrap();
    let len = serde_json::to_vec(&page).unwrap().len();
    assert!(len <= nbdgm_client::proto::BROWSE_PAGE_BYTES, "{len}");
    assert!(!page.interfaces[0].servers.is_empty());

    // HTTP: pages of bounded size (1 MiB of entries) that `?offset=` joins into the
    // whole list.
    let mut got = BTreeSet::new();
    let mut offset = 0;
    for _ in 0..16 {
        let mut t = std::net::TcpStream::connect((addr, http_port)).unwrap();
        t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            t,
            "GET /api/browse?offset={offset} HTTP/1.1\r\nHost: {addr}:{http_port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = Vec::new();
        t.take(16 << 20).read_to_end(&mut resp).unwrap();
        let resp = String::from_utf8(resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{}", &resp[..200]);
        let body = resp.split("\r\n\r\n").nth(1).unwrap();
        assert!(body.len() <= (1 << 20) + (64 << 10), "{}", body.len());
        let r: BrowseResult = serde_json::from_str(body).unwrap();
        let i = &r.interfaces[0];
        assert_eq!(i.servers_total, SERVERS);
        assert!(!i.servers.is_empty(), "an empty page at offset {offset}");
        offset += i.servers.len();
        got.extend(names(&r));
        if offset >= SERVERS {
            break;
        }
    }
    assert_eq!(got, want);
}
