//! Error types: fatal capture-file errors and non-fatal per-frame problems.

use std::fmt;

use thiserror::Error;

use crate::time::Timestamp;

/// A fatal error: the capture file cannot be read (any further).
///
/// Frames read before the error have already been returned. Per-frame problems
/// (a frame too short for its headers, say) are never a `CaptureError`; they are
/// reported as [`FrameProblem`]s and reading goes on.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// Reading the underlying input failed.
    #[error("I/O error while reading the capture: {0}")]
    Io(#[from] std::io::Error),
    /// The input does not start with a pcap or pcapng magic number.
    #[error("not a pcap or pcapng file (magic 0x{magic:08x})")]
    NotCapture {
        /// The first four bytes of the input, read big-endian.
        magic: u32,
    },
    /// The input is empty.
    #[error("not a pcap or pcapng file (the input is empty)")]
    Empty,
    /// The input is shorter than any magic number.
    #[error("not a pcap or pcapng file (the input has only {len} bytes)")]
    TooShort {
        /// Number of bytes in the input.
        len: usize,
    },
    /// A capture variant this crate does not read.
    #[error("unsupported capture format: {0}")]
    Unsupported(String),
    /// The input ended in the middle of a file header, block or record.
    #[error("capture file truncated at byte offset {offset}: {what}")]
    Truncated {
        /// Offset in the file of the first byte of the incomplete header, block or record.
        offset: u64,
        /// What was being read.
        what: &'static str,
    },
    /// The file structure is damaged (impossible length, bad block framing).
    #[error("capture file corrupt at byte offset {offset}: {reason}")]
    Corrupt {
        /// Offset in the file of the damaged header, block or record.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

impl CaptureError {
    /// Byte offset in the file of the damage, for [`CaptureError::Truncated`] and
    /// [`CaptureError::Corrupt`].
    pub fn offset(&self) -> Option<u64> {
        match self {
            CaptureError::Truncated { offset, .. } | CaptureError::Corrupt { offset, .. } => {
                Some(*offset)
            }
            _ => None,
        }
    }
}

/// Why a frame was skipped. Such frames are counted in [`Stats`](crate::Stats) and
/// reported as [`Event::Skipped`](crate::Event::Skipped); they never stop reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MalformedReason {
    /// The record holds no bytes at all (captured length 0).
    EmptyFrame,
    /// The frame is shorter than its link-layer header (Ethernet, SLL, loopback).
    LinkHeaderTruncated,
    /// A VLAN tag, PPPoE or MPLS header is cut short.
    VlanTagTruncated,
    /// Fewer than 20 bytes where an IPv4 header must be, or fewer than IHL*4.
    Ipv4HeaderTruncated,
    /// IPv4 header with a version other than 4 or an IHL below 5.
    Ipv4BadHeader,
    /// IPv4 total length smaller than its header length.
    Ipv4BadTotalLength,
    /// Fewer than 40 bytes where an IPv6 header must be.
    Ipv6HeaderTruncated,
    /// IPv6 header with a version other than 6.
    Ipv6BadHeader,
    /// An IPv6 extension header runs past the end of the packet.
    Ipv6ExtensionTruncated,
    /// Fewer than 8 bytes where a UDP header must be.
    UdpHeaderTruncated,
    /// A GRE, ERSPAN, VXLAN or Teredo header is cut short.
    TunnelHeaderTruncated,
    /// More nested encapsulations than the decoder follows.
    TooManyEncapsulations,
    /// An IP fragment cut short by the capture's snapshot length: it cannot be reassembled.
    FragmentTruncated,
    /// A fragment inside a datagram that was itself reassembled from fragments.
    NestedFragment,
    /// A pcapng packet block names an interface no Interface Description Block defined.
    UnknownInterface,
    /// A pcapng block whose framing is intact but whose body is invalid.
    BadBlock,
    /// The frame's link-layer type is not one this crate decodes.
    UnsupportedLinktype,
}

impl MalformedReason {
    /// Every reason, in declaration order.
    pub const ALL: [MalformedReason; 17] = [
        MalformedReason::EmptyFrame,
        MalformedReason::LinkHeaderTruncated,
        MalformedReason::VlanTagTruncated,
        MalformedReason::Ipv4HeaderTruncated,
        MalformedReason::Ipv4BadHeader,
        MalformedReason::Ipv4BadTotalLength,
        MalformedReason::Ipv6HeaderTruncated,
        MalformedReason::Ipv6BadHeader,
        MalformedReason::Ipv6ExtensionTruncated,
        MalformedReason::UdpHeaderTruncated,
        MalformedReason::TunnelHeaderTruncated,
        MalformedReason::TooManyEncapsulations,
        MalformedReason::FragmentTruncated,
        MalformedReason::NestedFragment,
        MalformedReason::UnknownInterface,
        MalformedReason::BadBlock,
        MalformedReason::UnsupportedLinktype,
    ];

    pub(crate) const COUNT: usize = Self::ALL.len();

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// A short description of the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            MalformedReason::EmptyFrame => "empty frame (captured length 0)",
            MalformedReason::LinkHeaderTruncated => "frame shorter than its link-layer header",
            MalformedReason::VlanTagTruncated => "VLAN/PPPoE/MPLS header truncated",
            MalformedReason::Ipv4HeaderTruncated => "IPv4 header truncated",
            MalformedReason::Ipv4BadHeader => "invalid IPv4 header (version or IHL)",
            MalformedReason::Ipv4BadTotalLength => "IPv4 total length smaller than its header",
            MalformedReason::Ipv6HeaderTruncated => "IPv6 header truncated",
            MalformedReason::Ipv6BadHeader => "invalid IPv6 header (version)",
            MalformedReason::Ipv6ExtensionTruncated => "IPv6 extension header truncated",
            MalformedReason::UdpHeaderTruncated => "UDP header truncated",
            MalformedReason::TunnelHeaderTruncated => "tunnel header truncated",
            MalformedReason::TooManyEncapsulations => "too many nested encapsulations",
            MalformedReason::FragmentTruncated => {
                "IP fragment truncated by the snapshot length (not reassembled)"
            }
            MalformedReason::NestedFragment => "IP fragment inside a reassembled datagram",
            MalformedReason::UnknownInterface => "packet block names an undefined interface",
            MalformedReason::BadBlock => "invalid pcapng block body",
            MalformedReason::UnsupportedLinktype => "unsupported link-layer type",
        }
    }
}

impl fmt::Display for MalformedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A frame that was skipped, with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameProblem {
    /// 1-based frame number in the file.
    pub frame: u64,
    /// Capture time of the frame.
    pub time: Timestamp,
    /// Link-layer type of the frame (pcapng: of its interface; 0 when unknown).
    pub linktype: u32,
    /// Why the frame was skipped.
    pub reason: MalformedReason,
}

impl fmt::Display for FrameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frame {}: {}", self.frame, self.reason)?;
        if self.reason == MalformedReason::UnsupportedLinktype {
            write!(
                f,
                " {} ({})",
                self.linktype,
                crate::linktype::linktype_name(self.linktype)
            )?;
        }
        Ok(())
    }
}
