//! Property tests across the codec layers:
//!
//! - generated well-formed values survive `parse(emit(x)) == x` (names, datagrams,
//!   name-service packets, mailslot writes, messenger messages), in the canonical form the
//!   parsers produce (`None` for a length that equals the computed one, record data of the
//!   kind the parser infers);
//! - no parser panics on arbitrary bytes, nor on mutated copies of valid packets and of the
//!   hex vectors in `tests/data/test_vectors.json`;
//! - whatever a parser accepts is emitted again to bytes that parse to the same value (and,
//!   for the layers that document it, to the same bytes).
//!
//! Run with `cargo test --release -p nbdgm-wire --test roundtrip`.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_wire::browser::{BrowserFrame, LanmanFrame};
use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, SmbHeader};
use nbdgm_wire::messenger::Message;
use nbdgm_wire::name::{Name, MAX_ENCODED_LEN, MAX_LABEL_LEN, PLAIN_ENCODED_LEN};
use nbdgm_wire::nbns::{
    self, NbAddress, NodeName, NodeStatus, Packet, Question, RData, Record, Statistics,
};
use nbdgm_wire::netlogon::NetlogonMessage;
use nbdgm_wire::payload;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use std::net::Ipv4Addr;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// Longest scope string: 255 encoded bytes minus the 34 of the plain name minus the length
/// byte of the first label.
const MAX_SCOPE_LEN: usize = MAX_ENCODED_LEN - PLAIN_ENCODED_LEN - 1;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Every hex string of `tests/data/test_vectors.json`, by the name of its section.
fn vectors() -> &'static Vec<(String, Vec<u8>)> {
    static V: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    V.get_or_init(|| {
        let json: serde_json::Value =
            serde_json::from_str(include_str!("data/test_vectors.json")).unwrap();
        let mut out = Vec::new();
        for (section, v) in json.as_object().unwrap() {
            let Some(map) = v.as_object() else { continue };
            for v in map.values() {
                if let Some(b) = v.as_str().and_then(unhex) {
                    out.push((section.clone(), b));
                }
            }
        }
        out
    })
}

fn vectors_in(prefix: &str) -> Vec<Vec<u8>> {
    vectors()
        .iter()
        .filter(|(s, _)| s.starts_with(prefix))
        .map(|(_, b)| b.clone())
        .collect()
}

/// One random edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Xor(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        2 => (any::<usize>(), 1u8..).prop_map(|(i, b)| Edit::Xor(i, b)),
        1 => (any::<usize>(), vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => (any::<usize>(), 1usize..8).prop_map(|(i, n)| Edit::Remove(i, n)),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut b: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = b.len();
        match e {
            Edit::Set(i, v) if n > 0 => b[i % n] = *v,
            Edit::Xor(i, v) if n > 0 => b[i % n] ^= *v,
            Edit::Insert(i, v) => {
                let at = i % (n + 1);
                b.splice(at..at, v.iter().copied());
            }
            Edit::Remove(i, k) if n > 0 => {
                let at = i % n;
                b.drain(at..(at + k).min(n));
            }
            Edit::Truncate(i) => b.truncate(i % (n + 1)),
            _ => {}
        }
    }
    b
}

/// `base` (one of the given byte strings) with 1..=4 random edits.
fn mutated(bases: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (select(bases), vec(edit(), 1..=4)).prop_map(|(b, e)| apply(b, &e))
}

fn latin1_bytes(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// Names

fn scope_label(max: usize) -> impl Strategy<Value = String> {
    // Printable ASCII except '.', 1..=max bytes.
    vec(
        (0x21u8..0x7F).prop_filter("no dot", |b| *b != b'.'),
        1..=max,
    )
    .prop_map(|b| b.into_iter().map(char::from).collect())
}

/// Labels joined with '.', the last one shortened so the scope is at most `MAX_SCOPE_LEN`
/// bytes; with `fill`, labels are added until the scope is exactly that long.
fn build_scope(labels: Vec<String>, fill: bool) -> String {
    let mut scope = String::new();
    for l in labels {
        let sep = usize::from(!scope.is_empty());
        let room = MAX_SCOPE_LEN.saturating_sub(scope.len() + sep);
        if room == 0 {
            break;
        }
        if sep == 1 {
            scope.push('.');
        }
        scope.push_str(&l[..l.len().min(room)]);
    }
    if fill {
        // Keep adding short labels to reach the limit exactly.
        while scope.len() < MAX_SCOPE_LEN {
            let room = MAX_SCOPE_LEN - scope.len();
            if !scope.is_empty() {
                if room == 1 {
                    // A dot alone would end in an empty label: extend the last label if it
                    // has room, else drop a byte of the last label and retry.
                    let last = scope.rsplit('.').next().unwrap().len();
                    if last < MAX_LABEL_LEN {
                        scope.push('x');
                    } else {
                        scope.pop();
                    }
                    continue;
                }
                scope.push('.');
            }
            let n = (MAX_SCOPE_LEN - scope.len()).min(MAX_LABEL_LEN);
            scope.push_str(&"z".repeat(n));
        }
    }
    scope
}

fn scope() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        4 => vec(scope_label(12), 1..4).prop_map(|l| build_scope(l, false)),
        1 => vec(scope_label(MAX_LABEL_LEN), 1..8).prop_map(|l| build_scope(l, false)),
        1 => vec(scope_label(MAX_LABEL_LEN), 0..8).prop_map(|l| build_scope(l, true)),
    ]
}

fn raw_name() -> impl Strategy<Value = [u8; 16]> {
    prop_oneof![
        any::<[u8; 16]>(),
        (vec(b'A'..=b'Z', 1..=15), any::<u8>()).prop_map(|(n, s)| {
            let mut raw = [b' '; 16];
            raw[..n.len()].copy_from_slice(&n);
            raw[15] = s;
            raw
        }),
        Just(*Name::wildcard().raw()),
        Just(*Name::msbrowse().raw()),
    ]
}

fn name() -> impl Strategy<Value = Name> {
    (raw_name(), scope()).prop_map(|(raw, scope)| {
        Name::from_raw(raw)
            .with_scope(&scope)
            .unwrap_or_else(|e| panic!("generated scope {scope:?} refused: {e}"))
    })
}

fn emit_name(n: &Name) -> Vec<u8> {
    let mut v = Vec::new();
    n.emit(&mut v);
    v
}

// ---------------------------------------------------------------------------------------------
// Datagrams

fn msg_type() -> impl Strategy<Value = MsgType> {
    select(vec![
        MsgType::DirectUnique,
        MsgType::DirectGroup,
        MsgType::Broadcast,
        MsgType::Error,
        MsgType::QueryRequest,
        MsgType::PositiveQueryResponse,
        MsgType::NegativeQueryResponse,
    ])
}

fn flags() -> impl Strategy<Value = Flags> {
    (
        any::<bool>(),
        any::<bool>(),
        select(vec![NodeType::B, NodeType::P, NodeType::M, NodeType::H]),
        prop_oneof![3 => Just(0u8), 1 => 0u8..=15],
    )
        .prop_map(|(more, first, node_type, reserved)| Flags {
            more,
            first,
            node_type,
            reserved,
        })
}

fn datagram() -> impl Strategy<Value = Datagram> {
    (
        msg_type(),
        flags(),
        any::<u16>(),
        any::<u32>(),
        any::<u16>(),
        prop_oneof![Just(None), any::<u16>().prop_map(Some)],
        any::<u16>(),
        name(),
        name(),
        vec(any::<u8>(), 0..600),
        any::<u8>(),
    )
        .prop_map(
            |(msg_type, flags, id, ip, port, length, offset, src, dst, data, code)| {
                let body = if msg_type.is_data() {
                    let body = if flags.first {
                        DataBody::Names {
                            source_name: src,
                            destination_name: dst,
                            user_data: data,
                        }
                    } else {
                        DataBody::Continuation { data }
                    };
                    Body::Data {
                        length,
                        offset,
                        body,
                    }
                } else if msg_type == MsgType::Error {
                    Body::Error { code }
                } else {
                    Body::Query {
                        destination_name: dst,
                    }
                };
                let mut d = Datagram {
                    msg_type,
                    flags,
                    id,
                    source_ip: Ipv4Addr::from(ip),
                    source_port: port,
                    body,
                };
                // Canonical form: a DGM_LENGTH equal to the data section reads back as None.
                let computed = d.data_section_len();
                if let Body::Data { length, .. } = &mut d.body {
                    if length.map(usize::from) == Some(computed) {
                        *length = None;
                    }
                }
                d
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Name-service packets

/// The packet-level facts `parse_record` uses to decide the kind of record data.
#[derive(Debug, Clone, Copy)]
struct RdataContext {
    wack: bool,
    response: bool,
}

impl RdataContext {
    fn of(flags: u16) -> Self {
        RdataContext {
            wack: (flags >> 11) & 0x0F == 7,
            response: flags & nbns::FLAG_RESPONSE != 0,
        }
    }
}

fn rr_type() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => Just(nbns::TYPE_NB),
        3 => Just(nbns::TYPE_NBSTAT),
        1 => Just(nbns::TYPE_NULL),
        1 => Just(nbns::TYPE_A),
        1 => Just(nbns::TYPE_NS),
        1 => any::<u16>(),
    ]
}

fn statistics() -> impl Strategy<Value = Statistics> {
    (
        any::<[u8; 6]>(),
        any::<(u8, u8, u16, u16, u16, u16, u16, u16)>(),
        any::<(u32, u32)>(),
        any::<(u16, u16, u16, u16, u16, u16, u16, u16, u16)>(),
    )
        .prop_map(|(unit_id, a, b, c)| Statistics {
            unit_id,
            jumpers: a.0,
            test_result: a.1,
            version_number: a.2,
            period_of_statistics: a.3,
            number_of_crcs: a.4,
            number_alignment_errors: a.5,
            number_of_collisions: a.6,
            number_send_aborts: a.7,
            number_good_sends: b.0,
            number_good_receives: b.1,
            number_retransmits: c.0,
            number_no_resource_conditions: c.1,
            number_free_command_blocks: c.2,
            total_number_command_blocks: c.3,
            max_total_number_command_blocks: c.4,
            number_pending_sessions: c.5,
            max_number_pending_sessions: c.6,
            max_total_sessions_possible: c.7,
            session_data_packet_size: c.8,
        })
}

fn node_status() -> impl Strategy<Value = NodeStatus> {
    (
        vec((any::<[u8; 16]>(), any::<u16>()), 0..6),
        proptest::option::of(statistics()),
        vec(any::<u8>(), 0..60),
    )
        .prop_map(|(names, statistics, mut extra)| {
            // Fewer than 46 bytes after the table are `extra`, more are statistics.
            if statistics.is_none() {
                extra.truncate(nbns::STATISTICS_LEN - 1);
            }
            NodeStatus {
                names: names
                    .into_iter()
                    .map(|(raw, flags)| NodeName {
                        name: Name::from_raw(raw),
                        flags,
                    })
                    .collect(),
                statistics,
                extra,
            }
        })
}

fn nb_addresses() -> impl Strategy<Value = Vec<NbAddress>> {
    vec(
        (any::<u16>(), any::<u32>()).prop_map(|(flags, ip)| NbAddress {
            flags,
            ip: Ipv4Addr::from(ip),
        }),
        1..5,
    )
}

fn rdata_len(rd: &RData) -> usize {
    match rd {
        RData::Nb(a) => 6 * a.len(),
        RData::NodeStatus(ns) => {
            1 + 18 * ns.names.len()
                + ns.statistics.as_ref().map_or(0, |_| nbns::STATISTICS_LEN)
                + ns.extra.len()
        }
        RData::Wack(_) => 2,
        RData::Raw(b) => b.len(),
    }
}

/// The kind of record data `nbns::Packet::parse` infers (see `parse_record`): WACK for a
/// two-byte RDATA in a WACK packet, NB for a non-empty multiple of 6 bytes of type NB, node
/// status for non-empty NBSTAT data in a response, raw bytes otherwise.
fn inferred_kind(rr_type: u16, len: usize, cx: RdataContext) -> &'static str {
    if cx.wack && len == 2 {
        "wack"
    } else if rr_type == nbns::TYPE_NB && len > 0 && len.is_multiple_of(6) {
        "nb"
    } else if rr_type == nbns::TYPE_NBSTAT && cx.response && len > 0 {
        "node_status"
    } else {
        "raw"
    }
}

fn kind_of(rd: &RData) -> &'static str {
    match rd {
        RData::Nb(_) => "nb",
        RData::NodeStatus(_) => "node_status",
        RData::Wack(_) => "wack",
        RData::Raw(_) => "raw",
    }
}

/// Record data of a kind that the parser will infer for `rr_type` in context `cx`.
fn consistent_rdata(rr_type: u16, cx: RdataContext) -> BoxedStrategy<RData> {
    let raw = vec(any::<u8>(), 0..40).prop_map(move |mut b| {
        // Shape the bytes so that they stay raw.
        if rr_type == nbns::TYPE_NBSTAT && cx.response {
            b.clear();
        }
        while inferred_kind(rr_type, b.len(), cx) != "raw" {
            b.push(0xA5);
        }
        RData::Raw(b)
    });
    let mut options: Vec<BoxedStrategy<RData>> = vec![raw.boxed()];
    if cx.wack {
        options.push(any::<u16>().prop_map(RData::Wack).boxed());
    }
    if rr_type == nbns::TYPE_NB {
        options.push(nb_addresses().prop_map(RData::Nb).boxed());
    }
    if rr_type == nbns::TYPE_NBSTAT && cx.response {
        options.push(
            node_status()
                .prop_map(move |mut ns| {
                    if cx.wack
                        && ns.names.is_empty()
                        && ns.statistics.is_none()
                        && ns.extra.len() == 1
                    {
                        ns.extra.push(0); // two bytes would read back as WACK data
                    }
                    RData::NodeStatus(ns)
                })
                .boxed(),
        );
    }
    proptest::strategy::Union::new(options).boxed()
}

/// Any record data, whatever the parser would infer.
fn any_rdata() -> impl Strategy<Value = RData> {
    prop_oneof![
        vec(any::<u8>(), 0..40).prop_map(RData::Raw),
        any::<u16>().prop_map(RData::Wack),
        nb_addresses().prop_map(RData::Nb),
        Just(RData::Nb(Vec::new())),
        node_status().prop_map(RData::NodeStatus),
    ]
}

fn question() -> impl Strategy<Value = Question> {
    (
        name(),
        prop_oneof![Just(nbns::TYPE_NB), Just(nbns::TYPE_NBSTAT), any::<u16>()],
        prop_oneof![Just(nbns::CLASS_IN), any::<u16>()],
    )
        .prop_map(|(name, qtype, qclass)| Question {
            name,
            qtype,
            qclass,
        })
}

/// A record header; `name: None` means "the first question's name" (emitted as C0 0C).
fn record_head() -> impl Strategy<Value = (Option<Name>, u16, u16, u32)> {
    (
        prop_oneof![1 => Just(None), 1 => name().prop_map(Some)],
        rr_type(),
        prop_oneof![Just(nbns::CLASS_IN), any::<u16>()],
        any::<u32>(),
    )
}

fn packet_flags() -> impl Strategy<Value = u16> {
    prop_oneof![
        // Real opcodes (0, 5, 6, 7, 8, 15) with and without R; any NM_FLAGS and RCODE.
        (
            any::<bool>(),
            select(vec![0u16, 5, 6, 7, 8, 9, 15]),
            0u16..0x800
        )
            .prop_map(|(r, op, rest)| (u16::from(r) << 15) | (op << 11) | rest),
        any::<u16>(),
    ]
}

/// A packet whose record data have the kind the parser infers, so that
/// `parse(emit(p)) == p` holds exactly.
fn nbns_packet() -> impl Strategy<Value = Packet> {
    (
        any::<u16>(),
        packet_flags(),
        vec(question(), 0..3),
        vec(record_head(), 0..5),
        vec(any::<u8>(), 0..3),
        vec(any::<u8>(), 0..8),
    )
        .prop_flat_map(|(id, flags, questions, heads, split, trailing)| {
            let cx = RdataContext::of(flags);
            let rdatas: Vec<_> = heads
                .iter()
                .map(|(_, t, _, _)| consistent_rdata(*t, cx))
                .collect();
            (Just((id, flags, questions, heads, split, trailing)), rdatas)
        })
        .prop_map(|((id, flags, questions, heads, split, trailing), rdatas)| {
            let first = questions.first().map(|q| q.name.clone());
            let records: Vec<Record> = heads
                .into_iter()
                .zip(rdatas)
                .map(|((name, rr_type, rr_class, ttl), rdata)| Record {
                    name: name
                        .or_else(|| first.clone())
                        .unwrap_or_else(|| Name::new("HOST", 0x20).unwrap()),
                    rr_type,
                    rr_class,
                    ttl,
                    rdata,
                })
                .collect();
            let (answers, authority, additional) = split_records(records, &split);
            Packet {
                id,
                flags,
                questions,
                answers,
                authority,
                additional,
                trailing,
            }
        })
}

fn split_records(
    mut records: Vec<Record>,
    split: &[u8],
) -> (Vec<Record>, Vec<Record>, Vec<Record>) {
    let n = records.len();
    let a = split.first().map_or(n, |&s| usize::from(s) % (n + 1));
    let b = split
        .get(1)
        .map_or(n, |&s| a + usize::from(s) % (n - a + 1));
    let additional = records.split_off(b);
    let authority = records.split_off(a);
    (records, authority, additional)
}

/// A packet with arbitrary record data (possibly not what the parser would infer).
fn nbns_packet_any_rdata() -> impl Strategy<Value = Packet> {
    (
        any::<u16>(),
        packet_flags(),
        vec(question(), 0..3),
        vec((record_head(), any_rdata()), 0..5),
        vec(any::<u8>(), 0..3),
        vec(any::<u8>(), 0..8),
    )
        .prop_map(|(id, flags, questions, recs, split, trailing)| {
            let first = questions.first().map(|q| q.name.clone());
            let records = recs
                .into_iter()
                .map(|((name, rr_type, rr_class, ttl), rdata)| Record {
                    name: name
                        .or_else(|| first.clone())
                        .unwrap_or_else(|| Name::new("HOST", 0x20).unwrap()),
                    rr_type,
                    rr_class,
                    ttl,
                    rdata,
                })
                .collect();
            let (answers, authority, additional) = split_records(records, &split);
            Packet {
                id,
                flags,
                questions,
                answers,
                authority,
                additional,
                trailing,
            }
        })
}

fn records(p: &Packet) -> impl Iterator<Item = &Record> {
    p.answers.iter().chain(&p.authority).chain(&p.additional)
}

// ---------------------------------------------------------------------------------------------
// Mailslot writes

fn smb_header() -> impl Strategy<Value = SmbHeader> {
    (
        any::<(u32, u8, u16, u16)>(),
        any::<[u8; 8]>(),
        any::<(u16, u16, u16, u16, u16)>(),
    )
        .prop_map(|(a, security_features, b)| SmbHeader {
            status: a.0,
            flags: a.1,
            flags2: a.2,
            pid_high: a.3,
            security_features,
            reserved: b.0,
            tid: b.1,
            pid_low: b.2,
            uid: b.3,
            mid: b.4,
        })
}

fn ascii_mailslot_name() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "\\MAILSLOT\\BROWSE",
            "\\MAILSLOT\\LANMAN",
            "\\MAILSLOT\\NET\\NETLOGON",
            "\\MAILSLOT\\NET\\NTLOGON",
            "\\MAILSLOT\\MESSNGR",
            "",
        ])
        .prop_map(str::to_owned),
        vec(1u8..0x80, 0..40).prop_map(|b| b.into_iter().map(char::from).collect()),
    ]
}

/// Latin-1 names, as the parser produces them from arbitrary bytes (no NUL).
fn latin1_mailslot_name() -> impl Strategy<Value = String> {
    vec(1u8..=0xFF, 0..40).prop_map(|b| b.into_iter().map(char::from).collect())
}

fn mailslot_write(name: BoxedStrategy<String>) -> impl Strategy<Value = MailslotWrite> {
    (
        smb_header(),
        (
            any::<(u16, u16, u16, u8, u8, u16)>(),
            any::<(u32, u16, u16, u16, u8)>(),
        ),
        any::<(u16, u16, u16)>(),
        name,
        vec(any::<u8>(), 0..8),
        vec(any::<u8>(), 0..300),
        vec(any::<u8>(), 0..20),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(
            |(header, (t, u), setup, name, padding, data, trailing, tdc, bc)| {
                let mut w = MailslotWrite {
                    header,
                    total_parameter_count: t.0,
                    max_parameter_count: t.1,
                    max_data_count: t.2,
                    max_setup_count: t.3,
                    reserved1: t.4,
                    transaction_flags: t.5,
                    timeout: u.0,
                    reserved2: u.1,
                    parameter_count: u.2,
                    parameter_offset: u.3,
                    reserved3: u.4,
                    opcode: setup.0,
                    priority: setup.1,
                    class: setup.2,
                    name,
                    padding,
                    data,
                    trailing,
                    total_data_count_override: tdc,
                    byte_count_override: bc,
                };
                // Canonical form: overrides equal to the computed values read back as None.
                if w.total_data_count_override.map(usize::from) == Some(w.data.len()) {
                    w.total_data_count_override = None;
                }
                let byte_count = latin1_bytes(&w.name).len() + 1 + w.padding.len() + w.data.len();
                if w.byte_count_override.map(usize::from) == Some(byte_count) {
                    w.byte_count_override = None;
                }
                w
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Messenger

fn latin1_text(max: usize) -> impl Strategy<Value = String> {
    vec(1u8..=0xFF, 0..max).prop_map(|b| b.into_iter().map(char::from).collect())
}

fn messenger() -> impl Strategy<Value = Message> {
    (
        latin1_text(20),
        latin1_text(20),
        latin1_text(80),
        any::<bool>(),
        vec(any::<u8>(), 0..10),
    )
        .prop_map(
            |(sender, recipient, text, unterminated, trailing)| Message {
                sender,
                recipient,
                text,
                text_unterminated: unterminated,
                trailing: if unterminated { Vec::new() } else { trailing },
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Re-emission checks shared by the properties

fn datagram_reparses(d: &Datagram) -> Result<(), TestCaseError> {
    let bytes = d
        .to_bytes()
        .map_err(|e| TestCaseError::fail(format!("parsed datagram does not emit: {e}")))?;
    prop_assert_eq!(bytes.len(), d.len());
    prop_assert_eq!(Datagram::parse(&bytes), Ok(d.clone()), "{}", hex(&bytes));
    Ok(())
}

fn nbns_reparses(p: &Packet) -> Result<(), TestCaseError> {
    let bytes = p
        .to_bytes()
        .map_err(|e| TestCaseError::fail(format!("parsed packet does not emit: {e}")))?;
    prop_assert_eq!(Packet::parse(&bytes), Ok(p.clone()), "{}", hex(&bytes));
    Ok(())
}

fn mailslot_reparses(w: &MailslotWrite, original: &[u8]) -> Result<(), TestCaseError> {
    let bytes = w
        .to_bytes()
        .map_err(|e| TestCaseError::fail(format!("parsed write does not emit: {e}")))?;
    prop_assert_eq!(MailslotWrite::parse(&bytes), Ok(w.clone()));
    // Every field is kept, so the bytes come back too.
    prop_assert_eq!(hex(&bytes), hex(original));
    Ok(())
}

fn browser_reparses(f: &BrowserFrame, original: &[u8]) -> Result<(), TestCaseError> {
    let bytes = f
        .to_bytes()
        .map_err(|e| TestCaseError::fail(format!("parsed frame does not emit: {e}")))?;
    prop_assert_eq!(BrowserFrame::parse(&bytes), Ok(f.clone()));
    // Documented: every accepted frame is emitted again byte for byte.
    prop_assert_eq!(hex(&bytes), hex(original));
    Ok(())
}

fn lanman_reparses(f: &LanmanFrame, original: &[u8]) -> Result<(), TestCaseError> {
    let bytes = f
        .to_bytes()
        .map_err(|e| TestCaseError::fail(format!("parsed frame does not emit: {e}")))?;
    prop_assert_eq!(LanmanFrame::parse(&bytes), Ok(f.clone()));
    prop_assert_eq!(hex(&bytes), hex(original));
    Ok(())
}

fn netlogon_reparses(m: &NetlogonMessage, original: &[u8]) -> Result<(), TestCaseError> {
    let bytes = m
        .to_bytes()
        .map_err(|e| TestCaseError::fail(format!("parsed message does not emit: {e}")))?;
    prop_assert_eq!(
        NetlogonMessage::parse(&bytes),
        Ok(m.clone()),
        "{}",
        hex(original)
    );
    // Not the same bytes in general: alignment padding is read over and emitted as zeros.
    prop_assert_eq!(bytes.len(), original.len());
    Ok(())
}

fn messenger_reparses(m: &Message, original: &[u8]) -> Result<(), TestCaseError> {
    let bytes = m
        .to_bytes()
        .map_err(|e| TestCaseError::fail(format!("parsed message does not emit: {e}")))?;
    prop_assert_eq!(Message::parse(&bytes), Ok(m.clone()));
    prop_assert_eq!(hex(&bytes), hex(original));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Seeds for the application layers: the hex vectors and the data of generated messages.

fn browser_seeds() -> Vec<Vec<u8>> {
    let mut v = vectors_in("browser_frames");
    // A LAN Manager announcement (LM layout): opcode, update count, server type, OS
    // version, periodicity in seconds, server name, comment.
    let mut lm = vec![0x01, 0x00, 0x03, 0x10, 0x01, 0x00, 0x04, 0x00, 0xB4, 0x00];
    lm.extend_from_slice(b"FRED\0a comment\0");
    v.push(lm);
    v
}

fn netlogon_seeds() -> Vec<Vec<u8>> {
    use nbdgm_wire::netlogon::{PrimaryQuery, SamLogonRequest};
    let mut v = Vec::new();
    for m in [
        NetlogonMessage::PrimaryQuery(PrimaryQuery::new("FRED", "\\MAILSLOT\\NET\\GETDC123")),
        NetlogonMessage::SamLogonRequest(SamLogonRequest::new(
            "FRED",
            "alice",
            "\\MAILSLOT\\NET\\GETDC456",
            0x0B,
        )),
    ] {
        v.push(m.to_bytes().unwrap());
    }
    // Opcode-only prefixes of every decoded opcode, to reach each body parser.
    for op in [0x07u16, 0x0C, 0x12, 0x13, 0x14, 0x15, 0x17, 0x18, 0x19] {
        let mut b = op.to_le_bytes().to_vec();
        b.extend_from_slice(&[0x41, 0, 0x42, 0, 0, 0, 0x43, 0, 0, 0]);
        b.extend_from_slice(&[0xFF; 8]);
        v.push(b);
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Properties

/// Cases per property: 4096, or `PROPTEST_CASES`.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4096)
}

proptest! {
    // No regression files: failures print the minimal input instead.
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    // --- Names -----------------------------------------------------------------------------

    #[test]
    fn name_round_trip(n in name(), prefix in vec(any::<u8>(), 0..20)) {
        let enc = emit_name(&n);
        prop_assert_eq!(enc.len(), n.encoded_len());
        prop_assert!(enc.len() <= MAX_ENCODED_LEN);
        let mut buf = prefix.clone();
        buf.extend_from_slice(&enc);
        let end = prefix.len() + enc.len();
        prop_assert_eq!(Name::parse(&buf, prefix.len()), Ok((n.clone(), end)));
        prop_assert_eq!(Name::parse_compressed(&buf, prefix.len()), Ok((n.clone(), end)));
        // The user syntax is not a round trip for raw names; the display must not panic.
        let _ = n.to_string();
    }

    #[test]
    fn name_through_pointer(n in name(), gap in vec(any::<u8>(), 0..20)) {
        // The name at offset 12 (as in a name-service message), then a pointer to it.
        let mut buf = vec![0u8; 12];
        buf.extend_from_slice(&emit_name(&n));
        buf.extend_from_slice(&gap);
        let at = buf.len();
        buf.extend_from_slice(&[0xC0, 12]);
        prop_assert_eq!(Name::parse_compressed(&buf, at), Ok((n, at + 2)));
        prop_assert!(Name::parse(&buf, at).is_err());
    }

    #[test]
    fn name_parse_never_panics(buf in vec(any::<u8>(), 0..300), off in 0usize..310) {
        let parsed = [Name::parse(&buf, off), Name::parse_compressed(&buf, off)];
        for (n, end) in parsed.into_iter().flatten() {
            prop_assert!(end <= buf.len());
            // What was read is emitted again to a name that reads back the same.
            let enc = emit_name(&n);
            prop_assert_eq!(Name::parse(&enc, 0), Ok((n, enc.len())));
        }
    }

    #[test]
    fn name_parse_mutated(
        buf in (name(), vec(name(), 0..3)).prop_flat_map(|(n, more)| {
            let mut b = vec![0u8; 12];
            b.extend_from_slice(&emit_name(&n));
            for m in &more {
                b.extend_from_slice(&emit_name(m));
                b.extend_from_slice(&[0xC0, 12]);
            }
            mutated(vec![b])
        }),
        off in 0usize..400,
    ) {
        let off = off % (buf.len() + 1);
        let parsed = [Name::parse(&buf, off), Name::parse_compressed(&buf, off)];
        for (n, end) in parsed.into_iter().flatten() {
            prop_assert!(end <= buf.len());
            let enc = emit_name(&n);
            prop_assert_eq!(Name::parse(&enc, 0), Ok((n, enc.len())));
        }
    }

    // --- Datagrams -------------------------------------------------------------------------

    #[test]
    fn datagram_round_trip(d in datagram()) {
        let bytes = d.to_bytes().unwrap();
        prop_assert_eq!(bytes.len(), d.len());
        prop_assert_eq!(Datagram::parse(&bytes), Ok(d.clone()), "{}", hex(&bytes));
        // The declared DGM_LENGTH is what goes on the wire.
        if let Some(len) = d.dgm_length() {
            prop_assert_eq!(&bytes[10..12], &len.to_be_bytes()[..]);
        }
    }

    #[test]
    fn datagram_parse_never_panics(buf in vec(any::<u8>(), 0..300)) {
        if let Ok(d) = Datagram::parse(&buf) {
            datagram_reparses(&d)?;
        }
    }

    #[test]
    fn datagram_parse_typed_prefix(
        t in 0x10u8..=0x16,
        f in any::<u8>(),
        rest in vec(any::<u8>(), 0..120),
    ) {
        let mut buf = vec![t, f];
        buf.extend_from_slice(&rest);
        if let Ok(d) = Datagram::parse(&buf) {
            datagram_reparses(&d)?;
        }
    }

    #[test]
    fn datagram_parse_mutated(
        buf in prop_oneof![
            datagram().prop_flat_map(|d| mutated(vec![d.to_bytes().unwrap()])),
            mutated(vectors_in("datagrams")),
        ]
    ) {
        if let Ok(d) = Datagram::parse(&buf) {
            datagram_reparses(&d)?;
        }
    }

    // --- Name-service packets --------------------------------------------------------------

    #[test]
    fn nbns_round_trip(p in nbns_packet()) {
        for r in records(&p) {
            prop_assert_eq!(
                kind_of(&r.rdata),
                inferred_kind(r.rr_type, rdata_len(&r.rdata), RdataContext::of(p.flags)),
                "generator produced an inconsistent record"
            );
        }
        let bytes = p.to_bytes().unwrap();
        prop_assert_eq!(Packet::parse(&bytes), Ok(p.clone()), "{}", hex(&bytes));
    }

    #[test]
    fn nbns_first_question_name_is_a_pointer(p in nbns_packet()) {
        // Records named like the first question take two bytes for the name.
        let bytes = p.to_bytes().unwrap();
        let first = p.questions.first().map(|q| &q.name);
        let names: usize = p.questions.iter().map(|q| q.name.encoded_len() + 4).sum::<usize>()
            + records(&p)
                .map(|r| {
                    let name = if Some(&r.name) == first { 2 } else { r.name.encoded_len() };
                    name + 10 + rdata_len(&r.rdata)
                })
                .sum::<usize>();
        prop_assert_eq!(bytes.len(), nbns::HEADER_LEN + names + p.trailing.len());
    }

    #[test]
    fn nbns_canonical_form(p in nbns_packet_any_rdata()) {
        // Record data of a kind the parser does not infer: the parser normalises it, and the
        // normal form is a fixed point that emits the same bytes.
        let Ok(bytes) = p.to_bytes() else {
            return Ok(());
        };
        match Packet::parse(&bytes) {
            Ok(q) => {
                prop_assert_eq!(q.to_bytes().unwrap(), bytes.clone(), "{}", hex(&bytes));
                prop_assert_eq!(Packet::parse(&q.to_bytes().unwrap()), Ok(q.clone()));
                prop_assert_eq!(q.id, p.id);
                prop_assert_eq!(q.flags, p.flags);
                prop_assert_eq!(&q.questions, &p.questions);
                prop_assert_eq!(&q.trailing, &p.trailing);
                prop_assert_eq!(q.answers.len(), p.answers.len());
                prop_assert_eq!(q.authority.len(), p.authority.len());
                prop_assert_eq!(q.additional.len(), p.additional.len());
                let cx = RdataContext::of(p.flags);
                for (a, b) in records(&p).zip(records(&q)) {
                    prop_assert_eq!(&a.name, &b.name);
                    prop_assert_eq!((a.rr_type, a.rr_class, a.ttl), (b.rr_type, b.rr_class, b.ttl));
                    prop_assert_eq!(
                        kind_of(&b.rdata),
                        inferred_kind(b.rr_type, rdata_len(&a.rdata), cx)
                    );
                    if kind_of(&a.rdata) == kind_of(&b.rdata) {
                        prop_assert_eq!(&a.rdata, &b.rdata);
                    }
                }
            }
            Err(_) => {
                // Only NBSTAT data in a response that is not a node-status table can fail.
                let cx = RdataContext::of(p.flags);
                let explained = records(&p).any(|r| {
                    let len = rdata_len(&r.rdata);
                    r.rr_type == nbns::TYPE_NBSTAT
                        && cx.response
                        && !matches!(r.rdata, RData::NodeStatus(_))
                        && len > 0
                        && !(cx.wack && len == 2)
                });
                prop_assert!(explained, "unexpected parse error for {}", hex(&bytes));
            }
        }
    }

    #[test]
    fn nbns_parse_never_panics(buf in vec(any::<u8>(), 0..400)) {
        if let Ok(p) = Packet::parse(&buf) {
            nbns_reparses(&p)?;
        }
    }

    #[test]
    fn nbns_parse_mutated(
        buf in prop_oneof![
            nbns_packet().prop_flat_map(|p| mutated(vec![p.to_bytes().unwrap()])),
            mutated(vectors_in("nbns")),
        ]
    ) {
        if let Ok(p) = Packet::parse(&buf) {
            nbns_reparses(&p)?;
        }
    }

    // --- Mailslot writes -------------------------------------------------------------------

    #[test]
    fn mailslot_round_trip(w in mailslot_write(ascii_mailslot_name().boxed())) {
        let bytes = w.to_bytes().unwrap();
        prop_assert_eq!(bytes.len(), w.len());
        prop_assert_eq!(MailslotWrite::parse(&bytes), Ok(w.clone()), "{}", hex(&bytes));
    }

    #[test]
    fn mailslot_latin1_name_round_trip(w in mailslot_write(latin1_mailslot_name().boxed())) {
        let bytes = w.to_bytes().unwrap();
        prop_assert_eq!(MailslotWrite::parse(&bytes), Ok(w.clone()), "{}", hex(&bytes));
    }

    #[test]
    fn mailslot_parse_never_panics(buf in vec(any::<u8>(), 0..300)) {
        // Random bytes almost never start with FF 'SMB' 0x25: also try with that prefix.
        let mut smb = vec![0xFF, b'S', b'M', b'B', 0x25];
        smb.extend_from_slice(&buf);
        for b in [&buf, &smb] {
            if let Ok(w) = MailslotWrite::parse(b) {
                if w.name.is_ascii() {
                    mailslot_reparses(&w, b)?;
                }
            }
        }
    }

    #[test]
    fn mailslot_parse_mutated(
        buf in prop_oneof![
            mailslot_write(ascii_mailslot_name().boxed())
                .prop_flat_map(|w| mutated(vec![w.to_bytes().unwrap()])),
            mutated(vectors_in("smb_mailslot")),
        ]
    ) {
        if let Ok(w) = MailslotWrite::parse(&buf) {
            mailslot_reparses(&w, &buf)?;
        }
    }

    // --- Application layers ----------------------------------------------------------------

    #[test]
    fn browser_parse_never_panics(
        op in prop_oneof![0x01u8..=0x0F, any::<u8>()],
        rest in vec(any::<u8>(), 0..120),
    ) {
        let mut buf = vec![op];
        buf.extend_from_slice(&rest);
        for b in [&buf[..], &rest[..]] {
            if let Ok(f) = BrowserFrame::parse(b) {
                browser_reparses(&f, b)?;
            }
            if let Ok(f) = LanmanFrame::parse(b) {
                lanman_reparses(&f, b)?;
            }
        }
    }

    #[test]
    fn browser_parse_mutated(buf in mutated(browser_seeds())) {
        if let Ok(f) = BrowserFrame::parse(&buf) {
            browser_reparses(&f, &buf)?;
        }
        if let Ok(f) = LanmanFrame::parse(&buf) {
            lanman_reparses(&f, &buf)?;
        }
    }

    #[test]
    fn lanman_browse_layout(rest in vec(any::<u8>(), 32..80), op in select(vec![0x01u8, 0x0C, 0x0F])) {
        // Long enough, signature 55 AA at bytes 30-31: the MS-BRWS layout on LANMAN.
        let mut buf = rest;
        buf[0] = op;
        buf[30] = 0x55;
        buf[31] = 0xAA;
        if let Ok(f) = LanmanFrame::parse(&buf) {
            lanman_reparses(&f, &buf)?;
        }
    }

    #[test]
    fn netlogon_parse_never_panics(
        op in prop_oneof![
            select(vec![0x07u16, 0x0A, 0x0C, 0x12, 0x13, 0x14, 0x15, 0x17, 0x18, 0x19]),
            any::<u16>(),
        ],
        rest in vec(any::<u8>(), 0..200),
    ) {
        let mut buf = op.to_le_bytes().to_vec();
        buf.extend_from_slice(&rest);
        for b in [&buf[..], &rest[..]] {
            if let Ok(m) = NetlogonMessage::parse(b) {
                netlogon_reparses(&m, b)?;
            }
        }
    }

    #[test]
    fn netlogon_parse_mutated(buf in mutated(netlogon_seeds())) {
        if let Ok(m) = NetlogonMessage::parse(&buf) {
            netlogon_reparses(&m, &buf)?;
        }
    }

    #[test]
    fn messenger_round_trip(m in messenger()) {
        let bytes = m.to_bytes().unwrap();
        prop_assert_eq!(Message::parse(&bytes), Ok(m.clone()), "{}", hex(&bytes));
    }

    #[test]
    fn messenger_parse_never_panics(buf in vec(any::<u8>(), 0..200)) {
        if let Ok(m) = Message::parse(&buf) {
            messenger_reparses(&m, &buf)?;
        }
    }

    #[test]
    fn payload_parse_never_panics(
        slot in select(vec![
            "\\MAILSLOT\\BROWSE",
            "\\mailslot\\browse",
            "\\MAILSLOT\\LANMAN",
            "\\MAILSLOT\\NET\\NETLOGON",
            "\\MAILSLOT\\NET\\NTLOGON",
            "\\MAILSLOT\\NET\\GETDC123",
            "\\MAILSLOT\\TEMP\\NETLOGON",
            "\\MAILSLOT\\MESSNGR",
            "\\MAILSLOT\\OTHER",
            "",
        ]),
        buf in prop_oneof![vec(any::<u8>(), 0..200), mutated(browser_seeds()), mutated(netlogon_seeds())],
    ) {
        match payload::parse(slot, &buf) {
            Ok(Some(payload::Payload::Browser(f))) => browser_reparses(&f, &buf)?,
            Ok(Some(payload::Payload::Lanman(f))) => lanman_reparses(&f, &buf)?,
            Ok(Some(payload::Payload::Netlogon(m))) => netlogon_reparses(&m, &buf)?,
            Ok(Some(payload::Payload::Messenger(m))) => messenger_reparses(&m, &buf)?,
            Ok(None) => prop_assert_eq!(payload::classify(slot), payload::Application::Unknown),
            Err(_) => {}
        }
    }

    // --- The layers stacked ----------------------------------------------------------------

    #[test]
    fn stacked_datagram_mailslot(
        w in mailslot_write(ascii_mailslot_name().boxed()),
        d in datagram(),
        edits in vec(edit(), 0..3),
    ) {
        // A generated mailslot write inside a generated data datagram, lightly damaged: every
        // layer that still parses re-emits what it read.
        let user = apply(w.to_bytes().unwrap(), &edits);
        let d = Datagram {
            msg_type: MsgType::DirectGroup,
            flags: Flags { first: true, ..d.flags },
            body: Body::Data {
                length: None,
                offset: 0,
                body: DataBody::Names {
                    source_name: Name::new("FRED", 0).unwrap(),
                    destination_name: Name::new("WORKGROUP", 0x1d).unwrap(),
                    user_data: user.clone(),
                },
            },
            ..d
        };
        let bytes = d.to_bytes().unwrap();
        let back = Datagram::parse(&bytes).unwrap();
        prop_assert_eq!(back.user_data(), Some(&user[..]));
        if let Ok(w) = MailslotWrite::parse(&user) {
            if w.name.is_ascii() {
                mailslot_reparses(&w, &user)?;
            }
            let _ = payload::parse(&w.name, &w.data);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Plain tests

#[test]
fn every_vector_survives_its_parser() {
    let mut n = 0;
    for (section, bytes) in vectors() {
        if section.starts_with("datagrams") {
            let d = Datagram::parse(bytes).unwrap();
            assert_eq!(&d.to_bytes().unwrap(), bytes);
        } else if section.starts_with("nbns") {
            let p = Packet::parse(bytes).unwrap();
            assert_eq!(Packet::parse(&p.to_bytes().unwrap()).unwrap(), p);
        } else if section.starts_with("smb_mailslot") {
            let w = MailslotWrite::parse(bytes).unwrap();
            assert_eq!(&w.to_bytes().unwrap(), bytes);
        } else if section.starts_with("browser_frames") {
            let f = BrowserFrame::parse(bytes).unwrap();
            assert_eq!(&f.to_bytes().unwrap(), bytes);
        } else if section.starts_with("second_level") {
            let (name, end) = Name::parse(bytes, 0).unwrap();
            assert_eq!(end, bytes.len());
            assert_eq!(&emit_name(&name), bytes);
        } else {
            continue;
        }
        n += 1;
    }
    assert!(n >= 20, "only {n} vectors");
}

#[test]
fn scope_generator_reaches_the_limit() {
    let s = build_scope(vec!["a".repeat(63); 4], true);
    assert_eq!(s.len(), MAX_SCOPE_LEN);
    let n = Name::new("A", 0).unwrap().with_scope(&s).unwrap();
    assert_eq!(n.encoded_len(), MAX_ENCODED_LEN);
    assert_eq!(Name::parse(&emit_name(&n), 0).unwrap().0, n);
    for len in [1usize, 2, 61, 62, 63] {
        let s = build_scope(vec!["b".repeat(len); 5], true);
        assert_eq!(s.len(), MAX_SCOPE_LEN, "{len}");
        nbdgm_wire::name::validate_scope(&s).unwrap();
    }
}

/// `n` values drawn from `s` with a fixed seed.
fn sample<S: Strategy>(s: S, n: usize) -> Vec<S::Value> {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    (0..n)
        .map(|_| s.new_tree(&mut runner).unwrap().current())
        .collect()
}

#[test]
fn generators_cover_every_kind() {
    // Datagrams: every type, both data bodies, explicit lengths, reserved flags.
    let ds = sample(datagram(), 2000);
    for t in 0x10..=0x16 {
        assert!(ds.iter().any(|d| d.msg_type.code() == t), "type {t:#x}");
    }
    assert!(ds.iter().any(|d| matches!(
        &d.body,
        Body::Data {
            body: DataBody::Continuation { .. },
            ..
        }
    )));
    assert!(ds.iter().any(|d| matches!(
        &d.body,
        Body::Data {
            length: Some(_),
            ..
        }
    )));
    assert!(ds.iter().any(|d| d.flags.reserved != 0));
    assert!(ds.iter().any(|d| d
        .source_name()
        .is_some_and(|n| n.encoded_len() == MAX_ENCODED_LEN)));

    // Name-service packets: every kind of record data, and records that use the pointer.
    let ps = sample(nbns_packet(), 2000);
    for kind in ["nb", "node_status", "wack", "raw"] {
        let n = ps
            .iter()
            .flat_map(records)
            .filter(|r| kind_of(&r.rdata) == kind)
            .count();
        assert!(n >= 20, "{kind}: {n}");
    }
    let pointers = ps
        .iter()
        .filter(|p| {
            let first = p.questions.first().map(|q| &q.name);
            records(p).any(|r| Some(&r.name) == first)
        })
        .count();
    assert!(pointers >= 200, "{pointers}");

    // Mailslot writes: padding, trailing bytes and both overrides.
    let ws = sample(mailslot_write(ascii_mailslot_name().boxed()), 1000);
    assert!(ws
        .iter()
        .any(|w| !w.padding.is_empty() && !w.trailing.is_empty()));
    assert!(ws.iter().any(|w| w.total_data_count_override.is_some()));
    assert!(ws.iter().any(|w| w.byte_count_override.is_some()));

    // Mutated packets still parse often enough for the re-emission checks to bite.
    let parsed = |v: Vec<Vec<u8>>, f: &dyn Fn(&[u8]) -> bool| v.iter().filter(|b| f(b)).count();
    let dg = sample(
        datagram().prop_flat_map(|d| mutated(vec![d.to_bytes().unwrap()])),
        1000,
    );
    let n = parsed(dg, &|b| Datagram::parse(b).is_ok());
    assert!(n >= 200, "datagrams: {n}");
    let nb = sample(
        nbns_packet().prop_flat_map(|p| mutated(vec![p.to_bytes().unwrap()])),
        1000,
    );
    let n = parsed(nb, &|b| Packet::parse(b).is_ok());
    assert!(n >= 80, "nbns: {n}");
    let ms = sample(
        mailslot_write(ascii_mailslot_name().boxed())
            .prop_flat_map(|w| mutated(vec![w.to_bytes().unwrap()])),
        1000,
    );
    let n = parsed(ms, &|b| MailslotWrite::parse(b).is_ok());
    assert!(n >= 200, "mailslot: {n}");
    let nl = sample(mutated(netlogon_seeds()), 1000);
    let n = parsed(nl, &|b| NetlogonMessage::parse(b).is_ok());
    assert!(n >= 100, "netlogon: {n}");
}

// ---------------------------------------------------------------------------------------------
// Minimal inputs of the bugs found by the properties and the fuzz targets (docs/FUZZING.md).

#[test]
fn bug_mailslot_latin1_name() {
    // Name "\xFF", no data: DataOffset 71, ByteCount 2.
    let input = unhex(concat!(
        "ff534d4225000000000000000000000000000000000000000000000000000000",
        "110000000000000000000000000000000000000000000000004700030001000000",
        "02000200ff00"
    ))
    .unwrap();
    let w = MailslotWrite::parse(&input).unwrap();
    assert_eq!(w.name, "\u{ff}");
    assert_eq!(hex(&w.to_bytes().unwrap()), hex(&input));
}

#[test]
fn bug_netlogon_pointer_into_lossy_utf16() {
    // LOGON_SAM_LOGON_RESPONSE, V5: UnicodeLogonServer = 03 2E 2E DC (U+2E03, unpaired
    // U+DC2E); DnsForestName = C0 02, a pointer to the label 03 "..\xDC" inside it.
    let input = unhex(concat!(
        "1300032e2edc000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "c0020000000000000000000002000000ffffffff"
    ))
    .unwrap();
    let m = NetlogonMessage::parse(&input).unwrap();
    let bytes = m.to_bytes().unwrap();
    assert_eq!(NetlogonMessage::parse(&bytes).unwrap(), m);
}
