//! The engine's input: one UDP datagram with its capture metadata.

use nbdgm_capture::Timestamp;
use std::net::SocketAddr;

/// One UDP datagram seen on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// 1-based frame number in the capture (or packet count when live).
    pub frame: u64,
    /// Capture time.
    pub time: Timestamp,
    /// UDP source.
    pub src: SocketAddr,
    /// UDP destination.
    pub dst: SocketAddr,
    /// Ethernet source address, when the link layer has one.
    pub src_mac: Option<[u8; 6]>,
    /// UDP payload.
    pub payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// The packet of a datagram read from a capture.
    pub fn from_capture(d: &'a nbdgm_capture::UdpDatagram<'_>) -> Packet<'a> {
        Packet {
            frame: d.frame,
            time: d.time,
            src: d.src,
            dst: d.dst,
            src_mac: d.src_mac,
            payload: &d.payload,
        }
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}
