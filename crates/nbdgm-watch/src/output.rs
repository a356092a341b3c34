//! Alert output (docs/watch.md, "Output formats"): Suricata's EVE alert record
//! (`eve`), nbdgm's own flat JSON line (`ndjson`) and one escaped line per alert for
//! humans (`text`); and the signature table of `--list-signatures`.
//!
//! JSON keeps every string exact (serde escapes it); text passes every string that can
//! come from the network through `nbdgm_wire::text::escape`.

use crate::alert::Alert;
use crate::engine::PORTS;
use crate::signature::{Signature, ALL, GID};
use nbdgm_capture::Timestamp;
use nbdgm_wire::text::escape;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::SocketAddr;

/// An output format of alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per alert for humans, network strings escaped.
    Text,
    /// nbdgm's flat JSON line.
    Ndjson,
    /// Suricata EVE JSON (`event_type: alert`).
    Eve,
}

/// The evidence keys `eve` adds to the `nbdgm` object; an evidence field of the same
/// name with another value is kept as `evidence_<key>` (an evidence `frame` equal to the
/// alert's is the same fact, kept once).
pub const EVE_RESERVED: [&str; 3] = ["frame", "slug", "severity_name"];

/// Suricata's timestamp form: RFC 3339, microseconds, numeric offset without colon
/// (`2020-09-18T14:59:59.123456+0000`). Always UTC.
pub fn suricata_timestamp(t: Timestamp) -> String {
    let mut s = t.to_rfc3339_micros();
    if s.ends_with('Z') {
        s.pop();
        s.push_str("+0000");
    }
    s
}

/// The application protocol of a datagram by its service port (destination first):
/// `nbns` (137), `netbios-dgm` (138), `mdns` (5353), `llmnr` (5355).
pub fn app_proto(src: SocketAddr, dst: SocketAddr) -> Option<&'static str> {
    let port = PORTS
        .iter()
        .copied()
        .find(|&p| p == dst.port())
        .or_else(|| PORTS.iter().copied().find(|&p| p == src.port()))?;
    Some(match port {
        137 => "nbns",
        138 => "netbios-dgm",
        5353 => "mdns",
        _ => "llmnr",
    })
}

/// A stable flow id: FNV-1a over protocol and both endpoints in canonical order (the
/// same for both directions), cut to 52 bits so JSON readers keep it exact.
pub fn flow_id(a: SocketAddr, b: SocketAddr) -> u64 {
    let (lo, hi) = if (a.ip(), a.port()) <= (b.ip(), b.port()) {
        (a, b)
    } else {
        (b, a)
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &x in bytes {
            h ^= u64::from(x);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&[17]);
    for ep in [lo, hi] {
        match ep.ip() {
            std::net::IpAddr::V4(v) => eat(&v.octets()),
            std::net::IpAddr::V6(v) => eat(&v.octets()),
        }
        eat(&ep.port().to_be_bytes());
    }
    h & ((1 << 52) - 1)
}

#[derive(Serialize)]
struct EveAlert<'a> {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: &'a str,
    category: &'a str,
    severity: u8,
}

#[derive(Serialize)]
struct Eve<'a> {
    timestamp: String,
    flow_id: u64,
    pcap_cnt: u64,
    event_type: &'static str,
    src_ip: String,
    src_port: u16,
    dest_ip: String,
    dest_port: u16,
    proto: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'static str>,
    alert: EveAlert<'a>,
    nbdgm: Map<String, Value>,
}

/// The EVE alert record of `a`, one JSON line without newline (keys in Suricata's order).
pub fn eve(a: &Alert) -> String {
    let s = a.signature;
    let mut nbdgm = Map::new();
    for (k, v) in &a.evidence {
        if k == "frame" && v.as_u64() == Some(a.frame) {
            continue;
        }
        if EVE_RESERVED.contains(&k.as_str()) {
            nbdgm.insert(format!("evidence_{k}"), v.clone());
        } else {
            nbdgm.insert(k.clone(), v.clone());
        }
    }
    nbdgm.insert("frame".into(), Value::from(a.frame));
    nbdgm.insert("slug".into(), Value::from(s.slug));
    nbdgm.insert("severity_name".into(), Value::from(a.severity.as_str()));
    let rec = Eve {
        timestamp: suricata_timestamp(a.time),
        flow_id: flow_id(a.src, a.dst),
        pcap_cnt: a.frame,
        event_type: "alert",
        src_ip: a.src.ip().to_string(),
        src_port: a.src.port(),
        dest_ip: a.dst.ip().to_string(),
        dest_port: a.dst.port(),
        proto: "UDP",
        app_proto: app_proto(a.src, a.dst),
        alert: EveAlert {
            action: "allowed",
            gid: GID,
            signature_id: s.id,
            rev: s.rev,
            signature: s.msg,
            category: s.category,
            severity: a.severity.number(),
        },
        nbdgm,
    };
    serde_json::to_string(&rec).unwrap_or_default()
}

#[derive(Serialize)]
struct Flat<'a> {
    time: String,
    frame: u64,
    signature_id: u32,
    slug: &'a str,
    severity: u8,
    severity_name: &'a str,
    src: String,
    dst: String,
    message: &'a str,
    evidence: &'a Map<String, Value>,
}

/// nbdgm's flat record of `a`, one JSON line without newline.
pub fn ndjson(a: &Alert) -> String {
    let rec = Flat {
        time: a.time.to_rfc3339_micros(),
        frame: a.frame,
        signature_id: a.signature.id,
        slug: a.signature.slug,
        severity: a.severity.number(),
        severity_name: a.severity.as_str(),
        src: a.src.to_string(),
        dst: a.dst.to_string(),
        message: a.signature.msg,
        evidence: &a.evidence,
    };
    serde_json::to_string(&rec).unwrap_or_default()
}

/// One line for humans (no newline): time, severity, slug, `src -> dst`, message, then
/// `| frame=N key=value ...` with every string escaped (an evidence `frame` equal to
/// the alert's is not repeated).
pub fn text(a: &Alert) -> String {
    let mut out = format!(
        "{} {:<6} {} {} -> {} {} | frame={}",
        a.time.to_rfc3339_micros(),
        a.severity.as_str(),
        a.signature.slug,
        a.src,
        a.dst,
        a.signature.msg,
        a.frame
    );
    for (k, v) in &a.evidence {
        if k == "frame" && v.as_u64() == Some(a.frame) {
            continue; // the same fact as `frame=` above
        }
        let _ = write!(out, " {}=", escape(k));
        match v {
            Value::String(s) => push_text_string(&mut out, s),
            Value::Array(_) | Value::Object(_) => push_compact(&mut out, v),
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

/// A string value: bare when it is one plain word, else quoted; escaped either way.
fn push_text_string(out: &mut String, s: &str) {
    let bare = !s.is_empty() && !s.chars().any(|c| c == ' ' || c == '"' || c == '=');
    if bare {
        out.push_str(&escape(s));
    } else {
        push_quoted(out, s);
    }
}

fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    out.push_str(&escape(s).replace('"', "\\\""));
    out.push('"');
}

/// Compact JSON for nested evidence, its strings (and keys) escaped for a terminal.
fn push_compact(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => push_quoted(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_compact(out, x);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_quoted(out, k);
                out.push(':');
                push_compact(out, x);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Writes `a` in `format`, one line.
pub fn write_alert(w: &mut dyn Write, format: Format, a: &Alert) -> io::Result<()> {
    let line = match format {
        Format::Text => text(a),
        Format::Ndjson => ndjson(a),
        Format::Eve => eve(a),
    };
    writeln!(w, "{line}")
}

/// One signature as JSON: id, rev, slug, severity, category, message.
pub fn signature_json(s: &Signature) -> Value {
    serde_json::json!({
        "id": s.id,
        "rev": s.rev,
        "slug": s.slug,
        "severity": s.severity.as_str(),
        "category": s.category,
        "message": s.msg,
    })
}

/// The signature table for `--list-signatures`: text columns, or one JSON object a line.
pub fn write_signatures(w: &mut dyn Write, format: Format) -> io::Result<()> {
    if format != Format::Text {
        for s in ALL {
            writeln!(w, "{}", signature_json(s))?;
        }
        return Ok(());
    }
    let slug_w = ALL.iter().map(|s| s.slug.len()).max().unwrap_or(4);
    let cat_w = ALL.iter().map(|s| s.category.len()).max().unwrap_or(8);
    writeln!(
        w,
        "{:<7}  {:<slug_w$}  {:<8}  {:<cat_w$}  MESSAGE",
        "ID", "SLUG", "SEVERITY", "CATEGORY"
    )?;
    for s in ALL {
        writeln!(
            w,
            "{:<7}  {:<slug_w$}  {:<8}  {:<cat_w$}  {}",
            s.id,
            s.slug,
            s.severity.as_str(),
            s.category,
            s.msg
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature;
    use crate::Severity;

    fn alert() -> Alert {
        let src: SocketAddr = "198.51.100.7:137".parse().unwrap();
        let dst: SocketAddr = "198.51.100.255:137".parse().unwrap();
        let payload = [0u8; 0];
        let p = crate::Packet {
            frame: 42,
            time: Timestamp::new(1_600_441_199, 123_456_789),
            src,
            dst,
            src_mac: None,
            payload: &payload,
        };
        Alert::new(&signature::POISONER, &p)
            .with("name", "EVIL\u{1b}[2J\nNAME\u{202e}gpj.exe")
            .with("txid", 4660)
            .with("owners", serde_json::json!(["198.51.100.1", "x\u{7}y"]))
            .with("frame", 7)
            .severity(Severity::Medium)
    }

    #[test]
    fn eve_golden() {
        let line = eve(&alert());
        let v: Value = serde_json::from_str(&line).unwrap();
        let want = serde_json::json!({
            "timestamp": "2020-09-18T14:59:59.123456+0000",
            "flow_id": flow_id(alert().src, alert().dst),
            "pcap_cnt": 42,
            "event_type": "alert",
            "src_ip": "198.51.100.7",
            "src_port": 137,
            "dest_ip": "198.51.100.255",
            "dest_port": 137,
            "proto": "UDP",
            "app_proto": "nbns",
            "alert": {
                "action": "allowed",
                "gid": 1,
                "signature_id": 1_138_108,
                "rev": 1,
                "signature": "NBDGM Responder-style name poisoner (confidence raised step by step)",
                "category": "Name Poisoning",
                "severity": 2
            },
            "nbdgm": {
                "name": "EVIL\u{1b}[2J\nNAME\u{202e}gpj.exe",
                "txid": 4660,
                "owners": ["198.51.100.1", "x\u{7}y"],
                "evidence_frame": 7,
                "frame": 42,
                "slug": "poisoner",
                "severity_name": "medium"
            }
        });
        assert_eq!(v, want);
        // Key order of the record as Suricata writes it.
        assert!(
            line.starts_with("{\"timestamp\":\"2020-09-18T14:59:59.123456+0000\",\"flow_id\":"),
            "{line}"
        );
        assert!(!line.contains('\n') && !line.contains('\u{1b}'), "{line}");
        // An evidence frame equal to the alert's is kept once.
        let same = alert().with("frame", 42);
        let v: Value = serde_json::from_str(&eve(&same)).unwrap();
        assert_eq!(v["nbdgm"]["frame"], 42);
        assert!(v["nbdgm"].get("evidence_frame").is_none(), "{v}");
    }

    #[test]
    fn flow_id_is_stable_and_symmetric() {
        let a: SocketAddr = "198.51.100.7:137".parse().unwrap();
        let b: SocketAddr = "198.51.100.8:137".parse().unwrap();
        assert_eq!(flow_id(a, b), flow_id(b, a));
        assert_ne!(flow_id(a, a), flow_id(a, b));
        assert!(flow_id(a, b) < 1 << 52);
    }

    #[test]
    fn app_proto_by_port() {
        let p = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            app_proto(p("[fe80::1]:5353"), p("[ff02::fb]:5353")),
            Some("mdns")
        );
        assert_eq!(
            app_proto(p("10.0.0.1:50000"), p("224.0.0.252:5355")),
            Some("llmnr")
        );
        assert_eq!(
            app_proto(p("10.0.0.1:138"), p("10.0.0.2:40000")),
            Some("netbios-dgm")
        );
        assert_eq!(app_proto(p("10.0.0.1:1"), p("10.0.0.2:2")), None);
    }

    #[test]
    fn ndjson_golden() {
        let line = ndjson(&alert());
        let want = concat!(
            r#"{"time":"2020-09-18T14:59:59.123456Z","frame":42,"signature_id":1138108,"#,
            r#""slug":"poisoner","severity":2,"severity_name":"medium","#,
            r#""src":"198.51.100.7:137","dst":"198.51.100.255:137","#,
            r#""message":"NBDGM Responder-style name poisoner (confidence raised step by step)","#,
            r#""evidence":{"frame":7,"name":"EVIL\u001b[2J\nNAME\u202egpj.exe","owners":["198.51.100.1","x\u0007y"],"txid":4660}}"#
        );
        let got: Value = serde_json::from_str(&line).unwrap();
        let want_v: Value = serde_json::from_str(want).unwrap();
        assert_eq!(got, want_v);
        assert_eq!(
            got["evidence"]["name"],
            "EVIL\u{1b}[2J\nNAME\u{202e}gpj.exe"
        );
        assert!(line.starts_with(r#"{"time":"2020-09-18T14:59:59.123456Z","frame":42,"#));
    }

    #[test]
    fn text_golden_escapes_network_strings() {
        let line = text(&alert());
        assert_eq!(
            line,
            concat!(
                "2020-09-18T14:59:59.123456Z medium poisoner 198.51.100.7:137 -> 198.51.100.255:137 ",
                "NBDGM Responder-style name poisoner (confidence raised step by step) | frame=42 ",
                r#"frame=7 name=EVIL\x1b[2J\nNAME\u{202e}gpj.exe owners=["198.51.100.1","x\x07y"] txid=4660"#
            )
        );
        assert!(!line
            .chars()
            .any(|c| c != '\\' && nbdgm_wire::text::needs_escape(c)));
    }

    #[test]
    fn text_quotes_strings_with_spaces() {
        let a = alert().with("comment", "two words \"q\"");
        assert!(
            text(&a).contains(r#"comment="two words \"q\"""#),
            "{}",
            text(&a)
        );
        let same = alert().with("frame", 42);
        assert_eq!(text(&same).matches("frame=").count(), 1, "{}", text(&same));
    }

    #[test]
    fn write_alert_one_line_each_format() {
        for f in [Format::Text, Format::Ndjson, Format::Eve] {
            let mut out = Vec::new();
            write_alert(&mut out, f, &alert()).unwrap();
            let s = String::from_utf8(out).unwrap();
            assert_eq!(s.matches('\n').count(), 1, "{f:?}: {s}");
            assert!(s.ends_with('\n'));
        }
    }

    #[test]
    fn signature_table_lists_every_id() {
        let mut t = Vec::new();
        write_signatures(&mut t, Format::Text).unwrap();
        let t = String::from_utf8(t).unwrap();
        assert_eq!(t.lines().count(), ALL.len() + 1);
        assert!(t.starts_with("ID "));
        let mut j = Vec::new();
        write_signatures(&mut j, Format::Ndjson).unwrap();
        let j = String::from_utf8(j).unwrap();
        let ids: Vec<u64> = j
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        let want: Vec<u64> = ALL.iter().map(|s| u64::from(s.id)).collect();
        assert_eq!(ids, want);
        for s in ALL {
            assert!(
                t.contains(&s.id.to_string()) && t.contains(s.slug),
                "{}",
                s.slug
            );
        }
    }
}
