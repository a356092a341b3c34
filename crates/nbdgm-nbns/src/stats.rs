//! NBNS counters: every refusal, drop, cap and truncation has one (RFC 1002 §5.1.4
//! behaviour made observable). Serialized with these field names for metrics.

use serde::Serialize;

/// Counters and gauges of an [`crate::NbnsServer`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NbnsStats {
    // --- input ---
    /// UDP packets handed to the engine.
    pub packets_received: u64,
    /// Not a name-service packet at all (parse error).
    pub malformed: u64,
    /// Parsed, but a request without the question/record it needs (FMT_ERR sent when
    /// there was a question to answer).
    pub malformed_request: u64,
    /// Received as a broadcast, or with the B flag: an NBNS is unicast-only
    /// (RFC 1002 §5.1.4).
    pub broadcast_ignored: u64,
    /// UDP source 0.0.0.0, broadcast, multicast or port 0.
    pub bad_source: u64,
    /// Name outside the configured scope.
    pub scope_mismatch: u64,
    /// NODE STATUS REQUESTs (ignored: the NBNS has no node name table to show).
    pub node_status_ignored: u64,
    /// WACK or unknown opcode in a request, or a query type other than NB.
    pub unsupported_opcode: u64,
    /// A response that matched no challenge (id, source) or had the wrong shape.
    pub unsolicited_response: u64,
    /// Addresses after the first in a request's NB record (ignored).
    pub extra_addresses_ignored: u64,
    /// State-changing requests dropped by the per-source token bucket.
    pub rate_limited: u64,
    /// State-changing requests dropped because the limiter tracks `max_sources`
    /// sources already, none idle.
    pub rate_table_full: u64,

    // --- registration (opcodes 5, 15, 8/9) ---
    pub registrations: u64,
    pub multihomed_registrations: u64,
    pub refreshes: u64,
    /// New names or new addresses granted.
    pub granted: u64,
    /// Existing addresses whose TTL was extended.
    pub refreshed: u64,
    /// Refresh of a name we don't hold, treated as a registration.
    pub refresh_unknown: u64,
    /// Name held by another node (ACT_ERR).
    pub refused_active: u64,
    /// Unique request for a group name or the other way round (ACT_ERR).
    pub refused_kind_mismatch: u64,
    /// `max_names` reached (SRV_ERR).
    pub refused_table_full: u64,
    /// Group / multi-homed name at `max_group_members` and eviction off (RFS_ERR).
    pub refused_group_full: u64,
    /// Group / multi-homed name at `max_group_members` and every address established
    /// (refreshed) and alive: a newcomer never evicts one (RFS_ERR).
    pub refused_group_established: u64,
    /// The source address holds `max_names_per_source` unique names (RFS_ERR).
    pub refused_names_per_source: u64,
    /// The source address holds `max_groups_per_source` group memberships (RFS_ERR).
    pub refused_groups_per_source: u64,
    /// NB_ADDRESS other than the UDP source IP (RFS_ERR).
    pub refused_source_mismatch: u64,
    /// NB_ADDRESS 0.0.0.0, broadcast or multicast (RFS_ERR).
    pub refused_bad_address: u64,
    /// `*`-names and other names that are never registered (RFS_ERR).
    pub refused_bad_name: u64,
    /// Registration, refresh or release of a static name by an address it does not
    /// list, or of the other kind (ACT_ERR: the NBNS defends static names).
    pub refused_static: u64,
    /// Names of the state file dropped at load: expired, out of scope, unreadable
    /// name, or beyond `max_names`.
    pub state_dropped: u64,
    /// Names loaded from the state file at start.
    pub state_loaded: u64,
    /// NAME OVERWRITE/UPDATE (RD = 0): a secure server refuses it (IMP_ERR).
    pub refused_update: u64,
    /// `<1D>` registrations granted without being stored (GroupAnswers::Broadcast).
    pub unstored_1d: u64,
    /// Addresses removed from a full group or multi-homed name to admit a newcomer
    /// (only expired or never-refreshed ones).
    pub members_evicted: u64,

    // --- end-node challenge (RFC 1002 §5.1.4.1) ---
    pub challenges_started: u64,
    /// Owner answered positively: the requester got ACT_ERR.
    pub challenges_defended: u64,
    /// Owner answered negatively: the name moved to the requester.
    pub challenges_owner_released: u64,
    /// Owner silent after all attempts: the name moved to the requester.
    pub challenges_owner_silent: u64,
    /// Multi-homed registration confirmed by the owner (same host): address added.
    pub challenges_joined: u64,
    /// Challenge queries sent (first attempts and retries).
    pub challenge_queries_sent: u64,
    /// A retransmitted request for a challenge already running (WACK sent again).
    pub challenge_duplicates: u64,
    /// A second requester while a challenge runs for the name (ACT_ERR).
    pub challenge_busy: u64,
    /// `max_pending_challenges` reached (SRV_ERR).
    pub challenges_full: u64,

    // --- release (opcode 6) ---
    pub releases: u64,
    pub released: u64,
    /// NB_ADDRESS other than the UDP source IP (RFS_ERR).
    pub release_source_mismatch: u64,
    /// Name not held (NAM_ERR).
    pub release_unknown: u64,
    /// Address not among the name's addresses (ACT_ERR).
    pub release_not_owner: u64,

    // --- query (opcode 0) ---
    pub queries: u64,
    pub queries_positive: u64,
    pub queries_negative: u64,
    /// Positive answers listing fewer addresses than the name has: cut to
    /// `max_answer_addresses`, to `max_reply_factor` × the request or to one datagram
    /// (a round-robin window of the addresses).
    pub answers_truncated: u64,
    /// Of those, answers with TC set: the whole list exceeds one 576-byte datagram
    /// (RFC 1002 §4.2.1.1).
    pub answers_tc: u64,

    // --- time ---
    /// Addresses removed at TTL + grace.
    pub expired_addresses: u64,
    /// Names removed because their last address expired.
    pub expired_names: u64,

    // --- output ---
    pub transmits: u64,
    /// Transmits dropped at `max_queued_transmits`.
    pub transmits_dropped: u64,
    /// Events dropped (oldest first) at `max_queued_events`.
    pub events_dropped: u64,
    /// Packets that could not be encoded (never expected).
    pub emit_errors: u64,

    // --- gauges ---
    pub names: u64,
    pub addresses: u64,
    pub pending_challenges: u64,
    pub sources_tracked: u64,
    /// Addresses holding at least one name.
    pub sources_holding: u64,
}
