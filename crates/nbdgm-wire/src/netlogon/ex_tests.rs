//! Tests of LOGON_SAM_LOGON_RESPONSE_EX and of the compressed strings (MS-ADTS §6.3.1.9,
//! §6.3.7).

use super::dns_string::{put_dns_string, read_dns_string, Compressor};
use super::tests::*;
use super::*;
use std::net::Ipv4Addr;

// --- LOGON_SAM_LOGON_RESPONSE_EX ------------------------------------------------------

/// An EX response as a Windows DC sends it (here from an LDAP ping, which carries the same
/// structure): Flags 0x0007F3FD, five pointers, NtVersion 5.
const EX_WINDOWS: &str = "17000000fdf307001aeb7668c6b2ca4bb69cfeda682e82fd06646f6d61696e047465737400c0180444433031c01806444f4d41494e00044443303100001744656661756c742d46697273742d536974652d4e616d6500c03d05000000ffffffff";

#[test]
fn ex_response_from_windows() {
    let v = crate::hex::decode(EX_WINDOWS).unwrap();
    let m = exact(&v);
    assert_eq!(m.command(), "LOGON_SAM_LOGON_RESPONSE_EX");
    let NetlogonMessage::SamLogonResponseEx(p) = &m else {
        panic!()
    };
    assert_eq!(p.flags, 0x0007_f3fd);
    assert_eq!(
        p.domain_guid.to_string(),
        "6876eb1a-b2c6-4bca-b69c-feda682e82fd"
    );
    assert_eq!(p.forest, "domain.test");
    assert_eq!(p.dns_domain, "domain.test");
    assert_eq!(p.dns_host_name, "DC01.domain.test");
    assert_eq!(p.netbios_domain, "DOMAIN");
    assert_eq!(p.netbios_computer_name, "DC01");
    assert_eq!(p.user_name, "");
    assert_eq!(p.dc_site_name, "Default-First-Site-Name");
    assert_eq!(p.client_site_name, "Default-First-Site-Name");
    assert_eq!((&p.dc_sock_addr, &p.next_closest_site_name), (&None, &None));
    assert_eq!(
        (p.nt_version, p.lmnt_token, p.lm20_token),
        (5, 0xffff, 0xffff)
    );
    // Samba-style compression of the same strings gives the same bytes.
    let built = SamLogonResponseEx {
        wire: WireLayout::default(),
        ..p.clone()
    };
    assert!(built.wire.is_empty());
    assert_eq!(
        NetlogonMessage::SamLogonResponseEx(built)
            .to_bytes()
            .unwrap(),
        v
    );
}

pub(super) fn ex_built() -> SamLogonResponseEx {
    SamLogonResponseEx {
        flags: 0x0000_f3fd,
        domain_guid: "6876eb1a-b2c6-4bca-b69c-feda682e82fd".parse().unwrap(),
        forest: "corp.example.com".into(),
        dns_domain: "corp.example.com".into(),
        dns_host_name: "dc1.corp.example.com".into(),
        netbios_domain: "CORP".into(),
        netbios_computer_name: "DC1".into(),
        user_name: String::new(),
        dc_site_name: "HQ".into(),
        client_site_name: "Branch".into(),
        dc_sock_addr: Some(DcSockAddr::new(Ipv4Addr::new(10, 0, 0, 1))),
        next_closest_site_name: Some("HQ".into()),
        nt_version: nt_version::V1 | nt_version::V5EX | nt_version::WITH_CLOSEST_SITE,
        ..SamLogonResponseEx::default()
    }
}

fn ex_built_bytes() -> Vec<u8> {
    [
        &[0x17, 0x00, 0x00, 0x00, 0xfd, 0xf3, 0x00, 0x00][..],
        &[
            0x1a, 0xeb, 0x76, 0x68, 0xc6, 0xb2, 0xca, 0x4b, 0xb6, 0x9c, 0xfe, 0xda, 0x68, 0x2e,
            0x82, 0xfd,
        ],
        b"\x04corp\x07example\x03com\x00", // forest at 24 = 0x18
        &[0xc0, 0x18],                     // dns_domain
        b"\x03dc1\xc0\x18",                // dns_host_name
        b"\x04CORP\x00",
        b"\x03DC1\x00", // "DC1" is not a suffix of "dc1.corp..." (case matters)
        b"\x00",
        b"\x02HQ\x00", // at 62 = 0x3e
        b"\x06Branch\x00",
        &[16, 2, 0, 0, 0, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        &[0xc0, 0x3e], // next closest site: pointer to "HQ"
        &[0x15, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
    ]
    .concat()
}

#[test]
fn ex_response_with_sockaddr_and_closest_site() {
    let want = ex_built_bytes();
    let m = NetlogonMessage::SamLogonResponseEx(ex_built());
    assert_eq!(m.to_bytes().unwrap(), want);
    let back = exact(&want);
    assert_eq!(back, m);
    let NetlogonMessage::SamLogonResponseEx(p) = back else {
        panic!()
    };
    assert_eq!(p.dc_sock_addr.as_ref().unwrap().to_string(), "10.0.0.1:0");
    assert_eq!(p.next_closest_site_name.as_deref(), Some("HQ"));
    for (op, cmd) in [
        (0x18u8, "LOGON_SAM_PAUSE_RESPONSE_EX"),
        (0x19, "LOGON_SAM_USER_UNKNOWN_EX"),
    ] {
        let mut v = want.clone();
        v[0] = op;
        assert_eq!(exact(&v).command(), cmd);
    }
}

#[test]
fn ex_optional_fields_alone() {
    // DcSockAddr only.
    let mut p = ex_built();
    p.next_closest_site_name = None;
    p.nt_version = 5;
    let v = NetlogonMessage::SamLogonResponseEx(p.clone())
        .to_bytes()
        .unwrap();
    assert_eq!(exact(&v), NetlogonMessage::SamLogonResponseEx(p.clone()));
    // NextClosestSiteName only, also when it is empty (a single 0 byte).
    for site in ["HQ", "", "Default-First-Site-Name", "x"] {
        p.dc_sock_addr = None;
        p.next_closest_site_name = Some(site.into());
        p.nt_version = 0x15;
        let v = NetlogonMessage::SamLogonResponseEx(p.clone())
            .to_bytes()
            .unwrap();
        assert_eq!(
            exact(&v),
            NetlogonMessage::SamLogonResponseEx(p.clone()),
            "{site:?}"
        );
    }
    // A 20-byte sockaddr (4 extra bytes of sin_zero) is kept.
    let mut p = ex_built();
    p.dc_sock_addr.as_mut().unwrap().sin_zero = vec![0; 12];
    let v = NetlogonMessage::SamLogonResponseEx(p.clone())
        .to_bytes()
        .unwrap();
    assert_eq!(exact(&v), NetlogonMessage::SamLogonResponseEx(p.clone()));
    p.dc_sock_addr.as_mut().unwrap().family = 23;
    assert_eq!(
        field_of(
            NetlogonMessage::SamLogonResponseEx(p)
                .to_bytes()
                .unwrap_err()
        ),
        "sin_family"
    );
}

#[test]
fn ex_keeps_the_senders_compression() {
    // dns_domain spelled out instead of pointing at the forest: parsed and re-emitted as is.
    let v = crate::hex::decode(EX_WINDOWS).unwrap();
    let spelled = [&v[..37], b"\x06domain\x04test\x00", &v[39..]].concat();
    // The pointer to the DC site (0x3d) moves by 11 bytes.
    let at = spelled.len() - 10;
    assert_eq!(&spelled[at..at + 2], &[0xc0, 0x3d]);
    let mut spelled = spelled;
    spelled[at + 1] = 0x3d + 11;
    let m = exact(&spelled);
    let NetlogonMessage::SamLogonResponseEx(p) = &m else {
        panic!()
    };
    assert_eq!(p.dns_domain, "domain.test");
    assert_eq!(p.client_site_name, "Default-First-Site-Name");
    // A changed string is compressed afresh; the others keep their form if still valid.
    let mut changed = p.clone();
    changed.user_name = "bob".into();
    let out = NetlogonMessage::SamLogonResponseEx(changed.clone())
        .to_bytes()
        .unwrap();
    assert_eq!(
        NetlogonMessage::parse(&out).unwrap(),
        NetlogonMessage::SamLogonResponseEx(changed.clone())
    );
    assert_eq!(out.len(), spelled.len() + 4);
    // Renaming the forest invalidates the pointers into it: they are rebuilt.
    changed.forest = "example.org".into();
    let out = NetlogonMessage::SamLogonResponseEx(changed.clone())
        .to_bytes()
        .unwrap();
    assert_eq!(
        NetlogonMessage::parse(&out).unwrap(),
        NetlogonMessage::SamLogonResponseEx(changed)
    );
}

#[test]
fn ex_malformed() {
    let v = crate::hex::decode(EX_WINDOWS).unwrap();
    // Too short for the header, the strings, the tail.
    assert_eq!(
        field_of(NetlogonMessage::parse(&v[..20]).unwrap_err()),
        "DomainGuid"
    );
    assert_eq!(
        field_of(NetlogonMessage::parse(&v[..30]).unwrap_err()),
        "DnsForestName"
    );
    assert!(matches!(
        NetlogonMessage::parse(&v[..v.len() - 1]).unwrap_err(),
        Error::Truncated {
            field: "NtVersion",
            ..
        }
    ));
    // A forward pointer, a pointer to itself, a reserved label type, a label past the end.
    let mut fwd = v.clone();
    fwd[37..39].copy_from_slice(&[0xc0, 0x30]);
    assert!(matches!(
        NetlogonMessage::parse(&fwd).unwrap_err(),
        Error::Invalid {
            field: "DnsDomainName",
            offset: 37,
            reason: "compression pointer does not point backwards"
        }
    ));
    let mut own = v.clone();
    own[37..39].copy_from_slice(&[0xc0, 37]);
    assert!(NetlogonMessage::parse(&own).is_err());
    let mut reserved = v.clone();
    reserved[24] = 0x86;
    assert!(matches!(
        NetlogonMessage::parse(&reserved).unwrap_err(),
        Error::Invalid {
            field: "DnsForestName",
            offset: 24,
            reason: "reserved label type"
        }
    ));
    let mut long = v.clone();
    long[24] = 0x3f;
    assert!(NetlogonMessage::parse(&long).is_err());
    // Garbage between ClientSiteName and NtVersion that is not one string.
    let n = v.len();
    let junk = [&v[..n - 8], &[0x01, b'x', 0x00, 0x00], &v[n - 8..]].concat();
    assert_eq!(
        field_of(NetlogonMessage::parse(&junk).unwrap_err()),
        "NextClosestSiteName"
    );
    // A pointer loop within the hop limit still ends: 0x18 -> label, pointer back to it.
    let mut looped = v.clone();
    looped[37..39].copy_from_slice(&[0xc0, 0x18]);
    looped[24..26].copy_from_slice(&[0x01, b'a']);
    looped[26..28].copy_from_slice(&[0xc0, 0x18]);
    assert!(matches!(
        NetlogonMessage::parse(&looped).unwrap_err(),
        Error::Invalid {
            field: "DnsForestName",
            offset: 26,
            reason: "pointed-to name runs into the pointer"
        }
    ));
}

#[test]
fn dns_string_limits() {
    // A chain of pointers, each to the one before: 10 hops are followed, 11 are not.
    let mut msg = vec![0u8];
    for i in 0..11u16 {
        let prev = if i == 0 { 0 } else { 1 + 2 * (i - 1) };
        msg.extend_from_slice(&(0xc000 | prev).to_be_bytes());
    }
    assert_eq!(read_dns_string(&msg, 19, "x").unwrap(), (String::new(), 21));
    assert!(matches!(
        read_dns_string(&msg, 21, "x").unwrap_err(),
        Error::Invalid {
            reason: "too many compression pointers",
            ..
        }
    ));
    // 129 one-byte labels are too many; 128 are fine.
    let many = |n: usize| [b"\x01a".repeat(n), vec![0]].concat();
    assert_eq!(read_dns_string(&many(128), 0, "x").unwrap().0.len(), 255);
    assert!(read_dns_string(&many(129), 0, "x").is_err());
    assert!(read_dns_string(&[0xc0], 0, "x").is_err());
    assert!(read_dns_string(&[], 0, "x").is_err());
    // Emission limits: a run of more than 63 bytes without a dot, more than 128 labels.
    let mut m = Vec::new();
    let mut comp = Compressor::default();
    let x63 = "x".repeat(63);
    let too_many = vec![x63.as_str(); 129].join(".");
    for (bad, reason) in [
        ("x".repeat(64), "label longer than 63 bytes"),
        (
            format!("a..{}", "x".repeat(64)),
            "label longer than 63 bytes",
        ),
        (format!(".{x63}"), "label longer than 63 bytes"),
        (too_many, "more than 128 labels"),
    ] {
        assert_eq!(
            put_dns_string(&mut m, &bad, None, &mut comp, "f"),
            Err(Error::Emit { field: "f", reason }),
            "{bad}"
        );
        assert!(m.is_empty());
    }
    // Text Samba's split cannot write (empty pieces, as a sender's label holding a dot
    // gives) goes out in the fewest labels, the dots that must stay inside them kept.
    for (text, wire) in [
        ("a..b", b"\x04a..b\x00".to_vec()),
        (".a", b"\x02.a\x00".to_vec()),
        ("a..", b"\x03a..\x00".to_vec()),
        (".", b"\x01.\x00".to_vec()),
        (
            &format!("a..{x63}"),
            [&b"\x02a.\x3f"[..], x63.as_bytes(), b"\x00"].concat(),
        ),
    ] {
        let mut out = vec![0xAA];
        put_dns_string(&mut out, text, None, &mut Compressor::default(), "f").unwrap();
        assert_eq!(out[1..], wire[..], "{text}");
        assert_eq!(
            read_dns_string(&out, 1, "f").unwrap(),
            (text.to_owned(), out.len())
        );
    }
    // A final dot stays in the last label, as Samba keeps it for user names.
    put_dns_string(&mut m, "user.", None, &mut comp, "f").unwrap();
    assert_eq!(m, b"\x05user.\x00");
    put_dns_string(&mut m, "a.user.", None, &mut comp, "f").unwrap();
    assert_eq!(&m[7..], b"\x01a\xc0\x00");
    assert_eq!(
        read_dns_string(&m, 7, "f").unwrap(),
        ("a.user.".to_owned(), 11)
    );
}

#[test]
fn pointer_that_would_exceed_the_hop_limit_is_written_in_line() {
    // "a" at 0, then a chain of 9 pointers, then "b" + a pointer to the chain's end:
    // read from 21, "b.a" takes 10 hops, the most a reader follows.
    let mut msg = b"\x01a\x00".to_vec();
    for i in 0..9u16 {
        let prev = if i == 0 { 0 } else { 3 + 2 * (i - 1) };
        msg.extend_from_slice(&(0xc000 | prev).to_be_bytes());
    }
    assert_eq!(msg.len(), 21);
    msg.extend_from_slice(&[0x01, b'b', 0xc0, 19]);
    assert_eq!(read_dns_string(&msg, 21, "x").unwrap(), ("b.a".into(), 25));
    let mut comp = Compressor::default();
    comp.learn(&msg, 21);
    assert_eq!(comp.find("b.a"), Some(21));
    // A pointer to it from "c.b.a" would be the 11th hop: the labels go in line.
    put_dns_string(&mut msg, "c.b.a", None, &mut comp, "f").unwrap();
    assert_eq!(&msg[25..], b"\x01c\x01b\x01a\x00");
    // Those labels are learnt: "d.c.b.a" points at them.
    put_dns_string(&mut msg, "d.c.b.a", None, &mut comp, "f").unwrap();
    assert_eq!(&msg[32..], &[0x01, b'd', 0xc0, 25]);
}

/// docs/FUZZING.md finding 2: LOGON_SAM_LOGON_RESPONSE, V5. UnicodeLogonServer is
/// `03 2E 2E DC` (U+2E03 and an unpaired U+DC2E, read as U+FFFD); DnsForestName is the
/// pointer `C0 02` to the label `03 "..\xDC"` inside it.
const V5_POINTER_INTO_LOSSY_UTF16: &str = concat!(
    "1300032e2edc0000000000000000000000000000000000000000000000000000",
    "000000000000000000000000c0020000000000000000000002000000ffffffff"
);

#[test]
fn v5_pointer_into_lossy_utf16() {
    let input = crate::hex::decode(V5_POINTER_INTO_LOSSY_UTF16).unwrap();
    assert_eq!(input.len(), 64);
    let m = NetlogonMessage::parse(&input).unwrap();
    let NetlogonMessage::SamLogonResponse(p) = &m else {
        panic!("{m:?}")
    };
    assert_eq!(p.unicode_logon_server, "\u{2E03}\u{FFFD}");
    let v5 = p.v5.as_ref().unwrap();
    assert_eq!(v5.forest, "..\u{FFFD}");
    // The parsed value keeps the UTF-16 bytes the pointer leads into: same bytes out.
    assert_eq!(m.to_bytes().unwrap(), input);
    // Without its wire form, U+FFFD goes out as FD FF, where the pointer would now read
    // "..\xFD\xFF": the forest name is written afresh, as one label (Samba's split would
    // give empty labels).
    let mut built = p.clone();
    if let Some(v5) = built.v5.as_mut() {
        v5.wire = WireLayout::default();
    }
    let built = NetlogonMessage::SamLogonResponse(built);
    let out = built.to_bytes().unwrap();
    assert_eq!(&out[2..6], &[0x03, 0x2e, 0xfd, 0xff]);
    assert_eq!(&out[44..51], b"\x05..\xef\xbf\xbd\x00");
    assert_eq!(out.len(), input.len() + 5);
    assert_eq!(NetlogonMessage::parse(&out).unwrap(), m);
    // And that output is stable.
    assert_eq!(
        NetlogonMessage::parse(&out).unwrap().to_bytes().unwrap(),
        out
    );
    // A changed UTF-16 string drops its kept bytes, not the others'.
    let NetlogonMessage::SamLogonResponse(mut renamed) = m.clone() else {
        panic!()
    };
    renamed.user_name = "bob".into();
    let out = NetlogonMessage::SamLogonResponse(renamed.clone())
        .to_bytes()
        .unwrap();
    assert_eq!(&out[..8], &input[..8]);
    assert_eq!(&out[8..16], b"b\0o\0b\0\0\0");
    assert_eq!(
        NetlogonMessage::parse(&out).unwrap(),
        NetlogonMessage::SamLogonResponse(renamed)
    );
}

#[test]
fn v5_with_lossy_utf16_and_short_tail_comes_out_the_same() {
    // From the fuzzer: a V5 response without NtVersion (the V5 bit it is recognised by is
    // in the Flags), an unpaired surrogate in UnicodeUserName and DnsHostName pointing
    // into it. Rewriting the host name would change the length and so the layout.
    let input = crate::hex::decode(concat!(
        "13005c005c00440043003100002961006c000223000000f302022e02022e0202",
        "2e020002ff02ff2e022eefffffffffff02022e02022e02022e02022e06020c00",
        "0d007e1100da0c0000000000400000000000000000005c000000000004636f72",
        "5d076578616d706c65035d6d00c04403646330c044c000020afd7e0300ffff"
    ))
    .unwrap();
    let m = NetlogonMessage::parse(&input).unwrap();
    assert!(format!("{m:?}").contains('\u{FFFD}'));
    assert_eq!(m.to_bytes().unwrap(), input);
}

#[test]
fn dns_label_too_long_once_made_valid_utf8_is_invalid() {
    // The V5 forest name as one label of 22 bytes 0xFF: 66 bytes as U+FFFD, which no
    // split can write back. 21 such bytes (63 bytes of text) are fine.
    let v5 = |label: &[u8]| {
        [
            &[0x13, 0x00][..],
            &u16z("\\DC1"),
            &u16z(""),
            &u16z(""),
            &[0; 32],
            &[label.len() as u8],
            label,
            &[0, 0, 0],
            &[0; 8],
            &[2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ]
        .concat()
    };
    let at = 2 + 10 + 2 + 2 + 32;
    assert_eq!(
        NetlogonMessage::parse(&v5(&[0xff; 22])).unwrap_err(),
        Error::Invalid {
            field: "DnsForestName",
            offset: at,
            reason: "a label is longer than 63 bytes once its invalid UTF-8 is replaced by U+FFFD",
        }
    );
    let ok = v5(&[0xff; 21]);
    let m = exact(&ok);
    let NetlogonMessage::SamLogonResponse(p) = &m else {
        panic!()
    };
    assert_eq!(p.v5.as_ref().unwrap().forest, "\u{FFFD}".repeat(21));
    // Dots inside such a label leave room to split it: still accepted.
    let mut dotted = [0xffu8; 40];
    dotted[20] = b'.';
    let m = exact(&v5(&dotted));
    let NetlogonMessage::SamLogonResponse(mut p) = m else {
        panic!()
    };
    if let Some(v5) = p.v5.as_mut() {
        v5.wire = WireLayout::default();
    }
    let out = NetlogonMessage::SamLogonResponse(p.clone())
        .to_bytes()
        .unwrap();
    assert_eq!(
        NetlogonMessage::parse(&out).unwrap(),
        NetlogonMessage::SamLogonResponse(p)
    );
    // The EX strings are checked the same way.
    let v = crate::hex::decode(EX_WINDOWS).unwrap();
    let ex = [&v[..24], &[22], &[0xfe; 22], &v[31..]].concat();
    assert!(matches!(
        NetlogonMessage::parse(&ex).unwrap_err(),
        Error::Invalid {
            field: "DnsForestName",
            offset: 24,
            ..
        }
    ));
}

// --- Unknown opcodes ------------------------------------------------------------------
