//! ARP over Ethernet for IPv4 (RFC 826): the 28-byte request that host discovery sends and
//! the reply it accepts. The Ethernet header is the kernel's (an `AF_PACKET`/`SOCK_DGRAM`
//! socket), so these are ARP payloads only. Decoding never panics: anything that is not a
//! well-formed Ethernet/IPv4 ARP reply is `None`.

use std::net::Ipv4Addr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const ARP_LEN: usize = 28;
/// EtherType of ARP (`ETH_P_ARP`).
pub const ETHERTYPE_ARP: u16 = 0x0806;
const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;
const OP_REQUEST: u16 = 1;
const OP_REPLY: u16 = 2;

/// A MAC address.
pub type Mac = [u8; 6];

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// An ARP request "who has `target`? tell `sender_ip` (`sender_mac`)", target MAC zero.
pub fn request(sender_mac: Mac, sender_ip: Ipv4Addr, target: Ipv4Addr) -> [u8; ARP_LEN] {
    let mut p = [0u8; ARP_LEN];
    p[0..2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    p[2..4].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&OP_REQUEST.to_be_bytes());
    p[8..14].copy_from_slice(&sender_mac);
    p[14..18].copy_from_slice(&sender_ip.octets());
    // target MAC (18..24) stays zero
    p[24..28].copy_from_slice(&target.octets());
    p
}

/// The sender of an ARP reply addressed to `our_ip`: `(sender IP, sender MAC)`. `None` for
/// anything else: short, another hardware or protocol type or size, a request, a reply to
/// another address, or a sender MAC that is zero, broadcast or multicast.
pub fn parse_reply(buf: &[u8], our_ip: Ipv4Addr) -> Option<(Ipv4Addr, Mac)> {
    let b = buf.get(..ARP_LEN)?;
    let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    if u16_at(0) != HTYPE_ETHERNET || u16_at(2) != PTYPE_IPV4 || b[4] != 6 || b[5] != 4 {
        return None;
    }
    if u16_at(6) != OP_REPLY {
        return None;
    }
    let mac: Mac = b[8..14].try_into().ok()?;
    let sender = Ipv4Addr::new(b[14], b[15], b[16], b[17]);
    let target = Ipv4Addr::new(b[24], b[25], b[26], b[27]);
    if target != our_ip || mac == [0; 6] || mac[0] & 1 == 1 {
        return None;
    }
    if sender.is_unspecified() || sender.is_broadcast() || sender.is_multicast() {
        return None;
    }
    Some((sender, mac))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const US: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 250);
    const THEM: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    const MAC: Mac = [0x02, 0, 0, 0, 0, 0x0a];

    fn reply(sender: Ipv4Addr, mac: Mac, target: Ipv4Addr) -> [u8; ARP_LEN] {
        let mut p = request(mac, sender, target);
        p[7] = 2;
        p
    }

    #[test]
    fn request_layout() {
        let p = request([2, 0, 0, 0, 0, 0xfa], US, THEM);
        assert_eq!(&p[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&p[8..14], &[2, 0, 0, 0, 0, 0xfa]);
        assert_eq!(&p[14..18], &[198, 51, 100, 250]);
        assert_eq!(&p[18..24], &[0; 6]);
        assert_eq!(&p[24..28], &[198, 51, 100, 10]);
    }

    #[test]
    fn reply_accepted_with_trailing_padding() {
        let mut frame = reply(THEM, MAC, US).to_vec();
        frame.extend_from_slice(&[0; 18]); // Ethernet minimum-size padding
        assert_eq!(parse_reply(&frame, US), Some((THEM, MAC)));
        assert_eq!(mac_text(&MAC), "02:00:00:00:00:0a");
    }

    #[test]
    fn malformed_or_foreign_ignored() {
        let good = reply(THEM, MAC, US);
        assert_eq!(parse_reply(&good[..27], US), None);
        assert_eq!(parse_reply(&[], US), None);
        assert_eq!(parse_reply(&request(MAC, THEM, US), US), None, "a request");
        assert_eq!(parse_reply(&good, THEM), None, "to someone else");
        for (i, v) in [(0, 9), (3, 0xdd), (4, 8), (5, 16), (7, 3)] {
            let mut b = good;
            b[i] = v;
            assert_eq!(parse_reply(&b, US), None, "byte {i} = {v}");
        }
        assert_eq!(parse_reply(&reply(THEM, [0; 6], US), US), None);
        assert_eq!(parse_reply(&reply(THEM, [0xff; 6], US), US), None);
        assert_eq!(
            parse_reply(&reply(THEM, [1, 0, 0x5e, 0, 0, 1], US), US),
            None
        );
        let bcast = Ipv4Addr::BROADCAST;
        assert_eq!(parse_reply(&reply(bcast, MAC, US), US), None);
    }

    #[test]
    fn any_bytes_never_panic() {
        let mut x: u32 = 0x1234_5678;
        for len in 0..64 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = parse_reply(&buf, US);
        }
    }
}
