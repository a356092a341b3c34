//! The one outgoing-packet type of the sans-IO engines (node, NBNS, NBDD): a UDP
//! payload, where it goes, which local service socket sends it (RFC 1002 §6: the name
//! service on UDP 137, the datagram service on UDP 138) and, for answers, the size of
//! the request for the runtime's reply gate.

use serde::{Deserialize, Serialize};
use std::net::SocketAddrV4;

/// Which local UDP service a packet belongs to: the name service (137) or the
/// datagram service (138). The actual ports come from the engine's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Name,
    Datagram,
}

/// A UDP packet to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddrV4,
    /// Which local socket sends it (its port is the source port).
    pub service: Service,
    pub bytes: Vec<u8>,
    /// `to` is a broadcast address (the socket needs SO_BROADCAST).
    pub broadcast: bool,
    /// `Some(request_len)` when this answers a received packet of that size whose UDP
    /// source is `to`, for the runtime's reply gate (rate and amplification per
    /// destination); `None` for packets the engine starts itself or relays.
    pub reply_to: Option<usize>,
    /// `reply_to` marks an application's answer (the browser's, sent through the
    /// node), not one of the engine's own.
    pub app_reply: bool,
}

impl Transmit {
    /// A unicast packet from `service`'s socket; `reply_to` as in [`Transmit::reply_to`].
    pub fn unicast(
        service: Service,
        to: SocketAddrV4,
        bytes: Vec<u8>,
        reply_to: Option<usize>,
    ) -> Self {
        Transmit {
            to,
            service,
            bytes,
            broadcast: false,
            reply_to,
            app_reply: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicast_is_neither_broadcast_nor_an_application_reply() {
        let to = SocketAddrV4::new([192, 0, 2, 1].into(), 138);
        let t = Transmit::unicast(Service::Datagram, to, vec![1, 2], Some(40));
        assert_eq!(
            (t.to, t.service, t.reply_to),
            (to, Service::Datagram, Some(40))
        );
        assert!(!t.broadcast && !t.app_reply);
    }
}
