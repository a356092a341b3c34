//! Field-by-field comparison of our decode (JSON) with tshark's fields.

use super::ours::OurFrame;
use super::rules::{self, Rule};
use super::tshark::TsFrame;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// A normalised field value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V {
    I(i128),
    S(String),
}

impl fmt::Display for V {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V::I(i) => write!(f, "{i}"),
            V::S(s) => write!(f, "{s:?}"),
        }
    }
}

/// One field on which the tools disagree and no documented divergence applies.
#[derive(Debug, Clone)]
pub struct Failure {
    pub file: String,
    pub frame: u64,
    pub field: String,
    pub ours: String,
    pub theirs: String,
    pub note: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} frame {}: {}: ours {} tshark {}",
            self.file, self.frame, self.field, self.ours, self.theirs
        )?;
        if !self.note.is_empty() {
            write!(f, " ({})", self.note)?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub files: u64,
    pub frames: u64,
    /// Fields both tools decode.
    pub compared: u64,
    pub agreed: u64,
    /// Fields that differ as a documented Wireshark divergence explains (our value was
    /// checked against the specification), by rule id.
    pub documented: BTreeMap<&'static str, u64>,
    /// The part of `compared` that differs as a documented divergence explains.
    pub documented_compared: u64,
    pub failures: Vec<Failure>,
    /// compared / agreed per field.
    pub per_field: BTreeMap<&'static str, [u64; 2]>,
    pub only_ours: BTreeMap<&'static str, u64>,
    pub only_theirs: BTreeMap<&'static str, u64>,
    /// A few frames of each one-sided field: (field, "ours"/"tshark") -> (file, frame).
    pub samples: BTreeMap<(&'static str, &'static str), Vec<(String, u64)>>,
}

impl Stats {
    pub fn merge(&mut self, o: Stats) {
        self.files += o.files;
        self.frames += o.frames;
        self.compared += o.compared;
        self.agreed += o.agreed;
        self.documented_compared += o.documented_compared;
        for (k, v) in o.documented {
            *self.documented.entry(k).or_default() += v;
        }
        self.failures.extend(o.failures);
        for (k, [c, a]) in o.per_field {
            let e = self.per_field.entry(k).or_default();
            e[0] += c;
            e[1] += a;
        }
        for (k, v) in o.only_ours {
            *self.only_ours.entry(k).or_default() += v;
        }
        for (k, v) in o.only_theirs {
            *self.only_theirs.entry(k).or_default() += v;
        }
        for (k, v) in o.samples {
            let e = self.samples.entry(k).or_default();
            e.extend(v);
            e.truncate(8);
        }
    }

    pub fn documented_total(&self) -> u64 {
        self.documented.values().sum()
    }
}

/// What the rules see of a frame.
pub struct Frame<'a> {
    pub file: &'a str,
    pub number: u64,
    pub ours: &'a OurFrame,
    pub ts: &'a TsFrame,
}

impl Frame<'_> {
    pub fn rec(&self) -> &Value {
        &self.ours.rec
    }
}

// ---------------------------------------------------------------------------------------------
// Normalisation

/// tshark prints integers in decimal or, for BASE_HEX fields, as `0x..`.
pub fn parse_int(s: &str) -> Option<i128> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i128::from_str_radix(h, 16).ok()
    } else if s == "True" {
        Some(1)
    } else if s == "False" {
        Some(0)
    } else {
        s.parse().ok()
    }
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// The 15 name octets from a rendering where non-printable octets are `<xx>`.
fn unescape_name(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(16);
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'<'
            && i + 3 < b.len()
            && is_hex(b[i + 1])
            && is_hex(b[i + 2])
            && b[i + 3] == b'>'
        {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(0));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Render name octets as our view does: trailing spaces and NULs removed, non-printable
/// octets as `<xx>`.
pub fn render_name(raw: &[u8]) -> String {
    let end = raw
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .map_or(0, |p| p + 1);
    let mut s = String::new();
    for &b in &raw[..end] {
        if (0x20..0x7F).contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("<{b:02x}>"));
        }
    }
    s
}

/// Wireshark's `NAME<xx>[.scope][ (description)]` (trailing spaces stripped, but NULs kept as
/// `<00>`) in our rendering `NAME<xx>[.scope]`.
pub fn ws_nbt_name(s: &str) -> String {
    let b = s.as_bytes();
    let pos = (0..b.len().saturating_sub(3))
        .rev()
        .find(|&i| b[i] == b'<' && is_hex(b[i + 1]) && is_hex(b[i + 2]) && b[i + 3] == b'>');
    let Some(p) = pos else {
        return s.to_owned();
    };
    let rest = &s[p + 4..];
    let scope = if let Some(r) = rest.strip_prefix('.') {
        r.split(" (").next().unwrap_or("")
    } else if rest.is_empty() || rest.starts_with(" (") {
        ""
    } else {
        return s.to_owned();
    };
    let mut out = render_name(&unescape_name(&s[..p]));
    out.push_str(&s[p..p + 4]);
    if !scope.is_empty() {
        out.push('.');
        out.push_str(scope);
    }
    out
}

/// Our `{name, suffix, scope}` object as `NAME<xx>[.scope]`.
pub fn our_nbt_name(v: &Value) -> Option<String> {
    let name = v.get("name")?.as_str()?;
    let suffix = v.get("suffix")?.as_u64()?;
    let scope = v.get("scope").and_then(Value::as_str).unwrap_or("");
    let mut out = render_name(&unescape_name(name));
    out.push_str(&format!("<{suffix:02x}>"));
    if !scope.is_empty() {
        out.push('.');
        out.push_str(scope);
    }
    Some(out)
}

/// How Wireshark decodes the bytes of a string field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enc {
    /// ENC_ASCII: octets above 0x7F become U+FFFD (browser frames on BROWSE, NETLOGON OEM).
    Ascii,
    /// ENC_CP437, the OEM code page (Wireshark's LAN Manager announcement dissector).
    Cp437,
    /// Already Unicode (UTF-16 fields).
    Unicode,
}

/// The upper half of code page 437.
const CP437_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐\
                          └┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

/// Our string (octets read as Latin-1, so char = octet for OEM fields) as tshark 4.0 prints
/// the field: decoded with `enc`, then BS, TAB, LF, FF and CR escaped as `\b` `\t` `\n` `\f`
/// `\r`; every other character is printed as it is.
pub fn ws_display(s: &str, enc: Enc) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = match (enc, c as u32) {
            (Enc::Ascii, 0x80..=0xFF) => '\u{fffd}',
            (Enc::Cp437, n @ 0x80..=0xFF) => {
                CP437_HIGH.chars().nth(n as usize - 0x80).unwrap_or('?')
            }
            _ => c,
        };
        match c {
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Comparison context

pub struct Ctx<'a> {
    pub frame: Frame<'a>,
    pub stats: &'a mut Stats,
}

/// Our value as an integer (numbers and booleans).
pub fn oi(v: &Value) -> Option<i128> {
    match v {
        Value::Bool(b) => Some(i128::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        _ => None,
    }
}

pub fn os(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

impl Ctx<'_> {
    fn theirs(&self, field: &str, idx: usize) -> Option<&str> {
        self.frame.ts.get(field, idx)
    }

    /// Compare one value. `ours`/`theirs` None: that tool does not decode the field.
    pub fn check(&mut self, field: &'static str, idx: usize, ours: Option<V>, theirs: Option<V>) {
        match (ours, theirs) {
            (None, None) => {}
            (Some(_), None) => {
                *self.stats.only_ours.entry(field).or_default() += 1;
                self.sample(field, "nbdgm");
            }
            (None, Some(_)) => {
                *self.stats.only_theirs.entry(field).or_default() += 1;
                self.sample(field, "tshark");
            }
            (Some(o), Some(t)) => {
                self.stats.compared += 1;
                let e = self.stats.per_field.entry(field).or_default();
                e[0] += 1;
                if o == t {
                    self.stats.agreed += 1;
                    e[1] += 1;
                    return;
                }
                self.disagreement(field, idx, o, t);
            }
        }
    }

    pub fn sample(&mut self, field: &'static str, side: &'static str) {
        let v = self.stats.samples.entry((field, side)).or_default();
        if v.len() < 8 {
            v.push((self.frame.file.to_owned(), self.frame.number));
        }
    }

    fn disagreement(&mut self, field: &'static str, idx: usize, o: V, t: V) {
        let rule: Option<&Rule> = rules::RULES
            .iter()
            .find(|r| r.fields.contains(&field) && (r.applies)(&self.frame));
        let mut note = String::new();
        if let Some(r) = rule {
            match (r.check)(&self.frame, field, idx, Some(&o)) {
                Ok(()) => {
                    *self.stats.documented.entry(r.id).or_default() += 1;
                    self.stats.documented_compared += 1;
                    return;
                }
                Err(e) => note = format!("divergence {} applies, but ours is wrong: {e}", r.id),
            }
        }
        let name = if idx == 0 {
            field.to_owned()
        } else {
            format!("{field}[{idx}]")
        };
        self.stats.failures.push(Failure {
            file: self.frame.file.to_owned(),
            frame: self.frame.number,
            field: name,
            ours: o.to_string(),
            theirs: t.to_string(),
            note,
        });
    }

    pub fn int(&mut self, field: &'static str, ours: &Value) {
        self.int_at(field, 0, ours);
    }

    pub fn int_at(&mut self, field: &'static str, idx: usize, ours: &Value) {
        let o = oi(ours).map(V::I);
        let t = self.theirs(field, idx).map(|s| match parse_int(s) {
            Some(i) => V::I(i),
            None => V::S(s.to_owned()),
        });
        self.check(field, idx, o, t);
    }

    pub fn int_val(&mut self, field: &'static str, idx: usize, ours: Option<i128>) {
        let t = self.theirs(field, idx).map(|s| match parse_int(s) {
            Some(i) => V::I(i),
            None => V::S(s.to_owned()),
        });
        self.check(field, idx, ours.map(V::I), t);
    }

    /// A string field compared in tshark's display form.
    pub fn string(&mut self, field: &'static str, ours: &Value) {
        self.string_at(field, 0, ours, Enc::Ascii);
    }

    pub fn string_enc(&mut self, field: &'static str, ours: &Value, enc: Enc) {
        self.string_at(field, 0, ours, enc);
    }

    pub fn string_at(&mut self, field: &'static str, idx: usize, ours: &Value, enc: Enc) {
        let o = os(ours).map(|s| V::S(ws_display(&s, enc)));
        let mut t = self.theirs(field, idx).map(|s| V::S(s.to_owned()));
        // tshark prints an empty string like a missing field: when tshark decodes the
        // layer, a lone empty value is the empty string.
        if t.is_none() && idx == 0 && o == Some(V::S(String::new())) {
            let parent = match field.split('.').next() {
                Some("browser") => "browser.command",
                Some("smb_netlogon") => "smb_netlogon.command",
                Some("mailslot") => "mailslot.opcode",
                _ => "",
            };
            if self.frame.ts.has(parent) {
                t = Some(V::S(String::new()));
            }
        }
        self.check(field, idx, o, t);
    }

    /// A string compared as it is (addresses, hex).
    pub fn raw_string_at(&mut self, field: &'static str, idx: usize, ours: Option<String>) {
        let t = self.theirs(field, idx).map(|s| V::S(s.to_owned()));
        self.check(field, idx, ours.map(V::S), t);
    }

    /// An encoded NetBIOS name (`nbdgm.*_name`, `nbns.name`).
    pub fn nbt_name_at(&mut self, field: &'static str, idx: usize, ours: &Value) {
        let o = our_nbt_name(ours).map(V::S);
        let t = self.theirs(field, idx).map(|s| V::S(ws_nbt_name(s)));
        self.check(field, idx, o, t);
    }
}

// ---------------------------------------------------------------------------------------------
// Per-protocol comparison

/// Compare one frame; every field both tools decode must agree.
pub fn compare_frame(ctx: &mut Ctx<'_>) {
    ctx.stats.frames += 1;
    let rec = ctx.frame.ours.rec.clone();
    let ts = ctx.frame.ts;
    let theirs_proto = if ts.has("nbdgm.type") {
        Some("nbdgm")
    } else if ts.has("nbns.id") {
        Some("nbns")
    } else {
        None
    };
    ctx.check(
        "protocol",
        0,
        os(&rec["protocol"]).map(V::S),
        theirs_proto.map(|s| V::S(s.to_owned())),
    );
    if theirs_proto.is_some_and(|p| Some(p) != rec["protocol"].as_str()) {
        return;
    }
    // Which layers each tool decodes (one-sided layers are reported, not compared).
    for (layer, key, field) in [
        ("layer nbdgm", "nbdgm", "nbdgm.type"),
        ("layer mailslot", "mailslot", "mailslot.name"),
        ("layer browser", "browser", "browser.command"),
        ("layer netlogon", "netlogon", "smb_netlogon.command"),
        ("layer nbns", "nbns", "nbns.id"),
    ] {
        match (rec.get(key).is_some(), ts.has(field)) {
            (true, false) => {
                *ctx.stats.only_ours.entry(layer).or_default() += 1;
                ctx.sample(layer, "nbdgm");
            }
            (false, true) => {
                *ctx.stats.only_theirs.entry(layer).or_default() += 1;
                ctx.sample(layer, "tshark");
            }
            _ => {}
        }
    }
    if let Some(d) = rec.get("nbdgm") {
        nbdgm(ctx, d);
    }
    if let Some(m) = rec.get("mailslot") {
        mailslot(ctx, m);
    }
    if let Some(b) = rec.get("browser") {
        browser(ctx, &rec, b);
    }
    if let Some(n) = rec.get("netlogon") {
        netlogon(ctx, n);
    }
    if let Some(n) = rec.get("nbns") {
        nbns(ctx, n);
    }
    rules::one_sided(ctx);
}

fn nbdgm(ctx: &mut Ctx<'_>, d: &Value) {
    ctx.int("nbdgm.type", &d["type_code"]);
    ctx.int("nbdgm.next", &d["flags"]["more"]);
    ctx.int("nbdgm.first", &d["flags"]["first"]);
    let snt = match d["flags"]["node_type"].as_str() {
        Some("B") => Some(0),
        Some("P") => Some(1),
        Some("M") => Some(2),
        Some("H") => Some(3),
        _ => None,
    };
    ctx.int_val("nbdgm.node_type", 0, snt);
    ctx.int("nbdgm.dgram_id", &d["id"]);
    ctx.raw_string_at("nbdgm.src.ip", 0, os(&d["source_ip"]));
    ctx.int("nbdgm.src.port", &d["source_port"]);
    ctx.int("nbdgm.dgram_len", &d["length"]);
    ctx.int("nbdgm.pkt_offset", &d["offset"]);
    ctx.nbt_name_at("nbdgm.source_name", 0, &d["source_name"]);
    ctx.nbt_name_at("nbdgm.destination_name", 0, &d["destination_name"]);
    ctx.int("nbdgm.error_code", &d["error_code"]);
}

fn mailslot(ctx: &mut Ctx<'_>, m: &Value) {
    ctx.string("mailslot.name", &m["name"]);
    ctx.int("mailslot.opcode", &m["opcode"]);
    ctx.int("mailslot.priority", &m["priority"]);
    ctx.int("mailslot.class", &m["class"]);
    ctx.int("smb.timeout", &m["timeout"]);
    ctx.int("smb.data_offset", &m["data_offset"]);
    ctx.int("smb.dc", &m["data_len"]);
}

fn browser(ctx: &mut Ctx<'_>, rec: &Value, b: &Value) {
    ctx.int("browser.command", &b["command_code"]);
    let lanman_slot = rec["mailslot"]["name"]
        .as_str()
        .is_some_and(|n| n.eq_ignore_ascii_case("\\MAILSLOT\\LANMAN"));
    match b["command"].as_str().unwrap_or("") {
        "HostAnnouncement" | "LocalMasterAnnouncement" => {
            ctx.int("browser.update_count", &b["update_count"]);
            ctx.int("browser.period", &b["periodicity_ms"]);
            ctx.string("browser.server", &b["server_name"]);
            ctx.int("browser.os_major", &b["os_major"]);
            ctx.int("browser.os_minor", &b["os_minor"]);
            ctx.int("browser.server_type", &b["server_type"]);
            if !lanman_slot {
                ctx.int("browser.proto_major", &b["browser_version_major"]);
                ctx.int("browser.proto_minor", &b["browser_version_minor"]);
                ctx.int("browser.sig", &b["signature"]);
            }
            ctx.string("browser.comment", &b["comment"]);
        }
        "DomainAnnouncement" => {
            ctx.int("browser.update_count", &b["update_count"]);
            ctx.int("browser.period", &b["periodicity_ms"]);
            ctx.string("browser.server", &b["machine_group"]);
            ctx.int("browser.os_major", &b["browser_config_version_major"]);
            ctx.int("browser.os_minor", &b["browser_config_version_minor"]);
            ctx.int("browser.server_type", &b["server_type"]);
            if b["signature"].as_u64() == Some(0xAA55) || lanman_slot {
                ctx.int("browser.proto_major", &b["browser_version_major"]);
                ctx.int("browser.proto_minor", &b["browser_version_minor"]);
                ctx.int("browser.sig", &b["signature"]);
            } else {
                // MS-BRWS §2.2.7 bytes 28..31 as Wireshark's little-endian "Mysterious Field".
                let v = oi(&b["browser_version_major"]).zip(oi(&b["browser_version_minor"]));
                let v = v
                    .zip(oi(&b["signature"]))
                    .map(|((a, c), s)| a | c << 8 | s << 16);
                ctx.int_val("browser.mysterious_field", 0, v);
            }
            ctx.string("browser.mb_server", &b["local_master_name"]);
        }
        "AnnouncementRequest" => {
            ctx.int("browser.unused", &b["reserved"]);
            ctx.string("browser.response_computer_name", &b["response_name"]);
        }
        "RequestElection" => {
            ctx.int("browser.election.version", &b["election_version"]);
            ctx.int("browser.election.criteria", &b["criteria"]);
            ctx.int("browser.uptime", &b["uptime_ms"]);
            ctx.string("browser.server", &b["server_name"]);
        }
        "GetBackupListRequest" => {
            ctx.int("browser.backup.count", &b["count"]);
            ctx.int("browser.backup.token", &b["token"]);
        }
        "GetBackupListResponse" => {
            ctx.int("browser.backup.count", &b["count"]);
            ctx.int("browser.backup.token", &b["token"]);
            let servers = b["servers"].as_array().cloned().unwrap_or_default();
            for (i, s) in servers.iter().enumerate() {
                ctx.string_at("browser.backup.server", i, s, Enc::Ascii);
            }
        }
        "BecomeBackup" => ctx.string("browser.browser_to_promote", &b["browser_to_promote"]),
        "MasterAnnouncement" => ctx.string("browser.mb_server", &b["master_name"]),
        "ResetStateRequest" => ctx.int("browser.reset_cmd", &b["reset_type"]),
        "LanmanAnnouncement" => {
            ctx.int("browser.update_count", &b["update_count"]);
            ctx.int("browser.server_type", &b["server_type"]);
            ctx.int("browser.os_major", &b["os_major"]);
            ctx.int("browser.os_minor", &b["os_minor"]);
            // Wireshark shows the LM periodicity (seconds) in milliseconds.
            ctx.int_val(
                "browser.period",
                0,
                oi(&b["periodicity_s"]).map(|s| s * 1000),
            );
            ctx.string_enc("browser.server", &b["server_name"], Enc::Cp437);
            if b["command_code"].as_u64() == Some(0x0C) {
                // A LAN Manager domain announcement: the second string names the master browser.
                ctx.string_enc("browser.mb_server", &b["comment"], Enc::Cp437);
            } else {
                ctx.string_enc("browser.comment", &b["comment"], Enc::Cp437);
            }
        }
        _ => {}
    }
}

fn netlogon(ctx: &mut Ctx<'_>, n: &Value) {
    ctx.int("smb_netlogon.command", &n["opcode"]);
    let strings: [(&'static str, &str); 8] = [
        ("smb_netlogon.computer_name", "computer_name"),
        ("smb_netlogon.mailslot_name", "mailslot_name"),
        (
            "smb_netlogon.unicode_computer_name",
            "unicode_computer_name",
        ),
        ("smb_netlogon.pdc_name", "primary_dc_name"),
        ("smb_netlogon.unicode_pdc_name", "unicode_primary_dc_name"),
        ("smb_netlogon.domain_name", "unicode_domain_name"),
        ("smb_netlogon.user_name", "user_name"),
        ("smb_netlogon.server_name", "unicode_logon_server"),
    ];
    for (field, key) in strings {
        if let Some(v) = n.get(key) {
            let enc = if key.starts_with("unicode") || key == "user_name" {
                Enc::Unicode
            } else {
                Enc::Ascii
            };
            ctx.string_enc(field, v, enc);
        }
    }
    let ints: [(&'static str, &str); 5] = [
        ("smb_netlogon.nt_version", "nt_version"),
        ("smb_netlogon.lmnt_token", "lmnt_token"),
        ("smb_netlogon.lm_token", "lm20_token"),
        ("smb_netlogon.request_count", "request_count"),
        ("smb_netlogon.flags", "allowable_account_control_bits"),
    ];
    for (field, key) in ints {
        if let Some(v) = n.get(key) {
            ctx.int(field, v);
        }
    }
    if let Some(sid) = n.get("domain_sid").and_then(Value::as_str) {
        ctx.int_val(
            "smb_netlogon.domain_sid_size",
            0,
            Some(sid.len() as i128 / 2),
        );
    }
}

fn nbns(ctx: &mut Ctx<'_>, n: &Value) {
    ctx.int("nbns.id", &n["id"]);
    ctx.int("nbns.flags", &n["flags"]);
    ctx.int("nbns.flags.response", &n["response"]);
    ctx.int("nbns.flags.opcode", &n["opcode"]);
    ctx.int("nbns.flags.authoritative", &n["authoritative"]);
    ctx.int("nbns.flags.truncated", &n["truncated"]);
    ctx.int("nbns.flags.recdesired", &n["recursion_desired"]);
    ctx.int("nbns.flags.recavail", &n["recursion_available"]);
    ctx.int("nbns.flags.broadcast", &n["broadcast"]);
    ctx.int("nbns.flags.rcode", &n["rcode"]);
    let list = |k: &str| n[k].as_array().cloned().unwrap_or_default();
    let questions = list("questions");
    let records: Vec<Value> = ["answers", "authority", "additional"]
        .iter()
        .flat_map(|k| list(k))
        .collect();
    for (field, k) in [
        ("nbns.count.queries", "questions"),
        ("nbns.count.answers", "answers"),
        ("nbns.count.auth_rr", "authority"),
        ("nbns.count.add_rr", "additional"),
    ] {
        ctx.int_val(field, 0, Some(list(k).len() as i128));
    }
    // Questions and records in wire order share nbns.name / nbns.type / nbns.class.
    for (i, x) in questions.iter().chain(&records).enumerate() {
        ctx.nbt_name_at("nbns.name", i, &x["name"]);
        ctx.int_at("nbns.type", i, &x["type"]);
        ctx.int_at("nbns.class", i, &x["class"]);
    }
    for (i, r) in records.iter().enumerate() {
        ctx.int_at("nbns.ttl", i, &r["ttl"]);
    }
    // NB address entries, flattened over the NB records (Wireshark lists every entry of
    // every NB record; for WACK its RDATA is a flags word instead).
    let wack = n["opcode"].as_u64() == Some(7);
    let nb: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"].as_u64() == Some(0x20) && !wack)
        .collect();
    if nb.iter().all(|r| r.get("addresses").is_some()) {
        let addrs: Vec<Value> = nb
            .iter()
            .flat_map(|r| r["addresses"].as_array().cloned().unwrap_or_default())
            .collect();
        for (i, a) in addrs.iter().enumerate() {
            ctx.int_at("nbns.nb_flags", i, &a["flags"]);
            ctx.raw_string_at("nbns.addr", i, os(&a["ip"]));
        }
    }
    // WACK RDATA: with RR type NB Wireshark shows the flags word as a second nbns.flags.
    let mut flags_idx = 1;
    let mut data_idx = 0;
    for r in &records {
        let ty = r["type"].as_u64();
        if ty == Some(0x20) && wack {
            if let Some(w) = r.get("wack_flags") {
                ctx.int_at("nbns.flags", flags_idx, w);
            }
            flags_idx += 1;
        } else if ty != Some(0x20) && ty != Some(0x21) {
            let ours = match (r.get("rdata"), r.get("wack_flags")) {
                (Some(d), _) => os(d),
                (None, Some(w)) => w.as_u64().map(|w| format!("{w:04x}")),
                _ => None,
            };
            // An empty RDATA is printed as an empty occurrence, indistinguishable from none.
            if ours.as_deref() != Some("") {
                ctx.raw_string_at("nbns.data", data_idx, ours);
            }
            data_idx += 1;
        }
    }
    // Node status (RFC 1002 §4.2.18), flattened over the NBSTAT records.
    let nbstat: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"].as_u64() == Some(0x21))
        .collect();
    let aligned = nbstat.iter().all(|r| {
        r.get("node_status")
            .is_some_and(|s| !s["unit_id"].is_null())
    });
    if aligned {
        let mut m = 0;
        for (k, r) in nbstat.iter().enumerate() {
            let s = &r["node_status"];
            let names = s["names"].as_array().cloned().unwrap_or_default();
            ctx.int_val("nbns.number_of_names", k, Some(names.len() as i128));
            for e in &names {
                let ours = os(&e["name"]).map(|s| render_name(&unescape_name(&s)));
                let theirs = ctx
                    .theirs("nbns.netbios_name", m)
                    .map(|s| render_name(&unescape_name(s)));
                ctx.check("nbns.netbios_name", m, ours.map(V::S), theirs.map(V::S));
                ctx.int_at("nbns.name_flags", m, &e["flags"]);
                m += 1;
            }
            ctx.raw_string_at("nbns.unit_id", k, os(&s["unit_id"]));
            let st = &s["statistics"];
            for (field, key) in [
                ("nbns.jumpers", "jumpers"),
                ("nbns.test_result", "test_result"),
                ("nbns.version_number", "version_number"),
                ("nbns.period_of_statistics", "period_of_statistics"),
                ("nbns.num_good_sends", "number_good_sends"),
                ("nbns.num_good_receives", "number_good_receives"),
                ("nbns.session_data_packet_size", "session_data_packet_size"),
            ] {
                ctx.int_at(field, k, &st[key]);
            }
        }
    }
}
