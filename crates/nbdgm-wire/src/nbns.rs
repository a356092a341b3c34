//! Name-service packets, RFC 1002 §4.2 (layouts), with the Microsoft additions of
//! MS-NBTE §2.2 (multi-homed registration opcode 15, H-node ONT value).
//!
//! Names in these packets may use compression pointers (RFC 1002 §4.1); they are
//! followed backwards only, with a hop cap. On emit, a record name equal to the
//! first question name is written as the pointer `C0 0C`, as RFC 1002 §4.2.2 asks.

use crate::error::{Error, Result};
use crate::name::Name;
use crate::reader::Reader;
use std::net::Ipv4Addr;

pub mod header;
pub use header::{field, NbnsHeader, Rcode};

pub const NS_PORT: u16 = 137;
pub const HEADER_LEN: usize = 12;

// Flags word (RFC 1002 §4.2.1.1).
pub const FLAG_RESPONSE: u16 = 0x8000;
pub const FLAG_AA: u16 = 0x0400;
pub const FLAG_TC: u16 = 0x0200;
pub const FLAG_RD: u16 = 0x0100;
pub const FLAG_RA: u16 = 0x0080;
pub const FLAG_B: u16 = 0x0010;

// Record and question types.
pub const TYPE_A: u16 = 0x0001;
pub const TYPE_NS: u16 = 0x0002;
pub const TYPE_NULL: u16 = 0x000A;
pub const TYPE_NB: u16 = 0x0020;
pub const TYPE_NBSTAT: u16 = 0x0021;
pub const CLASS_IN: u16 = 0x0001;

// NB_FLAGS (RFC 1002 §4.2.2) and NAME_FLAGS (§4.2.18).
pub const NB_GROUP: u16 = 0x8000;
pub const NB_ONT_MASK: u16 = 0x6000;
pub const NAME_DRG: u16 = 0x1000;
pub const NAME_CNF: u16 = 0x0800;
pub const NAME_ACT: u16 = 0x0400;
pub const NAME_PRM: u16 = 0x0200;

/// OPCODE values (RFC 1002 §4.2.1.1; MS-NBTE §2.2.2 for 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Query,
    Registration,
    Release,
    Wack,
    /// 8, and 9 as drawn in the §4.2.4 picture (both are in use).
    Refresh(u8),
    MultiHomedRegistration,
    Other(u8),
}

impl Opcode {
    pub fn from_bits(v: u8) -> Self {
        match v {
            0 => Opcode::Query,
            5 => Opcode::Registration,
            6 => Opcode::Release,
            7 => Opcode::Wack,
            8 | 9 => Opcode::Refresh(v),
            15 => Opcode::MultiHomedRegistration,
            o => Opcode::Other(o),
        }
    }

    pub const fn bits(self) -> u8 {
        match self {
            Opcode::Query => 0,
            Opcode::Registration => 5,
            Opcode::Release => 6,
            Opcode::Wack => 7,
            Opcode::Refresh(v) => v,
            Opcode::MultiHomedRegistration => 15,
            Opcode::Other(o) => o,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Opcode::Query => "query",
            Opcode::Registration => "registration",
            Opcode::Release => "release",
            Opcode::Wack => "wack",
            Opcode::Refresh(_) => "refresh",
            Opcode::MultiHomedRegistration => "multi-homed registration",
            Opcode::Other(_) => "unknown",
        }
    }
}

/// RCODE names (RFC 1002 §4.2.6 and §4.2.14); "unknown" for undefined codes.
pub fn rcode_name(rcode: u8) -> &'static str {
    if rcode > 0x0F {
        return "unknown";
    }
    Rcode::from_bits(rcode).name()
}

/// Owner node type from NB_FLAGS ONT (0x6000): B, P, M, or H (Microsoft's use of 11).
pub fn ont_name(nb_flags: u16) -> &'static str {
    match (nb_flags & NB_ONT_MASK) >> 13 {
        0 => "B",
        1 => "P",
        2 => "M",
        _ => "H",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
}

/// One ADDR_ENTRY of NB RDATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NbAddress {
    pub flags: u16,
    pub ip: Ipv4Addr,
}

impl NbAddress {
    pub fn is_group(&self) -> bool {
        self.flags & NB_GROUP != 0
    }
}

/// One entry of a NODE STATUS RESPONSE name table: the raw, unencoded 16-byte name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeName {
    pub name: Name,
    pub flags: u16,
}

/// The 46-byte STATISTICS block of a NODE STATUS RESPONSE (RFC 1002 §4.2.18).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Statistics {
    pub unit_id: [u8; 6],
    pub jumpers: u8,
    pub test_result: u8,
    pub version_number: u16,
    pub period_of_statistics: u16,
    pub number_of_crcs: u16,
    pub number_alignment_errors: u16,
    pub number_of_collisions: u16,
    pub number_send_aborts: u16,
    pub number_good_sends: u32,
    pub number_good_receives: u32,
    pub number_retransmits: u16,
    pub number_no_resource_conditions: u16,
    pub number_free_command_blocks: u16,
    pub total_number_command_blocks: u16,
    pub max_total_number_command_blocks: u16,
    pub number_pending_sessions: u16,
    pub max_number_pending_sessions: u16,
    pub max_total_sessions_possible: u16,
    pub session_data_packet_size: u16,
}

pub const STATISTICS_LEN: usize = 46;

impl Statistics {
    fn parse(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Statistics {
            unit_id: r.array("UNIT_ID")?,
            jumpers: r.u8("JUMPERS")?,
            test_result: r.u8("TEST_RESULT")?,
            version_number: r.u16_be("VERSION_NUMBER")?,
            period_of_statistics: r.u16_be("PERIOD_OF_STATISTICS")?,
            number_of_crcs: r.u16_be("NUMBER_OF_CRCs")?,
            number_alignment_errors: r.u16_be("NUMBER_ALIGNMENT_ERRORS")?,
            number_of_collisions: r.u16_be("NUMBER_OF_COLLISIONS")?,
            number_send_aborts: r.u16_be("NUMBER_SEND_ABORTS")?,
            number_good_sends: r.u32_be("NUMBER_GOOD_SENDS")?,
            number_good_receives: r.u32_be("NUMBER_GOOD_RECEIVES")?,
            number_retransmits: r.u16_be("NUMBER_RETRANSMITS")?,
            number_no_resource_conditions: r.u16_be("NUMBER_NO_RESOURCE_CONDITIONS")?,
            number_free_command_blocks: r.u16_be("NUMBER_FREE_COMMAND_BLOCKS")?,
            total_number_command_blocks: r.u16_be("TOTAL_NUMBER_COMMAND_BLOCKS")?,
            max_total_number_command_blocks: r.u16_be("MAX_TOTAL_NUMBER_COMMAND_BLOCKS")?,
            number_pending_sessions: r.u16_be("NUMBER_PENDING_SESSIONS")?,
            max_number_pending_sessions: r.u16_be("MAX_NUMBER_PENDING_SESSIONS")?,
            max_total_sessions_possible: r.u16_be("MAX_TOTAL_SESSIONS_POSSIBLE")?,
            session_data_packet_size: r.u16_be("SESSION_DATA_PACKET_SIZE")?,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.unit_id);
        out.push(self.jumpers);
        out.push(self.test_result);
        for v in [
            self.version_number,
            self.period_of_statistics,
            self.number_of_crcs,
            self.number_alignment_errors,
            self.number_of_collisions,
            self.number_send_aborts,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.number_good_sends.to_be_bytes());
        out.extend_from_slice(&self.number_good_receives.to_be_bytes());
        for v in [
            self.number_retransmits,
            self.number_no_resource_conditions,
            self.number_free_command_blocks,
            self.total_number_command_blocks,
            self.max_total_number_command_blocks,
            self.number_pending_sessions,
            self.max_number_pending_sessions,
            self.max_total_sessions_possible,
            self.session_data_packet_size,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// NODE STATUS RESPONSE RDATA (RFC 1002 §4.2.18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub names: Vec<NodeName>,
    /// `None` when fewer than 46 bytes follow the name table (then they are in `extra`).
    pub statistics: Option<Statistics>,
    /// Bytes after the statistics (or the short remainder), kept for exact re-emission.
    pub extra: Vec<u8>,
}

/// Record data, decoded where the type is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    /// NB: one or more ADDR_ENTRY (RDLENGTH a multiple of 6).
    Nb(Vec<NbAddress>),
    NodeStatus(NodeStatus),
    /// WACK RDATA: the request's flags word (RFC 1002 §4.2.16).
    Wack(u16),
    /// Anything else, including NULL records.
    Raw(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    pub rr_type: u16,
    pub rr_class: u16,
    pub ttl: u32,
    pub rdata: RData,
}

/// A name-service packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub id: u16,
    /// The whole flags word (R, OPCODE, NM_FLAGS, RCODE).
    pub flags: u16,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
    /// Bytes after the last record (Samba's "padding"), kept as they are.
    pub trailing: Vec<u8>,
}

impl Packet {
    /// A request with one question (class IN) and no records: NAME QUERY (`TYPE_NB`,
    /// flags 0x0110 broadcast / 0x0100 unicast) or NODE STATUS (`TYPE_NBSTAT`, flags 0)
    /// (RFC 1002 §4.2.12, §4.2.17).
    pub fn request(id: u16, flags: u16, name: Name, qtype: u16) -> Packet {
        Packet {
            id,
            flags,
            questions: vec![Question {
                name,
                qtype,
                qclass: CLASS_IN,
            }],
            answers: vec![],
            authority: vec![],
            additional: vec![],
            trailing: vec![],
        }
    }

    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }

    pub fn opcode(&self) -> Opcode {
        Opcode::from_flags(self.flags)
    }

    pub fn rcode(&self) -> u8 {
        Rcode::from_flags(self.flags).bits()
    }

    pub fn is_broadcast(&self) -> bool {
        self.flags & FLAG_B != 0
    }

    /// A short human name for the packet, in the RFC's words.
    pub fn kind(&self) -> &'static str {
        let nbstat = self
            .questions
            .first()
            .map(|q| q.qtype == TYPE_NBSTAT)
            .or_else(|| self.answers.first().map(|a| a.rr_type == TYPE_NBSTAT))
            .unwrap_or(false);
        let resp = self.is_response();
        let ok = self.rcode() == 0;
        match (self.opcode(), resp) {
            (Opcode::Query, false) if nbstat => "NODE STATUS REQUEST",
            (Opcode::Query, true) if nbstat => "NODE STATUS RESPONSE",
            (Opcode::Query, false) => "NAME QUERY REQUEST",
            (Opcode::Query, true) if ok => "POSITIVE NAME QUERY RESPONSE",
            (Opcode::Query, true) => "NEGATIVE NAME QUERY RESPONSE",
            (Opcode::Registration, false) if self.flags & FLAG_RD == 0 => "NAME OVERWRITE REQUEST",
            (Opcode::Registration | Opcode::MultiHomedRegistration, false) => {
                "NAME REGISTRATION REQUEST"
            }
            (Opcode::Registration | Opcode::MultiHomedRegistration, true) if self.rcode() == 7 => {
                "NAME CONFLICT DEMAND"
            }
            (Opcode::Registration | Opcode::MultiHomedRegistration, true) if ok => {
                "POSITIVE NAME REGISTRATION RESPONSE"
            }
            (Opcode::Registration | Opcode::MultiHomedRegistration, true) => {
                "NEGATIVE NAME REGISTRATION RESPONSE"
            }
            (Opcode::Release, false) => "NAME RELEASE REQUEST",
            (Opcode::Release, true) if ok => "POSITIVE NAME RELEASE RESPONSE",
            (Opcode::Release, true) => "NEGATIVE NAME RELEASE RESPONSE",
            (Opcode::Wack, _) => "WAIT FOR ACKNOWLEDGEMENT RESPONSE",
            (Opcode::Refresh(_), false) => "NAME REFRESH REQUEST",
            (Opcode::Refresh(_), true) => "NAME REFRESH RESPONSE",
            (Opcode::Other(_), _) => "UNKNOWN",
        }
    }

    /// Parse a UDP payload.
    pub fn parse(buf: &[u8]) -> Result<Packet> {
        let mut r = Reader::new(buf);
        let id = r.u16_be("NAME_TRN_ID")?;
        let flags = r.u16_be("flags")?;
        let qd = r.u16_be("QDCOUNT")?;
        let an = r.u16_be("ANCOUNT")?;
        let ns = r.u16_be("NSCOUNT")?;
        let ar = r.u16_be("ARCOUNT")?;
        let wack = Opcode::from_flags(flags) == Opcode::Wack;
        let response = flags & FLAG_RESPONSE != 0;
        let mut pos = r.pos();
        let mut questions = Vec::new();
        for _ in 0..qd {
            let (name, p) =
                Name::parse_compressed(buf, pos).map_err(|e| e.in_field("QUESTION_NAME"))?;
            let mut r = Reader::at(buf, p);
            questions.push(Question {
                name,
                qtype: r.u16_be("QUESTION_TYPE")?,
                qclass: r.u16_be("QUESTION_CLASS")?,
            });
            pos = r.pos();
        }
        let mut sections: [Vec<Record>; 3] = Default::default();
        for (count, section) in [an, ns, ar].into_iter().zip(sections.iter_mut()) {
            for _ in 0..count {
                let (rec, p) = parse_record(buf, pos, wack, response)?;
                section.push(rec);
                pos = p;
            }
        }
        let [answers, authority, additional] = sections;
        Ok(Packet {
            id,
            flags,
            questions,
            answers,
            authority,
            additional,
            trailing: buf.get(pos..).unwrap_or(&[]).to_vec(),
        })
    }

    /// Append the packet.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        for n in [
            self.questions.len(),
            self.answers.len(),
            self.authority.len(),
            self.additional.len(),
        ] {
            let n =
                u16::try_from(n).map_err(|_| Error::emit("count", "more than 65535 entries"))?;
            out.extend_from_slice(&n.to_be_bytes());
        }
        for q in &self.questions {
            q.name.emit(out);
            out.extend_from_slice(&q.qtype.to_be_bytes());
            out.extend_from_slice(&q.qclass.to_be_bytes());
        }
        let first_q = self.questions.first().map(|q| &q.name);
        for rec in self
            .answers
            .iter()
            .chain(&self.authority)
            .chain(&self.additional)
        {
            if Some(&rec.name) == first_q {
                out.extend_from_slice(&[0xC0, HEADER_LEN as u8]);
            } else {
                rec.name.emit(out);
            }
            out.extend_from_slice(&rec.rr_type.to_be_bytes());
            out.extend_from_slice(&rec.rr_class.to_be_bytes());
            out.extend_from_slice(&rec.ttl.to_be_bytes());
            let len_at = out.len();
            out.extend_from_slice(&[0, 0]);
            emit_rdata(&rec.rdata, out)?;
            let rdlen = u16::try_from(out.len() - len_at - 2)
                .map_err(|_| Error::emit("RDLENGTH", "record data longer than 65535 bytes"))?;
            out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        }
        out.extend_from_slice(&self.trailing);
        debug_assert!(out.len() > start);
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        crate::emit_to_vec(64, |v| self.emit(v))
    }
}

fn parse_record(buf: &[u8], pos: usize, wack: bool, response: bool) -> Result<(Record, usize)> {
    let (name, p) = Name::parse_compressed(buf, pos).map_err(|e| e.in_field("RR_NAME"))?;
    let mut r = Reader::at(buf, p);
    let rr_type = r.u16_be("RR_TYPE")?;
    let rr_class = r.u16_be("RR_CLASS")?;
    let ttl = r.u32_be("TTL")?;
    let rdlength = usize::from(r.u16_be("RDLENGTH")?);
    let rdata_at = r.pos();
    let raw = r.bytes(rdlength, "RDATA")?;
    let rdata = match rr_type {
        _ if wack && rdlength == 2 => RData::Wack(u16::from_be_bytes([raw[0], raw[1]])),
        TYPE_NB if rdlength > 0 && rdlength % 6 == 0 => RData::Nb(
            raw.chunks_exact(6)
                .map(|c| NbAddress {
                    flags: u16::from_be_bytes([c[0], c[1]]),
                    ip: Ipv4Addr::new(c[2], c[3], c[4], c[5]),
                })
                .collect(),
        ),
        TYPE_NBSTAT if response && rdlength > 0 => {
            RData::NodeStatus(parse_node_status(raw).map_err(|e| e.offset_by(rdata_at))?)
        }
        _ => RData::Raw(raw.to_vec()),
    };
    Ok((
        Record {
            name,
            rr_type,
            rr_class,
            ttl,
            rdata,
        },
        r.pos(),
    ))
}

fn parse_node_status(raw: &[u8]) -> Result<NodeStatus> {
    let mut r = Reader::new(raw);
    let n = r.u8("NUM_NAMES")?;
    let mut names = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let name = Name::from_raw(r.array("NODE_NAME")?);
        let flags = r.u16_be("NAME_FLAGS")?;
        names.push(NodeName { name, flags });
    }
    let statistics = if r.remaining() >= STATISTICS_LEN {
        Some(Statistics::parse(&mut r)?)
    } else {
        None
    };
    Ok(NodeStatus {
        names,
        statistics,
        extra: r.rest().to_vec(),
    })
}

fn emit_rdata(rdata: &RData, out: &mut Vec<u8>) -> Result<()> {
    match rdata {
        RData::Nb(addrs) => {
            for a in addrs {
                out.extend_from_slice(&a.flags.to_be_bytes());
                out.extend_from_slice(&a.ip.octets());
            }
        }
        RData::NodeStatus(ns) => {
            let n = u8::try_from(ns.names.len())
                .map_err(|_| Error::emit("NUM_NAMES", "more than 255 names"))?;
            out.push(n);
            for e in &ns.names {
                if !e.name.scope().is_empty() {
                    return Err(Error::emit("NODE_NAME", "node status names carry no scope"));
                }
                out.extend_from_slice(e.name.raw());
                out.extend_from_slice(&e.flags.to_be_bytes());
            }
            if let Some(s) = &ns.statistics {
                s.emit(out);
            }
            out.extend_from_slice(&ns.extra);
        }
        RData::Wack(f) => out.extend_from_slice(&f.to_be_bytes()),
        RData::Raw(b) => out.extend_from_slice(b),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    fn vectors(section: &str) -> Vec<(String, Vec<u8>)> {
        let json: serde_json::Value =
            serde_json::from_str(include_str!("../tests/data/test_vectors.json")).unwrap();
        let map = json
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with(section))
            .unwrap()
            .1
            .as_object()
            .unwrap();
        map.iter()
            .filter_map(|(k, v)| Some((k.clone(), hex::decode(v.as_str()?)?)))
            .collect()
    }

    fn find(section: &str, prefix: &str) -> Vec<u8> {
        vectors(section)
            .into_iter()
            .find(|(k, _)| k.starts_with(prefix))
            .unwrap_or_else(|| panic!("no vector {prefix}"))
            .1
    }

    #[test]
    fn every_vector_round_trips_exactly() {
        let mut n = 0;
        for section in ["nbns_constructed", "nbns_real"] {
            for (name, bytes) in vectors(section) {
                let p = Packet::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(p.to_bytes().unwrap(), bytes, "{name}");
                if section == "nbns_constructed" {
                    assert!(p.trailing.is_empty(), "{name}");
                }
                n += 1;
            }
        }
        assert!(n >= 10);
    }

    #[test]
    fn registration_decodes() {
        let p = Packet::parse(&find("nbns_constructed", "registration")).unwrap();
        assert_eq!(p.flags, 0x2910);
        assert_eq!(p.opcode(), Opcode::Registration);
        assert!(p.is_broadcast());
        assert_eq!(p.kind(), "NAME REGISTRATION REQUEST");
        assert_eq!(p.questions[0].name.to_string(), "FRED<00>");
        let rec = &p.additional[0];
        assert_eq!(rec.name, p.questions[0].name);
        assert_eq!(rec.ttl, 300_000);
        assert_eq!(
            rec.rdata,
            RData::Nb(vec![NbAddress {
                flags: 0,
                ip: Ipv4Addr::new(192, 168, 1, 10)
            }])
        );
    }

    #[test]
    fn negative_registration_decodes() {
        let p = Packet::parse(&find("nbns_constructed", "negative registration")).unwrap();
        assert_eq!(p.rcode(), 6);
        assert_eq!(rcode_name(p.rcode()), "ACT_ERR");
        assert_eq!(p.kind(), "NEGATIVE NAME REGISTRATION RESPONSE");
    }

    #[test]
    fn node_status_response_decodes() {
        let (_, bytes) = vectors("nbns_real")
            .into_iter()
            .find(|(k, _)| k.to_lowercase().contains("status") && k.to_lowercase().contains("resp"))
            .expect("node status response vector");
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!(p.kind(), "NODE STATUS RESPONSE");
        let RData::NodeStatus(ns) = &p.answers[0].rdata else {
            panic!("not decoded as node status");
        };
        assert_eq!(ns.names.len(), 6);
        assert_eq!(ns.names[0].name.to_string(), "VMWINXP<00>");
        assert_eq!(ns.names[5].name, Name::msbrowse());
        assert_eq!(ns.names[5].flags, 0x8400);
        let st = ns.statistics.as_ref().unwrap();
        assert_eq!(st.unit_id, [0x00, 0x0c, 0x29, 0x0d, 0x06, 0x56]);
        // The Windows XP reply carries bytes beyond RDLENGTH; they are kept, not lost.
        assert!(ns.extra.is_empty());
        assert!(!p.trailing.is_empty());
    }

    #[test]
    fn malformed_packets() {
        let q = find("nbns_constructed", "name query");
        for n in 0..q.len() {
            assert!(Packet::parse(&q[..n]).is_err(), "prefix {n}");
        }
        // QDCOUNT larger than the data present.
        let mut big = q.clone();
        big[4..6].copy_from_slice(&0xFFFFu16.to_be_bytes());
        assert!(Packet::parse(&big).is_err());
        // A forward pointer in the question name.
        let mut fwd = q.clone();
        fwd[12] = 0xC0;
        fwd[13] = 0x20;
        assert!(matches!(
            Packet::parse(&fwd),
            Err(Error::Invalid {
                field: "QUESTION_NAME",
                ..
            })
        ));
        // RDLENGTH beyond the end.
        let mut reg = find("nbns_constructed", "registration");
        let at = reg.len() - 8;
        reg[at..at + 2].copy_from_slice(&0x00FFu16.to_be_bytes());
        assert!(matches!(
            Packet::parse(&reg),
            Err(Error::Truncated { field: "RDATA", .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_kept() {
        let mut q = find("nbns_constructed", "name query");
        q.extend_from_slice(&[1, 2, 3]);
        let p = Packet::parse(&q).unwrap();
        assert_eq!(p.trailing, vec![1, 2, 3]);
        assert_eq!(p.to_bytes().unwrap(), q);
    }
}
