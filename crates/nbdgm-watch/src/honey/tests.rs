//! Unit tests of the honey book and [`super::on_answer`] (called directly, before the
//! poisoning detectors call it).

use super::*;
use crate::Severity;

fn ts(secs: i64) -> Timestamp {
    Timestamp::new(secs, 0)
}

fn sent(proto: Proto, name: &str, txid: u16, secs: i64) -> SentQuery {
    SentQuery {
        proto,
        name: name.into(),
        txid,
        qtype: 0x20,
        attempt: 1,
        time: ts(secs),
        src: "198.51.100.2:137".parse().unwrap(),
        dst: "198.51.100.255:137".parse().unwrap(),
    }
}

fn packet(secs: i64, mac: Option<[u8; 6]>) -> Packet<'static> {
    Packet {
        frame: 7,
        time: ts(secs),
        src: "198.51.100.66:137".parse().unwrap(),
        dst: "198.51.100.2:137".parse().unwrap(),
        src_mac: mac,
        payload: &[],
    }
}

#[test]
fn answer_to_a_honey_name_alerts_with_evidence() {
    let mut e = Engine::new(WatchConfig::default());
    e.honey_mut()
        .register(&sent(Proto::Nbns, "DESKTOP-QX81ZTA<20>", 0x4242, 1000));
    let mut q = sent(Proto::Nbns, "DESKTOP-QX81ZTA<20>", 0x4242, 1001);
    q.attempt = 2;
    e.honey_mut().register(&q);
    let mut out = Vec::new();
    let addrs = ["198.51.100.66".parse().unwrap()];
    let p = packet(1002, Some([0xaa, 0xbb, 0xcc, 0, 1, 2]));
    assert!(on_answer(
        &mut e,
        &p,
        Proto::Nbns,
        "DESKTOP-QX81ZTA<20>",
        0x4242,
        &addrs,
        &mut out
    ));
    assert_eq!(out.len(), 1);
    let a = &out[0];
    assert_eq!(a.signature.slug, "honey-answered");
    assert_eq!(a.severity, Severity::High);
    assert_eq!(a.src, p.src);
    assert_eq!(a.key, "DESKTOP-QX81ZTA<20>");
    let ev = &a.evidence;
    assert_eq!(ev["protocol"], "nbns");
    assert_eq!(ev["name"], "DESKTOP-QX81ZTA<20>");
    assert_eq!(ev["txid"], 0x4242);
    assert_eq!(ev["txid_matches"], true);
    assert_eq!(ev["addresses"], json!(["198.51.100.66"]));
    assert_eq!(ev["responder"], "198.51.100.66");
    assert_eq!(ev["responder_mac"], "aa:bb:cc:00:01:02");
    assert_eq!(ev["queries_sent"], 2);
    assert_eq!(ev["query_first_sent"], 1000.0);
    assert_eq!(ev["query_last_sent"], 1001.0);
    assert_eq!(ev["answer_delay_secs"], 1.0);
    assert_eq!(e.honey.stats()["answered"], 1);
}

#[test]
fn other_names_protocols_and_ids() {
    let mut e = Engine::new(WatchConfig::default());
    e.honey_mut()
        .register(&sent(Proto::Llmnr, "desktop-qx81zta", 7, 1000));
    let mut out = Vec::new();
    let p = packet(1001, None);
    assert!(!on_answer(
        &mut e,
        &p,
        Proto::Llmnr,
        "fileserver",
        7,
        &[],
        &mut out
    ));
    assert!(!on_answer(
        &mut e,
        &p,
        Proto::Mdns,
        "desktop-qx81zta",
        7,
        &[],
        &mut out
    ));
    assert!(out.is_empty());
    // Case and trailing dot do not matter; a forged id is still an answer.
    assert!(on_answer(
        &mut e,
        &p,
        Proto::Llmnr,
        "DESKTOP-QX81ZTA.",
        8,
        &[],
        &mut out
    ));
    assert_eq!(out[0].evidence["txid_matches"], false);
    assert_eq!(out[0].evidence["responder_mac"], Value::Null);
}

#[test]
fn late_answers_count_until_linger_then_not() {
    let mut e = Engine::new(WatchConfig::default());
    e.honey_mut()
        .register(&sent(Proto::Mdns, "desktop-qx81zta.local", 0, 1000));
    let mut out = Vec::new();
    let n = "desktop-qx81zta.local";
    assert!(on_answer(
        &mut e,
        &packet(1599, None),
        Proto::Mdns,
        n,
        0,
        &[],
        &mut out
    ));
    assert!(!on_answer(
        &mut e,
        &packet(1601, None),
        Proto::Mdns,
        n,
        0,
        &[],
        &mut out
    ));
    assert_eq!(e.honey.late, 1);
    e.honey_mut().set_linger(Duration::from_secs(5));
    assert!(!e.honey.is_live(Proto::Mdns, n, 1006));
    assert!(e.honey.is_live(Proto::Mdns, n, 1005));
}

#[test]
fn book_is_capped_and_txids_bounded() {
    let mut e = Engine::new(WatchConfig::default());
    for i in 0..(MAX_LIVE as i64 * 3) {
        e.honey_mut()
            .register(&sent(Proto::Nbns, &format!("H{i}<20>"), 1, 1000 + i / 100));
        assert!(e.honey.len() <= MAX_LIVE);
    }
    assert!(e.honey.stats()["evicted"].as_u64().unwrap() >= 2 * MAX_LIVE as u64);
    for id in 0..100u16 {
        e.honey_mut()
            .register(&sent(Proto::Nbns, "X<20>", id, 5000));
    }
    let live = e.honey.live.get(&(Proto::Nbns, "X<20>".into())).unwrap();
    assert_eq!(live.txids.len(), MAX_TXIDS);
    assert!(live.txids.contains(&99));
}

#[test]
fn old_names_expire_on_register() {
    let mut e = Engine::new(WatchConfig::default());
    e.honey_mut()
        .register(&sent(Proto::Nbns, "OLD<20>", 1, 1000));
    e.honey_mut()
        .register(&sent(Proto::Nbns, "NEW<20>", 2, 1000 + 601));
    assert_eq!(e.honey.len(), 1);
    assert!(e.honey.is_live(Proto::Nbns, "new<20>", 1601));
}

#[test]
fn verification_is_attached() {
    let mut a = Alert::new(&signature::HONEY_ANSWERED, &packet(1, None));
    let v = Verification {
        smb445: PortState::Open,
        wpad_http: Ok("HTTP/1.1 200 OK".into()),
        wpad_script: true,
    };
    attach_verification(&mut a, &v);
    assert_eq!(a.evidence["verification"]["smb445"], "open");
    assert_eq!(
        a.evidence["verification"]["wpad_http"]["status"],
        "HTTP/1.1 200 OK"
    );
}
