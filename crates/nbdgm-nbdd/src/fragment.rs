//! Re-fragmenting an oversize unfragmented datagram on relay (RFC 1001 §17.1.2;
//! RFC 1002 §5.3.1; DIGEST §2.4, §2.7): the data section (both names, then user data)
//! is split so that every IP datagram fits MAX_DATAGRAM_LENGTH; the first fragment
//! has F = M = 1 and OFFSET 0, later ones F = 0, M = 1 except the last, OFFSET = data
//! section bytes already sent, and DGM_LENGTH the total in every fragment. MSG_TYPE,
//! DGM_ID, SOURCE_IP, SOURCE_PORT and the SNT/reserved FLAGS bits are copied, so only
//! FLAGS.F/M, DGM_LENGTH and PACKET_OFFSET differ from the input header.
//!
//! The same layout as `nbdgm_node::fragment`, reimplemented here to work from the
//! received bytes and keep this crate on `nbdgm-wire` alone.

use nbdgm_wire::datagram::{DatagramHeader, Flags, DATA_HEADER_LEN};

/// IPv4 header (no options) + UDP header, counted against MAX_DATAGRAM_LENGTH.
pub const IP_UDP_HEADER: usize = 28;
/// Largest data section (DGM_LENGTH and PACKET_OFFSET are 16-bit).
pub const MAX_DATA_SECTION: usize = 65_535;

/// Why a datagram could not be re-fragmented.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    #[error("not an unfragmented data datagram")]
    NotData,
    #[error("data section of {0} bytes exceeds 65535")]
    TooLarge(usize),
    #[error("the first fragment cannot hold both names")]
    NamesDoNotFit,
}

/// Split `packet`, an unfragmented data datagram (0x10–0x12, F = 1, M = 0) whose
/// names take `names_len` bytes, into fragments of at most `max_datagram_length`
/// bytes of IP datagram. Returns the packet itself when it already fits.
pub fn refragment(
    packet: &[u8],
    names_len: usize,
    max_datagram_length: usize,
) -> Result<Vec<Vec<u8>>, FragmentError> {
    let Ok(header) = DatagramHeader::new_checked(packet) else {
        return Err(FragmentError::NotData);
    };
    let flags = header.flags();
    let Some(section) = header.data_section() else {
        return Err(FragmentError::NotData);
    };
    if !flags.first || flags.more || names_len > section.len() {
        return Err(FragmentError::NotData);
    }
    if section.len() > MAX_DATA_SECTION {
        return Err(FragmentError::TooLarge(section.len()));
    }
    if IP_UDP_HEADER + packet.len() <= max_datagram_length {
        return Ok(vec![packet.to_vec()]);
    }
    let cap = max_datagram_length.saturating_sub(IP_UDP_HEADER + DATA_HEADER_LEN);
    if cap <= names_len {
        return Err(FragmentError::NamesDoNotFit);
    }
    let total = section.len() as u16; // checked above
    let mut out = Vec::with_capacity(section.len() / cap + 1);
    let mut offset = 0usize;
    for chunk in section.chunks(cap) {
        let first = offset == 0;
        let last = offset + chunk.len() == section.len();
        let mut p = Vec::with_capacity(DATA_HEADER_LEN + chunk.len());
        p.extend_from_slice(header.header_bytes());
        p.extend_from_slice(chunk);
        let mut h = DatagramHeader::new_unchecked(&mut p[..]);
        // Keep SNT and reserved bits; set F and M for this fragment.
        h.set_flags(Flags {
            first,
            more: !last,
            ..flags
        });
        h.set_dgm_length(total);
        h.set_packet_offset(offset as u16);
        out.push(p);
        offset += chunk.len();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
    use nbdgm_wire::Name;
    use std::net::Ipv4Addr;

    fn packet(data_len: usize) -> Vec<u8> {
        let data: Vec<u8> = (0..data_len).map(|i| (i % 251) as u8).collect();
        Datagram::data(
            MsgType::DirectGroup,
            NodeType::M,
            0x0102,
            (Ipv4Addr::new(10, 0, 0, 9), 138),
            Name::new("FRED", 0).unwrap(),
            Name::new("GROUP", 0x1e).unwrap(),
            data,
        )
        .to_bytes()
        .unwrap()
    }

    #[test]
    fn fits_unchanged() {
        let p = packet(466);
        assert_eq!(refragment(&p, 68, 576).unwrap(), vec![p]);
    }

    #[test]
    fn splits_like_rfc1001() {
        let p = packet(3000);
        let f = refragment(&p, 68, 576).unwrap();
        assert_eq!(f.len(), 6);
        let mut section = Vec::new();
        for (i, x) in f.iter().enumerate() {
            assert!(x.len() + IP_UDP_HEADER <= 576);
            assert_eq!(x[0], 0x11);
            assert_eq!(x[1] & 0x0C, 0x08, "SNT kept");
            assert_eq!(x[1] & 0x02 != 0, i == 0);
            assert_eq!(x[1] & 0x01 != 0, i + 1 != f.len());
            assert_eq!(&x[2..10], &p[2..10]);
            assert_eq!(u16::from_be_bytes([x[10], x[11]]), 3068);
            assert_eq!(
                usize::from(u16::from_be_bytes([x[12], x[13]])),
                section.len()
            );
            section.extend_from_slice(&x[14..]);
        }
        assert_eq!(&section[..], &p[14..]);
    }

    #[test]
    fn refusals() {
        assert_eq!(refragment(&[0x11; 5], 0, 576), Err(FragmentError::NotData));
        let mut p = packet(600);
        assert_eq!(refragment(&p, 68, 100), Err(FragmentError::NamesDoNotFit));
        p[1] |= 0x01; // already a fragment
        assert_eq!(refragment(&p, 68, 576), Err(FragmentError::NotData));
    }
}
