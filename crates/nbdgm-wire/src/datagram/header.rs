//! Field view of the datagram-service header, RFC 1002 §4.4.1: MSG_TYPE, FLAGS (M, F,
//! SNT), DGM_ID, SOURCE_IP, SOURCE_PORT, then DGM_LENGTH and PACKET_OFFSET in data
//! datagrams (§4.4.2) or ERROR_CODE in a DATAGRAM ERROR (§4.4.3).
//!
//! [`DatagramHeader`] reads (and writes) these fields in place, in the style of smoltcp's
//! `field::` views: code outside the codec uses it instead of byte offsets.

use super::{Flags, MsgType, DATA_HEADER_LEN, SHORT_HEADER_LEN};
use crate::error::{Error, Result};
use std::net::Ipv4Addr;

/// Byte positions of the header fields (RFC 1002 §4.4.1–§4.4.3).
pub mod field {
    use core::ops::Range;

    pub const MSG_TYPE: usize = 0;
    pub const FLAGS: usize = 1;
    pub const DGM_ID: Range<usize> = 2..4;
    pub const SOURCE_IP: Range<usize> = 4..8;
    pub const SOURCE_PORT: Range<usize> = 8..10;
    /// Data datagrams (0x10–0x12) only.
    pub const DGM_LENGTH: Range<usize> = 10..12;
    /// Data datagrams (0x10–0x12) only.
    pub const PACKET_OFFSET: Range<usize> = 12..14;
    /// DATAGRAM ERROR (0x13) only.
    pub const ERROR_CODE: usize = 10;
    /// Start of the data section (SOURCE_NAME) of a data datagram.
    pub const DATA_SECTION: usize = 14;

    /// The M (more fragments) bit of FLAGS.
    pub const FLAG_M: u8 = 0x01;
    /// The F (first fragment) bit of FLAGS.
    pub const FLAG_F: u8 = 0x02;
}

/// A checked view of a datagram-service header in `buffer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramHeader<T: AsRef<[u8]>> {
    buffer: T,
}

fn be16(b: &[u8], at: core::ops::Range<usize>) -> u16 {
    let mut v = [0u8; 2];
    v.copy_from_slice(&b[at]);
    u16::from_be_bytes(v)
}

impl<T: AsRef<[u8]>> DatagramHeader<T> {
    /// A view of `buffer` after checking that it holds the common 10-byte header, and the
    /// 14-byte header when MSG_TYPE names a data datagram. MSG_TYPE itself is not checked:
    /// [`DatagramHeader::msg_type`] is `None` for codes the RFC does not define.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        let need = match b.get(field::MSG_TYPE).copied().and_then(MsgType::from_code) {
            Some(m) if m.is_data() => DATA_HEADER_LEN,
            _ => SHORT_HEADER_LEN,
        };
        if b.len() < need {
            return Err(Error::Truncated {
                field: "datagram header",
                offset: 0,
                need,
                have: b.len(),
            });
        }
        Ok(DatagramHeader { buffer })
    }

    /// A view of `buffer` without checks: the getters panic if it is shorter than the
    /// header its MSG_TYPE needs. For buffers known to hold one (a copy of a checked header).
    pub fn new_unchecked(buffer: T) -> Self {
        DatagramHeader { buffer }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// MSG_TYPE, `None` for a code the RFC does not define.
    pub fn msg_type(&self) -> Option<MsgType> {
        MsgType::from_code(self.buffer.as_ref()[field::MSG_TYPE])
    }

    /// True for DIRECT_UNIQUE, DIRECT_GROUP and BROADCAST.
    pub fn is_data(&self) -> bool {
        self.msg_type().is_some_and(MsgType::is_data)
    }

    pub fn flags(&self) -> Flags {
        Flags::from_byte(self.buffer.as_ref()[field::FLAGS])
    }

    pub fn dgm_id(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DGM_ID)
    }

    pub fn source_ip(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SOURCE_IP];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    pub fn source_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SOURCE_PORT)
    }

    /// DGM_LENGTH of a data datagram.
    pub fn dgm_length(&self) -> Option<u16> {
        self.is_data()
            .then(|| be16(self.buffer.as_ref(), field::DGM_LENGTH))
    }

    /// PACKET_OFFSET of a data datagram.
    pub fn packet_offset(&self) -> Option<u16> {
        self.is_data()
            .then(|| be16(self.buffer.as_ref(), field::PACKET_OFFSET))
    }

    /// ERROR_CODE of a DATAGRAM ERROR (absent when the packet ends after the header).
    pub fn error_code(&self) -> Option<u8> {
        match self.msg_type() {
            Some(MsgType::Error) => self.buffer.as_ref().get(field::ERROR_CODE).copied(),
            _ => None,
        }
    }

    /// The data section (names and user data, or a fragment's bytes) of a data datagram.
    pub fn data_section(&self) -> Option<&[u8]> {
        self.is_data()
            .then(|| &self.buffer.as_ref()[field::DATA_SECTION..])
    }

    /// The bytes from MSG_TYPE to SOURCE_PORT, the part every type shares.
    pub fn common(&self) -> &[u8] {
        &self.buffer.as_ref()[..SHORT_HEADER_LEN]
    }

    /// The whole header: 14 bytes for a data datagram (to PACKET_OFFSET), else 10.
    pub fn header_bytes(&self) -> &[u8] {
        let len = if self.is_data() {
            DATA_HEADER_LEN
        } else {
            SHORT_HEADER_LEN
        };
        &self.buffer.as_ref()[..len]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> DatagramHeader<T> {
    pub fn set_flags(&mut self, flags: Flags) {
        self.buffer.as_mut()[field::FLAGS] = flags.to_byte();
    }

    pub fn set_dgm_id(&mut self, id: u16) {
        self.buffer.as_mut()[field::DGM_ID].copy_from_slice(&id.to_be_bytes());
    }

    /// Writes DGM_LENGTH; does nothing unless this is a data datagram.
    pub fn set_dgm_length(&mut self, length: u16) {
        if self.is_data() {
            self.buffer.as_mut()[field::DGM_LENGTH].copy_from_slice(&length.to_be_bytes());
        }
    }

    /// Writes PACKET_OFFSET; does nothing unless this is a data datagram.
    pub fn set_packet_offset(&mut self, offset: u16) {
        if self.is_data() {
            self.buffer.as_mut()[field::PACKET_OFFSET].copy_from_slice(&offset.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagram::{Datagram, NodeType};
    use crate::name::Name;

    fn sample() -> Vec<u8> {
        Datagram::data(
            MsgType::DirectGroup,
            NodeType::M,
            0xBEEF,
            (Ipv4Addr::new(192, 0, 2, 7), 1138),
            Name::new("FRED", 0).unwrap(),
            Name::new("WORKGROUP", 0x1D).unwrap(),
            vec![9u8; 5],
        )
        .to_bytes()
        .unwrap()
    }

    #[test]
    fn reads_every_field_of_a_data_datagram() {
        let b = sample();
        let h = DatagramHeader::new_checked(&b[..]).unwrap();
        assert_eq!(h.msg_type(), Some(MsgType::DirectGroup));
        assert!(h.is_data());
        assert_eq!(h.flags(), Flags::single(NodeType::M));
        assert_eq!(h.dgm_id(), 0xBEEF);
        assert_eq!(h.source_ip(), Ipv4Addr::new(192, 0, 2, 7));
        assert_eq!(h.source_port(), 1138);
        assert_eq!(h.dgm_length(), Some(68 + 5));
        assert_eq!(h.packet_offset(), Some(0));
        assert_eq!(h.error_code(), None);
        assert_eq!(h.data_section().unwrap().len(), 68 + 5);
        assert_eq!(h.common(), &b[..10]);
        assert_eq!(h.header_bytes(), &b[..14]);
    }

    #[test]
    fn checks_the_length_the_type_needs() {
        let b = sample();
        assert!(DatagramHeader::new_checked(&b[..13]).is_err());
        assert!(DatagramHeader::new_checked(&b[..14]).is_ok());
        assert!(DatagramHeader::new_checked(&[][..]).is_err());
        // ERROR and QUERY packets have only the 10-byte header.
        let e = [0x13, 0x02, 0, 1, 10, 0, 0, 1, 0, 138, 0x82];
        let h = DatagramHeader::new_checked(&e[..]).unwrap();
        assert_eq!(h.msg_type(), Some(MsgType::Error));
        assert_eq!(h.error_code(), Some(0x82));
        assert_eq!(h.dgm_length(), None);
        assert_eq!(h.header_bytes(), &e[..10]);
        assert!(DatagramHeader::new_checked(&e[..9]).is_err());
        // An undefined MSG_TYPE is a view without a type.
        let mut u = e;
        u[0] = 0x17;
        let h = DatagramHeader::new_checked(&u[..]).unwrap();
        assert_eq!(h.msg_type(), None);
        assert!(!h.is_data());
    }

    #[test]
    fn msg_type_of_any_prefix() {
        let b = sample();
        assert_eq!(MsgType::of(&b[..1]), Some(MsgType::DirectGroup));
        assert_eq!(MsgType::of(&[]), None);
        assert_eq!(MsgType::of(&[0x16]), Some(MsgType::NegativeQueryResponse));
        assert_eq!(MsgType::of(&[0x17, 0, 0]), None);
    }

    #[test]
    fn writes_fields_in_place() {
        let mut b = sample();
        let mut h = DatagramHeader::new_checked(&mut b[..]).unwrap();
        h.set_dgm_id(7);
        h.set_flags(Flags {
            more: true,
            first: false,
            node_type: NodeType::H,
            reserved: 0,
        });
        h.set_dgm_length(1000);
        h.set_packet_offset(468);
        let d = Datagram::parse(&b).unwrap();
        assert_eq!(d.id, 7);
        assert!(d.flags.more && !d.flags.first);
        assert_eq!(d.flags.node_type, NodeType::H);
        assert_eq!(d.dgm_length(), Some(1000));
        assert!(matches!(
            d.body,
            crate::datagram::Body::Data { offset: 468, .. }
        ));
    }
}
