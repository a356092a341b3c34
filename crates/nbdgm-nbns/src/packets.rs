//! The packets an NBNS sends (RFC 1002 §4.2.5 positive / §4.2.6 negative
//! registration, §4.2.10–4.2.11 release, §4.2.13–4.2.14 query responses, §4.2.16
//! WACK, and the §4.2.12 NAME QUERY REQUEST of the end-node challenge).
//!
//! Flag words: registration responses 0xAD80 + RCODE (R, opcode 5, AA, RD, RA);
//! release responses 0xB400 + RCODE (R, opcode 6, AA); WACK 0xBC00; query responses
//! 0x8480 + the request's RD (AA, RA: an NBNS sets RA, RFC 1002 §4.2.1.1), + TC when
//! the whole answer exceeds one 576-byte datagram (§4.2.1.1), + RCODE. Refresh and multi-homed registrations get a registration response
//! (opcode 5): RFC 1002 §5.1.4.1 "send POSITIVE NAME REGISTRATION", and clients
//! match on NAME_TRN_ID.

use nbdgm_wire::nbns::{
    NbAddress, Opcode, Packet, RData, Rcode, Record, CLASS_IN, FLAG_AA, FLAG_RA, FLAG_RD,
    FLAG_RESPONSE, FLAG_TC, TYPE_NB, TYPE_NULL,
};
use nbdgm_wire::Name;

pub(crate) const RCODE_FMT_ERR: u8 = 1;
pub(crate) const RCODE_SRV_ERR: u8 = 2;
pub(crate) const RCODE_NAM_ERR: u8 = 3;
pub(crate) const RCODE_IMP_ERR: u8 = 4;
pub(crate) const RCODE_RFS_ERR: u8 = 5;
pub(crate) const RCODE_ACT_ERR: u8 = 6;

fn response(id: u16, op: Opcode, flags: u16, rcode: u8, rec: Record) -> Packet {
    Packet {
        id,
        flags: FLAG_RESPONSE | op.to_flags() | flags | Rcode::from_bits(rcode).to_flags(),
        questions: vec![],
        answers: vec![rec],
        authority: vec![],
        additional: vec![],
        trailing: vec![],
    }
}

fn nb_record(name: &Name, ttl: u32, addrs: Vec<NbAddress>) -> Record {
    Record {
        name: name.clone(),
        rr_type: TYPE_NB,
        rr_class: CLASS_IN,
        ttl,
        rdata: RData::Nb(addrs),
    }
}

/// POSITIVE (rcode 0) or NEGATIVE NAME REGISTRATION RESPONSE. Negative ones carry
/// TTL 0 and, for ACT_ERR, the owner's address.
pub(crate) fn registration_response(
    id: u16,
    rcode: u8,
    name: &Name,
    ttl: u32,
    addr: NbAddress,
) -> Packet {
    let ttl = if rcode == 0 { ttl } else { 0 };
    response(
        id,
        Opcode::Registration,
        FLAG_AA | FLAG_RD | FLAG_RA,
        rcode,
        nb_record(name, ttl, vec![addr]),
    )
}

/// POSITIVE (rcode 0) or NEGATIVE NAME RELEASE RESPONSE, echoing the address.
pub(crate) fn release_response(id: u16, rcode: u8, name: &Name, addr: NbAddress) -> Packet {
    response(
        id,
        Opcode::Release,
        FLAG_AA,
        rcode,
        nb_record(name, 0, vec![addr]),
    )
}

/// WAIT FOR ACKNOWLEDGEMENT: `ttl` seconds more to wait; RDATA copies the request's
/// flags word. RR type NB as Samba 4 sends it (DIGEST §4.3).
pub(crate) fn wack(id: u16, name: &Name, ttl: u32, request_flags: u16) -> Packet {
    response(
        id,
        Opcode::Wack,
        FLAG_AA,
        0,
        Record {
            name: name.clone(),
            rr_type: TYPE_NB,
            rr_class: CLASS_IN,
            ttl,
            rdata: RData::Wack(request_flags),
        },
    )
}

fn query_flags(rd: bool, truncated: bool) -> u16 {
    let mut f = FLAG_AA | FLAG_RA;
    if rd {
        f |= FLAG_RD;
    }
    if truncated {
        f |= FLAG_TC;
    }
    f
}

/// POSITIVE NAME QUERY RESPONSE.
pub(crate) fn positive_query(
    id: u16,
    rd: bool,
    truncated: bool,
    name: &Name,
    ttl: u32,
    addrs: Vec<NbAddress>,
) -> Packet {
    response(
        id,
        Opcode::Query,
        query_flags(rd, truncated),
        0,
        nb_record(name, ttl, addrs),
    )
}

/// NEGATIVE NAME QUERY RESPONSE: NULL record, TTL 0, no RDATA.
pub(crate) fn negative_query(id: u16, rd: bool, rcode: u8, name: &Name) -> Packet {
    response(
        id,
        Opcode::Query,
        query_flags(rd, false),
        rcode,
        Record {
            name: name.clone(),
            rr_type: TYPE_NULL,
            rr_class: CLASS_IN,
            ttl: 0,
            rdata: RData::Raw(vec![]),
        },
    )
}

/// The challenge: a unicast NAME QUERY REQUEST with RD clear, so that a node not
/// holding the name answers negatively (Samba answers NAM_ERR only with RD clear).
pub(crate) fn challenge_query(id: u16, name: &Name) -> Packet {
    Packet::request(id, 0x0000, name.clone(), TYPE_NB)
}

/// Largest NBNS message in one UDP datagram: MAX_DATAGRAM_LENGTH (576, RFC 1002
/// §6) less the IP and UDP headers (28).
pub(crate) const MAX_NBNS_PAYLOAD: usize = 576 - 28;

/// Size of a positive answer with `n` addresses (header + RR name + fixed RR + RDATA).
pub(crate) fn positive_query_len(name: &Name, n: usize) -> usize {
    12 + name.encoded_len() + 10 + 6 * n
}
