//! `nbdgm-capture`: UDP datagrams out of packet capture files.
//!
//! [`CaptureReader`] reads a capture from any [`std::io::Read`] (a file, stdin),
//! streaming and without per-packet allocation, and yields the UDP datagrams in
//! it, numbered by frame, with their timestamps, addresses and payloads.
//!
//! Formats and protocols, with the standards they follow:
//! - capture files: pcap (draft-ietf-opsawg-pcap; both byte orders, micro- and
//!   nanosecond timestamps) and pcapng (draft-ietf-opsawg-pcapng: sections,
//!   several interfaces with their own link types and `if_tsresol`/`if_tsoffset`,
//!   Enhanced, Simple and obsolete Packet Blocks; other blocks are skipped),
//!   parsed with the `pcap-parser` crate;
//! - link layers ([`linktype_name`]): Ethernet with any number of IEEE 802.1Q /
//!   802.1ad VLAN tags (0x8100, 0x88a8, 0x9100), LLC/SNAP, PPPoE sessions and MPLS;
//!   Linux cooked capture v1 and v2; raw IP (101, and 12/14); BSD loopback (0) and
//!   OpenBSD loopback (108); raw IPv4 (228) and IPv6 (229);
//! - IPv4 (RFC 791) with fragment reassembly (RFC 791 §3.2; bounded, see
//!   [`ReassemblyLimits`]); IPv6 (RFC 8200) with its extension headers and fragment
//!   reassembly (§4.5);
//! - tunnels: GRE (RFC 2784/2890) with ERSPAN types I–III, IP-in-IP (RFC 2003),
//!   IPv6-in-IPv4 (RFC 4213), VXLAN (RFC 7348), Teredo (RFC 4380);
//! - UDP (RFC 768): length and checksum checks reported as [`UdpWarnings`].
//!
//! [`FrameDecoder`] decodes single frames with the same logic, for callers that
//! capture themselves; with the cargo feature `live`, `LiveCapture` captures from
//! a network interface through libpcap with a kernel (BPF) filter.
//!
//! Nothing here panics on any input. A file that is not a capture, or is truncated
//! or corrupt, gives a [`CaptureError`] (with the byte offset of the damage, after
//! every datagram before it); a frame too short for its headers is skipped and
//! reported as a [`FrameProblem`] and counted in [`Stats`], and reading goes on.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod decode;
mod error;
mod filter;
mod frame;
mod linktype;
#[cfg(feature = "live")]
mod live;
mod reader;
mod reassembly;
mod time;
mod udp;

pub use error::{CaptureError, FrameProblem, MalformedReason};
pub use filter::PortFilter;
pub use frame::FrameDecoder;
pub use linktype::{
    linktype_name, linktype_supported, LINKTYPE_DLT_RAW12, LINKTYPE_DLT_RAW14, LINKTYPE_ETHERNET,
    LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_LOOP,
    LINKTYPE_NULL, LINKTYPE_RAW,
};
#[cfg(feature = "live")]
pub use live::{bpf_filter, LiveCapture, LiveError, LiveOptions, LiveStats, DEFAULT_LIVE_PORTS};
pub use reader::{
    CaptureFormat, CaptureOptions, CaptureReader, Event, Interface, OwnedUdpIter, Stats,
    UdpDatagram,
};
pub use reassembly::{ReassemblyDrops, ReassemblyLimits, MAX_REASSEMBLED};
pub use time::{EpochMicros, Rfc3339Micros, Timestamp};
pub use udp::UdpWarnings;
