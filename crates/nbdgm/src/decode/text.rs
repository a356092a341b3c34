//! Human output of `decode`: one summary line per packet, and with `-v` the whole
//! field tree (the same fields as the JSON output, so the two never drift apart).
//! Every string from the capture is escaped (`nbdgm_wire::text`): no
//! control character, ESC sequence or bidi override reaches the terminal.

use super::record::{BrowserPayload, BrowserView, Protocol, Record};
use nbdgm_wire::browser::BrowserFrame;
use nbdgm_wire::text::{escape, Escaped};
use serde_json::Value;
use std::fmt::Write;

/// `frame time src -> dst PROTO what...`.
pub fn summary(r: &Record) -> String {
    let mut out = Vec::with_capacity(160);
    summary_into(&mut out, r);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// [`summary`], appended to `out` (the batch buffer of `decode`): the same bytes,
/// without `fmt` and without a String per line.
pub fn summary_into(out: &mut Vec<u8>, r: &Record) {
    push_padded(out, r.frame, 6);
    out.push(b' ');
    out.extend_from_slice(r.time.as_bytes());
    out.push(b' ');
    out.extend_from_slice(r.src.as_bytes());
    out.extend_from_slice(b" -> ");
    out.extend_from_slice(r.dst.as_bytes());
    out.extend_from_slice(match r.protocol {
        Protocol::Nbdgm => b" NBDGM",
        Protocol::Nbns => b" NBNS",
    });
    if let Some(d) = &r.nbdgm {
        out.push(b' ');
        push_esc(out, d.kind);
        if let (Some(a), Some(b)) = (&d.source_name, &d.destination_name) {
            push_name_bytes(out, a);
            out.extend_from_slice(b" ->");
            push_name_bytes(out, b);
        } else if let Some(b) = &d.destination_name {
            push_name_bytes(out, b);
        }
        if let Some(code) = d.error_code {
            out.extend_from_slice(b" code=0x");
            push_hex(out, code.into(), 2);
            out.extend_from_slice(b" (");
            push_esc(out, d.error.unwrap_or("unknown"));
            out.push(b')');
        }
        if d.flags.more || !d.flags.first {
            out.extend_from_slice(b" fragment(first=");
            out.extend_from_slice(bool_text(d.flags.first));
            out.extend_from_slice(b", more=");
            out.extend_from_slice(bool_text(d.flags.more));
            out.extend_from_slice(b", offset=");
            push_u64(out, d.offset.unwrap_or(0).into());
            out.push(b')');
        }
    }
    if let Some(n) = &r.nbns {
        out.push(b' ');
        push_esc(out, n.kind);
        out.extend_from_slice(b" id=0x");
        push_hex(out, n.id.into(), 4);
        if let Some(q) = n.questions.first() {
            push_name_bytes(out, &q.name);
        } else if let Some(a) = n.answers.first() {
            push_name_bytes(out, &a.name);
        }
        if n.rcode != 0 {
            out.extend_from_slice(b" rcode=");
            push_esc(out, n.rcode_name);
        }
        for rec in n.answers.iter().chain(&n.additional) {
            for a in rec.addresses.iter().flatten() {
                out.push(b' ');
                push_esc(out, &a.ip);
            }
            if let Some(ns) = &rec.node_status {
                out.extend_from_slice(b" names=");
                push_u64(out, ns.names.len() as u64);
                if let Some(mac) = &ns.unit_id {
                    out.extend_from_slice(b" mac=");
                    push_esc(out, mac);
                }
            }
        }
    }
    if let Some(m) = &r.mailslot {
        out.push(b' ');
        push_esc(out, &m.name);
    }
    if let Some(b) = &r.browser {
        out.push(b' ');
        push_esc(out, b.command);
        if !browser_detail_bytes(out, b) {
            let mut s = String::new();
            browser_detail(&mut s, b);
            out.extend_from_slice(s.as_bytes());
        }
    }
    if let Some(n) = &r.netlogon {
        out.push(b' ');
        push_esc(out, n.command);
        let mut s = String::new();
        detail_fields(
            &mut s,
            &serde_json::to_value(n).unwrap_or(Value::Null),
            &[
                "computer_name",
                "primary_dc_name",
                "unicode_computer_name",
                "user_name",
                "mailslot_name",
            ],
        );
        out.extend_from_slice(s.as_bytes());
    }
    if let Some(m) = &r.messenger {
        out.extend_from_slice(b" from=");
        push_quoted_bytes(out, &m.sender);
        out.extend_from_slice(b" to=");
        push_quoted_bytes(out, &m.recipient);
        out.extend_from_slice(b" text=");
        push_quoted_bytes(out, &m.text);
    }
    if let Some(reason) = &r.malformed {
        out.extend_from_slice(b" [MALFORMED: ");
        push_esc(out, reason);
        out.push(b']');
    }
    for w in &r.warnings {
        out.extend_from_slice(b" [warning: ");
        push_esc(out, w);
        out.push(b']');
    }
}

/// True for bytes that [`escape`] keeps as they are, checked without decoding:
/// printable ASCII other than the backslash.
fn plain_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'\\')
}

/// `s` through [`escape`], appended; printable ASCII is copied as it is (what
/// `escape` returns for it).
fn push_esc(out: &mut Vec<u8>, s: &str) {
    if plain_ascii(s) {
        out.extend_from_slice(s.as_bytes());
    } else {
        out.extend_from_slice(escape(s).as_bytes());
    }
}

/// [`push_quoted`] into bytes.
fn push_quoted_bytes(out: &mut Vec<u8>, t: &str) {
    if plain_ascii(t) && !t.contains('"') {
        out.push(b'"');
        out.extend_from_slice(t.as_bytes());
        out.push(b'"');
    } else {
        let mut s = String::with_capacity(t.len() + 8);
        push_quoted(&mut s, t);
        out.extend_from_slice(s.as_bytes());
    }
}

/// [`push_name`] into bytes.
fn push_name_bytes(out: &mut Vec<u8>, n: &super::record::NameView) {
    out.push(b' ');
    push_esc(out, &n.name);
    out.push(b'<');
    push_hex(out, n.suffix.into(), 2);
    out.push(b'>');
    if !n.scope.is_empty() {
        out.push(b'.');
        push_esc(out, &n.scope);
    }
}

fn bool_text(v: bool) -> &'static [u8] {
    if v {
        b"true"
    } else {
        b"false"
    }
}

/// Decimal, as `{}` writes it.
fn push_u64(out: &mut Vec<u8>, v: u64) {
    push_padded(out, v, 0);
}

/// Decimal right-aligned in `width` columns with spaces, as `{:>width$}` writes it.
fn push_padded(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut n = v;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    out.resize(out.len() + width.saturating_sub(len), b' ');
    out.extend_from_slice(&digits[i..]);
}

/// Lower-case hex with at least `width` digits, as `{:0width$x}` writes it.
fn push_hex(out: &mut Vec<u8>, v: u64, width: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut n = v;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = HEX[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    while digits.len() - i < width && i > 0 {
        i -= 1;
        digits[i] = b'0';
    }
    out.extend_from_slice(&digits[i..]);
}

/// The announcements (most of a LAN's browser traffic) into bytes, as
/// [`browser_detail`] writes them; false for every other frame.
fn browser_detail_bytes(out: &mut Vec<u8>, b: &BrowserView) -> bool {
    match &b.frame {
        BrowserPayload::Browse(
            BrowserFrame::HostAnnouncement(a) | BrowserFrame::LocalMasterAnnouncement(a),
        ) => {
            out.extend_from_slice(b" server_name=");
            push_quoted_bytes(out, &a.server_name);
            out.extend_from_slice(b" server_type=0x");
            push_hex(out, a.server_type.into(), 8);
            out.extend_from_slice(b" os_major=");
            push_u64(out, a.os_major.into());
            out.extend_from_slice(b" os_minor=");
            push_u64(out, a.os_minor.into());
            out.extend_from_slice(b" comment=");
            push_quoted_bytes(out, &a.comment);
            true
        }
        BrowserPayload::Browse(BrowserFrame::DomainAnnouncement(d)) => {
            out.extend_from_slice(b" machine_group=");
            push_quoted_bytes(out, &d.machine_group);
            out.extend_from_slice(b" local_master_name=");
            push_quoted_bytes(out, &d.local_master_name);
            out.extend_from_slice(b" server_type=0x");
            push_hex(out, d.server_type.into(), 8);
            true
        }
        _ => false,
    }
}

/// `"text"`, escaped, with `"` as `\"` (the form `{:?}` gave for plain text).
fn quoted(t: &str) -> String {
    let mut s = String::with_capacity(t.len() + 2);
    push_quoted(&mut s, t);
    s
}

/// [`quoted`], appended to `s`.
fn push_quoted(s: &mut String, t: &str) {
    s.push('"');
    for part in escape(t).split_inclusive('"') {
        match part.strip_suffix('"') {
            Some(head) => {
                s.push_str(head);
                s.push_str("\\\"");
            }
            None => s.push_str(part),
        }
    }
    s.push('"');
}

/// The detail fields of any browser frame, through its JSON form (the reference that
/// [`browser_detail_bytes`] is tested against).
fn browser_detail(s: &mut String, b: &BrowserView) {
    let v = serde_json::to_value(b).unwrap_or(Value::Null);
    detail_fields(
        s,
        &v,
        &[
            "server_name",
            "machine_group",
            "local_master_name",
            "response_name",
            "master_name",
            "browser_to_promote",
            "servers",
            "count",
            "token",
            "server_type",
            "criteria",
            "os_major",
            "os_minor",
            "comment",
        ],
    );
}

fn detail_fields(s: &mut String, v: &Value, keys: &[&str]) {
    for k in keys {
        match v.get(*k) {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) => {
                let _ = write!(s, " {k}=");
                push_quoted(s, t);
            }
            Some(Value::Number(n)) if *k == "server_type" || *k == "criteria" => {
                let _ = write!(s, " {k}=0x{:08x}", n.as_u64().unwrap_or(0));
            }
            Some(other) => {
                let _ = write!(s, " {k}={other}");
            }
        }
    }
}

/// The full field tree, indented two spaces per level.
pub fn tree(r: &Record) -> String {
    let v = serde_json::to_value(r).unwrap_or(Value::Null);
    let mut s = summary(r);
    s.push('\n');
    if let Value::Object(map) = &v {
        for (k, val) in map {
            if matches!(k.as_str(), "frame" | "time" | "src" | "dst" | "protocol") {
                continue;
            }
            if matches!(val, Value::Null) || matches!(val, Value::Array(a) if a.is_empty()) {
                continue;
            }
            walk(&mut s, k, val, 1);
        }
    }
    s
}

fn walk(s: &mut String, key: &str, v: &Value, depth: usize) {
    let pad = "  ".repeat(depth);
    match v {
        Value::Object(map) => {
            let _ = writeln!(s, "{pad}{}:", Escaped(key));
            for (k, val) in map {
                walk(s, k, val, depth + 1);
            }
        }
        Value::Array(items) if items.iter().any(|i| i.is_object()) => {
            let _ = writeln!(s, "{pad}{}: [{}]", Escaped(key), items.len());
            for (i, item) in items.iter().enumerate() {
                walk(s, &format!("[{i}]"), item, depth + 1);
            }
        }
        Value::Number(n) if n.is_u64() => {
            let x = n.as_u64().unwrap_or(0);
            if key.contains("type")
                || key.contains("flags")
                || key == "criteria"
                || key.ends_with("code")
            {
                let _ = writeln!(s, "{pad}{key}: {x} (0x{x:x})");
            } else {
                let _ = writeln!(s, "{pad}{key}: {x}");
            }
        }
        Value::String(t) => {
            let _ = writeln!(s, "{pad}{}: {}", Escaped(key), quoted(t));
        }
        Value::Array(items) => {
            let list: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::String(t) => quoted(t),
                    other => escape(&other.to_string()).into_owned(),
                })
                .collect();
            let _ = writeln!(s, "{pad}{}: [{}]", Escaped(key), list.join(","));
        }
        other => {
            let _ = writeln!(s, "{pad}{}: {}", Escaped(key), escape(&other.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_wire::browser::{Announcement, DomainAnnouncement};

    const HOSTILE: &[&str] = &[
        "",
        "LAB-PC",
        "say \"hi\"",
        "back\\slash",
        "a\nb\r\t\x1b[2K\x7f",
        "\u{9b}31m\u{202e}evil\u{2066}",
        "é ü 漢字",
        "\"\\\"",
        "tab\there \"q\" \u{feff}",
        "\0nul\u{1}",
    ];

    fn view(frame: BrowserFrame) -> BrowserView {
        BrowserView {
            command_code: frame.command_code(),
            command: frame.command(),
            server_type_names: None,
            frame: BrowserPayload::Browse(frame),
        }
    }

    /// The direct bytes of the announcements equal the detail fields of their JSON form.
    #[test]
    fn announcement_detail_matches_json_path() {
        for (i, &a) in HOSTILE.iter().enumerate() {
            for &b in HOSTILE {
                let host = Announcement {
                    server_name: a.to_owned(),
                    comment: b.to_owned(),
                    server_type: 0x0001_0203u32.wrapping_mul(i as u32 + 1),
                    os_major: i as u8,
                    os_minor: 255 - i as u8,
                    ..Announcement::default()
                };
                let domain = DomainAnnouncement {
                    machine_group: a.to_owned(),
                    local_master_name: b.to_owned(),
                    server_type: u32::MAX >> i,
                    ..DomainAnnouncement::default()
                };
                for f in [
                    BrowserFrame::HostAnnouncement(host.clone()),
                    BrowserFrame::LocalMasterAnnouncement(host.clone()),
                    BrowserFrame::DomainAnnouncement(domain),
                ] {
                    let v = view(f);
                    let mut reference = String::new();
                    browser_detail(&mut reference, &v);
                    let mut direct = Vec::new();
                    assert!(browser_detail_bytes(&mut direct, &v));
                    assert_eq!(String::from_utf8(direct).unwrap(), reference, "{a:?} {b:?}");
                }
            }
        }
    }

    /// The byte helpers write what `fmt` and `escape` wrote.
    #[test]
    fn helpers_match_fmt_and_escape() {
        for &s in HOSTILE {
            let mut out = Vec::new();
            push_esc(&mut out, s);
            assert_eq!(out, escape(s).as_bytes(), "{s:?}");
            let mut out = Vec::new();
            push_quoted_bytes(&mut out, s);
            assert_eq!(out, quoted(s).as_bytes(), "{s:?}");
        }
        for v in [
            0u64,
            1,
            9,
            10,
            15,
            16,
            255,
            4095,
            65535,
            99_999,
            999_999,
            1_000_000,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            push_padded(&mut out, v, 6);
            assert_eq!(out, format!("{v:>6}").as_bytes());
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
            for w in [2, 4, 8] {
                let mut out = Vec::new();
                push_hex(&mut out, v, w);
                assert_eq!(out, format!("{v:0w$x}").as_bytes());
            }
        }
    }
}
