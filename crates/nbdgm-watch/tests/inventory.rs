//! Host inventory end to end: registrations, node status answers, browser announcements,
//! NETLOGON and messenger datagrams and LLMNR traffic fed to `Engine::process`, read back
//! with `Engine::inventory` and the summary text.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{nbns_registration, Net};
use nbdgm_watch::WatchConfig;
use nbdgm_wire::browser::{Announcement, BrowserFrame};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::nbns::{
    self, NodeName, NodeStatus, RData, Record, Statistics, CLASS_IN, TYPE_NBSTAT,
};
use nbdgm_wire::Name;
use serde_json::Value;

const A: &str = "198.51.100.20";
const B: &str = "198.51.100.3";
const C: &str = "198.51.100.100";

fn dgm(src: &str, from: &str, to: (&str, u8), slot: &str, data: Vec<u8>) -> Vec<u8> {
    let w = MailslotWrite::new(slot, data).to_bytes().unwrap();
    Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        3,
        (src.parse().unwrap(), 138),
        Name::new(from, 0).unwrap(),
        Name::new(to.0, to.1).unwrap(),
        w,
    )
    .to_bytes()
    .unwrap()
}

fn node_status_response(names: &[(&str, u8)], mac: [u8; 6]) -> Vec<u8> {
    let mut p = nbns::Packet::request(9, 0x8400, Name::wildcard(), TYPE_NBSTAT);
    p.questions.clear();
    p.answers.push(Record {
        name: Name::wildcard(),
        rr_type: TYPE_NBSTAT,
        rr_class: CLASS_IN,
        ttl: 0,
        rdata: RData::NodeStatus(NodeStatus {
            names: names
                .iter()
                .map(|(n, s)| NodeName {
                    name: Name::new(n, *s).unwrap(),
                    flags: 0x0400,
                })
                .collect(),
            statistics: Some(Statistics {
                unit_id: mac,
                ..Default::default()
            }),
            extra: vec![],
        }),
    });
    p.to_bytes().unwrap()
}

fn announcement(src: &str, name: &str, ty: u32) -> Vec<u8> {
    let f = BrowserFrame::HostAnnouncement(Announcement {
        server_name: name.into(),
        os_major: 10,
        os_minor: 0,
        server_type: ty,
        ..Default::default()
    });
    dgm(src, "X", ("CORP", 0x1d), BROWSE, f.to_bytes().unwrap())
}

fn host<'a>(inv: &'a Value, ip: &str) -> &'a Value {
    inv["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["ip"] == ip)
        .unwrap_or_else(|| panic!("{ip} not in {inv}"))
}

#[test]
fn inventory_collects_names_roles_mac_mailslots_and_summary() {
    let mut n = Net::with(WatchConfig::default());
    n.send_from(5, A, 137, None, &nbns_registration("WS1", 0x20, A, false));
    n.send_from(6, A, 138, None, &announcement(A, "WS1", 0x0001_1003));
    n.send_from(
        7,
        A,
        137,
        None,
        &node_status_response(
            &[("WS1", 0), ("CORP", 0)],
            [0, 0x11, 0x22, 0x33, 0x44, 0x55],
        ),
    );
    n.send_from(8, A, 5355, None, &[0; 12]);
    n.send_from(
        9,
        A,
        138,
        None,
        &dgm(
            A,
            "WS1",
            ("CORP", 0x1c),
            "\\MAILSLOT\\NET\\NETLOGON",
            vec![0x12, 0, 0, 0],
        ),
    );
    let mac = [2, 0, 0, 0, 0, 9];
    n.send_from(
        1,
        B,
        138,
        Some(mac),
        &dgm(
            B,
            "OLDPC",
            ("WS1", 3),
            "\\MAILSLOT\\MESSNGR",
            b"OLDPC\0WS1\0hi\0".to_vec(),
        ),
    );
    n.send_from(2, C, 138, None, &announcement(C, "\x1bEVIL", 0x0005_1003));
    let inv = n.e.inventory();
    let ips: Vec<&str> = inv["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips, [B, A, C], "sorted by address, not by string");
    let a = host(&inv, A);
    let names: Vec<&str> = a["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for want in ["WS1<20>", "WS1<00>", "CORP<00>"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    assert_eq!(a["workgroup"], "CORP");
    assert_eq!(a["server_name"], "WS1");
    assert_eq!(a["os_version"], "10.0");
    assert_eq!(a["mac"], "00:11:22:33:44:55");
    assert!(
        a["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "POTENTIAL_BROWSER"),
        "{a}"
    );
    assert_eq!(a["mailslots"]["\\MAILSLOT\\BROWSE"], 1);
    assert_eq!(a["mailslots"]["\\MAILSLOT\\NET\\NETLOGON"], 1);
    assert_eq!(a["packets"]["137"], 2);
    assert_eq!(a["packets"]["138"], 2);
    assert_eq!(a["packets"]["5355"], 1);
    let protos: Vec<&str> = a["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(protos, ["datagram", "llmnr", "nbns"]);
    assert_eq!(a["first_seen"], "1970-01-01T00:00:05.000000Z");
    assert_eq!(a["last_seen"], "1970-01-01T00:00:09.000000Z");
    assert_eq!(host(&inv, B)["mac"], "02:00:00:00:00:09");
    // The server name is kept exact in JSON.
    assert_eq!(host(&inv, C)["server_name"], "\u{1b}EVIL");
    let s = &inv["summary"]["port_138_uses"];
    assert_eq!(s["browser-announcements"]["hosts"], 2);
    assert_eq!(s["netlogon"]["hosts"], 1);
    assert_eq!(s["messenger"]["datagrams"], 1);
    assert!(s.get("elections").is_none());
    assert_eq!(inv["summary"]["hosts_on_138"], 3);
}

#[test]
fn inventory_stays_within_its_cap() {
    let mut n = Net::with(WatchConfig {
        max_hosts: 50,
        ..Default::default()
    });
    for i in 0..1000u32 {
        let src = format!("203.0.113.{}", i % 250 + 1);
        let src = if i >= 250 {
            format!("198.51.100.{}", i % 250 + 1)
        } else {
            src
        };
        n.send_from(
            i64::from(i),
            &src,
            137,
            None,
            &nbns_registration("H", 0, &src, false),
        );
    }
    let s = n.e.stats();
    let inv = &s["tables"]["inventory"];
    assert!(inv["len"].as_u64().unwrap() <= 50, "{inv}");
    assert!(inv["evicted"].as_u64().unwrap() > 0, "{inv}");
    assert!(n.e.inventory()["hosts"].as_array().unwrap().len() <= 50);
}
