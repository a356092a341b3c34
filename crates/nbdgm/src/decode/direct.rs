//! The `decode` record written as compact JSON by hand (schema: `docs/json-schema.md`):
//! the keys of the record, datagram (RFC 1002 §4.4), mailslot and name-service
//! (RFC 1002 §4.2) views are byte literals, values go straight into the buffer. The
//! browser, netlogon and messenger payloads still go through [`json::write`]. The
//! bytes are those of `serde_json::to_writer` on the same [`Record`]; the tests in
//! `tests/decode_json.rs` compare both on every bundled capture and on mutations.

use super::json::{self, push_str, push_u64};
use super::record::{
    AddressView, BrowserPayload, BrowserView, DgmView, MailslotView, NameView, NbnsView,
    NodeStatusView, Record, RecordView,
};
use nbdgm_wire::browser::{Announcement, BrowserFrame};

/// Append `r` as one JSON object.
pub fn write_record(out: &mut Vec<u8>, r: &Record) {
    out.push(b'{');
    write_fields(out, r);
}

/// Append `{"file":…,` and the fields of `r`: what `#[serde(flatten)]` of the record
/// under a `file` key gives.
pub fn write_record_with_file(out: &mut Vec<u8>, file: &str, r: &Record) {
    out.extend_from_slice(b"{\"file\":");
    push_str(out, file);
    out.push(b',');
    write_fields(out, r);
}

fn bool_lit(v: bool) -> &'static [u8] {
    if v {
        b"true"
    } else {
        b"false"
    }
}

fn opt_str(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => push_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn opt_u64(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(n) => push_u64(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// The fields after the opening brace, and the closing brace.
fn write_fields(out: &mut Vec<u8>, r: &Record) {
    out.extend_from_slice(b"\"frame\":");
    push_u64(out, r.frame);
    out.extend_from_slice(b",\"time\":");
    push_str(out, &r.time);
    out.extend_from_slice(b",\"time_epoch\":");
    json::write(out, &r.time_epoch);
    out.extend_from_slice(b",\"src\":");
    push_str(out, &r.src);
    out.extend_from_slice(b",\"dst\":");
    push_str(out, &r.dst);
    out.extend_from_slice(b",\"protocol\":");
    push_str(out, r.protocol.as_str());
    out.extend_from_slice(b",\"warnings\":[");
    for (i, w) in r.warnings.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_str(out, w);
    }
    out.extend_from_slice(b"],\"malformed\":");
    opt_str(out, r.malformed.as_deref());
    if let Some(d) = &r.nbdgm {
        out.extend_from_slice(b",\"nbdgm\":");
        write_dgm(out, d);
    }
    if let Some(n) = &r.nbns {
        out.extend_from_slice(b",\"nbns\":");
        write_nbns(out, n);
    }
    if let Some(m) = &r.mailslot {
        out.extend_from_slice(b",\"mailslot\":");
        write_mailslot(out, m);
    }
    if let Some(b) = &r.browser {
        out.extend_from_slice(b",\"browser\":");
        write_browser(out, b);
    }
    if let Some(n) = &r.netlogon {
        out.extend_from_slice(b",\"netlogon\":");
        json::write(out, n);
    }
    if let Some(m) = &r.messenger {
        out.extend_from_slice(b",\"messenger\":");
        json::write(out, m);
    }
    if let Some(d) = &r.data {
        out.extend_from_slice(b",\"data\":");
        push_str(out, d);
    }
    out.push(b'}');
}

fn write_name(out: &mut Vec<u8>, n: &NameView) {
    out.extend_from_slice(b"{\"name\":");
    push_str(out, &n.name);
    out.extend_from_slice(b",\"suffix\":");
    push_u64(out, n.suffix.into());
    out.extend_from_slice(b",\"scope\":");
    push_str(out, &n.scope);
    out.push(b'}');
}

fn opt_name(out: &mut Vec<u8>, n: Option<&NameView>) {
    match n {
        Some(n) => write_name(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_dgm(out: &mut Vec<u8>, d: &DgmView) {
    out.extend_from_slice(b"{\"type_code\":");
    push_u64(out, d.type_code.into());
    out.extend_from_slice(b",\"type\":");
    push_str(out, d.kind);
    out.extend_from_slice(b",\"flags\":{\"more\":");
    out.extend_from_slice(bool_lit(d.flags.more));
    out.extend_from_slice(b",\"first\":");
    out.extend_from_slice(bool_lit(d.flags.first));
    out.extend_from_slice(b",\"node_type\":");
    push_str(out, d.flags.node_type.as_str());
    out.extend_from_slice(b"},\"id\":");
    push_u64(out, d.id.into());
    out.extend_from_slice(b",\"source_ip\":");
    push_str(out, &d.source_ip);
    out.extend_from_slice(b",\"source_port\":");
    push_u64(out, d.source_port.into());
    out.extend_from_slice(b",\"length\":");
    opt_u64(out, d.length.map(u64::from));
    out.extend_from_slice(b",\"offset\":");
    opt_u64(out, d.offset.map(u64::from));
    out.extend_from_slice(b",\"source_name\":");
    opt_name(out, d.source_name.as_ref());
    out.extend_from_slice(b",\"destination_name\":");
    opt_name(out, d.destination_name.as_ref());
    out.extend_from_slice(b",\"error_code\":");
    opt_u64(out, d.error_code.map(u64::from));
    if let Some(e) = d.error {
        out.extend_from_slice(b",\"error\":");
        push_str(out, e);
    }
    if let Some(n) = d.user_data_len {
        out.extend_from_slice(b",\"user_data_len\":");
        push_u64(out, n as u64);
    }
    if let Some(f) = &d.fragment_data {
        out.extend_from_slice(b",\"fragment_data\":");
        push_str(out, f);
    }
    out.push(b'}');
}

fn write_mailslot(out: &mut Vec<u8>, m: &MailslotView) {
    out.extend_from_slice(b"{\"name\":");
    push_str(out, &m.name);
    out.extend_from_slice(b",\"opcode\":");
    push_u64(out, m.opcode.into());
    out.extend_from_slice(b",\"priority\":");
    push_u64(out, m.priority.into());
    out.extend_from_slice(b",\"class\":");
    push_u64(out, m.class.into());
    out.extend_from_slice(b",\"timeout\":");
    push_u64(out, m.timeout.into());
    out.extend_from_slice(b",\"data_offset\":");
    push_u64(out, m.data_offset as u64);
    out.extend_from_slice(b",\"data_len\":");
    push_u64(out, m.data_len as u64);
    out.push(b'}');
}

fn write_nbns(out: &mut Vec<u8>, n: &NbnsView) {
    out.extend_from_slice(b"{\"id\":");
    push_u64(out, n.id.into());
    out.extend_from_slice(b",\"flags\":");
    push_u64(out, n.flags.into());
    out.extend_from_slice(b",\"response\":");
    out.extend_from_slice(bool_lit(n.response));
    out.extend_from_slice(b",\"opcode\":");
    push_u64(out, n.opcode.into());
    out.extend_from_slice(b",\"opcode_name\":");
    push_str(out, n.opcode_name);
    out.extend_from_slice(b",\"kind\":");
    push_str(out, n.kind);
    out.extend_from_slice(b",\"authoritative\":");
    out.extend_from_slice(bool_lit(n.authoritative));
    out.extend_from_slice(b",\"truncated\":");
    out.extend_from_slice(bool_lit(n.truncated));
    out.extend_from_slice(b",\"recursion_desired\":");
    out.extend_from_slice(bool_lit(n.recursion_desired));
    out.extend_from_slice(b",\"recursion_available\":");
    out.extend_from_slice(bool_lit(n.recursion_available));
    out.extend_from_slice(b",\"broadcast\":");
    out.extend_from_slice(bool_lit(n.broadcast));
    out.extend_from_slice(b",\"rcode\":");
    push_u64(out, n.rcode.into());
    out.extend_from_slice(b",\"rcode_name\":");
    push_str(out, n.rcode_name);
    out.extend_from_slice(b",\"questions\":[");
    for (i, q) in n.questions.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        write_name(out, &q.name);
        out.extend_from_slice(b",\"type\":");
        push_u64(out, q.qtype.into());
        out.extend_from_slice(b",\"class\":");
        push_u64(out, q.class.into());
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"answers\":");
    write_rrs(out, &n.answers);
    out.extend_from_slice(b",\"authority\":");
    write_rrs(out, &n.authority);
    out.extend_from_slice(b",\"additional\":");
    write_rrs(out, &n.additional);
    if let Some(t) = &n.trailing {
        out.extend_from_slice(b",\"trailing\":");
        push_str(out, t);
    }
    out.push(b'}');
}

fn write_rrs(out: &mut Vec<u8>, rrs: &[RecordView]) {
    out.push(b'[');
    for (i, r) in rrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        write_name(out, &r.name);
        out.extend_from_slice(b",\"type\":");
        push_u64(out, r.rr_type.into());
        out.extend_from_slice(b",\"class\":");
        push_u64(out, r.class.into());
        out.extend_from_slice(b",\"ttl\":");
        push_u64(out, r.ttl.into());
        if let Some(a) = &r.addresses {
            out.extend_from_slice(b",\"addresses\":");
            write_addresses(out, a);
        }
        if let Some(ns) = &r.node_status {
            out.extend_from_slice(b",\"node_status\":");
            write_node_status(out, ns);
        }
        if let Some(w) = r.wack_flags {
            out.extend_from_slice(b",\"wack_flags\":");
            push_u64(out, w.into());
        }
        if let Some(d) = &r.rdata {
            out.extend_from_slice(b",\"rdata\":");
            push_str(out, d);
        }
        out.push(b'}');
    }
    out.push(b']');
}

fn write_addresses(out: &mut Vec<u8>, addrs: &[AddressView]) {
    out.push(b'[');
    for (i, a) in addrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"ip\":");
        push_str(out, &a.ip);
        out.extend_from_slice(b",\"group\":");
        out.extend_from_slice(bool_lit(a.group));
        out.extend_from_slice(b",\"node_type\":");
        push_str(out, a.node_type);
        out.extend_from_slice(b",\"flags\":");
        push_u64(out, a.flags.into());
        out.push(b'}');
    }
    out.push(b']');
}

fn write_node_status(out: &mut Vec<u8>, ns: &NodeStatusView) {
    out.extend_from_slice(b"{\"names\":[");
    for (i, n) in ns.names.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        push_str(out, &n.name);
        out.extend_from_slice(b",\"suffix\":");
        push_u64(out, n.suffix.into());
        out.extend_from_slice(b",\"group\":");
        out.extend_from_slice(bool_lit(n.group));
        out.extend_from_slice(b",\"node_type\":");
        push_str(out, n.node_type);
        out.extend_from_slice(b",\"deregistering\":");
        out.extend_from_slice(bool_lit(n.deregistering));
        out.extend_from_slice(b",\"conflict\":");
        out.extend_from_slice(bool_lit(n.conflict));
        out.extend_from_slice(b",\"active\":");
        out.extend_from_slice(bool_lit(n.active));
        out.extend_from_slice(b",\"permanent\":");
        out.extend_from_slice(bool_lit(n.permanent));
        out.extend_from_slice(b",\"flags\":");
        push_u64(out, n.flags.into());
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"unit_id\":");
    opt_str(out, ns.unit_id.as_deref());
    if let Some(s) = &ns.statistics {
        out.extend_from_slice(b",\"statistics\":{\"jumpers\":");
        push_u64(out, s.jumpers.into());
        out.extend_from_slice(b",\"test_result\":");
        push_u64(out, s.test_result.into());
        out.extend_from_slice(b",\"version_number\":");
        push_u64(out, s.version_number.into());
        out.extend_from_slice(b",\"period_of_statistics\":");
        push_u64(out, s.period_of_statistics.into());
        out.extend_from_slice(b",\"number_good_sends\":");
        push_u64(out, s.number_good_sends.into());
        out.extend_from_slice(b",\"number_good_receives\":");
        push_u64(out, s.number_good_receives.into());
        out.extend_from_slice(b",\"session_data_packet_size\":");
        push_u64(out, s.session_data_packet_size.into());
        out.push(b'}');
    }
    out.push(b'}');
}

/// Host and local master announcements (most of a LAN's browser traffic) without
/// their optional fields field by field; every other frame through [`json::write`].
fn write_browser(out: &mut Vec<u8>, b: &BrowserView) {
    let a = match &b.frame {
        BrowserPayload::Browse(
            BrowserFrame::HostAnnouncement(a) | BrowserFrame::LocalMasterAnnouncement(a),
        ) if plain(a) => a,
        _ => return json::write(out, b),
    };
    out.extend_from_slice(b"{\"command_code\":");
    push_u64(out, b.command_code.into());
    out.extend_from_slice(b",\"command\":");
    push_str(out, b.command);
    if let Some(names) = &b.server_type_names {
        out.extend_from_slice(b",\"server_type_names\":[");
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(out, n);
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"update_count\":");
    push_u64(out, a.update_count.into());
    out.extend_from_slice(b",\"periodicity_ms\":");
    push_u64(out, a.periodicity_ms.into());
    out.extend_from_slice(b",\"server_name\":");
    push_str(out, &a.server_name);
    out.extend_from_slice(b",\"os_major\":");
    push_u64(out, a.os_major.into());
    out.extend_from_slice(b",\"os_minor\":");
    push_u64(out, a.os_minor.into());
    out.extend_from_slice(b",\"server_type\":");
    push_u64(out, a.server_type.into());
    out.extend_from_slice(b",\"browser_version_major\":");
    push_u64(out, a.browser_version_major.into());
    out.extend_from_slice(b",\"browser_version_minor\":");
    push_u64(out, a.browser_version_minor.into());
    out.extend_from_slice(b",\"signature\":");
    push_u64(out, a.signature.into());
    out.extend_from_slice(b",\"comment\":");
    push_str(out, &a.comment);
    out.push(b'}');
}

/// An announcement whose optional fields (padding, unterminated name or comment, trailing
/// bytes) are all absent from the JSON.
fn plain(a: &Announcement) -> bool {
    a.server_name_padding.is_empty()
        && !a.server_name_unterminated
        && !a.comment_unterminated
        && a.trailing.is_empty()
}
