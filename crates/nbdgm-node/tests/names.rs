//! Name service of a B-node on the simulated subnet (RFC 1002 §5.1.1; DIGEST §4.4).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_node::sim::SimConfig;
use nbdgm_node::{
    ConflictReason, Event, LookupError, LookupTarget, NameState, NodeConfig, Service,
};
use nbdgm_wire::nbns::{RData, FLAG_TC, NB_GROUP, TYPE_NULL};

#[test]
fn registers_unique_and_group_names_on_a_quiet_net() {
    let mut sim = net(2);
    sim.register(0, "ALPHA<00>", false).unwrap();
    sim.register(0, "ALPHA<20>", false).unwrap();
    sim.register(0, "WORKGROUP<00>", true).unwrap();
    sim.run_for(secs(0.7));
    assert_eq!(state(&sim, 0, "ALPHA<00>"), Some(NameState::Registering));
    sim.run_for(secs(0.3));
    for n in ["ALPHA<00>", "ALPHA<20>", "WORKGROUP<00>"] {
        assert_eq!(state(&sim, 0, n), Some(NameState::Active), "{n}");
    }
    let regs = with_flags(&sim, 0x2910);
    assert_eq!(regs.len(), 9, "3 names x 3 broadcasts");
    for (w, p) in &regs {
        assert!(w.broadcast);
        assert_eq!(w.to, sock(255, 137));
        let rr = &p.additional[0];
        assert_eq!(rr.ttl, 300_000);
        let RData::Nb(a) = &rr.rdata else { panic!() };
        assert_eq!(a[0].ip, ip(1));
        let group = p.questions[0].name == name("WORKGROUP<00>");
        assert_eq!(a[0].flags & NB_GROUP != 0, group);
        // The additional record's name is the compression pointer C0 0C.
        assert_eq!(&w.bytes[12 + 34 + 4..12 + 34 + 6], &[0xC0, 0x0C]);
    }
    let registered: Vec<_> = sim
        .events(0)
        .iter()
        .filter_map(|e| match e {
            Event::NameRegistered { name, group } => Some((name.to_string(), *group)),
            _ => None,
        })
        .collect();
    assert_eq!(
        registered,
        vec![
            ("ALPHA<00>".to_string(), false),
            ("ALPHA<20>".to_string(), false),
            ("WORKGROUP<00>".to_string(), true)
        ]
    );
    // Our own broadcasts came back (loopback) and were ignored, not defended.
    assert_eq!(sim.node(0).stats().dropped.own_packet, 9);
    assert_eq!(sim.node(0).stats().defences_sent, 0);
    let json = serde_json::to_value(sim.node(0).names()).unwrap();
    assert_eq!(json[2]["name"], "WORKGROUP<00>");
    assert_eq!(json[2]["state"], "active");
}

#[test]
fn newcomer_is_refused_and_owner_keeps_the_name() {
    let mut sim = net(2);
    register_all(&mut sim, 0, &[("FRED<00>", false)]);
    sim.register(1, "FRED<00>", false).unwrap();
    sim.run_for(secs(1.0));
    assert_eq!(state(&sim, 0, "FRED<00>"), Some(NameState::Active));
    assert_eq!(state(&sim, 1, "FRED<00>"), Some(NameState::Conflict));
    assert_eq!(
        conflicts(&sim, 1),
        vec![Event::NameConflict {
            name: name("FRED<00>"),
            by: Some(sock(1, 137)),
            reason: ConflictReason::RegistrationRefused
        }]
    );
    assert!(conflicts(&sim, 0).is_empty());
    // The defence: 0xAD86 to the request's UDP source, TRN echoed, our IP, TTL 0.
    let defences = with_flags(&sim, 0xAD86);
    assert!(!defences.is_empty());
    let reg = with_flags(&sim, 0x2910)
        .into_iter()
        .find(|(w, _)| *w.from.ip() == ip(2))
        .unwrap();
    let (w, p) = &defences[0];
    assert_eq!(w.to, sock(2, 137));
    assert_eq!(p.id, reg.1.id);
    assert_eq!(w.reply_to, Some(reg.0.bytes.len()));
    assert_eq!(p.answers[0].ttl, 0);
    let RData::Nb(a) = &p.answers[0].rdata else {
        panic!()
    };
    assert_eq!(a[0].ip, ip(1));
    // A group registration of a unique name is refused too.
    sim.register(1, "FRED<00>", true).unwrap(); // re-register after conflict is allowed
    sim.run_for(secs(1.0));
    assert_eq!(state(&sim, 1, "FRED<00>"), Some(NameState::Conflict));
}

#[test]
fn registration_race_has_at_most_one_winner() {
    for seed in 0..20u64 {
        let cfg = SimConfig {
            seed,
            reorder: 0.5,
            reorder_window: secs(0.3),
            loss: 0.1,
            ..SimConfig::default()
        };
        let mut sim = net_with(3, cfg);
        sim.register(0, "RACE<00>", false).unwrap();
        sim.register(1, "RACE<00>", false).unwrap();
        sim.run_for(secs(2.0));
        let states: Vec<_> = (0..2)
            .map(|i| state(&sim, i, "RACE<00>").unwrap())
            .collect();
        let winners = states.iter().filter(|s| **s == NameState::Active).count();
        assert!(
            winners <= 1 || seed_lost_everything(&sim),
            "seed {seed}: {states:?}"
        );
        for (i, st) in states.iter().enumerate() {
            if *st == NameState::Conflict {
                assert_eq!(conflicts(&sim, i).len(), 1, "seed {seed}");
            }
        }
    }
    // Without loss or jitter both see each other's request in time: both lose.
    let mut sim = net(2);
    sim.register(0, "RACE<00>", false).unwrap();
    sim.register(1, "RACE<00>", false).unwrap();
    sim.run_for(secs(1.0));
    assert_eq!(state(&sim, 0, "RACE<00>"), Some(NameState::Conflict));
    assert_eq!(state(&sim, 1, "RACE<00>"), Some(NameState::Conflict));
}

/// With 10 % loss every one of the 6 requests and defences could in principle be lost;
/// then two winners are the B-node protocol's limit, not a bug. Detect that case.
fn seed_lost_everything(sim: &nbdgm_node::sim::Sim) -> bool {
    with_flags(sim, 0xAD86).is_empty()
}

#[test]
fn group_name_held_by_many_nodes() {
    let mut sim = net(5);
    for i in 0..5 {
        sim.register(i, "WORKGROUP<00>", true).unwrap();
    }
    sim.run_for(secs(1.0));
    for i in 0..5 {
        assert_eq!(state(&sim, i, "WORKGROUP<00>"), Some(NameState::Active));
        assert!(conflicts(&sim, i).is_empty());
        assert_eq!(sim.node(i).stats().defences_sent, 0);
    }
    // A lookup collects the members (within CONFLICT_TIMER) and reports no conflict.
    let mut sim2 = net(4);
    for i in 0..3 {
        sim2.register(i, "WG<1E>", true).unwrap();
    }
    sim2.run_for(secs(1.0));
    sim2.lookup(3, "WG<1E>", LookupTarget::Broadcast).unwrap();
    sim2.run_for(secs(1.5));
    assert!(conflicts(&sim2, 3).is_empty());
    let cached = sim2.node(3).cache();
    assert_eq!(cached[0].addresses.len(), 3);
    assert!(cached[0].addresses.iter().all(|a| a.group));
}

#[test]
fn conflict_demand_marks_the_name_and_it_stops_answering() {
    let mut sim = net(2);
    register_all(&mut sim, 0, &[("FRED<00>", false)]);
    let demand = response(
        0x4242,
        0xAD87,
        &name("FRED<00>"),
        0,
        std::net::Ipv4Addr::UNSPECIFIED,
    );
    let before = sim.wire.len();
    sim.inject(0, sock(9, 137), Service::Name, false, &demand);
    // Never a reply to a response.
    assert_eq!(sim.wire.len(), before);
    assert_eq!(state(&sim, 0, "FRED<00>"), Some(NameState::Conflict));
    assert_eq!(
        conflicts(&sim, 0),
        vec![Event::NameConflict {
            name: name("FRED<00>"),
            by: Some(sock(9, 137)),
            reason: ConflictReason::ConflictDemand
        }]
    );
    assert_eq!(sim.node(0).stats().conflict_demands_received, 1);
    // A broadcast lookup gets no answer now.
    let id = sim.lookup(1, "FRED<00>", LookupTarget::Broadcast).unwrap();
    sim.run_for(secs(1.0));
    assert!(sim.events(1).contains(&Event::LookupDone {
        id,
        name: name("FRED<00>"),
        result: Err(LookupError::NoResponse)
    }));
    // A unicast query for a name in conflict is answered negatively (MS-NBTE §4.1).
    let before = sim.wire.len();
    sim.inject(
        0,
        sock(2, 5000),
        Service::Name,
        false,
        &query(7, 0x0100, &name("FRED<00>"), false),
    );
    let out = &sim.wire[before..];
    assert_eq!(out.len(), 1);
    let p = nbns(&out[0]).unwrap();
    assert_eq!(p.flags, 0x8583);
    assert_eq!(p.answers[0].rr_type, TYPE_NULL);
    // No defence for it either.
    sim.register(1, "FRED<00>", false).unwrap();
    sim.run_for(secs(1.0));
    assert_eq!(state(&sim, 1, "FRED<00>"), Some(NameState::Active));
    // Release of a conflicted name removes it without release packets.
    let releases = with_flags(&sim, 0x3010).len();
    sim.release(0, "FRED<00>").unwrap();
    assert_eq!(with_flags(&sim, 0x3010).len(), releases);
    assert!(sim.node(0).names().is_empty());
}

#[test]
fn queries_answered_positively_and_never_negatively_to_broadcasts() {
    let mut sim = net(3);
    register_all(&mut sim, 0, &[("ALPHA<00>", false), ("WG<00>", true)]);
    let id = sim.lookup(1, "ALPHA<00>", LookupTarget::Broadcast).unwrap();
    sim.run_for(secs(1.5));
    let done = sim
        .events(1)
        .iter()
        .find_map(|e| match e {
            Event::LookupDone { id: i, result, .. } if *i == id => Some(result.clone()),
            _ => None,
        })
        .unwrap();
    let addrs = done.unwrap();
    assert_eq!(addrs.len(), 1);
    assert_eq!(addrs[0].addr, ip(1));
    assert!(!addrs[0].group);
    let pos = with_flags(&sim, 0x8580);
    assert_eq!(pos.len(), 1);
    assert_eq!(pos[0].0.to, sock(2, 137));
    assert_eq!(pos[0].1.answers[0].ttl, 300_000);
    // Exactly one query went out (answered before the first retry).
    assert_eq!(with_flags(&sim, 0x0110).len(), 1);

    // Broadcast query for an unknown name: nobody answers, not even negatively.
    let before = sim.wire.len();
    let id = sim
        .lookup(1, "NOBODY<00>", LookupTarget::Broadcast)
        .unwrap();
    sim.run_for(secs(1.0));
    let after: Vec<_> = sim.wire[before..].iter().collect();
    assert_eq!(after.len(), 3, "only our 3 query broadcasts");
    assert!(after.iter().all(|w| *w.from.ip() == ip(2)));
    assert!(sim.events(1).contains(&Event::LookupDone {
        id,
        name: name("NOBODY<00>"),
        result: Err(LookupError::NoResponse)
    }));
    // Also a hand-made broadcast query with RD clear gets no negative answer.
    let before = sim.wire.len();
    sim.inject(
        0,
        sock(3, 137),
        Service::Name,
        true,
        &query(9, 0x0010, &name("NOBODY<00>"), false),
    );
    assert_eq!(sim.wire.len(), before);
    // Unicast with RD set: silent (Samba); RD clear: NAM_ERR to the source port.
    sim.inject(
        0,
        sock(3, 40000),
        Service::Name,
        false,
        &query(10, 0x0100, &name("NOBODY<00>"), false),
    );
    assert_eq!(sim.wire.len(), before);
    sim.inject(
        0,
        sock(3, 40000),
        Service::Name,
        false,
        &query(11, 0x0000, &name("NOBODY<00>"), false),
    );
    assert_eq!(sim.wire.len(), before + 1);
    let p = nbns(&sim.wire[before]).unwrap();
    assert_eq!((p.id, p.flags), (11, 0x8583));
    assert_eq!(sim.wire[before].to, sock(3, 40000));
    // A unicast query from another process on our own IP is answered (not "own").
    sim.inject(
        0,
        sock(1, 40001),
        Service::Name,
        false,
        &query(12, 0x0100, &name("WG<00>"), false),
    );
    let p = nbns(sim.wire.last().unwrap()).unwrap();
    assert_eq!((p.id, p.flags), (12, 0x8580));
    let RData::Nb(a) = &p.answers[0].rdata else {
        panic!()
    };
    assert_eq!(a[0].flags, NB_GROUP);
    assert_eq!(sim.wire.last().unwrap().to, sock(1, 40001));
}

#[test]
fn unicast_lookup_and_negative_answer() {
    let mut sim = net(2);
    register_all(&mut sim, 0, &[("ALPHA<00>", false)]);
    let id = sim
        .lookup(1, "ALPHA<00>", LookupTarget::Unicast(ip(1)))
        .unwrap();
    sim.run_for(secs(0.1));
    assert!(matches!(
        sim.events(1).last(),
        Some(Event::LookupDone { id: i, result: Ok(_), .. }) if *i == id
    ));
    assert_eq!(with_flags(&sim, 0x0100).len(), 1);
    // A negative answer from the queried node ends the lookup at once.
    sim.capture = true;
    let id = sim
        .lookup(1, "OTHER<00>", LookupTarget::Unicast(ip(1)))
        .unwrap();
    let q = nbns(&sim.captured[0]).unwrap();
    let neg = response(q.id, 0x8583, &name("OTHER<00>"), 0, ip(1));
    // From the wrong responder: ignored and counted.
    sim.inject(1, sock(7, 137), Service::Name, false, &neg);
    assert_eq!(sim.node(1).stats().dropped.answer_wrong_source, 1);
    sim.inject(1, sock(1, 137), Service::Name, false, &neg);
    assert!(sim.events(1).contains(&Event::LookupDone {
        id,
        name: name("OTHER<00>"),
        result: Err(LookupError::NotFound)
    }));
}

#[test]
fn duplicate_unique_answers_trigger_a_conflict_demand() {
    let mut sim = net(1);
    sim.capture = true;
    let id = sim.lookup(0, "DUP<00>", LookupTarget::Broadcast).unwrap();
    let q = nbns(&sim.captured[0]).unwrap();
    let answer = |ip| response(q.id, 0x8500, &name("DUP<00>"), 0, ip);
    sim.inject(0, sock(50, 137), Service::Name, false, &answer(ip(50)));
    assert!(
        matches!(sim.events(0).last(), Some(Event::LookupDone { id: i, result: Ok(_), .. }) if *i == id)
    );
    // The same responder again: a duplicate, not a conflict.
    sim.inject(0, sock(50, 137), Service::Name, false, &answer(ip(50)));
    assert_eq!(sim.node(0).stats().duplicate_responses, 1);
    // A different unique answer within CONFLICT_TIMER: demand to the later responder.
    sim.run_for(secs(0.5));
    sim.inject(0, sock(51, 137), Service::Name, false, &answer(ip(51)));
    let demands = with_flags(&sim, 0xAD87);
    assert_eq!(demands.len(), 1);
    assert_eq!(demands[0].0.to, sock(51, 137));
    let RData::Nb(a) = &demands[0].1.answers[0].rdata else {
        panic!()
    };
    assert_eq!(a[0].ip, std::net::Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        conflicts(&sim, 0),
        vec![Event::NameConflict {
            name: name("DUP<00>"),
            by: Some(sock(51, 137)),
            reason: ConflictReason::DuplicateQueryAnswers
        }]
    );
    // After CONFLICT_TIMER the transaction is gone: later answers are unsolicited.
    sim.run_for(secs(1.0));
    sim.inject(0, sock(52, 137), Service::Name, false, &answer(ip(52)));
    assert_eq!(sim.node(0).stats().dropped.unsolicited_response, 1);
    assert_eq!(with_flags(&sim, 0xAD87).len(), 1);
}

#[test]
fn node_status_on_off_and_truncation() {
    let mut sim = net(2);
    register_all(
        &mut sim,
        0,
        &[("ALPHA<00>", false), ("ALPHA<20>", false), ("WG<00>", true)],
    );
    let id = sim.node_status(1, ip(1), None).unwrap();
    sim.run_for(secs(0.1));
    let Some(Event::StatusDone {
        id: got,
        addr,
        result,
    }) = sim.events(1).last().cloned()
    else {
        panic!("{:?}", sim.events(1))
    };
    assert_eq!((got, addr), (id, ip(1)));
    let reply = result.unwrap();
    assert!(!reply.truncated);
    let names: Vec<_> = reply
        .names
        .iter()
        .map(|n| (n.name.to_string(), n.flags))
        .collect();
    assert_eq!(
        names,
        vec![
            ("ALPHA<00>".into(), 0x0400),
            ("ALPHA<20>".into(), 0x0400),
            ("WG<00>".into(), 0x8400)
        ]
    );
    assert_eq!(reply.unit_id, Some([0; 6]));
    let resp = with_flags(&sim, 0x8400);
    assert_eq!(resp.len(), 1);
    assert_eq!(resp[0].1.answers[0].ttl, 0);
    // Asking by one of its names works too; an unknown name gets nothing.
    sim.node_status(1, ip(1), Some("ALPHA<20>")).unwrap();
    sim.run_for(secs(0.1));
    assert_eq!(with_flags(&sim, 0x8400).len(), 2);

    // Disabled: no answer, counted; the asker times out.
    let cfg = NodeConfig {
        node_status: false,
        ..sim.node(0).config().clone()
    };
    sim.node_mut(0).set_config(cfg).unwrap();
    let id = sim.node_status(1, ip(1), None).unwrap();
    sim.run_for(secs(5.0));
    assert_eq!(sim.node(0).stats().dropped.node_status_disabled, 3);
    assert!(sim.events(1).contains(&Event::StatusDone {
        id,
        addr: ip(1),
        result: Err(LookupError::NoResponse)
    }));
    // The name table survived the reload.
    assert_eq!(sim.node(0).names().len(), 3);
}

#[test]
fn node_status_truncates_with_many_names() {
    let mut sim = net(2);
    let names: Vec<String> = (0..40).map(|i| format!("HOST{i:02}<00>")).collect();
    for n in &names {
        sim.register(0, n, false).unwrap();
    }
    sim.run_for(secs(1.0));
    let id = sim.node_status(1, ip(1), None).unwrap();
    sim.run_for(secs(0.1));
    let resp = with_flags(&sim, 0x8400 | FLAG_TC);
    assert_eq!(resp.len(), 1);
    assert!(resp[0].0.bytes.len() <= 576 - 28);
    assert!(resp[0].0.bytes.len() <= 12 * 50);
    let Some(Event::StatusDone {
        id: got,
        result: Ok(reply),
        ..
    }) = sim.events(1).last().cloned()
    else {
        panic!()
    };
    assert_eq!(got, id);
    assert!(reply.truncated);
    // (548 - 103) / 18 = 24 names fit.
    assert_eq!(reply.names.len(), 24);
    assert_eq!(sim.node(0).stats().node_status_truncated, 1);
}

#[test]
fn lookup_uses_the_cache_until_it_expires() {
    let mut sim = net(2);
    register_all(&mut sim, 0, &[("ALPHA<00>", false)]);
    sim.lookup(1, "ALPHA<00>", LookupTarget::Broadcast).unwrap();
    sim.run_for(secs(1.5));
    assert_eq!(with_flags(&sim, 0x0110).len(), 1);
    assert_eq!(sim.node(1).cache().len(), 1);
    assert_eq!(sim.node(1).cache()[0].addresses[0].addr, ip(1));
    // Second lookup: from the cache, nothing on the wire.
    let id = sim.lookup(1, "ALPHA<00>", LookupTarget::Broadcast).unwrap();
    assert!(
        matches!(sim.events(1).last(), Some(Event::LookupDone { id: i, result: Ok(_), .. }) if *i == id)
    );
    assert_eq!(with_flags(&sim, 0x0110).len(), 1);
    assert_eq!(sim.node(1).stats().cache_hits, 1);
    // 10 minutes later it has expired.
    sim.run_for(secs(600.0));
    sim.lookup(1, "ALPHA<00>", LookupTarget::Broadcast).unwrap();
    assert_eq!(with_flags(&sim, 0x0110).len(), 2);
    assert_eq!(sim.node(1).stats().cache_misses, 2);
    assert!(sim.node(1).stats().cache_expired >= 1);
}

#[test]
fn cache_is_bounded_with_eviction() {
    let mut sim = (net(2),);
    for i in 0..10 {
        let n = format!("N{i}<00>");
        sim.0.register(0, &n, false).unwrap();
    }
    sim.0.run_for(secs(1.0));
    let cfg = NodeConfig {
        cache: nbdgm_node::CacheLimits {
            max_entries: 4,
            ..Default::default()
        },
        ..sim.0.node(1).config().clone()
    };
    sim.0.node_mut(1).set_config(cfg).unwrap();
    for i in 0..10 {
        sim.0
            .lookup(1, &format!("N{i}<00>"), LookupTarget::Broadcast)
            .unwrap();
        sim.0.run_for(secs(0.1));
    }
    assert_eq!(sim.0.node(1).cache().len(), 4);
    assert_eq!(sim.0.node(1).stats().cache_evictions, 6);
    assert_eq!(sim.0.node(1).stats().lookups_succeeded, 10);
}

#[test]
fn release_on_shutdown_and_cache_flush() {
    let mut sim = net(2);
    register_all(&mut sim, 0, &[("ALPHA<00>", false), ("WG<00>", true)]);
    sim.lookup(1, "ALPHA<00>", LookupTarget::Broadcast).unwrap();
    sim.run_for(secs(1.5));
    assert_eq!(sim.node(1).cache().len(), 1);
    sim.shutdown(0);
    assert!(!sim.node(0).is_shutdown_complete());
    assert!(sim
        .node(0)
        .names()
        .iter()
        .all(|n| n.state == NameState::Releasing));
    sim.run_for(secs(1.0));
    let rel = with_flags(&sim, 0x3010);
    assert_eq!(rel.len(), 6, "2 names x 3 broadcasts");
    for (w, p) in &rel {
        assert!(w.broadcast);
        assert_eq!(p.additional[0].ttl, 0);
    }
    let released = sim
        .events(0)
        .iter()
        .filter(|e| matches!(e, Event::NameReleased { .. }))
        .count();
    assert_eq!(released, 2);
    assert!(sim.node(0).is_shutdown_complete());
    assert!(sim.node(0).names().is_empty());
    // The other node heard the release and flushed its cache.
    assert!(sim.node(1).cache().is_empty());
    assert!(sim.node(1).stats().releases_heard >= 2);
}

#[test]
fn scope_applies_to_every_name() {
    let mut sim = nbdgm_node::sim::Sim::new(SimConfig::default());
    for i in 1..=3 {
        let mut c = NodeConfig::new(format!("10.0.0.{i}/24").parse().unwrap());
        if i < 3 {
            c.scope = "CORP.EXAMPLE".into();
        }
        sim.add_node(c).unwrap();
    }
    sim.register(0, "ALPHA<00>", false).unwrap();
    sim.run_for(secs(1.0));
    assert_eq!(
        sim.node(0).names()[0].name.to_string(),
        "ALPHA<00>.CORP.EXAMPLE"
    );
    // Same scope: found. Other scope (the empty one): not found.
    sim.lookup(1, "ALPHA<00>", LookupTarget::Broadcast).unwrap();
    sim.lookup(2, "ALPHA<00>", LookupTarget::Broadcast).unwrap();
    sim.run_for(secs(1.0));
    assert!(matches!(
        sim.events(1).last(),
        Some(Event::LookupDone { result: Ok(_), .. })
    ));
    assert!(matches!(
        sim.events(2).last(),
        Some(Event::LookupDone {
            result: Err(LookupError::NoResponse),
            ..
        })
    ));
    // A name in another scope is refused.
    assert!(sim.register(0, "X<00>.OTHER", false).is_err());
    // The scope cannot change while names are held.
    let c = NodeConfig {
        scope: String::new(),
        ..sim.node(0).config().clone()
    };
    assert!(sim.node_mut(0).set_config(c).is_err());
}

#[test]
fn command_errors() {
    let mut sim = net(1);
    register_all(&mut sim, 0, &[("ALPHA<00>", false)]);
    assert!(sim.register(0, "ALPHA<00>", false).is_err());
    assert!(sim.register(0, "*", false).is_err());
    assert!(sim.release(0, "NOPE<00>").is_err());
    let c = NodeConfig {
        max_names: 1,
        ..sim.node(0).config().clone()
    };
    sim.node_mut(0).set_config(c).unwrap();
    assert!(sim.register(0, "BETA<00>", false).is_err());
    assert_eq!(sim.node(0).stats().names_refused, 1);
    let c = NodeConfig {
        max_transactions: 2,
        ..sim.node(0).config().clone()
    };
    sim.node_mut(0).set_config(c).unwrap();
    sim.lookup(0, "Q1", LookupTarget::Broadcast).unwrap();
    sim.lookup(0, "Q1", LookupTarget::Broadcast).unwrap(); // joins the first
    sim.lookup(0, "Q2", LookupTarget::Broadcast).unwrap();
    assert!(sim.lookup(0, "Q3", LookupTarget::Broadcast).is_err());
    assert_eq!(sim.node(0).stats().transactions_refused, 1);
    // P and M nodes without an NBNS are refused (H without one is a B-node).
    let c = NodeConfig {
        node_type: nbdgm_node::NodeType::P,
        ..NodeConfig::default()
    };
    assert!(nbdgm_node::Node::new(c, sim.now()).is_err());
}
