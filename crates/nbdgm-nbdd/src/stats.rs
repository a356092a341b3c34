//! Counters for everything the NBDD receives, sends, refuses and drops: every cap
//! and every refusal has a counter (RFC 1001 §17.3: "an NBDD provides no feedback"
//! to the sender, so these are the only record).

use serde::Serialize;

macro_rules! drop_reasons {
    ($($(#[$m:meta])* $variant:ident => $field:ident,)*) => {
        /// Why a received packet (or a relay of it) was dropped.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum DropReason {
            $($(#[$m])* $variant,)*
        }

        impl DropReason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];

            /// The counter's name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(DropReason::$variant => stringify!($field),)*
                }
            }
        }

        /// One counter per [`DropReason`], named like the reason.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
        pub struct DropCounters {
            $(pub $field: u64,)*
        }

        impl DropCounters {
            pub(crate) fn bump(&mut self, r: DropReason) {
                match r {
                    $(DropReason::$variant => self.$field = self.$field.saturating_add(1),)*
                }
            }

            /// The counter for `r`.
            pub fn get(&self, r: DropReason) -> u64 {
                match r {
                    $(DropReason::$variant => self.$field,)*
                }
            }

            /// Sum of all counters.
            pub fn total(&self) -> u64 {
                0u64 $(.saturating_add(self.$field))*
            }
        }
    };
}

drop_reasons! {
    /// Not a parseable datagram-service packet (DIGEST §2.9).
    Malformed => malformed,
    /// UDP source is one of our own addresses or a peer NBDD, or SOURCE_IP is ours.
    Recursion => recursion,
    /// SOURCE_IP differs from the UDP source (`require_source_ip_match`).
    SourceIpMismatch => source_ip_mismatch,
    /// UDP source outside the allow list.
    PolicyDenied => policy_denied,
    /// SOURCE_NAME is not registered at SOURCE_IP (RegisteredSources policy).
    SourceNotRegistered => source_not_registered,
    /// No verification answer within `resolve_timeout`.
    VerifyTimeout => verify_timeout,
    /// Destination name in another scope.
    WrongScope => wrong_scope,
    /// BROADCAST relaying is disabled.
    BroadcastDisabled => broadcast_disabled,
    /// DIRECT_UNIQUE datagram sent to the NBDD (answered 0x82 or dropped per config).
    UniqueDatagram => unique_datagram,
    /// DATAGRAM ERROR received (RFC 1002 §5.3.4: "should never receive these").
    ErrorReceived => error_received,
    /// Query responses (0x15/0x16) are never addressed to an NBDD.
    UnexpectedType => unexpected_type,
    /// The source's relay bucket (or the global one) had no room for any copy.
    RateLimited => rate_limited,
    /// A reply was due but the source's reply bucket was empty.
    ReplyRateLimited => reply_rate_limited,
    /// A reply would have been larger than its request (never sent).
    ReplyTooLarge => reply_too_large,
    /// The pending queue (items or bytes) was full.
    PendingFull => pending_full,
    /// Too many resolutions/verifications already in flight.
    ResolverBusy => resolver_busy,
    /// No member list within `resolve_timeout`.
    ResolveTimeout => resolve_timeout,
    /// The runtime could not resolve the group.
    ResolveFailed => resolve_failed,
    /// The NBNS does not know the group.
    GroupNotFound => group_not_found,
    /// The group has no member we may relay to (after excluding the originator,
    /// ourselves and peer NBDDs).
    NoMembers => no_members,
    /// Continuation fragment with no remembered first fragment (RFC 1001 §17.1.2).
    OrphanFragment => orphan_fragment,
    /// First fragment whose (SOURCE_IP, DGM_ID) is already being relayed.
    FragmentDuplicate => fragment_duplicate,
    /// Continuation whose type or UDP source differs from its first fragment.
    FragmentInconsistent => fragment_inconsistent,
    /// The fragment table (total or per source) was full.
    FragmentTableFull => fragment_table_full,
    /// Continuation of a datagram whose first fragment was refused.
    FragmentRefused => fragment_refused,
    /// Re-fragmenting failed (data section over 65535 bytes, names do not fit).
    TooLarge => too_large,
    /// The transmit queue was full (counted per packet not queued).
    TransmitQueueFull => transmit_queue_full,
}

/// Counters for the whole NBDD. `bytes_out / bytes_in` is the amplification factor
/// ([`NbddStats::amplification`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NbddStats {
    pub packets_in: u64,
    pub bytes_in: u64,
    /// Every packet handed to `poll_transmit` (relays and replies).
    pub packets_out: u64,
    pub bytes_out: u64,
    /// Received UDP packets relayed to at least one member.
    pub relayed_packets: u64,
    /// Copies sent (one per member per UDP packet).
    pub relayed_copies: u64,
    pub relayed_bytes: u64,
    /// Copies not sent because a rate bucket was empty (partial relays).
    pub copies_rate_limited: u64,
    /// Relays cut to `max_fanout` members.
    pub fanout_truncated: u64,
    /// Members skipped because they are us or a peer NBDD.
    pub members_skipped_nbdd: u64,
    /// Members skipped because the address cannot be a node (0.0.0.0, broadcast, multicast).
    pub members_skipped_invalid: u64,
    /// Unfragmented inputs re-fragmented on relay (RFC 1001 §17.1.2).
    pub refragmented: u64,
    pub fragment_sets_started: u64,
    pub fragment_sets_completed: u64,
    pub fragment_sets_expired: u64,
    /// Continuation fragments held because their first fragment had not arrived.
    pub orphans_held: u64,
    /// Held fragments released once their first fragment arrived.
    pub orphans_released: u64,
    /// Held fragments evicted to stay within `max_orphan_fragments`/`max_orphan_bytes`
    /// (also counted as `orphan_fragment` drops).
    pub orphans_evicted: u64,
    /// Held fragments whose first fragment never came within `orphan_timeout` (also
    /// counted as `orphan_fragment` drops).
    pub orphans_expired: u64,
    pub queries_received: u64,
    pub queries_positive: u64,
    pub queries_negative: u64,
    pub errors_sent_0x82: u64,
    pub errors_sent_0x83: u64,
    pub errors_sent_0x84: u64,
    pub errors_received: u64,
    pub resolve_requests: u64,
    pub verify_requests: u64,
    pub resolutions_received: u64,
    pub verifications_received: u64,
    /// Answers for names not in flight (accepted into the cache all the same).
    pub unsolicited_answers: u64,
    pub member_cache_hits: u64,
    pub member_cache_misses: u64,
    pub member_cache_evictions: u64,
    pub source_cache_evictions: u64,
    /// Sources that had to share the overflow bucket because the table was full.
    pub sources_overflowed: u64,
    pub events_lost: u64,
    pub actions_lost: u64,
    pub drops: DropCounters,
}

impl NbddStats {
    /// Bytes out per byte in (0 before any input).
    pub fn amplification(&self) -> f64 {
        if self.bytes_in == 0 {
            0.0
        } else {
            self.bytes_out as f64 / self.bytes_in as f64
        }
    }

    pub(crate) fn drop(&mut self, r: DropReason) {
        self.drops.bump(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_by_reason() {
        let mut s = NbddStats::default();
        for &r in DropReason::ALL {
            s.drop(r);
            assert_eq!(s.drops.get(r), 1, "{}", r.as_str());
        }
        assert_eq!(s.drops.total(), DropReason::ALL.len() as u64);
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["drops"]["orphan_fragment"], 1);
        assert_eq!(s.amplification(), 0.0);
    }
}
