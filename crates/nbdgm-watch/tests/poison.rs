//! Name poisoning detectors end to end: NBNS packets built with `nbdgm_wire`, LLMNR and
//! mDNS packets built by hand, fed to `Engine::process`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_capture::Timestamp;
use nbdgm_watch::{Alert, Engine, Packet, Severity, WatchConfig};
use nbdgm_wire::nbns::{self, NbAddress, RData, Record, CLASS_IN, TYPE_NB};
use nbdgm_wire::Name;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const CLIENT: &str = "198.51.100.20";
const OWNER: &str = "198.51.100.10";
const ATTACKER: &str = "198.51.100.66";
const BCAST: &str = "198.51.100.255";

struct Net {
    e: Engine,
    frame: u64,
}

impl Net {
    fn new() -> Net {
        Net::with(WatchConfig::default())
    }
    fn with(cfg: WatchConfig) -> Net {
        Net {
            e: Engine::new(cfg),
            frame: 0,
        }
    }
    fn send(
        &mut self,
        secs: i64,
        src: (&str, u16),
        dst: (&str, u16),
        payload: &[u8],
    ) -> Vec<Alert> {
        self.frame += 1;
        let p = Packet {
            frame: self.frame,
            time: Timestamp { secs, nanos: 0 },
            src: SocketAddr::new(src.0.parse().unwrap(), src.1),
            dst: SocketAddr::new(dst.0.parse().unwrap(), dst.1),
            src_mac: None,
            payload,
        };
        let mut out = Vec::new();
        self.e.process(&p, &mut out);
        out
    }
}

fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn nb_record(name: &str, suffix: u8, addr: &str, flags: u16) -> Record {
    Record {
        name: Name::new(name, suffix).unwrap(),
        rr_type: TYPE_NB,
        rr_class: CLASS_IN,
        ttl: 300_000,
        rdata: RData::Nb(vec![NbAddress {
            flags,
            ip: ip4(addr),
        }]),
    }
}

fn nbns_registration(id: u16, name: &str, suffix: u8, addr: &str) -> Vec<u8> {
    let mut p = nbns::Packet::request(
        id,
        0x2800 | nbns::FLAG_RD | nbns::FLAG_B,
        Name::new(name, suffix).unwrap(),
        TYPE_NB,
    );
    p.additional.push(nb_record(name, suffix, addr, 0));
    p.to_bytes().unwrap()
}

fn nbns_query(id: u16, name: &str, suffix: u8, broadcast: bool) -> Vec<u8> {
    let flags = if broadcast { 0x0110 } else { 0x0100 };
    nbns::Packet::request(id, flags, Name::new(name, suffix).unwrap(), TYPE_NB)
        .to_bytes()
        .unwrap()
}

fn nbns_answer(id: u16, name: &str, suffix: u8, addr: &str) -> Vec<u8> {
    let mut p = nbns::Packet::request(id, 0, Name::new(name, suffix).unwrap(), TYPE_NB);
    p.flags = nbns::FLAG_RESPONSE | nbns::FLAG_AA | nbns::FLAG_RD;
    p.questions.clear();
    p.answers.push(nb_record(name, suffix, addr, 0));
    p.to_bytes().unwrap()
}

fn dns_name(v: &mut Vec<u8>, n: &str) {
    for l in n.split('.') {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
}

fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    dns_name(&mut v, name);
    v.extend_from_slice(&[0, 1, 0, 1]);
    v
}

/// A response with the question echoed (LLMNR) or not (mDNS), one A record per address.
fn dns_answer(id: u16, name: &str, addrs: &[&str], echo_question: bool) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    let flags: u16 = if echo_question { 0x8000 } else { 0x8400 };
    v.extend_from_slice(&flags.to_be_bytes());
    v.extend_from_slice(&[0, u8::from(echo_question), 0, addrs.len() as u8, 0, 0, 0, 0]);
    if echo_question {
        dns_name(&mut v, name);
        v.extend_from_slice(&[0, 1, 0, 1]);
    }
    for a in addrs {
        dns_name(&mut v, name);
        v.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
        v.extend_from_slice(&ip4(a).octets());
    }
    v
}

fn slugs(a: &[Alert]) -> Vec<&'static str> {
    a.iter().map(|x| x.signature.slug).collect()
}

fn find<'a>(a: &'a [Alert], slug: &str) -> Vec<&'a Alert> {
    a.iter().filter(|x| x.signature.slug == slug).collect()
}

fn src_ip(a: &Alert) -> IpAddr {
    a.src.ip()
}

/// A Windows host registers its names, then a client resolves it over all three protocols
/// and the owner answers: nothing to report.
#[test]
fn benign_windows_exchange_gives_no_alert() {
    let mut n = Net::new();
    let mut all = Vec::new();
    for (i, s) in [0x00u8, 0x20].iter().enumerate() {
        all.extend(n.send(
            0,
            (OWNER, 137),
            (BCAST, 137),
            &nbns_registration(i as u16, "HOST1", *s, OWNER),
        ));
    }
    // mDNS announcement (unsolicited response).
    all.extend(n.send(
        1,
        (OWNER, 5353),
        ("224.0.0.251", 5353),
        &dns_answer(0, "host1.local", &[OWNER], false),
    ));
    all.extend(n.send(
        10,
        (CLIENT, 137),
        (BCAST, 137),
        &nbns_query(0x100, "HOST1", 0x20, true),
    ));
    all.extend(n.send(
        10,
        (OWNER, 137),
        (CLIENT, 137),
        &nbns_answer(0x100, "HOST1", 0x20, OWNER),
    ));
    all.extend(n.send(
        11,
        (CLIENT, 50000),
        ("224.0.0.252", 5355),
        &dns_query(0x200, "host1"),
    ));
    all.extend(n.send(
        11,
        (OWNER, 5355),
        (CLIENT, 50000),
        &dns_answer(0x200, "host1", &[OWNER], true),
    ));
    all.extend(n.send(
        12,
        (CLIENT, 5353),
        ("224.0.0.251", 5353),
        &dns_query(0, "host1.local"),
    ));
    all.extend(n.send(
        12,
        (OWNER, 5353),
        ("224.0.0.251", 5353),
        &dns_answer(0, "host1.local", &[OWNER], false),
    ));
    // Asked again later: still quiet.
    all.extend(n.send(
        100,
        (CLIENT, 137),
        (BCAST, 137),
        &nbns_query(0x101, "HOST1", 0x20, true),
    ));
    all.extend(n.send(
        100,
        (OWNER, 137),
        (CLIENT, 137),
        &nbns_answer(0x101, "HOST1", 0x20, OWNER),
    ));
    assert!(all.is_empty(), "{:?}", slugs(&all));
    let stats = n.e.stats();
    assert!(stats["tables"]["poison"]["answers"].as_u64().unwrap() >= 4);
    assert!(stats["tables"]["poison"]["queries_seen"].as_u64().unwrap() >= 4);
}

/// A Responder-style host answers every query for three names over NBNS, LLMNR and
/// mDNS: the poisoner score climbs Low, Medium, High, each listing all steps.
#[test]
fn responder_three_names_three_protocols_reaches_high() {
    let mut n = Net::new();
    let mut all = Vec::new();
    for (i, name) in ["FILESRV", "PRINTSRV", "BACKUP"].iter().enumerate() {
        let id = 0x300 + i as u16;
        let t = 10 + i as i64;
        let lower = name.to_ascii_lowercase();
        all.extend(n.send(
            t,
            (CLIENT, 137),
            (BCAST, 137),
            &nbns_query(id, name, 0x20, true),
        ));
        all.extend(n.send(
            t,
            (ATTACKER, 137),
            (CLIENT, 137),
            &nbns_answer(id, name, 0x20, ATTACKER),
        ));
        all.extend(n.send(
            t,
            (CLIENT, 50001),
            ("224.0.0.252", 5355),
            &dns_query(id, &lower),
        ));
        all.extend(n.send(
            t,
            (ATTACKER, 5355),
            (CLIENT, 50001),
            &dns_answer(id, &lower, &[ATTACKER], true),
        ));
        let local = format!("{lower}.local");
        all.extend(n.send(
            t,
            (CLIENT, 5353),
            ("224.0.0.251", 5353),
            &dns_query(0, &local),
        ));
        all.extend(n.send(
            t,
            (ATTACKER, 5353),
            ("224.0.0.251", 5353),
            &dns_answer(0, &local, &[ATTACKER], false),
        ));
    }
    let p = find(&all, "poisoner");
    let sev: Vec<Severity> = p.iter().map(|a| a.severity).collect();
    // Rising level by level (each once), ending High.
    assert!(sev.len() >= 2, "{sev:?}");
    assert!(
        sev.windows(2).all(|w| w[1].at_least(w[0]) && w[1] != w[0]),
        "{sev:?}"
    );
    assert_eq!(sev.last(), Some(&Severity::High));
    for a in &p {
        assert_eq!(src_ip(a), ATTACKER.parse::<IpAddr>().unwrap());
    }
    let high = p[p.len() - 1];
    let steps = high.evidence["steps"].as_array().unwrap();
    assert!(steps.len() > p[0].evidence["steps"].as_array().unwrap().len());
    let kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"cross-protocol") && kinds.contains(&"unregistered"),
        "{kinds:?}"
    );
    assert!(steps
        .iter()
        .all(|s| s["frame"].as_u64().is_some() && s["protocol"].is_string()));
    let cross = find(&all, "cross-protocol-responder");
    assert!(!cross.is_empty());
    assert!(cross
        .iter()
        .all(|a| src_ip(a) == ATTACKER.parse::<IpAddr>().unwrap()));
    assert_eq!(find(&all, "answer-unregistered-name").len(), 3);
}

/// The owner and an attacker both answer one broadcast query.
#[test]
fn two_responders_and_answer_not_owner() {
    let mut n = Net::new();
    let attacker: IpAddr = ATTACKER.parse().unwrap();
    assert!(n
        .send(
            0,
            (OWNER, 137),
            (BCAST, 137),
            &nbns_registration(1, "HOST1", 0x20, OWNER)
        )
        .is_empty());
    let mut all = n.send(
        10,
        (CLIENT, 137),
        (BCAST, 137),
        &nbns_query(0x400, "HOST1", 0x20, true),
    );
    // The attacker is faster than the owner.
    let first = n.send(
        10,
        (ATTACKER, 137),
        (CLIENT, 137),
        &nbns_answer(0x400, "HOST1", 0x20, ATTACKER),
    );
    let not_owner = find(&first, "answer-not-owner");
    assert_eq!(not_owner.len(), 1);
    let ev = &not_owner[0].evidence;
    assert_eq!(ev["protocol"], "nbns");
    assert_eq!(ev["name"], "HOST1<20>");
    assert_eq!(ev["txid"], 0x400);
    assert_eq!(ev["answered_addresses"], serde_json::json!([ATTACKER]));
    assert_eq!(ev["earlier_owner"]["address"], OWNER);
    assert_eq!(ev["earlier_owner"]["how"], "registered");
    assert_eq!(ev["earlier_owner"]["frame"], 1);
    assert_eq!(src_ip(not_owner[0]), attacker);
    all.extend(first);
    let second = n.send(
        10,
        (OWNER, 137),
        (CLIENT, 137),
        &nbns_answer(0x400, "HOST1", 0x20, OWNER),
    );
    let multi = find(&second, "multiple-responders");
    assert_eq!(multi.len(), 1, "{:?}", slugs(&second));
    let r = multi[0].evidence["responders"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["address"], ATTACKER);
    assert_eq!(r[1]["address"], OWNER);
    assert!(r[0]["frame"].as_u64().unwrap() < r[1]["frame"].as_u64().unwrap());
    // The owner's answer is not "not owner"; the attacker gets the with-owner step.
    assert!(find(&second, "answer-not-owner").is_empty());
    let p = find(&second, "poisoner");
    assert_eq!(p.len(), 1);
    assert_eq!(src_ip(p[0]), attacker);
    assert_eq!(p[0].severity, Severity::Medium);
    let kinds: Vec<&str> = p[0].evidence["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["not-owner", "with-owner"]);
}

/// A defended name: the defender owns it; an answer from another host is flagged.
#[test]
fn defended_name_is_owned_by_the_defender() {
    let mut n = Net::new();
    let mut resp = nbns::Packet::request(5, 0, Name::new("DC1", 0x1B).unwrap(), TYPE_NB);
    resp.questions.clear();
    resp.flags = nbns::FLAG_RESPONSE | 0x2800 | nbns::FLAG_AA | nbns::FLAG_RD | nbns::FLAG_RA | 6;
    resp.answers.push(nb_record("DC1", 0x1B, OWNER, 0));
    n.send(0, (OWNER, 137), (ATTACKER, 137), &resp.to_bytes().unwrap());
    let a = n.send(
        1,
        (ATTACKER, 137),
        (CLIENT, 137),
        &nbns_answer(9, "DC1", 0x1B, ATTACKER),
    );
    let no = find(&a, "answer-not-owner");
    assert_eq!(no.len(), 1);
    assert_eq!(no[0].evidence["earlier_owner"]["how"], "defended");
}

/// Release forgets the owner: a new host may then answer as owner-less.
#[test]
fn release_forgets_the_owner() {
    let mut n = Net::new();
    n.send(
        0,
        (OWNER, 137),
        (BCAST, 137),
        &nbns_registration(1, "HOST9", 0x20, OWNER),
    );
    let mut rel = nbns::Packet::request(
        2,
        0x3000 | nbns::FLAG_B,
        Name::new("HOST9", 0x20).unwrap(),
        TYPE_NB,
    );
    rel.additional.push(nb_record("HOST9", 0x20, OWNER, 0));
    n.send(1, (OWNER, 137), (BCAST, 137), &rel.to_bytes().unwrap());
    let a = n.send(
        2,
        (ATTACKER, 137),
        (CLIENT, 137),
        &nbns_answer(3, "HOST9", 0x20, ATTACKER),
    );
    assert!(find(&a, "answer-not-owner").is_empty(), "{:?}", slugs(&a));
    assert_eq!(find(&a, "answer-unregistered-name").len(), 1);
}

/// Answers without a query: flagged for NBNS and LLMNR after the first window, never
/// for mDNS (announcements).
#[test]
fn unsolicited_answers() {
    let mut n = Net::new();
    // Within the first window of the capture: the query may precede the capture.
    let early = n.send(
        0,
        (ATTACKER, 5355),
        (CLIENT, 50000),
        &dns_answer(1, "early", &[ATTACKER], true),
    );
    assert!(find(&early, "unsolicited-answer").is_empty());
    let late = n.send(
        100,
        (ATTACKER, 5355),
        (CLIENT, 50000),
        &dns_answer(2, "late", &[ATTACKER], true),
    );
    let u = find(&late, "unsolicited-answer");
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].evidence["protocol"], "llmnr");
    assert_eq!(u[0].evidence["txid"], 2);
    // A query with another txid does not make it solicited.
    n.send(
        101,
        (CLIENT, 50000),
        ("224.0.0.252", 5355),
        &dns_query(3, "late2"),
    );
    let other = n.send(
        101,
        (ATTACKER, 5355),
        (CLIENT, 50000),
        &dns_answer(4, "late2", &[ATTACKER], true),
    );
    assert_eq!(find(&other, "unsolicited-answer").len(), 1);
    // A query answered after the window has expired.
    n.send(
        110,
        (CLIENT, 137),
        (BCAST, 137),
        &nbns_query(5, "SLOW", 0x20, true),
    );
    let slow = n.send(
        200,
        (OWNER, 137),
        (CLIENT, 137),
        &nbns_answer(5, "SLOW", 0x20, OWNER),
    );
    assert_eq!(find(&slow, "unsolicited-answer").len(), 1);
    let m = n.send(
        300,
        (OWNER, 5353),
        ("224.0.0.251", 5353),
        &dns_answer(0, "tv.local", &[OWNER], false),
    );
    assert!(m.is_empty(), "{:?}", slugs(&m));
}

/// WPAD answered by a host that owns nothing: High; by its registered owner: Medium.
#[test]
fn wpad_and_isatap_answers() {
    let mut n = Net::new();
    n.send(
        10,
        (CLIENT, 50000),
        ("224.0.0.252", 5355),
        &dns_query(7, "wpad"),
    );
    let a = n.send(
        10,
        (ATTACKER, 5355),
        (CLIENT, 50000),
        &dns_answer(7, "wpad", &[ATTACKER], true),
    );
    let w = find(&a, "wpad-answered");
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].severity, Severity::High);
    assert_eq!(w[0].evidence["protocol"], "llmnr");
    assert_eq!(src_ip(w[0]), ATTACKER.parse::<IpAddr>().unwrap());
    let p = find(&a, "poisoner");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].evidence["steps"][0]["kind"], "wpad");

    n.send(
        11,
        (CLIENT, 5353),
        ("224.0.0.251", 5353),
        &dns_query(0, "isatap.local"),
    );
    let i = n.send(
        11,
        (ATTACKER, 5353),
        ("224.0.0.251", 5353),
        &dns_answer(0, "isatap.local", &[ATTACKER], false),
    );
    assert_eq!(find(&i, "isatap-answered").len(), 1);

    // The real WPAD host, registered on NBNS.
    n.send(
        20,
        (OWNER, 137),
        (BCAST, 137),
        &nbns_registration(1, "WPAD", 0x00, OWNER),
    );
    n.send(
        30,
        (CLIENT, 137),
        (BCAST, 137),
        &nbns_query(8, "WPAD", 0x00, true),
    );
    let o = n.send(
        30,
        (OWNER, 137),
        (CLIENT, 137),
        &nbns_answer(8, "WPAD", 0x00, OWNER),
    );
    let w = find(&o, "wpad-answered");
    assert_eq!(w.len(), 1, "{:?}", slugs(&o));
    assert_eq!(w[0].severity, Severity::Medium);
    assert!(find(&o, "poisoner").is_empty(), "{:?}", slugs(&o));
}

/// A broadcast query answered with an address other than the sender's.
#[test]
fn broadcast_answer_address_mismatch() {
    let mut n = Net::new();
    n.send(
        0,
        (OWNER, 137),
        (BCAST, 137),
        &nbns_registration(1, "HOST2", 0x20, "198.51.100.99"),
    );
    n.send(
        10,
        (CLIENT, 137),
        (BCAST, 137),
        &nbns_query(9, "HOST2", 0x20, true),
    );
    let a = n.send(
        10,
        (OWNER, 137),
        (CLIENT, 137),
        &nbns_answer(9, "HOST2", 0x20, "198.51.100.99"),
    );
    let m = find(&a, "answer-address-mismatch");
    assert_eq!(m.len(), 1, "{:?}", slugs(&a));
    assert_eq!(
        m[0].evidence["mismatched_addresses"],
        serde_json::json!(["198.51.100.99"])
    );
    // The same answer to a unicast (WINS-style) query is not a mismatch.
    n.send(
        20,
        (CLIENT, 137),
        (OWNER, 137),
        &nbns_query(10, "HOST2", 0x20, false),
    );
    let b = n.send(
        20,
        (OWNER, 137),
        (CLIENT, 137),
        &nbns_answer(10, "HOST2", 0x20, "198.51.100.99"),
    );
    assert!(find(&b, "answer-address-mismatch").is_empty());
}

/// Name servers and trusted responders answer for others without alerts.
#[test]
fn name_servers_are_skipped() {
    let cfg = WatchConfig {
        name_servers: vec![ATTACKER.parse().unwrap()],
        ..WatchConfig::default()
    };
    let mut n = Net::with(cfg);
    n.send(
        0,
        (OWNER, 137),
        (BCAST, 137),
        &nbns_registration(1, "HOST1", 0x20, OWNER),
    );
    n.send(
        10,
        (CLIENT, 137),
        (ATTACKER, 137),
        &nbns_query(2, "HOST1", 0x20, false),
    );
    let a = n.send(
        10,
        (ATTACKER, 137),
        (CLIENT, 137),
        &nbns_answer(2, "HOST1", 0x20, OWNER),
    );
    assert!(a.is_empty(), "{:?}", slugs(&a));
}

/// One host answering for many names it does not own.
#[test]
fn many_names_responder() {
    let mut n = Net::new();
    let mut all = Vec::new();
    for i in 0..6u16 {
        let name = format!("name{i}");
        n.send(
            10,
            (CLIENT, 50000),
            ("224.0.0.252", 5355),
            &dns_query(i, &name),
        );
        all.extend(n.send(
            10,
            (ATTACKER, 5355),
            (CLIENT, 50000),
            &dns_answer(i, &name, &[ATTACKER], true),
        ));
    }
    let m = find(&all, "many-names-responder");
    assert_eq!(m.len(), 1, "{:?}", slugs(&all));
    assert_eq!(m[0].evidence["count"], 5);
    assert_eq!(src_ip(m[0]), ATTACKER.parse::<IpAddr>().unwrap());
}

/// Malformed LLMNR is reported, not fatal.
#[test]
fn malformed_llmnr_is_reported() {
    let mut n = Net::new();
    let mut q = dns_query(1, "host");
    q.truncate(q.len() - 2);
    let a = n.send(0, (CLIENT, 50000), ("224.0.0.252", 5355), &q);
    assert_eq!(slugs(&a), vec!["malformed"]);
}

/// Real peers' types the detectors do not use (HTTPS, ANY, NSEC, private types, cache-flush
/// classes) are no `malformed` alert, and an answer carrying them is still checked.
#[test]
fn unknown_dns_types_are_not_malformed() {
    let mut n = Net::new();
    let mut https = dns_query(2, "printer.local");
    https.truncate(https.len() - 4);
    https.extend_from_slice(&[0, 65, 0x80, 1]); // HTTPS, QU
    let a = n.send(0, (CLIENT, 5353), ("224.0.0.251", 5353), &https);
    assert!(a.is_empty(), "{:?}", slugs(&a));
    let mut any = dns_query(3, "wpad");
    any.truncate(any.len() - 4);
    any.extend_from_slice(&[0, 255, 0, 1]);
    let a = n.send(0, (CLIENT, 50000), ("224.0.0.252", 5355), &any);
    assert!(a.is_empty(), "{:?}", slugs(&a));
    // Responder-style LLMNR answer for wpad with an NSEC and a private-type record
    // (class 0x8001) appended as additional records.
    let mut ans = dns_answer(3, "wpad", &[ATTACKER], true);
    ans[11] = 2;
    for rtype in [[0u8, 47], [0xff, 0x00]] {
        ans.extend_from_slice(&[
            0xC0, 12, rtype[0], rtype[1], 0x80, 1, 0, 0, 0, 30, 0, 2, 0, 0,
        ]);
    }
    let a = n.send(1, (ATTACKER, 5355), (CLIENT, 50000), &ans);
    assert_eq!(slugs(&a), vec!["wpad-answered", "poisoner"], "{a:?}");
    assert_eq!(n.e.counters().malformed, 0);
}

fn check_caps(v: &Value, path: &str) {
    if let Some(o) = v.as_object() {
        if let (Some(len), Some(max)) = (
            o.get("len").and_then(Value::as_u64),
            o.get("max").and_then(Value::as_u64),
        ) {
            assert!(len <= max, "{path}: {len} > {max}");
        }
        for (k, x) in o {
            check_caps(x, &format!("{path}.{k}"));
        }
    }
}

/// 100,000 unique names, transaction ids and hosts: every table stays within its cap.
#[test]
fn flood_keeps_tables_capped() {
    let cfg = WatchConfig {
        max_names: 1_000,
        max_hosts: 500,
        max_queries: 1_000,
        max_alert_keys: 256,
        ..WatchConfig::default()
    };
    let mut n = Net::with(cfg);
    for i in 0..100_000u32 {
        let secs = i64::from(i / 50);
        let host = format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
        let id = i as u16;
        match i % 3 {
            0 => {
                let name = format!("N{i}");
                n.send(
                    secs,
                    (CLIENT, 137),
                    (BCAST, 137),
                    &nbns_query(id, &name, 0x20, true),
                );
                n.send(
                    secs,
                    (host.as_str(), 137),
                    (CLIENT, 137),
                    &nbns_answer(id, &name, 0x20, &host),
                );
            }
            1 => {
                let name = format!("l{i}");
                n.send(
                    secs,
                    (CLIENT, 50000),
                    ("224.0.0.252", 5355),
                    &dns_query(id, &name),
                );
                n.send(
                    secs,
                    (host.as_str(), 5355),
                    (CLIENT, 50000),
                    &dns_answer(id, &name, &[&host], true),
                );
            }
            _ => {
                let name = format!("m{i}.local");
                n.send(
                    secs,
                    (CLIENT, 5353),
                    ("224.0.0.251", 5353),
                    &dns_query(0, &name),
                );
                n.send(
                    secs,
                    (host.as_str(), 5353),
                    ("224.0.0.251", 5353),
                    &dns_answer(0, &name, &[&host], false),
                );
            }
        }
    }
    let s = n.e.stats();
    check_caps(&s, "stats");
    let t = &s["tables"];
    assert!(t["names"]["len"].as_u64().unwrap() <= 1_000);
    assert!(t["poison"]["queries"]["len"].as_u64().unwrap() <= 1_000);
    assert!(t["poison"]["hosts"]["len"].as_u64().unwrap() <= 500);
    assert!(t["poison"]["hosts"]["evicted"].as_u64().unwrap() > 0);
    assert!(t["alert_keys"]["len"].as_u64().unwrap() <= 256);
    assert_eq!(t["poison"]["answers"].as_u64().unwrap(), 100_000);
}

/// The attacker answers first, before anyone owns the name on LLMNR: both answers are
/// rivals, neither makes the other "not owner", and the real owner is not accused.
#[test]
fn rival_first_answer_does_not_become_owner() {
    let mut n = Net::new();
    n.send(
        10,
        (CLIENT, 50000),
        ("224.0.0.252", 5355),
        &dns_query(0x77, "nas"),
    );
    let a = n.send(
        10,
        (ATTACKER, 5355),
        (CLIENT, 50000),
        &dns_answer(0x77, "nas", &[ATTACKER], true),
    );
    assert!(a.is_empty(), "{:?}", slugs(&a));
    let b = n.send(
        10,
        (OWNER, 5355),
        (CLIENT, 50000),
        &dns_answer(0x77, "nas", &[OWNER], true),
    );
    assert_eq!(slugs(&b), vec!["multiple-responders"]);
    // Next query: only the attacker answers; it is not "the owner" from its earlier answer.
    n.send(
        20,
        (CLIENT, 50000),
        ("224.0.0.252", 5355),
        &dns_query(0x78, "nas"),
    );
    let c = n.send(
        20,
        (OWNER, 5355),
        (CLIENT, 50000),
        &dns_answer(0x78, "nas", &[OWNER], true),
    );
    assert!(find(&c, "answer-not-owner").is_empty(), "{:?}", slugs(&c));
}

/// NBNS retransmits a broadcast query with the same txid: responders to either try count.
#[test]
fn retransmitted_query_keeps_its_responders() {
    let mut n = Net::new();
    n.send(
        0,
        (OWNER, 137),
        (BCAST, 137),
        &nbns_registration(1, "HOST1", 0x20, OWNER),
    );
    n.send(
        10,
        (CLIENT, 137),
        (BCAST, 137),
        &nbns_query(0x500, "HOST1", 0x20, true),
    );
    n.send(
        10,
        (ATTACKER, 137),
        (CLIENT, 137),
        &nbns_answer(0x500, "HOST1", 0x20, ATTACKER),
    );
    n.send(
        11,
        (CLIENT, 137),
        (BCAST, 137),
        &nbns_query(0x500, "HOST1", 0x20, true),
    );
    let b = n.send(
        11,
        (OWNER, 137),
        (CLIENT, 137),
        &nbns_answer(0x500, "HOST1", 0x20, OWNER),
    );
    assert_eq!(find(&b, "multiple-responders").len(), 1, "{:?}", slugs(&b));
}

/// An mDNS goodbye (TTL 0) withdraws the announced name.
#[test]
fn mdns_goodbye_releases_the_name() {
    let mut n = Net::new();
    n.send(
        0,
        (OWNER, 5353),
        ("224.0.0.251", 5353),
        &dns_answer(0, "cam.local", &[OWNER], false),
    );
    n.send(
        10,
        (CLIENT, 5353),
        ("224.0.0.251", 5353),
        &dns_query(0, "cam.local"),
    );
    let a = n.send(
        10,
        (ATTACKER, 5353),
        ("224.0.0.251", 5353),
        &dns_answer(0, "cam.local", &[ATTACKER], false),
    );
    assert_eq!(find(&a, "answer-not-owner").len(), 1, "{:?}", slugs(&a));
    let mut bye = dns_answer(0, "cam.local", &[OWNER], false);
    let ttl = bye.len() - 10;
    bye[ttl..ttl + 4].copy_from_slice(&[0, 0, 0, 0]);
    n.send(20, (OWNER, 5353), ("224.0.0.251", 5353), &bye);
    n.send(
        30,
        (CLIENT, 5353),
        ("224.0.0.251", 5353),
        &dns_query(0, "cam.local"),
    );
    let b = n.send(
        30,
        (CLIENT, 5353),
        ("224.0.0.251", 5353),
        &dns_answer(0, "cam.local", &[CLIENT], false),
    );
    assert!(find(&b, "answer-not-owner").is_empty(), "{:?}", slugs(&b));
}

/// A multi-homed Windows host seen after its registration answers its own name over NBNS
/// (both addresses) and LLMNR (IPv4, and an AAAA from IPv4): only the low
/// unregistered-name note, no poisoner, no cross-protocol, no mismatch.
#[test]
fn late_capture_multihomed_owner_is_not_a_poisoner() {
    let mut n = Net::new();
    let mut all = Vec::new();
    let mut ans = nbns::Packet::request(0x600, 0, Name::new("SCV", 0x20).unwrap(), TYPE_NB);
    ans.flags = nbns::FLAG_RESPONSE | nbns::FLAG_AA | nbns::FLAG_RD;
    ans.questions.clear();
    let mut rr = nb_record("SCV", 0x20, OWNER, 0);
    rr.rdata = RData::Nb(vec![
        NbAddress {
            flags: 0,
            ip: ip4(OWNER),
        },
        NbAddress {
            flags: 0,
            ip: ip4("203.0.113.10"),
        },
    ]);
    ans.answers.push(rr);
    all.extend(n.send(
        10,
        (CLIENT, 137),
        (BCAST, 137),
        &nbns_query(0x600, "SCV", 0x20, true),
    ));
    all.extend(n.send(10, (OWNER, 137), (CLIENT, 137), &ans.to_bytes().unwrap()));
    all.extend(n.send(
        11,
        (CLIENT, 50000),
        ("224.0.0.252", 5355),
        &dns_query(0x601, "scv"),
    ));
    all.extend(n.send(
        11,
        (OWNER, 5355),
        (CLIENT, 50000),
        &dns_answer(0x601, "scv", &[OWNER], true),
    ));
    all.extend(n.send(
        12,
        (CLIENT, 5353),
        ("224.0.0.251", 5353),
        &dns_query(0, "scv.local"),
    ));
    all.extend(n.send(
        12,
        (OWNER, 5353),
        ("224.0.0.251", 5353),
        &dns_answer(0, "scv.local", &[OWNER], false),
    ));
    assert_eq!(slugs(&all), vec!["answer-unregistered-name"]);
}

/// Responder on LLMNR and mDNS only (no NBNS): three names still reach High.
#[test]
fn responder_without_nbns_reaches_high() {
    let mut n = Net::new();
    let mut all = Vec::new();
    for (i, name) in ["alpha", "bravo", "charlie"].iter().enumerate() {
        let id = 0x700 + i as u16;
        let t = 10 + i as i64;
        all.extend(n.send(
            t,
            (CLIENT, 50001),
            ("224.0.0.252", 5355),
            &dns_query(id, name),
        ));
        all.extend(n.send(
            t,
            (ATTACKER, 5355),
            (CLIENT, 50001),
            &dns_answer(id, name, &[ATTACKER], true),
        ));
        let local = format!("{name}.local");
        all.extend(n.send(
            t,
            (CLIENT, 5353),
            ("224.0.0.251", 5353),
            &dns_query(0, &local),
        ));
        all.extend(n.send(
            t,
            (ATTACKER, 5353),
            ("224.0.0.251", 5353),
            &dns_answer(0, &local, &[ATTACKER], false),
        ));
    }
    let p = find(&all, "poisoner");
    assert_eq!(
        p.last().map(|a| a.severity),
        Some(Severity::High),
        "{:?}",
        slugs(&all)
    );
    let steps = p.last().unwrap().evidence["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for n in ["alpha", "bravo", "charlie"] {
        assert!(names.iter().any(|x| x.starts_with(n)), "{names:?}");
    }
}

/// Per-host alerts do not repeat for every answer: many-names again only when the set
/// doubles, cross-protocol once per name and protocol added.
#[test]
fn per_host_alerts_do_not_repeat_per_answer() {
    let mut n = Net::new();
    let mut all = Vec::new();
    for i in 0..12u16 {
        let name = format!("srv{i}");
        let t = 10 + i64::from(i);
        all.extend(n.send(
            t,
            (CLIENT, 50000),
            ("224.0.0.252", 5355),
            &dns_query(i, &name),
        ));
        all.extend(n.send(
            t,
            (ATTACKER, 5355),
            (CLIENT, 50000),
            &dns_answer(i, &name, &[ATTACKER], true),
        ));
        let local = format!("{name}.local");
        all.extend(n.send(
            t,
            (CLIENT, 5353),
            ("224.0.0.251", 5353),
            &dns_query(0, &local),
        ));
        all.extend(n.send(
            t,
            (ATTACKER, 5353),
            ("224.0.0.251", 5353),
            &dns_answer(0, &local, &[ATTACKER], false),
        ));
        // The same answer again over mDNS adds no protocol.
        all.extend(n.send(
            t,
            (CLIENT, 5353),
            ("224.0.0.251", 5353),
            &dns_query(0, &local),
        ));
        all.extend(n.send(
            t,
            (ATTACKER, 5353),
            ("224.0.0.251", 5353),
            &dns_answer(0, &local, &[ATTACKER], false),
        ));
    }
    let many: Vec<u64> = find(&all, "many-names-responder")
        .iter()
        .map(|a| a.evidence["count"].as_u64().unwrap())
        .collect();
    assert_eq!(many, vec![5, 10]);
    // srv0 is taken as the host's own name until srv1; then one alert per name.
    assert_eq!(find(&all, "cross-protocol-responder").len(), 11);
}

/// An answer to a honey query, even an mDNS one whose query the capture missed, raises
/// honey-answered and counts as a poisoner step; no other poisoning check runs on it.
#[test]
fn honey_answers_are_poisoner_steps() {
    use nbdgm_watch::honey::SentQuery;
    use nbdgm_watch::state::Proto;
    let mut n = Net::new();
    for (proto, name) in [
        (Proto::Mdns, "zq-honey7.local"),
        (Proto::Llmnr, "zq-honey8"),
    ] {
        n.e.honey_mut().register(&SentQuery {
            proto,
            name: name.into(),
            txid: if proto == Proto::Mdns { 0 } else { 0x900 },
            qtype: 1,
            attempt: 1,
            time: Timestamp { secs: 10, nanos: 0 },
            src: SocketAddr::new(OWNER.parse().unwrap(), 5353),
            dst: SocketAddr::new("224.0.0.251".parse().unwrap(), 5353),
        });
    }
    let a = n.send(
        10,
        (ATTACKER, 5353),
        ("224.0.0.251", 5353),
        &dns_answer(0, "zq-honey7.local", &[ATTACKER], false),
    );
    assert_eq!(slugs(&a), vec!["honey-answered", "poisoner"]);
    assert_eq!(a[1].evidence["steps"][0]["kind"], "honey");
    assert_eq!(src_ip(&a[1]), ATTACKER.parse::<IpAddr>().unwrap());
    let b = n.send(
        11,
        (ATTACKER, 5355),
        (OWNER, 50000),
        &dns_answer(0x900, "zq-honey8", &[ATTACKER], true),
    );
    assert_eq!(slugs(&b), vec!["honey-answered", "poisoner"]);
    assert_eq!(b[1].severity, Severity::High);
}
