//! One captured frame to its UDP datagram: the link/IP/tunnel walk (see `decode`),
//! IP reassembly (RFC 791 §3.2, RFC 8200 §4.5), the port filter and the UDP checks
//! (RFC 768). Shared by [`CaptureReader`](crate::CaptureReader) and live capture.

use std::borrow::Cow;
use std::net::SocketAddr;

use crate::decode::{walk_ip_proto, walk_ipv6_payload, walk_link, UdpSeg, Walk, Walker};
use crate::error::{FrameProblem, MalformedReason};
use crate::filter::PortFilter;
use crate::reader::{CaptureOptions, Event, Stats, UdpDatagram};
use crate::reassembly::Reassembler;
use crate::time::Timestamp;
use crate::udp;

/// A UDP datagram located in a frame (or in the reassembler's output), not yet
/// handed out: the payload is `start..end` of the frame's buffer, or of the
/// reassembler's output when `reassembled`.
#[derive(Debug)]
pub(crate) struct Located {
    pub frame: u64,
    pub time: Timestamp,
    pub interface: u32,
    pub linktype: u32,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub src_mac: Option<[u8; 6]>,
    pub reassembled: bool,
    pub start: usize,
    pub end: usize,
    pub udp_length: u16,
    pub udp_checksum: u16,
    pub warnings: udp::UdpWarnings,
}

impl Located {
    /// The datagram, its payload taken from `buf` (the frame's buffer or the
    /// reassembler's output, as `reassembled` says).
    pub(crate) fn build<'a>(&self, buf: &'a [u8]) -> UdpDatagram<'a> {
        let payload = buf.get(self.start..self.end);
        debug_assert!(payload.is_some(), "payload range out of the buffer");
        UdpDatagram {
            frame: self.frame,
            time: self.time,
            interface: self.interface,
            linktype: self.linktype,
            src: self.src,
            dst: self.dst,
            src_mac: self.src_mac,
            payload: Cow::Borrowed(payload.unwrap_or(&[])),
            ip_reassembled: self.reassembled,
            udp_length: self.udp_length,
            udp_checksum: self.udp_checksum,
            warnings: self.warnings,
        }
    }
}

/// Where a frame came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameCtx {
    pub frame: u64,
    pub time: Timestamp,
    pub interface: u32,
    pub linktype: u32,
}

/// Decodes captured frames one at a time into UDP datagrams, with the same
/// link-layer, IP, tunnel and reassembly logic as [`CaptureReader`](crate::CaptureReader)
/// (which uses it), the port filter, bounded reassembly and [`Stats`].
///
/// A frame yields at most one datagram: its own, or the one whose reassembly it
/// completes. Nothing here panics on any input.
///
/// ```
/// use nbdgm_capture::{CaptureOptions, Event, FrameDecoder, Timestamp, LINKTYPE_ETHERNET};
///
/// let mut dec = FrameDecoder::new(CaptureOptions::default());
/// let frame = [0u8; 10]; // too short for an Ethernet header
/// let got = dec.decode(LINKTYPE_ETHERNET, &frame, Timestamp::default(), 1);
/// assert!(matches!(got, Some(Event::Skipped(_))));
/// assert_eq!(dec.stats().malformed_frames, 1);
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    opts: CaptureOptions,
    reasm: Reassembler,
    pub(crate) stats: Stats,
}

impl FrameDecoder {
    /// A decoder with `opts` (`buffer_size` is not used).
    pub fn new(opts: CaptureOptions) -> FrameDecoder {
        FrameDecoder {
            reasm: Reassembler::new(opts.reassembly),
            opts,
            stats: Stats::default(),
        }
    }

    /// Replaces the port filter (takes effect from the next frame).
    pub fn set_port_filter(&mut self, ports: PortFilter) {
        self.opts.ports = ports;
    }

    /// Decodes frame number `frame` of link-layer type `linktype` (a `LINKTYPE_*`
    /// value), captured at `time`: `Some(Event::Udp)` for a datagram that passes the
    /// port filter (interface 0), `Some(Event::Skipped)` for a malformed or
    /// undecodable frame, `None` otherwise (not UDP, filtered out, a fragment held
    /// for reassembly). The payload borrows `data` or the decoder.
    pub fn decode<'a>(
        &'a mut self,
        linktype: u32,
        data: &'a [u8],
        time: Timestamp,
        frame: u64,
    ) -> Option<Event<'a>> {
        self.stats.frames += 1;
        let ctx = FrameCtx {
            frame,
            time,
            interface: 0,
            linktype,
        };
        match self.locate(&ctx, data, data.as_ptr() as usize)? {
            Ok(loc) if loc.reassembled => Some(Event::Udp(loc.build(self.reasm.output()))),
            Ok(loc) => Some(Event::Udp(loc.build(data))),
            Err(p) => Some(Event::Skipped(p)),
        }
    }

    /// Counters so far (`frames` counts the calls to [`FrameDecoder::decode`]).
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.reassembly_dropped = self.reasm.drops;
        s.reassembly_overlaps = self.reasm.overlaps;
        s
    }

    /// Ends the input: datagrams still incomplete are dropped and counted in
    /// `reassembly_dropped.incomplete_at_end`.
    pub fn finish(&mut self) {
        self.reasm.finish();
    }

    pub(crate) fn reassembled_output(&self) -> &[u8] {
        self.reasm.output()
    }

    /// Counts a skipped frame and describes it.
    pub(crate) fn problem(
        &mut self,
        frame: u64,
        linktype: u32,
        time: Timestamp,
        reason: MalformedReason,
    ) -> FrameProblem {
        self.stats.count_malformed(reason);
        FrameProblem {
            frame,
            time,
            linktype,
            reason,
        }
    }

    /// Decodes one frame; the payload range of a datagram found in `data` is
    /// relative to `base` (the address of the start of the caller's buffer).
    pub(crate) fn locate(
        &mut self,
        ctx: &FrameCtx,
        data: &[u8],
        base: usize,
    ) -> Option<Result<Located, FrameProblem>> {
        let (linktype, time) = (ctx.linktype, ctx.time);
        let reassemble = self.reasm.enabled();
        let mut w = Walker {
            reasm: if reassemble {
                Some(&mut self.reasm)
            } else {
                None
            },
            in_reassembled: false,
            now: time,
            tunnels: self.opts.tunnels,
            depth: 0,
            fragments: 0,
            src_mac: None,
        };
        let walk = walk_link(linktype, data, &mut w);
        let src_mac = w.src_mac;
        self.stats.ip_fragments += w.fragments;
        match walk {
            Walk::Udp(seg) => self.udp_found(ctx, src_mac, &seg, base, false).map(Ok),
            Walk::Completed(c) => {
                self.stats.reassembled += 1;
                let out = self.reasm.output();
                let mut w = Walker {
                    reasm: None,
                    in_reassembled: true,
                    now: time,
                    tunnels: self.opts.tunnels,
                    depth: 0,
                    fragments: 0,
                    src_mac: None,
                };
                let walk = if c.src.is_ipv6() {
                    walk_ipv6_payload(c.proto, out, out.len(), c.src, c.dst, &mut w)
                } else {
                    walk_ip_proto(c.proto, out, out.len(), c.src, c.dst, &mut w)
                };
                let fragments = w.fragments;
                let out_base = out.as_ptr() as usize;
                let found = match walk {
                    Walk::Udp(seg) => Ok(Some(udp_found(
                        &mut self.stats,
                        &self.opts,
                        ctx,
                        src_mac,
                        &seg,
                        out_base,
                        true,
                    ))),
                    Walk::Malformed(reason) => Err(reason),
                    _ => Ok(None),
                };
                self.stats.ip_fragments += fragments;
                match found {
                    Ok(Some(loc)) => loc.map(Ok),
                    Ok(None) => {
                        self.stats.non_udp += 1;
                        None
                    }
                    Err(reason) => Some(Err(self.problem(ctx.frame, linktype, time, reason))),
                }
            }
            Walk::Fragment => None,
            Walk::NotUdp => {
                self.stats.non_udp += 1;
                None
            }
            Walk::Unsupported => Some(Err(self.problem(
                ctx.frame,
                linktype,
                time,
                MalformedReason::UnsupportedLinktype,
            ))),
            Walk::Malformed(reason) => Some(Err(self.problem(ctx.frame, linktype, time, reason))),
        }
    }

    fn udp_found(
        &mut self,
        ctx: &FrameCtx,
        src_mac: Option<[u8; 6]>,
        seg: &UdpSeg<'_>,
        base: usize,
        reassembled: bool,
    ) -> Option<Located> {
        udp_found(
            &mut self.stats,
            &self.opts,
            ctx,
            src_mac,
            seg,
            base,
            reassembled,
        )
    }
}

/// Applies the port filter and the UDP checks; locates the payload relative to `base`.
fn udp_found(
    stats: &mut Stats,
    opts: &CaptureOptions,
    ctx: &FrameCtx,
    src_mac: Option<[u8; 6]>,
    seg: &UdpSeg<'_>,
    base: usize,
    reassembled: bool,
) -> Option<Located> {
    stats.udp += 1;
    let (sport, dport) = udp::ports(seg);
    if !opts.ports.matches(sport, dport) {
        return None;
    }
    stats.udp_matched += 1;
    let info = udp::inspect(seg, opts.verify_checksums);
    stats.udp_truncated += u64::from(info.warnings.truncated);
    stats.udp_bad_length += u64::from(info.warnings.bad_length);
    stats.udp_bad_checksum +=
        u64::from(info.warnings.bad_checksum || info.warnings.zero_checksum_ipv6);
    let seg_start = (seg.seg.as_ptr() as usize).wrapping_sub(base);
    Some(Located {
        frame: ctx.frame,
        time: ctx.time,
        interface: ctx.interface,
        linktype: ctx.linktype,
        src: SocketAddr::new(seg.src, sport),
        dst: SocketAddr::new(seg.dst, dport),
        src_mac,
        reassembled,
        start: seg_start.saturating_add(info.start),
        end: seg_start.saturating_add(info.end),
        udp_length: info.length,
        udp_checksum: info.checksum,
        warnings: info.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linktype::{LINKTYPE_ETHERNET, LINKTYPE_RAW};
    use std::net::{IpAddr, Ipv4Addr};

    const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

    /// An IPv4 packet 198.51.100.1 -> 198.51.100.2 with `proto`, the fragment
    /// field `frag` and `body`.
    fn ipv4(frag: u16, id: u16, body: &[u8]) -> Vec<u8> {
        let total = u16::try_from(20 + body.len()).unwrap();
        let mut p = vec![0x45, 0];
        p.extend(total.to_be_bytes());
        p.extend(id.to_be_bytes());
        p.extend(frag.to_be_bytes());
        p.extend([64, 17, 0, 0, 198, 51, 100, 1, 198, 51, 100, 2]);
        p.extend(body);
        p
    }

    /// A UDP segment 1024 -> `dport` with a correct checksum.
    fn udp(dport: u16, payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(8 + payload.len()).unwrap();
        let mut u = vec![0x04, 0x00];
        u.extend(dport.to_be_bytes());
        u.extend(len.to_be_bytes());
        u.extend([0, 0]);
        u.extend(payload);
        let src = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        let dst = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));
        let c = udp::checksum(src, dst, &u);
        u[6..8].copy_from_slice(&c.to_be_bytes());
        u
    }

    /// Ethernet from `MAC`, with the VLAN tags `vlans`, carrying IPv4 `ip`.
    fn ether(vlans: &[u16], ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend(MAC);
        for v in vlans {
            f.extend([0x81, 0x00]);
            f.extend(v.to_be_bytes());
        }
        f.extend([0x08, 0x00]);
        f.extend(ip);
        f
    }

    fn netbios_decoder() -> FrameDecoder {
        FrameDecoder::new(CaptureOptions {
            ports: PortFilter::netbios(),
            ..CaptureOptions::default()
        })
    }

    #[test]
    fn ethernet_source_mac() {
        let mut dec = netbios_decoder();
        let f = ether(&[], &ipv4(0, 1, &udp(138, b"hello")));
        let Some(Event::Udp(d)) = dec.decode(LINKTYPE_ETHERNET, &f, Timestamp::new(5, 6), 7) else {
            panic!("no datagram");
        };
        assert_eq!(d.src_mac, Some(MAC));
        assert_eq!(d.frame, 7);
        assert_eq!(d.time, Timestamp::new(5, 6));
        assert_eq!(&*d.payload, b"hello");
        assert_eq!(d.dst.port(), 138);
        assert!(d.warnings.is_empty(), "{}", d.warnings);
        // Raw IP has no Ethernet header: no MAC.
        let raw = ipv4(0, 1, &udp(138, b"x"));
        let Some(Event::Udp(d)) = dec.decode(LINKTYPE_RAW, &raw, Timestamp::default(), 8) else {
            panic!("no datagram");
        };
        assert_eq!(d.src_mac, None);
        assert_eq!(dec.stats().frames, 2);
        assert_eq!(dec.stats().udp_matched, 2);
    }

    #[test]
    fn vlan_tags_and_port_filter() {
        let mut dec = netbios_decoder();
        let f = ether(&[10, 20], &ipv4(0, 1, &udp(137, b"q")));
        let Some(Event::Udp(d)) = dec.decode(LINKTYPE_ETHERNET, &f, Timestamp::default(), 1) else {
            panic!("no datagram");
        };
        assert_eq!(d.src_mac, Some(MAC));
        assert_eq!(&*d.payload, b"q");
        let other = ether(&[10], &ipv4(0, 2, &udp(9999, b"q")));
        assert!(dec
            .decode(LINKTYPE_ETHERNET, &other, Timestamp::default(), 2)
            .is_none());
        let s = dec.stats();
        assert_eq!((s.udp, s.udp_matched), (2, 1));
    }

    #[test]
    fn fragments_are_reassembled() {
        let mut dec = netbios_decoder();
        let payload: Vec<u8> = (0..100u8).collect();
        let seg = udp(138, &payload);
        // 108 bytes of UDP: 56 in the first fragment (MF), 52 at offset 7*8.
        let first = ether(&[], &ipv4(0x2000, 42, &seg[..56]));
        let second = ether(&[5], &ipv4(7, 42, &seg[56..]));
        assert!(dec
            .decode(LINKTYPE_ETHERNET, &first, Timestamp::default(), 1)
            .is_none());
        let Some(Event::Udp(d)) = dec.decode(LINKTYPE_ETHERNET, &second, Timestamp::new(1, 0), 2)
        else {
            panic!("not reassembled");
        };
        assert!(d.ip_reassembled);
        assert_eq!(d.frame, 2);
        assert_eq!(d.src_mac, Some(MAC));
        assert_eq!(&*d.payload, &payload[..]);
        assert!(d.warnings.is_empty(), "{}", d.warnings);
        let s = dec.stats();
        assert_eq!((s.ip_fragments, s.reassembled), (2, 1));
    }

    #[test]
    fn incomplete_fragment_counted_at_finish() {
        let mut dec = netbios_decoder();
        let seg = udp(138, &[0u8; 100]);
        let first = ether(&[], &ipv4(0x2000, 9, &seg[..56]));
        assert!(dec
            .decode(LINKTYPE_ETHERNET, &first, Timestamp::default(), 1)
            .is_none());
        dec.finish();
        assert_eq!(dec.stats().reassembly_dropped.incomplete_at_end, 1);
    }

    #[test]
    fn malformed_frames_are_skipped() {
        let mut dec = netbios_decoder();
        let f = ether(&[], &[0x45, 0, 0]);
        let Some(Event::Skipped(p)) = dec.decode(LINKTYPE_ETHERNET, &f, Timestamp::default(), 3)
        else {
            panic!("not skipped");
        };
        assert_eq!(p.frame, 3);
        assert_eq!(p.reason, MalformedReason::Ipv4HeaderTruncated);
        assert!(matches!(
            dec.decode(9999, &f, Timestamp::default(), 4),
            Some(Event::Skipped(_))
        ));
        assert_eq!(dec.stats().malformed_frames, 2);
    }
}
