//! Browser threat detectors end to end: MS-BRWS frames built with `nbdgm_wire` (raw bytes
//! where the codec refuses the shape), wrapped in mailslot writes and datagrams, fed to
//! `Engine::process`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{nbns_registration, Net};
use nbdgm_watch::{Alert, Severity, WatchConfig};
use nbdgm_wire::browser::{
    Announcement, BecomeBackup, BrowserFrame, DomainAnnouncement, GetBackupListResponse,
    MasterAnnouncement, RequestElection, ResetStateRequest,
};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::Name;

const LMB: &str = "198.51.100.10";
const WS: &str = "198.51.100.20";
const ROGUE: &str = "198.51.100.66";
const WG: &str = "WORKGROUP";

/// Workstation sharing files: WKS | SRV | NT | POTENTIAL.
const TYPE_WS: u32 = 0x0001_1003;
/// The same plus MASTER_BROWSER.
const TYPE_LMB: u32 = 0x0005_1003;

fn datagram(src: &str, src_name: &str, dest: Name, slot_data: Vec<u8>) -> Vec<u8> {
    let w = MailslotWrite::new(BROWSE, slot_data).to_bytes().unwrap();
    Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        7,
        (src.parse().unwrap(), 138),
        Name::new(&src_name[..src_name.len().min(15)], 0).unwrap(),
        dest,
        w,
    )
    .to_bytes()
    .unwrap()
}

fn frame(src: &str, src_name: &str, dest: Name, f: &BrowserFrame) -> Vec<u8> {
    datagram(src, src_name, dest, f.to_bytes().unwrap())
}

fn host_ann(src: &str, name: &str, ty: u32, local_master: bool) -> Vec<u8> {
    let a = Announcement {
        server_name: name.into(),
        os_major: 10,
        os_minor: 0,
        server_type: ty,
        periodicity_ms: 720_000,
        ..Default::default()
    };
    let (f, suffix) = if local_master {
        (BrowserFrame::LocalMasterAnnouncement(a), 0x1e)
    } else {
        (BrowserFrame::HostAnnouncement(a), 0x1d)
    };
    frame(src, name, Name::new(WG, suffix).unwrap(), &f)
}

fn election(src: &str, name: &str, criteria: u32) -> Vec<u8> {
    let f = BrowserFrame::RequestElection(RequestElection {
        criteria,
        uptime_ms: 60_000,
        server_name: name.into(),
        ..Default::default()
    });
    frame(src, name, Name::new(WG, 0x1e).unwrap(), &f)
}

fn slugs(a: &[Alert]) -> Vec<&'static str> {
    a.iter().map(|a| a.signature.slug).collect()
}

#[test]
fn benign_two_host_browsing_gives_no_alert() {
    let mut n = Net::new();
    let mut all = Vec::new();
    all.extend(n.send(0, WS, &host_ann(WS, "WS1", TYPE_WS, false)));
    all.extend(n.send(1, LMB, &host_ann(LMB, "LMB1", TYPE_LMB, false)));
    all.extend(n.send(2, WS, &election(WS, "WS1", 0x1001_0F00)));
    all.extend(n.send(2, LMB, &election(LMB, "LMB1", 0x1001_0F04)));
    all.extend(n.send(3, LMB, &host_ann(LMB, "LMB1", TYPE_LMB, true)));
    let dom = BrowserFrame::DomainAnnouncement(DomainAnnouncement {
        machine_group: WG.into(),
        local_master_name: "LMB1".into(),
        ..Default::default()
    });
    all.extend(n.send(4, LMB, &frame(LMB, "LMB1", Name::msbrowse(), &dom)));
    let ma = BrowserFrame::MasterAnnouncement(MasterAnnouncement {
        master_name: "LMB1".into(),
        ..Default::default()
    });
    all.extend(n.send(
        5,
        LMB,
        &frame(LMB, "LMB1", Name::new("PDC", 0).unwrap(), &ma),
    ));
    let bb = BrowserFrame::BecomeBackup(BecomeBackup {
        browser_to_promote: "WS1".into(),
        ..Default::default()
    });
    all.extend(n.send(
        6,
        LMB,
        &frame(LMB, "LMB1", Name::new("WS1", 0).unwrap(), &bb),
    ));
    // Promoted: the backup bit in its criteria is backed now.
    all.extend(n.send(7, WS, &election(WS, "WS1", 0x1001_0F01)));
    let resp = BrowserFrame::GetBackupListResponse(GetBackupListResponse {
        count: 1,
        token: 1,
        servers: vec!["LMB1".into()],
        ..Default::default()
    });
    all.extend(n.send(
        8,
        LMB,
        &frame(LMB, "LMB1", Name::new("WS1", 0).unwrap(), &resp),
    ));
    all.extend(n.send(9, LMB, &host_ann(LMB, "LMB1", TYPE_LMB, true)));
    assert!(all.is_empty(), "{all:?}");
    let stats = n.e.stats();
    assert_eq!(stats["tables"]["browser"]["workgroups"]["len"], 1);
    assert_eq!(stats["tables"]["browser"]["undecodable"], 0);
}

#[test]
fn master_change_carries_both_masters() {
    let mut n = Net::new();
    assert!(n
        .send(0, LMB, &host_ann(LMB, "LMB1", TYPE_LMB, true))
        .is_empty());
    let out = n.send(100, ROGUE, &host_ann(ROGUE, "EVIL", TYPE_LMB, true));
    assert_eq!(slugs(&out), ["master-change"]);
    let ev = &out[0].evidence;
    assert_eq!(ev["workgroup"], WG);
    assert_eq!(ev["master"]["ip"], ROGUE);
    assert_eq!(ev["master"]["name"], "EVIL");
    assert_eq!(ev["previous_master"]["ip"], LMB);
    assert_eq!(ev["previous_master"]["name"], "LMB1");
    assert_eq!(ev["previous_since"], "1970-01-01T00:00:00.000000Z");
    assert_eq!(ev["segment"], "198.51.100.0/24");
    assert_eq!(out[0].src.ip().to_string(), ROGUE);
}

#[test]
fn samba_sixteen_char_master_is_learned_without_overlong_alert() {
    // Samba fills the 16-byte ServerName field without NUL: the codec refuses it, the
    // detector still learns the master and does not call it over-long.
    let mut raw = vec![0x0F, 0, 0x60, 0xEA, 0, 0];
    raw.extend_from_slice(b"ABCDEFGHIJKLMNOP");
    raw.extend_from_slice(&[6, 1]);
    raw.extend_from_slice(&0x0004_1803u32.to_le_bytes());
    raw.extend_from_slice(&[0x0F, 0x01, 0x55, 0xAA]);
    raw.extend_from_slice(b"Samba 4\0");
    let mut n = Net::new();
    let out = n.send(
        0,
        LMB,
        &datagram(LMB, "ABCDEFGHIJKLMNO", Name::new(WG, 0x1e).unwrap(), raw),
    );
    assert!(out.is_empty(), "{out:?}");
    let out = n.send(10, ROGUE, &host_ann(ROGUE, "EVIL", TYPE_LMB, true));
    assert_eq!(slugs(&out), ["master-change"]);
    assert_eq!(
        out[0].evidence["previous_master"]["name"],
        "ABCDEFGHIJKLMNOP"
    );
}

#[test]
fn election_storm_fires_once_per_window_with_top_senders() {
    let mut n = Net::new();
    let mut out = Vec::new();
    for i in 0..30 {
        let src = if i % 3 == 0 { WS } else { ROGUE };
        out.extend(n.send(i, src, &election(src, "X", 0)));
    }
    assert_eq!(slugs(&out), ["election-storm"]);
    let ev = &out[0].evidence;
    assert_eq!(ev["count"], 20);
    assert_eq!(ev["workgroup"], WG);
    assert_eq!(ev["top_senders"][0]["ip"], ROGUE);
    assert_eq!(ev["top_senders"][0]["count"], 13);
    assert_eq!(ev["top_senders"][1]["ip"], WS);
    // Elections spread out beyond the window: no storm.
    let mut n = Net::new();
    for i in 0..40 {
        assert!(n.send(i * 10, WS, &election(WS, "WS1", 0)).is_empty());
    }
}

#[test]
fn election_overclaim_needs_an_announcement_and_names_the_bits() {
    let mut n = Net::new();
    // Never announced: nothing to compare with.
    assert!(n
        .send(0, ROGUE, &election(ROGUE, "EVIL", 0xFF01_0F84))
        .is_empty());
    n.send(1, WS, &host_ann(WS, "WS1", TYPE_WS, false));
    let out = n.send(2, WS, &election(WS, "WS1", 0xFF01_0F84));
    assert_eq!(slugs(&out), ["election-overclaim"]);
    let ev = &out[0].evidence;
    assert_eq!(ev["criteria"], "0xff010f84");
    assert_eq!(ev["os_level"], 255);
    let claims: Vec<&str> = ev["unbacked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["claim"].as_str().unwrap())
        .collect();
    // RUNNING_MASTER follows the election's outcome: judged on later announcements.
    assert_eq!(claims, ["PDC", "OS_LEVEL"]);
    assert_eq!(ev["announced_server_type"], "0x00011003");
    // Samba (SERVER_UNIX) with a high os level and MAINTAIN_LIST is not an overclaim.
    n.send(
        3,
        LMB,
        &host_ann(LMB, "SAMBA", 0x0001_0803 | 0x40000, false),
    );
    assert!(n
        .send(4, LMB, &election(LMB, "SAMBA", 0x4101_0F06))
        .is_empty());
}

#[test]
fn reset_state_from_non_master_is_high_and_from_master_silent() {
    let mut n = Net::new();
    n.send(0, LMB, &host_ann(LMB, "LMB1", TYPE_LMB, true));
    let rs = BrowserFrame::ResetStateRequest(ResetStateRequest {
        reset_type: 0x01,
        ..Default::default()
    });
    let target = Name::new("LMB1", 0).unwrap();
    assert!(n
        .send(1, LMB, &frame(LMB, "LMB1", target.clone(), &rs))
        .is_empty());
    let out = n.send(2, ROGUE, &frame(ROGUE, "EVIL", target.clone(), &rs));
    assert_eq!(slugs(&out), ["reset-state-request"]);
    assert_eq!(out[0].severity, Severity::High);
    assert_eq!(out[0].evidence["reset_type_names"][0], "STOP_MASTER");
    assert_eq!(out[0].evidence["target"], "LMB1");
    // A domain master browser (announced DOMAIN_MASTER) that is not a local master: Medium.
    let dmb = "198.51.100.30";
    n.send(3, dmb, &host_ann(dmb, "DMB", 0x0009_100B, false));
    let out = n.send(4, dmb, &frame(dmb, "DMB", target, &rs));
    assert_eq!(out[0].severity, Severity::Medium);
}

#[test]
fn reset_state_from_learned_domain_master_is_medium() {
    // <1B> learned from an NBNS registration (poison::learn_nbns).
    let mut n = Net::new();
    let dmb = "198.51.100.31";
    n.send_port(0, dmb, 137, &nbns_registration("CORP", 0x1b, dmb, false));
    let rs = BrowserFrame::ResetStateRequest(ResetStateRequest {
        reset_type: 0x02,
        ..Default::default()
    });
    let out = n.send(
        1,
        dmb,
        &frame(dmb, "PDC", Name::new("LMB1", 0).unwrap(), &rs),
    );
    assert_eq!(slugs(&out), ["reset-state-request"]);
    assert_eq!(out[0].severity, Severity::Medium);
}

#[test]
fn become_backup_and_backup_list_from_non_master() {
    let mut n = Net::new();
    n.send(0, LMB, &host_ann(LMB, "LMB1", TYPE_LMB, true));
    n.send(0, WS, &host_ann(WS, "WS1", TYPE_WS, false));
    let bb = BrowserFrame::BecomeBackup(BecomeBackup {
        browser_to_promote: "WS1".into(),
        ..Default::default()
    });
    let out = n.send(
        1,
        ROGUE,
        &frame(ROGUE, "EVIL", Name::new(WG, 0x1e).unwrap(), &bb),
    );
    assert_eq!(slugs(&out), ["become-backup-rogue"]);
    assert_eq!(out[0].evidence["master"]["ip"], LMB);
    assert_eq!(out[0].evidence["browser_to_promote"], "WS1");
    assert_eq!(out[0].severity, Severity::Medium);
    let resp = BrowserFrame::GetBackupListResponse(GetBackupListResponse {
        count: 1,
        token: 9,
        servers: vec!["EVIL".into()],
        ..Default::default()
    });
    let out = n.send(
        2,
        WS,
        &frame(WS, "WS1", Name::new("WS2", 0).unwrap(), &resp),
    );
    assert_eq!(slugs(&out), ["backup-list-rogue"]);
    assert_eq!(out[0].evidence["servers"][0], "EVIL");
    assert_eq!(out[0].evidence["token"], 9);
    assert_eq!(out[0].evidence["master_known"], true);
    assert_eq!(out[0].severity, Severity::Medium);
    assert!(n
        .send(
            3,
            LMB,
            &frame(LMB, "LMB1", Name::new("WS2", 0).unwrap(), &resp)
        )
        .is_empty());
}

#[test]
fn announcement_flood_by_rate_and_by_spoofed_names() {
    let mut n = Net::new();
    let mut out = Vec::new();
    for i in 0..40 {
        out.extend(n.send(i, WS, &host_ann(WS, "WS1", TYPE_WS, false)));
    }
    assert_eq!(slugs(&out), ["announcement-flood"]);
    assert_eq!(out[0].evidence["kind"], "rate");
    assert_eq!(out[0].evidence["count"], 30);
    // 25 names from one address, slowly: the names rule, not the rate.
    let mut n = Net::new();
    let mut out = Vec::new();
    for i in 0..25 {
        let name = format!("FAKE{i:02}");
        out.extend(n.send(i * 10, ROGUE, &host_ann(ROGUE, &name, TYPE_WS, false)));
    }
    assert_eq!(slugs(&out), ["announcement-flood"]);
    assert_eq!(out[0].evidence["kind"], "names");
    assert_eq!(out[0].evidence["distinct_names"], 20);
}

#[test]
fn overlong_comment_and_election_name() {
    let mut n = Net::new();
    let a = BrowserFrame::HostAnnouncement(Announcement {
        server_name: "WS1".into(),
        server_type: TYPE_WS,
        comment: "A".repeat(60),
        ..Default::default()
    });
    let out = n.send(0, WS, &frame(WS, "WS1", Name::new(WG, 0x1d).unwrap(), &a));
    assert_eq!(slugs(&out), ["overlong-browser-field"]);
    let ev = &out[0].evidence;
    assert_eq!(ev["field"], "Comment");
    assert_eq!(ev["length"], 60);
    assert_eq!(ev["limit"], 43);
    assert_eq!(ev["opcode"], 1);
    assert_eq!(out[0].severity, Severity::High);
    let out = n.send(1, ROGUE, &election(ROGUE, &"B".repeat(40), 0));
    assert_eq!(slugs(&out), ["overlong-browser-field"]);
    assert_eq!(out[0].evidence["field"], "ServerName");
    assert_eq!(out[0].evidence["length"], 40);
    // A 42-byte comment is within the limit.
    let a = BrowserFrame::HostAnnouncement(Announcement {
        server_name: "WS2".into(),
        comment: "C".repeat(42),
        ..Default::default()
    });
    assert!(n
        .send(2, LMB, &frame(LMB, "WS2", Name::new(WG, 0x1d).unwrap(), &a))
        .is_empty());
}

#[test]
fn floods_of_workgroups_and_hosts_stay_within_caps() {
    let cfg = WatchConfig {
        max_workgroups: 64,
        max_hosts: 128,
        ..Default::default()
    };
    let mut n = Net::with(cfg);
    for i in 0..3000u32 {
        let src = format!("198.51.{}.{}", 100 + (i / 250) % 2, i % 250 + 1);
        let a = BrowserFrame::LocalMasterAnnouncement(Announcement {
            server_name: format!("H{i}"),
            server_type: TYPE_LMB,
            ..Default::default()
        });
        let wg = Name::new(&format!("WG{i}"), 0x1e).unwrap();
        n.send(i64::from(i), &src, &frame(&src, "H", wg, &a));
    }
    let s = n.e.stats();
    let b = &s["tables"]["browser"];
    assert!(b["workgroups"]["len"].as_u64().unwrap() <= 64, "{b}");
    assert!(b["workgroups"]["evicted"].as_u64().unwrap() > 2000, "{b}");
    assert!(b["hosts"]["len"].as_u64().unwrap() <= 128, "{b}");
    assert!(s["tables"]["inventory"]["len"].as_u64().unwrap() <= 128);
}

#[test]
fn pdc_claim_backed_by_a_learned_domain_master_name() {
    // <1B> learned from an NBNS registration (poison::learn_nbns).
    let mut n = Net::new();
    n.send_port(0, LMB, 137, &nbns_registration("CORP", 0x1b, LMB, false));
    n.send(1, LMB, &host_ann(LMB, "PDC1", TYPE_WS, false));
    assert!(n
        .send(2, LMB, &election(LMB, "PDC1", 0x1001_0F80))
        .is_empty());
    let out = n.send(3, WS, &election(WS, "WS1", 0x1001_0F80));
    assert!(out.is_empty(), "never announced: {out:?}");
    n.send(4, WS, &host_ann(WS, "WS1", TYPE_WS, false));
    let out = n.send(5, WS, &election(WS, "WS1", 0x1001_0F80));
    assert_eq!(slugs(&out), ["election-overclaim"]);
    assert_eq!(out[0].evidence["unbacked"][0]["claim"], "PDC");
}

#[test]
fn lanman_layout_overlong_server_name_and_garbage_frames() {
    // LM layout: opcode 0 ServerType(4) OSMajor OSMinor Periodicity(2) ServerName Comment.
    let mut lm = vec![0x01, 0, 0x03, 0x10, 0, 0, 4, 0, 0x58, 0x02];
    lm.extend_from_slice(&[b'L'; 30]);
    lm.extend_from_slice(b"\0c\0");
    let w = MailslotWrite::new("\\MAILSLOT\\LANMAN", lm)
        .to_bytes()
        .unwrap();
    let b = Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        1,
        (WS.parse().unwrap(), 138),
        Name::new("WS1", 0).unwrap(),
        Name::new(WG, 0).unwrap(),
        w,
    )
    .to_bytes()
    .unwrap();
    let mut n = Net::new();
    let out = n.send(0, WS, &b);
    assert_eq!(slugs(&out), ["overlong-browser-field"]);
    assert_eq!(out[0].evidence["field"], "ServerName");
    assert_eq!(out[0].evidence["length"], 30);
    // Every opcode with deterministic pseudo-random bodies: no panic, tables capped.
    let mut x: u32 = 1;
    for i in 0..4000u32 {
        let len = (i % 80) as usize;
        let mut data = vec![(i % 16) as u8];
        for _ in 0..len {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            data.push((x >> 16) as u8);
        }
        n.send(
            i64::from(i),
            ROGUE,
            &datagram(ROGUE, "R", Name::new(WG, 0x1e).unwrap(), data),
        );
    }
    assert!(n.e.stats()["tables"]["browser"]["frames"].as_u64().unwrap() > 4000);
}

#[test]
fn oversized_frame_data_alerts_but_padding_after_the_data_does_not() {
    let mut n = Net::new();
    n.send(0, LMB, &host_ann(LMB, "LMB1", TYPE_LMB, true));
    let servers: Vec<String> = (0..60).map(|i| format!("SERVER{i:04}")).collect();
    let resp = BrowserFrame::GetBackupListResponse(GetBackupListResponse {
        count: 60,
        token: 1,
        servers,
        ..Default::default()
    });
    let out = n.send(
        1,
        LMB,
        &frame(LMB, "LMB1", Name::new("WS1", 0).unwrap(), &resp),
    );
    assert_eq!(slugs(&out), ["overlong-browser-field"]);
    assert_eq!(out[0].evidence["field"], "MailslotData");
    assert_eq!(out[0].evidence["limit"], 512);
    assert!(out[0].evidence["length"].as_u64().unwrap() > 512);
    // A normal announcement followed by 900 bytes of padding inside the datagram.
    let a = BrowserFrame::HostAnnouncement(Announcement {
        server_name: "WS1".into(),
        server_type: TYPE_WS,
        ..Default::default()
    });
    let mut w = MailslotWrite::new(BROWSE, a.to_bytes().unwrap());
    w.trailing = vec![0; 900];
    let b = Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        7,
        (WS.parse().unwrap(), 138),
        Name::new("WS1", 0).unwrap(),
        Name::new(WG, 0x1d).unwrap(),
        w.to_bytes().unwrap(),
    )
    .to_bytes()
    .unwrap();
    let out = n.send(2, WS, &b);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn masters_are_per_subnet() {
    // One workgroup on two subnets has one local master on each (MS-BRWS §3.3).
    let mut n = Net::new();
    let other = "203.0.113.40";
    assert!(n
        .send(0, LMB, &host_ann(LMB, "SAMBAA", TYPE_LMB, true))
        .is_empty());
    assert!(n
        .send(1, other, &host_ann(other, "SAMBAD", TYPE_LMB, true))
        .is_empty());
    // The second subnet's LMB reports to the DMB by MasterAnnouncement: still its own.
    let ma = BrowserFrame::MasterAnnouncement(MasterAnnouncement {
        master_name: "SAMBAD".into(),
        ..Default::default()
    });
    let dmb = Name::new("SAMBAA", 0).unwrap();
    assert!(n
        .send(2, other, &frame(other, "SAMBAD", dmb, &ma))
        .is_empty());
    // Configured local nets decide the segment: a /16 holds both.
    let mut n = Net::with(WatchConfig {
        local_nets: vec!["198.51.0.0/16".parse().unwrap()],
        ..Default::default()
    });
    let near = "198.51.7.7";
    n.send(0, LMB, &host_ann(LMB, "LMB1", TYPE_LMB, true));
    let out = n.send(1, near, &host_ann(near, "LMB2", TYPE_LMB, true));
    assert_eq!(slugs(&out), ["master-change"]);
    assert_eq!(out[0].evidence["segment"], "198.51.0.0/16");
}

#[test]
fn backup_list_before_any_master_is_seen_is_low() {
    // A capture that starts after the announcements: the LMB answering is not known yet.
    let mut n = Net::new();
    let resp = BrowserFrame::GetBackupListResponse(GetBackupListResponse {
        count: 1,
        token: 7,
        servers: vec!["SAMBAA".into()],
        ..Default::default()
    });
    let out = n.send(
        0,
        LMB,
        &frame(LMB, "SAMBAA", Name::new("WS1", 0).unwrap(), &resp),
    );
    assert_eq!(slugs(&out), ["backup-list-rogue"]);
    assert_eq!(out[0].severity, Severity::Low);
    assert_eq!(out[0].evidence["master_known"], false);
}

#[test]
fn frames_relayed_by_an_nbdd_count_for_their_originator() {
    let nbdd = "198.51.100.2";
    let mut n = Net::with(WatchConfig {
        nbdd: vec![nbdd.parse().unwrap()],
        ..Default::default()
    });
    // LMB's announcement arrives through the NBDD: the master is LMB, not the NBDD.
    assert!(n
        .send(0, nbdd, &host_ann(LMB, "LMB1", TYPE_LMB, true))
        .is_empty());
    let out = n.send(1, ROGUE, &host_ann(ROGUE, "EVIL", TYPE_LMB, true));
    assert_eq!(out[0].evidence["previous_master"]["ip"], LMB);
    let inv = n.e.inventory();
    let ips: Vec<&str> = inv["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips, [LMB, ROGUE]);
}

/// Hex of a UDP payload as captured.
fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Samba nmbd's own datagrams (SAMBAA, 198.51.100.10 -> 198.51.100.255:138, to
/// TESTGROUP<1D>/<1E>), the UDP payloads as captured in /work/shared/captures.
/// samba-nmbd-startup.pcap frame 6, +0.0 s: HostAnnouncement, type 0x00819a03
/// (no MASTER_BROWSER, no BACKUP_BROWSER), comment "nmbd test peer SAMBAA".
const NMBD_HOST_ANN: &str = "110a20c0c633640a008a00d000002046444542454e45434542454243414341434143414341434143414341434141410020464545464644464545484643455046464641434143414341434143414341424e00ff534d4225000000000000000000000000000000000000000000000000000000110000360000000000000000000000000000000000000036005600030001000100020047005c4d41494c534c4f545c42524f57534500010060ea000053414d424141000000000000000000000601039a81000f0155aa6e6d6264207465737420706565722053414d42414100";
/// samba-nmbd-probes.pcap frame 70: RequestElection, criteria 0x41010f0f (os level 65,
/// preferred master, MAINTAIN_LIST, RUNNING_MASTER, RUNNING_BACKUP: nmbd sets 0x05 when it
/// becomes local master), uptime 0xc738 ms, server name SAMBAA.
const NMBD_ELECTION: &str = "110a24eec633640a008a00af00002046444542454e45434542454243414341434143414341434143414341434141410020464545464644464545484643455046464641434143414341434143414341424f00ff534d4225000000000000000000000000000000000000000000000000000000110000150000000000000000000000000000000000000015005600030001000100020026005c4d41494c534c4f545c42524f5753450008010f0f014138c700000000000053414d42414100";
/// samba-nmbd-startup.pcap frame 40, +23.04 s: LocalMasterAnnouncement, type 0x00849a03
/// (+ MASTER_BROWSER), sent right after "SAMBAA is now a local master browser".
const NMBD_LMA: &str = "110a20cac633640a008a00d000002046444542454e45434542454243414341434143414341434143414341434141410020464545464644464545484643455046464641434143414341434143414341424f00ff534d4225000000000000000000000000000000000000000000000000000000110000360000000000000000000000000000000000000036005600030001000100020047005c4d41494c534c4f545c42524f575345000f02c0d4010053414d424141000000000000000000000601039a84000f0155aa6e6d6264207465737420706565722053414d42414100";

#[test]
fn nmbd_claiming_running_master_before_its_first_master_announcement_is_no_overclaim() {
    // nmbd announces as a potential browser, wins, sets RUNNING_MASTER|RUNNING_BACKUP in its
    // criteria (answering an election while it registers <1D>), and only then sends its
    // LocalMasterAnnouncement: the earlier HostAnnouncement cannot show the new role.
    let mut n = Net::new();
    assert!(n.send(0, LMB, &unhex(NMBD_HOST_ANN)).is_empty());
    let out = n.send(20, LMB, &unhex(NMBD_ELECTION));
    assert!(
        out.is_empty(),
        "election after a pre-role announcement: {out:?}"
    );
    let out = n.send(23, LMB, &unhex(NMBD_LMA));
    assert!(
        out.is_empty(),
        "its master announcement backs the claim: {out:?}"
    );
    // Its periodic announcements later on stay quiet too.
    assert!(n.send(153, LMB, &unhex(NMBD_LMA)).is_empty());
    assert!(n.send(160, LMB, &unhex(NMBD_ELECTION)).is_empty());
}

#[test]
fn running_master_claim_never_shown_by_later_announcements_is_an_overclaim() {
    let mut n = Net::new();
    n.send(0, WS, &host_ann(WS, "WS1", TYPE_WS, false));
    // Honest Windows OS byte and no PDC/DC: only the running roles are claimed.
    assert!(n.send(1, WS, &election(WS, "WS1", 0x1001_0F05)).is_empty());
    // Announcements soon after may predate the role: not judged yet.
    assert!(n
        .send(30, WS, &host_ann(WS, "WS1", TYPE_WS, false))
        .is_empty());
    // A minute after the claim, still a plain workstation and nobody else won.
    let out = n.send(70, WS, &host_ann(WS, "WS1", TYPE_WS, false));
    assert_eq!(slugs(&out), ["election-overclaim"]);
    let ev = &out[0].evidence;
    assert_eq!(ev["criteria"], "0x10010f05");
    assert_eq!(ev["claim_frame"], 2);
    assert_eq!(ev["waited_secs"], 69);
    let claims: Vec<&str> = ev["unbacked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["claim"].as_str().unwrap())
        .collect();
    assert_eq!(claims, ["RUNNING_MASTER", "RUNNING_BACKUP"]);
    // Judged once.
    assert!(n
        .send(200, WS, &host_ann(WS, "WS1", TYPE_WS, false))
        .is_empty());
}

#[test]
fn running_master_claim_of_the_election_loser_is_dropped() {
    let mut n = Net::new();
    n.send(0, WS, &host_ann(WS, "WS1", TYPE_WS, false));
    assert!(n.send(1, WS, &election(WS, "WS1", 0x1001_0F04)).is_empty());
    // Another host wins and announces itself master: WS1 lost, its claim is moot.
    assert!(n
        .send(5, LMB, &host_ann(LMB, "LMB1", TYPE_LMB, true))
        .is_empty());
    assert!(n
        .send(90, WS, &host_ann(WS, "WS1", TYPE_WS, false))
        .is_empty());
}
