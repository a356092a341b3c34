//! Tests of the browser frames (MS-BRWS §2.2) and the LAN Manager announcements.

use super::*;
use crate::reader::latin1;

/// DIGEST §10.1: the browser payload of the HostAnnouncement datagram (33 bytes).
const HOST_ANNOUNCEMENT: [u8; 33] = [
    0x01, 0x00, 0x80, 0xfc, 0x0a, 0x00, b'F', b'R', b'E', b'D', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0x06, 0x01, 0x03, 0x10, 0x01, 0x00, 0x0f, 0x01, 0x55, 0xaa, 0x00,
];

fn round_trip(bytes: &[u8]) -> BrowserFrame {
    let f = BrowserFrame::parse(bytes).unwrap();
    assert_eq!(f.to_bytes().unwrap(), bytes, "{f:?}");
    f
}

fn lanman_round_trip(bytes: &[u8]) -> LanmanFrame {
    let f = LanmanFrame::parse(bytes).unwrap();
    assert_eq!(f.to_bytes().unwrap(), bytes, "{f:?}");
    f
}

#[test]
fn digest_host_announcement() {
    let f = round_trip(&HOST_ANNOUNCEMENT);
    assert_eq!((f.command_code(), f.command()), (0x01, "HostAnnouncement"));
    let BrowserFrame::HostAnnouncement(a) = f else {
        panic!("{f:?}")
    };
    assert_eq!(
        a,
        Announcement {
            periodicity_ms: 720_000,
            server_name: "FRED".into(),
            os_major: 6,
            os_minor: 1,
            server_type: 0x0001_1003,
            ..Announcement::default()
        }
    );
    assert_eq!(
        server_type_names(a.server_type),
        ["WORKSTATION", "SERVER", "NT", "POTENTIAL_BROWSER"]
    );
}

#[test]
fn digest_request_election() {
    let bytes = [
        0x08, 0x01, 0x04, 0x0f, 0x01, 0x20, 0x80, 0xee, 0x36, 0x00, 0, 0, 0, 0, b'F', b'R', b'E',
        b'D', 0,
    ];
    let f = round_trip(&bytes);
    assert_eq!(f.command(), "RequestElection");
    let BrowserFrame::RequestElection(e) = f else {
        panic!("{f:?}")
    };
    assert_eq!(
        e,
        RequestElection {
            election_version: 1,
            criteria: 0x2001_0F04,
            uptime_ms: 3_600_000,
            unused: 0,
            server_name: "FRED".into(),
            trailing: vec![],
        }
    );
    let c = ElectionCriteria(e.criteria);
    assert_eq!(
        (c.os(), c.browser_version(), c.role()),
        (0x20, 0x010F, 0x04)
    );
    assert_eq!(
        c,
        ElectionCriteria::new(0x20, ElectionCriteria::BROWSER_VERSION, 0x04)
    );
    assert_eq!(c.os_names(), ["NT_SERVER"]);
    assert_eq!(c.role_names(), ["RUNNING_MASTER"]);
}

#[test]
fn digest_backup_list() {
    let f = round_trip(&[0x09, 0x04, 0x01, 0x00, 0x00, 0x00]);
    assert_eq!(
        f,
        BrowserFrame::GetBackupListRequest(GetBackupListRequest {
            count: 4,
            token: 1,
            trailing: vec![]
        })
    );
    assert_eq!(f.command(), "GetBackupListRequest");
    let f = round_trip(&[
        0x0a, 0x01, 0x01, 0x00, 0x00, 0x00, b'F', b'R', b'E', b'D', 0,
    ]);
    assert_eq!(
        f,
        BrowserFrame::GetBackupListResponse(GetBackupListResponse {
            count: 1,
            token: 1,
            servers: vec!["FRED".into()],
            trailing: vec![]
        })
    );
    assert_eq!(f.command(), "GetBackupListResponse");
}

#[test]
fn digest_short_frames() {
    let f = round_trip(&[0x02, 0x00, b'F', b'R', b'E', b'D', 0]);
    assert_eq!(f.command(), "AnnouncementRequest");
    assert_eq!(
        f,
        BrowserFrame::AnnouncementRequest(AnnouncementRequest {
            reserved: 0,
            response_name: "FRED".into(),
            trailing: vec![]
        })
    );
    let f = round_trip(&[0x0b, b'B', b'A', b'R', b'N', b'E', b'Y', 0]);
    assert_eq!(f.command(), "BecomeBackup");
    assert_eq!(
        f,
        BrowserFrame::BecomeBackup(BecomeBackup {
            browser_to_promote: "BARNEY".into(),
            trailing: vec![]
        })
    );
    let f = round_trip(&[0x0d, b'F', b'R', b'E', b'D', 0]);
    assert_eq!(f.command(), "MasterAnnouncement");
    assert_eq!(
        f,
        BrowserFrame::MasterAnnouncement(MasterAnnouncement {
            master_name: "FRED".into(),
            trailing: vec![]
        })
    );
    let f = round_trip(&[0x0e, 0x01]);
    assert_eq!(f.command(), "ResetStateRequest");
    assert_eq!(
        f,
        BrowserFrame::ResetStateRequest(ResetStateRequest {
            reset_type: RESET_STATE_STOP_MASTER,
            trailing: vec![]
        })
    );
    assert_eq!(reset_type_names(0x07), ["STOP_MASTER", "CLEAR_ALL", "STOP"]);
}

#[test]
fn local_master_announcement() {
    let mut bytes = HOST_ANNOUNCEMENT.to_vec();
    bytes[0] = 0x0f;
    bytes[22] = 0x0a;
    bytes[23] = 0x00;
    bytes[24..28].copy_from_slice(&0x0005_1003u32.to_le_bytes());
    bytes.pop();
    bytes.extend_from_slice(b"Samba 4.17\0");
    let f = round_trip(&bytes);
    assert_eq!(
        (f.command_code(), f.command()),
        (0x0f, "LocalMasterAnnouncement")
    );
    let BrowserFrame::LocalMasterAnnouncement(a) = f else {
        panic!("{f:?}")
    };
    assert_eq!(
        (a.os_major, a.os_minor, a.server_type),
        (10, 0, 0x0005_1003)
    );
    assert_eq!(a.comment, "Samba 4.17");
    assert!(ServerType(a.server_type).contains(ServerType::MASTER_BROWSER));
}

#[test]
fn domain_announcement_keeps_uninitialised_bytes() {
    let bytes = [
        0x0c, 0x00, 0x60, 0xea, 0x00, 0x00, b'W', b'O', b'R', b'K', b'G', b'R', b'O', b'U', b'P',
        0, 0, 0, 0, 0, 0, 0, 0x03, 0x0a, 0x00, 0x10, 0x00, 0x80, 0xde, 0xad, 0xbe, 0xef, b'F',
        b'R', b'E', b'D', 0,
    ];
    let f = round_trip(&bytes);
    assert_eq!(f.command(), "DomainAnnouncement");
    let BrowserFrame::DomainAnnouncement(d) = f else {
        panic!("{f:?}")
    };
    assert_eq!(
        d,
        DomainAnnouncement {
            periodicity_ms: 60_000,
            machine_group: "WORKGROUP".into(),
            browser_version_major: 0xde,
            browser_version_minor: 0xad,
            signature: 0xefbe,
            local_master_name: "FRED".into(),
            ..DomainAnnouncement::default()
        }
    );
    assert_eq!(server_type_names(d.server_type), ["NT", "DOMAIN_ENUM"]);
}

#[test]
fn garbage_after_name_nul_and_trailing_bytes() {
    let mut bytes = HOST_ANNOUNCEMENT.to_vec();
    bytes[12] = b'X';
    bytes[14] = 0xff;
    bytes.extend_from_slice(&[0x00, 0x99]);
    let f = round_trip(&bytes);
    let BrowserFrame::HostAnnouncement(a) = f else {
        panic!("{f:?}")
    };
    assert_eq!(a.server_name, "FRED");
    assert_eq!(a.server_name_padding, [0, b'X', 0, 0xff]);
    assert_eq!(a.trailing, [0x00, 0x99]);
    // Trailing bytes after every other frame type.
    round_trip(&[0x02, 0x07, b'A', 0, 1, 2]);
    round_trip(&[0x09, 0x04, 0x01, 0x00, 0x00, 0x00, 0xaa]);
    round_trip(&[0x0a, 0x00, 0x01, 0x00, 0x00, 0x00, b'X', 0]);
    round_trip(&[0x0b, 0, 0]);
    round_trip(&[0x0d, b'M', 0, b'Z']);
    round_trip(&[0x0e, 0x02, 0x00, 0x00]);
    round_trip(&[0x08, 0x00, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0xee]);
}

#[test]
fn comment_without_terminator() {
    let mut bytes = HOST_ANNOUNCEMENT.to_vec();
    bytes.pop();
    bytes.extend_from_slice(b"cut off");
    let f = round_trip(&bytes);
    let BrowserFrame::HostAnnouncement(a) = &f else {
        panic!("{f:?}")
    };
    assert_eq!(a.comment, "cut off");
    assert!(a.comment_unterminated);
    // No comment at all: 32 bytes.
    let f = round_trip(&HOST_ANNOUNCEMENT[..32]);
    let BrowserFrame::HostAnnouncement(a) = &f else {
        panic!("{f:?}")
    };
    assert_eq!((a.comment.as_str(), a.comment_unterminated), ("", true));
    // Same for the LMB name of a DomainAnnouncement.
    let mut d = HOST_ANNOUNCEMENT[..32].to_vec();
    d[0] = 0x0c;
    d.extend_from_slice(b"FRED");
    let f = round_trip(&d);
    let BrowserFrame::DomainAnnouncement(d) = &f else {
        panic!("{f:?}")
    };
    assert_eq!(d.local_master_name, "FRED");
    assert!(d.local_master_name_unterminated);
}

#[test]
fn latin1_names() {
    let f = round_trip(&[0x0d, b'K', 0xd6, b'L', b'N', 0]);
    let BrowserFrame::MasterAnnouncement(m) = f else {
        panic!()
    };
    assert_eq!(m.master_name, "KÖLN");
}

#[test]
fn unknown_opcodes() {
    let f = round_trip(&[0x03, 1, 2, 3]);
    assert_eq!(
        f,
        BrowserFrame::Unknown(UnknownFrame {
            opcode: 3,
            data: vec![1, 2, 3]
        })
    );
    assert_eq!((f.command_code(), f.command()), (3, "Unknown"));
    round_trip(&[0xff]);
    let bad = BrowserFrame::Unknown(UnknownFrame {
        opcode: 0x0e,
        data: vec![1],
    });
    assert!(matches!(
        bad.to_bytes(),
        Err(Error::Emit {
            field: "opcode",
            ..
        })
    ));
}

fn invalid_at(data: &[u8]) -> (&'static str, usize) {
    match BrowserFrame::parse(data) {
        Err(Error::Invalid { field, offset, .. }) => (field, offset),
        other => panic!("{other:?}"),
    }
}

fn truncated_at(data: &[u8]) -> (&'static str, usize) {
    match BrowserFrame::parse(data) {
        Err(Error::Truncated { field, offset, .. }) => (field, offset),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_frames() {
    assert_eq!(truncated_at(&[]), ("opcode", 0));
    // Fixed parts cut short.
    assert_eq!(truncated_at(&HOST_ANNOUNCEMENT[..20]), ("ServerName", 6));
    assert_eq!(truncated_at(&HOST_ANNOUNCEMENT[..31]), ("Signature", 30));
    assert_eq!(truncated_at(&[0x0f]), ("UpdateCount", 1));
    let mut d = HOST_ANNOUNCEMENT[..25].to_vec();
    d[0] = 0x0c;
    assert_eq!(truncated_at(&d), ("ServerType", 24));
    assert_eq!(truncated_at(&[0x02]), ("Reserved", 1));
    assert_eq!(
        truncated_at(&[0x08, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("Unused", 10)
    );
    assert_eq!(truncated_at(&[0x09, 4, 1, 0, 0]), ("Token", 2));
    assert_eq!(truncated_at(&[0x0a, 1, 1, 0]), ("Token", 2));
    assert_eq!(truncated_at(&[0x0e]), ("Type", 1));
    // (A 16-byte name field with no NUL is accepted: `sixteen_byte_names_without_nul`.)
    // Mandatory terminators.
    assert_eq!(invalid_at(&[0x02, 0, b'F', b'R']), ("ResponseName", 2));
    assert_eq!(
        invalid_at(&[0x08, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'F']),
        ("ServerName", 14)
    );
    assert_eq!(invalid_at(&[0x0b, b'B', b'A']), ("BrowserToPromote", 1));
    assert_eq!(invalid_at(&[0x0b]), ("BrowserToPromote", 1));
    assert_eq!(invalid_at(&[0x0d, b'F']), ("MasterBrowserServerName", 1));
    // BackupServerCount larger than the names present, or a name cut off.
    assert_eq!(
        invalid_at(&[0x0a, 2, 1, 0, 0, 0, b'F', b'R', b'E', b'D', 0]),
        ("BackupServerList", 11)
    );
    assert_eq!(invalid_at(&[0x0a, 1, 1, 0, 0, 0]), ("BackupServerList", 6));
    assert_eq!(
        invalid_at(&[0x0a, 1, 1, 0, 0, 0, b'F', b'R']),
        ("BackupServerList", 6)
    );
}

fn emit_err(f: BrowserFrame) -> &'static str {
    let mut out = vec![0xAB];
    match f.emit(&mut out) {
        Err(Error::Emit { field, .. }) => {
            assert_eq!(out, [0xAB], "a failed emit leaves the buffer alone");
            field
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn emit_rejects_what_would_not_read_back() {
    let host = |a: Announcement| BrowserFrame::HostAnnouncement(a);
    let named = |n: &str| Announcement {
        server_name: n.into(),
        ..Announcement::default()
    };
    assert!(host(named("FIFTEEN_CHARS_X")).to_bytes().is_ok());
    assert_eq!(emit_err(host(named("SIXTEEN_CHARS_XY"))), "ServerName");
    assert_eq!(emit_err(host(named("Ωmega"))), "ServerName");
    assert_eq!(emit_err(host(named("A\0B"))), "ServerName");
    let padded = |pad: &[u8]| Announcement {
        server_name_padding: pad.to_vec(),
        ..named("FRED")
    };
    assert!(host(padded(&[1; 11])).to_bytes().is_ok());
    assert_eq!(emit_err(host(padded(&[1; 12]))), "ServerName");
    assert_eq!(emit_err(host(padded(&[1, 0]))), "ServerName");
    let cut = Announcement {
        comment_unterminated: true,
        trailing: vec![1],
        ..named("FRED")
    };
    assert_eq!(emit_err(host(cut)), "Comment");
    let d = DomainAnnouncement {
        machine_group: "A_VERY_LONG_GROUP".into(),
        ..DomainAnnouncement::default()
    };
    assert_eq!(
        emit_err(BrowserFrame::DomainAnnouncement(d)),
        "MachineGroup"
    );
    let r = GetBackupListResponse {
        count: 2,
        servers: vec!["A".into()],
        ..GetBackupListResponse::default()
    };
    assert_eq!(
        emit_err(BrowserFrame::GetBackupListResponse(r)),
        "BackupServerCount"
    );
    let m = MasterAnnouncement {
        master_name: "\0".into(),
        trailing: vec![],
    };
    assert_eq!(
        emit_err(BrowserFrame::MasterAnnouncement(m)),
        "MasterBrowserServerName"
    );
}

#[test]
fn sender_limits() {
    let long = BrowserFrame::BecomeBackup(BecomeBackup {
        browser_to_promote: "SIXTEEN_CHARS_XY".into(),
        trailing: vec![],
    });
    // Emitted and read back as they are, but over the MS-BRWS limit for senders.
    assert_eq!(
        BrowserFrame::parse(&long.to_bytes().unwrap()).unwrap(),
        long
    );
    assert!(long.check_sender_limits().is_err());
    let a = Announcement {
        comment: "c".repeat(43),
        ..Announcement::default()
    };
    assert!(BrowserFrame::HostAnnouncement(a)
        .check_sender_limits()
        .is_err());
    assert!(BrowserFrame::parse(&HOST_ANNOUNCEMENT)
        .unwrap()
        .check_sender_limits()
        .is_ok());
}

#[test]
fn server_type_and_criteria_names() {
    assert_eq!(server_type_names(0), Vec::<&str>::new());
    assert_eq!(server_type_names(ServerType::ALL).len(), 32);
    assert_eq!(
        ServerType(0x0005_1003).names(),
        [
            "WORKSTATION",
            "SERVER",
            "NT",
            "POTENTIAL_BROWSER",
            "MASTER_BROWSER"
        ]
    );
    assert_eq!(server_type_names(0x0800_0000), ["UNDEFINED_0x08000000"]);
    let c = ElectionCriteria(0x1401_0FAF);
    assert_eq!(c.os_names(), ["NT_WORKSTATION"]);
    assert_eq!(
        c.role_names(),
        [
            "RUNNING_BACKUP",
            "DOMAIN_CONTROLLER",
            "RUNNING_MASTER",
            "PREFERRED_MASTER",
            "WINS_CLIENT",
            "PDC"
        ]
    );
    assert_eq!(election_os_names(0x01), ["WFW"]);
}

/// An LM-layout announcement as Samba's `send_lm_announcement` builds it.
fn lm_announcement(comment: &[u8]) -> Vec<u8> {
    let mut v = vec![0x01, 0x00, 0x03, 0x10, 0x01, 0x00, 0x06, 0x01, 0xd0, 0x02];
    v.extend_from_slice(b"FRED\0");
    v.extend_from_slice(comment);
    v
}

#[test]
fn lanman_lm_layout() {
    let bytes = lm_announcement(b"Samba 4.17\0");
    let f = lanman_round_trip(&bytes);
    assert_eq!(
        (f.command_code(), f.command()),
        (0x01, "LanmanAnnouncement")
    );
    let LanmanFrame::Announcement(a) = &f else {
        panic!("{f:?}")
    };
    assert_eq!(
        *a,
        LanmanAnnouncement {
            opcode: 1,
            server_type: 0x0001_1003,
            os_major: 6,
            os_minor: 1,
            periodicity_s: 720,
            server_name: "FRED".into(),
            comment: "Samba 4.17".into(),
            ..LanmanAnnouncement::default()
        }
    );
    // Long enough for the heuristic, but no signature at 30..31: still the LM layout.
    let long = lm_announcement(b"Samba 4.17.12-Debian file server\0");
    assert!(long.len() >= 33);
    assert!(matches!(
        lanman_round_trip(&long),
        LanmanFrame::Announcement(_)
    ));
    // Opcodes 0x0C and 0x0F in the LM layout; comment without NUL.
    let mut d = lm_announcement(b"WORKGROUP");
    d[0] = 0x0c;
    let f = lanman_round_trip(&d);
    assert_eq!(
        (f.command_code(), f.command()),
        (0x0c, "LanmanAnnouncement")
    );
    let LanmanFrame::Announcement(a) = &f else {
        panic!("{f:?}")
    };
    assert!(a.comment_unterminated);
    let mut l = lm_announcement(b"\0\x01");
    l[0] = 0x0f;
    assert_eq!(lanman_round_trip(&l).command_code(), 0x0f);
}

#[test]
fn lanman_heuristic_picks_browse_layout() {
    // MS-BRWS <9>: Windows servers send the §2.2.1 layout on LANMAN.
    let f = lanman_round_trip(&HOST_ANNOUNCEMENT);
    assert_eq!(f.command(), "HostAnnouncement");
    assert_eq!(
        f,
        LanmanFrame::Browser(BrowserFrame::parse(&HOST_ANNOUNCEMENT).unwrap())
    );
    // 32 bytes is too short for the heuristic: read as LM (and the name has no NUL there).
    assert!(!looks_like_browse_layout(&HOST_ANNOUNCEMENT[..32]));
    // Other opcodes are kept whole.
    let f = lanman_round_trip(&[0x02, 0x00, b'F', 0]);
    assert_eq!((f.command_code(), f.command()), (2, "Unknown"));
}

#[test]
fn lanman_malformed_and_emit_errors() {
    assert!(matches!(
        LanmanFrame::parse(&[]),
        Err(Error::Truncated {
            field: "opcode",
            ..
        })
    ));
    assert!(matches!(
        LanmanFrame::parse(&lm_announcement(b"")[..9]),
        Err(Error::Truncated {
            field: "Periodicity",
            offset: 8,
            ..
        })
    ));
    assert!(matches!(
        LanmanFrame::parse(&lm_announcement(b"")[..12]),
        Err(Error::Invalid {
            field: "ServerName",
            offset: 10,
            ..
        })
    ));
    // The MS-BRWS layout on \MAILSLOT\LANMAN with a 16-byte ServerName and no NUL: read
    // with the flag set, like on \MAILSLOT\BROWSE (docs/peers.md).
    let mut h = HOST_ANNOUNCEMENT;
    h[6..22].copy_from_slice(b"SIXTEENCHARSNAME");
    assert!(matches!(
        LanmanFrame::parse(&h),
        Ok(LanmanFrame::Browser(BrowserFrame::HostAnnouncement(a))) if a.server_name_unterminated
    ));
    assert_eq!(lanman_round_trip(&h).to_bytes().unwrap(), h);

    // LM values whose bytes 30..31 would be 55 AA cannot be told from the MS-BRWS layout.
    // The comment starts at offset 11 (empty server name), so its bytes 19..20 land there.
    let clash = LanmanFrame::Announcement(LanmanAnnouncement {
        comment: latin1(b"0123456789abcdefghi\x55\xaaz"),
        ..LanmanAnnouncement::default()
    });
    assert!(clash.to_bytes().is_err());
    let op = LanmanFrame::Announcement(LanmanAnnouncement {
        opcode: 0x02,
        ..LanmanAnnouncement::default()
    });
    assert!(op.to_bytes().is_err());
    // MS-BRWS frames on LANMAN must satisfy the heuristic to read back.
    let mut a = Announcement::default();
    assert!(
        LanmanFrame::Browser(BrowserFrame::HostAnnouncement(a.clone()))
            .to_bytes()
            .is_ok()
    );
    a.signature = 0;
    assert!(LanmanFrame::Browser(BrowserFrame::HostAnnouncement(a))
        .to_bytes()
        .is_err());
    let req = BrowserFrame::ResetStateRequest(ResetStateRequest::default());
    assert!(LanmanFrame::Browser(req).to_bytes().is_err());
    let unk = LanmanFrame::Unknown(UnknownFrame {
        opcode: 0x0f,
        data: vec![],
    });
    assert!(unk.to_bytes().is_err());
}

#[cfg(feature = "serde")]
#[test]
fn json_field_names() {
    #[derive(serde::Serialize)]
    struct Wrapped<'a> {
        command_code: u8,
        command: &'static str,
        #[serde(flatten)]
        frame: &'a BrowserFrame,
    }
    let f = BrowserFrame::parse(&HOST_ANNOUNCEMENT).unwrap();
    let v = serde_json::to_value(Wrapped {
        command_code: f.command_code(),
        command: f.command(),
        frame: &f,
    })
    .unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "command_code": 1, "command": "HostAnnouncement", "update_count": 0,
            "periodicity_ms": 720000, "server_name": "FRED", "os_major": 6, "os_minor": 1,
            "server_type": 0x11003, "browser_version_major": 15, "browser_version_minor": 1,
            "signature": 0xAA55, "comment": ""
        })
    );
    let mut odd = HOST_ANNOUNCEMENT[..32].to_vec();
    odd[12] = 7;
    let v = serde_json::to_value(BrowserFrame::parse(&odd).unwrap()).unwrap();
    assert_eq!(v["server_name_padding"], "0007");
    assert_eq!(v["comment_unterminated"], true);
    let v =
        serde_json::to_value(BrowserFrame::parse(&[0x0a, 1, 7, 0, 0, 0, b'A', 0, 0xff]).unwrap())
            .unwrap();
    assert_eq!(
        v,
        serde_json::json!({"count": 1, "token": 7, "servers": ["A"], "trailing": "ff"})
    );
    let v = serde_json::to_value(BrowserFrame::parse(&[0x42, 0xbe, 0xef]).unwrap()).unwrap();
    assert_eq!(v, serde_json::json!({"data": "beef"}));
    let v = serde_json::to_value(LanmanFrame::parse(&lm_announcement(b"\0")).unwrap()).unwrap();
    assert_eq!(v["periodicity_s"], 720);
    assert!(v.get("opcode").is_none());
}

/// Samba 3 (`push_string(p+5, name, 16, STR_ASCII|STR_TERMINATE)` with a 16-character
/// name: the conversion stops when the 16 bytes are full and writes no NUL) and the
/// SAMBA-LAB malformed case 23 (nmbd 4.17 accepts "MALF23XXXXXXXXXX"): a 16-byte name
/// field with no NUL. Read as a 16-byte name with the flag set, emitted back byte for byte.
#[test]
fn sixteen_byte_names_without_nul() {
    // HostAnnouncement, opcode 0x01: ServerName "MALF23XXXXXXXXXX" fills bytes 6..22.
    let mut h = HOST_ANNOUNCEMENT;
    h[6..22].copy_from_slice(b"MALF23XXXXXXXXXX");
    let f = BrowserFrame::parse(&h).unwrap();
    let BrowserFrame::HostAnnouncement(a) = &f else {
        panic!("{f:?}")
    };
    assert_eq!(a.server_name, "MALF23XXXXXXXXXX");
    assert!(a.server_name_unterminated);
    assert!(a.server_name_padding.is_empty());
    assert_eq!(f.to_bytes().unwrap(), h);
    f.check_sender_limits().unwrap();
    let v = serde_json::to_value(&f).unwrap();
    assert_eq!(v["server_name_unterminated"], true);
    // LocalMasterAnnouncement (0x0F) and DomainAnnouncement (0x0C) share the layout.
    let mut l = h;
    l[0] = 0x0f;
    let f = BrowserFrame::parse(&l).unwrap();
    assert!(matches!(&f, BrowserFrame::LocalMasterAnnouncement(a) if a.server_name_unterminated));
    assert_eq!(f.to_bytes().unwrap(), l);
    let mut d = h;
    d[0] = 0x0c;
    let f = BrowserFrame::parse(&d).unwrap();
    let BrowserFrame::DomainAnnouncement(g) = &f else {
        panic!("{f:?}")
    };
    assert_eq!(g.machine_group, "MALF23XXXXXXXXXX");
    assert!(g.machine_group_unterminated);
    assert_eq!(f.to_bytes().unwrap(), d);
    // A normal name does not carry the flag, and its JSON has no such key.
    let f = BrowserFrame::parse(&HOST_ANNOUNCEMENT).unwrap();
    assert!(matches!(&f, BrowserFrame::HostAnnouncement(a) if !a.server_name_unterminated));
    let v = serde_json::to_value(&f).unwrap();
    assert!(v.get("server_name_unterminated").is_none());
}

/// Emit refuses a flag that disagrees with the name (parse(emit(x)) == x).
#[test]
fn unterminated_flag_must_match_the_name() {
    let BrowserFrame::HostAnnouncement(mut a) = BrowserFrame::parse(&HOST_ANNOUNCEMENT).unwrap()
    else {
        panic!()
    };
    a.server_name_unterminated = true;
    assert!(BrowserFrame::HostAnnouncement(a.clone())
        .to_bytes()
        .is_err());
    a.server_name = "SIXTEENCHARSNAME".into();
    a.server_name_padding = vec![1];
    assert!(BrowserFrame::HostAnnouncement(a.clone())
        .to_bytes()
        .is_err());
    a.server_name_padding.clear();
    BrowserFrame::HostAnnouncement(a.clone())
        .to_bytes()
        .unwrap();
    a.server_name_unterminated = false;
    assert!(BrowserFrame::HostAnnouncement(a).to_bytes().is_err());
}

mod prop {
    use super::super::*;
    use crate::reader::latin1;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn text(max: usize) -> impl Strategy<Value = String> {
        vec(1u8..=255, 0..=max).prop_map(|b| latin1(&b))
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        vec(any::<u8>(), 0..=max)
    }

    /// A name for a 16-byte field, its padding (no trailing zero) and whether it fills
    /// all 16 bytes without a NUL (then without padding).
    fn fixed_name() -> impl Strategy<Value = (String, Vec<u8>, bool)> {
        (0usize..=16)
            .prop_flat_map(|n| {
                (
                    vec(1u8..=255, n),
                    vec(any::<u8>(), 0..=15usize.saturating_sub(n)),
                    any::<bool>(),
                )
            })
            .prop_map(|(name, mut pad, keep)| {
                if !keep || name.len() == 16 {
                    pad.clear();
                }
                while pad.last() == Some(&0) {
                    pad.pop();
                }
                let unterminated = name.len() == 16;
                (latin1(&name), pad, unterminated)
            })
    }

    /// The last string of an announcement, its flag, and the trailing bytes.
    fn last_string() -> impl Strategy<Value = (String, bool, Vec<u8>)> {
        (text(50), any::<bool>(), bytes(6)).prop_map(|(s, unterminated, t)| {
            let t = if unterminated { Vec::new() } else { t };
            (s, unterminated, t)
        })
    }

    fn announcement() -> impl Strategy<Value = Announcement> {
        (
            (
                any::<u8>(),
                any::<u32>(),
                fixed_name(),
                any::<u8>(),
                any::<u8>(),
            ),
            (
                any::<u32>(),
                any::<u8>(),
                any::<u8>(),
                any::<u16>(),
                last_string(),
            ),
        )
            .prop_map(
                |((uc, p, (n, pad, nu), maj, min), (st, bvj, bvn, sig, (c, cu, t)))| Announcement {
                    update_count: uc,
                    periodicity_ms: p,
                    server_name: n,
                    server_name_unterminated: nu,
                    server_name_padding: pad,
                    os_major: maj,
                    os_minor: min,
                    server_type: st,
                    browser_version_major: bvj,
                    browser_version_minor: bvn,
                    signature: sig,
                    comment: c,
                    comment_unterminated: cu,
                    trailing: t,
                },
            )
    }

    fn domain_announcement() -> impl Strategy<Value = DomainAnnouncement> {
        (announcement(), any::<bool>()).prop_map(|(a, flip)| DomainAnnouncement {
            update_count: a.update_count,
            periodicity_ms: a.periodicity_ms,
            machine_group: a.server_name,
            machine_group_unterminated: a.server_name_unterminated,
            machine_group_padding: a.server_name_padding,
            browser_config_version_major: a.os_major,
            browser_config_version_minor: if flip { a.os_minor } else { 0x0A },
            server_type: a.server_type,
            browser_version_major: a.browser_version_major,
            browser_version_minor: a.browser_version_minor,
            signature: a.signature,
            local_master_name: a.comment,
            local_master_name_unterminated: a.comment_unterminated,
            trailing: a.trailing,
        })
    }

    pub(super) fn frame() -> impl Strategy<Value = BrowserFrame> {
        prop_oneof![
            announcement().prop_map(BrowserFrame::HostAnnouncement),
            announcement().prop_map(BrowserFrame::LocalMasterAnnouncement),
            domain_announcement().prop_map(BrowserFrame::DomainAnnouncement),
            (any::<u8>(), text(20), bytes(6)).prop_map(|(reserved, response_name, trailing)| {
                BrowserFrame::AnnouncementRequest(AnnouncementRequest {
                    reserved,
                    response_name,
                    trailing,
                })
            }),
            (
                any::<u8>(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                text(20),
                bytes(6)
            )
                .prop_map(
                    |(election_version, criteria, uptime_ms, unused, server_name, trailing)| {
                        BrowserFrame::RequestElection(RequestElection {
                            election_version,
                            criteria,
                            uptime_ms,
                            unused,
                            server_name,
                            trailing,
                        })
                    }
                ),
            (any::<u8>(), any::<u32>(), bytes(6)).prop_map(|(count, token, trailing)| {
                BrowserFrame::GetBackupListRequest(GetBackupListRequest {
                    count,
                    token,
                    trailing,
                })
            }),
            (any::<u32>(), vec(text(16), 0..8), bytes(6)).prop_map(|(token, servers, trailing)| {
                BrowserFrame::GetBackupListResponse(GetBackupListResponse {
                    count: servers.len() as u8,
                    token,
                    servers,
                    trailing,
                })
            }),
            (text(20), bytes(6)).prop_map(|(browser_to_promote, trailing)| {
                BrowserFrame::BecomeBackup(BecomeBackup {
                    browser_to_promote,
                    trailing,
                })
            }),
            (text(20), bytes(6)).prop_map(|(master_name, trailing)| {
                BrowserFrame::MasterAnnouncement(MasterAnnouncement {
                    master_name,
                    trailing,
                })
            }),
            (any::<u8>(), bytes(6)).prop_map(|(reset_type, trailing)| {
                BrowserFrame::ResetStateRequest(ResetStateRequest {
                    reset_type,
                    trailing,
                })
            }),
            (
                any::<u8>().prop_filter("unknown opcode", |&o| opcode_name(o) == "Unknown"),
                bytes(40)
            )
                .prop_map(|(opcode, data)| BrowserFrame::Unknown(UnknownFrame { opcode, data })),
        ]
    }

    fn lanman_frame() -> impl Strategy<Value = LanmanFrame> {
        prop_oneof![
            (
                prop::sample::select(vec![0x01u8, 0x0C, 0x0F]),
                (
                    any::<u8>(),
                    any::<u32>(),
                    any::<u8>(),
                    any::<u8>(),
                    any::<u16>()
                ),
                text(20),
                last_string()
            )
                .prop_map(
                    |(opcode, (uc, st, maj, min, p), server_name, (c, cu, t))| {
                        LanmanFrame::Announcement(LanmanAnnouncement {
                            opcode,
                            update_count: uc,
                            server_type: st,
                            os_major: maj,
                            os_minor: min,
                            periodicity_s: p,
                            server_name,
                            comment: c,
                            comment_unterminated: cu,
                            trailing: t,
                        })
                    }
                ),
            // MS-BRWS announcements made to pass the heuristic, and any other frame.
            announcement().prop_map(|mut a| {
                a.signature = SIGNATURE;
                a.comment_unterminated = false;
                LanmanFrame::Browser(BrowserFrame::LocalMasterAnnouncement(a))
            }),
            frame().prop_map(LanmanFrame::Browser),
            (any::<u8>(), bytes(40))
                .prop_map(|(opcode, data)| LanmanFrame::Unknown(UnknownFrame { opcode, data })),
        ]
    }

    /// Byte strings that start with a likely opcode and often contain NULs.
    fn wire() -> impl Strategy<Value = Vec<u8>> {
        (
            prop_oneof![
                prop::sample::select(vec![1u8, 2, 8, 9, 10, 11, 12, 13, 14, 15]),
                any::<u8>()
            ],
            vec(
                prop_oneof![Just(0u8), Just(0x55), Just(0xaa), any::<u8>()],
                0..80,
            ),
        )
            .prop_map(|(op, mut rest)| {
                rest.insert(0, op);
                rest
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn emit_then_parse(f in frame()) {
            let bytes = f.to_bytes().unwrap();
            prop_assert_eq!(BrowserFrame::parse(&bytes).unwrap(), f);
        }

        #[test]
        fn parse_then_emit(data in wire()) {
            if let Ok(f) = BrowserFrame::parse(&data) {
                prop_assert_eq!(f.to_bytes().unwrap(), data);
            }
        }

        #[test]
        fn parse_arbitrary_bytes(data in vec(any::<u8>(), 0..120)) {
            if let Ok(f) = BrowserFrame::parse(&data) {
                prop_assert_eq!(f.to_bytes().unwrap(), data.clone());
            }
            if let Ok(f) = LanmanFrame::parse(&data) {
                prop_assert_eq!(f.to_bytes().unwrap(), data);
            }
        }

        #[test]
        fn lanman_emit_then_parse(f in lanman_frame()) {
            // Values that the §6.7 heuristic would read as the other layout fail to emit.
            if let Ok(bytes) = f.to_bytes() {
                prop_assert_eq!(LanmanFrame::parse(&bytes).unwrap(), f);
            }
        }

        #[test]
        fn lanman_parse_then_emit(data in wire()) {
            if let Ok(f) = LanmanFrame::parse(&data) {
                prop_assert_eq!(f.to_bytes().unwrap(), data);
            }
        }
    }
}
