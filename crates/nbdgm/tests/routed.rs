//! P-nodes, the NBNS role and the NBDD role of `nbdgm serve` end to end on loopback
//! (127.0.0.0/8, unprivileged ports; issue 7): P-nodes register with our NBNS by
//! unicast and ignore broadcasts, a group datagram goes through the NBDD to every other
//! member exactly once, an unknown group is refused, and without the NBDD a P-node
//! reports the error while an H-node falls back to broadcast.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_client::proto::{Event, NameState, SendArgs, SendMode, Subscription};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fn ip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 7, d)
}

fn spec<'a>(
    dir: &'a std::path::Path,
    tag: &'a str,
    name: &'a str,
    addr: Ipv4Addr,
    ports: (u16, u16),
    extra: &'a str,
) -> DaemonSpec<'a> {
    DaemonSpec::loopback(dir, tag, name, addr, ports, extra)
}

/// The TOML of a node of `kind` using the NBNS at ip(1).
fn node(kind: &str, ports: (u16, u16), more: &str) -> String {
    format!(
        "[browser]\nlisten = false\n[nbns]\nservers = [\"{}\"]\nport = {}\n{more}\n",
        ip(1),
        ports.0
    )
    .replace(
        "[browser]",
        &format!("[node]\nnode_type = \"{kind}\"\n[browser]"),
    )
}

fn registered(d: &Daemon, name: &str) {
    let list = d.wait_names(&[name]);
    assert!(
        list.iter()
            .any(|(n, s)| n == name && *s == NameState::Registered),
        "{name}: {list:?}\n{}",
        d.log_text()
    );
}

/// Datagram events within `wait`.
fn collect(
    c: &mut nbdgm_client::Client,
    wait: Duration,
) -> Vec<nbdgm_client::proto::DatagramEvent> {
    let mut out = Vec::new();
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if let Ok(Some(Event::Datagram(ev))) = c.next_event(Some(Duration::from_millis(100))) {
            out.push(ev);
        }
    }
    out
}

#[test]
fn p_nodes_through_our_nbns_and_nbdd() {
    let s = Scratch::new("routed-p");
    let ports = ports();
    // The server: a B node with the NBNS and NBDD roles.
    let mut server = Daemon::start(spec(
        &s.0,
        "srv",
        "ROUTESRV",
        ip(1),
        ports,
        "[node]\nrole = [\"nbns\", \"nbdd\"]\n[browser]\nlisten = false\n",
    ));
    registered(&server, "ROUTESRV<00>");
    // Two members and a sender, all P-nodes.
    let m1 = Daemon::start(spec(
        &s.0,
        "m1",
        "MEMBER1",
        ip(2),
        ports,
        &node("p", ports, ""),
    ));
    let m2 = Daemon::start(spec(
        &s.0,
        "m2",
        "MEMBER2",
        ip(3),
        ports,
        &node("p", ports, ""),
    ));
    let tx = Daemon::start(spec(
        &s.0,
        "tx",
        "SENDERP",
        ip(4),
        ports,
        &node("p", ports, ""),
    ));
    for (d, n) in [
        (&m1, "MEMBER1<00>"),
        (&m2, "MEMBER2<00>"),
        (&tx, "SENDERP<00>"),
    ] {
        registered(d, n);
        registered(d, "TESTGROUP<00>");
    }
    // They registered with the NBNS, by unicast.
    let st = server.stats();
    assert!(counter(&st, "roles.nbns.granted") >= 4, "{st}");
    assert!(counter(&tx.stats(), "node.nbns_registrations_accepted") >= 2);

    let mut s1 = m1.client();
    s1.subscribe(Subscription::default()).unwrap();
    let mut s2 = m2.client();
    s2.subscribe(Subscription::default()).unwrap();
    let mut s3 = tx.client();
    s3.subscribe(Subscription::default()).unwrap();

    let data = b"through the NBDD".to_vec();
    let r = tx
        .client()
        .send(SendArgs::new("TESTGROUP<00>", SendMode::Group, &data))
        .expect("group send through the NBDD");
    assert_eq!(r.to.to_string(), format!("{}:{}", ip(1), ports.1), "{r:?}");
    for (c, who) in [(&mut s1, "MEMBER1"), (&mut s2, "MEMBER2")] {
        let got = collect(c, Duration::from_secs(2));
        let copies: Vec<_> = got
            .iter()
            .filter(|e| nbdgm_wire::hex::decode(&e.data_hex).as_deref() == Some(&data[..]))
            .collect();
        assert_eq!(copies.len(), 1, "{who}: exactly one copy: {got:?}");
        let e = copies[0];
        assert_eq!(
            e.from.to_string(),
            format!("{}:{}", ip(1), ports.1),
            "relayed by the NBDD"
        );
        assert_eq!(
            e.header_source.to_string(),
            format!("{}:{}", ip(4), ports.1),
            "header unchanged"
        );
        assert_eq!(e.source, "SENDERP<00>");
    }
    assert!(
        collect(&mut s3, Duration::from_millis(300))
            .iter()
            .all(|e| nbdgm_wire::hex::decode(&e.data_hex).as_deref() != Some(&data[..])),
        "no copy back to the sender"
    );
    let st = server.stats();
    assert_eq!(counter(&st, "roles.nbdd.relayed_copies"), 2, "{st}");
    assert!(counter(&tx.stats(), "node.nbdd_positive") >= 1);

    // An unknown group: the NBDD answers the DATAGRAM QUERY negatively, a P-node fails.
    let e = tx
        .client()
        .send(SendArgs::new("NOSUCHGRP<00>", SendMode::Group, b"x"))
        .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("nbdd"), "{e}");
    assert!(counter(&tx.stats(), "node.nbdd_negative") >= 1);

    // Without the NBDD: the P-node reports the error; an H-node with the NBDD set falls
    // back to broadcast, which a B-node listener receives.
    let h = Daemon::start(spec(
        &s.0,
        "h",
        "HYBRID1",
        ip(5),
        ports,
        &node("h", ports, &format!("[nbdd]\naddress = \"{}\"\n", ip(1))),
    ));
    registered(&h, "HYBRID1<00>");
    let b = Daemon::start(spec(
        &s.0,
        "b",
        "LISTENB",
        ip(6),
        ports,
        "[browser]\nlisten = false\n",
    ));
    registered(&b, "TESTGROUP<00>");
    let mut sb = b.client();
    sb.subscribe(Subscription::default()).unwrap();
    server.stop();
    let e = tx
        .client()
        .send(SendArgs::new("TESTGROUP<00>", SendMode::Group, b"y"))
        .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("nbdd"), "{e}");
    let r = h
        .client()
        .send(SendArgs::new("TESTGROUP<00>", SendMode::Group, b"fallback"))
        .expect("H-node falls back");
    assert_eq!(
        r.to.ip(),
        std::net::IpAddr::V4(Ipv4Addr::new(127, 255, 255, 255)),
        "{r:?}"
    );
    assert!(counter(&h.stats(), "node.nbdd_fallbacks") >= 1);
    let got = collect(&mut sb, Duration::from_secs(2));
    assert!(
        got.iter()
            .any(|e| nbdgm_wire::hex::decode(&e.data_hex).as_deref() == Some(&b"fallback"[..])),
        "{got:?}"
    );
}
