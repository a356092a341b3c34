//! The browser service against a real Samba nmbd, in network namespaces on
//! 198.51.100.0/24 (issue 6 §5): elections both ways, each side listing the other,
//! GetBackupListRequest answered by whichever is the local master browser, and LANMAN
//! announcements between two nbdgm nodes decoded by tshark. Facts about nmbd:
//! /work/shared/design/SAMBA-LAB.md. Skipped locally without root, Samba and tshark; a
//! failure under CI=true.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_client::proto::BrowseResult;
use nbdgm_lab::{nmblookup, require_or_skip, Host, Lab, LabSpec, Nmbd, NmbdOptions, Tshark};
use nbdgm_wire::browser::{BrowserFrame, GetBackupListRequest};
use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn daemon_in(host: &Host, dir: &std::path::Path, name: &str, extra: &str) -> Daemon {
    Daemon::start(DaemonSpec::in_host(host, dir, name, extra))
}

fn browser_toml(os_level: u8, preferred: bool) -> String {
    format!(
        "[browser]\nannounce = true\nlocal_master = true\nos_level = {os_level}\n\
         preferred_master = {preferred}\ncomment = \"nbdgm os level {os_level}\"\n"
    )
}

fn wait_list(
    d: &Daemon,
    what: &str,
    secs: u64,
    ok: impl Fn(&BrowseResult) -> bool,
) -> BrowseResult {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = d.client().browse(None).expect("browse");
        if ok(&r) {
            return r;
        }
        assert!(
            Instant::now() < until,
            "{what}: not within {secs} s; list: {r:#?}\nlog:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A GetBackupListRequest from `host` (ephemeral port) to TESTGROUP<1D> at the subnet
/// broadcast; returns every (UDP source, GetBackupListResponse servers) within 3 s.
fn get_backup_list(host: &Host, token: u32) -> Vec<(SocketAddr, Vec<String>)> {
    let addr = host.addr();
    let bcast = host.broadcast();
    host.in_netns(move || {
        let sock = UdpSocket::bind((addr, 0)).unwrap();
        sock.set_broadcast(true).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let frame = BrowserFrame::GetBackupListRequest(GetBackupListRequest {
            count: 4,
            token,
            ..Default::default()
        });
        let data = MailslotWrite::new(BROWSE, frame.to_bytes().unwrap())
            .to_bytes()
            .unwrap();
        let d = Datagram {
            msg_type: MsgType::DirectGroup,
            flags: Flags {
                more: false,
                first: true,
                node_type: NodeType::B,
                reserved: 0,
            },
            id: 0x5151,
            source_ip: addr,
            source_port: port,
            body: Body::Data {
                length: None,
                offset: 0,
                body: DataBody::Names {
                    source_name: Name::new("BRCLIENT", 0).unwrap(),
                    destination_name: Name::new("TESTGROUP", 0x1D).unwrap(),
                    user_data: data,
                },
            },
        };
        sock.send_to(&d.to_bytes().unwrap(), (bcast, 138)).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let Ok(d) = Datagram::parse(&buf[..n]) else {
                continue;
            };
            let Body::Data {
                body: DataBody::Names { user_data, .. },
                ..
            } = d.body
            else {
                continue;
            };
            let Ok(m) = MailslotWrite::parse(&user_data) else {
                continue;
            };
            if let Ok(BrowserFrame::GetBackupListResponse(r)) = BrowserFrame::parse(&m.data) {
                if r.token == token {
                    out.push((from, r.servers));
                }
            }
        }
        out
    })
    .unwrap()
}

/// nmbd keeps the election (our OS level is lower): it stays local master browser, lists
/// our host (we answer its AnnouncementRequest), we list it and its workgroup, and
/// nmbd answers GetBackupListRequest.
#[test]
fn nmbd_stays_master_and_both_list_each_other() {
    if !require_or_skip("nmbd_stays_master_and_both_list_each_other") {
        return;
    }
    let s = Scratch::new("brw-nmbd-master");
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let c = lab.add_host("c", "198.51.100.30/24").unwrap();
    let ours = daemon_in(&b, &s.0, "NBDGMB", &browser_toml(1, false));
    ours.wait_names(&["NBDGMB<00>"]);
    let nmbd = Nmbd::start(&a, NmbdOptions::default()).expect("nmbd");
    nmbd.wait_local_master(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", nmbd.log()));

    // We list nmbd's host (its LocalMasterAnnouncement) and workgroup
    // (DomainAnnouncement), and know it as the master.
    let r = wait_list(&ours, "SAMBAA listed", 30, |r| {
        let i = &r.interfaces[0];
        i.servers.iter().any(|s| s.name == "SAMBAA")
            && i.workgroups.iter().any(|w| w.name == "TESTGROUP")
            && i.master.as_deref() == Some("SAMBAA")
    });
    let i = &r.interfaces[0];
    assert_eq!(i.role, "potential", "{i:?}");
    let sa = i.servers.iter().find(|s| s.name == "SAMBAA").unwrap();
    assert!(sa.types.iter().any(|t| t == "MASTER_BROWSER"), "{sa:?}");
    assert_eq!(sa.address.to_string(), "198.51.100.10");
    let out = b
        .cmd(env!("CARGO_BIN_EXE_nbdgm"))
        .args([
            "browse",
            "--daemon",
            "--workgroup",
            "TESTGROUP",
            "--api-socket",
        ])
        .arg(&ours.socket)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("SAMBAA"), "{text}");

    // nmbd lists us: we answer its AnnouncementRequest (0-30 s) or announce on our
    // schedule; browse.dat shows the entry.
    let dat = nmbd
        .wait_browse_dat("NBDGMB", Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}\n{}", ours.log_text()));
    assert!(dat.contains("nbdgm os level 1"), "{dat}");

    // nmbd is the one that answers GetBackupListRequest; we stay silent.
    let answers = get_backup_list(&c, 0x0A0B_0C0D);
    assert!(!answers.is_empty(), "no GetBackupListResponse");
    for (from, servers) in &answers {
        assert_eq!(from.ip().to_string(), "198.51.100.10", "{answers:?}");
        assert_eq!(servers, &vec!["SAMBAA".to_string()]);
    }
    // nmblookup -M finds nmbd as master browser.
    let r = nmblookup(&c, ["-M", "TESTGROUP"]).unwrap();
    assert_eq!(
        r.addresses("TESTGROUP"),
        vec![Ipv4Addr::new(198, 51, 100, 10)],
        "{}",
        r.stdout
    );
}

/// We have the higher OS level: nmbd loses the election and gives up TESTGROUP<1D>, we
/// become local master browser, and our GetBackupListResponse answers clients.
#[test]
fn nbdgm_wins_the_election_against_nmbd() {
    if !require_or_skip("nbdgm_wins_the_election_against_nmbd") {
        return;
    }
    let s = Scratch::new("brw-we-master");
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let c = lab.add_host("c", "198.51.100.30/24").unwrap();
    let nmbd = Nmbd::start(&a, NmbdOptions::default()).expect("nmbd");
    nmbd.wait_local_master(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", nmbd.log()));

    let ours = daemon_in(&b, &s.0, "NBDGMB", &browser_toml(255, true));
    wait_list(&ours, "nbdgm is master", 60, |r| {
        r.interfaces[0].role == "master" && r.interfaces[0].master.as_deref() == Some("NBDGMB")
    });
    // nmbd gave up <1D>: the master browser lookup finds us only.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let r = nmblookup(&c, ["-M", "TESTGROUP"]).unwrap();
        let addrs = r.addresses("TESTGROUP");
        if addrs == vec![Ipv4Addr::new(198, 51, 100, 20)] {
            break;
        }
        assert!(
            Instant::now() < until,
            "master lookup: {addrs:?}\n{}\nnmbd log tail:\n{}",
            r.stdout,
            tail(&nmbd.log(), 60)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Clients get their backup list from us.
    let answers = get_backup_list(&c, 0x1122_3344);
    assert!(
        !answers.is_empty(),
        "no GetBackupListResponse\n{}",
        ours.log_text()
    );
    for (from, servers) in &answers {
        assert_eq!(from.ip().to_string(), "198.51.100.20", "{answers:?}");
        assert!(servers.iter().any(|s| s == "NBDGMB"), "{servers:?}");
    }
    // And nmbd, now a plain server, is listed by us (it announces itself to the
    // new master, or its earlier announcements are still fresh).
    wait_list(&ours, "SAMBAA listed", 60, |r| {
        r.interfaces[0].servers.iter().any(|s| s.name == "SAMBAA")
    });
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// LAN Manager announcements between two nbdgm nodes: B announces on
/// \MAILSLOT\LANMAN, C lists it as a LANMAN server, and tshark decodes the frames.
#[test]
fn lanman_announcements_between_nbdgm_nodes_decoded_by_tshark() {
    if !require_or_skip("lanman_announcements_between_nbdgm_nodes_decoded_by_tshark") {
        return;
    }
    let s = Scratch::new("brw-lanman");
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let c = lab.add_host("c", "198.51.100.30/24").unwrap();
    let cap = s.0.join("lanman.pcap");
    let shark = Tshark::start(&c, "udp port 138", &cap).expect("tshark");
    let nc = daemon_in(&c, &s.0, "LMLISTEN", "");
    nc.wait_names(&["LMLISTEN<00>"]);
    let nb = daemon_in(
        &b,
        &s.0,
        "LMSENDER",
        "[browser]\nannounce = true\nlm_announce = \"yes\"\nlm_interval_s = 2\ncomment = \"lanman peer\"\n",
    );
    nb.wait_names(&["LMSENDER<00>"]);
    let r = wait_list(&nc, "LMSENDER via LANMAN", 30, |r| {
        r.interfaces[0]
            .servers
            .iter()
            .any(|s| s.name == "LMSENDER" && s.lanman)
    });
    let e = r.interfaces[0]
        .servers
        .iter()
        .find(|s| s.name == "LMSENDER")
        .unwrap();
    assert_eq!(e.comment, "lanman peer");
    drop(nb);
    let path = shark.stop().expect("tshark stop");
    let out = std::process::Command::new("tshark")
        .args(["-r"])
        .arg(&path)
        .args([
            "-Y",
            "mailslot.name == \"\\\\MAILSLOT\\\\LANMAN\"",
            "-T",
            "fields",
            "-e",
            "mailslot.name",
            "-e",
            "browser.command",
            "-e",
            "browser.server",
            "-e",
            "browser.comment",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty(), "no LANMAN frames in the capture");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("LMSENDER") && l.contains("lanman peer")),
        "{text}"
    );
}

/// As backup browser (told so by BecomeBackup), the daemon fetches the master's list
/// over SMB (RAP NetServerEnum2, MS-BRWS §3.3.6) from nmbd + smbd: a server only the
/// master knows (announced to it by unicast) appears in our list.
#[test]
fn backup_browser_fetches_the_masters_list_from_samba() {
    if !require_or_skip("backup_browser_fetches_the_masters_list_from_samba") {
        return;
    }
    let s = Scratch::new("brw-backup");
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let c = lab.add_host("c", "198.51.100.30/24").unwrap();
    let ours = daemon_in(&b, &s.0, "NBDGMB", &browser_toml(1, false));
    ours.wait_names(&["NBDGMB<00>"]);
    let nmbd = Nmbd::start(&a, NmbdOptions::default()).expect("nmbd");
    nmbd.wait_local_master(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", nmbd.log()));
    let _smbd = nbdgm_lab::Smbd::start(&a, &nmbd).expect("smbd");
    // We know the master from its LocalMasterAnnouncement.
    wait_list(&ours, "master known", 30, |r| {
        r.interfaces[0].master.as_deref() == Some("SAMBAA")
    });
    // FARSERVER announces itself to the master only (unicast): we cannot hear it.
    let frame = |f: &BrowserFrame, src_name: &str, dest: Name| {
        let data = MailslotWrite::new(BROWSE, f.to_bytes().unwrap())
            .to_bytes()
            .unwrap();
        Datagram {
            msg_type: MsgType::DirectGroup,
            flags: Flags {
                more: false,
                first: true,
                node_type: NodeType::B,
                reserved: 0,
            },
            id: 0x6161,
            source_ip: Ipv4Addr::new(198, 51, 100, 30),
            source_port: 138,
            body: Body::Data {
                length: None,
                offset: 0,
                body: DataBody::Names {
                    source_name: Name::new(src_name, 0).unwrap(),
                    destination_name: dest,
                    user_data: data,
                },
            },
        }
        .to_bytes()
        .unwrap()
    };
    let ann = frame(
        &BrowserFrame::HostAnnouncement(nbdgm_wire::browser::Announcement {
            periodicity_ms: 720_000,
            server_name: "FARSERVER".into(),
            os_major: 6,
            os_minor: 1,
            server_type: 0x0000_1003,
            comment: "known to the master".into(),
            ..Default::default()
        }),
        "FARSERVER",
        Name::new("TESTGROUP", 0x1D).unwrap(),
    );
    let bb = frame(
        &BrowserFrame::BecomeBackup(nbdgm_wire::browser::BecomeBackup {
            browser_to_promote: "NBDGMB".into(),
            trailing: vec![],
        }),
        "SAMBAA",
        Name::new("NBDGMB", 0).unwrap(),
    );
    c.in_netns(move || {
        let sock = UdpSocket::bind(("198.51.100.30", 138)).unwrap();
        sock.send_to(&ann, ("198.51.100.10", 138)).unwrap();
    })
    .unwrap();
    nmbd.wait_browse_dat("FARSERVER", Duration::from_secs(30))
        .expect("nmbd lists FARSERVER");
    assert!(!ours.client().browse(None).unwrap().interfaces[0]
        .servers
        .iter()
        .any(|s| s.name == "FARSERVER"));
    // Promote us; the daemon fetches the master's list. BecomeBackup is obeyed only
    // from the master's address (issue 12 item 1): send it from nmbd's host (nmbd
    // holds port 138 there).
    a.in_netns(move || {
        let sock = UdpSocket::bind(("198.51.100.10", 0)).unwrap();
        sock.send_to(&bb, ("198.51.100.20", 138)).unwrap();
    })
    .unwrap();
    let r = wait_list(&ours, "FARSERVER from the master", 30, |r| {
        r.interfaces[0]
            .servers
            .iter()
            .any(|s| s.name == "FARSERVER")
    });
    let i = &r.interfaces[0];
    assert_eq!(i.role, "backup");
    let far = i.servers.iter().find(|s| s.name == "FARSERVER").unwrap();
    assert_eq!(far.comment, "known to the master");
    assert!(
        i.workgroups.iter().any(|w| w.name == "TESTGROUP"),
        "{:?}",
        i.workgroups
    );
    let st = ours.stats();
    assert!(counter(&st, "browser.master_syncs") >= 1, "{st}");
}
