//! Field view of the name-service header, RFC 1002 §4.2.1.1: NAME_TRN_ID, the flags word
//! (R, OPCODE, NM_FLAGS, RCODE) and the four section counts QDCOUNT, ANCOUNT, NSCOUNT,
//! ARCOUNT; RCODE values from §4.2.6 and §4.2.14.
//!
//! [`NbnsHeader`] reads (and writes) these fields in place, in the style of smoltcp's
//! `field::` views: code outside the codec uses it instead of byte offsets and shifts.

use super::{Opcode, FLAG_RESPONSE, HEADER_LEN};
use crate::error::{Error, Result};

/// Byte positions of the header fields, and bit positions within the flags word.
pub mod field {
    use core::ops::Range;

    pub const NAME_TRN_ID: Range<usize> = 0..2;
    /// R, OPCODE, NM_FLAGS and RCODE.
    pub const FLAGS: Range<usize> = 2..4;
    pub const QDCOUNT: Range<usize> = 4..6;
    pub const ANCOUNT: Range<usize> = 6..8;
    pub const NSCOUNT: Range<usize> = 8..10;
    pub const ARCOUNT: Range<usize> = 10..12;

    /// OPCODE: bits 1–4 of the flags word (bit 0 is the most significant).
    pub const OPCODE_SHIFT: u32 = 11;
    pub const OPCODE_MASK: u16 = 0x0F;
    /// NM_FLAGS: AA, TC, RD, RA, two zero bits, B.
    pub const NM_FLAGS_SHIFT: u32 = 4;
    pub const NM_FLAGS_MASK: u16 = 0x7F;
    /// RCODE: the low four bits.
    pub const RCODE_MASK: u16 = 0x0F;
}

/// RCODE values (RFC 1002 §4.2.6, §4.2.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rcode {
    Ok,
    FmtErr,
    SrvErr,
    NamErr,
    ImpErr,
    RfsErr,
    ActErr,
    CftErr,
    Other(u8),
}

impl Rcode {
    pub fn from_bits(v: u8) -> Self {
        match v & 0x0F {
            0 => Rcode::Ok,
            1 => Rcode::FmtErr,
            2 => Rcode::SrvErr,
            3 => Rcode::NamErr,
            4 => Rcode::ImpErr,
            5 => Rcode::RfsErr,
            6 => Rcode::ActErr,
            7 => Rcode::CftErr,
            o => Rcode::Other(o),
        }
    }

    pub const fn bits(self) -> u8 {
        match self {
            Rcode::Ok => 0,
            Rcode::FmtErr => 1,
            Rcode::SrvErr => 2,
            Rcode::NamErr => 3,
            Rcode::ImpErr => 4,
            Rcode::RfsErr => 5,
            Rcode::ActErr => 6,
            Rcode::CftErr => 7,
            Rcode::Other(o) => o & 0x0F,
        }
    }

    /// The RFC's name, e.g. `NAM_ERR`; "unknown" for the others.
    pub fn name(self) -> &'static str {
        match self {
            Rcode::Ok => "OK",
            Rcode::FmtErr => "FMT_ERR",
            Rcode::SrvErr => "SRV_ERR",
            Rcode::NamErr => "NAM_ERR",
            Rcode::ImpErr => "IMP_ERR",
            Rcode::RfsErr => "RFS_ERR",
            Rcode::ActErr => "ACT_ERR",
            Rcode::CftErr => "CFT_ERR",
            Rcode::Other(_) => "unknown",
        }
    }

    /// The RCODE as placed in the flags word.
    pub const fn to_flags(self) -> u16 {
        self.bits() as u16 & field::RCODE_MASK
    }

    /// The RCODE of a flags word.
    pub fn from_flags(flags: u16) -> Self {
        Rcode::from_bits((flags & field::RCODE_MASK) as u8)
    }
}

impl Opcode {
    /// The OPCODE as placed in the flags word.
    pub const fn to_flags(self) -> u16 {
        (self.bits() as u16 & field::OPCODE_MASK) << field::OPCODE_SHIFT
    }

    /// The OPCODE of a flags word.
    pub fn from_flags(flags: u16) -> Self {
        Opcode::from_bits(((flags >> field::OPCODE_SHIFT) & field::OPCODE_MASK) as u8)
    }
}

/// A checked view of a name-service header in `buffer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NbnsHeader<T: AsRef<[u8]>> {
    buffer: T,
}

fn be16(b: &[u8], at: core::ops::Range<usize>) -> u16 {
    let mut v = [0u8; 2];
    v.copy_from_slice(&b[at]);
    u16::from_be_bytes(v)
}

impl<T: AsRef<[u8]>> NbnsHeader<T> {
    /// A view of `buffer` after checking that it holds the 12-byte header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let have = buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(Error::Truncated {
                field: "name service header",
                offset: 0,
                need: HEADER_LEN,
                have,
            });
        }
        Ok(NbnsHeader { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn trn_id(&self) -> u16 {
        be16(self.buffer.as_ref(), field::NAME_TRN_ID)
    }

    /// The whole flags word.
    pub fn flags(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS)
    }

    /// The R bit.
    pub fn is_response(&self) -> bool {
        self.flags() & FLAG_RESPONSE != 0
    }

    pub fn opcode(&self) -> Opcode {
        Opcode::from_flags(self.flags())
    }

    /// NM_FLAGS as a 7-bit value (AA = 0x40 ... B = 0x01).
    pub fn nm_flags(&self) -> u8 {
        ((self.flags() >> field::NM_FLAGS_SHIFT) & field::NM_FLAGS_MASK) as u8
    }

    pub fn rcode(&self) -> Rcode {
        Rcode::from_flags(self.flags())
    }

    pub fn qdcount(&self) -> u16 {
        be16(self.buffer.as_ref(), field::QDCOUNT)
    }

    pub fn ancount(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ANCOUNT)
    }

    pub fn nscount(&self) -> u16 {
        be16(self.buffer.as_ref(), field::NSCOUNT)
    }

    pub fn arcount(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ARCOUNT)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NbnsHeader<T> {
    pub fn set_trn_id(&mut self, id: u16) {
        self.buffer.as_mut()[field::NAME_TRN_ID].copy_from_slice(&id.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::Name;
    use crate::nbns::{Packet, FLAG_B, FLAG_RD, TYPE_NB};

    #[test]
    fn reads_every_field() {
        let flags = Opcode::MultiHomedRegistration.to_flags() | FLAG_RD | FLAG_B;
        let mut p = Packet::request(0x4242, flags, Name::new("FRED", 0).unwrap(), TYPE_NB);
        p.additional = vec![];
        let b = p.to_bytes().unwrap();
        let h = NbnsHeader::new_checked(&b[..]).unwrap();
        assert_eq!(h.trn_id(), 0x4242);
        assert_eq!(h.flags(), 0x7910);
        assert!(!h.is_response());
        assert_eq!(h.opcode(), Opcode::MultiHomedRegistration);
        assert_eq!(h.nm_flags(), 0x11); // RD and B
        assert_eq!(h.rcode(), Rcode::Ok);
        assert_eq!(
            (h.qdcount(), h.ancount(), h.nscount(), h.arcount()),
            (1, 0, 0, 0)
        );
    }

    #[test]
    fn response_rcode_and_counts() {
        let b = [
            0x00, 0x07, 0x85, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x03,
        ];
        let h = NbnsHeader::new_checked(&b[..]).unwrap();
        assert!(h.is_response());
        assert_eq!(h.opcode(), Opcode::Query);
        assert_eq!(h.nm_flags(), 0x50); // AA and RD
        assert_eq!(h.rcode(), Rcode::NamErr);
        assert_eq!(h.rcode().name(), "NAM_ERR");
        assert_eq!(
            (h.qdcount(), h.ancount(), h.nscount(), h.arcount()),
            (0, 1, 2, 3)
        );
        assert!(NbnsHeader::new_checked(&b[..11]).is_err());
    }

    #[test]
    fn opcode_and_rcode_round_trip_through_the_flags_word() {
        for bits in 0..16u8 {
            let op = Opcode::from_bits(bits);
            assert_eq!(Opcode::from_flags(op.to_flags() | 0x8000 | 0x7F0), op);
            let rc = Rcode::from_bits(bits);
            assert_eq!(rc.bits(), bits);
            assert_eq!(Rcode::from_flags(rc.to_flags() | 0xFFF0), rc);
        }
    }

    #[test]
    fn writes_the_transaction_id() {
        let mut b = [0u8; 12];
        NbnsHeader::new_checked(&mut b[..])
            .unwrap()
            .set_trn_id(0xA1B2);
        assert_eq!(&b[..2], &[0xA1, 0xB2]);
    }
}
