//! The pcap writer: classic pcap (microsecond timestamps, LINKTYPE_ETHERNET), Ethernet II +
//! IPv4 (RFC 791) + UDP (RFC 768) with correct header checksums.

use crate::Generated;
use std::io::{self, Write};
use std::net::Ipv4Addr;

/// Write `packets` as a classic pcap file (microsecond timestamps, LINKTYPE_ETHERNET).
/// Returns the number of packets written.
pub fn write_pcap<W: Write>(
    mut out: W,
    packets: impl Iterator<Item = Generated>,
) -> io::Result<u64> {
    // Global header: magic, version 2.4, thiszone, sigfigs, snaplen, linktype 1.
    let mut hdr = Vec::with_capacity(24);
    hdr.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    hdr.extend_from_slice(&2u16.to_le_bytes());
    hdr.extend_from_slice(&4u16.to_le_bytes());
    hdr.extend_from_slice(&0i32.to_le_bytes());
    hdr.extend_from_slice(&0u32.to_le_bytes());
    hdr.extend_from_slice(&65_535u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes());
    out.write_all(&hdr)?;
    // Timestamps: from 2020-09-13T12:26:40Z, 1..=20000 µs apart, chosen from the packet
    // bytes so that they depend on nothing but the packets.
    let mut usec: u64 = 1_600_000_000 * 1_000_000;
    let mut n = 0u64;
    let mut frame = Vec::with_capacity(2048);
    for (i, p) in packets.enumerate() {
        let step = 1 + (fnv1a(&p.payload) ^ i as u64) % 20_000;
        usec += step;
        frame.clear();
        ethernet_ipv4_udp(&mut frame, &p, i as u16);
        let len = u32::try_from(frame.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((usec / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((usec % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&len.to_le_bytes());
        rec[12..16].copy_from_slice(&len.to_le_bytes());
        out.write_all(&rec)?;
        out.write_all(&frame)?;
        n += 1;
    }
    Ok(n)
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

fn is_broadcast(ip: Ipv4Addr) -> bool {
    ip.octets()[3] == 255
}

/// One's-complement sum folded to 16 bits.
fn ones_sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc
}

fn ethernet_ipv4_udp(out: &mut Vec<u8>, p: &Generated, ip_id: u16) {
    let src_ip = *p.src.ip();
    let dst_ip = *p.dst.ip();
    // Ethernet II.
    if is_broadcast(dst_ip) {
        out.extend_from_slice(&[0xFF; 6]);
    } else {
        out.extend_from_slice(&mac_for(dst_ip));
    }
    out.extend_from_slice(&mac_for(src_ip));
    out.extend_from_slice(&0x0800u16.to_be_bytes());
    // IPv4 (RFC 791), no options.
    let udp_len = 8 + p.payload.len();
    let total = 20 + udp_len;
    let ip_start = out.len();
    out.push(0x45);
    out.push(0);
    out.extend_from_slice(&(total as u16).to_be_bytes());
    out.extend_from_slice(&ip_id.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.push(if is_broadcast(dst_ip) { 64 } else { 128 });
    out.push(17);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&src_ip.octets());
    out.extend_from_slice(&dst_ip.octets());
    let csum = !(ones_sum(0, &out[ip_start..ip_start + 20]) as u16);
    out[ip_start + 10..ip_start + 12].copy_from_slice(&csum.to_be_bytes());
    // UDP (RFC 768) with the pseudo-header checksum.
    let udp_start = out.len();
    out.extend_from_slice(&p.src.port().to_be_bytes());
    out.extend_from_slice(&p.dst.port().to_be_bytes());
    out.extend_from_slice(&(udp_len as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&p.payload);
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src_ip.octets());
    pseudo[4..8].copy_from_slice(&dst_ip.octets());
    pseudo[9] = 17;
    pseudo[10..12].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let sum = ones_sum(ones_sum(0, &pseudo), &out[udp_start..]);
    let mut csum = !(sum as u16);
    if csum == 0 {
        csum = 0xFFFF;
    }
    out[udp_start + 6..udp_start + 8].copy_from_slice(&csum.to_be_bytes());
}

// ---------------------------------------------------------------------------------------------
// Random numbers: SplitMix64 (Steele, Lea, Flood 2014), enough for test data.

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{generate, Mix};

    /// Checks the pcap framing and both checksums of every frame.
    #[test]
    fn pcap_framing_and_checksums() {
        let packets = generate(500, 11, Mix::Mixed).collect::<Vec<_>>();
        let mut file = Vec::new();
        write_pcap(&mut file, packets.clone().into_iter()).unwrap();
        assert_eq!(&file[..4], &[0xD4, 0xC3, 0xB2, 0xA1]);
        assert_eq!(u32::from_le_bytes(file[20..24].try_into().unwrap()), 1);
        let mut pos = 24;
        let mut last_ts = 0u64;
        for p in &packets {
            let sec = u32::from_le_bytes(file[pos..pos + 4].try_into().unwrap());
            let usec = u32::from_le_bytes(file[pos + 4..pos + 8].try_into().unwrap());
            let len = u32::from_le_bytes(file[pos + 8..pos + 12].try_into().unwrap()) as usize;
            let ts = u64::from(sec) * 1_000_000 + u64::from(usec);
            assert!(usec < 1_000_000 && ts > last_ts);
            last_ts = ts;
            let f = &file[pos + 16..pos + 16 + len];
            assert_eq!(&f[12..14], &[0x08, 0x00]);
            let ip = &f[14..34];
            assert_eq!(ones_sum(0, ip), 0xFFFF, "IPv4 header checksum");
            let udp = &f[34..];
            assert_eq!(udp.len(), 8 + p.payload.len());
            let mut pseudo = [0u8; 12];
            pseudo[0..8].copy_from_slice(&ip[12..20]);
            pseudo[9] = 17;
            pseudo[10..12].copy_from_slice(&(udp.len() as u16).to_be_bytes());
            assert_eq!(ones_sum(ones_sum(0, &pseudo), udp), 0xFFFF, "UDP checksum");
            assert_eq!(&udp[8..], &p.payload[..]);
            pos += 16 + len;
        }
        assert_eq!(pos, file.len());
    }
}
