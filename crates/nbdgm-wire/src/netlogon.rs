//! NETLOGON mailslot messages: the "mailslot ping" DC location carried on
//! `\MAILSLOT\NET\NETLOGON` and on the reply mailslot the requester names (MS-ADTS §6.3.1,
//! §6.3.5; Samba `librpc/idl/nbt.idl` and `librpc/ndr/ndr_nbt.c`; DIGEST §7).
//!
//! Input is the mailslot data, starting at the 2-byte little-endian opcode. Layout rules:
//! - Alignment padding (before the UTF-16 name of LOGON_PRIMARY_QUERY/RESPONSE, before the
//!   DomainSid of LOGON_SAM_LOGON_REQUEST) counts from the opcode, i.e. from the start of the
//!   mailslot data, as in Samba's NDR code and Wireshark. Pad bytes are emitted as zeros and
//!   ignored on receive.
//! - UTF-16 strings are read lossily: an unpaired surrogate becomes U+FFFD. OEM strings are
//!   Latin-1, so every byte maps to a character and back.
//! - NtVersion/LmNtToken/Lm20Token at the end of the non-EX messages are each optional: old
//!   clients stop early. A LOGON_PRIMARY_QUERY with exactly two bytes after the mailslot name
//!   is the LAN Manager 2.0 / Windows 9x form that carries only the Lm20Token (Wireshark's
//!   rule). Bytes after the last field are kept in `trailing`.
//! - LOGON_SAM_LOGON_RESPONSE and its PAUSE/USER_UNKNOWN variants have an NT 4.0 form and a
//!   V5 form; V5 is chosen when the NtVersion in the last 8 bytes has NETLOGON_NT_VERSION_5
//!   and the message is long enough for it (Samba's `pull_netlogon_samlogon_response`).
//! - The EX responses always end with NtVersion/LmNtToken/Lm20Token. DcSockAddr is
//!   recognised by its size byte (≥ 8) and `sin_family` AF_INET; whatever else lies between
//!   ClientSiteName and the last 8 bytes is NextClosestSiteName. The response's NtVersion
//!   cannot decide this: MS-ADTS §6.3.3.2 never sets 5EX_WITH_IP in it.
//! - The UTF-8 strings of the V5 and EX forms are RFC 1035 names whose compression pointers
//!   count from the opcode. Only backward pointers are followed, the name they point to must
//!   end before the pointer (so a string never depends on later bytes), and a string has at
//!   most [`MAX_POINTER_HOPS`] pointers and [`MAX_LABELS`] labels. The text is the labels
//!   joined by `.`, read lossily (invalid UTF-8 becomes U+FFFD). A label may hold a `.` byte,
//!   which the text cannot tell from a separator (and which can leave an empty piece, as in
//!   `a..b`); a string is refused only when its text could not be written back at all: a
//!   label longer than 63 bytes once its invalid UTF-8 is replaced by U+FFFD.
//! - A parsed message keeps the wire form of each of those strings in a [`WireLayout`] (not
//!   part of the value); `emit` reuses it while it still decodes to the same text at its new
//!   place. Otherwise the text is split at every dot (a final dot kept inside the last label)
//!   and compressed as Samba does (a pointer to the first earlier occurrence of the longest
//!   suffix); text that split cannot write (empty or over-long pieces) goes out in the fewest
//!   labels that can hold it, dots kept inside them; and if a pointer would read back
//!   differently (too many hops or labels through the string it points to), the string is
//!   written without pointers. Built values come out compressed as Samba's.
//!
//! What a parsed message comes out as, if left unchanged:
//! - V5 and EX responses: the same bytes. Their compressed strings are written from their
//!   wire form (invalid UTF-8 included), and the UTF-16 strings of a V5 response from theirs
//!   when an unpaired surrogate would otherwise change them, since the compressed strings
//!   may point into them.
//! - The other messages (LOGON_PRIMARY_QUERY/RESPONSE, LOGON_SAM_LOGON_REQUEST, the NT 4.0
//!   response): the same length, not always the same bytes. Their UTF-16 strings are written
//!   from the text, so an unpaired surrogate comes out as U+FFFD (`FD FF`), and non-zero pad
//!   bytes come out as zeros. Nothing points into those bytes, and everything else (OEM
//!   strings, the SID, the tokens, trailing bytes) comes out as read.
//!
//! A value changed after parsing, or built, goes out as described above: compressed strings
//! whose wire form no longer reads back are written afresh (invalid UTF-8 then as U+FFFD,
//! `EF BF BD`), and UTF-16 strings whose text changed are encoded from the text.
//!
//! `parse(emit(x)) == x` for every value `emit` accepts, and `emit` accepts every value
//! `parse` returns. Because some layouts are inferred from lengths, `emit` parses its own
//! output and refuses values that would read back differently (for example trailing bytes
//! that would be taken for an omitted field).

mod dc_sock_addr;
mod dns_string;
mod fields;
mod guid;
pub mod ping;
mod primary_query;
mod primary_response;
mod sam_logon_request;
mod sam_logon_response;
mod sam_logon_response_ex;

pub use dc_sock_addr::DcSockAddr;
pub use dns_string::WireLayout;
pub use guid::Guid;
pub use primary_query::PrimaryQuery;
pub use primary_response::PrimaryResponse;
pub use sam_logon_request::SamLogonRequest;
pub use sam_logon_response::{SamLogonResponse, SamLogonResponseV5};
pub use sam_logon_response_ex::SamLogonResponseEx;

use crate::error::{Error, Result};
use crate::reader::Reader;

/// NETLOGON opcodes (MS-ADTS §6.3.1.3; 0x0A from MS-NRPC/Samba).
pub mod opcode {
    pub const LOGON_PRIMARY_QUERY: u16 = 0x0007;
    pub const NETLOGON_ANNOUNCE_UAS: u16 = 0x000A;
    pub const LOGON_PRIMARY_RESPONSE: u16 = 0x000C;
    pub const LOGON_SAM_LOGON_REQUEST: u16 = 0x0012;
    pub const LOGON_SAM_LOGON_RESPONSE: u16 = 0x0013;
    pub const LOGON_SAM_PAUSE_RESPONSE: u16 = 0x0014;
    pub const LOGON_SAM_USER_UNKNOWN: u16 = 0x0015;
    pub const LOGON_SAM_LOGON_RESPONSE_EX: u16 = 0x0017;
    pub const LOGON_SAM_PAUSE_RESPONSE_EX: u16 = 0x0018;
    pub const LOGON_SAM_USER_UNKNOWN_EX: u16 = 0x0019;
}

/// NETLOGON_NT_VERSION option bits (MS-ADTS §6.3.1.1).
pub mod nt_version {
    pub const V1: u32 = 0x0000_0001;
    pub const V5: u32 = 0x0000_0002;
    pub const V5EX: u32 = 0x0000_0004;
    pub const V5EX_WITH_IP: u32 = 0x0000_0008;
    pub const WITH_CLOSEST_SITE: u32 = 0x0000_0010;
    pub const AVOID_NT4EMUL: u32 = 0x0100_0000;
    pub const PDC: u32 = 0x1000_0000;
    pub const IP: u32 = 0x2000_0000;
    pub const LOCAL: u32 = 0x4000_0000;
    pub const GC: u32 = 0x8000_0000;
}

/// DS_FLAG bits of the V5/EX Flags field (MS-ADTS §6.3.1.2).
pub mod ds_flag {
    pub const PDC: u32 = 0x0000_0001;
    pub const GC: u32 = 0x0000_0004;
    pub const LDAP: u32 = 0x0000_0008;
    pub const DS: u32 = 0x0000_0010;
    pub const KDC: u32 = 0x0000_0020;
    pub const TIMESERV: u32 = 0x0000_0040;
    pub const CLOSEST: u32 = 0x0000_0080;
    pub const WRITABLE: u32 = 0x0000_0100;
    pub const GOOD_TIMESERV: u32 = 0x0000_0200;
    pub const NDNC: u32 = 0x0000_0400;
    pub const SELECT_SECRET_DOMAIN_6: u32 = 0x0000_0800;
    pub const FULL_SECRET_DOMAIN_6: u32 = 0x0000_1000;
    pub const WS: u32 = 0x0000_2000;
    pub const DS_8: u32 = 0x0000_4000;
    pub const DS_9: u32 = 0x0000_8000;
    pub const DNS_CONTROLLER: u32 = 0x2000_0000;
    pub const DNS_DOMAIN: u32 = 0x4000_0000;
    pub const DNS_FOREST: u32 = 0x8000_0000;

    /// Names of the set bits, in bit order (undefined bits are not named).
    pub fn names(flags: u32) -> Vec<&'static str> {
        const NAMES: &[(u32, &str)] = &[
            (PDC, "PDC"),
            (GC, "GC"),
            (LDAP, "LDAP"),
            (DS, "DS"),
            (KDC, "KDC"),
            (TIMESERV, "TIMESERV"),
            (CLOSEST, "CLOSEST"),
            (WRITABLE, "WRITABLE"),
            (GOOD_TIMESERV, "GOOD_TIMESERV"),
            (NDNC, "NDNC"),
            (SELECT_SECRET_DOMAIN_6, "SELECT_SECRET_DOMAIN_6"),
            (FULL_SECRET_DOMAIN_6, "FULL_SECRET_DOMAIN_6"),
            (WS, "WS"),
            (DS_8, "DS_8"),
            (DS_9, "DS_9"),
            (DNS_CONTROLLER, "DNS_CONTROLLER"),
            (DNS_DOMAIN, "DNS_DOMAIN"),
            (DNS_FOREST, "DNS_FOREST"),
        ];
        NAMES
            .iter()
            .filter(|(b, _)| flags & b != 0)
            .map(|(_, n)| *n)
            .collect()
    }
}

/// Value of LmNtToken and Lm20Token ("MUST be set to 0xFFFF").
pub const TOKEN: u16 = 0xFFFF;
/// `sin_family` of DcSockAddr.
pub const AF_INET: u16 = 2;
/// Compression pointers followed per string (name.rs and Samba use similar caps).
pub const MAX_POINTER_HOPS: usize = 10;
/// Labels per decoded string (Samba's MAX_COMPONENTS).
pub const MAX_LABELS: usize = 128;

/// Largest label of a compressed string.
const MAX_LABEL_LEN: usize = 63;
/// Largest pointer target.
const MAX_POINTER: usize = 0x3FFF;
/// V5 fields after UnicodeDomainName, including the tail: two GUIDs, three empty strings,
/// DcIpAddress, Flags, NtVersion and the tokens.
const V5_MIN_LEN: usize = 16 + 16 + 3 + 4 + 4 + 8;
/// NtVersion + LmNtToken + Lm20Token.
const TAIL_LEN: usize = 8;
/// DcSockAddr without `sin_zero`.
const SOCKADDR_MIN_LEN: usize = 8;

/// The symbolic name of an opcode, `"UNKNOWN"` for the others.
pub fn command_name(op: u16) -> &'static str {
    match op {
        opcode::LOGON_PRIMARY_QUERY => "LOGON_PRIMARY_QUERY",
        opcode::NETLOGON_ANNOUNCE_UAS => "NETLOGON_ANNOUNCE_UAS",
        opcode::LOGON_PRIMARY_RESPONSE => "LOGON_PRIMARY_RESPONSE",
        opcode::LOGON_SAM_LOGON_REQUEST => "LOGON_SAM_LOGON_REQUEST",
        opcode::LOGON_SAM_LOGON_RESPONSE => "LOGON_SAM_LOGON_RESPONSE",
        opcode::LOGON_SAM_PAUSE_RESPONSE => "LOGON_SAM_PAUSE_RESPONSE",
        opcode::LOGON_SAM_USER_UNKNOWN => "LOGON_SAM_USER_UNKNOWN",
        opcode::LOGON_SAM_LOGON_RESPONSE_EX => "LOGON_SAM_LOGON_RESPONSE_EX",
        opcode::LOGON_SAM_PAUSE_RESPONSE_EX => "LOGON_SAM_PAUSE_RESPONSE_EX",
        opcode::LOGON_SAM_USER_UNKNOWN_EX => "LOGON_SAM_USER_UNKNOWN_EX",
        _ => "UNKNOWN",
    }
}

/// Opcodes that [`NetlogonMessage::parse`] decodes into a typed variant.
fn is_decoded_opcode(op: u16) -> bool {
    !matches!(op, opcode::NETLOGON_ANNOUNCE_UAS) && command_name(op) != "UNKNOWN"
}

#[cfg(feature = "serde")]
fn is_zero(v: &u16) -> bool {
    *v == 0
}

/// A message whose opcode this codec does not decode (including NETLOGON_ANNOUNCE_UAS).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct UnknownMessage {
    /// Serialized by the caller's `opcode` key.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub opcode: u16,
    /// Everything after the opcode.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::hex::serialize"))]
    pub data: Vec<u8>,
}

/// A NETLOGON mailslot message. Serializes as the fields of the variant only; callers add
/// `opcode` and `command` from [`NetlogonMessage::opcode`] and [`NetlogonMessage::command`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
pub enum NetlogonMessage {
    PrimaryQuery(PrimaryQuery),
    PrimaryResponse(PrimaryResponse),
    SamLogonRequest(SamLogonRequest),
    SamLogonResponse(SamLogonResponse),
    SamPauseResponse(SamLogonResponse),
    SamUserUnknown(SamLogonResponse),
    SamLogonResponseEx(SamLogonResponseEx),
    SamPauseResponseEx(SamLogonResponseEx),
    SamUserUnknownEx(SamLogonResponseEx),
    Unknown(UnknownMessage),
}

impl NetlogonMessage {
    /// Parse mailslot data, starting at the opcode. Unknown opcodes give
    /// [`NetlogonMessage::Unknown`]; a known opcode with a malformed body is an error.
    pub fn parse(data: &[u8]) -> Result<NetlogonMessage> {
        let mut r = Reader::new(data);
        let op = r.u16_le("Opcode")?;
        let r = &mut r;
        Ok(match op {
            opcode::LOGON_PRIMARY_QUERY => {
                NetlogonMessage::PrimaryQuery(PrimaryQuery::parse_body(r)?)
            }
            opcode::LOGON_PRIMARY_RESPONSE => {
                NetlogonMessage::PrimaryResponse(PrimaryResponse::parse_body(r)?)
            }
            opcode::LOGON_SAM_LOGON_REQUEST => {
                NetlogonMessage::SamLogonRequest(SamLogonRequest::parse_body(r)?)
            }
            opcode::LOGON_SAM_LOGON_RESPONSE => {
                NetlogonMessage::SamLogonResponse(SamLogonResponse::parse_body(r)?)
            }
            opcode::LOGON_SAM_PAUSE_RESPONSE => {
                NetlogonMessage::SamPauseResponse(SamLogonResponse::parse_body(r)?)
            }
            opcode::LOGON_SAM_USER_UNKNOWN => {
                NetlogonMessage::SamUserUnknown(SamLogonResponse::parse_body(r)?)
            }
            opcode::LOGON_SAM_LOGON_RESPONSE_EX => {
                NetlogonMessage::SamLogonResponseEx(SamLogonResponseEx::parse_body(r)?)
            }
            opcode::LOGON_SAM_PAUSE_RESPONSE_EX => {
                NetlogonMessage::SamPauseResponseEx(SamLogonResponseEx::parse_body(r)?)
            }
            opcode::LOGON_SAM_USER_UNKNOWN_EX => {
                NetlogonMessage::SamUserUnknownEx(SamLogonResponseEx::parse_body(r)?)
            }
            _ => NetlogonMessage::Unknown(UnknownMessage {
                opcode: op,
                data: r.rest().to_vec(),
            }),
        })
    }

    /// Append the message to `out`. On error `out` is left as it was.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        // Built in its own buffer: alignment and compression pointers count from the opcode.
        let mut m = Vec::new();
        m.extend_from_slice(&self.opcode().to_le_bytes());
        match self {
            NetlogonMessage::PrimaryQuery(q) => q.emit_body(&mut m)?,
            NetlogonMessage::PrimaryResponse(p) => p.emit_body(&mut m)?,
            NetlogonMessage::SamLogonRequest(q) => q.emit_body(&mut m)?,
            NetlogonMessage::SamLogonResponse(p)
            | NetlogonMessage::SamPauseResponse(p)
            | NetlogonMessage::SamUserUnknown(p) => p.emit_body(&mut m)?,
            NetlogonMessage::SamLogonResponseEx(p)
            | NetlogonMessage::SamPauseResponseEx(p)
            | NetlogonMessage::SamUserUnknownEx(p) => p.emit_body(&mut m)?,
            NetlogonMessage::Unknown(u) => {
                if is_decoded_opcode(u.opcode) {
                    return Err(Error::emit(
                        "Opcode",
                        "an Unknown message cannot carry a decoded opcode",
                    ));
                }
                m.extend_from_slice(&u.data);
            }
        }
        // Optional fields are recognised by length on receive: refuse what would read back
        // as something else.
        if NetlogonMessage::parse(&m).ok().as_ref() != Some(self) {
            return Err(Error::emit(
                "NETLOGON message",
                "would not read back as the same value (trailing bytes or optional fields look like another layout)",
            ));
        }
        out.extend_from_slice(&m);
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        crate::emit_to_vec(0, |v| self.emit(v))
    }

    pub fn opcode(&self) -> u16 {
        match self {
            NetlogonMessage::PrimaryQuery(_) => opcode::LOGON_PRIMARY_QUERY,
            NetlogonMessage::PrimaryResponse(_) => opcode::LOGON_PRIMARY_RESPONSE,
            NetlogonMessage::SamLogonRequest(_) => opcode::LOGON_SAM_LOGON_REQUEST,
            NetlogonMessage::SamLogonResponse(_) => opcode::LOGON_SAM_LOGON_RESPONSE,
            NetlogonMessage::SamPauseResponse(_) => opcode::LOGON_SAM_PAUSE_RESPONSE,
            NetlogonMessage::SamUserUnknown(_) => opcode::LOGON_SAM_USER_UNKNOWN,
            NetlogonMessage::SamLogonResponseEx(_) => opcode::LOGON_SAM_LOGON_RESPONSE_EX,
            NetlogonMessage::SamPauseResponseEx(_) => opcode::LOGON_SAM_PAUSE_RESPONSE_EX,
            NetlogonMessage::SamUserUnknownEx(_) => opcode::LOGON_SAM_USER_UNKNOWN_EX,
            NetlogonMessage::Unknown(u) => u.opcode,
        }
    }

    /// `"LOGON_PRIMARY_QUERY"`, ..., `"UNKNOWN"`.
    pub fn command(&self) -> &'static str {
        command_name(self.opcode())
    }
}

#[cfg(test)]
mod ex_tests;
#[cfg(test)]
mod tests;
