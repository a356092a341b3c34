//! Counters for everything the node does and drops (ARCHITECTURE: "every cap has a
//! counter"). Serialized with these field names for metrics and the local API.

use crate::event::DropReason;
use serde::Serialize;

/// One counter per [`DropReason`], named like the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DropCounters {
    pub own_packet: u64,
    pub bad_source: u64,
    pub malformed_name_packet: u64,
    pub malformed_datagram: u64,
    pub unsolicited_response: u64,
    pub unsupported_opcode: u64,
    pub nbdd_query: u64,
    pub not_owned: u64,
    pub source_ip_mismatch: u64,
    pub node_status_disabled: u64,
    pub reply_too_large: u64,
    pub fragment_duplicate: u64,
    pub fragment_inconsistent: u64,
    pub fragment_oversize: u64,
    pub fragment_evicted: u64,
    pub fragment_timeout: u64,
    pub broadcast_ignored: u64,
    pub answer_wrong_source: u64,
    pub answer_wrong_name: u64,
}

impl DropCounters {
    fn slot(&mut self, r: DropReason) -> &mut u64 {
        match r {
            DropReason::OwnPacket => &mut self.own_packet,
            DropReason::BadSource => &mut self.bad_source,
            DropReason::MalformedNamePacket => &mut self.malformed_name_packet,
            DropReason::MalformedDatagram => &mut self.malformed_datagram,
            DropReason::UnsolicitedResponse => &mut self.unsolicited_response,
            DropReason::UnsupportedOpcode => &mut self.unsupported_opcode,
            DropReason::NbddQuery => &mut self.nbdd_query,
            DropReason::NotOwned => &mut self.not_owned,
            DropReason::SourceIpMismatch => &mut self.source_ip_mismatch,
            DropReason::NodeStatusDisabled => &mut self.node_status_disabled,
            DropReason::ReplyTooLarge => &mut self.reply_too_large,
            DropReason::FragmentDuplicate => &mut self.fragment_duplicate,
            DropReason::FragmentInconsistent => &mut self.fragment_inconsistent,
            DropReason::FragmentOversize => &mut self.fragment_oversize,
            DropReason::FragmentEvicted => &mut self.fragment_evicted,
            DropReason::FragmentTimeout => &mut self.fragment_timeout,
            DropReason::BroadcastIgnored => &mut self.broadcast_ignored,
            DropReason::AnswerWrongSource => &mut self.answer_wrong_source,
            DropReason::AnswerWrongName => &mut self.answer_wrong_name,
        }
    }

    pub(crate) fn bump(&mut self, r: DropReason) {
        *self.slot(r) += 1;
    }

    /// The counter for `r`.
    pub fn get(&self, r: DropReason) -> u64 {
        match r {
            DropReason::OwnPacket => self.own_packet,
            DropReason::BadSource => self.bad_source,
            DropReason::MalformedNamePacket => self.malformed_name_packet,
            DropReason::MalformedDatagram => self.malformed_datagram,
            DropReason::UnsolicitedResponse => self.unsolicited_response,
            DropReason::UnsupportedOpcode => self.unsupported_opcode,
            DropReason::NbddQuery => self.nbdd_query,
            DropReason::NotOwned => self.not_owned,
            DropReason::SourceIpMismatch => self.source_ip_mismatch,
            DropReason::NodeStatusDisabled => self.node_status_disabled,
            DropReason::ReplyTooLarge => self.reply_too_large,
            DropReason::FragmentDuplicate => self.fragment_duplicate,
            DropReason::FragmentInconsistent => self.fragment_inconsistent,
            DropReason::FragmentOversize => self.fragment_oversize,
            DropReason::FragmentEvicted => self.fragment_evicted,
            DropReason::FragmentTimeout => self.fragment_timeout,
            DropReason::BroadcastIgnored => self.broadcast_ignored,
            DropReason::AnswerWrongSource => self.answer_wrong_source,
            DropReason::AnswerWrongName => self.answer_wrong_name,
        }
    }

    pub fn total(&self) -> u64 {
        DropReason::ALL.iter().map(|&r| self.get(r)).sum()
    }
}

/// Every counter of a node. Gauges are marked as such; everything else only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    // Name service.
    pub name_packets_received: u64,
    pub name_packets_sent: u64,
    pub registrations_started: u64,
    pub names_registered: u64,
    pub registrations_refused: u64,
    pub registration_requests_sent: u64,
    pub defences_sent: u64,
    pub queries_answered: u64,
    pub negative_query_responses_sent: u64,
    pub queries_ignored: u64,
    pub node_status_answered: u64,
    pub node_status_truncated: u64,
    pub conflict_demands_received: u64,
    pub conflict_demands_sent: u64,
    pub conflicts_detected: u64,
    pub releases_sent: u64,
    pub releases_heard: u64,
    pub responses_ignored: u64,
    pub lookups_started: u64,
    pub queries_sent: u64,
    pub lookups_succeeded: u64,
    pub lookups_failed: u64,
    pub duplicate_responses: u64,
    pub status_requests_sent: u64,
    pub status_succeeded: u64,
    pub status_failed: u64,
    // NBNS client (P/M/H).
    /// Unicast NAME REGISTRATION REQUESTs to an NBNS (retransmissions included).
    pub nbns_registration_requests_sent: u64,
    /// Positive registration responses from the NBNS.
    pub nbns_registrations_accepted: u64,
    /// Negative registration responses from the NBNS.
    pub nbns_registrations_refused: u64,
    pub wacks_received: u64,
    /// REDIRECT NAME QUERY RESPONSEs followed to the NBNS they name (RFC 1002 §4.2.15),
    /// and those refused (hop limit, a loop, an address that cannot be an NBNS): the
    /// query then goes on as if the NBNS had been silent.
    pub nbns_redirects_followed: u64,
    pub nbns_redirects_refused: u64,
    /// NAME REFRESH REQUESTs sent (retransmissions included).
    pub refreshes_sent: u64,
    pub refreshes_succeeded: u64,
    /// Refreshes nobody answered (the name is kept and retried after `refresh_min`).
    pub refreshes_unanswered: u64,
    pub refreshes_refused: u64,
    /// Unicast NAME RELEASE REQUESTs to an NBNS (retransmissions included).
    pub nbns_releases_sent: u64,
    /// NAME RELEASE REQUESTs from our NBNS that removed one of our names.
    pub names_released_by_nbns: u64,
    /// Unicast NAME QUERY REQUESTs to an NBNS (retransmissions included).
    pub nbns_queries_sent: u64,
    /// An NBNS did not answer and the next one was tried.
    pub nbns_failovers: u64,
    /// No NBNS answered a request (registration, refresh, release or query).
    pub nbns_unreachable: u64,
    /// Registrations or lookups that fell back to broadcast (M/H).
    pub broadcast_fallbacks: u64,
    /// END-NODE CHALLENGE responses received; challenges won (name overwritten).
    pub challenges_received: u64,
    pub challenges_won: u64,
    /// MULTIHOMED NAME REGISTRATION REQUESTs (opcode 0xF) sent to an NBNS
    /// (retransmissions included; also counted in `nbns_registration_requests_sent`).
    pub multihomed_registrations_sent: u64,
    /// Positive query responses that listed our other (multihomed) addresses too.
    pub multihomed_query_answers: u64,
    // Name cache.
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_inserts: u64,
    pub cache_evictions: u64,
    pub cache_expired: u64,
    pub cache_flushes: u64,
    /// Gauge.
    pub cache_entries: u64,
    // Datagram service.
    pub datagram_packets_received: u64,
    pub datagram_packets_sent: u64,
    pub datagrams_sent: u64,
    pub fragments_sent: u64,
    pub sends_failed: u64,
    pub datagrams_delivered: u64,
    /// Of those, delivered without the network: sends to a unique name of ours, and the
    /// local copies of group and broadcast sends (the loop-back is dropped as our own).
    pub datagrams_delivered_locally: u64,
    pub datagrams_not_for_us: u64,
    pub fragments_received: u64,
    pub datagrams_reassembled: u64,
    /// Of those, datagrams whose fragments repeated both names (DIGEST §2.4).
    pub datagrams_reassembled_repeated_names: u64,
    pub datagram_errors_sent: u64,
    pub datagram_errors_received: u64,
    pub dgm_length_mismatches: u64,
    pub source_ip_mismatches: u64,
    /// DATAGRAM QUERY REQUESTs sent to the NBDD (retransmissions included).
    pub nbdd_queries_sent: u64,
    pub nbdd_positive: u64,
    pub nbdd_negative: u64,
    /// DATAGRAM QUERY REQUESTs never answered.
    pub nbdd_timeouts: u64,
    /// Datagrams relayed by unicast to the NBDD.
    pub nbdd_relayed: u64,
    /// Group/broadcast datagrams sent to the local broadcast address because the NBDD
    /// refused or was silent (M/H; MS-NBTE behaviour).
    pub nbdd_fallbacks: u64,
    /// Group datagrams the NBDD refused that were unicast to the members instead
    /// (`nbdd_refused_unicast`), and the copies sent.
    pub nbdd_member_fanouts: u64,
    pub nbdd_member_copies: u64,
    /// Such fan-outs cut to `nbdd_refused_unicast_max_members`.
    pub nbdd_member_truncated: u64,
    /// Refused datagrams that fell back because the copies did not fit the rate, or the
    /// group had no member to send to.
    pub nbdd_member_rate_limited: u64,
    pub nbdd_member_none: u64,
    /// Gauge: incomplete fragment sets held.
    pub reassembly_pending: u64,
    /// Gauge: bytes held by the reassembly table (data + per-set overhead).
    pub reassembly_bytes: u64,
    /// High-water mark of `reassembly_bytes`.
    pub reassembly_bytes_peak: u64,
    // Bounds.
    pub events_dropped: u64,
    pub transmits_dropped: u64,
    pub transactions_refused: u64,
    pub names_refused: u64,
    pub encode_errors: u64,
    /// Drops by reason.
    pub dropped: DropCounters,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_counter() {
        let mut d = DropCounters::default();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            for _ in 0..=i {
                d.bump(*r);
            }
        }
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(d.get(*r), i as u64 + 1, "{}", r.as_str());
        }
        let json = serde_json::to_value(&d).unwrap();
        for r in DropReason::ALL {
            assert!(json.get(r.as_str()).is_some(), "{}", r.as_str());
            let tag = serde_json::to_value(r).unwrap();
            assert_eq!(tag, r.as_str());
        }
    }
}
