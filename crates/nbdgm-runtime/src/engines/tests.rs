//! The pairing: a browser frame the node delivers reaches the browser as the slice the
//! node cut out; other mailslots do not.

use super::*;
use nbdgm_browser::BrowserConfig;
use nbdgm_node::{Incoming, Interface, LookupTarget, NodeConfig, Service};
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

/// The subnet of the domain master tests: our engines at .1, the other node at .2.
fn dmb_engines(now: Instant) -> (Engines, Node) {
    let mut bc = BrowserConfig::new("ME", "WG");
    bc.announce = false;
    bc.potential_browser = false;
    let browser = Browser::new(bc, now, 1).unwrap();
    let a = Node::new(
        NodeConfig::new(Interface::new(Ipv4Addr::new(192, 0, 2, 1), 24)),
        now,
    )
    .unwrap();
    let b = Node::new(
        NodeConfig::new(Interface::new(Ipv4Addr::new(192, 0, 2, 2), 24)),
        now,
    )
    .unwrap();
    (Engines::new(a, Some(browser)), b)
}

/// Carry packets between the two nodes (a broadcast reaches the other one), run their
/// timers for `secs` seconds of simulated time; the engines' events go through
/// `observe`. Returns what `observe` set aside and the time reached.
fn run_subnet(e: &mut Engines, b: &mut Node, mut now: Instant, secs: u64) -> (Vec<Aside>, Instant) {
    use std::time::Duration;
    let mut asides = Vec::new();
    let end = now + Duration::from_secs(secs);
    while now < end {
        for _ in 0..20 {
            let mut moved = false;
            while let Some(t) = e.node.poll_transmit() {
                moved = true;
                let from = SocketAddrV4::new(e.node.config().interface.addr, t.to.port());
                if t.broadcast || *t.to.ip() == b.config().interface.addr {
                    b.handle(
                        now,
                        Incoming {
                            from,
                            service: t.service,
                            broadcast: t.broadcast,
                            bytes: &t.bytes,
                        },
                    );
                }
            }
            while let Some(t) = b.poll_transmit() {
                moved = true;
                let from = SocketAddrV4::new(b.config().interface.addr, t.to.port());
                if t.broadcast || *t.to.ip() == e.node.config().interface.addr {
                    e.node.handle(
                        now,
                        Incoming {
                            from,
                            service: t.service,
                            broadcast: t.broadcast,
                            bytes: &t.bytes,
                        },
                    );
                }
            }
            while let Some(ev) = e.node.poll_event() {
                asides.extend(e.observe(now, &ev));
            }
            while b.poll_event().is_some() {}
            if !moved {
                break;
            }
        }
        now += Duration::from_millis(100);
        e.node.handle_timeout(now);
        b.handle_timeout(now);
    }
    (asides, now)
}

fn register(b: &mut Node, now: Instant, name: &str, suffix: u8, group: bool) {
    b.register(now, Name::new(name, suffix).unwrap(), group)
        .unwrap();
}

/// `<WG><1B>` resolves to the other node, whose node status (asked with the question
/// name `<WG><1B>`) gives its unique `<20>` name: the search ends with that name and
/// address (the group `<20>` listed first is passed over).
#[test]
fn domain_master_is_found_through_lookup_and_node_status() {
    let now = Instant::now();
    let (mut e, mut b) = dmb_engines(now);
    register(&mut b, now, "WG", 0x20, true);
    register(&mut b, now, "DMBHOST", 0x20, false);
    register(&mut b, now, "WG", 0x1B, false);
    let (_, now) = run_subnet(&mut e, &mut b, now, 5);
    assert_eq!(
        b.names()
            .iter()
            .filter(|n| n.state == nbdgm_node::NameState::Active)
            .count(),
        3
    );
    e.find_domain_master(now, "WG").unwrap();
    assert!(e.take_fed(), "the lookup asks for another round");
    let (asides, _) = run_subnet(&mut e, &mut b, now, 5);
    let found: Vec<_> = asides
        .iter()
        .filter_map(|a| match a {
            Aside::DomainMaster(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        found,
        vec![Ok(("DMBHOST".to_string(), Ipv4Addr::new(192, 0, 2, 2)))]
    );
    assert!(e.dmb.is_none(), "the search is over");
}

/// Nobody holds `<WG><1B>`: the search fails (the lookup times out).
#[test]
fn domain_master_search_fails_without_an_answer() {
    let now = Instant::now();
    let (mut e, mut b) = dmb_engines(now);
    e.find_domain_master(now, "WG").unwrap();
    let (asides, _) = run_subnet(&mut e, &mut b, now, 10);
    assert!(
        matches!(
            &asides[..],
            [Aside::DomainMaster(Err(DmbFailure::NotFound(_)))]
        ),
        "{asides:?}"
    );
    assert!(e.dmb.is_none());
}

/// `<WG><1B>` is our own name: we are the domain master browser, nothing to find.
#[test]
fn domain_master_search_stops_at_our_own_address() {
    let now = Instant::now();
    let (mut e, mut b) = dmb_engines(now);
    e.node
        .register(now, Name::new("WG", 0x1B).unwrap(), false)
        .unwrap();
    let (_, now) = run_subnet(&mut e, &mut b, now, 5);
    e.find_domain_master(now, "WG").unwrap();
    let (asides, _) = run_subnet(&mut e, &mut b, now, 5);
    let want = Aside::DomainMaster(Err(DmbFailure::Ours(Ipv4Addr::new(192, 0, 2, 1))));
    assert!(
        asides
            .iter()
            .any(|a| format!("{a:?}") == format!("{want:?}")),
        "{asides:?}"
    );
}

/// The node status holds no unique `<20>` (only a group one): the search fails.
#[test]
fn domain_master_search_fails_without_a_server_name() {
    let now = Instant::now();
    let (mut e, mut b) = dmb_engines(now);
    register(&mut b, now, "WG", 0x20, true);
    register(&mut b, now, "WG", 0x1B, false);
    let (_, now) = run_subnet(&mut e, &mut b, now, 5);
    e.find_domain_master(now, "WG").unwrap();
    let (asides, _) = run_subnet(&mut e, &mut b, now, 5);
    assert!(
        asides
            .iter()
            .any(|a| matches!(a, Aside::DomainMaster(Err(DmbFailure::NoServerName)))),
        "{asides:?}"
    );
}

/// Answers to other requests (a caller's own lookup, which succeeds) are not taken for
/// the search: had the pairing taken it, it would have asked that node for its status
/// and found its `<20>`.
#[test]
fn other_lookups_are_left_to_the_driver() {
    let now = Instant::now();
    let (mut e, mut b) = dmb_engines(now);
    register(&mut b, now, "DMBHOST", 0x20, false);
    let (_, now) = run_subnet(&mut e, &mut b, now, 5);
    e.find_domain_master(now, "WG").unwrap();
    let name = Name::new("DMBHOST", 0x20).unwrap();
    e.node.lookup(now, name, LookupTarget::Broadcast).unwrap();
    let (asides, _) = run_subnet(&mut e, &mut b, now, 10);
    assert!(
        matches!(
            &asides[..],
            [Aside::DomainMaster(Err(DmbFailure::NotFound(_)))]
        ),
        "only the search's own lookup ended it: {asides:?}"
    );
}
