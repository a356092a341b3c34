//! The generated corpus (`nbdgm-corpus`) against `nbdgm`'s decoder: every well-formed
//! packet round-trips layer by layer, every malformed one is reported malformed, and the
//! Mixed corpus covers every kind and variation (RFC 1002 §4.2, §4.4; MS-BRWS §2.2; MS-MAIL §2.2.1).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm::decode::record::{Meta, Protocol, Record as View};
use nbdgm_corpus::{generate, Generated, Mix};
use nbdgm_wire::datagram::{Body, Datagram};
use nbdgm_wire::mailslot::{self, MailslotWrite};
use nbdgm_wire::name::Name;
use nbdgm_wire::nbns::Packet;
use nbdgm_wire::payload::{self, Payload};
use std::collections::{BTreeMap, BTreeSet};

fn corpus(n: usize, seed: u64, mix: Mix) -> Vec<Generated> {
    generate(n, seed, mix).collect()
}

fn decode(p: &Generated) -> View {
    let meta = Meta {
        frame: 1,
        time: String::new(),
        time_epoch: 0.0,
        src: p.src.into(),
        dst: p.dst.into(),
    };
    let proto = Protocol::guess(p.src.port(), p.dst.port(), &p.payload);
    View::decode(meta, proto, &p.payload)
}

/// Every well-formed packet parses and re-emits byte for byte, layer by layer; every
/// malformed one is reported malformed by the decode view.
#[test]
fn round_trip() {
    for mix in [Mix::Mixed, Mix::Realistic] {
        for p in generate(10_000, 1, mix) {
            let view = decode(&p);
            if p.is_malformed() {
                assert!(
                    view.malformed.is_some(),
                    "{} not malformed: {view:?}",
                    p.kind
                );
                continue;
            }
            assert!(
                view.malformed.is_none(),
                "{}: {:?} {}",
                p.kind,
                view.malformed,
                nbdgm_wire::hex::encode(&p.payload)
            );
            if p.dst.port() == 137 || p.src.port() == 137 {
                let pkt = Packet::parse(&p.payload).unwrap();
                assert_eq!(pkt.to_bytes().unwrap(), p.payload, "{}", p.kind);
                continue;
            }
            let d = Datagram::parse(&p.payload).unwrap();
            assert_eq!(d.to_bytes().unwrap(), p.payload, "{}", p.kind);
            let Some(ud) = d.user_data() else { continue };
            if d.flags.more || !ud.starts_with(&mailslot::SMB_MAGIC) {
                continue;
            }
            let w = MailslotWrite::parse(ud).unwrap();
            assert_eq!(w.to_bytes().unwrap(), ud, "{}", p.kind);
            let again = match payload::parse(&w.name, &w.data).unwrap() {
                None => continue,
                Some(Payload::Browser(f)) => f.to_bytes(),
                Some(Payload::Lanman(f)) => f.to_bytes(),
                Some(Payload::Netlogon(m)) => m.to_bytes(),
                Some(Payload::Messenger(m)) => m.to_bytes(),
            };
            assert_eq!(again.unwrap(), w.data, "{}", p.kind);
        }
    }
}

/// Over 10,000 packets every kind and every variation appears many times.
#[test]
fn coverage() {
    let packets = corpus(10_000, 1, Mix::Mixed);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut features: BTreeMap<String, usize> = BTreeMap::new();
    let mut feat = |s: String| *features.entry(s).or_default() += 1;
    for p in &packets {
        *kinds.entry(p.kind).or_default() += 1;
        if p.is_malformed() {
            continue;
        }
        let v = decode(p);
        if let Some(n) = &v.nbns {
            feat(format!("nbns.opcode.{}", n.opcode));
            feat(format!("nbns.kind.{}", n.kind));
            feat(format!("nbns.broadcast.{}", n.broadcast));
            for q in &n.questions {
                feat(format!("nbns.qtype.{}", q.qtype));
            }
            for r in n.answers.iter().chain(&n.additional) {
                if let Some(ns) = &r.node_status {
                    feat(format!("nbns.node_status.names.{}", ns.names.len().min(9)));
                }
            }
            continue;
        }
        let d = Datagram::parse(&p.payload).unwrap();
        feat(format!("dgm.type.{:02x}", d.msg_type.code()));
        feat(format!("dgm.flags.{:x}", d.flags.to_byte() & 0x0F));
        if d.flags.reserved != 0 {
            feat("dgm.flags.reserved".into());
        }
        if let Body::Error { code } = d.body {
            feat(match code {
                0x82..=0x84 => format!("dgm.error.{code:02x}"),
                _ => "dgm.error.unknown".into(),
            });
        }
        for n in [d.source_name(), d.destination_name()]
            .into_iter()
            .flatten()
        {
            if !n.scope().is_empty() {
                feat("name.scope".into());
            }
            if n.encoded_len() >= 250 {
                feat("name.long_scope".into());
            }
            if n.is_wildcard() {
                feat("name.wildcard".into());
            }
            if *n == Name::msbrowse() {
                feat("name.msbrowse".into());
            }
            if n.raw()[..15]
                .iter()
                .any(|&b| !(0x20..0x7F).contains(&b) && b != 0)
            {
                feat("name.non_printable".into());
            }
            feat(format!("name.suffix.{:02x}", n.suffix()));
        }
        let mismatch = v.warnings.iter().any(|w| w.contains("DGM_LENGTH"));
        if mismatch {
            feat("dgm.length_wrong".into());
        }
        if let Some(m) = &v.mailslot {
            let w = MailslotWrite::parse(d.user_data().unwrap()).unwrap();
            feat(format!("mailslot.padded.{}", !w.padding.is_empty()));
            if m.priority > 1 {
                feat("mailslot.priority_odd".into());
            }
            if m.class != 2 {
                feat("mailslot.class_odd".into());
            }
        }
        if let Some(b) = &v.browser {
            feat(format!("browser.{:02x}.{}", b.command_code, b.command));
        }
        if let Some(n) = &v.netlogon {
            feat(format!("netlogon.{}", n.command));
        }
        if v.messenger.is_some() {
            feat("messenger".into());
        }
    }
    for (k, n) in &kinds {
        assert!(*n >= 20, "kind {k} only {n} times");
    }
    let expect_kinds = [
        "browser.host_announcement",
        "browser.local_master_announcement",
        "browser.announcement_request",
        "browser.request_election",
        "browser.get_backup_list_request",
        "browser.get_backup_list_response",
        "browser.become_backup",
        "browser.domain_announcement",
        "browser.master_announcement",
        "browser.reset_state_request",
        "browser.unknown_opcode",
        "lanman.announcement",
        "lanman.browse_layout",
        "netlogon.primary_query",
        "netlogon.primary_response",
        "netlogon.sam_logon_request",
        "netlogon.sam_logon_response",
        "messenger",
        "mailslot.other",
        "dgm.non_smb_data",
        "dgm.empty_user_data",
        "dgm.fragment_first",
        "dgm.fragment_middle",
        "dgm.fragment_last",
        "dgm.error",
        "dgm.query_request",
        "dgm.positive_query_response",
        "dgm.negative_query_response",
        "nbns.query_request",
        "nbns.positive_query_response",
        "nbns.negative_query_response",
        "nbns.registration_request",
        "nbns.overwrite_demand",
        "nbns.multihomed_registration",
        "nbns.positive_registration_response",
        "nbns.negative_registration_response",
        "nbns.conflict_demand",
        "nbns.release_request",
        "nbns.release_response",
        "nbns.refresh_request",
        "nbns.wack",
        "nbns.node_status_request",
        "nbns.node_status_response",
        "nbns.unknown_opcode",
        "malformed.truncated",
        "malformed.bad_first_level",
        "malformed.pointer_name",
        "malformed.bad_msg_type",
        "malformed.bad_label",
    ];
    for k in expect_kinds {
        assert!(kinds.contains_key(k), "kind {k} missing");
    }
    let mut expect: BTreeSet<String> = BTreeSet::new();
    for t in 0x10..=0x16 {
        expect.insert(format!("dgm.type.{t:02x}"));
    }
    for f in 0..16 {
        expect.insert(format!("dgm.flags.{f:x}"));
    }
    for s in [0x00, 0x03, 0x20, 0x1B, 0x1C, 0x1D, 0x1E, 0x01] {
        expect.insert(format!("name.suffix.{s:02x}"));
    }
    for c in ["82", "83", "84", "unknown"] {
        expect.insert(format!("dgm.error.{c}"));
    }
    for (op, name) in [
        (0x01, "HostAnnouncement"),
        (0x02, "AnnouncementRequest"),
        (0x08, "RequestElection"),
        (0x09, "GetBackupListRequest"),
        (0x0a, "GetBackupListResponse"),
        (0x0b, "BecomeBackup"),
        (0x0c, "DomainAnnouncement"),
        (0x0d, "MasterAnnouncement"),
        (0x0e, "ResetStateRequest"),
        (0x0f, "LocalMasterAnnouncement"),
    ] {
        expect.insert(format!("browser.{op:02x}.{name}"));
    }
    for op in [0, 5, 6, 7, 8, 9, 15] {
        expect.insert(format!("nbns.opcode.{op}"));
    }
    for s in [
        "dgm.flags.reserved",
        "name.scope",
        "name.long_scope",
        "name.wildcard",
        "name.msbrowse",
        "name.non_printable",
        "dgm.length_wrong",
        "mailslot.padded.true",
        "mailslot.padded.false",
        "mailslot.priority_odd",
        "mailslot.class_odd",
        "browser.01.LanmanAnnouncement",
        "netlogon.LOGON_PRIMARY_QUERY",
        "netlogon.LOGON_PRIMARY_RESPONSE",
        "netlogon.LOGON_SAM_LOGON_REQUEST",
        "messenger",
        "nbns.broadcast.true",
        "nbns.broadcast.false",
        "nbns.qtype.32",
        "nbns.qtype.33",
        "nbns.node_status.names.0",
        "nbns.node_status.names.9",
        "nbns.kind.NODE STATUS RESPONSE",
        "nbns.kind.NEGATIVE NAME QUERY RESPONSE",
        "nbns.kind.NAME CONFLICT DEMAND",
        "nbns.kind.WAIT FOR ACKNOWLEDGEMENT RESPONSE",
    ] {
        expect.insert(s.into());
    }
    let missing: Vec<_> = expect
        .iter()
        .filter(|e| !features.contains_key(e.as_str()))
        .collect();
    assert!(missing.is_empty(), "missing features: {missing:?}");
    let rare: Vec<_> = expect
        .iter()
        .filter(|e| features.get(e.as_str()).copied().unwrap_or(0) < 5)
        .collect();
    assert!(
        rare.is_empty(),
        "features seen fewer than 5 times: {rare:?}"
    );
    let malformed = packets.iter().filter(|p| p.is_malformed()).count();
    assert!((100..=800).contains(&malformed), "{malformed} malformed");
}
