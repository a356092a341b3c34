//! The documented Wireshark 4.0 divergences (docs/wireshark-differences.md).
//!
//! A rule names the tshark fields it covers, the frames it applies to, and a check of OUR
//! value against the specification, computed from the raw packet bytes without the codec.
//! A disagreement on a covered field in a covered frame counts as a documented divergence
//! only if that check passes; otherwise it is a failure like any other.

use super::compare::{render_name, ws_display, Ctx, Enc, Frame, V};

/// Where a divergence shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Both decode the fields, with different values.
    Both,
    /// Wireshark shows fields that we, following the spec, do not decode.
    TheirsOnly,
    /// We decode fields that Wireshark, against the spec, does not.
    OursOnly,
}

pub struct Rule {
    pub id: &'static str,
    /// tshark fields the rule covers.
    pub fields: &'static [&'static str],
    /// When the rule applies (human-readable; `applies` implements it).
    pub condition: &'static str,
    /// Why Wireshark is wrong.
    pub reason: &'static str,
    pub spec: &'static str,
    /// Which tool decodes the fields in the covered frames.
    pub side: Side,
    pub applies: fn(&Frame<'_>) -> bool,
    /// Check our value for `field` (occurrence `idx`) against the specification.
    pub check: fn(&Frame<'_>, &str, usize, Option<&V>) -> Result<(), String>,
}

pub static RULES: &[Rule] = &[
    Rule {
        id: "W1 lanman-msbrws-layout",
        fields: &[
            "browser.update_count",
            "browser.period",
            "browser.server",
            "browser.os_major",
            "browser.os_minor",
            "browser.server_type",
            "browser.comment",
        ],
        condition: "mailslot \\MAILSLOT\\LANMAN carrying an MS-BRWS announcement (opcode 0x01, \
                    0x0C or 0x0F, at least 33 bytes, bytes 30-31 = 55 AA)",
        reason: "Wireshark decodes every \\MAILSLOT\\LANMAN frame in the LAN Manager layout, \
                 although MS-BRWS says servers SHOULD send the HostAnnouncement frame of \
                 section 2.2.1 on \\MAILSLOT\\LANMAN and browsers MUST accept browser frames on \
                 either mailslot",
        spec: "MS-BRWS 2.1, 2.2.1 and <9>; DIGEST 6.7",
        side: Side::Both,
        applies: lanman_msbrws_layout,
        check: check_msbrws_announcement,
    },
    Rule {
        id: "W2 names-in-non-first-fragment",
        fields: &["nbdgm.source_name", "nbdgm.destination_name"],
        condition:
            "DIRECT_UNIQUE/DIRECT_GROUP/BROADCAST datagram with FIRST = 0 (a later fragment)",
        reason: "Wireshark parses SOURCE_NAME and DESTINATION_NAME at offset 14 of every data \
                 datagram; a fragment after the first carries only a slice of the data section \
                 (the names travel in the first fragment), so what Wireshark shows as names are \
                 user-data bytes",
        spec: "RFC 1001 17.1.2; RFC 1002 4.4.1",
        side: Side::TheirsOnly,
        applies: non_first_fragment,
        check: check_continuation,
    },
    Rule {
        id: "W3 smb-in-first-fragment",
        fields: &[
            "mailslot.name",
            "mailslot.opcode",
            "mailslot.priority",
            "mailslot.class",
            "smb.timeout",
            "smb.dc",
            "smb.data_offset",
            "browser.command",
        ],
        condition: "first fragment (FIRST = 1, MORE = 1) of a fragmented datagram",
        reason: "Wireshark does not reassemble NBDGM fragments and dissects the partial user \
                 data of a first fragment as a complete SMB transaction; the mailslot write is \
                 only complete after reassembly",
        spec: "RFC 1001 17.1.2; RFC 1002 5.3.3",
        side: Side::TheirsOnly,
        applies: first_fragment,
        check: check_first_fragment,
    },
    Rule {
        id: "W4 nbstat-name-truncated",
        fields: &["nbns.netbios_name"],
        condition: "NODE STATUS RESPONSE whose node name, with non-printable octets shown as \
                    <xx>, is longer than the encoded RR_NAME minus one",
        reason: "Wireshark passes the length of the encoded RR_NAME as the size of the output \
                 buffer when it formats each 16-byte node name, so long renderings are cut",
        spec: "RFC 1002 4.2.18 (NODE_NAME is 16 octets)",
        side: Side::Both,
        applies: nbstat_response,
        check: check_nbstat_name,
    },
    Rule {
        id: "W5 nbstat-statistics-layout",
        fields: &["nbns.session_data_packet_size"],
        condition: "NODE STATUS RESPONSE with a 46-byte STATISTICS block",
        reason: "Wireshark reads one 2-byte command-block counter where RFC 1002 has three \
                 (NUMBER_FREE_COMMAND_BLOCKS, TOTAL_NUMBER_COMMAND_BLOCKS, \
                 MAX_TOTAL_NUMBER_COMMAND_BLOCKS), so its last four statistics fields are read 4 \
                 bytes early: its 'Session data packet size' is MAX_NUMBER_PENDING_SESSIONS",
        spec: "RFC 1002 4.2.18 (STATISTICS, 46 bytes)",
        side: Side::Both,
        applies: nbstat_response,
        check: check_nbstat_statistics,
    },
    Rule {
        id: "W6 mailslot-name-case",
        fields: &["mailslot.name", "browser.command", "smb_netlogon.command"],
        condition: "mailslot write whose name is \\MAILSLOT\\... in another case (e.g. \
                    \\mailslot\\Browse)",
        reason: "Wireshark recognises a mailslot only when the transaction name starts with \
                 \\MAILSLOT\\ in upper case, so it shows neither the mailslot write nor the \
                 browser frame; mailslot names are case-insensitive",
        spec: "MS-MAIL 2.2.1 (MailslotName), 3.2.5.1",
        side: Side::OursOnly,
        applies: mailslot_name_case,
        check: check_mailslot_name_case,
    },
];

/// For the one-sided divergences (W2, W3, W6): fields one tool decodes where the other,
/// against the spec, does not (or, following the spec, does not).
pub fn one_sided(ctx: &mut Ctx<'_>) {
    for r in RULES.iter().filter(|r| r.side != Side::Both) {
        if !(r.applies)(&ctx.frame) {
            continue;
        }
        for &field in r.fields {
            let shown = match r.side {
                Side::TheirsOnly => ctx.frame.ts.has(field),
                _ => !ctx.frame.ts.has(field) && ours_has(ctx.frame.rec(), field),
            };
            if !shown {
                continue;
            }
            match (r.check)(&ctx.frame, field, 0, None) {
                Ok(()) => *ctx.stats.documented.entry(r.id).or_default() += 1,
                Err(e) => ctx.stats.failures.push(super::compare::Failure {
                    file: ctx.frame.file.to_owned(),
                    frame: ctx.frame.number,
                    field: field.to_owned(),
                    ours: "-".into(),
                    theirs: ctx.frame.ts.all(field).join(","),
                    note: format!("divergence {} applies, but ours is wrong: {e}", r.id),
                }),
            }
        }
    }
}

/// Whether our record has the layer of a tshark field.
fn ours_has(rec: &serde_json::Value, field: &str) -> bool {
    let key = match field.split('.').next() {
        Some("smb_netlogon") => "netlogon",
        Some(k) => k,
        None => return false,
    };
    rec.get(key).is_some()
}

// ---------------------------------------------------------------------------------------------
// Independent readers of the raw bytes (no codec)

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Offset just after an uncompressed encoded name starting at `at`.
fn skip_name(b: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = usize::from(*b.get(at)?);
        if len == 0 {
            return Some(at + 1);
        }
        if len & 0xC0 != 0 {
            return None;
        }
        at += 1 + len;
    }
}

/// User data of an unfragmented data datagram.
fn user_data(p: &[u8]) -> Option<&[u8]> {
    let at = skip_name(p, skip_name(p, 14)?)?;
    p.get(at..)
}

/// The mailslot name and data of an SMB mailslot write (MS-MAIL 2.2.1).
fn mailslot_write(smb: &[u8]) -> Option<(String, &[u8])> {
    if smb.get(..4)? != b"\xffSMB" {
        return None;
    }
    let count = usize::from(le16(smb, 55)?);
    let offset = usize::from(le16(smb, 57)?);
    let name_end = smb.get(69..)?.iter().position(|&b| b == 0)? + 69;
    let name = smb[69..name_end].iter().map(|&b| b as char).collect();
    Some((name, smb.get(offset..offset + count)?))
}

fn latin1_z(b: &[u8]) -> String {
    b.iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as char)
        .collect()
}

fn datagram_type(f: &Frame<'_>) -> Option<(u8, u8)> {
    let p = &f.ours.payload;
    Some((*p.first()?, *p.get(1)?))
}

// ---------------------------------------------------------------------------------------------
// W1

fn lanman_data<'a>(f: &'a Frame<'_>) -> Option<&'a [u8]> {
    let (t, flags) = datagram_type(f)?;
    if !(0x10..=0x12).contains(&t) || flags & 0x03 != 0x02 {
        return None;
    }
    let (name, data) = mailslot_write(user_data(&f.ours.payload)?)?;
    name.eq_ignore_ascii_case("\\MAILSLOT\\LANMAN")
        .then_some(data)
}

fn lanman_msbrws_layout(f: &Frame<'_>) -> bool {
    lanman_data(f).is_some_and(|d| {
        matches!(d.first(), Some(0x01 | 0x0C | 0x0F)) && d.len() >= 33 && d[30..32] == [0x55, 0xAA]
    })
}

/// MS-BRWS 2.2.1 offsets: UpdateCount 1, Periodicity 2..6, ServerName 6..22, OS 22/23,
/// ServerType 24..28, Comment 32..
fn check_msbrws_announcement(
    f: &Frame<'_>,
    field: &str,
    _idx: usize,
    ours: Option<&V>,
) -> Result<(), String> {
    let d = lanman_data(f).ok_or("no LANMAN data")?;
    let spec = match field {
        "browser.update_count" => V::I(i128::from(d[1])),
        "browser.period" => V::I(i128::from(le32(d, 2).ok_or("short")?)),
        "browser.server" => V::S(ws_display(&latin1_z(&d[6..22]), Enc::Ascii)),
        "browser.os_major" => V::I(i128::from(d[22])),
        "browser.os_minor" => V::I(i128::from(d[23])),
        "browser.server_type" => V::I(i128::from(le32(d, 24).ok_or("short")?)),
        "browser.comment" => V::S(ws_display(&latin1_z(&d[32..]), Enc::Ascii)),
        _ => return Err(format!("field {field} not covered")),
    };
    if ours == Some(&spec) {
        Ok(())
    } else {
        Err(format!("MS-BRWS 2.2.1 layout gives {spec}"))
    }
}

// ---------------------------------------------------------------------------------------------
// W2, W3

fn non_first_fragment(f: &Frame<'_>) -> bool {
    datagram_type(f).is_some_and(|(t, flags)| (0x10..=0x12).contains(&t) && flags & 0x02 == 0)
}

fn first_fragment(f: &Frame<'_>) -> bool {
    datagram_type(f).is_some_and(|(t, flags)| (0x10..=0x12).contains(&t) && flags & 0x03 == 0x03)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// RFC 1001 17.1.2: no names; the bytes after the 14-byte header are data-section bytes.
fn check_continuation(f: &Frame<'_>, _: &str, _: usize, _: Option<&V>) -> Result<(), String> {
    let d = &f.rec()["nbdgm"];
    if !d["source_name"].is_null() || !d["destination_name"].is_null() {
        return Err("we decoded names in a non-first fragment".into());
    }
    let want = hex(f.ours.payload.get(14..).unwrap_or(&[]));
    if d["fragment_data"].as_str() != Some(want.as_str()) {
        return Err(format!(
            "fragment_data is not the bytes after the header ({want})"
        ));
    }
    Ok(())
}

/// The user data of a first fragment is kept raw, not decoded.
fn check_first_fragment(f: &Frame<'_>, _: &str, _: usize, _: Option<&V>) -> Result<(), String> {
    let rec = f.rec();
    if rec.get("mailslot").is_some() || rec.get("browser").is_some() {
        return Err("we decoded the partial user data of a first fragment".into());
    }
    let want = hex(user_data(&f.ours.payload).ok_or("no user data")?);
    if rec["data"].as_str() != Some(want.as_str()) {
        return Err("data is not the user data of the fragment".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// W4

fn nbstat_response(f: &Frame<'_>) -> bool {
    f.rec()["nbns"]["answers"]
        .as_array()
        .is_some_and(|a| a.iter().any(|r| r["type"].as_u64() == Some(0x21)))
}

/// RR_NAME length and RDATA of the single NBSTAT answer of a node status response.
fn nbstat_rdata(p: &[u8]) -> Result<(usize, &[u8]), String> {
    let qd = u16::from_be_bytes([p[4], p[5]]);
    let an = u16::from_be_bytes([p[6], p[7]]);
    if qd != 0 || an != 1 {
        return Err("only single-answer responses are checked".into());
    }
    let name_end = skip_name(p, 12).ok_or("RR_NAME")?;
    let rdlength = usize::from(u16::from_be_bytes([
        *p.get(name_end + 8).ok_or("RDLENGTH")?,
        *p.get(name_end + 9).ok_or("RDLENGTH")?,
    ]));
    let rdata = p
        .get(name_end + 10..name_end + 10 + rdlength)
        .ok_or("RDATA")?;
    Ok((name_end - 12, rdata))
}

/// SESSION_DATA_PACKET_SIZE: the last 2 of the 46 STATISTICS bytes after the name table.
fn check_nbstat_statistics(
    f: &Frame<'_>,
    _: &str,
    _: usize,
    ours: Option<&V>,
) -> Result<(), String> {
    let (_, rdata) = nbstat_rdata(&f.ours.payload)?;
    let num = usize::from(*rdata.first().ok_or("NUM_NAMES")?);
    let stats = rdata
        .get(1 + 18 * num..1 + 18 * num + 46)
        .ok_or("STATISTICS")?;
    let spec = V::I(i128::from(u16::from_be_bytes([stats[44], stats[45]])));
    if ours == Some(&spec) {
        Ok(())
    } else {
        Err(format!("RFC 1002 4.2.18 gives {spec}"))
    }
}

/// The `idx`-th node name of the first NBSTAT answer, from the raw bytes (RFC 1002 4.2.18:
/// header, RR_NAME, TYPE, CLASS, TTL, RDLENGTH, NUM_NAMES, then 18-byte entries).
fn check_nbstat_name(f: &Frame<'_>, _: &str, idx: usize, ours: Option<&V>) -> Result<(), String> {
    let (rr_name_len, rdata) = nbstat_rdata(&f.ours.payload)?;
    let num = usize::from(*rdata.first().ok_or("NUM_NAMES")?);
    if idx >= num {
        return Err("no such entry".into());
    }
    let raw = rdata.get(1 + 18 * idx..1 + 18 * idx + 15).ok_or("entry")?;
    let spec = render_name(raw);
    // The Wireshark rendering (trailing spaces kept out) must be longer than its buffer.
    let full: String = raw
        .iter()
        .map(|&b| {
            if (0x20..0x7F).contains(&b) {
                (b as char).to_string()
            } else {
                format!("<{b:02x}>")
            }
        })
        .collect();
    if full.trim_end().len() < rr_name_len {
        return Err(format!(
            "rendering of {} chars fits Wireshark's {}-byte buffer",
            full.trim_end().len(),
            rr_name_len
        ));
    }
    if ours == Some(&V::S(spec.clone())) {
        Ok(())
    } else {
        Err(format!("RFC 1002 4.2.18 gives {spec:?}"))
    }
}

// ---------------------------------------------------------------------------------------------
// W6

fn raw_mailslot_name(f: &Frame<'_>) -> Option<String> {
    let (t, flags) = datagram_type(f)?;
    if !(0x10..=0x12).contains(&t) || flags & 0x03 != 0x02 {
        return None;
    }
    mailslot_write(user_data(&f.ours.payload)?).map(|(name, _)| name)
}

fn mailslot_name_case(f: &Frame<'_>) -> bool {
    raw_mailslot_name(f).is_some_and(|n| {
        n.len() >= 10
            && n[..10].eq_ignore_ascii_case("\\MAILSLOT\\")
            && !n.starts_with("\\MAILSLOT\\")
    })
}

/// MS-MAIL 2.2.1: the name as sent, and decoded like its upper-case form.
fn check_mailslot_name_case(
    f: &Frame<'_>,
    field: &str,
    _: usize,
    _: Option<&V>,
) -> Result<(), String> {
    let raw = raw_mailslot_name(f).ok_or("no mailslot name")?;
    let rec = f.rec();
    if rec["mailslot"]["name"].as_str() != Some(raw.as_str()) {
        return Err(format!("mailslot name is not {raw:?}"));
    }
    let upper = raw.to_ascii_uppercase();
    let want = match field {
        "browser.command" => upper == "\\MAILSLOT\\BROWSE" || upper == "\\MAILSLOT\\LANMAN",
        "smb_netlogon.command" => upper.starts_with("\\MAILSLOT\\NET\\"),
        _ => true,
    };
    if want && rec.get(ours_key(field)).is_none() {
        return Err(format!("{upper} not decoded"));
    }
    Ok(())
}

fn ours_key(field: &str) -> &str {
    match field.split('.').next() {
        Some("smb_netlogon") => "netlogon",
        Some(k) => k,
        None => "",
    }
}

/// Every rule, for the report.
pub fn describe() -> Vec<String> {
    RULES
        .iter()
        .map(|r| {
            format!(
                "{}: fields {}; when {}; {} [{}]",
                r.id,
                r.fields.join(", "),
                r.condition,
                r.reason,
                r.spec
            )
        })
        .collect()
}
