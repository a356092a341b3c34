//! Events the node hands to its user: name-table changes (RFC 1001 §15.2), delivered
//! datagrams (RFC 1002 §5.3.3), completed commands, and drops with their reason.

use crate::error::{LookupError, SendError};
use bytes::Bytes;
use nbdgm_wire::datagram::{MsgType, NodeType};
use nbdgm_wire::mailslot::MailslotWrite;
use nbdgm_wire::Name;
use serde::{Serialize, Serializer};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::Range;

/// Handle of a command whose result comes later as an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RequestId(pub u64);

/// Why one of our names went into conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictReason {
    /// A NEGATIVE NAME REGISTRATION RESPONSE answered our registration.
    RegistrationRefused,
    /// A NAME CONFLICT DEMAND arrived for the name.
    ConflictDemand,
    /// Our broadcast query got different unique answers (the name is someone else's;
    /// we sent a conflict demand to the later responder, `by`).
    DuplicateQueryAnswers,
    /// P-node: no NBNS answered the registration (RFC 1002 §5.1.2.1 "NBNS is down.
    /// Cannot claim name"); `by` is `None`.
    NbnsUnavailable,
    /// The NBNS refused a NAME REFRESH REQUEST (RFC 1002 §5.1.2.6: "assume in conflict").
    RefreshRefused,
    /// The NBNS answered with an END-NODE CHALLENGE and the owner it named still
    /// holds the name (RFC 1002 §5.1.2.1).
    ChallengeLost,
}

/// One ADDR_ENTRY of a name, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct NameAddress {
    pub addr: Ipv4Addr,
    pub group: bool,
    /// Owner node type (ONT bits of NB_FLAGS).
    pub ont: NodeType,
}

impl NameAddress {
    pub(crate) fn from_nb(a: &nbdgm_wire::nbns::NbAddress) -> Self {
        NameAddress {
            addr: a.ip,
            group: a.is_group(),
            ont: NodeType::from_bits((a.flags >> 13) as u8),
        }
    }
}

/// One name of a NODE STATUS RESPONSE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusName {
    #[serde(serialize_with = "ser_name")]
    pub name: Name,
    pub group: bool,
    /// NAME_FLAGS as received (G, ONT, DRG, CNF, ACT, PRM).
    pub flags: u16,
}

/// A decoded NODE STATUS RESPONSE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatusReply {
    pub names: Vec<StatusName>,
    /// UNIT_ID of the statistics (Windows: the MAC address).
    pub unit_id: Option<[u8; 6]>,
    /// The responder set TC: the list is incomplete.
    pub truncated: bool,
}

/// Result of a datagram send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SendInfo {
    pub to: SocketAddrV4,
    pub fragments: usize,
}

/// A complete received datagram, as every consumer gets it (API subscribers, the
/// browser, the messenger, the tools): the user data once, shared, and its mailslot
/// write parsed once (MS-MAIL §2.2.1 over SMB), so consumers slice instead of parsing.
/// The layout of a fragmented datagram's pieces (DIGEST §2.4, §2.7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FragmentLayout {
    /// One UDP packet.
    #[default]
    Unfragmented,
    /// RFC 1001 §17.1.2: both names in the first fragment only, PACKET_OFFSET over the
    /// whole data section, DGM_LENGTH the total.
    Rfc,
    /// Both names repeated in every fragment, DGM_LENGTH per fragment, PACKET_OFFSET
    /// over user data only (Hertel's implementation, "Implementing CIFS").
    RepeatedNames,
}

impl FragmentLayout {
    pub fn is_unfragmented(&self) -> bool {
        *self == FragmentLayout::Unfragmented
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// UDP source.
    pub from: SocketAddrV4,
    /// SOURCE_IP / SOURCE_PORT from the datagram header.
    pub header_source: SocketAddrV4,
    pub msg_type: MsgType,
    #[serde(serialize_with = "ser_name")]
    pub source: Name,
    #[serde(serialize_with = "ser_name")]
    pub destination: Name,
    /// Arrived on the broadcast socket.
    pub broadcast: bool,
    /// The destination is an active name of ours, or `*` (in our scope) for BROADCAST.
    pub for_us: bool,
    /// UDP packets it came in (1 when not fragmented).
    pub fragments: usize,
    /// How its fragments were laid out (RFC 1001 §17.1.2 or names repeated in every
    /// fragment); `Unfragmented` for a single packet.
    #[serde(skip_serializing_if = "FragmentLayout::is_unfragmented")]
    pub fragment_layout: FragmentLayout,
    /// The complete user data; clones and slices share it (reference counts).
    pub data: Bytes,
    /// Mailslot name when the data is an SMB mailslot write (e.g. `\MAILSLOT\BROWSE`).
    pub mailslot: Option<String>,
    /// Where the mailslot write's data lies in [`Delivery::data`] (set with `mailslot`).
    #[serde(skip)]
    pub mailslot_data: Option<Range<usize>>,
    /// `Some(id)`: the node's local copy of a group or broadcast datagram it sent itself
    /// with request `id` (the copy that loops back from the network is dropped as
    /// [`DropReason::OwnPacket`]); a daemon hands it to its other local users, not to
    /// the one that sent it. `None` for everything that came from the network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_copy: Option<RequestId>,
}

impl Delivery {
    /// Bytes of the datagram as sent (header, names and data; fragments joined): the
    /// size of the request when an application answers it.
    pub fn datagram_len(&self) -> usize {
        14 + self.source.encoded_len() + self.destination.encoded_len() + self.data.len()
    }

    /// The mailslot name, when the data is a mailslot write.
    pub fn mailslot(&self) -> Option<&str> {
        self.mailslot.as_deref()
    }

    /// True when the data is a write to mailslot `name` (compared ignoring ASCII case,
    /// as SMB does).
    pub fn is_mailslot(&self, name: &str) -> bool {
        self.mailslot()
            .is_some_and(|m| m.eq_ignore_ascii_case(name))
    }

    /// The mailslot write's data (the frame it carries, without the SMB header).
    pub fn mailslot_data(&self) -> Option<&[u8]> {
        self.data.get(self.mailslot_data.clone()?)
    }

    /// [`Delivery::mailslot_data`] as shared bytes (no copy).
    pub fn mailslot_bytes(&self) -> Option<Bytes> {
        let r = self.mailslot_data.clone()?;
        (r.end <= self.data.len() && r.start <= r.end).then(|| self.data.slice(r))
    }

    /// The mailslot write in `data`, parsed (once): its name and where its data lies.
    pub fn parse_mailslot(data: &[u8]) -> (Option<String>, Option<Range<usize>>) {
        match MailslotWrite::parse_ref(data) {
            Ok(m) => {
                let start = (m.data.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
                let range = start..start + m.data.len();
                let inside = range.end <= data.len();
                (Some(m.name), inside.then_some(range))
            }
            Err(_) => (None, None),
        }
    }
}

/// Why a packet (or a fragment set) was dropped. Each has a counter in
/// [`crate::Stats::dropped`] under the same snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Our own packet looped back (UDP source = our address and port).
    OwnPacket,
    /// A UDP source that cannot be a node (broadcast, multicast, unspecified, port 0):
    /// never answered, so the node cannot be used to reflect traffic.
    BadSource,
    /// A name-service packet the codec rejected (or with no question where one is needed).
    MalformedNamePacket,
    /// A datagram-service packet the codec rejected.
    MalformedDatagram,
    /// A response matching no pending transaction (or from the wrong responder).
    UnsolicitedResponse,
    /// A name-service opcode a B-node does not handle (WACK, refresh, unknown).
    UnsupportedOpcode,
    /// DATAGRAM QUERY (0x14–0x16): for NBDDs, ignored by end nodes.
    NbddQuery,
    /// A datagram to a name we do not hold (only when `deliver_not_for_us` is off).
    NotOwned,
    /// Header SOURCE_IP differs from the UDP source (policy `drop`).
    SourceIpMismatch,
    /// NODE STATUS request while answering is disabled.
    NodeStatusDisabled,
    /// Our reply would exceed `reply_limit_factor` × request or the packet size limit.
    ReplyTooLarge,
    /// A fragment identical to one already held.
    FragmentDuplicate,
    /// Fragments that overlap or disagree: the whole set is dropped.
    FragmentInconsistent,
    /// A fragment set larger than `max_datagram_bytes`.
    FragmentOversize,
    /// A fragment set evicted (or a fragment refused) to stay under the reassembly caps.
    FragmentEvicted,
    /// A fragment set not completed within `fragment_timeout`.
    FragmentTimeout,
    /// A P-node ignores everything that arrived by broadcast (RFC 1002 §5.1.2.5, §5.3.3).
    BroadcastIgnored,
    /// An answer with the NAME_TRN_ID of one of our unicast requests from another
    /// address than the one we asked (issue 12 item 9: off-path forgery).
    AnswerWrongSource,
    /// An answer with the NAME_TRN_ID of one of our requests for another name.
    AnswerWrongName,
}

impl DropReason {
    pub const ALL: [DropReason; 19] = [
        DropReason::OwnPacket,
        DropReason::BadSource,
        DropReason::MalformedNamePacket,
        DropReason::MalformedDatagram,
        DropReason::UnsolicitedResponse,
        DropReason::UnsupportedOpcode,
        DropReason::NbddQuery,
        DropReason::NotOwned,
        DropReason::SourceIpMismatch,
        DropReason::NodeStatusDisabled,
        DropReason::ReplyTooLarge,
        DropReason::FragmentDuplicate,
        DropReason::FragmentInconsistent,
        DropReason::FragmentOversize,
        DropReason::FragmentEvicted,
        DropReason::FragmentTimeout,
        DropReason::BroadcastIgnored,
        DropReason::AnswerWrongSource,
        DropReason::AnswerWrongName,
    ];

    /// The snake_case name (as in JSON and the stats).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::OwnPacket => "own_packet",
            DropReason::BadSource => "bad_source",
            DropReason::MalformedNamePacket => "malformed_name_packet",
            DropReason::MalformedDatagram => "malformed_datagram",
            DropReason::UnsolicitedResponse => "unsolicited_response",
            DropReason::UnsupportedOpcode => "unsupported_opcode",
            DropReason::NbddQuery => "nbdd_query",
            DropReason::NotOwned => "not_owned",
            DropReason::SourceIpMismatch => "source_ip_mismatch",
            DropReason::NodeStatusDisabled => "node_status_disabled",
            DropReason::ReplyTooLarge => "reply_too_large",
            DropReason::FragmentDuplicate => "fragment_duplicate",
            DropReason::FragmentInconsistent => "fragment_inconsistent",
            DropReason::FragmentOversize => "fragment_oversize",
            DropReason::FragmentEvicted => "fragment_evicted",
            DropReason::FragmentTimeout => "fragment_timeout",
            DropReason::BroadcastIgnored => "broadcast_ignored",
            DropReason::AnswerWrongSource => "answer_wrong_source",
            DropReason::AnswerWrongName => "answer_wrong_name",
        }
    }
}

/// Something the user of the node should know about. Serializes with an `event` tag
/// in snake_case (`{"event":"name_registered","name":"FRED<00>","group":false}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    NameRegistered {
        #[serde(serialize_with = "ser_name")]
        name: Name,
        group: bool,
    },
    NameConflict {
        #[serde(serialize_with = "ser_name")]
        name: Name,
        by: Option<SocketAddrV4>,
        reason: ConflictReason,
    },
    NameReleased {
        #[serde(serialize_with = "ser_name")]
        name: Name,
    },
    Delivered(Delivery),
    LookupDone {
        id: RequestId,
        #[serde(serialize_with = "ser_name")]
        name: Name,
        result: Result<Vec<NameAddress>, LookupError>,
    },
    StatusDone {
        id: RequestId,
        addr: Ipv4Addr,
        result: Result<NodeStatusReply, LookupError>,
    },
    SendDone {
        id: RequestId,
        result: Result<SendInfo, SendError>,
    },
    /// For logging; the runtime rate-limits.
    Dropped {
        reason: DropReason,
        from: SocketAddrV4,
    },
    /// Header SOURCE_IP/PORT differ from the UDP source (policy `log`); the datagram
    /// was delivered.
    SourceIpMismatch {
        from: SocketAddrV4,
        header: SocketAddrV4,
    },
}

impl Event {
    /// Events input can trigger in bulk; they are dropped first when the queue is full.
    pub(crate) fn is_bulk(&self) -> bool {
        matches!(
            self,
            Event::Dropped { .. } | Event::SourceIpMismatch { .. } | Event::Delivered(_)
        )
    }
}

pub(crate) fn ser_name<S: Serializer>(n: &Name, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(n)
}
