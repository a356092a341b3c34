//! Datagram-service packets, RFC 1002 §4.4 (layouts) and RFC 1001 §17 (semantics).
//!
//! Data datagrams (0x10–0x12) carry a 14-byte header, ERROR (0x13) and the three
//! QUERY types (0x14–0x16) only the first 10 bytes (DIGEST §2.1). Lengths are taken
//! from the buffer: a DGM_LENGTH that disagrees is a [`Warning`], not an error
//! (DIGEST §2.4). Non-first fragments carry a raw slice of the data section
//! (RFC 1001 §17.1.2), so their names are not parsed.

use crate::error::{Error, Result};
use crate::name::Name;
use crate::reader::Reader;
use core::fmt;
use std::net::Ipv4Addr;

pub mod header;
pub use header::{field, DatagramHeader};

/// Common header length of every datagram type.
pub const SHORT_HEADER_LEN: usize = 10;
/// Header length of data datagrams (0x10–0x12).
pub const DATA_HEADER_LEN: usize = 14;
/// Well-known datagram port (RFC 1002 §6).
pub const DGM_PORT: u16 = 138;

/// MSG_TYPE (RFC 1002 §4.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum MsgType {
    DirectUnique,
    DirectGroup,
    Broadcast,
    Error,
    QueryRequest,
    PositiveQueryResponse,
    NegativeQueryResponse,
}

impl MsgType {
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x10 => MsgType::DirectUnique,
            0x11 => MsgType::DirectGroup,
            0x12 => MsgType::Broadcast,
            0x13 => MsgType::Error,
            0x14 => MsgType::QueryRequest,
            0x15 => MsgType::PositiveQueryResponse,
            0x16 => MsgType::NegativeQueryResponse,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        match self {
            MsgType::DirectUnique => 0x10,
            MsgType::DirectGroup => 0x11,
            MsgType::Broadcast => 0x12,
            MsgType::Error => 0x13,
            MsgType::QueryRequest => 0x14,
            MsgType::PositiveQueryResponse => 0x15,
            MsgType::NegativeQueryResponse => 0x16,
        }
    }

    /// The RFC's name, e.g. `DIRECT_GROUP`.
    pub fn name(self) -> &'static str {
        match self {
            MsgType::DirectUnique => "DIRECT_UNIQUE",
            MsgType::DirectGroup => "DIRECT_GROUP",
            MsgType::Broadcast => "BROADCAST",
            MsgType::Error => "ERROR",
            MsgType::QueryRequest => "QUERY_REQUEST",
            MsgType::PositiveQueryResponse => "POSITIVE_QUERY_RESPONSE",
            MsgType::NegativeQueryResponse => "NEGATIVE_QUERY_RESPONSE",
        }
    }

    /// The MSG_TYPE of `packet` (its first byte, RFC 1002 §4.4.1), whatever its length;
    /// `None` when empty or for a code the RFC does not define.
    pub fn of(packet: &[u8]) -> Option<Self> {
        packet
            .get(header::field::MSG_TYPE)
            .copied()
            .and_then(Self::from_code)
    }

    /// 0x10–0x12 carry names and user data.
    pub fn is_data(self) -> bool {
        matches!(
            self,
            MsgType::DirectUnique | MsgType::DirectGroup | MsgType::Broadcast
        )
    }
}

/// Source end-node type, the SNT bits of FLAGS (RFC 1002 §4.4.1). The value 0b11 is
/// the NBDD in the RFC and an H-node in Microsoft's use (MS-MAIL <13>); it prints as "H".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum NodeType {
    B,
    P,
    M,
    H,
}

impl NodeType {
    pub fn from_bits(bits: u8) -> Self {
        match bits & 3 {
            0 => NodeType::B,
            1 => NodeType::P,
            2 => NodeType::M,
            _ => NodeType::H,
        }
    }

    pub fn bits(self) -> u8 {
        match self {
            NodeType::B => 0,
            NodeType::P => 1,
            NodeType::M => 2,
            NodeType::H => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::B => "B",
            NodeType::P => "P",
            NodeType::M => "M",
            NodeType::H => "H",
        }
    }
}

/// The FLAGS byte: M (0x01), F (0x02), SNT (0x0C); the reserved high nibble is kept
/// so that odd senders round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flags {
    pub more: bool,
    pub first: bool,
    pub node_type: NodeType,
    pub reserved: u8,
}

impl Flags {
    /// An unfragmented datagram from a node of type `node_type`.
    pub fn single(node_type: NodeType) -> Self {
        Flags {
            more: false,
            first: true,
            node_type,
            reserved: 0,
        }
    }

    pub fn from_byte(b: u8) -> Self {
        Flags {
            more: b & 0x01 != 0,
            first: b & 0x02 != 0,
            node_type: NodeType::from_bits(b >> 2),
            reserved: b >> 4,
        }
    }

    pub fn to_byte(self) -> u8 {
        (u8::from(self.more))
            | (u8::from(self.first) << 1)
            | (self.node_type.bits() << 2)
            | (self.reserved << 4)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Flags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Flags", 3)?;
        st.serialize_field("more", &self.more)?;
        st.serialize_field("first", &self.first)?;
        st.serialize_field("node_type", self.node_type.as_str())?;
        st.end()
    }
}

/// DATAGRAM ERROR codes (RFC 1002 §4.4.3).
pub const ERR_DESTINATION_NAME_NOT_PRESENT: u8 = 0x82;
pub const ERR_INVALID_SOURCE_NAME_FORMAT: u8 = 0x83;
pub const ERR_INVALID_DESTINATION_NAME_FORMAT: u8 = 0x84;

/// Text for an error code; `None` for codes the RFC does not define.
pub fn error_code_name(code: u8) -> Option<&'static str> {
    match code {
        ERR_DESTINATION_NAME_NOT_PRESENT => Some("DESTINATION NAME NOT PRESENT"),
        ERR_INVALID_SOURCE_NAME_FORMAT => Some("INVALID SOURCE NAME FORMAT"),
        ERR_INVALID_DESTINATION_NAME_FORMAT => Some("INVALID DESTINATION NAME FORMAT"),
        _ => None,
    }
}

/// Body of a data datagram (0x10–0x12). `T` holds the bytes: `Vec<u8>` for an owned
/// packet, `&[u8]` for a zero-copy view of a received buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataBody<T = Vec<u8>> {
    /// An unfragmented datagram or a first fragment: both names, then user data.
    Names {
        source_name: Name,
        destination_name: Name,
        user_data: T,
    },
    /// A fragment after the first (F = 0): bytes of the data section from
    /// PACKET_OFFSET on. Names are only in the first fragment (RFC 1001 §17.1.2).
    Continuation { data: T },
}

/// What follows the common header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<T = Vec<u8>> {
    Data {
        /// DGM_LENGTH. `None`: computed on emit (names + user data, RFC 1002 §5.3.1).
        /// `Some`: emitted as given (fragments carry the total; odd senders differ).
        /// Parsing yields `None` whenever the field equals the bytes present.
        length: Option<u16>,
        /// PACKET_OFFSET: data-section offset of this fragment.
        offset: u16,
        body: DataBody<T>,
    },
    Error {
        code: u8,
    },
    Query {
        destination_name: Name,
    },
}

/// One datagram-service packet; [`Datagram::parse`] gives an owned one,
/// [`Datagram::parse_ref`] a view that borrows the data bytes from the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram<T = Vec<u8>> {
    pub msg_type: MsgType,
    pub flags: Flags,
    pub id: u16,
    pub source_ip: Ipv4Addr,
    pub source_port: u16,
    pub body: Body<T>,
}

/// Something odd but tolerated (DIGEST §2.4, §2.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// DGM_LENGTH differs from the data-section bytes present.
    LengthMismatch { declared: u16, actual: usize },
    /// Reserved FLAGS bits set.
    ReservedFlags(u8),
    /// Bytes after an ERROR or QUERY packet.
    TrailingBytes(usize),
    /// A fragment flag combination the RFC does not use (F = 0 with offset 0, ...).
    OddFragment,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::LengthMismatch { declared, actual } => write!(
                f,
                "DGM_LENGTH {declared} disagrees with the {actual} data-section bytes present"
            ),
            Warning::ReservedFlags(b) => write!(f, "reserved FLAGS bits set (0x{b:x}0)"),
            Warning::TrailingBytes(n) => write!(f, "{n} trailing bytes after the packet"),
            Warning::OddFragment => write!(f, "non-first fragment with PACKET_OFFSET 0"),
        }
    }
}

impl Datagram {
    /// Parse a UDP payload, discarding warnings.
    pub fn parse(buf: &[u8]) -> Result<Datagram> {
        Self::parse_with_warnings(buf, &mut Vec::new())
    }

    /// Parse a UDP payload; tolerated oddities are appended to `warnings`.
    pub fn parse_with_warnings(buf: &[u8], warnings: &mut Vec<Warning>) -> Result<Datagram> {
        Ok(Datagram::parse_ref(buf, warnings)?.map(<[u8]>::to_vec))
    }
}

impl<'a> Datagram<&'a [u8]> {
    /// Parse without copying: user data and fragment bytes borrow from `buf`.
    /// Tolerated oddities are appended to `warnings`.
    pub fn parse_ref(buf: &'a [u8], warnings: &mut Vec<Warning>) -> Result<Self> {
        parse_ref(buf, warnings)
    }
}

impl<T: AsRef<[u8]>> Datagram<T> {
    /// The same packet with its byte storage converted by `f`.
    pub fn map<U>(self, f: impl Fn(T) -> U) -> Datagram<U> {
        let body = match self.body {
            Body::Data {
                length,
                offset,
                body,
            } => Body::Data {
                length,
                offset,
                body: match body {
                    DataBody::Names {
                        source_name,
                        destination_name,
                        user_data,
                    } => DataBody::Names {
                        source_name,
                        destination_name,
                        user_data: f(user_data),
                    },
                    DataBody::Continuation { data } => DataBody::Continuation { data: f(data) },
                },
            },
            Body::Error { code } => Body::Error { code },
            Body::Query { destination_name } => Body::Query { destination_name },
        };
        Datagram {
            msg_type: self.msg_type,
            flags: self.flags,
            id: self.id,
            source_ip: self.source_ip,
            source_port: self.source_port,
            body,
        }
    }

    /// An unfragmented data datagram with computed lengths.
    pub fn data(
        msg_type: MsgType,
        node_type: NodeType,
        id: u16,
        source: (Ipv4Addr, u16),
        source_name: Name,
        destination_name: Name,
        user_data: T,
    ) -> Self {
        Datagram {
            msg_type,
            flags: Flags::single(node_type),
            id,
            source_ip: source.0,
            source_port: source.1,
            body: Body::Data {
                length: None,
                offset: 0,
                body: DataBody::Names {
                    source_name,
                    destination_name,
                    user_data,
                },
            },
        }
    }

    /// Bytes of the data section (names + user data) this packet carries.
    pub fn data_section_len(&self) -> usize {
        match &self.body {
            Body::Data { body, .. } => match body {
                DataBody::Names {
                    source_name,
                    destination_name,
                    user_data,
                } => {
                    source_name.encoded_len()
                        + destination_name.encoded_len()
                        + user_data.as_ref().len()
                }
                DataBody::Continuation { data } => data.as_ref().len(),
            },
            _ => 0,
        }
    }

    /// The DGM_LENGTH this packet carries on the wire.
    pub fn dgm_length(&self) -> Option<u16> {
        match &self.body {
            Body::Data { length, .. } => {
                Some(length.unwrap_or(self.data_section_len().min(usize::from(u16::MAX)) as u16))
            }
            _ => None,
        }
    }

    pub fn source_name(&self) -> Option<&Name> {
        match &self.body {
            Body::Data {
                body: DataBody::Names { source_name, .. },
                ..
            } => Some(source_name),
            _ => None,
        }
    }

    pub fn destination_name(&self) -> Option<&Name> {
        match &self.body {
            Body::Data {
                body: DataBody::Names {
                    destination_name, ..
                },
                ..
            } => Some(destination_name),
            Body::Query { destination_name } => Some(destination_name),
            _ => None,
        }
    }

    pub fn user_data(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Data {
                body: DataBody::Names { user_data, .. },
                ..
            } => Some(user_data.as_ref()),
            _ => None,
        }
    }

    /// Encoded size.
    pub fn len(&self) -> usize {
        match &self.body {
            Body::Data { .. } => DATA_HEADER_LEN + self.data_section_len(),
            Body::Error { .. } => SHORT_HEADER_LEN + 1,
            Body::Query { destination_name } => SHORT_HEADER_LEN + destination_name.encoded_len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Append the packet. Fails if the body does not fit the message type or the data
    /// section exceeds 65535 bytes.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        let body_fits = match &self.body {
            Body::Data { .. } => self.msg_type.is_data(),
            Body::Error { .. } => self.msg_type == MsgType::Error,
            Body::Query { .. } => matches!(
                self.msg_type,
                MsgType::QueryRequest
                    | MsgType::PositiveQueryResponse
                    | MsgType::NegativeQueryResponse
            ),
        };
        if !body_fits {
            return Err(Error::emit("body", "body does not match MSG_TYPE"));
        }
        if self.flags.reserved > 0x0F {
            return Err(Error::emit("FLAGS", "reserved bits exceed the high nibble"));
        }
        out.reserve(self.len());
        out.push(self.msg_type.code());
        out.push(self.flags.to_byte());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.source_ip.octets());
        out.extend_from_slice(&self.source_port.to_be_bytes());
        match &self.body {
            Body::Data {
                length,
                offset,
                body,
            } => {
                let computed = u16::try_from(self.data_section_len()).map_err(|_| {
                    Error::emit("DGM_LENGTH", "data section longer than 65535 bytes")
                })?;
                out.extend_from_slice(&length.unwrap_or(computed).to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                match body {
                    DataBody::Names {
                        source_name,
                        destination_name,
                        user_data,
                    } => {
                        source_name.emit(out);
                        destination_name.emit(out);
                        out.extend_from_slice(user_data.as_ref());
                    }
                    DataBody::Continuation { data } => out.extend_from_slice(data.as_ref()),
                }
            }
            Body::Error { code } => out.push(*code),
            Body::Query { destination_name } => destination_name.emit(out),
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        crate::emit_to_vec(self.len(), |v| self.emit(v))
    }
}

fn parse_ref<'a>(buf: &'a [u8], warnings: &mut Vec<Warning>) -> Result<Datagram<&'a [u8]>> {
    let mut r = Reader::new(buf);
    let code = r.u8("MSG_TYPE")?;
    let msg_type =
        MsgType::from_code(code).ok_or(Error::invalid("MSG_TYPE", 0, "unknown datagram type"))?;
    let flags = Flags::from_byte(r.u8("FLAGS")?);
    if flags.reserved != 0 {
        warnings.push(Warning::ReservedFlags(flags.reserved));
    }
    let id = r.u16_be("DGM_ID")?;
    let source_ip = Ipv4Addr::from(r.array::<4>("SOURCE_IP")?);
    let source_port = r.u16_be("SOURCE_PORT")?;
    let body = match msg_type {
        MsgType::DirectUnique | MsgType::DirectGroup | MsgType::Broadcast => {
            let declared = r.u16_be("DGM_LENGTH")?;
            let offset = r.u16_be("PACKET_OFFSET")?;
            let section = buf.len() - DATA_HEADER_LEN;
            let body = if flags.first {
                let (source_name, p) =
                    Name::parse(buf, r.pos()).map_err(|e| e.in_field("SOURCE_NAME"))?;
                let (destination_name, p) =
                    Name::parse(buf, p).map_err(|e| e.in_field("DESTINATION_NAME"))?;
                DataBody::Names {
                    source_name,
                    destination_name,
                    user_data: buf.get(p..).unwrap_or(&[]),
                }
            } else {
                if offset == 0 {
                    warnings.push(Warning::OddFragment);
                }
                DataBody::Continuation { data: r.rest() }
            };
            // Fragments carry the total length, so only check unfragmented ones.
            let unfragmented = flags.first && !flags.more;
            // Canonical form: `None` whenever the field equals the bytes present.
            let length = if usize::from(declared) == section {
                None
            } else {
                if unfragmented {
                    warnings.push(Warning::LengthMismatch {
                        declared,
                        actual: section,
                    });
                }
                Some(declared)
            };
            Body::Data {
                length,
                offset,
                body,
            }
        }
        MsgType::Error => Body::Error {
            code: r.u8("ERROR_CODE")?,
        },
        MsgType::QueryRequest | MsgType::PositiveQueryResponse | MsgType::NegativeQueryResponse => {
            let (destination_name, p) =
                Name::parse(buf, r.pos()).map_err(|e| e.in_field("DESTINATION_NAME"))?;
            r = Reader::at(buf, p);
            Body::Query { destination_name }
        }
    };
    if !msg_type.is_data() && !r.is_empty() {
        warnings.push(Warning::TrailingBytes(r.remaining()));
    }
    Ok(Datagram {
        msg_type,
        flags,
        id,
        source_ip,
        source_port,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    fn vector(prefix: &str) -> Vec<u8> {
        let json: serde_json::Value =
            serde_json::from_str(include_str!("../tests/data/test_vectors.json")).unwrap();
        let map = json["datagrams"].as_object().unwrap();
        let (_, v) = map.iter().find(|(k, _)| k.starts_with(prefix)).unwrap();
        hex::decode(v.as_str().unwrap()).unwrap()
    }

    #[test]
    fn host_announcement_vector() {
        let bytes = vector("direct_group_hostannouncement");
        assert_eq!(bytes.len(), 201);
        let mut w = Vec::new();
        let d = Datagram::parse_with_warnings(&bytes, &mut w).unwrap();
        assert!(w.is_empty());
        assert_eq!(d.msg_type, MsgType::DirectGroup);
        assert_eq!(d.flags, Flags::single(NodeType::B));
        assert_eq!(d.id, 0x1234);
        assert_eq!(d.source_ip, Ipv4Addr::new(192, 168, 1, 10));
        assert_eq!(d.source_port, 138);
        assert_eq!(d.dgm_length(), Some(187));
        assert_eq!(d.source_name().unwrap().to_string(), "FRED<00>");
        assert_eq!(d.destination_name().unwrap().to_string(), "WORKGROUP<1d>");
        assert_eq!(d.user_data().unwrap().len(), 201 - 14 - 68);
        assert_eq!(d.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn error_and_query_vectors() {
        let e = vector("error 0x82");
        let d = Datagram::parse(&e).unwrap();
        assert_eq!(d.body, Body::Error { code: 0x82 });
        assert_eq!(d.source_ip, Ipv4Addr::new(192, 168, 1, 20));
        assert_eq!(d.to_bytes().unwrap(), e);

        let q = vector("query_request");
        let d = Datagram::parse(&q).unwrap();
        assert_eq!(d.msg_type, MsgType::QueryRequest);
        assert_eq!(d.flags.node_type, NodeType::P);
        assert!(d.flags.first);
        assert_eq!(d.destination_name().unwrap().to_string(), "WORKGROUP<1e>");
        assert_eq!(d.to_bytes().unwrap(), q);

        let p = vector("positive_query_response");
        let d = Datagram::parse(&p).unwrap();
        assert_eq!(d.msg_type, MsgType::PositiveQueryResponse);
        assert_eq!(d.flags.node_type, NodeType::H);
        assert_eq!(d.to_bytes().unwrap(), p);
    }

    #[test]
    fn length_mismatch_is_a_warning() {
        let mut bytes = vector("direct_group_hostannouncement");
        bytes[10..12].copy_from_slice(&201u16.to_be_bytes());
        let mut w = Vec::new();
        let d = Datagram::parse_with_warnings(&bytes, &mut w).unwrap();
        assert_eq!(
            w,
            vec![Warning::LengthMismatch {
                declared: 201,
                actual: 187
            }]
        );
        // The declared value is kept so that the packet re-emits unchanged.
        assert_eq!(d.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn malformed_datagrams() {
        let good = vector("direct_group_hostannouncement");
        for n in 0..48 {
            assert!(Datagram::parse(&good[..n]).is_err(), "prefix {n}");
        }
        // Unknown type.
        let mut t = good.clone();
        t[0] = 0x17;
        assert!(matches!(
            Datagram::parse(&t),
            Err(Error::Invalid {
                field: "MSG_TYPE",
                ..
            })
        ));
        // Error packet one byte short.
        assert!(Datagram::parse(&vector("error 0x82")[..10]).is_err());
        // Compression pointer in a datagram name.
        let mut p = good.clone();
        p[48] = 0xC0;
        p[49] = 0x0E;
        assert!(matches!(
            Datagram::parse(&p),
            Err(Error::Invalid {
                field: "DESTINATION_NAME",
                ..
            })
        ));
        // Illegal first-level character in the destination name.
        let mut c = good.clone();
        c[49] = b'Z';
        assert!(matches!(
            Datagram::parse(&c),
            Err(Error::Invalid {
                field: "DESTINATION_NAME",
                offset: 49,
                ..
            })
        ));
    }

    #[test]
    fn fragments() {
        let first = Datagram {
            msg_type: MsgType::DirectUnique,
            flags: Flags {
                more: true,
                first: true,
                node_type: NodeType::B,
                reserved: 0,
            },
            id: 7,
            source_ip: Ipv4Addr::new(198, 51, 100, 1),
            source_port: 138,
            body: Body::Data {
                length: Some(1000),
                offset: 0,
                body: DataBody::Names {
                    source_name: Name::new("A", 0).unwrap(),
                    destination_name: Name::new("B", 0).unwrap(),
                    user_data: vec![1; 400],
                },
            },
        };
        let bytes = first.to_bytes().unwrap();
        let mut w = Vec::new();
        assert_eq!(
            Datagram::parse_with_warnings(&bytes, &mut w).unwrap(),
            first
        );
        assert!(w.is_empty());
        let next = Datagram {
            flags: Flags {
                more: false,
                first: false,
                ..first.flags
            },
            body: Body::Data {
                length: Some(1000),
                offset: 468,
                body: DataBody::Continuation { data: vec![2; 532] },
            },
            ..first
        };
        let bytes = next.to_bytes().unwrap();
        assert_eq!(Datagram::parse(&bytes).unwrap(), next);
    }

    #[test]
    fn emit_rejects_mismatched_body() {
        let d: Datagram = Datagram {
            msg_type: MsgType::Error,
            flags: Flags::single(NodeType::B),
            id: 1,
            source_ip: Ipv4Addr::LOCALHOST,
            source_port: 138,
            body: Body::Query {
                destination_name: Name::wildcard(),
            },
        };
        assert!(d.to_bytes().is_err());
    }

    #[test]
    fn trailing_bytes_after_query() {
        let mut q = vector("query_request");
        q.extend_from_slice(&[0, 0]);
        let mut w = Vec::new();
        Datagram::parse_with_warnings(&q, &mut w).unwrap();
        assert_eq!(w, vec![Warning::TrailingBytes(2)]);
    }
}
