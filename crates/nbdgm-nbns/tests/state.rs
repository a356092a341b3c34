//! Static names (defended like an owner, RFC 1002 §5.1.4.1), operator changes and the
//! state file across restarts (RFC 1001 §15.1.1 name database; `persist` module doc).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use nbdgm_nbns::persist::{load_file, save_file, set_aside};
use nbdgm_nbns::{AdminError, Fixed, NbnsConfig, NbnsServer, StateError, StaticEntry};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn static_dc(h: &mut Harness) -> nbdgm_wire::Name {
    let n = name("DC1", 0x20);
    let e = StaticEntry {
        name: n.clone(),
        group: false,
        addresses: vec![ip(9)],
    };
    h.s.add_static(h.now, &e, Fixed::Config).unwrap();
    n
}

#[test]
fn static_name_is_defended_against_other_addresses() {
    let mut h = Harness::default();
    let n = static_dc(&mut h);
    // Another host registers it: ACT_ERR (0xAD86) naming the static holder, no challenge.
    let out = h.send(src(5), &nb_request(7, REG, &n, H, ip(5), 300));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.flags, 0xAD86);
    assert_eq!(nb_addrs(&out[0].1)[0].ip, ip(9));
    assert_eq!(h.s.stats().challenges_started, 0);
    assert_eq!(h.s.stats().refused_static, 1);
    // A group registration of it: ACT_ERR too.
    let out = h.send(src(5), &nb_request(8, REG, &n, G | H, ip(5), 300));
    assert_eq!(out[0].1.flags, 0xAD86);
    // Its own address registering: positive, nothing changes.
    let out = h.send(src(9), &nb_request(9, REG, &n, H, ip(9), 300));
    assert_eq!(out[0].1.flags, 0xAD80);
    // A release, even from its own address, is refused (ACT_ERR, opcode 6 response).
    let out = h.send(src(9), &nb_request(10, RELEASE, &n, H, ip(9), 0));
    assert_eq!(out[0].1.flags & 0x000F, 6);
    // It never expires.
    h.advance(Duration::from_secs(20 * 86_400));
    assert_eq!(h.addresses(&n), vec![ip(9)]);
    let e = &h.s.entries(h.now)[0];
    assert!(e.is_static);
    assert_eq!(e.origin, "config");
    assert_eq!(e.members[0].ttl, 0);
    // The API cannot delete or replace a configured name.
    assert_eq!(h.s.delete(&n, None), Err(AdminError::Configured));
    let e = StaticEntry {
        name: n.clone(),
        group: false,
        addresses: vec![ip(1)],
    };
    assert_eq!(
        h.s.add_static(h.now, &e, Fixed::Admin),
        Err(AdminError::Configured)
    );
}

#[test]
fn operator_add_and_delete() {
    let mut h = Harness::default();
    let g = name("WG", 0x1c);
    h.s.add_dynamic(h.now, &g, true, ip(1), 600).unwrap();
    h.s.add_dynamic(h.now, &g, true, ip(2), 600).unwrap();
    assert_eq!(h.addresses(&g), vec![ip(1), ip(2)]);
    assert!(matches!(
        h.s.add_dynamic(h.now, &g, false, ip(3), 600),
        Err(AdminError::Invalid(_))
    ));
    assert_eq!(h.s.delete(&g, Some(ip(1))), Ok(1));
    assert_eq!(h.addresses(&g), vec![ip(2)]);
    assert_eq!(h.s.delete(&g, Some(ip(1))), Err(AdminError::NotFound));
    assert_eq!(h.s.delete(&g, None), Ok(1));
    assert!(h.s.entries(h.now).is_empty());
    // A dynamic entry expires at TTL + grace.
    h.s.add_dynamic(h.now, &g, true, ip(1), 60).unwrap();
    h.advance(Duration::from_secs(60 + 301));
    assert!(h.addresses(&g).is_empty());
    // Bad input is refused, not stored.
    let bad = StaticEntry {
        name: name("X", 0),
        group: false,
        addresses: vec![],
    };
    assert!(h.s.add_static(h.now, &bad, Fixed::Admin).is_err());
    let bcast = StaticEntry {
        addresses: vec![std::net::Ipv4Addr::BROADCAST],
        ..bad
    };
    assert!(h.s.add_static(h.now, &bcast, Fixed::Admin).is_err());
    // The table cap holds for operator entries too.
    let mut small = Harness::new(NbnsConfig {
        max_names: 1,
        ..NbnsConfig::default()
    });
    small
        .s
        .add_dynamic(small.now, &name("A", 0), false, ip(1), 600)
        .unwrap();
    assert_eq!(
        small
            .s
            .add_dynamic(small.now, &name("B", 0), false, ip(2), 600),
        Err(AdminError::Full(1))
    );
    assert_eq!(small.s.stats().refused_table_full, 1);
}

#[test]
fn state_round_trip_keeps_names_and_drops_expired_ones() {
    let mut h = Harness::default();
    let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let long = name("FILESRV", 0x20);
    let short = name("SHORT", 0x00);
    h.register(&long, H, 5); // 300,000 s asked: granted as asked
    let out = h.send(src(6), &nb_request(1, REG, &short, H, ip(6), 60));
    assert_eq!(out[0].1.flags, 0xAD80);
    static_dc(&mut h);
    let admin = StaticEntry {
        name: name("PRINTER", 0x20),
        group: false,
        addresses: vec![ip(7)],
    };
    h.s.add_static(h.now, &admin, Fixed::Admin).unwrap();
    let bytes = h.s.export_state(h.now, wall);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.starts_with("{\"format\":\"nbdgm-nbns-state\",\"version\":1,"),
        "{text}"
    );
    assert!(
        !text.contains("DC1"),
        "configured names are not saved: {text}"
    );
    // "Restart" one hour later: SHORT (60 s + 300 s grace) is gone, the rest stays.
    let mut h2 = Harness::default();
    let later = wall + Duration::from_secs(3_600);
    let r = h2.s.import_state(h2.now, later, &bytes).unwrap();
    assert_eq!((r.loaded, r.dropped), (2, 1));
    assert_eq!(h2.addresses(&long), vec![ip(5)]);
    assert!(h2.addresses(&short).is_empty());
    let left = h2.s.lookup(&long, h2.now).unwrap().expires - h2.now;
    assert!(
        left <= Duration::from_secs(300_000 + 300 - 3_600),
        "{left:?}"
    );
    assert!(
        left >= Duration::from_secs(300_000 + 300 - 3_602),
        "{left:?}"
    );
    // The admin static name came back static, and is still defended.
    let out = h2.send(src(8), &nb_request(2, REG, &admin.name, H, ip(8), 300));
    assert_eq!(out[0].1.flags, 0xAD86);
    assert_eq!(h2.s.stats().state_loaded, 2);
}

#[test]
fn corrupt_state_is_refused_whole_and_kept_aside() {
    let mut h = Harness::default();
    let now = SystemTime::now();
    let good = {
        let mut g = Harness::default();
        g.register(&name("A", 0), H, 1);
        g.s.export_state(g.now, now)
    };
    let mut bad = good.clone();
    bad.extend_from_slice(b"{\"raw\":\"zz\"}\n");
    for bytes in [
        &bad[..],
        b"not json\n",
        b"{\"format\":\"nbdgm-nbns-state\",\"version\":99,\"saved_unix\":0,\"names\":0}\n",
        b"",
    ] {
        assert!(matches!(
            h.s.import_state(h.now, now, bytes),
            Err(StateError::Corrupt { .. })
        ));
    }
    assert!(h.s.entries(h.now).is_empty(), "nothing half-loaded");

    let dir = std::env::temp_dir().join(format!("nbns-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wins.jsonl");
    assert!(load_file(&path, 1024).unwrap().is_none(), "no file yet");
    save_file(&path, &good).unwrap();
    assert_eq!(load_file(&path, 1 << 20).unwrap().unwrap(), good);
    assert!(matches!(
        load_file(&path, 10),
        Err(StateError::TooLarge(10))
    ));
    std::fs::write(&path, &bad).unwrap();
    let aside = set_aside(&path, now).unwrap();
    assert!(!path.exists());
    assert_eq!(std::fs::read(&aside).unwrap(), bad);
    std::fs::remove_dir_all(&dir).unwrap();
    let _ = NbnsServer::new(NbnsConfig::default(), h.now).unwrap();
}
