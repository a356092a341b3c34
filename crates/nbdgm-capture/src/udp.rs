//! UDP header checks: length, snaplen truncation and checksum (RFC 768, RFC 8200 §8.1).

use std::fmt;
use std::net::IpAddr;

use crate::decode::UdpSeg;

/// Problems with a UDP datagram that do not stop it from being returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct UdpWarnings {
    /// The capture holds fewer bytes than the datagram has (snapshot-length
    /// truncation): the payload is the captured part only.
    pub truncated: bool,
    /// The UDP length field is below 8 or exceeds the length the IP header leaves
    /// for UDP; the payload is then bounded by the IP length instead.
    pub bad_length: bool,
    /// The UDP checksum does not match the datagram (often transmit checksum
    /// offload on the capturing host).
    pub bad_checksum: bool,
    /// Checksum 0 over IPv6, where the checksum is mandatory.
    pub zero_checksum_ipv6: bool,
}

impl UdpWarnings {
    /// Whether there is no warning.
    pub fn is_empty(&self) -> bool {
        *self == UdpWarnings::default()
    }

    /// Short descriptions of the warnings that are set.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> {
        [
            (self.truncated, "truncated by the capture's snapshot length"),
            (
                self.bad_length,
                "UDP length field inconsistent with the IP length",
            ),
            (self.bad_checksum, "bad UDP checksum"),
            (self.zero_checksum_ipv6, "zero UDP checksum over IPv6"),
        ]
        .into_iter()
        .filter_map(|(set, text)| set.then_some(text))
    }
}

impl fmt::Display for UdpWarnings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, w) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(w)?;
        }
        Ok(())
    }
}

/// What the UDP header says, and where the payload is inside the segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UdpInfo {
    pub length: u16,
    pub checksum: u16,
    /// Payload range within `UdpSeg::seg`.
    pub start: usize,
    pub end: usize,
    pub warnings: UdpWarnings,
}

/// The two ports of a segment (which always has at least 8 bytes).
#[inline]
pub(crate) fn ports(seg: &UdpSeg<'_>) -> (u16, u16) {
    match seg.seg.get(..4) {
        Some(&[a, b, c, d]) => (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])),
        _ => (0, 0),
    }
}

pub(crate) fn inspect(seg: &UdpSeg<'_>, verify_checksum: bool) -> UdpInfo {
    let (length, checksum) = match seg.seg.get(4..8) {
        Some(&[a, b, c, d]) => (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])),
        _ => (0, 0),
    };
    let mut warnings = UdpWarnings::default();
    let len = usize::from(length);
    let end = if len < 8 || len > seg.ip_len {
        // Length 0 is allowed only in IPv6 jumbograms (RFC 2675) longer than 65535.
        let jumbo = len == 0 && seg.src.is_ipv6() && seg.ip_len > 65_535;
        warnings.bad_length = !jumbo;
        seg.ip_len
    } else {
        len
    };
    let captured = seg.seg.len();
    if end > captured {
        warnings.truncated = true;
    }
    let end = end.min(captured).max(8);
    if verify_checksum && !warnings.truncated && !warnings.bad_length {
        if checksum == 0 {
            warnings.zero_checksum_ipv6 = seg.src.is_ipv6();
        } else if let Some(data) = seg.seg.get(..end) {
            warnings.bad_checksum = !checksum_ok(seg.src, seg.dst, data);
        }
    }
    UdpInfo {
        length,
        checksum,
        start: 8,
        end,
        warnings,
    }
}

/// Sums big-endian 32-bit words (the data zero-padded to a multiple of 4) into
/// `acc`; folding the result gives the 16-bit one's complement sum.
fn sum_words(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        if let Ok(w) = <[u8; 4]>::try_from(c) {
            acc += u64::from(u32::from_be_bytes(w));
        }
    }
    let mut last = [0u8; 4];
    for (d, s) in last.iter_mut().zip(chunks.remainder()) {
        *d = *s;
    }
    acc + u64::from(u32::from_be_bytes(last))
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

/// The RFC 768 / RFC 8200 §8.1 pseudo-header sum; `None` when the families differ.
fn pseudo_header_sum(src: IpAddr, dst: IpAddr, len: usize) -> Option<u64> {
    let len = len as u64;
    let acc = 17 + (len & 0xFFFF) + (len >> 16);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(sum_words(&d.octets(), sum_words(&s.octets(), acc))),
        (IpAddr::V6(s), IpAddr::V6(d)) => Some(sum_words(&d.octets(), sum_words(&s.octets(), acc))),
        _ => None,
    }
}

/// Whether the checksum in `udp` (header and data, `udp.len()` bytes) is right.
pub(crate) fn checksum_ok(src: IpAddr, dst: IpAddr, udp: &[u8]) -> bool {
    pseudo_header_sum(src, dst, udp.len()).is_some_and(|acc| fold(sum_words(udp, acc)) == 0xFFFF)
}

/// The checksum to put in a UDP header (test helper).
#[cfg(test)]
pub(crate) fn checksum(src: IpAddr, dst: IpAddr, udp: &[u8]) -> u16 {
    let len = udp.len() as u64;
    let acc = pseudo_header_sum(src, dst, udp.len()).unwrap_or(17 + (len & 0xFFFF) + (len >> 16));
    let c = !fold(sum_words(udp, acc));
    if c == 0 {
        0xFFFF
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn known_checksum() {
        // A NetBIOS name query captured on a LAN (192.168.1.41 -> 192.168.1.255).
        let src = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 41));
        let dst = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 255));
        let mut udp = vec![
            0x00, 0x89, 0x00, 0x89, 0x00, 0x0d, 0x00, 0x00, 1, 2, 3, 4, 5,
        ];
        let c = checksum(src, dst, &udp);
        udp[6..8].copy_from_slice(&c.to_be_bytes());
        assert!(checksum_ok(src, dst, &udp));
        udp[9] ^= 1;
        assert!(!checksum_ok(src, dst, &udp));
    }

    #[test]
    fn warnings_display() {
        let w = UdpWarnings {
            truncated: true,
            bad_checksum: true,
            ..UdpWarnings::default()
        };
        assert_eq!(
            w.to_string(),
            "truncated by the capture's snapshot length; bad UDP checksum"
        );
        assert!(UdpWarnings::default().is_empty());
    }
}
