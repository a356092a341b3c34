//! Datagram hygiene detectors end to end: datagrams and NBNS registrations built with
//! `nbdgm_wire`, fed to `Engine::process`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{nbns_registration, Net};
use nbdgm_watch::{Alert, Severity, WatchConfig};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::MailslotWrite;
use nbdgm_wire::Name;

const DC: &str = "198.51.100.10";
const CLIENT: &str = "198.51.100.20";
const ROGUE: &str = "198.51.100.66";

fn dgm(
    kind: MsgType,
    header_ip: &str,
    from: (&str, u8),
    to: (&str, u8),
    slot: &str,
    data: Vec<u8>,
) -> Vec<u8> {
    let w = MailslotWrite::new(slot, data).to_bytes().unwrap();
    Datagram::data(
        kind,
        NodeType::B,
        3,
        (header_ip.parse().unwrap(), 138),
        Name::new(from.0, from.1).unwrap(),
        Name::new(to.0, to.1).unwrap(),
        w,
    )
    .to_bytes()
    .unwrap()
}

/// A LOGON_SAM_LOGON_RESPONSE (0x13) to the client's reply mailslot; the body is not
/// decoded by the detector, only the opcode.
fn logon_response(from: &str) -> Vec<u8> {
    let mut data = vec![0x13, 0x00];
    data.extend_from_slice(b"\\\\DC1\0");
    dgm(
        MsgType::DirectUnique,
        from,
        ("DC1", 0),
        ("CLIENT", 0),
        "\\MAILSLOT\\NET\\GETDC4F2",
        data,
    )
}

fn slugs(a: &[Alert]) -> Vec<&'static str> {
    a.iter().map(|a| a.signature.slug).collect()
}

#[test]
fn source_ip_mismatch_unless_from_an_nbdd() {
    let b = dgm(
        MsgType::DirectGroup,
        "198.51.100.7",
        ("SPOOF", 0),
        ("WORKGROUP", 0),
        "\\MAILSLOT\\FOO",
        vec![1],
    );
    let mut n = Net::with(WatchConfig::default());
    let out = n.send(0, ROGUE, &b);
    assert_eq!(slugs(&out), ["source-ip-mismatch"]);
    let ev = &out[0].evidence;
    assert_eq!(ev["header_source_ip"], "198.51.100.7");
    assert_eq!(ev["udp_source"], ROGUE);
    assert_eq!(ev["source_name"], "SPOOF<00>");
    // The same from a configured NBDD is relaying, not spoofing.
    let mut n = Net::with(WatchConfig {
        nbdd: vec![ROGUE.parse().unwrap()],
        ..Default::default()
    });
    assert!(n.send(0, ROGUE, &b).is_empty());
    // Matching header and UDP source: fine.
    let ok = dgm(
        MsgType::Broadcast,
        CLIENT,
        ("C", 0),
        ("WORKGROUP", 0),
        "\\MAILSLOT\\FOO",
        vec![1],
    );
    assert!(Net::with(WatchConfig::default())
        .send(0, CLIENT, &ok)
        .is_empty());
}

#[test]
fn off_subnet_once_per_source_and_only_with_local_nets() {
    let cfg = WatchConfig {
        local_nets: vec!["198.51.100.0/24".parse().unwrap()],
        ..Default::default()
    };
    let far = "203.0.113.5";
    let b = dgm(
        MsgType::Broadcast,
        far,
        ("FAR", 0),
        ("WORKGROUP", 0),
        "\\MAILSLOT\\FOO",
        vec![1],
    );
    let mut n = Net::with(cfg);
    let out = n.send(0, far, &b);
    assert_eq!(slugs(&out), ["off-subnet"]);
    assert_eq!(out[0].evidence["port"], 138);
    assert_eq!(out[0].evidence["local_nets"][0], "198.51.100.0/24");
    // Once per source, whatever the port and however long after.
    assert!(n.send(1000, far, &b).is_empty());
    assert!(n
        .send_port(2000, far, 137, &nbns_registration("FAR", 0, far, false))
        .is_empty());
    let near = dgm(
        MsgType::Broadcast,
        CLIENT,
        ("C", 0),
        ("WORKGROUP", 0),
        "\\MAILSLOT\\FOO",
        vec![1],
    );
    assert!(n.send(1, CLIENT, &near).is_empty());
    // No local nets configured: the check is off.
    assert!(Net::with(WatchConfig::default())
        .send(0, far, &b)
        .is_empty());
}

#[test]
fn direct_unique_to_unknown_name_only_when_warm() {
    let mut n = Net::with(WatchConfig::default());
    n.send_port(
        0,
        CLIENT,
        137,
        &nbns_registration("CLIENT", 0, CLIENT, false),
    );
    let ghost = dgm(
        MsgType::DirectUnique,
        DC,
        ("DC1", 0),
        ("GHOST", 0),
        "\\MAILSLOT\\FOO",
        vec![1],
    );
    assert!(n.send(30, DC, &ghost).is_empty(), "cold start");
    let out = n.send(70, DC, &ghost);
    assert_eq!(slugs(&out), ["direct-unique-unknown-name"]);
    assert_eq!(out[0].evidence["destination_name"], "GHOST<00>");
    assert_eq!(out[0].severity, Severity::Low);
    // DIRECT_GROUP to an unknown name is not this signature.
    let grp = dgm(
        MsgType::DirectGroup,
        DC,
        ("DC1", 0),
        ("NOGROUP", 0),
        "\\MAILSLOT\\FOO",
        vec![1],
    );
    assert!(n.send(71, DC, &grp).is_empty());
}

#[test]
fn direct_unique_to_registered_name_is_fine() {
    // Needs NBNS learning (poison::learn_nbns) to know CLIENT<00>.
    let mut n = Net::with(WatchConfig::default());
    n.send_port(
        0,
        CLIENT,
        137,
        &nbns_registration("CLIENT", 0, CLIENT, false),
    );
    let to_client = dgm(
        MsgType::DirectUnique,
        DC,
        ("DC1", 0),
        ("CLIENT", 0),
        "\\MAILSLOT\\FOO",
        vec![1],
    );
    assert!(n.send(70, DC, &to_client).is_empty());
}

#[test]
fn rogue_logon_response_cold_is_low() {
    let mut n = Net::with(WatchConfig::default());
    let out = n.send(0, ROGUE, &logon_response(ROGUE));
    assert_eq!(slugs(&out), ["rogue-logon-response"]);
    assert_eq!(out[0].severity, Severity::Low);
    assert_eq!(out[0].evidence["cold"], true);
    assert_eq!(out[0].evidence["opcode"], 0x13);
    assert_eq!(out[0].evidence["command"], "LOGON_SAM_LOGON_RESPONSE");
}

#[test]
fn rogue_logon_response_warm_is_high_and_dc_is_silent() {
    // Needs NBNS learning (poison::learn_nbns) for CORP<1C>.
    let mut n = Net::with(WatchConfig::default());
    n.send_port(0, DC, 137, &nbns_registration("CORP", 0x1c, DC, true));
    n.send_port(
        0,
        CLIENT,
        137,
        &nbns_registration("CLIENT", 0, CLIENT, false),
    );
    assert!(n.send(100, DC, &logon_response(DC)).is_empty());
    let out = n.send(101, ROGUE, &logon_response(ROGUE));
    assert_eq!(slugs(&out), ["rogue-logon-response"]);
    assert_eq!(out[0].severity, Severity::High);
    assert_eq!(out[0].evidence["cold"], false);
    // A logon request from a client is not a response.
    let req = dgm(
        MsgType::DirectGroup,
        CLIENT,
        ("CLIENT", 0),
        ("CORP", 0x1c),
        "\\MAILSLOT\\NET\\NETLOGON",
        vec![0x12, 0x00, 0, 0],
    );
    assert!(n.send(102, CLIENT, &req).is_empty());
}

#[test]
fn malformed_netlogon_and_mailslot_bytes_do_not_panic() {
    let mut n = Net::with(WatchConfig::default());
    for data in [vec![], vec![0x13], vec![0xFF; 600]] {
        let b = dgm(
            MsgType::DirectUnique,
            ROGUE,
            ("X", 0),
            ("Y", 0),
            "\\MAILSLOT\\NET\\NETLOGON",
            data,
        );
        n.send(0, ROGUE, &b);
    }
    // Truncated datagrams at every length.
    let b = logon_response(ROGUE);
    for len in 0..b.len() {
        n.send(1, ROGUE, &b[..len]);
    }
    assert!(n.e.counters().malformed > 0);
}

#[test]
fn floods_of_sources_stay_within_caps() {
    let mut n = Net::with(WatchConfig {
        local_nets: vec!["198.51.100.0/24".parse().unwrap()],
        max_hosts: 100,
        ..Default::default()
    });
    let mut alerts = 0;
    for i in 0..3000u32 {
        let src = format!("203.0.{}.{}", 113 + i / 250 % 2, i % 250 + 1);
        alerts += n.send(i64::from(i), &src, &logon_response(&src)).len();
    }
    let s = n.e.stats();
    let h = &s["tables"]["hygiene"];
    for t in ["off_subnet", "dc_cache"] {
        assert!(h[t]["len"].as_u64().unwrap() <= 100, "{t}: {h}");
        assert!(h[t]["evicted"].as_u64().unwrap() > 0, "{t}: {h}");
    }
    // 500 distinct sources: each is off-subnet and a rogue responder at least once.
    assert!(alerts >= 1000, "{alerts}");
}
