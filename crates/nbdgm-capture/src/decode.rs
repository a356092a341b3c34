//! From a link-layer frame to a UDP segment: link headers, VLAN tags, IPv4, IPv6
//! extension headers, tunnels, and the hand-off of fragments to reassembly.
//!
//! Every access is a checked slice (`get`), so no input can make this panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::MalformedReason;
use crate::linktype::*;
use crate::reassembly::{AddResult, FragKey, Reassembler};
use crate::time::Timestamp;

/// Most nested encapsulations (GRE, IP-in-IP, VXLAN, Teredo, inner Ethernet) followed.
const MAX_DEPTH: u8 = 8;
/// Most IPv6 extension headers followed in one packet.
const MAX_IPV6_EXT: usize = 32;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_QINQ_OLD2: u16 = 0x9200;
const ETHERTYPE_TEB: u16 = 0x6558;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MC: u16 = 0x8848;
const ETHERTYPE_ERSPAN2: u16 = 0x88BE;
const ETHERTYPE_ERSPAN3: u16 = 0x22EB;

const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_IPV6: u8 = 41;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_GRE: u8 = 47;
const IPPROTO_AH: u8 = 51;
const IPPROTO_DSTOPTS: u8 = 60;

const VXLAN_PORT: u16 = 4789;
const TEREDO_PORT: u16 = 3544;

#[inline]
fn be16(d: &[u8], at: usize) -> Option<u16> {
    let b: [u8; 2] = d.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_be_bytes(b))
}

#[inline]
fn be32(d: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = d.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

#[inline]
fn byte(d: &[u8], at: usize) -> Option<u8> {
    d.get(at).copied()
}

#[inline]
fn tail(d: &[u8], from: usize) -> &[u8] {
    d.get(from..).unwrap_or(&[])
}

/// A UDP segment found in a frame (or in a reassembled datagram).
#[derive(Debug, Clone, Copy)]
pub(crate) struct UdpSeg<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Captured bytes of the segment, header included (at least 8), never past the
    /// end the IP header declares.
    pub seg: &'a [u8],
    /// Length of the segment according to the IP header.
    pub ip_len: usize,
}

/// A datagram whose reassembly just completed; its payload is in the reassembler.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Completed {
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
}

#[derive(Debug)]
pub(crate) enum Walk<'a> {
    Udp(UdpSeg<'a>),
    NotUdp,
    Unsupported,
    Malformed(MalformedReason),
    /// An IP fragment: held or dropped by reassembly, or reassembly is off.
    Fragment,
    Completed(Completed),
}

pub(crate) struct Walker<'r> {
    /// `None` when reassembly is disabled or this walk is over a reassembled datagram.
    pub reasm: Option<&'r mut Reassembler>,
    /// This walk is over a reassembled datagram (fragments in it are not followed).
    pub in_reassembled: bool,
    pub now: Timestamp,
    pub tunnels: bool,
    pub depth: u8,
    /// IP fragments seen during the walk.
    pub fragments: u64,
    /// Source address of the outermost Ethernet header (Ethernet link type only).
    pub src_mac: Option<[u8; 6]>,
}

impl Walker<'_> {
    fn enter(&mut self) -> bool {
        if self.depth >= MAX_DEPTH {
            return false;
        }
        self.depth += 1;
        true
    }

    fn fragment(
        &mut self,
        key: FragKey,
        proto: Option<u8>,
        offset: u32,
        more: bool,
        payload: &[u8],
        (src, dst): (IpAddr, IpAddr),
    ) -> Walk<'static> {
        self.fragments += 1;
        let Some(reasm) = self.reasm.as_deref_mut() else {
            return if self.in_reassembled {
                Walk::Malformed(MalformedReason::NestedFragment)
            } else {
                Walk::Fragment
            };
        };
        match reasm.add(key, proto, offset, more, payload, self.now) {
            AddResult::Complete { proto } => Walk::Completed(Completed { proto, src, dst }),
            AddResult::Held | AddResult::Dropped => Walk::Fragment,
        }
    }
}

/// Decodes one frame of link-layer type `linktype`.
pub(crate) fn walk_link<'a>(linktype: u32, data: &'a [u8], w: &mut Walker<'_>) -> Walk<'a> {
    if data.is_empty() {
        return Walk::Malformed(MalformedReason::EmptyFrame);
    }
    match linktype {
        LINKTYPE_ETHERNET => {
            w.src_mac = data.get(6..12).and_then(|m| <[u8; 6]>::try_from(m).ok());
            walk_ethernet(data, w)
        }
        LINKTYPE_NULL => {
            let Some(b) = data.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
                return Walk::Malformed(MalformedReason::LinkHeaderTruncated);
            };
            // Host byte order of the capturing machine: a family fits in 16 bits.
            let le = u32::from_le_bytes(b);
            let family = if le & 0xFFFF_0000 != 0 {
                u32::from_be_bytes(b)
            } else {
                le
            };
            walk_family(family, tail(data, 4), w)
        }
        LINKTYPE_LOOP => match be32(data, 0) {
            Some(family) => walk_family(family, tail(data, 4), w),
            None => Walk::Malformed(MalformedReason::LinkHeaderTruncated),
        },
        LINKTYPE_RAW | LINKTYPE_DLT_RAW12 | LINKTYPE_DLT_RAW14 => walk_raw_ip(data, w),
        LINKTYPE_IPV4 => walk_ipv4(data, w),
        LINKTYPE_IPV6 => walk_ipv6(data, w),
        LINKTYPE_LINUX_SLL => match (be16(data, 2), be16(data, 14)) {
            (Some(hatype), Some(proto)) if data.len() >= 16 => {
                walk_sll(hatype, proto, tail(data, 16), w)
            }
            _ => Walk::Malformed(MalformedReason::LinkHeaderTruncated),
        },
        LINKTYPE_LINUX_SLL2 => match (be16(data, 0), be16(data, 8)) {
            (Some(proto), Some(hatype)) if data.len() >= 20 => {
                walk_sll(hatype, proto, tail(data, 20), w)
            }
            _ => Walk::Malformed(MalformedReason::LinkHeaderTruncated),
        },
        _ => Walk::Unsupported,
    }
}

/// BSD address families for IP.
fn walk_family<'a>(family: u32, data: &'a [u8], w: &mut Walker<'_>) -> Walk<'a> {
    match family {
        2 => walk_ipv4(data, w),
        // AF_INET6: Linux 10, NetBSD/OpenBSD/BSD/OS 24, FreeBSD/DragonFly 28, Darwin 30.
        10 | 24 | 28 | 30 => walk_ipv6(data, w),
        _ => Walk::NotUdp,
    }
}

fn walk_raw_ip<'a>(data: &'a [u8], w: &mut Walker<'_>) -> Walk<'a> {
    match byte(data, 0).map(|b| b >> 4) {
        Some(4) => walk_ipv4(data, w),
        Some(6) => walk_ipv6(data, w),
        _ => Walk::NotUdp,
    }
}

fn walk_sll<'a>(hatype: u16, proto: u16, data: &'a [u8], w: &mut Walker<'_>) -> Walk<'a> {
    const ARPHRD_NETLINK: u16 = 824;
    if hatype == ARPHRD_NETLINK || proto < 0x0600 {
        // Netlink messages, or an 802.2/802.3 pseudo-protocol number.
        return Walk::NotUdp;
    }
    walk_ethertype(proto, data, w)
}

fn walk_ethernet<'a>(data: &'a [u8], w: &mut Walker<'_>) -> Walk<'a> {
    let Some(et) = be16(data, 12) else {
        return Walk::Malformed(MalformedReason::LinkHeaderTruncated);
    };
    if et <= 1500 {
        // IEEE 802.3 length field: IP only with an LLC/SNAP header.
        if data.get(14..17) == Some(&[0xAA, 0xAA, 0x03]) {
            if let Some(et) = be16(data, 20) {
                return walk_ethertype(et, tail(data, 22), w);
            }
        }
        return Walk::NotUdp;
    }
    walk_ethertype(et, tail(data, 14), w)
}

fn walk_ethertype<'a>(mut et: u16, mut data: &'a [u8], w: &mut Walker<'_>) -> Walk<'a> {
    loop {
        match et {
            ETHERTYPE_IPV4 => return walk_ipv4(data, w),
            ETHERTYPE_IPV6 => return walk_ipv6(data, w),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD | ETHERTYPE_QINQ_OLD2 => {
                // IEEE 802.1Q tag: TCI, then the next EtherType. Any number of tags.
                let Some(next) = be16(data, 2) else {
                    return Walk::Malformed(MalformedReason::VlanTagTruncated);
                };
                et = next;
                data = tail(data, 4);
            }
            ETHERTYPE_TEB => {
                if !w.enter() {
                    return Walk::Malformed(MalformedReason::TooManyEncapsulations);
                }
                return walk_ethernet(data, w);
            }
            ETHERTYPE_PPPOE_SESSION => {
                // PPPoE header (6 bytes), then the PPP protocol number.
                return match be16(data, 6) {
                    Some(0x0021) => walk_ipv4(tail(data, 8), w),
                    Some(0x0057) => walk_ipv6(tail(data, 8), w),
                    Some(_) => Walk::NotUdp,
                    None => Walk::Malformed(MalformedReason::VlanTagTruncated),
                };
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MC => {
                // Label stack entries up to bottom-of-stack, then guess IP by version.
                let mut at = 0usize;
                loop {
                    let Some(entry) = be32(data, at) else {
                        return Walk::Malformed(MalformedReason::VlanTagTruncated);
                    };
                    at += 4;
                    if entry & 0x100 != 0 {
                        break;
                    }
                }
                return walk_raw_ip(tail(data, at), w);
            }
            _ => return Walk::NotUdp,
        }
    }
}

pub(crate) fn walk_ipv4<'a>(data: &'a [u8], w: &mut Walker<'_>) -> Walk<'a> {
    if data.len() < 20 {
        return Walk::Malformed(MalformedReason::Ipv4HeaderTruncated);
    }
    let (Some(vihl), Some(total), Some(frag), Some(proto)) =
        (byte(data, 0), be16(data, 2), be16(data, 6), byte(data, 9))
    else {
        return Walk::Malformed(MalformedReason::Ipv4HeaderTruncated);
    };
    let ihl = usize::from(vihl & 0x0F) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return Walk::Malformed(MalformedReason::Ipv4BadHeader);
    }
    if data.len() < ihl {
        return Walk::Malformed(MalformedReason::Ipv4HeaderTruncated);
    }
    // Total length 0 appears in captures of TCP segmentation offload: use what was captured.
    let total = if total == 0 {
        data.len()
    } else {
        usize::from(total)
    };
    if total < ihl {
        return Walk::Malformed(MalformedReason::Ipv4BadTotalLength);
    }
    let (Some(src), Some(dst)) = (data.get(12..16), data.get(16..20)) else {
        return Walk::Malformed(MalformedReason::Ipv4HeaderTruncated);
    };
    let (Ok(src), Ok(dst)) = (<[u8; 4]>::try_from(src), <[u8; 4]>::try_from(dst)) else {
        return Walk::Malformed(MalformedReason::Ipv4HeaderTruncated);
    };
    let end = total.min(data.len());
    let payload = data.get(ihl..end).unwrap_or(&[]);
    let ip_len = total - ihl;
    let src_ip = IpAddr::V4(Ipv4Addr::from(src));
    let dst_ip = IpAddr::V4(Ipv4Addr::from(dst));
    let more = frag & 0x2000 != 0;
    let offset = u32::from(frag & 0x1FFF) * 8;
    if more || offset != 0 {
        if !followed(proto, w.tunnels) {
            w.fragments += 1;
            return Walk::Fragment;
        }
        if total > data.len() {
            w.fragments += 1;
            return Walk::Malformed(MalformedReason::FragmentTruncated);
        }
        let id = be16(data, 4).unwrap_or(0);
        let key = FragKey::V4 {
            src,
            dst,
            proto,
            id,
        };
        return w.fragment(key, Some(proto), offset, more, payload, (src_ip, dst_ip));
    }
    walk_ip_proto(proto, payload, ip_len, src_ip, dst_ip, w)
}

/// Whether the decoder descends into protocol `proto` (and so reassembles it).
fn followed(proto: u8, tunnels: bool) -> bool {
    proto == IPPROTO_UDP || (tunnels && matches!(proto, IPPROTO_GRE | IPPROTO_IPIP | IPPROTO_IPV6))
}

pub(crate) fn walk_ipv6<'a>(data: &'a [u8], w: &mut Walker<'_>) -> Walk<'a> {
    if data.len() < 40 {
        return Walk::Malformed(MalformedReason::Ipv6HeaderTruncated);
    }
    let (Some(v), Some(plen), Some(nh)) = (byte(data, 0), be16(data, 4), byte(data, 6)) else {
        return Walk::Malformed(MalformedReason::Ipv6HeaderTruncated);
    };
    if v >> 4 != 6 {
        return Walk::Malformed(MalformedReason::Ipv6BadHeader);
    }
    let (Some(src), Some(dst)) = (data.get(8..24), data.get(24..40)) else {
        return Walk::Malformed(MalformedReason::Ipv6HeaderTruncated);
    };
    let (Ok(src), Ok(dst)) = (<[u8; 16]>::try_from(src), <[u8; 16]>::try_from(dst)) else {
        return Walk::Malformed(MalformedReason::Ipv6HeaderTruncated);
    };
    // Payload length 0: a jumbogram (RFC 2675) or segmentation offload; use what was captured.
    let declared = if plen == 0 {
        data.len() - 40
    } else {
        usize::from(plen)
    };
    let end = (40 + declared).min(data.len());
    let payload = data.get(40..end).unwrap_or(&[]);
    walk_ipv6_payload(
        nh,
        payload,
        declared,
        IpAddr::V6(Ipv6Addr::from(src)),
        IpAddr::V6(Ipv6Addr::from(dst)),
        w,
    )
}

/// Follows IPv6 extension headers (RFC 8200 §4) from `nh` at the start of
/// `data` (captured bytes of a payload `declared` bytes long) to the upper layer.
pub(crate) fn walk_ipv6_payload<'a>(
    mut nh: u8,
    data: &'a [u8],
    declared: usize,
    src: IpAddr,
    dst: IpAddr,
    w: &mut Walker<'_>,
) -> Walk<'a> {
    let mut off = 0usize;
    for _ in 0..MAX_IPV6_EXT {
        match nh {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_AH => {
                let (Some(next), Some(len)) = (byte(data, off), byte(data, off + 1)) else {
                    return Walk::Malformed(MalformedReason::Ipv6ExtensionTruncated);
                };
                let len = if nh == IPPROTO_AH {
                    (usize::from(len) + 2) * 4
                } else {
                    (usize::from(len) + 1) * 8
                };
                off += len;
                if off > data.len() {
                    return Walk::Malformed(MalformedReason::Ipv6ExtensionTruncated);
                }
                nh = next;
            }
            IPPROTO_FRAGMENT => {
                let (Some(next), Some(fo), Some(id)) =
                    (byte(data, off), be16(data, off + 2), be32(data, off + 4))
                else {
                    return Walk::Malformed(MalformedReason::Ipv6ExtensionTruncated);
                };
                off += 8;
                let offset = u32::from(fo & 0xFFF8);
                let more = fo & 1 != 0;
                if offset == 0 && !more {
                    // Atomic fragment (RFC 6946): not really fragmented.
                    nh = next;
                    continue;
                }
                if declared > data.len() {
                    w.fragments += 1;
                    return Walk::Malformed(MalformedReason::FragmentTruncated);
                }
                let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
                    return Walk::NotUdp;
                };
                let key = FragKey::V6 {
                    src: s.octets(),
                    dst: d.octets(),
                    id,
                };
                let proto = if offset == 0 { Some(next) } else { None };
                return w.fragment(key, proto, offset, more, tail(data, off), (src, dst));
            }
            _ => {
                let payload = tail(data, off);
                let ip_len = declared.saturating_sub(off);
                return walk_ip_proto(nh, payload, ip_len, src, dst, w);
            }
        }
    }
    Walk::Malformed(MalformedReason::Ipv6ExtensionTruncated)
}

/// Dispatches on the IP protocol number. `payload` holds the captured bytes (at
/// most `ip_len`), `ip_len` the length the IP header declares.
pub(crate) fn walk_ip_proto<'a>(
    proto: u8,
    payload: &'a [u8],
    ip_len: usize,
    src: IpAddr,
    dst: IpAddr,
    w: &mut Walker<'_>,
) -> Walk<'a> {
    match proto {
        IPPROTO_UDP => walk_udp(payload, ip_len, src, dst, w),
        IPPROTO_GRE | IPPROTO_IPIP | IPPROTO_IPV6 if w.tunnels => {
            if !w.enter() {
                return Walk::Malformed(MalformedReason::TooManyEncapsulations);
            }
            match proto {
                IPPROTO_GRE => walk_gre(payload, w),
                IPPROTO_IPIP => walk_ipv4(payload, w),
                _ => walk_ipv6(payload, w),
            }
        }
        _ => Walk::NotUdp,
    }
}

/// GRE (RFC 2784, RFC 2890 keys and sequence numbers), including ERSPAN.
fn walk_gre<'a>(data: &'a [u8], w: &mut Walker<'_>) -> Walk<'a> {
    let (Some(flags), Some(proto)) = (be16(data, 0), be16(data, 2)) else {
        return Walk::Malformed(MalformedReason::TunnelHeaderTruncated);
    };
    if flags & 0x0007 != 0 || flags & 0x4000 != 0 {
        // Version 1 (PPTP) or source routing: not followed.
        return Walk::NotUdp;
    }
    let seq = flags & 0x1000 != 0;
    let mut hl = 4;
    for bit in [0x8000u16, 0x2000, 0x1000] {
        if flags & bit != 0 {
            hl += 4;
        }
    }
    if data.len() < hl {
        return Walk::Malformed(MalformedReason::TunnelHeaderTruncated);
    }
    let inner = tail(data, hl);
    match proto {
        ETHERTYPE_ERSPAN2 => {
            // Type II has an 8-byte header and a sequence number; type I has neither.
            let skip = if seq { 8 } else { 0 };
            if inner.len() < skip {
                return Walk::Malformed(MalformedReason::TunnelHeaderTruncated);
            }
            walk_ethernet(tail(inner, skip), w)
        }
        ETHERTYPE_ERSPAN3 => {
            // 12-byte header, plus an 8-byte platform subheader when O is set.
            let (Some(b11), Some(b10)) = (byte(inner, 11), byte(inner, 10)) else {
                return Walk::Malformed(MalformedReason::TunnelHeaderTruncated);
            };
            let frame_type = (b10 >> 2) & 0x1F;
            let skip = if b11 & 1 != 0 { 20 } else { 12 };
            if inner.len() < skip {
                return Walk::Malformed(MalformedReason::TunnelHeaderTruncated);
            }
            if frame_type != 0 {
                return Walk::NotUdp;
            }
            walk_ethernet(tail(inner, skip), w)
        }
        et => walk_ethertype(et, inner, w),
    }
}

fn walk_udp<'a>(
    payload: &'a [u8],
    ip_len: usize,
    src: IpAddr,
    dst: IpAddr,
    w: &mut Walker<'_>,
) -> Walk<'a> {
    let (Some(sport), Some(dport), Some(ulen)) =
        (be16(payload, 0), be16(payload, 2), be16(payload, 4))
    else {
        return Walk::Malformed(MalformedReason::UdpHeaderTruncated);
    };
    if payload.len() < 8 {
        return Walk::Malformed(MalformedReason::UdpHeaderTruncated);
    }
    let outer = UdpSeg {
        src,
        dst,
        seg: payload,
        ip_len,
    };
    if w.tunnels && (dport == VXLAN_PORT || sport == TEREDO_PORT || dport == TEREDO_PORT) {
        let end = if ulen >= 8 {
            usize::from(ulen).min(payload.len())
        } else {
            payload.len()
        };
        let data = payload.get(8..end).unwrap_or(&[]);
        let inner = if dport == VXLAN_PORT {
            walk_vxlan(data, w)
        } else {
            walk_teredo(data, w)
        };
        return match inner {
            Some(r @ (Walk::Udp(_) | Walk::Completed(_) | Walk::Fragment)) => r,
            _ => Walk::Udp(outer),
        };
    }
    Walk::Udp(outer)
}

/// VXLAN (RFC 7348): an 8-byte header with the I flag, then Ethernet.
fn walk_vxlan<'a>(data: &'a [u8], w: &mut Walker<'_>) -> Option<Walk<'a>> {
    let flags = byte(data, 0)?;
    if flags & 0x08 == 0 || data.len() < 8 + 14 || !w.enter() {
        return None;
    }
    Some(walk_ethernet(tail(data, 8), w))
}

/// Teredo (RFC 4380): optional authentication and origin-indication headers, then IPv6.
fn walk_teredo<'a>(data: &'a [u8], w: &mut Walker<'_>) -> Option<Walk<'a>> {
    let mut at = 0usize;
    if be16(data, at)? == 0x0001 {
        let id_len = usize::from(byte(data, at + 2)?);
        let au_len = usize::from(byte(data, at + 3)?);
        at += 4 + id_len + au_len + 8 + 1;
    }
    if be16(data, at)? == 0x0000 {
        at += 8;
    }
    let ip = data.get(at..)?;
    let plen = usize::from(be16(ip, 4)?);
    if byte(ip, 0)? >> 4 != 6 || 40 + plen != ip.len() || !w.enter() {
        return None;
    }
    Some(walk_ipv6(ip, w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reassembly::ReassemblyLimits;

    fn walker(r: &mut Reassembler) -> Walker<'_> {
        Walker {
            reasm: Some(r),
            in_reassembled: false,
            now: Timestamp::default(),
            tunnels: true,
            depth: 0,
            fragments: 0,
            src_mac: None,
        }
    }

    #[test]
    fn never_panics_on_short_input() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let big: Vec<u8> = (0..200u8).collect();
        for lt in [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 999] {
            for n in 0..big.len() {
                let mut w = walker(&mut r);
                let _ = walk_link(lt, &big[..n], &mut w);
            }
        }
        for et in [0x0800, 0x86DD, 0x8100, 0x6558, 0x8864, 0x8847] {
            for n in 0..64 {
                let mut w = walker(&mut r);
                let _ = walk_ethertype(et, &big[..n], &mut w);
                let mut w = walker(&mut r);
                let _ = walk_gre(&big[..n], &mut w);
                let mut w = walker(&mut r);
                let _ = walk_teredo(&big[..n], &mut w);
            }
        }
    }
}
