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
    let mut s = String::with_capacity(160);
    let _ = write!(
        s,
        "{:>6} {} {} -> {} {}",
        r.frame,
        r.time,
        r.src,
        r.dst,
        match r.protocol {
            Protocol::Nbdgm => "NBDGM",
            Protocol::Nbns => "NBNS",
        }
    );
    if let Some(d) = &r.nbdgm {
        let _ = write!(s, " {}", Escaped(d.kind));
        if let (Some(a), Some(b)) = (&d.source_name, &d.destination_name) {
            push_name(&mut s, a);
            s.push_str(" ->");
            push_name(&mut s, b);
        } else if let Some(b) = &d.destination_name {
            push_name(&mut s, b);
        }
        if let Some(code) = d.error_code {
            let _ = write!(
                s,
                " code=0x{code:02x} ({})",
                Escaped(d.error.unwrap_or("unknown"))
            );
        }
        if d.flags.more || !d.flags.first {
            let _ = write!(
                s,
                " fragment(first={}, more={}, offset={})",
                d.flags.first,
                d.flags.more,
                d.offset.unwrap_or(0)
            );
        }
    }
    if let Some(n) = &r.nbns {
        let _ = write!(s, " {} id=0x{:04x}", Escaped(n.kind), n.id);
        if let Some(q) = n.questions.first() {
            push_name(&mut s, &q.name);
        } else if let Some(a) = n.answers.first() {
            push_name(&mut s, &a.name);
        }
        if n.rcode != 0 {
            let _ = write!(s, " rcode={}", Escaped(n.rcode_name));
        }
        for rec in n.answers.iter().chain(&n.additional) {
            for a in rec.addresses.iter().flatten() {
                let _ = write!(s, " {}", Escaped(&a.ip));
            }
            if let Some(ns) = &rec.node_status {
                let _ = write!(s, " names={}", ns.names.len());
                if let Some(mac) = &ns.unit_id {
                    let _ = write!(s, " mac={}", Escaped(mac));
                }
            }
        }
    }
    if let Some(m) = &r.mailslot {
        let _ = write!(s, " {}", Escaped(&m.name));
    }
    if let Some(b) = &r.browser {
        let _ = write!(s, " {}", Escaped(b.command));
        browser_detail(&mut s, b);
    }
    if let Some(n) = &r.netlogon {
        let _ = write!(s, " {}", Escaped(n.command));
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
    }
    if let Some(m) = &r.messenger {
        let _ = write!(
            s,
            " from={} to={} text={}",
            quoted(&m.sender),
            quoted(&m.recipient),
            quoted(&m.text)
        );
    }
    if let Some(reason) = &r.malformed {
        let _ = write!(s, " [MALFORMED: {}]", Escaped(reason));
    }
    for w in &r.warnings {
        let _ = write!(s, " [warning: {}]", Escaped(w));
    }
    s
}

/// ` NAME<xx>.scope`, escaped, appended to `s`.
fn push_name(s: &mut String, n: &super::record::NameView) {
    s.push(' ');
    s.push_str(&escape(&n.name));
    let _ = write!(s, "<{:02x}>", n.suffix);
    if !n.scope.is_empty() {
        s.push('.');
        s.push_str(&escape(&n.scope));
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

fn browser_detail(s: &mut String, b: &BrowserView) {
    // The announcements (most of a LAN's browser traffic) without the JSON detour:
    // the same keys in the same order as `detail_fields` gives them.
    match &b.frame {
        BrowserPayload::Browse(
            BrowserFrame::HostAnnouncement(a) | BrowserFrame::LocalMasterAnnouncement(a),
        ) => {
            s.push_str(" server_name=");
            push_quoted(s, &a.server_name);
            let _ = write!(
                s,
                " server_type=0x{:08x} os_major={} os_minor={} comment=",
                a.server_type, a.os_major, a.os_minor
            );
            push_quoted(s, &a.comment);
            return;
        }
        BrowserPayload::Browse(BrowserFrame::DomainAnnouncement(d)) => {
            s.push_str(" machine_group=");
            push_quoted(s, &d.machine_group);
            s.push_str(" local_master_name=");
            push_quoted(s, &d.local_master_name);
            let _ = write!(s, " server_type=0x{:08x}", d.server_type);
            return;
        }
        _ => {}
    }
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
