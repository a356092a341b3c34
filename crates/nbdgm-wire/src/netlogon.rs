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

use core::fmt;
use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::reader::{latin1, put_utf16z, to_latin1, Reader};

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

// ---------------------------------------------------------------------------------------------
// Value types

/// A GUID in its 16 wire bytes (MS-DTYP §2.3.4: Data1..Data3 little-endian). Shown and
/// serialized as `6876eb1a-b2c6-4bca-b69c-feda682e82fd`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The null GUID (all zeros), e.g. NullGuid of the V5 response.
    pub const NULL: Guid = Guid([0; 16]);

    pub fn is_null(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9]
        )?;
        b[10..].iter().try_for_each(|x| write!(f, "{x:02x}"))
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

/// Parses the `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` form (braces allowed).
impl core::str::FromStr for Guid {
    type Err = Error;
    fn from_str(s: &str) -> Result<Guid> {
        let bad = || Error::emit("GUID", "expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
        let s = s.trim().trim_start_matches('{').trim_end_matches('}');
        let parts: Vec<&str> = s.split('-').collect();
        let [d1, d2, d3, d4, d5] = parts.as_slice() else {
            return Err(bad());
        };
        if [d1.len(), d2.len(), d3.len(), d4.len(), d5.len()] != [8, 4, 4, 4, 12] {
            return Err(bad());
        }
        let num = |h: &str| u32::from_str_radix(h, 16).map_err(|_| bad());
        let tail = crate::hex::decode(&format!("{d4}{d5}")).ok_or_else(bad)?;
        let mut g = [0u8; 16];
        g[..4].copy_from_slice(&num(d1)?.to_le_bytes());
        g[4..6].copy_from_slice(&(num(d2)? as u16).to_le_bytes());
        g[6..8].copy_from_slice(&(num(d3)? as u16).to_le_bytes());
        for (slot, b) in g[8..].iter_mut().zip(tail) {
            *slot = b;
        }
        Ok(Guid(g))
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// DcSockAddr of the EX response: a SOCKADDR_IN (MS-ADTS §6.3.1.9). `sin_family` and
/// `sin_port` are little-endian, `sin_addr` is in network order. DcSockAddrSize on the wire
/// is `8 + sin_zero.len()` (16 in practice).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DcSockAddr {
    /// AF_INET (2); the only family this codec recognises on receive.
    pub family: u16,
    /// "SHOULD always be zero".
    pub port: u16,
    pub address: Ipv4Addr,
    /// Normally 8 zero bytes.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::hex::serialize"))]
    pub sin_zero: Vec<u8>,
}

impl DcSockAddr {
    /// The form a DC sends: AF_INET, port 0, eight zero bytes.
    pub fn new(address: Ipv4Addr) -> Self {
        DcSockAddr {
            family: AF_INET,
            port: 0,
            address,
            sin_zero: vec![0; 8],
        }
    }
}

/// Shows `address:port`.
impl fmt::Display for DcSockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.address, self.port)
    }
}

/// How the compressed strings of a parsed message looked on the wire, in field order, so
/// that `emit` can reproduce them byte for byte. For a V5 response it also keeps the three
/// UTF-16 strings before them when one of them does not come out the same from its text (an
/// unpaired surrogate, read as U+FFFD): the compressed strings may point into them. It is a
/// cache, not part of the value: it compares equal to every other `WireLayout`, is not
/// serialized, and built values use `WireLayout::default()` (empty: every string is
/// compressed afresh).
#[derive(Clone, Default)]
pub struct WireLayout {
    /// The compressed strings in field order; for a V5 response, then the three UTF-16
    /// strings (NUL included) when they are kept.
    strings: Vec<Vec<u8>>,
}

/// Where a V5 response's [`WireLayout`] keeps its UTF-16 strings: after the three compressed
/// ones.
const V5_UTF16_AT: usize = 3;

impl WireLayout {
    fn get(&self, i: usize) -> Option<&[u8]> {
        self.strings.get(i).map(Vec::as_slice)
    }

    /// The kept form of the V5 response's UTF-16 string `i`, if it still reads as `s`.
    fn utf16_for(&self, i: usize, s: &str) -> Option<&[u8]> {
        let raw = self.strings.get(V5_UTF16_AT + i)?;
        (Reader::new(raw).utf16z("").ok()? == s).then_some(raw.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

impl PartialEq for WireLayout {
    fn eq(&self, _: &WireLayout) -> bool {
        true
    }
}

impl Eq for WireLayout {}

impl fmt::Debug for WireLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WireLayout({} strings)", self.strings.len())
    }
}

// ---------------------------------------------------------------------------------------------
// Messages

/// LOGON_PRIMARY_QUERY (0x0007), NETLOGON_LOGON_QUERY in MS-ADTS §6.3.1.4: "who is the PDC",
/// sent to `<domain>[1B]`/`[1C]`; only the PDC answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PrimaryQuery {
    /// OEM (Latin-1 here) NetBIOS name of the client.
    pub computer_name: String,
    /// The mailslot the reply goes to, e.g. `\MAILSLOT\NET\GETDC5F3`.
    pub mailslot_name: String,
    /// UTF-16, after padding to an even offset. Absent in the LAN Manager 2.0 form.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub unicode_computer_name: Option<String>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub nt_version: Option<u32>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub lmnt_token: Option<u16>,
    /// The only field after `mailslot_name` in the LAN Manager 2.0 form.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub lm20_token: Option<u16>,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

impl PrimaryQuery {
    /// The NT form Samba's client sends: the Unicode name repeated, NtVersion 1, both tokens 0xFFFF.
    pub fn new(computer_name: &str, mailslot_name: &str) -> Self {
        PrimaryQuery {
            computer_name: computer_name.to_owned(),
            mailslot_name: mailslot_name.to_owned(),
            unicode_computer_name: Some(computer_name.to_owned()),
            nt_version: Some(nt_version::V1),
            lmnt_token: Some(TOKEN),
            lm20_token: Some(TOKEN),
            trailing: Vec::new(),
        }
    }

    fn parse_body(r: &mut Reader) -> Result<Self> {
        let mut q = PrimaryQuery {
            computer_name: strz(r, "ComputerName")?,
            mailslot_name: strz(r, "MailslotName")?,
            ..PrimaryQuery::default()
        };
        match r.remaining() {
            0 | 1 => {}
            2 => q.lm20_token = Some(r.u16_le("Lm20Token")?),
            _ => {
                r.align(0, 2);
                q.unicode_computer_name = Some(r.utf16z("UnicodeComputerName")?);
                (q.nt_version, q.lmnt_token, q.lm20_token) = read_tail(r)?;
            }
        }
        q.trailing = r.rest().to_vec();
        Ok(q)
    }

    fn emit_body(&self, m: &mut Vec<u8>) -> Result<()> {
        put_strz(m, &self.computer_name, "ComputerName")?;
        put_strz(m, &self.mailslot_name, "MailslotName")?;
        match &self.unicode_computer_name {
            Some(name) => {
                pad(m, 2);
                put_utf16(m, name, "UnicodeComputerName")?;
                put_tail(m, self.nt_version, self.lmnt_token, self.lm20_token)?;
            }
            None => {
                if self.nt_version.is_some() || self.lmnt_token.is_some() {
                    return Err(Error::emit(
                        "UnicodeComputerName",
                        "NtVersion and LmNtToken need UnicodeComputerName before them",
                    ));
                }
                if let Some(t) = self.lm20_token {
                    m.extend_from_slice(&t.to_le_bytes());
                }
            }
        }
        m.extend_from_slice(&self.trailing);
        Ok(())
    }
}

/// LOGON_PRIMARY_RESPONSE (0x000C), NETLOGON_PRIMARY_RESPONSE in MS-ADTS §6.3.1.5: the PDC's
/// answer. An old PDC may send only `primary_dc_name`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PrimaryResponse {
    /// OEM (Latin-1 here) NetBIOS name of the PDC.
    pub primary_dc_name: String,
    /// UTF-16, after padding to an even offset.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub unicode_primary_dc_name: Option<String>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub unicode_domain_name: Option<String>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub nt_version: Option<u32>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub lmnt_token: Option<u16>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub lm20_token: Option<u16>,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

impl PrimaryResponse {
    fn parse_body(r: &mut Reader) -> Result<Self> {
        let mut p = PrimaryResponse {
            primary_dc_name: strz(r, "PrimaryDCName")?,
            ..PrimaryResponse::default()
        };
        // The Unicode part is there when a UTF-16 terminator fits after the pad byte.
        if r.remaining() >= r.pos() % 2 + 2 {
            r.align(0, 2);
            p.unicode_primary_dc_name = Some(r.utf16z("UnicodePrimaryDCName")?);
            if r.remaining() >= 2 {
                p.unicode_domain_name = Some(r.utf16z("UnicodeDomainName")?);
                (p.nt_version, p.lmnt_token, p.lm20_token) = read_tail(r)?;
            }
        }
        p.trailing = r.rest().to_vec();
        Ok(p)
    }

    fn emit_body(&self, m: &mut Vec<u8>) -> Result<()> {
        put_strz(m, &self.primary_dc_name, "PrimaryDCName")?;
        match (&self.unicode_primary_dc_name, &self.unicode_domain_name) {
            (Some(pdc), domain) => {
                pad(m, 2);
                put_utf16(m, pdc, "UnicodePrimaryDCName")?;
                if let Some(domain) = domain {
                    put_utf16(m, domain, "UnicodeDomainName")?;
                    put_tail(m, self.nt_version, self.lmnt_token, self.lm20_token)?;
                } else if self.nt_version.is_some()
                    || self.lmnt_token.is_some()
                    || self.lm20_token.is_some()
                {
                    return Err(Error::emit(
                        "UnicodeDomainName",
                        "NtVersion and the tokens need it before them",
                    ));
                }
            }
            (None, None) => {
                if self.nt_version.is_some()
                    || self.lmnt_token.is_some()
                    || self.lm20_token.is_some()
                {
                    return Err(Error::emit(
                        "UnicodePrimaryDCName",
                        "NtVersion and the tokens need it before them",
                    ));
                }
            }
            (None, Some(_)) => {
                return Err(Error::emit(
                    "UnicodePrimaryDCName",
                    "UnicodeDomainName needs it before it",
                ));
            }
        }
        m.extend_from_slice(&self.trailing);
        Ok(())
    }
}

/// LOGON_SAM_LOGON_REQUEST (0x0012), NETLOGON_SAM_LOGON_REQUEST in MS-ADTS §6.3.1.6: the
/// mailslot ping a client sends to `<domain>[1C]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SamLogonRequest {
    /// Number of times the user has repeated the request.
    pub request_count: u16,
    pub unicode_computer_name: String,
    /// UnicodeUserName: the account being asked about, often empty.
    pub user_name: String,
    /// The mailslot the reply goes to (OEM / Latin-1).
    pub mailslot_name: String,
    /// userAccountControl bits the account may have (Samba sends ACB_WSTRUST 0x80 for a
    /// machine account).
    pub allowable_account_control_bits: u32,
    /// The raw SID (MS-DTYP §2.4.2); DomainSidSize is its length. When non-empty it is
    /// preceded by padding to a 4-byte offset. See [`SamLogonRequest::domain_sid_string`].
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::hex::serialize"))]
    pub domain_sid: Vec<u8>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub nt_version: Option<u32>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub lmnt_token: Option<u16>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub lm20_token: Option<u16>,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

impl SamLogonRequest {
    /// A request with no SID, RequestCount 0 and both tokens 0xFFFF.
    pub fn new(computer_name: &str, user_name: &str, mailslot_name: &str, nt_version: u32) -> Self {
        SamLogonRequest {
            request_count: 0,
            unicode_computer_name: computer_name.to_owned(),
            user_name: user_name.to_owned(),
            mailslot_name: mailslot_name.to_owned(),
            allowable_account_control_bits: 0,
            domain_sid: Vec::new(),
            nt_version: Some(nt_version),
            lmnt_token: Some(TOKEN),
            lm20_token: Some(TOKEN),
            trailing: Vec::new(),
        }
    }

    /// `S-1-5-21-...` when `domain_sid` is a well-formed SID.
    pub fn domain_sid_string(&self) -> Option<String> {
        sid_string(&self.domain_sid)
    }

    fn parse_body(r: &mut Reader) -> Result<Self> {
        let mut q = SamLogonRequest {
            request_count: r.u16_le("RequestCount")?,
            unicode_computer_name: r.utf16z("UnicodeComputerName")?,
            user_name: r.utf16z("UnicodeUserName")?,
            mailslot_name: strz(r, "MailslotName")?,
            allowable_account_control_bits: r.u32_le("AllowableAccountControlBits")?,
            ..SamLogonRequest::default()
        };
        let sid_size = r.u32_le("DomainSidSize")?;
        if sid_size > 0 {
            r.skip(pad_len(r.pos(), 4), "DomainSid padding")?;
            let size = usize::try_from(sid_size).unwrap_or(usize::MAX);
            q.domain_sid = r.bytes(size, "DomainSid")?.to_vec();
        }
        (q.nt_version, q.lmnt_token, q.lm20_token) = read_tail(r)?;
        q.trailing = r.rest().to_vec();
        Ok(q)
    }

    fn emit_body(&self, m: &mut Vec<u8>) -> Result<()> {
        m.extend_from_slice(&self.request_count.to_le_bytes());
        put_utf16(m, &self.unicode_computer_name, "UnicodeComputerName")?;
        put_utf16(m, &self.user_name, "UnicodeUserName")?;
        put_strz(m, &self.mailslot_name, "MailslotName")?;
        m.extend_from_slice(&self.allowable_account_control_bits.to_le_bytes());
        let size = u32::try_from(self.domain_sid.len())
            .map_err(|_| Error::emit("DomainSid", "too long"))?;
        m.extend_from_slice(&size.to_le_bytes());
        if size > 0 {
            pad(m, 4);
            m.extend_from_slice(&self.domain_sid);
        }
        put_tail(m, self.nt_version, self.lmnt_token, self.lm20_token)?;
        m.extend_from_slice(&self.trailing);
        Ok(())
    }
}

/// LOGON_SAM_LOGON_RESPONSE (0x0013), LOGON_SAM_PAUSE_RESPONSE (0x0014) and
/// LOGON_SAM_USER_UNKNOWN (0x0015): NETLOGON_SAM_LOGON_RESPONSE_NT40 (MS-ADTS §6.3.1.7),
/// or NETLOGON_SAM_LOGON_RESPONSE (§6.3.1.8) when `v5` is present.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SamLogonResponse {
    /// NetBIOS name of the DC (Samba and Windows NT send it as `\\NAME`).
    pub unicode_logon_server: String,
    /// UnicodeUserName copied from the request.
    pub user_name: String,
    pub unicode_domain_name: String,
    /// The V5 fields; their JSON keys sit beside the others.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub v5: Option<SamLogonResponseV5>,
    /// 1 in the NT 4.0 form, 3 (V1 | V5) in the V5 form.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub nt_version: Option<u32>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub lmnt_token: Option<u16>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub lm20_token: Option<u16>,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

/// The fields NETLOGON_SAM_LOGON_RESPONSE adds after UnicodeDomainName.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SamLogonResponseV5 {
    pub domain_guid: Guid,
    /// Always the null GUID (Samba: zero_uuid; MS-ADTS §6.3.3.2 calls it SiteGuid).
    pub null_guid: Guid,
    /// DnsForestName (compressed UTF-8).
    pub forest: String,
    /// DnsDomainName.
    pub dns_domain: String,
    /// DnsHostName.
    pub dns_host_name: String,
    /// DcIpAddress, read in network order as MS-ADTS says (RFC 791). Samba's NDR code writes
    /// it as a little-endian integer, which shows reversed here.
    pub dc_ip_address: Ipv4Addr,
    /// DS_FLAG bits ([`ds_flag`]).
    pub flags: u32,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub wire: WireLayout,
}

impl Default for SamLogonResponseV5 {
    /// Null GUIDs, empty names, 0.0.0.0, no flags.
    fn default() -> Self {
        SamLogonResponseV5 {
            domain_guid: Guid::NULL,
            null_guid: Guid::NULL,
            forest: String::new(),
            dns_domain: String::new(),
            dns_host_name: String::new(),
            dc_ip_address: Ipv4Addr::UNSPECIFIED,
            flags: 0,
            wire: WireLayout::default(),
        }
    }
}

impl SamLogonResponse {
    /// The UTF-16 fields, in wire order.
    const UTF16_FIELDS: [&'static str; 3] =
        ["UnicodeLogonServer", "UnicodeUserName", "UnicodeDomainName"];

    fn parse_body(r: &mut Reader) -> Result<Self> {
        let start = r.pos();
        let mut p = SamLogonResponse {
            unicode_logon_server: r.utf16z("UnicodeLogonServer")?,
            user_name: r.utf16z("UnicodeUserName")?,
            unicode_domain_name: r.utf16z("UnicodeDomainName")?,
            ..SamLogonResponse::default()
        };
        let utf16_end = r.pos();
        let data = r.buf();
        let end_version = data
            .len()
            .checked_sub(TAIL_LEN)
            .and_then(|i| data.get(i..i + 4))
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if r.remaining() >= V5_MIN_LEN && end_version & nt_version::V5 != 0 {
            let domain_guid = Guid(r.array("DomainGuid")?);
            let null_guid = Guid(r.array("NullGuid")?);
            let mut wire = WireLayout::default();
            let forest = dns_field(r, "DnsForestName", &mut wire)?;
            let dns_domain = dns_field(r, "DnsDomainName", &mut wire)?;
            let dns_host_name = dns_field(r, "DnsHostName", &mut wire)?;
            // The compressed strings may point into the UTF-16 ones: keep their bytes if
            // their text would not give them back.
            let mut again = Vec::new();
            for text in p.utf16_strings() {
                put_utf16z(&mut again, text);
            }
            let raw = data.get(start..utf16_end).unwrap_or_default();
            if again != raw {
                let mut rest = Reader::new(raw);
                for field in Self::UTF16_FIELDS {
                    let from = rest.pos();
                    rest.utf16z(field)?;
                    wire.strings
                        .push(raw.get(from..rest.pos()).unwrap_or_default().to_vec());
                }
            }
            p.v5 = Some(SamLogonResponseV5 {
                domain_guid,
                null_guid,
                forest,
                dns_domain,
                dns_host_name,
                dc_ip_address: Ipv4Addr::from(r.array::<4>("DcIpAddress")?),
                flags: r.u32_le("Flags")?,
                wire,
            });
        }
        (p.nt_version, p.lmnt_token, p.lm20_token) = read_tail(r)?;
        p.trailing = r.rest().to_vec();
        Ok(p)
    }

    fn utf16_strings(&self) -> [&str; 3] {
        [
            &self.unicode_logon_server,
            &self.user_name,
            &self.unicode_domain_name,
        ]
    }

    fn emit_body(&self, m: &mut Vec<u8>) -> Result<()> {
        for (i, (text, field)) in self
            .utf16_strings()
            .into_iter()
            .zip(Self::UTF16_FIELDS)
            .enumerate()
        {
            match self.v5.as_ref().and_then(|v5| v5.wire.utf16_for(i, text)) {
                Some(raw) => m.extend_from_slice(raw),
                None => put_utf16(m, text, field)?,
            }
        }
        if let Some(v5) = &self.v5 {
            m.extend_from_slice(&v5.domain_guid.0);
            m.extend_from_slice(&v5.null_guid.0);
            let mut comp = Compressor::default();
            put_dns_string(m, &v5.forest, v5.wire.get(0), &mut comp, "DnsForestName")?;
            put_dns_string(
                m,
                &v5.dns_domain,
                v5.wire.get(1),
                &mut comp,
                "DnsDomainName",
            )?;
            put_dns_string(
                m,
                &v5.dns_host_name,
                v5.wire.get(2),
                &mut comp,
                "DnsHostName",
            )?;
            m.extend_from_slice(&v5.dc_ip_address.octets());
            m.extend_from_slice(&v5.flags.to_le_bytes());
        }
        put_tail(m, self.nt_version, self.lmnt_token, self.lm20_token)?;
        m.extend_from_slice(&self.trailing);
        Ok(())
    }
}

/// LOGON_SAM_LOGON_RESPONSE_EX (0x0017), LOGON_SAM_PAUSE_RESPONSE_EX (0x0018) and
/// LOGON_SAM_USER_UNKNOWN_EX (0x0019): NETLOGON_SAM_LOGON_RESPONSE_EX, MS-ADTS §6.3.1.9.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SamLogonResponseEx {
    /// "MUST be set to 0".
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "is_zero"))]
    pub sbz: u16,
    /// DS_FLAG bits ([`ds_flag`]).
    pub flags: u32,
    pub domain_guid: Guid,
    /// DnsForestName; this and the next seven strings are compressed UTF-8.
    pub forest: String,
    /// DnsDomainName.
    pub dns_domain: String,
    /// DnsHostName.
    pub dns_host_name: String,
    /// NetbiosDomainName.
    pub netbios_domain: String,
    /// NetbiosComputerName.
    pub netbios_computer_name: String,
    /// UserName copied from the request.
    pub user_name: String,
    /// DcSiteName.
    pub dc_site_name: String,
    /// ClientSiteName.
    pub client_site_name: String,
    /// DcSockAddrSize + DcSockAddr: present when the request had 5EX_WITH_IP.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub dc_sock_addr: Option<DcSockAddr>,
    /// Present when the request had WITH_CLOSEST_SITE and the DC is 2008 or later.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub next_closest_site_name: Option<String>,
    /// V1 | V5EX (5), plus WITH_CLOSEST_SITE when `next_closest_site_name` is present.
    pub nt_version: u32,
    pub lmnt_token: u16,
    pub lm20_token: u16,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub wire: WireLayout,
}

impl Default for SamLogonResponseEx {
    /// Empty strings, no options, NtVersion V1 | V5EX and both tokens 0xFFFF.
    fn default() -> Self {
        SamLogonResponseEx {
            sbz: 0,
            flags: 0,
            domain_guid: Guid::NULL,
            forest: String::new(),
            dns_domain: String::new(),
            dns_host_name: String::new(),
            netbios_domain: String::new(),
            netbios_computer_name: String::new(),
            user_name: String::new(),
            dc_site_name: String::new(),
            client_site_name: String::new(),
            dc_sock_addr: None,
            next_closest_site_name: None,
            nt_version: nt_version::V1 | nt_version::V5EX,
            lmnt_token: TOKEN,
            lm20_token: TOKEN,
            wire: WireLayout::default(),
        }
    }
}

impl SamLogonResponseEx {
    /// The eight strings before DcSockAddr, in wire order, with their field names.
    fn strings(&self) -> [(&str, &'static str); 8] {
        [
            (&self.forest, "DnsForestName"),
            (&self.dns_domain, "DnsDomainName"),
            (&self.dns_host_name, "DnsHostName"),
            (&self.netbios_domain, "NetbiosDomainName"),
            (&self.netbios_computer_name, "NetbiosComputerName"),
            (&self.user_name, "UserName"),
            (&self.dc_site_name, "DcSiteName"),
            (&self.client_site_name, "ClientSiteName"),
        ]
    }

    fn parse_body(r: &mut Reader) -> Result<Self> {
        let sbz = r.u16_le("Sbz")?;
        let flags = r.u32_le("Flags")?;
        let domain_guid = Guid(r.array("DomainGuid")?);
        let mut wire = WireLayout::default();
        let mut names: [String; 8] = Default::default();
        for (slot, field) in names.iter_mut().zip(EX_STRING_FIELDS) {
            *slot = dns_field(r, field, &mut wire)?;
        }
        let [forest, dns_domain, dns_host_name, netbios_domain, netbios_computer_name, user_name, dc_site_name, client_site_name] =
            names;
        // The last 8 bytes are NtVersion and the tokens; the optional fields fill the gap.
        let tail_at = r
            .buf()
            .len()
            .checked_sub(TAIL_LEN)
            .filter(|&t| t >= r.pos())
            .ok_or(Error::Truncated {
                field: "NtVersion",
                offset: r.pos(),
                need: TAIL_LEN,
                have: r.remaining(),
            })?;
        let mut dc_sock_addr = None;
        if let Some(size) = sockaddr_size_at(r.buf(), r.pos(), tail_at) {
            r.skip(1, "DcSockAddrSize")?;
            dc_sock_addr = Some(DcSockAddr {
                family: r.u16_le("sin_family")?,
                port: r.u16_le("sin_port")?,
                address: Ipv4Addr::from(r.array::<4>("sin_addr")?),
                sin_zero: r.bytes(size - SOCKADDR_MIN_LEN, "sin_zero")?.to_vec(),
            });
        }
        let mut next_closest_site_name = None;
        if r.pos() < tail_at {
            let at = r.pos();
            next_closest_site_name = Some(dns_field(r, "NextClosestSiteName", &mut wire)?);
            if r.pos() != tail_at {
                return Err(Error::invalid(
                    "NextClosestSiteName",
                    at,
                    "bytes between ClientSiteName and NtVersion are neither DcSockAddr nor one string",
                ));
            }
        }
        Ok(SamLogonResponseEx {
            sbz,
            flags,
            domain_guid,
            forest,
            dns_domain,
            dns_host_name,
            netbios_domain,
            netbios_computer_name,
            user_name,
            dc_site_name,
            client_site_name,
            dc_sock_addr,
            next_closest_site_name,
            nt_version: r.u32_le("NtVersion")?,
            lmnt_token: r.u16_le("LmNtToken")?,
            lm20_token: r.u16_le("Lm20Token")?,
            wire,
        })
    }

    fn emit_body(&self, m: &mut Vec<u8>) -> Result<()> {
        m.extend_from_slice(&self.sbz.to_le_bytes());
        m.extend_from_slice(&self.flags.to_le_bytes());
        m.extend_from_slice(&self.domain_guid.0);
        let mut comp = Compressor::default();
        for (i, (s, field)) in self.strings().into_iter().enumerate() {
            put_dns_string(m, s, self.wire.get(i), &mut comp, field)?;
        }
        if let Some(sa) = &self.dc_sock_addr {
            if sa.family != AF_INET {
                return Err(Error::emit(
                    "sin_family",
                    "only AF_INET (2) can be recognised on receive",
                ));
            }
            let size = u8::try_from(SOCKADDR_MIN_LEN + sa.sin_zero.len())
                .map_err(|_| Error::emit("DcSockAddr", "longer than 255 bytes"))?;
            m.push(size);
            m.extend_from_slice(&sa.family.to_le_bytes());
            m.extend_from_slice(&sa.port.to_le_bytes());
            m.extend_from_slice(&sa.address.octets());
            m.extend_from_slice(&sa.sin_zero);
        }
        if let Some(s) = &self.next_closest_site_name {
            put_dns_string(m, s, self.wire.get(8), &mut comp, "NextClosestSiteName")?;
        }
        m.extend_from_slice(&self.nt_version.to_le_bytes());
        m.extend_from_slice(&self.lmnt_token.to_le_bytes());
        m.extend_from_slice(&self.lm20_token.to_le_bytes());
        Ok(())
    }
}

const EX_STRING_FIELDS: [&str; 8] = [
    "DnsForestName",
    "DnsDomainName",
    "DnsHostName",
    "NetbiosDomainName",
    "NetbiosComputerName",
    "UserName",
    "DcSiteName",
    "ClientSiteName",
];

/// DcSockAddrSize when the byte at `pos` starts a DcSockAddr ending at or before `limit`:
/// a size of at least 8 followed by `sin_family` AF_INET.
fn sockaddr_size_at(data: &[u8], pos: usize, limit: usize) -> Option<usize> {
    let size = usize::from(*data.get(pos)?);
    let family = data.get(pos + 1..pos + 3)?;
    (size >= SOCKADDR_MIN_LEN && pos + 1 + size <= limit && family == AF_INET.to_le_bytes())
        .then_some(size)
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
        let mut v = Vec::new();
        self.emit(&mut v)?;
        Ok(v)
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

// ---------------------------------------------------------------------------------------------
// Field helpers

fn strz(r: &mut Reader, field: &'static str) -> Result<String> {
    Ok(latin1(r.cstr(field)?))
}

fn put_strz(m: &mut Vec<u8>, s: &str, field: &'static str) -> Result<()> {
    let bytes = to_latin1(s, field)?;
    if bytes.contains(&0) {
        return Err(Error::emit(field, "string contains a NUL"));
    }
    m.extend_from_slice(&bytes);
    m.push(0);
    Ok(())
}

fn put_utf16(m: &mut Vec<u8>, s: &str, field: &'static str) -> Result<()> {
    if s.contains('\0') {
        return Err(Error::emit(field, "string contains a NUL"));
    }
    put_utf16z(m, s);
    Ok(())
}

fn pad_len(pos: usize, align: usize) -> usize {
    (align - pos % align) % align
}

/// Zero bytes up to a multiple of `align` from the start of the message.
fn pad(m: &mut Vec<u8>, align: usize) {
    m.resize(m.len() + pad_len(m.len(), align), 0);
}

/// NtVersion, LmNtToken, Lm20Token: each present when the one before it is and its bytes are.
fn read_tail(r: &mut Reader) -> Result<(Option<u32>, Option<u16>, Option<u16>)> {
    let nt = if r.remaining() >= 4 {
        Some(r.u32_le("NtVersion")?)
    } else {
        None
    };
    let lmnt = if nt.is_some() && r.remaining() >= 2 {
        Some(r.u16_le("LmNtToken")?)
    } else {
        None
    };
    let lm20 = if lmnt.is_some() && r.remaining() >= 2 {
        Some(r.u16_le("Lm20Token")?)
    } else {
        None
    };
    Ok((nt, lmnt, lm20))
}

fn put_tail(m: &mut Vec<u8>, nt: Option<u32>, lmnt: Option<u16>, lm20: Option<u16>) -> Result<()> {
    if (nt.is_none() && lmnt.is_some()) || (lmnt.is_none() && lm20.is_some()) {
        return Err(Error::emit(
            "NtVersion",
            "a token is present without the fields before it",
        ));
    }
    if let Some(v) = nt {
        m.extend_from_slice(&v.to_le_bytes());
    }
    for t in [lmnt, lm20].into_iter().flatten() {
        m.extend_from_slice(&t.to_le_bytes());
    }
    Ok(())
}

/// `S-R-A-S1-S2...` from a binary SID (MS-DTYP §2.4.2.2).
fn sid_string(sid: &[u8]) -> Option<String> {
    use fmt::Write;
    let (&revision, rest) = sid.split_first()?;
    let (&count, rest) = rest.split_first()?;
    let (authority, subs) = rest.split_at_checked(6)?;
    if subs.len() != 4 * usize::from(count) {
        return None;
    }
    let authority = authority
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut s = format!("S-{revision}-{authority}");
    for sub in subs.chunks_exact(4) {
        let _ = write!(
            s,
            "-{}",
            u32::from_le_bytes([sub[0], sub[1], sub[2], sub[3]])
        );
    }
    Some(s)
}

// ---------------------------------------------------------------------------------------------
// RFC 1035 compressed strings (MS-ADTS §6.3.7)

/// Read the compressed string at `r`, record its wire bytes in `wire` and move past it.
///
/// The text must be one that [`put_dns_string`] can write without the cached bytes (they
/// stop reading back when what they point to is not reproduced exactly, e.g. a UTF-16
/// string with an unpaired surrogate): [`dns_labels`] must split it. It always can, unless
/// a label grew past 63 bytes when its invalid UTF-8 became U+FFFD (3 bytes per bad byte).
fn dns_field(r: &mut Reader, field: &'static str, wire: &mut WireLayout) -> Result<String> {
    let start = r.pos();
    let (s, end) = read_dns_string(r.buf(), start, field)?;
    if dns_labels(&s).is_none() {
        return Err(Error::invalid(
            field,
            start,
            "a label is longer than 63 bytes once its invalid UTF-8 is replaced by U+FFFD",
        ));
    }
    wire.strings.push(r.bytes(end - start, field)?.to_vec());
    Ok(s)
}

/// Decode the name at `start` of `msg` (the whole NETLOGON message: pointers count from its
/// first byte). Returns the text, labels joined by `.`, and the offset after the in-line part.
/// A pointer must point backwards, and what it points to must end before the pointer itself,
/// so a string never depends on the bytes after it.
fn read_dns_string(msg: &[u8], start: usize, field: &'static str) -> Result<(String, usize)> {
    let mut pos = start;
    // Once a pointer has been followed, reads must stay before the last pointer.
    let mut limit = msg.len();
    let mut end = None;
    let mut hops = 0usize;
    let mut labels = 0usize;
    let mut text: Vec<u8> = Vec::new();
    let take = |from: usize, n: usize, limit: usize| -> Result<&[u8]> {
        match msg.get(from..from + n) {
            Some(b) if from + n <= limit => Ok(b),
            _ if limit < msg.len() => Err(Error::invalid(
                field,
                from,
                "pointed-to name runs into the pointer",
            )),
            _ => Err(Error::Truncated {
                field,
                offset: from,
                need: n,
                have: msg.len().saturating_sub(from),
            }),
        }
    };
    loop {
        let len = take(pos, 1, limit)?.first().copied().unwrap_or_default();
        match len & 0xC0 {
            0x00 if len == 0 => {
                let end = end.unwrap_or(pos + 1);
                return Ok((String::from_utf8_lossy(&text).into_owned(), end));
            }
            0x00 => {
                labels += 1;
                if labels > MAX_LABELS {
                    return Err(Error::invalid(field, pos, "too many labels"));
                }
                let n = usize::from(len);
                let label = take(pos + 1, n, limit)?;
                if labels > 1 {
                    text.push(b'.');
                }
                text.extend_from_slice(label);
                pos += 1 + n;
            }
            0xC0 => {
                let lo = take(pos + 1, 1, limit)?
                    .first()
                    .copied()
                    .unwrap_or_default();
                let target = usize::from(u16::from_be_bytes([len & 0x3F, lo]));
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err(Error::invalid(field, pos, "too many compression pointers"));
                }
                if target >= pos {
                    return Err(Error::invalid(
                        field,
                        pos,
                        "compression pointer does not point backwards",
                    ));
                }
                end.get_or_insert(pos + 2);
                limit = pos;
                pos = target;
            }
            _ => return Err(Error::invalid(field, pos, "reserved label type")),
        }
    }
}

/// Suffixes already on the wire (text → offset of its first label), for pointers.
#[derive(Default)]
struct Compressor {
    suffixes: Vec<(String, usize)>,
}

impl Compressor {
    fn find(&self, s: &str) -> Option<usize> {
        self.suffixes.iter().find(|(t, _)| t == s).map(|&(_, o)| o)
    }

    fn remember(&mut self, s: &str, offset: usize) {
        if offset <= MAX_POINTER && self.find(s).is_none() {
            self.suffixes.push((s.to_owned(), offset));
        }
    }

    /// Remember every in-line label of the string written at `start`.
    fn learn(&mut self, msg: &[u8], start: usize) {
        let mut pos = start;
        while let Some(&len) = msg.get(pos) {
            if len == 0 || len & 0xC0 != 0 {
                break;
            }
            if let Ok((text, _)) = read_dns_string(msg, pos, "") {
                self.remember(&text, pos);
            }
            pos += 1 + usize::from(len);
        }
    }
}

/// The labels `s` is written as: split at every dot, a final dot kept inside the last label,
/// as Samba's `ndr_push_dns_string_list` does. Text that this cannot split into labels of 1
/// to 63 bytes (at most [`MAX_LABELS`]) — an empty piece from a leading, doubled or final
/// double dot, as a sender's label holding a `.` byte gives — is split into the fewest labels
/// that can hold it, some dots staying inside labels. Read back, the labels joined by dots
/// are `s` again. `None` when no split exists (a run of more than 63 bytes without a dot, or
/// more than [`MAX_LABELS`] labels needed). The empty string has no labels.
fn dns_labels(s: &str) -> Option<Vec<&str>> {
    samba_labels(s)
        .filter(|l| l.len() <= MAX_LABELS)
        .or_else(|| fewest_labels(s))
        .filter(|l| l.len() <= MAX_LABELS)
}

/// Samba's split; `None` on an empty or over-long label.
fn samba_labels(s: &str) -> Option<Vec<&str>> {
    let mut labels = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let mut n = rest.find('.').unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        if rest.get(n..) == Some(".") {
            n += 1;
        }
        if n > MAX_LABEL_LEN {
            return None;
        }
        labels.push(rest.get(..n)?);
        rest = rest.get(n..)?;
        rest = rest.strip_prefix('.').unwrap_or(rest);
    }
    Some(labels)
}

/// The split of `s` at some of its dots into the fewest labels of 1 to 63 bytes (the longest
/// first label among them), or `None`.
fn fewest_labels(s: &str) -> Option<Vec<&str>> {
    let b = s.as_bytes();
    let len = b.len();
    // best[a]: (labels, end of the first label) for the text from `a`, a label start (0 or
    // just after a dot).
    let mut best: Vec<Option<(usize, usize)>> = vec![None; len + 1];
    for a in (0..len).rev() {
        if a > 0 && b.get(a - 1) != Some(&b'.') {
            continue;
        }
        let mut choice = None;
        if len - a <= MAX_LABEL_LEN {
            choice = Some((1, len));
        } else {
            // The label ends at a dot `p`, and the next one is not empty.
            for p in (a + 1..=a + MAX_LABEL_LEN).rev() {
                if b.get(p) != Some(&b'.') {
                    continue;
                }
                if let Some(&Some((n, _))) = best.get(p + 1) {
                    if choice.is_none_or(|(m, _)| n + 1 < m) {
                        choice = Some((n + 1, p));
                    }
                }
            }
        }
        if let Some(slot) = best.get_mut(a) {
            *slot = choice;
        }
    }
    let mut labels = Vec::new();
    let mut a = 0;
    while a < len {
        let (_, end) = (*best.get(a)?)?;
        labels.push(s.get(a..end)?);
        a = end + 1;
    }
    Some(labels)
}

/// Append `labels`, with a pointer as soon as the rest of the string is a suffix `comp`
/// knows (none without `comp`).
fn put_labels(msg: &mut Vec<u8>, labels: &[&str], comp: Option<&Compressor>) {
    for (i, label) in labels.iter().enumerate() {
        if let Some(off) = comp.and_then(|c| c.find(&labels[i..].join("."))) {
            msg.extend_from_slice(&(0xC000 | off as u16).to_be_bytes());
            return;
        }
        msg.push(label.len() as u8);
        msg.extend_from_slice(label.as_bytes());
    }
    msg.push(0);
}

/// Append `s` to `msg` (the message so far). `cached` is the string's wire form from parsing;
/// it is kept if it still reads back as `s` here (it may not when it points into bytes that
/// came out differently, or when the message has moved), otherwise `s` is split by
/// [`dns_labels`] and compressed as Samba does: a pointer as soon as the rest of the string is
/// a suffix already written. If that does not read back (a pointer into a string that has
/// its own pointers can exceed [`MAX_POINTER_HOPS`] or [`MAX_LABELS`]), the labels are
/// written without pointers.
fn put_dns_string(
    msg: &mut Vec<u8>,
    s: &str,
    cached: Option<&[u8]>,
    comp: &mut Compressor,
    field: &'static str,
) -> Result<()> {
    let start = msg.len();
    let reads_back = |msg: &[u8]| matches!(read_dns_string(msg, start, field), Ok((t, end)) if t == s && end == msg.len());
    if let Some(wire) = cached {
        msg.extend_from_slice(wire);
        if reads_back(msg) {
            comp.learn(msg, start);
            return Ok(());
        }
        msg.truncate(start);
    }
    let Some(labels) = dns_labels(s) else {
        let reason = if fewest_labels(s).is_some() {
            "more than 128 labels"
        } else {
            "label longer than 63 bytes"
        };
        return Err(Error::emit(field, reason));
    };
    for compress in [true, false] {
        put_labels(msg, &labels, compress.then_some(&*comp));
        if reads_back(msg) {
            comp.learn(msg, start);
            return Ok(());
        }
        msg.truncate(start);
    }
    Err(Error::emit(
        field,
        "string cannot be encoded so that it reads back the same",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GETDC: &[u8] = b"\\MAILSLOT\\NET\\GETDC873\0";

    fn u16z(s: &str) -> Vec<u8> {
        let mut v = Vec::new();
        put_utf16z(&mut v, s);
        v
    }

    /// Parse, check that emit gives the same bytes back, return the message.
    fn exact(bytes: &[u8]) -> NetlogonMessage {
        let m = NetlogonMessage::parse(bytes).unwrap();
        assert_eq!(m.to_bytes().unwrap(), bytes, "{m:?}");
        m
    }

    fn field_of(e: Error) -> &'static str {
        match e {
            Error::Truncated { field, .. }
            | Error::Invalid { field, .. }
            | Error::Emit { field, .. } => field,
        }
    }

    // --- LOGON_PRIMARY_QUERY --------------------------------------------------------------

    #[test]
    fn primary_query_nt_form_with_pad() {
        // As Samba's NBT client sends it: NtVersion 1, both tokens 0xFFFF. "WKS01\0" and the
        // 23-byte mailslot name end at offset 31, so one pad byte precedes the UTF-16 name.
        let v = [
            &[0x07, 0x00][..],
            b"WKS01\0",
            GETDC,
            &[0],
            &u16z("WKS01"),
            &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ]
        .concat();
        assert_eq!(v.len(), 52);
        let m = exact(&v);
        assert_eq!(m.opcode(), 0x0007);
        assert_eq!(m.command(), "LOGON_PRIMARY_QUERY");
        let NetlogonMessage::PrimaryQuery(q) = &m else {
            panic!()
        };
        assert_eq!(q, &PrimaryQuery::new("WKS01", "\\MAILSLOT\\NET\\GETDC873"));
        assert_eq!(
            NetlogonMessage::PrimaryQuery(PrimaryQuery::new("WKS01", "\\MAILSLOT\\NET\\GETDC873"))
                .to_bytes()
                .unwrap(),
            v
        );
    }

    #[test]
    fn primary_query_without_pad() {
        let v = [
            &[0x07, 0x00][..],
            b"WKS1\0",
            GETDC,
            &u16z("WKS1"),
            &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ]
        .concat();
        let NetlogonMessage::PrimaryQuery(q) = exact(&v) else {
            panic!()
        };
        assert_eq!(q.unicode_computer_name.as_deref(), Some("WKS1"));
        assert_eq!(q.nt_version, Some(1));
    }

    #[test]
    fn primary_query_lm20_form() {
        // LAN Manager 2.0 / Windows 9x: only the Lm20Token after the mailslot name.
        let v = [
            &[0x07, 0x00][..],
            b"WFW1\0",
            b"\\MAILSLOT\\TEMP\\NETLOGON\0",
            &[0xff, 0xff],
        ]
        .concat();
        let NetlogonMessage::PrimaryQuery(q) = exact(&v) else {
            panic!()
        };
        assert_eq!(q.computer_name, "WFW1");
        assert_eq!(q.mailslot_name, "\\MAILSLOT\\TEMP\\NETLOGON");
        assert_eq!(
            (
                q.unicode_computer_name.as_deref(),
                q.nt_version,
                q.lmnt_token
            ),
            (None, None, None)
        );
        assert_eq!(q.lm20_token, Some(0xffff));
        // Nothing at all after the mailslot name, and one stray byte.
        let bare = [
            &[0x07, 0x00][..],
            b"WFW1\0",
            b"\\MAILSLOT\\TEMP\\NETLOGON\0",
        ]
        .concat();
        let NetlogonMessage::PrimaryQuery(q) = exact(&bare) else {
            panic!()
        };
        assert_eq!((q.lm20_token, q.trailing.len()), (None, 0));
        let NetlogonMessage::PrimaryQuery(q) = exact(&[&bare[..], &[0x55]].concat()) else {
            panic!()
        };
        assert_eq!(q.trailing, [0x55]);
    }

    #[test]
    fn primary_query_short_tails_round_trip() {
        let head = [&[0x07, 0x00][..], b"WKS1\0", GETDC, &u16z("WKS1")].concat();
        // Cut anywhere inside NtVersion/LmNtToken/Lm20Token, then add trailing bytes.
        let tail = [0x0b, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xee, 0xdd];
        for cut in 0..=tail.len() {
            let v = [&head[..], &tail[..cut]].concat();
            let NetlogonMessage::PrimaryQuery(q) = exact(&v) else {
                panic!()
            };
            assert_eq!(q.nt_version.is_some(), cut >= 4, "cut {cut}");
            assert_eq!(q.lmnt_token.is_some(), cut >= 6, "cut {cut}");
            assert_eq!(q.lm20_token.is_some(), cut >= 8, "cut {cut}");
            let consumed = [0, 4, 6, 8]
                .into_iter()
                .filter(|&n| n <= cut)
                .max()
                .unwrap();
            assert_eq!(q.trailing, &tail[consumed..cut], "cut {cut}");
        }
    }

    #[test]
    fn primary_query_errors() {
        let e = NetlogonMessage::parse(&[0x07, 0x00, b'W', b'K']).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Invalid {
                    field: "ComputerName",
                    offset: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = NetlogonMessage::parse(&[0x07, 0x00, b'W', 0, b'\\', b'M']).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Invalid {
                    field: "MailslotName",
                    offset: 4,
                    ..
                }
            ),
            "{e:?}"
        );
        // NT form whose UTF-16 name never ends.
        let v = [&[0x07, 0x00][..], b"WKS1\0", GETDC, &[b'W', 0, b'K', 0]].concat();
        assert_eq!(
            field_of(NetlogonMessage::parse(&v).unwrap_err()),
            "UnicodeComputerName"
        );
    }

    #[test]
    fn primary_query_emit_checks() {
        let mut q = PrimaryQuery::new("WKS1", "\\MAILSLOT\\NET\\GETDC873");
        q.nt_version = None;
        assert_eq!(
            field_of(
                NetlogonMessage::PrimaryQuery(q.clone())
                    .to_bytes()
                    .unwrap_err()
            ),
            "NtVersion"
        );
        q.unicode_computer_name = None;
        q.lmnt_token = None;
        q.nt_version = Some(1);
        assert_eq!(
            field_of(
                NetlogonMessage::PrimaryQuery(q.clone())
                    .to_bytes()
                    .unwrap_err()
            ),
            "UnicodeComputerName"
        );
        // LM 2.0 form plus trailing bytes would read back as the NT form.
        q.nt_version = None;
        q.trailing = vec![1, 2];
        assert_eq!(
            NetlogonMessage::PrimaryQuery(q.clone()).to_bytes().unwrap_err(),
            Error::Emit {
                field: "NETLOGON message",
                reason: "would not read back as the same value (trailing bytes or optional fields look like another layout)"
            }
        );
        // An empty Unicode name without pad and nothing after it is two bytes: the LM 2.0 form.
        let q = PrimaryQuery {
            computer_name: "ABC".into(),
            mailslot_name: "S".into(),
            unicode_computer_name: Some(String::new()),
            ..PrimaryQuery::default()
        };
        assert!(NetlogonMessage::PrimaryQuery(q).to_bytes().is_err());
        let mut q = PrimaryQuery::new("WKS\0A", "M");
        assert_eq!(
            field_of(
                NetlogonMessage::PrimaryQuery(q.clone())
                    .to_bytes()
                    .unwrap_err()
            ),
            "ComputerName"
        );
        q.computer_name = "WKS\u{100}".into();
        assert_eq!(
            field_of(
                NetlogonMessage::PrimaryQuery(q.clone())
                    .to_bytes()
                    .unwrap_err()
            ),
            "ComputerName"
        );
        q.computer_name = "WKS".into();
        q.unicode_computer_name = Some("a\0b".into());
        assert_eq!(
            field_of(NetlogonMessage::PrimaryQuery(q).to_bytes().unwrap_err()),
            "UnicodeComputerName"
        );
    }

    // --- LOGON_PRIMARY_RESPONSE -----------------------------------------------------------

    #[test]
    fn primary_response_as_nmbd_sends_it() {
        // nmbd: PrimaryDCName, the same name in UTF-16, the workgroup, NtVersion 1, tokens.
        // "PDC1\0" ends at offset 7: one pad byte.
        let v = [
            &[0x0c, 0x00][..],
            b"PDC1\0",
            &[0],
            &u16z("PDC1"),
            &u16z("SAMDOM"),
            &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ]
        .concat();
        let m = exact(&v);
        assert_eq!(m.command(), "LOGON_PRIMARY_RESPONSE");
        let NetlogonMessage::PrimaryResponse(p) = m else {
            panic!()
        };
        assert_eq!(p.primary_dc_name, "PDC1");
        assert_eq!(p.unicode_primary_dc_name.as_deref(), Some("PDC1"));
        assert_eq!(p.unicode_domain_name.as_deref(), Some("SAMDOM"));
        assert_eq!(
            (p.nt_version, p.lmnt_token, p.lm20_token),
            (Some(1), Some(0xffff), Some(0xffff))
        );
        // Non-zero padding is accepted; it comes back as zero.
        let mut odd = v.clone();
        odd[7] = 0xaa;
        assert_eq!(NetlogonMessage::parse(&odd).unwrap().to_bytes().unwrap(), v);
    }

    #[test]
    fn primary_response_short_forms() {
        let NetlogonMessage::PrimaryResponse(p) = exact(&[&[0x0c, 0x00][..], b"PDC1\0"].concat())
        else {
            panic!()
        };
        assert_eq!(
            (p.primary_dc_name.as_str(), p.unicode_primary_dc_name),
            ("PDC1", None)
        );
        // A pad byte alone, or pad + one byte, is trailing; a UTF-16 NUL after the pad is the name.
        let NetlogonMessage::PrimaryResponse(p) =
            exact(&[&[0x0c, 0x00][..], b"PDC1\0", &[0, 0]].concat())
        else {
            panic!()
        };
        assert_eq!((p.unicode_primary_dc_name, p.trailing), (None, vec![0, 0]));
        let v = [&[0x0c, 0x00][..], b"PDC1\0", &[0], &u16z("PDC1")].concat();
        let NetlogonMessage::PrimaryResponse(p) = exact(&v) else {
            panic!()
        };
        assert_eq!(
            (p.unicode_primary_dc_name.as_deref(), p.unicode_domain_name),
            (Some("PDC1"), None)
        );
        let e = NetlogonMessage::parse(&[&v[..], &[b'S', 0, b'A']].concat()).unwrap_err();
        assert_eq!(field_of(e), "UnicodeDomainName");
        let p = PrimaryResponse {
            primary_dc_name: "PDC1".into(),
            unicode_domain_name: Some("X".into()),
            ..PrimaryResponse::default()
        };
        assert_eq!(
            field_of(NetlogonMessage::PrimaryResponse(p).to_bytes().unwrap_err()),
            "UnicodePrimaryDCName"
        );
    }

    // --- LOGON_SAM_LOGON_REQUEST ----------------------------------------------------------

    /// S-1-5-21-1004336348-1177238915-682003330
    const SID: [u8; 24] = [
        1, 4, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0xdc, 0xf4, 0xdc, 0x3b, 0x83, 0x3d, 0x2b, 0x46, 0x82,
        0x8b, 0xa6, 0x28,
    ];

    #[test]
    fn sam_logon_request_as_samba_sends_it() {
        // Samba's dsgetdcname: RequestCount 0, machine name, empty user, ACB_WSTRUST, no SID.
        let v = [
            &[0x12, 0x00, 0x00, 0x00][..],
            &u16z("WKS1"),
            &u16z(""),
            GETDC,
            &[0x80, 0, 0, 0],
            &[0, 0, 0, 0],
            &[0x0b, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ]
        .concat();
        let m = exact(&v);
        assert_eq!(m.command(), "LOGON_SAM_LOGON_REQUEST");
        let NetlogonMessage::SamLogonRequest(q) = m else {
            panic!()
        };
        let mut want = SamLogonRequest::new("WKS1", "", "\\MAILSLOT\\NET\\GETDC873", 0x0b);
        want.allowable_account_control_bits = 0x80;
        assert_eq!(q, want);
        assert_eq!(q.domain_sid_string(), None);
    }

    #[test]
    fn sam_logon_request_with_sid_is_padded_to_4() {
        // DomainSidSize ends at offset 47: one pad byte puts the SID at 48.
        let v = [
            &[0x12, 0x00, 0x01, 0x00][..],
            &u16z("WKS1"),
            &u16z(""),
            GETDC,
            &[0x10, 0, 0, 0],
            &[24, 0, 0, 0],
            &[0],
            &SID,
            &[0x0b, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ]
        .concat();
        assert_eq!(v.len(), 80);
        let NetlogonMessage::SamLogonRequest(q) = exact(&v) else {
            panic!()
        };
        assert_eq!(q.request_count, 1);
        assert_eq!(q.domain_sid, SID);
        assert_eq!(
            q.domain_sid_string().as_deref(),
            Some("S-1-5-21-1004336348-1177238915-682003330")
        );
        // The SID runs past the end; a huge size does not allocate or panic.
        assert_eq!(
            field_of(NetlogonMessage::parse(&v[..60]).unwrap_err()),
            "DomainSid"
        );
        let mut huge = v[..48].to_vec();
        huge[43..47].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            field_of(NetlogonMessage::parse(&huge).unwrap_err()),
            "DomainSid"
        );
        // Pad byte missing.
        assert_eq!(
            field_of(NetlogonMessage::parse(&v[..47]).unwrap_err()),
            "DomainSid padding"
        );
    }

    #[test]
    fn sam_logon_request_truncated() {
        let v = [
            &[0x12, 0x00, 0x00, 0x00][..],
            &u16z("WKS1"),
            &u16z(""),
            GETDC,
            &[0x80, 0, 0, 0],
        ]
        .concat();
        let e = NetlogonMessage::parse(&v).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Truncated {
                    field: "DomainSidSize",
                    offset: 43,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            field_of(NetlogonMessage::parse(&[0x12, 0x00, 0x00]).unwrap_err()),
            "RequestCount"
        );
        assert_eq!(
            field_of(NetlogonMessage::parse(&[0x12, 0, 0, 0, b'W', 0]).unwrap_err()),
            "UnicodeComputerName"
        );
    }

    // --- LOGON_SAM_LOGON_RESPONSE (NT 4.0 and V5) -----------------------------------------

    #[test]
    fn sam_logon_response_nt40() {
        // nmbd's answer to an NtVersion 1 request: "\\NAME", the user, the workgroup.
        let body = [
            &u16z("\\\\SAMBADC")[..],
            &u16z(""),
            &u16z("SAMDOM"),
            &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ]
        .concat();
        for (op, cmd) in [
            (0x13u8, "LOGON_SAM_LOGON_RESPONSE"),
            (0x14, "LOGON_SAM_PAUSE_RESPONSE"),
            (0x15, "LOGON_SAM_USER_UNKNOWN"),
        ] {
            let m = exact(&[&[op, 0x00][..], &body].concat());
            assert_eq!(m.command(), cmd);
            let (NetlogonMessage::SamLogonResponse(p)
            | NetlogonMessage::SamPauseResponse(p)
            | NetlogonMessage::SamUserUnknown(p)) = m
            else {
                panic!()
            };
            assert_eq!(p.unicode_logon_server, "\\\\SAMBADC");
            assert_eq!(p.unicode_domain_name, "SAMDOM");
            assert!(p.v5.is_none());
            assert_eq!(p.nt_version, Some(1));
        }
        assert_eq!(
            field_of(NetlogonMessage::parse(&[0x13, 0, b'D', 0]).unwrap_err()),
            "UnicodeLogonServer"
        );
    }

    fn v5_bytes() -> Vec<u8> {
        [
            &[0x13, 0x00][..],
            &u16z("\\\\DC1"),
            &u16z("alice"),
            &u16z("CORP"),
            &[
                0x1a, 0xeb, 0x76, 0x68, 0xc6, 0xb2, 0xca, 0x4b, 0xb6, 0x9c, 0xfe, 0xda, 0x68, 0x2e,
                0x82, 0xfd,
            ],
            &[0; 16],
            b"\x04corp\x07example\x03com\x00", // at 68 = 0x44
            &[0xc0, 0x44],
            b"\x03dc1\xc0\x44",
            &[192, 168, 1, 5],
            &[0x11, 0, 0, 0],
            &[3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ]
        .concat()
    }

    #[test]
    fn sam_logon_response_v5() {
        let v = v5_bytes();
        assert_eq!(v.len(), 110);
        let NetlogonMessage::SamLogonResponse(p) = exact(&v) else {
            panic!()
        };
        let v5 = p.v5.as_ref().unwrap();
        assert_eq!(
            v5.domain_guid.to_string(),
            "6876eb1a-b2c6-4bca-b69c-feda682e82fd"
        );
        assert!(v5.null_guid.is_null());
        assert_eq!(v5.forest, "corp.example.com");
        assert_eq!(v5.dns_domain, "corp.example.com");
        assert_eq!(v5.dns_host_name, "dc1.corp.example.com");
        assert_eq!(v5.dc_ip_address, Ipv4Addr::new(192, 168, 1, 5));
        assert_eq!(v5.flags, ds_flag::PDC | ds_flag::DS);
        assert_eq!(p.nt_version, Some(nt_version::V1 | nt_version::V5));
        // Built from scratch, the strings are compressed the same way.
        let built = SamLogonResponse {
            v5: Some(SamLogonResponseV5 {
                wire: WireLayout::default(),
                ..v5.clone()
            }),
            ..p.clone()
        };
        assert_eq!(
            NetlogonMessage::SamLogonResponse(built).to_bytes().unwrap(),
            v
        );
        // With NtVersion 1 at the end the same bytes are an NT 4.0 response with trailing data.
        let mut nt4 = v.clone();
        nt4[102] = 1;
        let NetlogonMessage::SamLogonResponse(p) = exact(&nt4) else {
            panic!()
        };
        assert!(p.v5.is_none());
        assert_eq!(p.trailing.len(), 110 - 36 - 8);
        // V5 fields that do not decode are an error.
        let mut bad = v.clone();
        bad[68] = 0x40;
        assert!(matches!(
            NetlogonMessage::parse(&bad).unwrap_err(),
            Error::Invalid {
                field: "DnsForestName",
                offset: 68,
                ..
            }
        ));
        // A V5 value whose NtVersion lacks NETLOGON_NT_VERSION_5 would read back as NT 4.0.
        let mut wrong = p.clone();
        wrong.v5 = Some(SamLogonResponseV5::default());
        wrong.nt_version = Some(1);
        wrong.trailing.clear();
        assert!(NetlogonMessage::SamLogonResponse(wrong).to_bytes().is_err());
    }

    // --- LOGON_SAM_LOGON_RESPONSE_EX ------------------------------------------------------

    /// An EX response as a Windows DC sends it (here from an LDAP ping, which carries the same
    /// structure): Flags 0x0007F3FD, five pointers, NtVersion 5.
    const EX_WINDOWS: &str = "17000000fdf307001aeb7668c6b2ca4bb69cfeda682e82fd06646f6d61696e047465737400c0180444433031c01806444f4d41494e00044443303100001744656661756c742d46697273742d536974652d4e616d6500c03d05000000ffffffff";

    #[test]
    fn ex_response_from_windows() {
        let v = crate::hex::decode(EX_WINDOWS).unwrap();
        let m = exact(&v);
        assert_eq!(m.command(), "LOGON_SAM_LOGON_RESPONSE_EX");
        let NetlogonMessage::SamLogonResponseEx(p) = &m else {
            panic!()
        };
        assert_eq!(p.flags, 0x0007_f3fd);
        assert_eq!(
            p.domain_guid.to_string(),
            "6876eb1a-b2c6-4bca-b69c-feda682e82fd"
        );
        assert_eq!(p.forest, "domain.test");
        assert_eq!(p.dns_domain, "domain.test");
        assert_eq!(p.dns_host_name, "DC01.domain.test");
        assert_eq!(p.netbios_domain, "DOMAIN");
        assert_eq!(p.netbios_computer_name, "DC01");
        assert_eq!(p.user_name, "");
        assert_eq!(p.dc_site_name, "Default-First-Site-Name");
        assert_eq!(p.client_site_name, "Default-First-Site-Name");
        assert_eq!((&p.dc_sock_addr, &p.next_closest_site_name), (&None, &None));
        assert_eq!(
            (p.nt_version, p.lmnt_token, p.lm20_token),
            (5, 0xffff, 0xffff)
        );
        // Samba-style compression of the same strings gives the same bytes.
        let built = SamLogonResponseEx {
            wire: WireLayout::default(),
            ..p.clone()
        };
        assert!(built.wire.is_empty());
        assert_eq!(
            NetlogonMessage::SamLogonResponseEx(built)
                .to_bytes()
                .unwrap(),
            v
        );
    }

    fn ex_built() -> SamLogonResponseEx {
        SamLogonResponseEx {
            flags: 0x0000_f3fd,
            domain_guid: "6876eb1a-b2c6-4bca-b69c-feda682e82fd".parse().unwrap(),
            forest: "corp.example.com".into(),
            dns_domain: "corp.example.com".into(),
            dns_host_name: "dc1.corp.example.com".into(),
            netbios_domain: "CORP".into(),
            netbios_computer_name: "DC1".into(),
            user_name: String::new(),
            dc_site_name: "HQ".into(),
            client_site_name: "Branch".into(),
            dc_sock_addr: Some(DcSockAddr::new(Ipv4Addr::new(10, 0, 0, 1))),
            next_closest_site_name: Some("HQ".into()),
            nt_version: nt_version::V1 | nt_version::V5EX | nt_version::WITH_CLOSEST_SITE,
            ..SamLogonResponseEx::default()
        }
    }

    fn ex_built_bytes() -> Vec<u8> {
        [
            &[0x17, 0x00, 0x00, 0x00, 0xfd, 0xf3, 0x00, 0x00][..],
            &[
                0x1a, 0xeb, 0x76, 0x68, 0xc6, 0xb2, 0xca, 0x4b, 0xb6, 0x9c, 0xfe, 0xda, 0x68, 0x2e,
                0x82, 0xfd,
            ],
            b"\x04corp\x07example\x03com\x00", // forest at 24 = 0x18
            &[0xc0, 0x18],                     // dns_domain
            b"\x03dc1\xc0\x18",                // dns_host_name
            b"\x04CORP\x00",
            b"\x03DC1\x00", // "DC1" is not a suffix of "dc1.corp..." (case matters)
            b"\x00",
            b"\x02HQ\x00", // at 62 = 0x3e
            b"\x06Branch\x00",
            &[16, 2, 0, 0, 0, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0xc0, 0x3e], // next closest site: pointer to "HQ"
            &[0x15, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ]
        .concat()
    }

    #[test]
    fn ex_response_with_sockaddr_and_closest_site() {
        let want = ex_built_bytes();
        let m = NetlogonMessage::SamLogonResponseEx(ex_built());
        assert_eq!(m.to_bytes().unwrap(), want);
        let back = exact(&want);
        assert_eq!(back, m);
        let NetlogonMessage::SamLogonResponseEx(p) = back else {
            panic!()
        };
        assert_eq!(p.dc_sock_addr.as_ref().unwrap().to_string(), "10.0.0.1:0");
        assert_eq!(p.next_closest_site_name.as_deref(), Some("HQ"));
        for (op, cmd) in [
            (0x18u8, "LOGON_SAM_PAUSE_RESPONSE_EX"),
            (0x19, "LOGON_SAM_USER_UNKNOWN_EX"),
        ] {
            let mut v = want.clone();
            v[0] = op;
            assert_eq!(exact(&v).command(), cmd);
        }
    }

    #[test]
    fn ex_optional_fields_alone() {
        // DcSockAddr only.
        let mut p = ex_built();
        p.next_closest_site_name = None;
        p.nt_version = 5;
        let v = NetlogonMessage::SamLogonResponseEx(p.clone())
            .to_bytes()
            .unwrap();
        assert_eq!(exact(&v), NetlogonMessage::SamLogonResponseEx(p.clone()));
        // NextClosestSiteName only, also when it is empty (a single 0 byte).
        for site in ["HQ", "", "Default-First-Site-Name", "x"] {
            p.dc_sock_addr = None;
            p.next_closest_site_name = Some(site.into());
            p.nt_version = 0x15;
            let v = NetlogonMessage::SamLogonResponseEx(p.clone())
                .to_bytes()
                .unwrap();
            assert_eq!(
                exact(&v),
                NetlogonMessage::SamLogonResponseEx(p.clone()),
                "{site:?}"
            );
        }
        // A 20-byte sockaddr (4 extra bytes of sin_zero) is kept.
        let mut p = ex_built();
        p.dc_sock_addr.as_mut().unwrap().sin_zero = vec![0; 12];
        let v = NetlogonMessage::SamLogonResponseEx(p.clone())
            .to_bytes()
            .unwrap();
        assert_eq!(exact(&v), NetlogonMessage::SamLogonResponseEx(p.clone()));
        p.dc_sock_addr.as_mut().unwrap().family = 23;
        assert_eq!(
            field_of(
                NetlogonMessage::SamLogonResponseEx(p)
                    .to_bytes()
                    .unwrap_err()
            ),
            "sin_family"
        );
    }

    #[test]
    fn ex_keeps_the_senders_compression() {
        // dns_domain spelled out instead of pointing at the forest: parsed and re-emitted as is.
        let v = crate::hex::decode(EX_WINDOWS).unwrap();
        let spelled = [&v[..37], b"\x06domain\x04test\x00", &v[39..]].concat();
        // The pointer to the DC site (0x3d) moves by 11 bytes.
        let at = spelled.len() - 10;
        assert_eq!(&spelled[at..at + 2], &[0xc0, 0x3d]);
        let mut spelled = spelled;
        spelled[at + 1] = 0x3d + 11;
        let m = exact(&spelled);
        let NetlogonMessage::SamLogonResponseEx(p) = &m else {
            panic!()
        };
        assert_eq!(p.dns_domain, "domain.test");
        assert_eq!(p.client_site_name, "Default-First-Site-Name");
        // A changed string is compressed afresh; the others keep their form if still valid.
        let mut changed = p.clone();
        changed.user_name = "bob".into();
        let out = NetlogonMessage::SamLogonResponseEx(changed.clone())
            .to_bytes()
            .unwrap();
        assert_eq!(
            NetlogonMessage::parse(&out).unwrap(),
            NetlogonMessage::SamLogonResponseEx(changed.clone())
        );
        assert_eq!(out.len(), spelled.len() + 4);
        // Renaming the forest invalidates the pointers into it: they are rebuilt.
        changed.forest = "example.org".into();
        let out = NetlogonMessage::SamLogonResponseEx(changed.clone())
            .to_bytes()
            .unwrap();
        assert_eq!(
            NetlogonMessage::parse(&out).unwrap(),
            NetlogonMessage::SamLogonResponseEx(changed)
        );
    }

    #[test]
    fn ex_malformed() {
        let v = crate::hex::decode(EX_WINDOWS).unwrap();
        // Too short for the header, the strings, the tail.
        assert_eq!(
            field_of(NetlogonMessage::parse(&v[..20]).unwrap_err()),
            "DomainGuid"
        );
        assert_eq!(
            field_of(NetlogonMessage::parse(&v[..30]).unwrap_err()),
            "DnsForestName"
        );
        assert!(matches!(
            NetlogonMessage::parse(&v[..v.len() - 1]).unwrap_err(),
            Error::Truncated {
                field: "NtVersion",
                ..
            }
        ));
        // A forward pointer, a pointer to itself, a reserved label type, a label past the end.
        let mut fwd = v.clone();
        fwd[37..39].copy_from_slice(&[0xc0, 0x30]);
        assert!(matches!(
            NetlogonMessage::parse(&fwd).unwrap_err(),
            Error::Invalid {
                field: "DnsDomainName",
                offset: 37,
                reason: "compression pointer does not point backwards"
            }
        ));
        let mut own = v.clone();
        own[37..39].copy_from_slice(&[0xc0, 37]);
        assert!(NetlogonMessage::parse(&own).is_err());
        let mut reserved = v.clone();
        reserved[24] = 0x86;
        assert!(matches!(
            NetlogonMessage::parse(&reserved).unwrap_err(),
            Error::Invalid {
                field: "DnsForestName",
                offset: 24,
                reason: "reserved label type"
            }
        ));
        let mut long = v.clone();
        long[24] = 0x3f;
        assert!(NetlogonMessage::parse(&long).is_err());
        // Garbage between ClientSiteName and NtVersion that is not one string.
        let n = v.len();
        let junk = [&v[..n - 8], &[0x01, b'x', 0x00, 0x00], &v[n - 8..]].concat();
        assert_eq!(
            field_of(NetlogonMessage::parse(&junk).unwrap_err()),
            "NextClosestSiteName"
        );
        // A pointer loop within the hop limit still ends: 0x18 -> label, pointer back to it.
        let mut looped = v.clone();
        looped[37..39].copy_from_slice(&[0xc0, 0x18]);
        looped[24..26].copy_from_slice(&[0x01, b'a']);
        looped[26..28].copy_from_slice(&[0xc0, 0x18]);
        assert!(matches!(
            NetlogonMessage::parse(&looped).unwrap_err(),
            Error::Invalid {
                field: "DnsForestName",
                offset: 26,
                reason: "pointed-to name runs into the pointer"
            }
        ));
    }

    #[test]
    fn dns_string_limits() {
        // A chain of pointers, each to the one before: 10 hops are followed, 11 are not.
        let mut msg = vec![0u8];
        for i in 0..11u16 {
            let prev = if i == 0 { 0 } else { 1 + 2 * (i - 1) };
            msg.extend_from_slice(&(0xc000 | prev).to_be_bytes());
        }
        assert_eq!(read_dns_string(&msg, 19, "x").unwrap(), (String::new(), 21));
        assert!(matches!(
            read_dns_string(&msg, 21, "x").unwrap_err(),
            Error::Invalid {
                reason: "too many compression pointers",
                ..
            }
        ));
        // 129 one-byte labels are too many; 128 are fine.
        let many = |n: usize| [b"\x01a".repeat(n), vec![0]].concat();
        assert_eq!(read_dns_string(&many(128), 0, "x").unwrap().0.len(), 255);
        assert!(read_dns_string(&many(129), 0, "x").is_err());
        assert!(read_dns_string(&[0xc0], 0, "x").is_err());
        assert!(read_dns_string(&[], 0, "x").is_err());
        // Emission limits: a run of more than 63 bytes without a dot, more than 128 labels.
        let mut m = Vec::new();
        let mut comp = Compressor::default();
        let x63 = "x".repeat(63);
        let too_many = vec![x63.as_str(); 129].join(".");
        for (bad, reason) in [
            ("x".repeat(64), "label longer than 63 bytes"),
            (
                format!("a..{}", "x".repeat(64)),
                "label longer than 63 bytes",
            ),
            (format!(".{x63}"), "label longer than 63 bytes"),
            (too_many, "more than 128 labels"),
        ] {
            assert_eq!(
                put_dns_string(&mut m, &bad, None, &mut comp, "f"),
                Err(Error::Emit { field: "f", reason }),
                "{bad}"
            );
            assert!(m.is_empty());
        }
        // Text Samba's split cannot write (empty pieces, as a sender's label holding a dot
        // gives) goes out in the fewest labels, the dots that must stay inside them kept.
        for (text, wire) in [
            ("a..b", b"\x04a..b\x00".to_vec()),
            (".a", b"\x02.a\x00".to_vec()),
            ("a..", b"\x03a..\x00".to_vec()),
            (".", b"\x01.\x00".to_vec()),
            (
                &format!("a..{x63}"),
                [&b"\x02a.\x3f"[..], x63.as_bytes(), b"\x00"].concat(),
            ),
        ] {
            let mut out = vec![0xAA];
            put_dns_string(&mut out, text, None, &mut Compressor::default(), "f").unwrap();
            assert_eq!(out[1..], wire[..], "{text}");
            assert_eq!(
                read_dns_string(&out, 1, "f").unwrap(),
                (text.to_owned(), out.len())
            );
        }
        // A final dot stays in the last label, as Samba keeps it for user names.
        put_dns_string(&mut m, "user.", None, &mut comp, "f").unwrap();
        assert_eq!(m, b"\x05user.\x00");
        put_dns_string(&mut m, "a.user.", None, &mut comp, "f").unwrap();
        assert_eq!(&m[7..], b"\x01a\xc0\x00");
        assert_eq!(
            read_dns_string(&m, 7, "f").unwrap(),
            ("a.user.".to_owned(), 11)
        );
    }

    #[test]
    fn pointer_that_would_exceed_the_hop_limit_is_written_in_line() {
        // "a" at 0, then a chain of 9 pointers, then "b" + a pointer to the chain's end:
        // read from 21, "b.a" takes 10 hops, the most a reader follows.
        let mut msg = b"\x01a\x00".to_vec();
        for i in 0..9u16 {
            let prev = if i == 0 { 0 } else { 3 + 2 * (i - 1) };
            msg.extend_from_slice(&(0xc000 | prev).to_be_bytes());
        }
        assert_eq!(msg.len(), 21);
        msg.extend_from_slice(&[0x01, b'b', 0xc0, 19]);
        assert_eq!(read_dns_string(&msg, 21, "x").unwrap(), ("b.a".into(), 25));
        let mut comp = Compressor::default();
        comp.learn(&msg, 21);
        assert_eq!(comp.find("b.a"), Some(21));
        // A pointer to it from "c.b.a" would be the 11th hop: the labels go in line.
        put_dns_string(&mut msg, "c.b.a", None, &mut comp, "f").unwrap();
        assert_eq!(&msg[25..], b"\x01c\x01b\x01a\x00");
        // Those labels are learnt: "d.c.b.a" points at them.
        put_dns_string(&mut msg, "d.c.b.a", None, &mut comp, "f").unwrap();
        assert_eq!(&msg[32..], &[0x01, b'd', 0xc0, 25]);
    }

    /// docs/FUZZING.md finding 2: LOGON_SAM_LOGON_RESPONSE, V5. UnicodeLogonServer is
    /// `03 2E 2E DC` (U+2E03 and an unpaired U+DC2E, read as U+FFFD); DnsForestName is the
    /// pointer `C0 02` to the label `03 "..\xDC"` inside it.
    const V5_POINTER_INTO_LOSSY_UTF16: &str = concat!(
        "1300032e2edc0000000000000000000000000000000000000000000000000000",
        "000000000000000000000000c0020000000000000000000002000000ffffffff"
    );

    #[test]
    fn v5_pointer_into_lossy_utf16() {
        let input = crate::hex::decode(V5_POINTER_INTO_LOSSY_UTF16).unwrap();
        assert_eq!(input.len(), 64);
        let m = NetlogonMessage::parse(&input).unwrap();
        let NetlogonMessage::SamLogonResponse(p) = &m else {
            panic!("{m:?}")
        };
        assert_eq!(p.unicode_logon_server, "\u{2E03}\u{FFFD}");
        let v5 = p.v5.as_ref().unwrap();
        assert_eq!(v5.forest, "..\u{FFFD}");
        // The parsed value keeps the UTF-16 bytes the pointer leads into: same bytes out.
        assert_eq!(m.to_bytes().unwrap(), input);
        // Without its wire form, U+FFFD goes out as FD FF, where the pointer would now read
        // "..\xFD\xFF": the forest name is written afresh, as one label (Samba's split would
        // give empty labels).
        let mut built = p.clone();
        if let Some(v5) = built.v5.as_mut() {
            v5.wire = WireLayout::default();
        }
        let built = NetlogonMessage::SamLogonResponse(built);
        let out = built.to_bytes().unwrap();
        assert_eq!(&out[2..6], &[0x03, 0x2e, 0xfd, 0xff]);
        assert_eq!(&out[44..51], b"\x05..\xef\xbf\xbd\x00");
        assert_eq!(out.len(), input.len() + 5);
        assert_eq!(NetlogonMessage::parse(&out).unwrap(), m);
        // And that output is stable.
        assert_eq!(
            NetlogonMessage::parse(&out).unwrap().to_bytes().unwrap(),
            out
        );
        // A changed UTF-16 string drops its kept bytes, not the others'.
        let NetlogonMessage::SamLogonResponse(mut renamed) = m.clone() else {
            panic!()
        };
        renamed.user_name = "bob".into();
        let out = NetlogonMessage::SamLogonResponse(renamed.clone())
            .to_bytes()
            .unwrap();
        assert_eq!(&out[..8], &input[..8]);
        assert_eq!(&out[8..16], b"b\0o\0b\0\0\0");
        assert_eq!(
            NetlogonMessage::parse(&out).unwrap(),
            NetlogonMessage::SamLogonResponse(renamed)
        );
    }

    #[test]
    fn v5_with_lossy_utf16_and_short_tail_comes_out_the_same() {
        // From the fuzzer: a V5 response without NtVersion (the V5 bit it is recognised by is
        // in the Flags), an unpaired surrogate in UnicodeUserName and DnsHostName pointing
        // into it. Rewriting the host name would change the length and so the layout.
        let input = crate::hex::decode(concat!(
            "13005c005c00440043003100002961006c000223000000f302022e02022e0202",
            "2e020002ff02ff2e022eefffffffffff02022e02022e02022e02022e06020c00",
            "0d007e1100da0c0000000000400000000000000000005c000000000004636f72",
            "5d076578616d706c65035d6d00c04403646330c044c000020afd7e0300ffff"
        ))
        .unwrap();
        let m = NetlogonMessage::parse(&input).unwrap();
        assert!(format!("{m:?}").contains('\u{FFFD}'));
        assert_eq!(m.to_bytes().unwrap(), input);
    }

    #[test]
    fn dns_label_too_long_once_made_valid_utf8_is_invalid() {
        // The V5 forest name as one label of 22 bytes 0xFF: 66 bytes as U+FFFD, which no
        // split can write back. 21 such bytes (63 bytes of text) are fine.
        let v5 = |label: &[u8]| {
            [
                &[0x13, 0x00][..],
                &u16z("\\DC1"),
                &u16z(""),
                &u16z(""),
                &[0; 32],
                &[label.len() as u8],
                label,
                &[0, 0, 0],
                &[0; 8],
                &[2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
            ]
            .concat()
        };
        let at = 2 + 10 + 2 + 2 + 32;
        assert_eq!(
            NetlogonMessage::parse(&v5(&[0xff; 22])).unwrap_err(),
            Error::Invalid {
                field: "DnsForestName",
                offset: at,
                reason:
                    "a label is longer than 63 bytes once its invalid UTF-8 is replaced by U+FFFD",
            }
        );
        let ok = v5(&[0xff; 21]);
        let m = exact(&ok);
        let NetlogonMessage::SamLogonResponse(p) = &m else {
            panic!()
        };
        assert_eq!(p.v5.as_ref().unwrap().forest, "\u{FFFD}".repeat(21));
        // Dots inside such a label leave room to split it: still accepted.
        let mut dotted = [0xffu8; 40];
        dotted[20] = b'.';
        let m = exact(&v5(&dotted));
        let NetlogonMessage::SamLogonResponse(mut p) = m else {
            panic!()
        };
        if let Some(v5) = p.v5.as_mut() {
            v5.wire = WireLayout::default();
        }
        let out = NetlogonMessage::SamLogonResponse(p.clone())
            .to_bytes()
            .unwrap();
        assert_eq!(
            NetlogonMessage::parse(&out).unwrap(),
            NetlogonMessage::SamLogonResponse(p)
        );
        // The EX strings are checked the same way.
        let v = crate::hex::decode(EX_WINDOWS).unwrap();
        let ex = [&v[..24], &[22], &[0xfe; 22], &v[31..]].concat();
        assert!(matches!(
            NetlogonMessage::parse(&ex).unwrap_err(),
            Error::Invalid {
                field: "DnsForestName",
                offset: 24,
                ..
            }
        ));
    }

    // --- Unknown opcodes ------------------------------------------------------------------

    #[test]
    fn unknown_opcodes_are_kept() {
        for (v, op) in [
            (&[0x0a, 0x00, 1, 2, 3][..], 0x000a),
            (&[0x34, 0x12][..], 0x1234),
            (&[0x16, 0x00, 9][..], 0x16),
        ] {
            let m = exact(v);
            assert_eq!(m.opcode(), op);
            let NetlogonMessage::Unknown(u) = &m else {
                panic!()
            };
            assert_eq!(u.data, &v[2..]);
        }
        assert_eq!(command_name(0x000a), "NETLOGON_ANNOUNCE_UAS");
        assert_eq!(command_name(0x1234), "UNKNOWN");
        let fake = NetlogonMessage::Unknown(UnknownMessage {
            opcode: 0x12,
            data: vec![],
        });
        assert_eq!(field_of(fake.to_bytes().unwrap_err()), "Opcode");
        assert!(matches!(
            NetlogonMessage::parse(&[]).unwrap_err(),
            Error::Truncated {
                field: "Opcode",
                ..
            }
        ));
        assert!(matches!(
            NetlogonMessage::parse(&[7]).unwrap_err(),
            Error::Truncated {
                field: "Opcode",
                ..
            }
        ));
    }

    #[test]
    fn emit_appends_and_leaves_out_alone_on_error() {
        let mut out = vec![0xaa];
        NetlogonMessage::PrimaryQuery(PrimaryQuery::new("WKS1", "S"))
            .emit(&mut out)
            .unwrap();
        assert_eq!(out[0], 0xaa);
        // Alignment counts from the message, not from `out`.
        assert_eq!(
            &out[1..],
            NetlogonMessage::PrimaryQuery(PrimaryQuery::new("WKS1", "S"))
                .to_bytes()
                .unwrap()
        );
        let len = out.len();
        assert!(NetlogonMessage::PrimaryQuery(PrimaryQuery::new("A\0", "S"))
            .emit(&mut out)
            .is_err());
        assert_eq!(out.len(), len);
    }

    #[test]
    fn guid_text() {
        let g: Guid = "{6876EB1A-B2C6-4BCA-B69C-FEDA682E82FD}".parse().unwrap();
        assert_eq!(g.0[..4], [0x1a, 0xeb, 0x76, 0x68]);
        assert_eq!(
            format!("{g:?}"),
            "Guid(6876eb1a-b2c6-4bca-b69c-feda682e82fd)"
        );
        for bad in [
            "",
            "6876eb1a-b2c6-4bca-b69c",
            "6876eb1a-b2c6-4bca-b69c-feda682e82fz",
            "6876eb1ab2c6-4bca-b69c-feda682e82fd-",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad}");
        }
        assert_eq!(sid_string(&SID[..20]), None);
        assert_eq!(
            sid_string(&[1, 0, 0, 0, 0, 0, 0, 5]).as_deref(),
            Some("S-1-5")
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn json_field_names() {
        let ex = NetlogonMessage::SamLogonResponseEx(ex_built());
        let j = serde_json::to_value(&ex).unwrap();
        assert_eq!(j["domain_guid"], "6876eb1a-b2c6-4bca-b69c-feda682e82fd");
        assert_eq!(j["dns_host_name"], "dc1.corp.example.com");
        assert_eq!(j["netbios_computer_name"], "DC1");
        assert_eq!(j["client_site_name"], "Branch");
        assert_eq!(j["next_closest_site_name"], "HQ");
        assert_eq!(j["dc_sock_addr"]["address"], "10.0.0.1");
        assert_eq!(j["dc_sock_addr"]["sin_zero"], "0000000000000000");
        assert_eq!(j["nt_version"], 0x15);
        assert!(j.get("wire").is_none() && j.get("sbz").is_none() && j.get("opcode").is_none());

        let lm20 =
            NetlogonMessage::parse(&[&[0x07, 0x00][..], b"WFW1\0", b"S\0", &[0xff, 0xff]].concat())
                .unwrap();
        let j = serde_json::to_value(&lm20).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"computer_name": "WFW1", "mailslot_name": "S", "lm20_token": 0xffff})
        );

        let NetlogonMessage::SamLogonResponse(p) = NetlogonMessage::parse(&v5_bytes()).unwrap()
        else {
            panic!()
        };
        let j = serde_json::to_value(NetlogonMessage::SamLogonResponse(p)).unwrap();
        assert_eq!(j["forest"], "corp.example.com");
        assert_eq!(j["dc_ip_address"], "192.168.1.5");
        assert_eq!(j["null_guid"], "00000000-0000-0000-0000-000000000000");
        assert_eq!(j["unicode_logon_server"], "\\\\DC1");

        let j =
            serde_json::to_value(NetlogonMessage::parse(&[0x0a, 0, 0xbe, 0xef]).unwrap()).unwrap();
        assert_eq!(j, serde_json::json!({"data": "beef"}));
    }

    // --- Properties -----------------------------------------------------------------------

    fn oem() -> impl Strategy<Value = String> {
        "[ -~\u{a0}-\u{ff}]{0,15}"
    }

    fn wide() -> impl Strategy<Value = String> {
        prop_oneof!["[ -~]{0,12}", "\\PC{0,6}"]
    }

    fn dns() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::collection::vec("[a-zA-Z0-9-]{1,8}", 0..4).prop_map(|v| v.join(".")),
            1 => "[a-c.]{0,8}",
            1 => "\\PC{0,5}",
        ]
    }

    /// Site names drawn from a small set, so that pointers between them happen.
    fn site() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("HQ".to_owned()),
            Just("Default-First-Site-Name".to_owned()),
            Just(String::new()),
            dns()
        ]
    }

    fn tail() -> impl Strategy<Value = (Option<u32>, Option<u16>, Option<u16>)> {
        prop_oneof![
            4 => (any::<u32>(), any::<u16>(), any::<u16>()).prop_map(|(a, b, c)| (Some(a), Some(b), Some(c))),
            1 => (any::<Option<u32>>(), any::<Option<u16>>(), any::<Option<u16>>()),
        ]
    }

    fn trailing() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![3 => Just(Vec::new()), 1 => prop::collection::vec(any::<u8>(), 1..6)]
    }

    fn guid() -> impl Strategy<Value = Guid> {
        prop_oneof![Just(Guid::NULL), any::<[u8; 16]>().prop_map(Guid)]
    }

    fn message() -> BoxedStrategy<NetlogonMessage> {
        let query = (
            oem(),
            oem(),
            proptest::option::of(wide()),
            tail(),
            trailing(),
        )
            .prop_map(|(c, m, u, t, tr)| {
                NetlogonMessage::PrimaryQuery(PrimaryQuery {
                    computer_name: c,
                    mailslot_name: m,
                    unicode_computer_name: u,
                    nt_version: t.0,
                    lmnt_token: t.1,
                    lm20_token: t.2,
                    trailing: tr,
                })
            });
        let response = (
            oem(),
            proptest::option::of(wide()),
            proptest::option::of(wide()),
            tail(),
            trailing(),
        )
            .prop_map(|(n, u, d, t, tr)| {
                NetlogonMessage::PrimaryResponse(PrimaryResponse {
                    primary_dc_name: n,
                    unicode_primary_dc_name: u,
                    unicode_domain_name: d,
                    nt_version: t.0,
                    lmnt_token: t.1,
                    lm20_token: t.2,
                    trailing: tr,
                })
            });
        let request = (
            (any::<u16>(), wide(), wide(), oem(), any::<u32>()),
            prop_oneof![
                Just(Vec::new()),
                Just(SID.to_vec()),
                prop::collection::vec(any::<u8>(), 1..30)
            ],
            tail(),
            trailing(),
        )
            .prop_map(|((rc, c, u, m, acb), sid, t, tr)| {
                NetlogonMessage::SamLogonRequest(SamLogonRequest {
                    request_count: rc,
                    unicode_computer_name: c,
                    user_name: u,
                    mailslot_name: m,
                    allowable_account_control_bits: acb,
                    domain_sid: sid,
                    nt_version: t.0,
                    lmnt_token: t.1,
                    lm20_token: t.2,
                    trailing: tr,
                })
            });
        let v5 = proptest::option::of(
            (
                (guid(), guid()),
                (dns(), dns(), dns()),
                any::<[u8; 4]>(),
                any::<u32>(),
            )
                .prop_map(|((g, n), (f, d, h), ip, flags)| SamLogonResponseV5 {
                    domain_guid: g,
                    null_guid: n,
                    forest: f,
                    dns_domain: d,
                    dns_host_name: h,
                    dc_ip_address: Ipv4Addr::from(ip),
                    flags,
                    wire: WireLayout::default(),
                }),
        );
        let sam = (0u16..3, (wide(), wide(), wide()), v5, tail(), trailing()).prop_map(
            |(k, (s, u, d), v5, t, tr)| {
                let p = SamLogonResponse {
                    unicode_logon_server: s,
                    user_name: u,
                    unicode_domain_name: d,
                    v5,
                    nt_version: t.0,
                    lmnt_token: t.1,
                    lm20_token: t.2,
                    trailing: tr,
                };
                match k {
                    0 => NetlogonMessage::SamLogonResponse(p),
                    1 => NetlogonMessage::SamPauseResponse(p),
                    _ => NetlogonMessage::SamUserUnknown(p),
                }
            },
        );
        let sockaddr = proptest::option::of(
            (
                any::<[u8; 4]>(),
                any::<u16>(),
                prop_oneof![Just(vec![0; 8]), prop::collection::vec(any::<u8>(), 0..12)],
            )
                .prop_map(|(ip, port, zero)| DcSockAddr {
                    family: AF_INET,
                    port,
                    address: Ipv4Addr::from(ip),
                    sin_zero: zero,
                }),
        );
        let ex = (
            (0u16..3, any::<u16>(), any::<u32>(), guid()),
            (dns(), dns(), dns(), dns(), dns()),
            (dns(), site(), site()),
            sockaddr,
            proptest::option::of(site()),
            (any::<u32>(), any::<u16>(), any::<u16>()),
        )
            .prop_map(
                |(
                    (k, sbz, flags, g),
                    (f, d, h, nd, nc),
                    (u, ds, cs),
                    sa,
                    next,
                    (nt, lmnt, lm20),
                )| {
                    let p = SamLogonResponseEx {
                        sbz,
                        flags,
                        domain_guid: g,
                        forest: f,
                        dns_domain: d,
                        dns_host_name: h,
                        netbios_domain: nd,
                        netbios_computer_name: nc,
                        user_name: u,
                        dc_site_name: ds,
                        client_site_name: cs,
                        dc_sock_addr: sa,
                        next_closest_site_name: next,
                        nt_version: nt,
                        lmnt_token: lmnt,
                        lm20_token: lm20,
                        wire: WireLayout::default(),
                    };
                    match k {
                        0 => NetlogonMessage::SamLogonResponseEx(p),
                        1 => NetlogonMessage::SamPauseResponseEx(p),
                        _ => NetlogonMessage::SamUserUnknownEx(p),
                    }
                },
            );
        let unknown = (any::<u16>(), prop::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(op, data)| NetlogonMessage::Unknown(UnknownMessage { opcode: op, data }));
        prop_oneof![
            query.boxed(),
            response.boxed(),
            request.boxed(),
            sam.boxed(),
            ex.boxed(),
            unknown.boxed()
        ]
        .boxed()
    }

    /// Values in the shape senders produce: full tails, no trailing bytes, plain DNS names.
    fn canonical() -> BoxedStrategy<NetlogonMessage> {
        let name = || "[A-Z0-9]{1,15}";
        let host = || prop::collection::vec("[a-z0-9-]{1,10}", 1..4).prop_map(|v| v.join("."));
        prop_oneof![
            (name(), name(), any::<u32>())
                .prop_map(|(c, m, nt)| {
                    let mut q = PrimaryQuery::new(&c, &format!("\\MAILSLOT\\NET\\GETDC{m}"));
                    q.nt_version = Some(nt);
                    NetlogonMessage::PrimaryQuery(q)
                })
                .boxed(),
            (
                name(),
                name(),
                prop_oneof![Just(Vec::new()), Just(SID.to_vec())],
                any::<u32>()
            )
                .prop_map(|(c, u, sid, nt)| {
                    let mut q = SamLogonRequest::new(&c, &u, "\\MAILSLOT\\NET\\GETDC1", nt);
                    q.domain_sid = sid;
                    NetlogonMessage::SamLogonRequest(q)
                })
                .boxed(),
            (
                host(),
                host(),
                name(),
                name(),
                any::<bool>(),
                any::<bool>(),
                any::<[u8; 4]>()
            )
                .prop_map(|(domain, dc, nb, user, ip, closest, addr)| {
                    let mut p = SamLogonResponseEx {
                        forest: domain.clone(),
                        dns_domain: domain.clone(),
                        dns_host_name: format!("{dc}.{domain}"),
                        netbios_domain: nb,
                        netbios_computer_name: dc.to_uppercase(),
                        user_name: user,
                        dc_site_name: "Default-First-Site-Name".into(),
                        client_site_name: "Default-First-Site-Name".into(),
                        ..SamLogonResponseEx::default()
                    };
                    if ip {
                        p.dc_sock_addr = Some(DcSockAddr::new(Ipv4Addr::from(addr)));
                    }
                    if closest {
                        p.next_closest_site_name = Some("HQ".into());
                        p.nt_version |= nt_version::WITH_CLOSEST_SITE;
                    }
                    NetlogonMessage::SamLogonResponseEx(p)
                })
                .boxed(),
        ]
        .boxed()
    }

    proptest! {
        #[test]
        fn parse_of_emit_is_identity(m in message()) {
            if let Ok(bytes) = m.to_bytes() {
                prop_assert_eq!(NetlogonMessage::parse(&bytes).unwrap(), m.clone());
                // And the output is stable: emitting the parsed value gives the same bytes.
                prop_assert_eq!(NetlogonMessage::parse(&bytes).unwrap().to_bytes().unwrap(), bytes);
            }
        }

        #[test]
        fn canonical_values_always_emit(m in canonical()) {
            let bytes = m.to_bytes().unwrap();
            prop_assert_eq!(NetlogonMessage::parse(&bytes).unwrap(), m);
        }

        #[test]
        fn parse_never_panics(data in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = NetlogonMessage::parse(&data);
        }

        #[test]
        fn mutated_messages_emit_and_read_back(
            m in prop_oneof![message(), canonical()],
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
            do_cut in any::<bool>(),
        ) {
            let Ok(mut data) = m.to_bytes() else { return Ok(()) };
            for (i, b) in edits {
                let i = i.index(data.len());
                data[i] = b;
            }
            if do_cut {
                data.truncate(cut.index(data.len() + 1));
            }
            if let Ok(m) = NetlogonMessage::parse(&data) {
                let bytes = m.to_bytes().unwrap();
                prop_assert_eq!(bytes.len(), data.len());
                prop_assert_eq!(NetlogonMessage::parse(&bytes).unwrap(), m.clone());
                // V5 and EX responses come out byte for byte (see the module doc).
                let exact = match &m {
                    NetlogonMessage::SamLogonResponse(p)
                    | NetlogonMessage::SamPauseResponse(p)
                    | NetlogonMessage::SamUserUnknown(p) => p.v5.is_some(),
                    NetlogonMessage::SamLogonResponseEx(_)
                    | NetlogonMessage::SamPauseResponseEx(_)
                    | NetlogonMessage::SamUserUnknownEx(_) => true,
                    _ => false,
                };
                if exact {
                    prop_assert_eq!(bytes, data);
                }
            }
        }
    }
}
