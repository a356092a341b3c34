//! Building data datagrams for sending, with fragmentation when they exceed
//! MAX_DATAGRAM_LENGTH (RFC 1001 §17.1.2; RFC 1002 §5.3.1; DIGEST §2.4, §2.7):
//! both names go in the first fragment, PACKET_OFFSET counts data-section bytes
//! already sent, and DGM_LENGTH carries the total data-section length in every fragment.

use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
use nbdgm_wire::Name;
use std::net::Ipv4Addr;

/// IPv4 header (no options) + UDP header, counted against MAX_DATAGRAM_LENGTH.
pub const IP_UDP_HEADER: usize = 28;
/// The 14-byte header of a data datagram.
pub const HEADER: usize = 14;
/// Largest data section (DGM_LENGTH and PACKET_OFFSET are 16-bit).
pub const MAX_DATA_SECTION: usize = 65_535;

/// The fixed parts of an outgoing datagram.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub msg_type: MsgType,
    pub node_type: NodeType,
    pub id: u16,
    pub source: (Ipv4Addr, u16),
    pub source_name: &'a Name,
    pub destination_name: &'a Name,
    pub data: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FragmentError {
    /// Names + data exceed 65535 bytes.
    TooLarge {
        len: usize,
        max: usize,
    },
    /// The first fragment cannot hold both names.
    NamesDoNotFit,
    Encode(String),
}

/// Largest user data that can be sent under these names.
pub fn max_user_data(source: &Name, destination: &Name) -> usize {
    MAX_DATA_SECTION - source.encoded_len() - destination.encoded_len()
}

/// The UDP payloads carrying `out`: one when it fits `max_datagram_length`, else fragments.
pub fn build(
    out: &Outgoing<'_>,
    max_datagram_length: usize,
) -> Result<Vec<Vec<u8>>, FragmentError> {
    let names = out.source_name.encoded_len() + out.destination_name.encoded_len();
    let total = names + out.data.len();
    if total > MAX_DATA_SECTION {
        return Err(FragmentError::TooLarge {
            len: out.data.len(),
            max: max_user_data(out.source_name, out.destination_name),
        });
    }
    let encode = |d: &Datagram<&[u8]>| {
        d.to_bytes()
            .map_err(|e| FragmentError::Encode(e.to_string()))
    };
    if IP_UDP_HEADER + HEADER + total <= max_datagram_length {
        let d = Datagram::data(
            out.msg_type,
            out.node_type,
            out.id,
            out.source,
            out.source_name.clone(),
            out.destination_name.clone(),
            out.data,
        );
        return Ok(vec![encode(&d)?]);
    }
    let cap = max_datagram_length.saturating_sub(IP_UDP_HEADER + HEADER);
    if cap <= names {
        return Err(FragmentError::NamesDoNotFit);
    }
    let total16 = total as u16; // checked above: total <= 65535
    let mut packets = Vec::new();
    // First fragment: both names and as much user data as fits.
    let first_data = cap - names;
    let (head, mut rest) = out.data.split_at(first_data.min(out.data.len()));
    let mut flags = Flags {
        more: true,
        first: true,
        node_type: out.node_type,
        reserved: 0,
    };
    // One fragment: the fixed header fields of `out`, these flags, offset and body.
    let piece = |flags: Flags, offset: usize, body: DataBody<&[u8]>| {
        encode(&Datagram {
            msg_type: out.msg_type,
            flags,
            id: out.id,
            source_ip: out.source.0,
            source_port: out.source.1,
            body: Body::Data {
                length: Some(total16),
                offset: offset as u16,
                body,
            },
        })
    };
    packets.push(piece(
        flags,
        0,
        DataBody::Names {
            source_name: out.source_name.clone(),
            destination_name: out.destination_name.clone(),
            user_data: head,
        },
    )?);
    let mut offset = names + head.len();
    flags.first = false;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(cap.min(rest.len()));
        flags.more = !tail.is_empty();
        packets.push(piece(
            flags,
            offset,
            DataBody::Continuation { data: chunk },
        )?);
        offset += chunk.len();
        rest = tail;
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out<'a>(s: &'a Name, d: &'a Name, data: &'a [u8]) -> Outgoing<'a> {
        Outgoing {
            msg_type: MsgType::DirectUnique,
            node_type: NodeType::B,
            id: 0x0102,
            source: (Ipv4Addr::new(192, 168, 1, 10), 138),
            source_name: s,
            destination_name: d,
            data,
        }
    }

    #[test]
    fn unfragmented_up_to_466_bytes() {
        let s = Name::new("FRED", 0).unwrap();
        let d = Name::new("BARNEY", 0).unwrap();
        let data = vec![7u8; 466];
        let p = build(&out(&s, &d, &data), 576).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].len(), 14 + 68 + 466);
        assert_eq!(&p[0][..4], &[0x10, 0x02, 0x01, 0x02]);
        assert_eq!(&p[0][4..10], &[192, 168, 1, 10, 0, 138]);
        assert_eq!(&p[0][10..14], &[0x02, 0x16, 0, 0]); // 68 + 466 = 534
        let data = vec![7u8; 467];
        assert_eq!(build(&out(&s, &d, &data), 576).unwrap().len(), 2);
    }

    #[test]
    fn fragments_3000_bytes_per_rfc1001() {
        let s = Name::new("FRED", 0).unwrap();
        let d = Name::new("BARNEY", 0).unwrap();
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let p = build(&out(&s, &d, &data), 576).unwrap();
        // 3068 bytes of data section in chunks of 534.
        assert_eq!(p.len(), 6);
        let mut section = Vec::new();
        for (i, pkt) in p.iter().enumerate() {
            assert!(pkt.len() + IP_UDP_HEADER <= 576);
            let flags = pkt[1];
            let first = i == 0;
            let last = i == p.len() - 1;
            assert_eq!(flags & 0x02 != 0, first, "F of {i}");
            assert_eq!(flags & 0x01 != 0, !last, "M of {i}");
            assert_eq!(u16::from_be_bytes([pkt[10], pkt[11]]), 3068, "DGM_LENGTH");
            assert_eq!(
                usize::from(u16::from_be_bytes([pkt[12], pkt[13]])),
                section.len(),
                "PACKET_OFFSET of {i}"
            );
            section.extend_from_slice(&pkt[14..]);
        }
        assert_eq!(section.len(), 3068);
        assert_eq!(&section[68..], &data[..]);
        let mut names = Vec::new();
        s.emit(&mut names);
        d.emit(&mut names);
        assert_eq!(&section[..68], &names[..]);
    }

    #[test]
    fn limits() {
        let s = Name::new("FRED", 0).unwrap();
        let d = Name::new("BARNEY", 0).unwrap();
        let max = max_user_data(&s, &d);
        assert_eq!(max, 65_535 - 68);
        let big = vec![0u8; max + 1];
        assert!(matches!(
            build(&out(&s, &d, &big), 576),
            Err(FragmentError::TooLarge { .. })
        ));
        let ok = vec![0u8; max];
        let p = build(&out(&s, &d, &ok), 576).unwrap();
        assert_eq!(p.iter().map(|x| x.len() - 14).sum::<usize>(), 65_535);
        assert_eq!(
            build(&out(&s, &d, &[0u8; 100]), 100),
            Err(FragmentError::NamesDoNotFit)
        );
    }
}
