//! What the NBNS reports to its owner (RFC 1001 §15.1 name database changes,
//! RFC 1002 §5.1.4.1 challenge outcomes).

use nbdgm_wire::Name;
use std::net::Ipv4Addr;

/// Why a request was refused with a negative response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefuseReason {
    /// Held (unique) by another node; the owner defended it or refresh by a stranger.
    Active,
    /// Unique request for a group name or group request for a unique name.
    KindMismatch,
    /// `max_names` reached.
    TableFull,
    /// Group or multi-homed name full and eviction is off.
    GroupFull,
    /// Group or multi-homed name full of established (refreshed) addresses.
    GroupEstablished,
    /// The requester's address holds its quota of names or group memberships.
    SourceQuota,
    /// NB_ADDRESS is not the UDP source IP.
    SourceMismatch,
    /// NB_ADDRESS is 0.0.0.0, broadcast or multicast.
    BadAddress,
    /// A name that is never registered (`*`…).
    BadName,
    /// NAME OVERWRITE/UPDATE (RD = 0) to a secure server.
    UpdateNotSupported,
    /// Another requester's challenge for this name is running.
    ChallengeBusy,
    /// `max_pending_challenges` reached.
    ChallengesFull,
    /// Release of a name that is not held.
    UnknownName,
    /// Release of an address that the name does not have.
    NotOwner,
    /// The request had a question but no usable NB record.
    Malformed,
    /// A static name (configuration or API): the NBNS defends it like an owner.
    Static,
}

/// How an end-node challenge ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeOutcome {
    /// The owner answered positively: the requester was refused (ACT_ERR).
    OwnerDefended,
    /// The owner answered negatively: the name moved to the requester.
    OwnerReleased,
    /// The owner never answered: the name moved to the requester.
    OwnerSilent,
    /// Multi-homed registration: the owner's answer lists the requester's address
    /// (same host), so the address was added.
    Joined,
}

/// A change of the name table or a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NbnsEvent {
    /// A new name or a new address of a name (not sent for plain refreshes).
    Registered {
        name: Name,
        ip: Ipv4Addr,
        group: bool,
        ttl: u32,
    },
    /// Removed by a NAME RELEASE REQUEST from its owner.
    Released { name: Name, ip: Ipv4Addr },
    /// Removed at TTL + grace.
    Expired { name: Name, ip: Ipv4Addr },
    /// Removed to make room (full group / multi-homed name) or replaced after a
    /// challenge.
    Evicted { name: Name, ip: Ipv4Addr },
    /// A unique name held by `owners` was asked for by `requester`: challenge started.
    ChallengeStarted {
        name: Name,
        owners: Vec<Ipv4Addr>,
        requester: Ipv4Addr,
    },
    /// A challenge ended.
    Conflict {
        name: Name,
        owners: Vec<Ipv4Addr>,
        requester: Ipv4Addr,
        outcome: ChallengeOutcome,
    },
    /// A negative response was sent (`ip` is the requester's UDP source IP).
    Refused {
        name: Name,
        ip: Ipv4Addr,
        reason: RefuseReason,
    },
}
