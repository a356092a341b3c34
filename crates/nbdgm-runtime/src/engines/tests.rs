//! The pairing: a browser frame the node delivers reaches the browser as the slice the
//! node cut out; other mailslots do not.

use super::*;
use nbdgm_browser::BrowserConfig;
use nbdgm_node::{Incoming, Interface, NodeConfig, Service};
use nbdgm_wire::browser::{Announcement, BrowserFrame};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use std::net::SocketAddrV4;

fn engines() -> Engines {
    let now = Instant::now();
    let mut c = NodeConfig::new(Interface::new(Ipv4Addr::new(192, 0, 2, 1), 24));
    c.deliver_not_for_us = true;
    let node = Node::new(c, now).unwrap();
    let mut bc = BrowserConfig::new("ME", "WG");
    bc.announce = false;
    bc.potential_browser = false;
    let browser = Browser::new(bc, now, 1).unwrap();
    Engines::new(node, Some(browser))
}

fn datagram(mailslot: &str, server: &str) -> Vec<u8> {
    let frame = BrowserFrame::HostAnnouncement(Announcement {
        server_name: server.into(),
        periodicity_ms: 60_000,
        // Workstation and server (type 0 would withdraw the server).
        server_type: 0x3,
        ..Default::default()
    });
    let data = MailslotWrite::new(mailslot, frame.to_bytes().unwrap())
        .to_bytes()
        .unwrap();
    Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        1,
        (Ipv4Addr::new(192, 0, 2, 9), 138),
        Name::new(server, 0).unwrap(),
        Name::new("WG", 0x1D).unwrap(),
        data,
    )
    .to_bytes()
    .unwrap()
}

fn receive(e: &mut Engines, bytes: &[u8]) -> Vec<Event> {
    let now = Instant::now();
    e.node.handle(
        now,
        Incoming {
            from: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 9), 138),
            service: Service::Datagram,
            broadcast: true,
            bytes,
        },
    );
    let mut out = Vec::new();
    while let Some(ev) = e.node.poll_event() {
        e.observe(now, &ev);
        out.push(ev);
    }
    out
}

#[test]
fn browser_frames_reach_the_browser_once_parsed() {
    let mut e = engines();
    let evs = receive(&mut e, &datagram(BROWSE, "SERVER1"));
    assert!(matches!(&evs[..], [Event::Delivered(d)] if d.is_mailslot(BROWSE)));
    assert!(e.take_fed(), "the browser was fed");
    assert!(!e.take_fed(), "fed is taken once");
    let list = e.browser.as_ref().unwrap().list(Instant::now());
    assert!(list.servers.iter().any(|s| s.name == "SERVER1"), "{list:?}");
}

#[test]
fn other_mailslots_do_not_reach_the_browser() {
    let mut e = engines();
    let evs = receive(&mut e, &datagram("\\MAILSLOT\\OTHER", "SERVER2"));
    assert_eq!(evs.len(), 1);
    assert!(!e.take_fed());
    let list = e.browser.as_ref().unwrap().list(Instant::now());
    assert!(list.servers.is_empty(), "{list:?}");
}

#[test]
fn browser_names_take_our_scope() {
    let now = Instant::now();
    let mut c = NodeConfig::new(Interface::new(Ipv4Addr::new(192, 0, 2, 1), 24));
    c.scope = "example.org".into();
    let node = Node::new(c, now).unwrap();
    let e = Engines::new(node, None);
    let n = e.scoped(Name::new("WG", 0x1E).unwrap());
    assert!(n.scope().eq_ignore_ascii_case("example.org"), "{n}");
    let own = Name::new("WG", 0x1E)
        .unwrap()
        .with_scope("other.net")
        .unwrap();
    assert_eq!(e.scoped(own.clone()), own, "a scoped name keeps its scope");
}

/// The node's local copy of our own broadcast (issue 17 §2) is not fed to the browser:
/// it knows what it sent, and the copy looping back from the network is dropped too.
#[test]
fn local_copies_of_our_own_sends_do_not_reach_the_browser() {
    let now = Instant::now();
    let mut c = NodeConfig::new(Interface::new(Ipv4Addr::new(192, 0, 2, 1), 24));
    c.allow_unregistered_source = true;
    let mut bc = BrowserConfig::new("ME", "WG");
    bc.announce = false;
    bc.potential_browser = false;
    let browser = Browser::new(bc, now, 1).unwrap();
    let mut e = Engines::new(Node::new(c, now).unwrap(), Some(browser));
    let frame = BrowserFrame::HostAnnouncement(Announcement {
        server_name: "SERVER2".into(),
        periodicity_ms: 60_000,
        server_type: 0x3,
        ..Default::default()
    });
    let data = MailslotWrite::new(BROWSE, frame.to_bytes().unwrap())
        .to_bytes()
        .unwrap();
    let request = SendRequest {
        source: Name::new("SERVER2", 0).unwrap(),
        destination: Name::wildcard(),
        mode: SendMode::Broadcast,
        data,
    };
    e.node.send(now, request).unwrap();
    let mut copies = 0;
    while let Some(ev) = e.node.poll_event() {
        e.observe(now, &ev);
        if let Event::Delivered(d) = &ev {
            assert!(d.local_copy.is_some() && d.is_mailslot(BROWSE));
            copies += 1;
        }
    }
    assert_eq!(copies, 1, "the node made its local copy");
    assert!(!e.take_fed(), "the browser was not fed");
    let list = e.browser.as_ref().unwrap().list(Instant::now());
    assert!(
        !list.servers.iter().any(|s| s.name == "SERVER2"),
        "{list:?}"
    );
}
