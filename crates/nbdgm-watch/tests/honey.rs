//! Honey queries end to end: the sender on loopback sockets (timing, ids, rate cap,
//! reports), and an answer to a honey name fed through `Engine::process`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_capture::Timestamp;
use nbdgm_watch::honey::{HoneyConfig, HoneySender, SentQuery};
use nbdgm_watch::state::Proto;
use nbdgm_watch::{Engine, Packet, WatchConfig};
use nbdgm_wire::nbns;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn sink() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind((LO, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let a = s.local_addr().unwrap();
    (s, a)
}

/// Everything `s` receives for `dur`, with arrival times.
fn drain(s: &UdpSocket, dur: Duration) -> Vec<(Instant, Vec<u8>, SocketAddr)> {
    let end = Instant::now() + dur;
    let mut v = Vec::new();
    let mut buf = [0u8; 1500];
    while Instant::now() < end && v.len() < 100 {
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            v.push((Instant::now(), buf[..n].to_vec(), from));
        }
    }
    v
}

fn loopback_cfg() -> HoneyConfig {
    let mut cfg = HoneyConfig::new(LO, LO);
    cfg.nbns_port = 0;
    cfg.mdns_port = 0;
    cfg.interval = Duration::from_millis(50);
    cfg.jitter = 0.0;
    cfg
}

#[test]
fn nbns_three_tries_750ms_apart_same_id_and_rate_cap() {
    let (s, dst) = sink();
    let mut cfg = loopback_cfg();
    cfg.llmnr = false;
    cfg.mdns = false;
    cfg.nbns_dst = Some(dst);
    // One round is 3 packets: a second round does not fit in 4 per minute.
    cfg.max_per_minute = 4;
    let seeds = vec!["WIN2K3LAB023<20>".to_string()];
    let (sender, rx) = HoneySender::start(cfg, seeds).unwrap();
    let got = drain(&s, Duration::from_millis(2800));
    let stats = sender.stats();
    sender.stop();
    assert_eq!(got.len(), 3, "rate cap: {} packets", got.len());
    assert_eq!(stats.rounds, 1);
    assert_eq!(stats.sent, 3);
    assert!(stats.rate_waits >= 1, "{stats:?}");
    let pkts: Vec<nbns::Packet> = got
        .iter()
        .map(|(_, b, _)| nbns::Packet::parse(b).unwrap())
        .collect();
    let id = pkts[0].id;
    for p in &pkts {
        assert_eq!(p.id, id, "Windows retries with the same NAME_TRN_ID");
        assert_eq!(p.flags, 0x0110);
        assert_eq!(p.questions.len(), 1);
        assert_eq!(p.questions[0].qtype, nbns::TYPE_NB);
        assert_eq!(p.questions[0].name, pkts[0].questions[0].name);
    }
    let name = pkts[0].questions[0].name.name();
    assert!(
        name.starts_with("WIN") && name.len() == 12 && name != "WIN2K3LAB023",
        "{name}"
    );
    for w in got.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(
            gap >= Duration::from_millis(600) && gap <= Duration::from_millis(1100),
            "gap {gap:?}"
        );
    }
    // Each packet was reported, before it went out.
    let sent: Vec<SentQuery> = rx.try_iter().collect();
    assert_eq!(sent.len(), 3);
    for (i, q) in sent.iter().enumerate() {
        assert_eq!(q.proto, Proto::Nbns);
        assert_eq!(q.txid, id);
        assert_eq!(q.attempt as usize, i + 1);
        assert_eq!(q.dst, dst);
        assert_eq!(q.src, got[i].2);
        let suffix = pkts[0].questions[0].name.suffix();
        assert_eq!(q.name, format!("{name}<{suffix:02X}>"));
    }
}

#[test]
fn llmnr_and_mdns_rounds_and_stop() {
    let (sn, dn) = sink();
    let (sl, dl) = sink();
    let (sm, dm) = sink();
    let mut cfg = loopback_cfg();
    cfg.nbns_dst = Some(dn);
    cfg.llmnr_dst = Some(dl);
    cfg.mdns_dst = Some(dm);
    cfg.max_rounds = Some(1);
    let (sender, rx) = HoneySender::start(cfg, Vec::new()).unwrap();
    let l = drain(&sl, Duration::from_millis(400));
    let m = drain(&sm, Duration::from_millis(100));
    let n = drain(&sn, Duration::from_millis(1500));
    let t0 = Instant::now();
    sender.stop();
    assert!(t0.elapsed() < Duration::from_millis(500));
    assert_eq!((n.len(), l.len(), m.len()), (3, 2, 1));
    // LLMNR: twice, same random id, flags 0, A.
    assert_eq!(l[0].1, l[1].1);
    let gap = l[1].0 - l[0].0;
    assert!(
        gap >= Duration::from_millis(80) && gap <= Duration::from_millis(400),
        "{gap:?}"
    );
    let lb = &l[0].1;
    assert_eq!(&lb[2..12], &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&lb[lb.len() - 4..], &[0, 1, 0, 1]);
    let label_len = usize::from(lb[12]);
    let label = std::str::from_utf8(&lb[13..13 + label_len])
        .unwrap()
        .to_string();
    assert!(
        label.starts_with("desktop-") && label.len() == 15,
        "{label}"
    );
    // mDNS: id 0, `<label>.local`, A, QU clear.
    let mb = &m[0].1;
    assert_eq!(&mb[..12], &[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&mb[13..13 + label_len], label.as_bytes());
    assert_eq!(&mb[13 + label_len..13 + label_len + 7], b"\x05local\x00");
    // The NBNS name is the same name, upper case.
    let p = nbns::Packet::parse(&n[0].1).unwrap();
    assert_eq!(p.questions[0].name.name(), label.to_ascii_uppercase());
    let sent: Vec<SentQuery> = rx.try_iter().collect();
    assert_eq!(sent.len(), 6);
    let lq: Vec<&SentQuery> = sent.iter().filter(|q| q.proto == Proto::Llmnr).collect();
    assert_eq!(lq.len(), 2);
    assert_eq!(lq[0].name, label);
    assert_eq!(u16::from_be_bytes([lb[0], lb[1]]), lq[0].txid);
    let mq: Vec<&SentQuery> = sent.iter().filter(|q| q.proto == Proto::Mdns).collect();
    assert_eq!(mq[0].name, format!("{label}.local"));
    assert_eq!(mq[0].txid, 0);
}

#[test]
fn start_rejects_nonsense() {
    let mut cfg = loopback_cfg();
    cfg.max_per_minute = 0;
    assert!(HoneySender::start(cfg, Vec::new()).is_err());
    let mut cfg = loopback_cfg();
    (cfg.nbns, cfg.llmnr, cfg.mdns) = (false, false, false);
    assert!(HoneySender::start(cfg, Vec::new()).is_err());
}

/// A POSITIVE NAME QUERY RESPONSE (RFC 1002 §4.2.13) as Responder sends it.
fn positive_response(id: u16, name: &str, suffix: u8, ip: Ipv4Addr) -> Vec<u8> {
    let n = nbdgm_wire::name::Name::new(name, suffix).unwrap();
    let mut p = nbns::Packet::request(id, 0x8500, n.clone(), nbns::TYPE_NB);
    p.questions.clear();
    p.answers.push(nbns::Record {
        name: n,
        rr_type: nbns::TYPE_NB,
        rr_class: nbns::CLASS_IN,
        ttl: 165,
        rdata: nbns::RData::Nb(vec![nbns::NbAddress { flags: 0, ip }]),
    });
    p.to_bytes().unwrap()
}

/// Needs the poisoning detector (poison.rs) to call `honey::on_answer`.
#[test]
fn engine_alerts_on_answer_to_honey_name() {
    let mut e = Engine::new(WatchConfig::default());
    let ours: SocketAddr = "198.51.100.2:137".parse().unwrap();
    let poisoner: SocketAddr = "198.51.100.66:137".parse().unwrap();
    for attempt in 1..=3u8 {
        e.honey_mut().register(&SentQuery {
            proto: Proto::Nbns,
            name: "DESKTOP-QX81ZTA<20>".into(),
            txid: 0x5a5a,
            qtype: nbns::TYPE_NB,
            attempt,
            time: Timestamp::new(1_000, u32::from(attempt) * 1000),
            src: ours,
            dst: "198.51.100.255:137".parse().unwrap(),
        });
    }
    let payload = positive_response(
        0x5a5a,
        "DESKTOP-QX81ZTA",
        0x20,
        Ipv4Addr::new(198, 51, 100, 66),
    );
    let p = Packet {
        frame: 42,
        time: Timestamp::new(1_001, 0),
        src: poisoner,
        dst: ours,
        src_mac: Some([0x02, 0, 0, 0, 0, 0x66]),
        payload: &payload,
    };
    let mut out = Vec::new();
    e.process(&p, &mut out);
    let honey: Vec<_> = out
        .iter()
        .filter(|a| a.signature.slug == "honey-answered")
        .collect();
    assert_eq!(honey.len(), 1, "alerts: {out:?}");
    let a = honey[0];
    assert_eq!(a.severity.number(), 1);
    assert_eq!(a.src, poisoner);
    assert_eq!(a.evidence["responder_mac"], "02:00:00:00:00:66");
    assert_eq!(a.evidence["txid_matches"], true);
    assert_eq!(
        a.evidence["addresses"],
        serde_json::json!(["198.51.100.66"])
    );
    assert_eq!(a.evidence["name"], "DESKTOP-QX81ZTA<20>");
}

/// An LLMNR answer (RFC 4795 §2.1.1): the question echoed, one A record.
fn llmnr_answer(id: u16, label: &str, ip: [u8; 4]) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.extend_from_slice(&[0x80, 0, 0, 1, 0, 1, 0, 0, 0, 0]);
    b.push(label.len() as u8);
    b.extend_from_slice(label.as_bytes());
    b.extend_from_slice(&[0, 0, 1, 0, 1]);
    b.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
    b.extend_from_slice(&ip);
    b
}

/// The sender's reports, registered in an engine, make a poisoner's LLMNR answer an alert.
#[test]
fn sender_reports_registered_then_llmnr_answer_alerts() {
    let (sl, dl) = sink();
    let mut cfg = loopback_cfg();
    (cfg.nbns, cfg.mdns) = (false, false);
    cfg.llmnr_dst = Some(dl);
    cfg.max_rounds = Some(1);
    let (sender, rx) = HoneySender::start(cfg, vec!["printer.local".into()]).unwrap();
    let l = drain(&sl, Duration::from_millis(400));
    sender.stop();
    assert_eq!(l.len(), 2);
    let mut e = Engine::new(WatchConfig::default());
    let sent: Vec<SentQuery> = rx.try_iter().collect();
    for q in &sent {
        e.honey_mut().register(q);
    }
    let q = &sent[0];
    assert!(q.name.starts_with("pri") && q.name.len() == 7, "{}", q.name);
    let payload = llmnr_answer(q.txid, &q.name, [198, 51, 100, 66]);
    let p = Packet {
        frame: 1,
        time: Timestamp::new(q.time.secs, q.time.nanos),
        src: "198.51.100.66:5355".parse().unwrap(),
        dst: q.src,
        src_mac: None,
        payload: &payload,
    };
    let mut out = Vec::new();
    e.process(&p, &mut out);
    let honey: Vec<_> = out
        .iter()
        .filter(|a| a.signature.slug == "honey-answered")
        .collect();
    assert_eq!(honey.len(), 1, "alerts: {out:?}");
    assert_eq!(honey[0].evidence["protocol"], "llmnr");
    assert_eq!(honey[0].evidence["txid_matches"], true);
    assert_eq!(honey[0].evidence["queries_sent"], 2);
    assert_eq!(honey[0].evidence["responder_mac"], serde_json::Value::Null);
}

/// The multicast path: IP_MULTICAST_IF on the source address, a group destination.
/// Stays on loopback (source 127.0.0.1); skipped when lo cannot carry multicast here.
#[test]
fn multicast_leaves_by_the_source_interface() {
    let r = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let port = r.local_addr().unwrap().port();
    let group = Ipv4Addr::new(224, 0, 0, 252);
    if r.join_multicast_v4(&group, &LO).is_err() {
        eprintln!("skipped: cannot join a group on lo");
        return;
    }
    r.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut cfg = loopback_cfg();
    (cfg.nbns, cfg.mdns) = (false, false);
    cfg.llmnr_dst = Some(SocketAddr::from((group, port)));
    cfg.max_rounds = Some(1);
    let (sender, rx) = HoneySender::start(cfg, Vec::new()).unwrap();
    let got = drain(&r, Duration::from_millis(400));
    let stats = sender.stats();
    sender.stop();
    if stats.send_errors > 0 {
        eprintln!("skipped: {:?}", stats.last_error);
        return;
    }
    assert_eq!(got.len(), 2, "{stats:?}");
    assert_eq!(got[0].2.ip(), std::net::IpAddr::V4(LO));
    assert_eq!(rx.try_iter().count(), 2);
}
