//! Tests of the NETLOGON messages: primary query/response, SAM logon request and
//! NT 4.0/V5 responses, unknown opcodes, JSON names, and parse/emit properties.

use super::ex_tests::ex_built;
use super::fields::sid_string;
use super::*;
use crate::reader::put_utf16z;
use proptest::prelude::*;
use std::net::Ipv4Addr;

pub(super) const GETDC: &[u8] = b"\\MAILSLOT\\NET\\GETDC873\0";

pub(super) fn u16z(s: &str) -> Vec<u8> {
    let mut v = Vec::new();
    put_utf16z(&mut v, s);
    v
}

/// Parse, check that emit gives the same bytes back, return the message.
pub(super) fn exact(bytes: &[u8]) -> NetlogonMessage {
    let m = NetlogonMessage::parse(bytes).unwrap();
    assert_eq!(m.to_bytes().unwrap(), bytes, "{m:?}");
    m
}

pub(super) fn field_of(e: Error) -> &'static str {
    match e {
        Error::Truncated { field, .. }
        | Error::Invalid { field, .. }
        | Error::Emit { field, .. } => field,
    }
}

// --- LOGON_PRIMARY_QUERY --------------------------------------------------------------

#[test]
fn primary_query_nt_form_with_pad() {
    // As Samba's NBT client sends it: NtVersion 1, both tokens 0xFFFF. "WKS01\0" and the
    // 23-byte mailslot name end at offset 31, so one pad byte precedes the UTF-16 name.
    let v = [
        &[0x07, 0x00][..],
        b"WKS01\0",
        GETDC,
        &[0],
        &u16z("WKS01"),
        &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
    ]
    .concat();
    assert_eq!(v.len(), 52);
    let m = exact(&v);
    assert_eq!(m.opcode(), 0x0007);
    assert_eq!(m.command(), "LOGON_PRIMARY_QUERY");
    let NetlogonMessage::PrimaryQuery(q) = &m else {
        panic!()
    };
    assert_eq!(q, &PrimaryQuery::new("WKS01", "\\MAILSLOT\\NET\\GETDC873"));
    assert_eq!(
        NetlogonMessage::PrimaryQuery(PrimaryQuery::new("WKS01", "\\MAILSLOT\\NET\\GETDC873"))
            .to_bytes()
            .unwrap(),
        v
    );
}

#[test]
fn primary_query_without_pad() {
    let v = [
        &[0x07, 0x00][..],
        b"WKS1\0",
        GETDC,
        &u16z("WKS1"),
        &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
    ]
    .concat();
    let NetlogonMessage::PrimaryQuery(q) = exact(&v) else {
        panic!()
    };
    assert_eq!(q.unicode_computer_name.as_deref(), Some("WKS1"));
    assert_eq!(q.nt_version, Some(1));
}

#[test]
fn primary_query_lm20_form() {
    // LAN Manager 2.0 / Windows 9x: only the Lm20Token after the mailslot name.
    let v = [
        &[0x07, 0x00][..],
        b"WFW1\0",
        b"\\MAILSLOT\\TEMP\\NETLOGON\0",
        &[0xff, 0xff],
    ]
    .concat();
    let NetlogonMessage::PrimaryQuery(q) = exact(&v) else {
        panic!()
    };
    assert_eq!(q.computer_name, "WFW1");
    assert_eq!(q.mailslot_name, "\\MAILSLOT\\TEMP\\NETLOGON");
    assert_eq!(
        (
            q.unicode_computer_name.as_deref(),
            q.nt_version,
            q.lmnt_token
        ),
        (None, None, None)
    );
    assert_eq!(q.lm20_token, Some(0xffff));
    // Nothing at all after the mailslot name, and one stray byte.
    let bare = [
        &[0x07, 0x00][..],
        b"WFW1\0",
        b"\\MAILSLOT\\TEMP\\NETLOGON\0",
    ]
    .concat();
    let NetlogonMessage::PrimaryQuery(q) = exact(&bare) else {
        panic!()
    };
    assert_eq!((q.lm20_token, q.trailing.len()), (None, 0));
    let NetlogonMessage::PrimaryQuery(q) = exact(&[&bare[..], &[0x55]].concat()) else {
        panic!()
    };
    assert_eq!(q.trailing, [0x55]);
}

#[test]
fn primary_query_short_tails_round_trip() {
    let head = [&[0x07, 0x00][..], b"WKS1\0", GETDC, &u16z("WKS1")].concat();
    // Cut anywhere inside NtVersion/LmNtToken/Lm20Token, then add trailing bytes.
    let tail = [0x0b, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xee, 0xdd];
    for cut in 0..=tail.len() {
        let v = [&head[..], &tail[..cut]].concat();
        let NetlogonMessage::PrimaryQuery(q) = exact(&v) else {
            panic!()
        };
        assert_eq!(q.nt_version.is_some(), cut >= 4, "cut {cut}");
        assert_eq!(q.lmnt_token.is_some(), cut >= 6, "cut {cut}");
        assert_eq!(q.lm20_token.is_some(), cut >= 8, "cut {cut}");
        let consumed = [0, 4, 6, 8]
            .into_iter()
            .filter(|&n| n <= cut)
            .max()
            .unwrap();
        assert_eq!(q.trailing, &tail[consumed..cut], "cut {cut}");
    }
}

#[test]
fn primary_query_errors() {
    let e = NetlogonMessage::parse(&[0x07, 0x00, b'W', b'K']).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                field: "ComputerName",
                offset: 2,
                ..
            }
        ),
        "{e:?}"
    );
    let e = NetlogonMessage::parse(&[0x07, 0x00, b'W', 0, b'\\', b'M']).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                field: "MailslotName",
                offset: 4,
                ..
            }
        ),
        "{e:?}"
    );
    // NT form whose UTF-16 name never ends.
    let v = [&[0x07, 0x00][..], b"WKS1\0", GETDC, &[b'W', 0, b'K', 0]].concat();
    assert_eq!(
        field_of(NetlogonMessage::parse(&v).unwrap_err()),
        "UnicodeComputerName"
    );
}

#[test]
fn primary_query_emit_checks() {
    let mut q = PrimaryQuery::new("WKS1", "\\MAILSLOT\\NET\\GETDC873");
    q.nt_version = None;
    assert_eq!(
        field_of(
            NetlogonMessage::PrimaryQuery(q.clone())
                .to_bytes()
                .unwrap_err()
        ),
        "NtVersion"
    );
    q.unicode_computer_name = None;
    q.lmnt_token = None;
    q.nt_version = Some(1);
    assert_eq!(
        field_of(
            NetlogonMessage::PrimaryQuery(q.clone())
                .to_bytes()
                .unwrap_err()
        ),
        "UnicodeComputerName"
    );
    // LM 2.0 form plus trailing bytes would read back as the NT form.
    q.nt_version = None;
    q.trailing = vec![1, 2];
    assert_eq!(
        NetlogonMessage::PrimaryQuery(q.clone()).to_bytes().unwrap_err(),
        Error::Emit {
            field: "NETLOGON message",
            reason: "would not read back as the same value (trailing bytes or optional fields look like another layout)"
        }
    );
    // An empty Unicode name without pad and nothing after it is two bytes: the LM 2.0 form.
    let q = PrimaryQuery {
        computer_name: "ABC".into(),
        mailslot_name: "S".into(),
        unicode_computer_name: Some(String::new()),
        ..PrimaryQuery::default()
    };
    assert!(NetlogonMessage::PrimaryQuery(q).to_bytes().is_err());
    let mut q = PrimaryQuery::new("WKS\0A", "M");
    assert_eq!(
        field_of(
            NetlogonMessage::PrimaryQuery(q.clone())
                .to_bytes()
                .unwrap_err()
        ),
        "ComputerName"
    );
    q.computer_name = "WKS\u{100}".into();
    assert_eq!(
        field_of(
            NetlogonMessage::PrimaryQuery(q.clone())
                .to_bytes()
                .unwrap_err()
        ),
        "ComputerName"
    );
    q.computer_name = "WKS".into();
    q.unicode_computer_name = Some("a\0b".into());
    assert_eq!(
        field_of(NetlogonMessage::PrimaryQuery(q).to_bytes().unwrap_err()),
        "UnicodeComputerName"
    );
}

// --- LOGON_PRIMARY_RESPONSE -----------------------------------------------------------

#[test]
fn primary_response_as_nmbd_sends_it() {
    // nmbd: PrimaryDCName, the same name in UTF-16, the workgroup, NtVersion 1, tokens.
    // "PDC1\0" ends at offset 7: one pad byte.
    let v = [
        &[0x0c, 0x00][..],
        b"PDC1\0",
        &[0],
        &u16z("PDC1"),
        &u16z("SAMDOM"),
        &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
    ]
    .concat();
    let m = exact(&v);
    assert_eq!(m.command(), "LOGON_PRIMARY_RESPONSE");
    let NetlogonMessage::PrimaryResponse(p) = m else {
        panic!()
    };
    assert_eq!(p.primary_dc_name, "PDC1");
    assert_eq!(p.unicode_primary_dc_name.as_deref(), Some("PDC1"));
    assert_eq!(p.unicode_domain_name.as_deref(), Some("SAMDOM"));
    assert_eq!(
        (p.nt_version, p.lmnt_token, p.lm20_token),
        (Some(1), Some(0xffff), Some(0xffff))
    );
    // Non-zero padding is accepted; it comes back as zero.
    let mut odd = v.clone();
    odd[7] = 0xaa;
    assert_eq!(NetlogonMessage::parse(&odd).unwrap().to_bytes().unwrap(), v);
}

#[test]
fn primary_response_short_forms() {
    let NetlogonMessage::PrimaryResponse(p) = exact(&[&[0x0c, 0x00][..], b"PDC1\0"].concat())
    else {
        panic!()
    };
    assert_eq!(
        (p.primary_dc_name.as_str(), p.unicode_primary_dc_name),
        ("PDC1", None)
    );
    // A pad byte alone, or pad + one byte, is trailing; a UTF-16 NUL after the pad is the name.
    let NetlogonMessage::PrimaryResponse(p) =
        exact(&[&[0x0c, 0x00][..], b"PDC1\0", &[0, 0]].concat())
    else {
        panic!()
    };
    assert_eq!((p.unicode_primary_dc_name, p.trailing), (None, vec![0, 0]));
    let v = [&[0x0c, 0x00][..], b"PDC1\0", &[0], &u16z("PDC1")].concat();
    let NetlogonMessage::PrimaryResponse(p) = exact(&v) else {
        panic!()
    };
    assert_eq!(
        (p.unicode_primary_dc_name.as_deref(), p.unicode_domain_name),
        (Some("PDC1"), None)
    );
    let e = NetlogonMessage::parse(&[&v[..], &[b'S', 0, b'A']].concat()).unwrap_err();
    assert_eq!(field_of(e), "UnicodeDomainName");
    let p = PrimaryResponse {
        primary_dc_name: "PDC1".into(),
        unicode_domain_name: Some("X".into()),
        ..PrimaryResponse::default()
    };
    assert_eq!(
        field_of(NetlogonMessage::PrimaryResponse(p).to_bytes().unwrap_err()),
        "UnicodePrimaryDCName"
    );
}

// --- LOGON_SAM_LOGON_REQUEST ----------------------------------------------------------

/// S-1-5-21-1004336348-1177238915-682003330
const SID: [u8; 24] = [
    1, 4, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0xdc, 0xf4, 0xdc, 0x3b, 0x83, 0x3d, 0x2b, 0x46, 0x82,
    0x8b, 0xa6, 0x28,
];

#[test]
fn sam_logon_request_as_samba_sends_it() {
    // Samba's dsgetdcname: RequestCount 0, machine name, empty user, ACB_WSTRUST, no SID.
    let v = [
        &[0x12, 0x00, 0x00, 0x00][..],
        &u16z("WKS1"),
        &u16z(""),
        GETDC,
        &[0x80, 0, 0, 0],
        &[0, 0, 0, 0],
        &[0x0b, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
    ]
    .concat();
    let m = exact(&v);
    assert_eq!(m.command(), "LOGON_SAM_LOGON_REQUEST");
    let NetlogonMessage::SamLogonRequest(q) = m else {
        panic!()
    };
    let mut want = SamLogonRequest::new("WKS1", "", "\\MAILSLOT\\NET\\GETDC873", 0x0b);
    want.allowable_account_control_bits = 0x80;
    assert_eq!(q, want);
    assert_eq!(q.domain_sid_string(), None);
}

#[test]
fn sam_logon_request_with_sid_is_padded_to_4() {
    // DomainSidSize ends at offset 47: one pad byte puts the SID at 48.
    let v = [
        &[0x12, 0x00, 0x01, 0x00][..],
        &u16z("WKS1"),
        &u16z(""),
        GETDC,
        &[0x10, 0, 0, 0],
        &[24, 0, 0, 0],
        &[0],
        &SID,
        &[0x0b, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
    ]
    .concat();
    assert_eq!(v.len(), 80);
    let NetlogonMessage::SamLogonRequest(q) = exact(&v) else {
        panic!()
    };
    assert_eq!(q.request_count, 1);
    assert_eq!(q.domain_sid, SID);
    assert_eq!(
        q.domain_sid_string().as_deref(),
        Some("S-1-5-21-1004336348-1177238915-682003330")
    );
    // The SID runs past the end; a huge size does not allocate or panic.
    assert_eq!(
        field_of(NetlogonMessage::parse(&v[..60]).unwrap_err()),
        "DomainSid"
    );
    let mut huge = v[..48].to_vec();
    huge[43..47].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        field_of(NetlogonMessage::parse(&huge).unwrap_err()),
        "DomainSid"
    );
    // Pad byte missing.
    assert_eq!(
        field_of(NetlogonMessage::parse(&v[..47]).unwrap_err()),
        "DomainSid padding"
    );
}

#[test]
fn sam_logon_request_truncated() {
    let v = [
        &[0x12, 0x00, 0x00, 0x00][..],
        &u16z("WKS1"),
        &u16z(""),
        GETDC,
        &[0x80, 0, 0, 0],
    ]
    .concat();
    let e = NetlogonMessage::parse(&v).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Truncated {
                field: "DomainSidSize",
                offset: 43,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        field_of(NetlogonMessage::parse(&[0x12, 0x00, 0x00]).unwrap_err()),
        "RequestCount"
    );
    assert_eq!(
        field_of(NetlogonMessage::parse(&[0x12, 0, 0, 0, b'W', 0]).unwrap_err()),
        "UnicodeComputerName"
    );
}

// --- LOGON_SAM_LOGON_RESPONSE (NT 4.0 and V5) -----------------------------------------

#[test]
fn sam_logon_response_nt40() {
    // nmbd's answer to an NtVersion 1 request: "\\NAME", the user, the workgroup.
    let body = [
        &u16z("\\\\SAMBADC")[..],
        &u16z(""),
        &u16z("SAMDOM"),
        &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
    ]
    .concat();
    for (op, cmd) in [
        (0x13u8, "LOGON_SAM_LOGON_RESPONSE"),
        (0x14, "LOGON_SAM_PAUSE_RESPONSE"),
        (0x15, "LOGON_SAM_USER_UNKNOWN"),
    ] {
        let m = exact(&[&[op, 0x00][..], &body].concat());
        assert_eq!(m.command(), cmd);
        let (NetlogonMessage::SamLogonResponse(p)
        | NetlogonMessage::SamPauseResponse(p)
        | NetlogonMessage::SamUserUnknown(p)) = m
        else {
            panic!()
        };
        assert_eq!(p.unicode_logon_server, "\\\\SAMBADC");
        assert_eq!(p.unicode_domain_name, "SAMDOM");
        assert!(p.v5.is_none());
        assert_eq!(p.nt_version, Some(1));
    }
    assert_eq!(
        field_of(NetlogonMessage::parse(&[0x13, 0, b'D', 0]).unwrap_err()),
        "UnicodeLogonServer"
    );
}

fn v5_bytes() -> Vec<u8> {
    [
        &[0x13, 0x00][..],
        &u16z("\\\\DC1"),
        &u16z("alice"),
        &u16z("CORP"),
        &[
            0x1a, 0xeb, 0x76, 0x68, 0xc6, 0xb2, 0xca, 0x4b, 0xb6, 0x9c, 0xfe, 0xda, 0x68, 0x2e,
            0x82, 0xfd,
        ],
        &[0; 16],
        b"\x04corp\x07example\x03com\x00", // at 68 = 0x44
        &[0xc0, 0x44],
        b"\x03dc1\xc0\x44",
        &[192, 168, 1, 5],
        &[0x11, 0, 0, 0],
        &[3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
    ]
    .concat()
}

#[test]
fn sam_logon_response_v5() {
    let v = v5_bytes();
    assert_eq!(v.len(), 110);
    let NetlogonMessage::SamLogonResponse(p) = exact(&v) else {
        panic!()
    };
    let v5 = p.v5.as_ref().unwrap();
    assert_eq!(
        v5.domain_guid.to_string(),
        "6876eb1a-b2c6-4bca-b69c-feda682e82fd"
    );
    assert!(v5.null_guid.is_null());
    assert_eq!(v5.forest, "corp.example.com");
    assert_eq!(v5.dns_domain, "corp.example.com");
    assert_eq!(v5.dns_host_name, "dc1.corp.example.com");
    assert_eq!(v5.dc_ip_address, Ipv4Addr::new(192, 168, 1, 5));
    assert_eq!(v5.flags, ds_flag::PDC | ds_flag::DS);
    assert_eq!(p.nt_version, Some(nt_version::V1 | nt_version::V5));
    // Built from scratch, the strings are compressed the same way.
    let built = SamLogonResponse {
        v5: Some(SamLogonResponseV5 {
            wire: WireLayout::default(),
            ..v5.clone()
        }),
        ..p.clone()
    };
    assert_eq!(
        NetlogonMessage::SamLogonResponse(built).to_bytes().unwrap(),
        v
    );
    // With NtVersion 1 at the end the same bytes are an NT 4.0 response with trailing data.
    let mut nt4 = v.clone();
    nt4[102] = 1;
    let NetlogonMessage::SamLogonResponse(p) = exact(&nt4) else {
        panic!()
    };
    assert!(p.v5.is_none());
    assert_eq!(p.trailing.len(), 110 - 36 - 8);
    // V5 fields that do not decode are an error.
    let mut bad = v.clone();
    bad[68] = 0x40;
    assert!(matches!(
        NetlogonMessage::parse(&bad).unwrap_err(),
        Error::Invalid {
            field: "DnsForestName",
            offset: 68,
            ..
        }
    ));
    // A V5 value whose NtVersion lacks NETLOGON_NT_VERSION_5 would read back as NT 4.0.
    let mut wrong = p.clone();
    wrong.v5 = Some(SamLogonResponseV5::default());
    wrong.nt_version = Some(1);
    wrong.trailing.clear();
    assert!(NetlogonMessage::SamLogonResponse(wrong).to_bytes().is_err());
}

#[test]
fn unknown_opcodes_are_kept() {
    for (v, op) in [
        (&[0x0a, 0x00, 1, 2, 3][..], 0x000a),
        (&[0x34, 0x12][..], 0x1234),
        (&[0x16, 0x00, 9][..], 0x16),
    ] {
        let m = exact(v);
        assert_eq!(m.opcode(), op);
        let NetlogonMessage::Unknown(u) = &m else {
            panic!()
        };
        assert_eq!(u.data, &v[2..]);
    }
    assert_eq!(command_name(0x000a), "NETLOGON_ANNOUNCE_UAS");
    assert_eq!(command_name(0x1234), "UNKNOWN");
    let fake = NetlogonMessage::Unknown(UnknownMessage {
        opcode: 0x12,
        data: vec![],
    });
    assert_eq!(field_of(fake.to_bytes().unwrap_err()), "Opcode");
    assert!(matches!(
        NetlogonMessage::parse(&[]).unwrap_err(),
        Error::Truncated {
            field: "Opcode",
            ..
        }
    ));
    assert!(matches!(
        NetlogonMessage::parse(&[7]).unwrap_err(),
        Error::Truncated {
            field: "Opcode",
            ..
        }
    ));
}

#[test]
fn emit_appends_and_leaves_out_alone_on_error() {
    let mut out = vec![0xaa];
    NetlogonMessage::PrimaryQuery(PrimaryQuery::new("WKS1", "S"))
        .emit(&mut out)
        .unwrap();
    assert_eq!(out[0], 0xaa);
    // Alignment counts from the message, not from `out`.
    assert_eq!(
        &out[1..],
        NetlogonMessage::PrimaryQuery(PrimaryQuery::new("WKS1", "S"))
            .to_bytes()
            .unwrap()
    );
    let len = out.len();
    assert!(NetlogonMessage::PrimaryQuery(PrimaryQuery::new("A\0", "S"))
        .emit(&mut out)
        .is_err());
    assert_eq!(out.len(), len);
}

#[test]
fn guid_text() {
    let g: Guid = "{6876EB1A-B2C6-4BCA-B69C-FEDA682E82FD}".parse().unwrap();
    assert_eq!(g.0[..4], [0x1a, 0xeb, 0x76, 0x68]);
    assert_eq!(
        format!("{g:?}"),
        "Guid(6876eb1a-b2c6-4bca-b69c-feda682e82fd)"
    );
    for bad in [
        "",
        "6876eb1a-b2c6-4bca-b69c",
        "6876eb1a-b2c6-4bca-b69c-feda682e82fz",
        "6876eb1ab2c6-4bca-b69c-feda682e82fd-",
    ] {
        assert!(bad.parse::<Guid>().is_err(), "{bad}");
    }
    assert_eq!(sid_string(&SID[..20]), None);
    assert_eq!(
        sid_string(&[1, 0, 0, 0, 0, 0, 0, 5]).as_deref(),
        Some("S-1-5")
    );
}

#[cfg(feature = "serde")]
#[test]
fn json_field_names() {
    let ex = NetlogonMessage::SamLogonResponseEx(ex_built());
    let j = serde_json::to_value(&ex).unwrap();
    assert_eq!(j["domain_guid"], "6876eb1a-b2c6-4bca-b69c-feda682e82fd");
    assert_eq!(j["dns_host_name"], "dc1.corp.example.com");
    assert_eq!(j["netbios_computer_name"], "DC1");
    assert_eq!(j["client_site_name"], "Branch");
    assert_eq!(j["next_closest_site_name"], "HQ");
    assert_eq!(j["dc_sock_addr"]["address"], "10.0.0.1");
    assert_eq!(j["dc_sock_addr"]["sin_zero"], "0000000000000000");
    assert_eq!(j["nt_version"], 0x15);
    assert!(j.get("wire").is_none() && j.get("sbz").is_none() && j.get("opcode").is_none());

    let lm20 =
        NetlogonMessage::parse(&[&[0x07, 0x00][..], b"WFW1\0", b"S\0", &[0xff, 0xff]].concat())
            .unwrap();
    let j = serde_json::to_value(&lm20).unwrap();
    assert_eq!(
        j,
        serde_json::json!({"computer_name": "WFW1", "mailslot_name": "S", "lm20_token": 0xffff})
    );

    let NetlogonMessage::SamLogonResponse(p) = NetlogonMessage::parse(&v5_bytes()).unwrap() else {
        panic!()
    };
    let j = serde_json::to_value(NetlogonMessage::SamLogonResponse(p)).unwrap();
    assert_eq!(j["forest"], "corp.example.com");
    assert_eq!(j["dc_ip_address"], "192.168.1.5");
    assert_eq!(j["null_guid"], "00000000-0000-0000-0000-000000000000");
    assert_eq!(j["unicode_logon_server"], "\\\\DC1");

    let j = serde_json::to_value(NetlogonMessage::parse(&[0x0a, 0, 0xbe, 0xef]).unwrap()).unwrap();
    assert_eq!(j, serde_json::json!({"data": "beef"}));
}

// --- Properties -----------------------------------------------------------------------

fn oem() -> impl Strategy<Value = String> {
    "[ -~\u{a0}-\u{ff}]{0,15}"
}

fn wide() -> impl Strategy<Value = String> {
    prop_oneof!["[ -~]{0,12}", "\\PC{0,6}"]
}

fn dns() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec("[a-zA-Z0-9-]{1,8}", 0..4).prop_map(|v| v.join(".")),
        1 => "[a-c.]{0,8}",
        1 => "\\PC{0,5}",
    ]
}

/// Site names drawn from a small set, so that pointers between them happen.
fn site() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("HQ".to_owned()),
        Just("Default-First-Site-Name".to_owned()),
        Just(String::new()),
        dns()
    ]
}

fn tail() -> impl Strategy<Value = (Option<u32>, Option<u16>, Option<u16>)> {
    prop_oneof![
        4 => (any::<u32>(), any::<u16>(), any::<u16>()).prop_map(|(a, b, c)| (Some(a), Some(b), Some(c))),
        1 => (any::<Option<u32>>(), any::<Option<u16>>(), any::<Option<u16>>()),
    ]
}

fn trailing() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![3 => Just(Vec::new()), 1 => prop::collection::vec(any::<u8>(), 1..6)]
}

fn guid() -> impl Strategy<Value = Guid> {
    prop_oneof![Just(Guid::NULL), any::<[u8; 16]>().prop_map(Guid)]
}

fn primary_query() -> impl Strategy<Value = NetlogonMessage> {
    (
        oem(),
        oem(),
        proptest::option::of(wide()),
        tail(),
        trailing(),
    )
        .prop_map(|(c, m, u, t, tr)| {
            NetlogonMessage::PrimaryQuery(PrimaryQuery {
                computer_name: c,
                mailslot_name: m,
                unicode_computer_name: u,
                nt_version: t.0,
                lmnt_token: t.1,
                lm20_token: t.2,
                trailing: tr,
            })
        })
}

fn primary_response() -> impl Strategy<Value = NetlogonMessage> {
    (
        oem(),
        proptest::option::of(wide()),
        proptest::option::of(wide()),
        tail(),
        trailing(),
    )
        .prop_map(|(n, u, d, t, tr)| {
            NetlogonMessage::PrimaryResponse(PrimaryResponse {
                primary_dc_name: n,
                unicode_primary_dc_name: u,
                unicode_domain_name: d,
                nt_version: t.0,
                lmnt_token: t.1,
                lm20_token: t.2,
                trailing: tr,
            })
        })
}

fn sam_logon_request() -> impl Strategy<Value = NetlogonMessage> {
    (
        (any::<u16>(), wide(), wide(), oem(), any::<u32>()),
        prop_oneof![
            Just(Vec::new()),
            Just(SID.to_vec()),
            prop::collection::vec(any::<u8>(), 1..30)
        ],
        tail(),
        trailing(),
    )
        .prop_map(|((rc, c, u, m, acb), sid, t, tr)| {
            NetlogonMessage::SamLogonRequest(SamLogonRequest {
                request_count: rc,
                unicode_computer_name: c,
                user_name: u,
                mailslot_name: m,
                allowable_account_control_bits: acb,
                domain_sid: sid,
                nt_version: t.0,
                lmnt_token: t.1,
                lm20_token: t.2,
                trailing: tr,
            })
        })
}

fn v5_fields() -> impl Strategy<Value = Option<SamLogonResponseV5>> {
    proptest::option::of(
        (
            (guid(), guid()),
            (dns(), dns(), dns()),
            any::<[u8; 4]>(),
            any::<u32>(),
        )
            .prop_map(|((g, n), (f, d, h), ip, flags)| SamLogonResponseV5 {
                domain_guid: g,
                null_guid: n,
                forest: f,
                dns_domain: d,
                dns_host_name: h,
                dc_ip_address: Ipv4Addr::from(ip),
                flags,
                wire: WireLayout::default(),
            }),
    )
}

fn sam_logon_response() -> impl Strategy<Value = NetlogonMessage> {
    (
        0u16..3,
        (wide(), wide(), wide()),
        v5_fields(),
        tail(),
        trailing(),
    )
        .prop_map(|(k, (s, u, d), v5, t, tr)| {
            let p = SamLogonResponse {
                unicode_logon_server: s,
                user_name: u,
                unicode_domain_name: d,
                v5,
                nt_version: t.0,
                lmnt_token: t.1,
                lm20_token: t.2,
                trailing: tr,
            };
            match k {
                0 => NetlogonMessage::SamLogonResponse(p),
                1 => NetlogonMessage::SamPauseResponse(p),
                _ => NetlogonMessage::SamUserUnknown(p),
            }
        })
}

fn dc_sock_addr() -> impl Strategy<Value = Option<DcSockAddr>> {
    proptest::option::of(
        (
            any::<[u8; 4]>(),
            any::<u16>(),
            prop_oneof![Just(vec![0; 8]), prop::collection::vec(any::<u8>(), 0..12)],
        )
            .prop_map(|(ip, port, zero)| DcSockAddr {
                family: AF_INET,
                port,
                address: Ipv4Addr::from(ip),
                sin_zero: zero,
            }),
    )
}

fn sam_logon_response_ex() -> impl Strategy<Value = NetlogonMessage> {
    (
        (0u16..3, any::<u16>(), any::<u32>(), guid()),
        (dns(), dns(), dns(), dns(), dns()),
        (dns(), site(), site()),
        dc_sock_addr(),
        proptest::option::of(site()),
        (any::<u32>(), any::<u16>(), any::<u16>()),
    )
        .prop_map(
            |((k, sbz, flags, g), (f, d, h, nd, nc), (u, ds, cs), sa, next, (nt, lmnt, lm20))| {
                let p = SamLogonResponseEx {
                    sbz,
                    flags,
                    domain_guid: g,
                    forest: f,
                    dns_domain: d,
                    dns_host_name: h,
                    netbios_domain: nd,
                    netbios_computer_name: nc,
                    user_name: u,
                    dc_site_name: ds,
                    client_site_name: cs,
                    dc_sock_addr: sa,
                    next_closest_site_name: next,
                    nt_version: nt,
                    lmnt_token: lmnt,
                    lm20_token: lm20,
                    wire: WireLayout::default(),
                };
                match k {
                    0 => NetlogonMessage::SamLogonResponseEx(p),
                    1 => NetlogonMessage::SamPauseResponseEx(p),
                    _ => NetlogonMessage::SamUserUnknownEx(p),
                }
            },
        )
}

fn unknown_message() -> impl Strategy<Value = NetlogonMessage> {
    (any::<u16>(), prop::collection::vec(any::<u8>(), 0..20))
        .prop_map(|(op, data)| NetlogonMessage::Unknown(UnknownMessage { opcode: op, data }))
}

fn message() -> BoxedStrategy<NetlogonMessage> {
    prop_oneof![
        primary_query().boxed(),
        primary_response().boxed(),
        sam_logon_request().boxed(),
        sam_logon_response().boxed(),
        sam_logon_response_ex().boxed(),
        unknown_message().boxed()
    ]
    .boxed()
}

/// Values in the shape senders produce: full tails, no trailing bytes, plain DNS names.
fn canonical() -> BoxedStrategy<NetlogonMessage> {
    let name = || "[A-Z0-9]{1,15}";
    let host = || prop::collection::vec("[a-z0-9-]{1,10}", 1..4).prop_map(|v| v.join("."));
    prop_oneof![
        (name(), name(), any::<u32>())
            .prop_map(|(c, m, nt)| {
                let mut q = PrimaryQuery::new(&c, &format!("\\MAILSLOT\\NET\\GETDC{m}"));
                q.nt_version = Some(nt);
                NetlogonMessage::PrimaryQuery(q)
            })
            .boxed(),
        (
            name(),
            name(),
            prop_oneof![Just(Vec::new()), Just(SID.to_vec())],
            any::<u32>()
        )
            .prop_map(|(c, u, sid, nt)| {
                let mut q = SamLogonRequest::new(&c, &u, "\\MAILSLOT\\NET\\GETDC1", nt);
                q.domain_sid = sid;
                NetlogonMessage::SamLogonRequest(q)
            })
            .boxed(),
        (
            host(),
            host(),
            name(),
            name(),
            any::<bool>(),
            any::<bool>(),
            any::<[u8; 4]>()
        )
            .prop_map(|(domain, dc, nb, user, ip, closest, addr)| {
                let mut p = SamLogonResponseEx {
                    forest: domain.clone(),
                    dns_domain: domain.clone(),
                    dns_host_name: format!("{dc}.{domain}"),
                    netbios_domain: nb,
                    netbios_computer_name: dc.to_uppercase(),
                    user_name: user,
                    dc_site_name: "Default-First-Site-Name".into(),
                    client_site_name: "Default-First-Site-Name".into(),
                    ..SamLogonResponseEx::default()
                };
                if ip {
                    p.dc_sock_addr = Some(DcSockAddr::new(Ipv4Addr::from(addr)));
                }
                if closest {
                    p.next_closest_site_name = Some("HQ".into());
                    p.nt_version |= nt_version::WITH_CLOSEST_SITE;
                }
                NetlogonMessage::SamLogonResponseEx(p)
            })
            .boxed(),
    ]
    .boxed()
}

proptest! {
    #[test]
    fn parse_of_emit_is_identity(m in message()) {
        if let Ok(bytes) = m.to_bytes() {
            prop_assert_eq!(NetlogonMessage::parse(&bytes).unwrap(), m.clone());
            // And the output is stable: emitting the parsed value gives the same bytes.
            prop_assert_eq!(NetlogonMessage::parse(&bytes).unwrap().to_bytes().unwrap(), bytes);
        }
    }

    #[test]
    fn canonical_values_always_emit(m in canonical()) {
        let bytes = m.to_bytes().unwrap();
        prop_assert_eq!(NetlogonMessage::parse(&bytes).unwrap(), m);
    }

    #[test]
    fn parse_never_panics(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = NetlogonMessage::parse(&data);
    }

    #[test]
    fn mutated_messages_emit_and_read_back(
        m in prop_oneof![message(), canonical()],
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let Ok(mut data) = m.to_bytes() else { return Ok(()) };
        for (i, b) in edits {
            let i = i.index(data.len());
            data[i] = b;
        }
        if do_cut {
            data.truncate(cut.index(data.len() + 1));
        }
        if let Ok(m) = NetlogonMessage::parse(&data) {
            let bytes = m.to_bytes().unwrap();
            prop_assert_eq!(bytes.len(), data.len());
            prop_assert_eq!(NetlogonMessage::parse(&bytes).unwrap(), m.clone());
            // V5 and EX responses come out byte for byte (see the module doc).
            let exact = match &m {
                NetlogonMessage::SamLogonResponse(p)
                | NetlogonMessage::SamPauseResponse(p)
                | NetlogonMessage::SamUserUnknown(p) => p.v5.is_some(),
                NetlogonMessage::SamLogonResponseEx(_)
                | NetlogonMessage::SamPauseResponseEx(_)
                | NetlogonMessage::SamUserUnknownEx(_) => true,
                _ => false,
            };
            if exact {
                prop_assert_eq!(bytes, data);
            }
        }
    }
}

/// NETLOGON_SAM_LOGON_RESPONSE as Samba 4.17.12 packs it (`ndr_pack` of
/// `nbt.NETLOGON_SAM_LOGON_RESPONSE` from python3-samba, the code nmbd's proxy-logon path
/// uses; pdc_ip = "198.51.100.10"). `ndr_push_ipv4address` pushes `htonl(inet_addr(ip))`
/// as a little-endian uint32, so DcIpAddress is `0a 64 33 c6`: reversed. nbdgm reads the
/// field in network order (MS-ADTS), accepts any four bytes, and shows this one as
/// 10.100.51.198 (docs/peers.md).
#[test]
fn sam_logon_response_v5_as_samba_packs_it() {
    const SAMBA_4_17: &str = "13005c005c00530041004d00420041004400430000000000540045005300540044\
        004f004d000000000000000000000000000000000000000000000000000000000000000000000004746573\
        74076578616d706c6500c0480773616d62616463c0480a6433c6fd03000003000000ffffffff";
    let v = crate::hex::decode(SAMBA_4_17).unwrap();
    assert_eq!(v.len(), 114);
    assert_eq!(v[98..102], [0x0a, 0x64, 0x33, 0xc6]);
    let NetlogonMessage::SamLogonResponse(p) = exact(&v) else {
        panic!()
    };
    let v5 = p.v5.as_ref().unwrap();
    assert_eq!(v5.dns_host_name, "sambadc.test.example");
    assert_eq!(v5.dc_ip_address, Ipv4Addr::new(10, 100, 51, 198));
    let mut reversed = v5.dc_ip_address.octets();
    reversed.reverse();
    assert_eq!(Ipv4Addr::from(reversed), Ipv4Addr::new(198, 51, 100, 10));
    assert_eq!(v5.flags, 0x3fd);
}
