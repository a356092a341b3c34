//! `nbdgm serve` on loopback (127.0.0.0/8, unprivileged ports): a group or broadcast
//! datagram that one API client sends reaches the daemon's other local subscribers
//! exactly once, as Windows and Samba deliver locally (issue 17 §2; RFC 1001 §17.2), and
//! is not echoed to the client that sent it.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_client::proto::{DatagramEvent, Event, SendArgs, SendMode, Subscription};
use nbdgm_client::Client;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const SLOT: &str = "\\MAILSLOT\\LOCALTEST";

/// The next datagram event of `c` (name events are skipped), within 5 s.
fn next_datagram(c: &mut Client) -> DatagramEvent {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if let Some(Event::Datagram(d)) = c.next_event(Some(Duration::from_millis(500))).unwrap() {
            return d;
        }
    }
    panic!("no datagram event within 5 s")
}

fn text_of(d: &DatagramEvent) -> Vec<u8> {
    let user = nbdgm_wire::hex::decode(&d.data_hex).unwrap();
    nbdgm_wire::mailslot::MailslotWrite::parse(&user)
        .unwrap()
        .data
}

fn send(c: &mut Client, destination: &str, mode: SendMode, text: &[u8]) {
    let mut args = SendArgs::new(destination, mode, text);
    args.mailslot = Some(SLOT.into());
    c.send(args).unwrap();
}

#[test]
fn group_and_broadcast_sends_reach_other_local_subscribers_once_without_echo() {
    let dir = Scratch::new("local-delivery");
    let ports = ports();
    let addr = Ipv4Addr::new(127, 0, 21, 1);
    let d = Daemon::start(DaemonSpec::loopback(
        &dir.0, "ld", "LOCALDGM", addr, ports, "",
    ));
    d.wait_names(&["LOCALDGM<00>", "TESTGROUP<00>"]);

    // A listens to the workgroup name; B to the workgroup name and to the mailslot
    // (two matching subscriptions: still one event per datagram).
    let mut a = d.client();
    let mut b = d.client();
    let by_name = Subscription {
        name: Some("TESTGROUP<00>".into()),
        ..Subscription::default()
    };
    a.subscribe(by_name.clone()).unwrap();
    b.subscribe(by_name).unwrap();
    b.subscribe(Subscription {
        mailslot: Some(SLOT.into()),
        ..Subscription::default()
    })
    .unwrap();

    // A's group datagram reaches B, from the daemon's own address.
    send(&mut a, "TESTGROUP<00>", SendMode::Group, b"group from A");
    let g = next_datagram(&mut b);
    assert_eq!(g.msg_type, "direct_group");
    assert_eq!(g.destination, "TESTGROUP<00>");
    assert_eq!(g.from.to_string(), format!("{addr}:{}", ports.1));
    assert_eq!(g.mailslot.as_deref(), Some(SLOT));
    assert_eq!(text_of(&g), b"group from A");

    // A's NetBIOS broadcast reaches B through the mailslot subscription. Had B got the
    // group datagram twice (the local copy and the looped-back packet), this would be it.
    send(&mut a, "*", SendMode::Broadcast, b"broadcast from A");
    let bc = next_datagram(&mut b);
    assert_eq!(bc.msg_type, "broadcast");
    assert_eq!(text_of(&bc), b"broadcast from A");

    // B's group datagram reaches A: A's first event, so neither of A's own two sends
    // was echoed to it.
    send(&mut b, "TESTGROUP<00>", SendMode::Group, b"group from B");
    let g = next_datagram(&mut a);
    assert_eq!(text_of(&g), b"group from B");
    // And B's next event is A's next send, not an echo of its own.
    send(&mut a, "TESTGROUP<00>", SendMode::Group, b"marker from A");
    let m = next_datagram(&mut b);
    assert_eq!(text_of(&m), b"marker from A");

    let st = d.stats();
    assert_eq!(counter(&st, "node.datagrams_delivered_locally"), 4, "{st}");
    assert!(counter(&st, "node.dropped.own_packet") >= 4, "{st}");
}
