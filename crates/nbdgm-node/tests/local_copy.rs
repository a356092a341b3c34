//! Local copies of our own group and broadcast datagrams (issue 17 §2; RFC 1001 §17.2,
//! RFC 1002 §5.3.1): Windows and Samba deliver a group datagram to the other local users
//! of the name; the node hands its user one copy at send time, marked `local_copy`, and
//! keeps dropping the copy that loops back from the network as its own packet.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_node::sim::Sim;
use nbdgm_node::{Delivery, DropReason, Event, MsgType, SendMode, SendRequest, Service};
use nbdgm_wire::mailslot::MailslotWrite;

fn req(source: &str, dest: &str, mode: SendMode, data: Vec<u8>) -> SendRequest {
    SendRequest {
        source: name(source),
        destination: name(dest),
        mode,
        data,
    }
}

/// Node 0 holds HOST0<00> and the group WG<00>; node 1 holds HOST1<00> and WG<00>.
fn lan() -> Sim {
    let mut sim = net(2);
    for i in 0..2 {
        register_all(
            &mut sim,
            i,
            &[(&format!("HOST{i}<00>"), false), ("WG<00>", true)],
        );
    }
    sim.run_for(secs(1.0));
    sim
}

fn local(d: &[Delivery]) -> Vec<Delivery> {
    d.iter()
        .filter(|d| d.local_copy.is_some())
        .cloned()
        .collect()
}

fn own_drops(sim: &Sim, i: usize) -> usize {
    sim.events(i)
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Dropped {
                    reason: DropReason::OwnPacket,
                    ..
                }
            )
        })
        .count()
}

#[test]
fn group_send_to_a_held_group_gives_one_local_copy_and_one_broadcast() {
    let mut sim = lan();
    let slot = MailslotWrite::new("\\MAILSLOT\\TEST", vec![9, 8, 7])
        .to_bytes()
        .unwrap();
    let before = sim.delivered(0).len();
    let drops_before = own_drops(&sim, 0);
    let id = sim
        .send(0, req("HOST0<00>", "WG<00>", SendMode::Group, slot.clone()))
        .unwrap();
    sim.run_for(secs(0.1));
    // The network send is as before: one DIRECT_GROUP to the broadcast address.
    let sent: Vec<_> = sim
        .sent_by(0)
        .into_iter()
        .filter(|w| w.service == Service::Datagram)
        .collect();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].broadcast);
    assert_eq!(sent[0].bytes[0], 0x11);
    // Exactly one delivery at the sender: the local copy, with the request's id.
    let d = sim.delivered(0);
    assert_eq!(d.len(), before + 1);
    let copy = d.last().unwrap();
    assert_eq!(copy.local_copy, Some(id));
    assert_eq!(copy.msg_type, MsgType::DirectGroup);
    assert!(copy.for_us && copy.broadcast);
    assert_eq!(copy.source, name("HOST0<00>"));
    assert_eq!(copy.destination, name("WG<00>"));
    assert_eq!(copy.data, slot);
    assert_eq!(copy.mailslot(), Some("\\MAILSLOT\\TEST"));
    assert_eq!(copy.mailslot_data(), Some(&[9u8, 8, 7][..]));
    assert_eq!(sim.node(0).stats().datagrams_delivered_locally, 1);
    // The looped-back packet is still dropped as ours.
    assert!(own_drops(&sim, 0) > drops_before);
    // The other member got it from the network, not as a local copy.
    let d1 = sim.delivered(1);
    assert_eq!(d1.len(), 1);
    assert_eq!(d1[0].local_copy, None);
    assert_eq!(d1[0].data, slot);
    // The local copy comes before the SendDone of its request.
    let evs = sim.events(0);
    let at_copy = evs
        .iter()
        .position(|e| matches!(e, Event::Delivered(d) if d.local_copy == Some(id)))
        .unwrap();
    let at_done = evs
        .iter()
        .position(|e| matches!(e, Event::SendDone { id: i, .. } if *i == id))
        .unwrap();
    assert!(at_copy < at_done);
}

#[test]
fn broadcast_mode_always_gives_a_local_copy() {
    let mut sim = lan();
    let id = sim
        .send(0, req("HOST0<00>", "*", SendMode::Broadcast, vec![1, 2]))
        .unwrap();
    sim.run_for(secs(0.1));
    let copies = local(&sim.delivered(0));
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].local_copy, Some(id));
    assert_eq!(copies[0].msg_type, MsgType::Broadcast);
    assert!(copies[0].destination.is_wildcard());
    assert_eq!(sim.delivered(0).len(), 1);
    assert!(own_drops(&sim, 0) > 0);
}

#[test]
fn group_not_held_gives_no_local_copy() {
    let mut sim = lan();
    sim.send(0, req("HOST0<00>", "OTHER<00>", SendMode::Group, vec![3]))
        .unwrap();
    sim.run_for(secs(0.1));
    assert!(sim.delivered(0).is_empty());
    assert_eq!(sim.node(0).stats().datagrams_delivered_locally, 0);
    // Sent on the network all the same.
    assert_eq!(
        sim.sent_by(0)
            .iter()
            .filter(|w| w.service == Service::Datagram)
            .count(),
        1
    );
    // A unique name we hold, sent in group mode, is not a group we hold either.
    sim.send(0, req("HOST0<00>", "HOST0<00>", SendMode::Group, vec![4]))
        .unwrap();
    sim.run_for(secs(0.1));
    assert!(local(&sim.delivered(0)).is_empty());
}

#[test]
fn the_looped_back_copy_is_dropped_so_nothing_arrives_twice() {
    let mut sim = lan();
    sim.send(0, req("HOST0<00>", "WG<00>", SendMode::Group, vec![5; 4]))
        .unwrap();
    sim.run_for(secs(0.1));
    // Replay what node 0 put on the wire: it comes back to node 0 as a broadcast from
    // its own address and port.
    let ours: Vec<_> = sim
        .sent_by(0)
        .into_iter()
        .filter(|w| w.service == Service::Datagram)
        .collect();
    assert_eq!(ours.len(), 1);
    let drops = own_drops(&sim, 0);
    sim.inject(0, sock(1, 138), Service::Datagram, true, &ours[0].bytes);
    assert_eq!(own_drops(&sim, 0), drops + 1);
    assert_eq!(sim.delivered(0).len(), 1);
    assert_eq!(sim.node(0).stats().datagrams_delivered_locally, 1);
}
