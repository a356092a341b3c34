//! What the NBDD hands back to its runtime: packets to send, requests for the NBNS
//! (RFC 1001 §11.3: the NBDD learns group members from name information, here through
//! the runtime), and events for logs and metrics.

use crate::stats::DropReason;
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4};

/// A UDP payload to send from the NBDD's datagram socket (`service` is always
/// [`Service::Datagram`]). `reply_to` is `Some(request_len)` for DATAGRAM QUERY answers
/// and DATAGRAM ERRORs (their UDP source is `to`), `None` for relayed copies.
pub use nbdgm_base::{Service, Transmit};

/// The answer to [`NbddAction::ResolveMembers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The group's member addresses. For the broadcast name `*` (+scope): every node
    /// the NBNS knows in the scope (RFC 1001 §11.3).
    Members(Vec<Ipv4Addr>),
    /// The NBNS does not know the name (cached negatively for `member_cache_ttl`).
    NotFound,
    /// The NBNS could not be asked (not cached).
    Failed,
}

/// Work the runtime must do and answer with [`crate::Nbdd::members_resolved`] or
/// [`crate::Nbdd::source_verified`]. Each is asked once while in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NbddAction {
    /// Look up the members of a group name (a NAME QUERY to the NBNS, or its table
    /// when the NBDD and NBNS are combined). `*` with the configured scope stands for
    /// "every node in the scope".
    ResolveMembers(Name),
    /// Is `name` registered in the NBNS with address `ip`?
    VerifySource(Name, Ipv4Addr),
}

/// Something that happened, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NbddEvent {
    /// A UDP packet was relayed to `copies` members.
    Relayed {
        from: SocketAddrV4,
        group: Name,
        copies: usize,
        truncated: bool,
    },
    /// A packet (or its relay) was dropped.
    Dropped {
        from: SocketAddrV4,
        reason: DropReason,
    },
    /// A DATAGRAM QUERY REQUEST was answered.
    QueryAnswered {
        to: SocketAddrV4,
        name: Name,
        positive: bool,
    },
    /// A DATAGRAM ERROR was sent.
    ErrorSent { to: SocketAddrV4, code: u8 },
    /// A DATAGRAM ERROR was received. RFC 1002 §5.3.4 would have the NBDD ask the NBNS
    /// to delete "the incorrect name and IP address", but the packet names neither
    /// (only the reporter's SOURCE_IP), so this is left to the runtime.
    ErrorReceived {
        from: SocketAddrV4,
        source_ip: Ipv4Addr,
        code: u8,
    },
}
