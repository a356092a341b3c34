// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::rap::{self, ServerInfo};
use crate::smb::{Reply, TransAssembly};
use crate::{SmbStatus, SV_TYPE_ALL, SV_TYPE_DOMAIN_ENUM};

fn cfg() -> ServerConfig {
    ServerConfig {
        server_name: "RAPSRV".into(),
        workgroup: "TESTGROUP".into(),
        challenge: [1, 2, 3, 4, 5, 6, 7, 8],
    }
}

fn sent(step: Step) -> Vec<u8> {
    match step {
        Step::Send(b) => b,
        other => panic!("expected Send, got {other:?}"),
    }
}

/// The SMB reply in an NBSS packet.
fn smb_reply(b: &[u8]) -> Reply<'_> {
    assert_eq!(b[0], nbss::SESSION_MESSAGE);
    let (_, len) = nbss::parse_header(&b[..4]).unwrap();
    assert_eq!(len, b.len() - 4);
    smb::parse_reply(&b[4..]).unwrap()
}

fn status(b: &[u8]) -> Option<SmbStatus> {
    smb_reply(b).status
}

fn nt(e: SmbError) -> Option<SmbStatus> {
    Some(SmbStatus::Nt(e.nt))
}

fn ids(uid: u16, tid: u16) -> Ids {
    Ids {
        tid,
        pid: 7,
        uid,
        mid: 3,
    }
}

fn session_request() -> Vec<u8> {
    nbss::session_request("RAPSRV", "CLIENT")[4..].to_vec()
}

/// A session after SESSION REQUEST (and NEGOTIATE, SESSION SETUP, TREE CONNECT up to `stage`).
fn session(stage: usize) -> Session {
    let mut s = Session::new(cfg());
    assert_eq!(
        s.handle(nbss::SESSION_REQUEST, &session_request()),
        Step::Send(vec![0x82, 0, 0, 0])
    );
    let reqs = [
        smb::negotiate(ids(0, 0)),
        smb::session_setup(ids(0, 0), 1, 0),
        smb::tree_connect_ipc(ids(UID, 0), "RAPSRV"),
    ];
    for r in reqs.iter().take(stage) {
        let b = sent(s.handle(nbss::SESSION_MESSAGE, r));
        assert_eq!(status(&b), None);
    }
    s
}

fn msg(s: &mut Session, m: &[u8]) -> Step {
    s.handle(nbss::SESSION_MESSAGE, m)
}

fn trans(s: &mut Session, params: &[u8]) -> Step {
    msg(
        s,
        &smb::transaction_lanman(ids(UID, TID), params, 8, 0xFFFF),
    )
}

/// The RAP parameters and data of a TRANSACTION reply.
fn rap_parts(b: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let r = smb_reply(b);
    assert_eq!(r.status, None);
    let mut asm = TransAssembly::default();
    assert!(asm.add(&smb::parse_trans(&r).unwrap()).unwrap());
    asm.finish()
}

fn rap_status(b: &[u8]) -> u16 {
    let (p, _) = rap_parts(b);
    u16::from_le_bytes([p[0], p[1]])
}

#[test]
fn malformed_session_request_is_refused_and_closed() {
    let mut s = Session::new(cfg());
    let mut bad = session_request();
    bad[5] = b'Z'; // not a half-byte character
    assert_eq!(
        s.handle(nbss::SESSION_REQUEST, &bad),
        Step::Close(vec![0x83, 0, 0, 1, 0x8F])
    );
    let mut s = Session::new(cfg());
    let short = &session_request()[..40];
    assert!(matches!(
        s.handle(nbss::SESSION_REQUEST, short),
        Step::Close(_)
    ));
    let mut s = Session::new(cfg());
    let mut long = session_request();
    long.push(0);
    assert!(matches!(
        s.handle(nbss::SESSION_REQUEST, &long),
        Step::Close(_)
    ));
    assert_eq!(s.counters.errors, 1);
}

#[test]
fn any_called_name_is_accepted() {
    for called in ["*SMBSERVER", "OTHERNAME", "RAPSRV"] {
        let mut s = Session::new(cfg());
        let r = nbss::session_request(called, "CLIENT");
        assert_eq!(
            s.handle(nbss::SESSION_REQUEST, &r[4..]),
            Step::Send(vec![0x82, 0, 0, 0])
        );
    }
}

#[test]
fn smb_before_session_request_closes() {
    let mut s = Session::new(cfg());
    assert_eq!(
        msg(&mut s, &smb::negotiate(ids(0, 0))),
        Step::Close(Vec::new())
    );
}

#[test]
fn second_session_request_and_response_types_close() {
    let mut s = session(0);
    assert!(matches!(
        s.handle(nbss::SESSION_REQUEST, &session_request()),
        Step::Close(_)
    ));
    let mut s = session(0);
    assert!(matches!(
        s.handle(nbss::POSITIVE_RESPONSE, &[]),
        Step::Close(_)
    ));
}

#[test]
fn keepalives_are_ignored() {
    let mut s = Session::new(cfg());
    assert_eq!(s.handle(nbss::KEEP_ALIVE, &[]), Step::Nothing);
    let mut s = session(3);
    assert_eq!(s.handle(nbss::KEEP_ALIVE, &[]), Step::Nothing);
}

#[test]
fn non_smb1_and_short_messages_close() {
    for m in [
        &b"GET / HTTP/1.0\r\n\r\n"[..],
        b"\xFESMB\x40\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        b"\xFFSMBr",
        b"",
    ] {
        let mut s = session(0);
        assert_eq!(msg(&mut s, m), Step::Close(Vec::new()), "{m:?}");
    }
}

#[test]
fn oversized_packet_closes() {
    let mut s = session(3);
    let big = vec![0u8; MAX_REQUEST + 1];
    assert_eq!(
        s.handle(nbss::SESSION_MESSAGE, &big),
        Step::Close(Vec::new())
    );
}

#[test]
fn truncated_smb_gets_invalid_parameter() {
    let mut s = session(0);
    let mut m = smb::negotiate(ids(0, 0));
    m.truncate(m.len() - 3); // ByteCount beyond the message
    let b = sent(msg(&mut s, &m));
    assert_eq!(status(&b), nt(INVALID_PARAMETER));
    let mut m = smb::negotiate(ids(0, 0));
    m[HEADER_LEN] = 200; // WordCount beyond the message
    let b = sent(msg(&mut s, &m));
    assert_eq!(status(&b), nt(INVALID_PARAMETER));
    let m = &smb::negotiate(ids(0, 0))[..HEADER_LEN + 1];
    let b = sent(msg(&mut s, m));
    assert_eq!(status(&b), nt(INVALID_PARAMETER));
    assert_eq!(s.counters.errors, 3);
}

#[test]
fn reply_flag_from_client_gets_invalid_parameter() {
    let mut s = session(0);
    let mut m = smb::negotiate(ids(0, 0));
    m[9] |= 0x80;
    let b = sent(msg(&mut s, &m));
    assert_eq!(status(&b), nt(INVALID_PARAMETER));
}

#[test]
fn commands_before_negotiate_get_invalid_smb() {
    let mut s = session(0);
    let b = sent(msg(&mut s, &smb::session_setup(ids(0, 0), 1, 0)));
    assert_eq!(status(&b), nt(INVALID_SMB));
    let b = sent(msg(
        &mut s,
        &smb::request(SMB_COM_ECHO, ids(0, 0), &[1, 0], b"x"),
    ));
    assert_eq!(status(&b), nt(INVALID_SMB));
}

#[test]
fn negotiate_picks_nt_lm_012_among_others() {
    let mut s = session(0);
    let m = smb::request(
        smb::SMB_COM_NEGOTIATE,
        ids(0, 0),
        &[],
        b"\x02PC NETWORK PROGRAM 1.0\0\x02LANMAN1.0\0\x02NT LM 0.12\0\x02SMB 2.002\0",
    );
    let b = sent(msg(&mut s, &m));
    let r = smb_reply(&b);
    let n = smb::parse_negotiate(&r).unwrap_err();
    // Our client only offers one dialect: index 2 is "not accepted" to it, but right here.
    assert!(n.to_string().contains("0x0002"), "{n}");
    assert_eq!(&r.words[..2], &[2, 0]);
    assert_eq!(r.words.len(), 34);
    assert_eq!(r.words[2], 3);
    assert_eq!(r.words[33], 8);
    assert_eq!(&r.bytes[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
    // DomainName, ServerName in UTF-16LE.
    let rest: Vec<u16> = r.bytes[8..]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(String::from_utf16_lossy(&rest), "TESTGROUP\0RAPSRV\0");
}

#[test]
fn negotiate_without_our_dialect_gets_index_ffff() {
    let mut s = session(0);
    let m = smb::request(smb::SMB_COM_NEGOTIATE, ids(0, 0), &[], b"\x02LANMAN1.0\0");
    let r = sent(msg(&mut s, &m));
    assert_eq!(smb_reply(&r).words, &[0xFF, 0xFF]);
    // still not negotiated
    let b = sent(msg(&mut s, &smb::session_setup(ids(0, 0), 1, 0)));
    assert_eq!(status(&b), nt(INVALID_SMB));
}

#[test]
fn malformed_dialect_list_gets_invalid_parameter() {
    for bytes in [
        &b""[..],
        b"\x02NT LM 0.12",
        b"\x02NT LM 0.12\0junk",
        b"\x01NT LM 0.12\0",
    ] {
        let mut s = session(0);
        let m = smb::request(smb::SMB_COM_NEGOTIATE, ids(0, 0), &[], bytes);
        let b = sent(msg(&mut s, &m));
        assert_eq!(status(&b), nt(INVALID_PARAMETER), "{bytes:?}");
    }
}

#[test]
fn second_negotiate_gets_invalid_smb() {
    let mut s = session(1);
    let b = sent(msg(&mut s, &smb::negotiate(ids(0, 0))));
    assert_eq!(status(&b), nt(INVALID_SMB));
}

#[test]
fn session_setup_gives_a_guest_uid_and_the_workgroup() {
    let mut s = session(1);
    let b = sent(msg(&mut s, &smb::session_setup(ids(0, 0), 1, 0)));
    let r = smb_reply(&b);
    assert_eq!(r.status, None);
    assert_eq!(r.uid, UID);
    assert_eq!(r.words, &[0xFF, 0, 0, 0, 1, 0]);
    assert_eq!(r.bytes, b"Unix\0nbdgm\0TESTGROUP\0");
}

#[test]
fn chained_or_short_session_setup_is_refused() {
    let mut s = session(1);
    let mut m = smb::session_setup(ids(0, 0), 1, 0);
    m[HEADER_LEN + 1] = smb::SMB_COM_TREE_CONNECT_ANDX;
    let b = sent(msg(&mut s, &m));
    assert_eq!(status(&b), nt(NOT_SUPPORTED));
    let m = smb::request(smb::SMB_COM_SESSION_SETUP_ANDX, ids(0, 0), &[0xFF, 0], &[]);
    let b = sent(msg(&mut s, &m));
    assert_eq!(status(&b), nt(INVALID_PARAMETER));
}

#[test]
fn tree_connect_without_session_gets_bad_uid() {
    let mut s = session(1);
    let b = sent(msg(&mut s, &smb::tree_connect_ipc(ids(0, 0), "RAPSRV")));
    assert_eq!(status(&b), nt(BAD_UID));
    let mut s = session(2);
    let b = sent(msg(
        &mut s,
        &smb::tree_connect_ipc(ids(UID + 1, 0), "RAPSRV"),
    ));
    assert_eq!(status(&b), nt(BAD_UID));
}

fn tree_connect(path: &[u8], unicode: bool) -> Vec<u8> {
    let mut b = vec![0u8]; // password
    if unicode {
        // bytes start at 32 + 1 + 8 + 2 + 1 (password) = 44: already even
        for c in std::str::from_utf8(path).unwrap().encode_utf16() {
            b.extend_from_slice(&c.to_le_bytes());
        }
        b.extend_from_slice(&[0, 0]);
    } else {
        b.extend_from_slice(path);
        b.push(0);
    }
    b.extend_from_slice(b"?????\0");
    let mut m = smb::request(
        smb::SMB_COM_TREE_CONNECT_ANDX,
        ids(UID, 0),
        &[0xFF, 0, 0, 0, 0, 0, 1, 0],
        &b,
    );
    if unicode {
        m[11] |= 0x80;
    }
    m
}

#[test]
fn tree_connect_only_to_ipc() {
    for (path, unicode, ok) in [
        (&b"\\\\RAPSRV\\IPC$"[..], false, true),
        (b"\\\\127.0.0.1\\ipc$", false, true),
        (b"\\\\RAPSRV\\IPC$", true, true),
        (b"\\\\RAPSRV\\C$", false, false),
        (b"\\\\RAPSRV\\public", true, false),
        (b"\\\\RAPSRV\\IPC$\\x", false, false),
    ] {
        let mut s = session(2);
        let b = sent(msg(&mut s, &tree_connect(path, unicode)));
        let r = smb_reply(&b);
        if ok {
            assert_eq!(r.status, None, "{path:?}");
            assert_eq!(r.tid, TID);
            assert_eq!(r.bytes, b"IPC\0\0");
        } else {
            assert_eq!(r.status, nt(BAD_NETWORK_NAME), "{path:?}");
        }
    }
}

#[test]
fn malformed_tree_connect_gets_invalid_parameter() {
    let mut s = session(2);
    // PasswordLength beyond the bytes
    let mut m = tree_connect(b"\\\\X\\IPC$", false);
    m[HEADER_LEN + 7] = 200;
    let b = sent(msg(&mut s, &m));
    assert_eq!(status(&b), nt(INVALID_PARAMETER));
    // path without NUL
    let m = smb::request(
        smb::SMB_COM_TREE_CONNECT_ANDX,
        ids(UID, 0),
        &[0xFF, 0, 0, 0, 0, 0, 0, 0],
        b"\\\\X\\IPC$",
    );
    let b = sent(msg(&mut s, &m));
    assert_eq!(status(&b), nt(INVALID_PARAMETER));
    // too few words
    let m = smb::request(smb::SMB_COM_TREE_CONNECT_ANDX, ids(UID, 0), &[0xFF, 0], b"");
    let b = sent(msg(&mut s, &m));
    assert_eq!(status(&b), nt(INVALID_PARAMETER));
    // chained
    let mut m = tree_connect(b"\\\\X\\IPC$", false);
    m[HEADER_LEN + 1] = smb::SMB_COM_TRANSACTION;
    let b = sent(msg(&mut s, &m));
    assert_eq!(status(&b), nt(NOT_SUPPORTED));
}

#[test]
fn transaction_without_tree_gets_bad_tid() {
    let mut s = session(2);
    let p = rap::request_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP");
    let b = sent(trans(&mut s, &p));
    assert_eq!(status(&b), nt(BAD_TID));
}

#[test]
fn transaction_on_another_pipe_is_not_supported() {
    let mut s = session(3);
    let p = rap::request_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP");
    let mut m = smb::transaction_lanman(ids(UID, TID), &p, 8, 0xFFFF);
    let at = HEADER_LEN + 1 + 28 + 2 + 7; // "\PIPE\LANMAN" -> "\PIPE\SRVSVC"
    m[at..at + 6].copy_from_slice(b"SRVSVC");
    let b = sent(msg(&mut s, &m));
    assert_eq!(status(&b), nt(NOT_SUPPORTED));
}

#[test]
fn multi_piece_transaction_is_not_supported() {
    let mut s = session(3);
    let p = rap::request_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP");
    let mut m = smb::transaction_lanman(ids(UID, TID), &p, 8, 0xFFFF);
    m[HEADER_LEN + 1] = 200; // TotalParameterCount > ParameterCount
    let b = sent(msg(&mut s, &m));
    assert_eq!(status(&b), nt(NOT_SUPPORTED));
}

#[test]
fn transaction_offsets_out_of_range_get_invalid_parameter() {
    let p = rap::request_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP");
    let at = HEADER_LEN + 1 + 20; // ParameterOffset
    for off in [0u16, 10, 0xFFF0] {
        let mut s = session(3);
        let mut m = smb::transaction_lanman(ids(UID, TID), &p, 8, 0xFFFF);
        m[at..at + 2].copy_from_slice(&off.to_le_bytes());
        let b = sent(msg(&mut s, &m));
        assert_eq!(status(&b), nt(INVALID_PARAMETER), "offset {off}");
    }
    // SetupCount disagreeing with WordCount
    let mut s = session(3);
    let mut m = smb::transaction_lanman(ids(UID, TID), &p, 8, 0xFFFF);
    m[HEADER_LEN + 1 + 26] = 3;
    let b = sent(msg(&mut s, &m));
    assert_eq!(status(&b), nt(INVALID_PARAMETER));
    // too few words
    let m = smb::request(smb::SMB_COM_TRANSACTION, ids(UID, TID), &[0; 10], &[]);
    let b = sent(msg(&mut s, &m));
    assert_eq!(status(&b), nt(INVALID_PARAMETER));
}

#[test]
fn other_rap_calls_get_rap_errors() {
    let mut base = rap::request_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP");
    let cases: Vec<(Vec<u8>, u16)> = vec![
        // NetShareEnum (opcode 0), as smbclient -L asks
        (
            b"\0\0WrLeh\0B13BWz\0\x01\0\xff\xff".to_vec(),
            ERROR_NOT_SUPPORTED,
        ),
        // wrong parameter descriptor
        (
            {
                let mut p = base.clone();
                p[2..9].copy_from_slice(b"WrLehDZ");
                p
            },
            ERROR_INVALID_PARAMETER,
        ),
        // level 2
        (
            {
                let mut p = base.clone();
                p[18] = 2;
                p
            },
            ERROR_INVALID_LEVEL,
        ),
        // level 0 with the level-1 descriptor
        (
            {
                let mut p = base.clone();
                p[18] = 0;
                p
            },
            ERROR_INVALID_LEVEL,
        ),
        // truncated before the workgroup's NUL
        (
            {
                base.pop();
                base.clone()
            },
            ERROR_INVALID_PARAMETER,
        ),
        (vec![104], ERROR_INVALID_PARAMETER),
        (vec![], ERROR_INVALID_PARAMETER),
        // NetServerEnum3 whose resume name has no NUL
        (
            {
                let mut p = enum3_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP", "ALPHA");
                p.pop();
                p
            },
            ERROR_INVALID_PARAMETER,
        ),
    ];
    for (p, want) in cases {
        let mut s = session(3);
        let b = sent(trans(&mut s, &p));
        assert_eq!(rap_status(&b), want, "{p:?}");
        assert_eq!(s.counters.errors, 1);
    }
}

#[test]
fn other_commands_are_not_supported() {
    // NT_CREATE_ANDX, OPEN_ANDX, WRITE, TRANSACTION2, NT_TRANSACT, CLOSE
    for cmd in [0xA2u8, 0x2D, 0x0B, 0x32, 0xA0, 0x04] {
        let mut s = session(3);
        let m = smb::request(cmd, ids(UID, TID), &[0xFF, 0], b"\\srvsvc\0");
        let b = sent(msg(&mut s, &m));
        assert_eq!(status(&b), nt(NOT_SUPPORTED), "{cmd:#x}");
    }
}

#[test]
fn dos_errors_without_nt_status() {
    let mut s = session(3);
    let mut m = smb::request(0xA2, ids(UID, TID), &[], &[]);
    m[11] &= !0x40;
    let b = sent(msg(&mut s, &m));
    assert_eq!(
        status(&b),
        Some(SmbStatus::Dos {
            class: 2,
            code: 0xFFFF
        })
    );
}

#[test]
fn echo_logoff_and_tree_disconnect_are_answered() {
    let mut s = session(3);
    let b = sent(msg(
        &mut s,
        &smb::request(SMB_COM_ECHO, ids(UID, TID), &[1, 0], b"ping"),
    ));
    let r = smb_reply(&b);
    assert_eq!(
        (r.status, r.words, r.bytes),
        (None, &[1u8, 0][..], &b"ping"[..])
    );
    assert_eq!(
        msg(
            &mut s,
            &smb::request(SMB_COM_ECHO, ids(UID, TID), &[0, 0], b"x")
        ),
        Step::Nothing
    );
    let b = sent(msg(
        &mut s,
        &smb::request(SMB_COM_TREE_DISCONNECT, ids(UID, TID), &[], &[]),
    ));
    assert_eq!(status(&b), None);
    let p = rap::request_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP");
    assert_eq!(status(&sent(trans(&mut s, &p))), nt(BAD_TID));
    let b = sent(msg(
        &mut s,
        &smb::request(SMB_COM_LOGOFF_ANDX, ids(UID, 0), &[0xFF, 0, 0, 0], &[]),
    ));
    assert_eq!(status(&b), None);
    let b = sent(msg(&mut s, &smb::tree_connect_ipc(ids(UID, 0), "RAPSRV")));
    assert_eq!(status(&b), nt(BAD_UID));
}

#[test]
fn largest_echo_stays_within_max_reply() {
    let mut s = session(3);
    // A request of exactly MAX_REQUEST bytes: 32 + 1 + 2 + 2 + data.
    let data = vec![0x5Au8; MAX_REQUEST - HEADER_LEN - 5];
    let m = smb::request(SMB_COM_ECHO, ids(UID, TID), &[1, 0], &data);
    assert_eq!(m.len(), MAX_REQUEST);
    let b = sent(msg(&mut s, &m));
    assert_eq!(b.len(), MAX_REPLY);
    assert_eq!(smb_reply(&b).bytes.len(), data.len());
}

#[test]
fn request_count_is_capped() {
    let mut s = session(3);
    let echo = smb::request(SMB_COM_ECHO, ids(UID, TID), &[1, 0], b"");
    for _ in 3..MAX_REQUESTS {
        assert!(matches!(msg(&mut s, &echo), Step::Send(_)));
    }
    assert_eq!(msg(&mut s, &echo), Step::Close(Vec::new()));
}

fn entry(name: &str, wg: &str, ty: u32, comment: &str, local: bool) -> ListEntry {
    ListEntry {
        name: name.into(),
        workgroup: wg.into(),
        os_major: 6,
        os_minor: 1,
        server_type: ty,
        comment: comment.into(),
        local,
    }
}

fn list() -> ListSnapshot {
    ListSnapshot {
        servers: vec![
            entry("ZED", "TESTGROUP", 0x0000_1003, "last", true),
            entry("alpha", "TESTGROUP", 0x0000_1003, "first", true),
            entry("PRINTS", "TESTGROUP", 0x0000_0200, "print only", true),
            entry("FARAWAY", "TESTGROUP", 0x0000_1003, "synced", false),
            entry("OTHERWG", "OTHERGROUP", 0x0000_1003, "", true),
        ],
        workgroups: vec![
            entry("TESTGROUP", "", 0x8000_1000, "RAPSRV", true),
            entry("OTHERGROUP", "", 0x8000_1000, "OTHERMASTER", false),
        ],
    }
}

/// Run one NetServerEnum2/3 with `params` through a session; parsed with the client's
/// parser.
fn enumerate(params: &[u8], max_data: u16) -> (u16, u16, Vec<ServerInfo>) {
    let mut s = session(3);
    let m = smb::transaction_lanman(ids(UID, TID), params, 8, max_data);
    let Step::Enum(req) = msg(&mut s, &m) else {
        panic!("no Enum step")
    };
    assert_eq!(s.counters.enums, 1);
    let b = s.answer(&req, &list());
    assert!(b.len() <= MAX_REPLY);
    let (p, d) = rap_parts(&b);
    let avail = u16::from_le_bytes([p[6], p[7]]);
    let v = rap::parse_reply(&p, &d, 1000).unwrap();
    (u16::from_le_bytes([p[0], p[1]]), avail, v)
}

fn names(v: &[ServerInfo]) -> Vec<&str> {
    v.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn enum2_filters_by_workgroup_type_and_sorts() {
    let (st, avail, v) = enumerate(
        &rap::request_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP"),
        0xFFFF,
    );
    assert_eq!((st, avail), (0, 4));
    assert_eq!(names(&v), ["alpha", "FARAWAY", "PRINTS", "ZED"]);
    assert_eq!(v[0].comment, "first");
    assert_eq!(
        (v[0].os_major, v[0].os_minor, v[0].server_type),
        (6, 1, 0x1003)
    );
    // empty workgroup: ours
    let (_, _, v2) = enumerate(&rap::request_params(0xFFFF, SV_TYPE_ALL, ""), 0xFFFF);
    assert_eq!(v2, v);
    // SV_TYPE_PRINTQ_SERVER only
    let (_, _, v) = enumerate(&rap::request_params(0xFFFF, 0x200, "testgroup"), 0xFFFF);
    assert_eq!(names(&v), ["PRINTS"]);
    let (_, _, v) = enumerate(
        &rap::request_params(0xFFFF, SV_TYPE_ALL, "OTHERGROUP"),
        0xFFFF,
    );
    assert_eq!(names(&v), ["OTHERWG"]);
    let (st, _, v) = enumerate(&rap::request_params(0xFFFF, SV_TYPE_ALL, "NOSUCH"), 0xFFFF);
    assert_eq!((st, v.len()), (0, 0));
}

#[test]
fn domain_enum_lists_workgroups_with_their_masters() {
    let (_, _, v) = enumerate(
        &rap::request_params(0xFFFF, SV_TYPE_DOMAIN_ENUM, "X"),
        0xFFFF,
    );
    assert_eq!(names(&v), ["OTHERGROUP", "TESTGROUP"]);
    assert_eq!(v[1].comment, "RAPSRV");
}

#[test]
fn local_list_only_skips_synced_entries() {
    let (_, _, v) = enumerate(
        &rap::request_params(0xFFFF, SV_TYPE_LOCAL_LIST_ONLY, "TESTGROUP"),
        0xFFFF,
    );
    assert_eq!(names(&v), ["alpha", "PRINTS", "ZED"]);
    let (_, _, v) = enumerate(
        &rap::request_params(
            0xFFFF,
            SV_TYPE_LOCAL_LIST_ONLY | SV_TYPE_DOMAIN_ENUM,
            "TESTGROUP",
        ),
        0xFFFF,
    );
    assert_eq!(names(&v), ["TESTGROUP"]);
}

#[test]
fn small_buffers_get_error_more_data_with_what_fits() {
    // Two level-1 entries (52) + "first\0" + "synced\0" = 65 bytes fit in 66, a third not.
    let (st, avail, v) = enumerate(&rap::request_params(66, SV_TYPE_ALL, "TESTGROUP"), 0xFFFF);
    assert_eq!((st, avail), (rap::ERROR_MORE_DATA, 4));
    assert_eq!(names(&v), ["alpha", "FARAWAY"]);
    // MaxDataCount of the TRANSACTION bounds it too
    let (st, _, v) = enumerate(&rap::request_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP"), 40);
    assert_eq!((st, v.len()), (rap::ERROR_MORE_DATA, 1));
    let (st, _, v) = enumerate(&rap::request_params(10, SV_TYPE_ALL, "TESTGROUP"), 0xFFFF);
    assert_eq!((st, v.len()), (rap::ERROR_MORE_DATA, 0));
}

fn enum3_params(recv: u16, ty: u32, wg: &str, from: &str) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&NET_SERVER_ENUM3.to_le_bytes());
    p.extend_from_slice(b"WrLehDzz\0B16BBDz\0");
    p.extend_from_slice(&1u16.to_le_bytes());
    p.extend_from_slice(&recv.to_le_bytes());
    p.extend_from_slice(&ty.to_le_bytes());
    p.extend_from_slice(wg.as_bytes());
    p.push(0);
    p.extend_from_slice(from.as_bytes());
    p.push(0);
    p
}

#[test]
fn enum3_resumes_from_the_last_name_included() {
    let (st, avail, v) = enumerate(
        &enum3_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP", "FARAWAY"),
        0xFFFF,
    );
    assert_eq!((st, avail), (0, 3));
    assert_eq!(names(&v), ["FARAWAY", "PRINTS", "ZED"]);
    // a name that is gone: from the next one
    let (_, _, v) = enumerate(&enum3_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP", "b"), 0xFFFF);
    assert_eq!(names(&v), ["FARAWAY", "PRINTS", "ZED"]);
    let (_, _, v) = enumerate(&enum3_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP", ""), 0xFFFF);
    assert_eq!(v.len(), 4);
}

#[test]
fn level0_gives_names_only() {
    let mut p = rap::request_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP");
    // "B16BBDz" -> "B16": rebuild
    let mut q = p[..10].to_vec();
    q.extend_from_slice(b"B16\0");
    q.extend_from_slice(&0u16.to_le_bytes());
    q.extend_from_slice(&p[20..]);
    p = q;
    let mut s = session(3);
    let Step::Enum(req) = trans(&mut s, &p) else {
        panic!("no Enum")
    };
    let (par, d) = rap_parts(&s.answer(&req, &list()));
    assert_eq!(&par[..6], &[0, 0, 0, 0, 4, 0]);
    assert_eq!(d.len(), 4 * 16);
    assert_eq!(&d[..6], b"alpha\0");
}

#[test]
fn names_and_comments_are_cut_and_latin1() {
    let mut l = list();
    l.servers = vec![entry(
        "ABCDEFGHIJKLMNOPQRST",
        "TESTGROUP",
        1,
        &format!("caf\u{e9} \u{263a}{}", "x".repeat(100)),
        true,
    )];
    let mut s = session(3);
    let Step::Enum(req) = trans(
        &mut s,
        &rap::request_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP"),
    ) else {
        panic!("no Enum")
    };
    let (p, d) = rap_parts(&s.answer(&req, &l));
    assert_eq!(d[15], 0, "name NUL-terminated in its 16 bytes");
    let v = rap::parse_reply(&p, &d, 10).unwrap();
    assert_eq!(v[0].name, "ABCDEFGHIJKLMNO");
    assert_eq!(v[0].comment.chars().count(), rap::MAX_COMMENT_LEN);
    assert!(v[0].comment.starts_with("caf\u{e9} ?x"), "{}", v[0].comment);
}
