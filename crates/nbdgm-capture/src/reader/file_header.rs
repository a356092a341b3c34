//! The capture file header: the magic number, then the pcapng section header block
//! (draft-ietf-opsawg-pcapng §4.1) or the pcap file header (draft-ietf-opsawg-pcap §4),
//! read far enough to open the `pcap-parser` reader over the rest.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use pcap_parser::{LegacyPcapReader, PcapNGReader};

use super::{
    read_up_to, u32_at, Inner, Interface, Source, MAX_NG_BLOCK, MAX_PCAP_RECORD, MAX_PCAP_SNAPLEN,
};
use crate::error::CaptureError;
use crate::time::TsConv;
use crate::CaptureFormat;

pub(super) const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
pub(super) const PCAPNG_BOM: u32 = 0x1A2B_3C4D;
pub(super) const PCAPNG_BOM_SWAPPED: u32 = 0x4D3C_2B1A;
pub(super) const PCAPNG_PB: u32 = 0x0000_0002;
/// pcap magic numbers as read big-endian: microsecond, nanosecond and "modified" files
/// in either byte order.
pub(super) const PCAP_USEC_BE: u32 = 0xA1B2_C3D4;
pub(super) const PCAP_USEC_LE: u32 = 0xD4C3_B2A1;
pub(super) const PCAP_NSEC_BE: u32 = 0xA1B2_3C4D;
pub(super) const PCAP_NSEC_LE: u32 = 0x4D3C_B2A1;
pub(super) const PCAP_MODIFIED_LE: u32 = 0x34CD_B2A1;
pub(super) const PCAP_MODIFIED_BE: u32 = 0xA1B2_CD34;

/// The input with the bytes already read from it, before the format reader takes over.
pub(super) struct Head<R> {
    pub(super) input: R,
    pub(super) prefix: Vec<u8>,
    pub(super) error: Arc<Mutex<Option<io::Error>>>,
    pub(super) capacity: usize,
}

impl<R> Head<R> {
    pub(super) fn source(self) -> (Source<R>, usize) {
        let src = Source {
            prefix: self.prefix,
            pos: 0,
            inner: self.input,
            error: self.error,
        };
        (src, self.capacity)
    }
}

/// The format reader and what the file header said.
pub(super) struct Opened<R: Read> {
    pub(super) inner: Inner<R>,
    pub(super) format: CaptureFormat,
    pub(super) pcap_iface: Option<Interface>,
    pub(super) pcap_nanos: bool,
    pub(super) pcap_max_caplen: u32,
    pub(super) ng_big_endian: bool,
    pub(super) capacity: usize,
}

/// Reads the first four bytes: the magic number, read big-endian.
pub(super) fn read_magic<R: Read>(
    input: &mut R,
    prefix: &mut Vec<u8>,
) -> Result<u32, CaptureError> {
    read_up_to(input, prefix, 4)?;
    match u32_at(prefix, 0, true) {
        Some(m) => Ok(m),
        None if prefix.is_empty() => Err(CaptureError::Empty),
        None => Err(CaptureError::TooShort { len: prefix.len() }),
    }
}

/// Reads the pcapng section header block and opens the pcapng reader.
pub(super) fn open_pcapng<R: Read>(mut head: Head<R>) -> Result<Opened<R>, CaptureError> {
    read_up_to(&mut head.input, &mut head.prefix, 12)?;
    if head.prefix.len() < 12 {
        return Err(CaptureError::Truncated {
            offset: 0,
            what: "pcapng section header block",
        });
    }
    let big_endian = match u32_at(&head.prefix, 8, true) {
        Some(PCAPNG_BOM) => true,
        Some(PCAPNG_BOM_SWAPPED) => false,
        other => {
            return Err(CaptureError::Corrupt {
                offset: 0,
                reason: format!(
                    "pcapng byte-order magic 0x{:08x} is neither 0x1a2b3c4d nor 0x4d3c2b1a",
                    other.unwrap_or(0)
                ),
            })
        }
    };
    let len = u32_at(&head.prefix, 4, big_endian).unwrap_or(0) as usize;
    if len < 28 || len & 3 != 0 || len > MAX_NG_BLOCK {
        return Err(CaptureError::Corrupt {
            offset: 0,
            reason: format!("invalid pcapng section header block length {len}"),
        });
    }
    read_up_to(&mut head.input, &mut head.prefix, len)?;
    if head.prefix.len() < len {
        return Err(CaptureError::Truncated {
            offset: 0,
            what: "pcapng section header block",
        });
    }
    head.capacity = head.capacity.max(len + (64 << 10));
    let (src, capacity) = head.source();
    let rdr = PcapNGReader::new(capacity, src).map_err(|e| CaptureError::Corrupt {
        offset: 0,
        reason: format!("invalid pcapng section header block ({e:?})"),
    })?;
    Ok(Opened {
        inner: Inner::Ng(rdr),
        format: CaptureFormat::PcapNg,
        pcap_iface: None,
        pcap_nanos: false,
        pcap_max_caplen: 0,
        ng_big_endian: big_endian,
        capacity,
    })
}

/// Reads the 24-byte pcap file header and opens the pcap reader.
pub(super) fn open_pcap<R: Read>(mut head: Head<R>, magic: u32) -> Result<Opened<R>, CaptureError> {
    read_up_to(&mut head.input, &mut head.prefix, 24)?;
    if head.prefix.len() < 24 {
        return Err(CaptureError::Truncated {
            offset: 0,
            what: "pcap file header",
        });
    }
    let big_endian = magic >> 16 == 0xA1B2;
    let nanosecond = matches!(magic, PCAP_NSEC_BE | PCAP_NSEC_LE);
    let snaplen = u32_at(&head.prefix, 16, big_endian).unwrap_or(0);
    let linktype = u32_at(&head.prefix, 20, big_endian).unwrap_or(0) & 0xFFFF;
    let iface = Interface {
        linktype,
        snaplen,
        ts: TsConv::MICROS,
        ts_offset: 0,
    };
    // Records up to the snapshot length are accepted, and at least up to
    // 256 KiB whatever the header says; at most 16 MiB.
    let max_caplen = snaplen.clamp(MAX_PCAP_RECORD, MAX_PCAP_SNAPLEN);
    let (src, capacity) = head.source();
    let rdr = LegacyPcapReader::new(capacity, src).map_err(|e| CaptureError::Corrupt {
        offset: 0,
        reason: format!("invalid pcap file header ({e:?})"),
    })?;
    Ok(Opened {
        inner: Inner::Pcap(rdr),
        format: CaptureFormat::Pcap {
            nanosecond,
            big_endian,
            linktype,
            snaplen,
        },
        pcap_iface: Some(iface),
        pcap_nanos: nanosecond,
        pcap_max_caplen: max_caplen,
        ng_big_endian: false,
        capacity,
    })
}
