//! The NBDD engine: RFC 1002 §5.3.4 (datagram_packet on an NBDD node), RFC 1001
//! §11.2–§11.3 (role, relation to the NBNS), §17.1.2 (fragments through an NBDD),
//! §17.3 (P/M-node datagrams and the query mechanism); DIGEST §2, §3.2–§3.4, §8.
//!
//! Decisions, each documented where it is made:
//! * Relays are the received UDP payload **unchanged** (RFC 1002 §5.3.4: "It forwards
//!   the UDP packet as is"), except that an unfragmented input above
//!   MAX_DATAGRAM_LENGTH is re-fragmented when `refragment` is set (RFC 1001 §17.1.2;
//!   only FLAGS, DGM_LENGTH and PACKET_OFFSET change, every other header field and
//!   both names stay).
//! * The originator is never sent its own datagram: members equal to SOURCE_IP or to
//!   the UDP source are skipped. The RFC's relay equals a broadcast where a B-node
//!   would not receive its own datagram on a separate host either, and a copy back
//!   would be pure reflection.
//! * Fragmented input is not reassembled (RFC 1002 §5.3.4); the first fragment's group
//!   and resolved members are remembered by (SOURCE_IP, DGM_ID) and every later
//!   fragment goes to the same members (RFC 1001 §17.1.2), until the last fragment or
//!   `fragment_timeout` after the first fragment was received or relayed. Later
//!   fragments that arrive before their first are held (bounded, `orphan_timeout`) and
//!   released behind it ([`crate::fragment::Orphans`]).
//! * BROADCAST (`*`): resolved as `ResolveMembers(* + scope)`; the runtime answers
//!   with every node the NBNS knows in the scope (RFC 1001 §11.3).
//! * DIRECT_UNIQUE sent to the NBDD: the NBDD owns no names, so RFC 1002 §5.3.3 gives
//!   DATAGRAM ERROR 0x82 (configurable). Unparseable SOURCE_NAME/DESTINATION_NAME
//!   give 0x83/0x84 (RFC 1002 §4.4.3). DATAGRAM ERRORs are never answered.
//! * Replies (errors and query responses) go to the UDP source address (DIGEST §8.5;
//!   RFC 1002 §5.3.4 for queries), are never larger than the request and are limited
//!   per source. Errors go only to sources the allow list admits; queries from other
//!   sources are answered NEGATIVE.

use crate::config::{ConfigError, NbddConfig, QueryAnswer, Rate, RelayPolicy, UniqueHandling};
use crate::event::{NbddAction, NbddEvent, Resolution, Service, Transmit};
use crate::fragment::{refragment, FragKey, Orphans, IP_UDP_HEADER};
use crate::ratelimit::{Bucket, Slot, SourceTable};
use crate::stats::{DropReason, NbddStats};
use nbdgm_wire::datagram::{
    Body, DataBody, Datagram, DatagramHeader, Flags, MsgType, NodeType,
    ERR_DESTINATION_NAME_NOT_PRESENT, ERR_INVALID_DESTINATION_NAME_FORMAT,
    ERR_INVALID_SOURCE_NAME_FORMAT,
};
use nbdgm_wire::{Error as WireError, Name};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

mod orphans;

/// How often expired cache entries are swept.
const CACHE_SWEEP: Duration = Duration::from_secs(1);

type SourceKey = (Name, Ipv4Addr);

#[derive(Debug, Clone)]
struct MemberEntry {
    found: bool,
    /// Relayable members (not us, not peer NBDDs, not invalid), deduplicated, at most
    /// `max_fanout + 1` (one may be the originator).
    members: Vec<Ipv4Addr>,
    /// More relayable members existed than were kept.
    truncated: bool,
    expires: Instant,
}

#[derive(Debug, Clone, Copy)]
struct VerifyEntry {
    registered: bool,
    expires: Instant,
}

#[derive(Debug, Clone)]
enum FragState {
    /// First fragment waiting for verification or members.
    Waiting,
    Relaying(Vec<SocketAddrV4>),
    /// First fragment refused: later fragments are dropped.
    Refused,
}

#[derive(Debug, Clone)]
struct FragEntry {
    msg_type: MsgType,
    from: Ipv4Addr,
    slot: Slot,
    state: FragState,
    expires: Instant,
}

#[derive(Debug, Clone)]
struct Relay {
    from: SocketAddrV4,
    /// SOURCE_IP of the header.
    origin: Ipv4Addr,
    group: Name,
    /// UDP payloads to send to each member (one, or the re-fragmented pieces).
    packets: Vec<Vec<u8>>,
    verify: Option<SourceKey>,
    frag_key: Option<FragKey>,
}

#[derive(Debug, Clone)]
enum Item {
    Relay(Relay),
    Continuation {
        key: FragKey,
        from: SocketAddrV4,
        bytes: Vec<u8>,
        last: bool,
    },
    Query {
        from: SocketAddrV4,
        id: u16,
        name: Name,
        request_len: usize,
    },
}

impl Item {
    fn bytes(&self) -> usize {
        match self {
            Item::Relay(r) => r.packets.iter().map(Vec::len).sum(),
            Item::Continuation { bytes, .. } => bytes.len(),
            Item::Query { request_len, .. } => *request_len,
        }
    }

    fn source(&self) -> Ipv4Addr {
        match self {
            Item::Relay(r) => *r.from.ip(),
            Item::Continuation { from, .. } | Item::Query { from, .. } => *from.ip(),
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    item: Item,
    deadline: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Need {
    Verify(SourceKey),
    Members(Name),
}

/// What [`ask`] did.
enum Asked {
    Started,
    InFlight,
    /// The action queue is full (counted as lost).
    ActionsFull,
    /// `max_pending` requests of this kind are in flight.
    TooMany,
}

/// Put `key` in flight until `deadline` and queue `action(key)`, unless it is in flight
/// already or the limits (in flight, queued actions) are reached.
fn ask<K: std::hash::Hash + Eq + Clone>(
    in_flight: &mut HashMap<K, Instant>,
    actions: &mut VecDeque<NbddAction>,
    (max_in_flight, max_actions): (usize, usize),
    key: K,
    deadline: Instant,
    action: impl FnOnce(K) -> NbddAction,
) -> Asked {
    if in_flight.contains_key(&key) {
        return Asked::InFlight;
    }
    if actions.len() >= max_actions {
        return Asked::ActionsFull;
    }
    if in_flight.len() >= max_in_flight {
        return Asked::TooMany;
    }
    in_flight.insert(key.clone(), deadline);
    actions.push_back(action(key));
    Asked::Started
}

enum Eval {
    Ready,
    Refuse(DropReason),
    /// Waiting for these (empty: waiting for a first fragment).
    Wait(Vec<Need>),
}

/// A sans-IO NetBIOS Datagram Distribution server. See the crate documentation for
/// the driving loop.
#[derive(Debug)]
pub struct Nbdd {
    cfg: NbddConfig,
    own_ip: Ipv4Addr,
    sources: SourceTable,
    global: Option<(Bucket, Rate)>,
    members: HashMap<Name, MemberEntry>,
    verified: HashMap<SourceKey, VerifyEntry>,
    resolving: HashMap<Name, Instant>,
    verifying: HashMap<SourceKey, Instant>,
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    /// Waiting items per UDP source (entries only for sources with waiting items).
    pending_per_source: HashMap<Ipv4Addr, usize>,
    fragments: HashMap<FragKey, FragEntry>,
    orphans: Orphans,
    transmits: VecDeque<Transmit>,
    actions: VecDeque<NbddAction>,
    events: VecDeque<NbddEvent>,
    stats: NbddStats,
    next_cache_sweep: Instant,
}

impl Nbdd {
    /// A new NBDD; fails on an invalid configuration.
    pub fn new(cfg: NbddConfig, now: Instant) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Nbdd {
            own_ip: cfg
                .own_addresses
                .first()
                .copied()
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
            sources: SourceTable::new(
                now,
                cfg.max_sources,
                cfg.relay_bytes_per_source_per_s,
                cfg.replies_per_source_per_s,
            ),
            global: cfg
                .relay_bytes_total_per_s
                .map(|r| (Bucket::full(now, r), r)),
            members: HashMap::new(),
            verified: HashMap::new(),
            resolving: HashMap::new(),
            verifying: HashMap::new(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            pending_per_source: HashMap::new(),
            fragments: HashMap::new(),
            orphans: Orphans::default(),
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            stats: NbddStats::default(),
            next_cache_sweep: now + CACHE_SWEEP,
            cfg,
        })
    }

    pub fn config(&self) -> &NbddConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &NbddStats {
        &self.stats
    }

    /// Bytes sent per byte received so far.
    pub fn amplification(&self) -> f64 {
        self.stats.amplification()
    }

    /// Items waiting for a resolution or verification.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Bytes held by waiting items.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    pub fn cached_groups(&self) -> usize {
        self.members.len()
    }

    pub fn cached_sources(&self) -> usize {
        self.verified.len()
    }

    /// Fragmented datagrams being relayed.
    pub fn fragment_sets(&self) -> usize {
        self.fragments.len()
    }

    /// Continuation fragments held for their first fragment, and their bytes.
    pub fn held_orphans(&self) -> (usize, usize) {
        (self.orphans.entries(), self.orphans.bytes())
    }

    /// Sources with their own rate buckets.
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// Resolutions and verifications in flight.
    pub fn in_flight(&self) -> usize {
        self.resolving.len() + self.verifying.len()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_action(&mut self) -> Option<NbddAction> {
        self.actions.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<NbddEvent> {
        self.events.pop_front()
    }

    /// The earliest time [`Nbdd::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        self.pending.iter().for_each(|p| at(p.deadline));
        self.resolving.values().for_each(|&d| at(d));
        self.verifying.values().for_each(|&d| at(d));
        self.fragments.values().for_each(|f| at(f.expires));
        if let Some(d) = self.orphans.next_deadline() {
            at(d);
        }
        if let Some(s) = self.sources.next_sweep() {
            at(s);
        }
        if !self.members.is_empty() || !self.verified.is_empty() {
            at(self.next_cache_sweep);
        }
        t
    }

    /// Expire in-flight requests, waiting items, fragment sets and cache entries.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.resolving.retain(|_, d| *d > now);
        self.verifying.retain(|_, d| *d > now);
        let expired: Vec<FragKey> = self
            .fragments
            .iter()
            .filter(|(_, f)| f.expires <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in expired {
            self.finish_fragment_set(k, false);
        }
        for from in self.orphans.expire(now) {
            self.stats.orphans_expired += 1;
            self.dropped(from, DropReason::OrphanFragment);
        }
        if now >= self.next_cache_sweep {
            self.next_cache_sweep = now + CACHE_SWEEP;
            self.members.retain(|_, e| e.expires > now);
            self.verified.retain(|_, e| e.expires > now);
        }
        self.sources.sweep(now);
        self.drain_pending(now, None);
    }

    /// A UDP packet received on the NBDD's datagram port (unicast).
    pub fn handle(&mut self, now: Instant, from: SocketAddrV4, bytes: &[u8]) {
        self.stats.packets_in += 1;
        self.stats.bytes_in += bytes.len() as u64;
        let ip = *from.ip();
        // Loops: nothing from ourselves or from another NBDD (no NBDD-to-NBDD recursion).
        if self.is_nbdd(ip) {
            return self.dropped(from, DropReason::Recursion);
        }
        let mut warnings = Vec::new();
        let dg = match Datagram::parse_ref(bytes, &mut warnings) {
            Ok(d) => d,
            Err(e) => return self.malformed(now, from, bytes, &e),
        };
        match dg.msg_type {
            MsgType::DirectGroup | MsgType::Broadcast => self.handle_data(now, from, bytes, &dg),
            MsgType::DirectUnique => {
                self.dropped(from, DropReason::UniqueDatagram);
                // RFC 1002 §5.3.3 applied to the NBDD, which owns no names: 0x82. Only
                // for a first fragment (it carries the names) from an admitted source.
                if self.cfg.unique_datagram == UniqueHandling::ReplyError
                    && dg.flags.first
                    && self.allowed(ip)
                {
                    self.send_error(
                        now,
                        from,
                        dg.id,
                        ERR_DESTINATION_NAME_NOT_PRESENT,
                        bytes.len(),
                    );
                }
            }
            MsgType::Error => {
                // RFC 1002 §5.3.4: "Should never receive these"; never answered.
                self.stats.errors_received += 1;
                let code = match dg.body {
                    Body::Error { code } => code,
                    _ => 0,
                };
                self.event(NbddEvent::ErrorReceived {
                    from,
                    source_ip: dg.source_ip,
                    code,
                });
                self.dropped(from, DropReason::ErrorReceived);
            }
            MsgType::QueryRequest => {
                if let Body::Query { destination_name } = dg.body {
                    self.handle_query(now, from, dg.id, destination_name, bytes.len());
                } else {
                    self.dropped(from, DropReason::Malformed);
                }
            }
            MsgType::PositiveQueryResponse | MsgType::NegativeQueryResponse => {
                self.dropped(from, DropReason::UnexpectedType)
            }
        }
    }

    /// The answer to [`NbddAction::ResolveMembers`] for `name`. Answers for names not
    /// asked about are cached too (a combined NBNS may push updates).
    pub fn members_resolved(&mut self, now: Instant, name: &Name, result: Resolution) {
        self.stats.resolutions_received += 1;
        if self.resolving.remove(name).is_none() {
            self.stats.unsolicited_answers += 1;
        }
        match result {
            Resolution::Members(list) => self.cache_members(now, name, true, list),
            Resolution::NotFound => self.cache_members(now, name, false, Vec::new()),
            Resolution::Failed => {
                return self.drain_pending(now, Some(Need::Members(name.clone())));
            }
        }
        self.drain_pending(now, None);
    }

    /// The answer to [`NbddAction::VerifySource`]: whether `name` is registered at `ip`.
    pub fn source_verified(&mut self, now: Instant, name: &Name, ip: Ipv4Addr, registered: bool) {
        self.stats.verifications_received += 1;
        let key = (name.clone(), ip);
        if self.verifying.remove(&key).is_none() {
            self.stats.unsolicited_answers += 1;
        }
        if !self.verified.contains_key(&key) && self.verified.len() >= self.cfg.max_cached_sources {
            self.verified.retain(|_, e| e.expires > now);
            if self.verified.len() >= self.cfg.max_cached_sources {
                if let Some(k) = oldest(&self.verified, |e| e.expires) {
                    self.verified.remove(&k);
                    self.stats.source_cache_evictions += 1;
                }
            }
        }
        self.verified.insert(
            key,
            VerifyEntry {
                registered,
                expires: now + self.cfg.verify_cache_ttl,
            },
        );
        self.drain_pending(now, None);
    }

    // ---- input paths -------------------------------------------------------------

    fn malformed(&mut self, now: Instant, from: SocketAddrV4, bytes: &[u8], e: &WireError) {
        self.dropped(from, DropReason::Malformed);
        let field = match e {
            WireError::Truncated { field, .. } | WireError::Invalid { field, .. } => *field,
            WireError::Emit { .. } => return,
        };
        // RFC 1002 §4.4.3 codes for names that cannot be parsed; the header (and so
        // DGM_ID) parsed fine when the failure is in a name.
        let Ok(header) = DatagramHeader::new_checked(bytes) else {
            return;
        };
        let code = match (header.msg_type(), field) {
            (Some(m), "SOURCE_NAME") if m.is_data() => ERR_INVALID_SOURCE_NAME_FORMAT,
            (Some(m), "DESTINATION_NAME") if m.is_data() || m == MsgType::QueryRequest => {
                ERR_INVALID_DESTINATION_NAME_FORMAT
            }
            _ => return,
        };
        if self.allowed(*from.ip()) {
            self.send_error(now, from, header.dgm_id(), code, bytes.len());
        }
    }

    fn handle_data(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        bytes: &[u8],
        dg: &Datagram<&[u8]>,
    ) {
        let ip = *from.ip();
        if self.is_nbdd(dg.source_ip) {
            return self.dropped(from, DropReason::Recursion);
        }
        if self.cfg.require_source_ip_match && dg.source_ip != ip {
            return self.dropped(from, DropReason::SourceIpMismatch);
        }
        if !self.allowed(ip) {
            return self.dropped(from, DropReason::PolicyDenied);
        }
        let Body::Data { body, .. } = &dg.body else {
            return self.dropped(from, DropReason::Malformed);
        };
        let key = (dg.source_ip, dg.id);
        let (source_name, destination_name) = match body {
            DataBody::Continuation { .. } => {
                let (t, last) = (dg.msg_type, !dg.flags.more);
                return self.handle_continuation(now, from, key, (t, last), bytes, true);
            }
            DataBody::Names {
                source_name,
                destination_name,
                ..
            } => (source_name, destination_name),
        };
        if destination_name.scope() != self.cfg.scope {
            return self.dropped(from, DropReason::WrongScope);
        }
        if destination_name.is_wildcard() && !self.cfg.relay_broadcast {
            return self.dropped(from, DropReason::BroadcastDisabled);
        }
        // Early rate check: do not queue what could not be relayed anyway.
        let slot = self.slot(now, ip);
        let rate = self.sources.relay_rate();
        if self.sources.get(slot).relay.available(now, rate) < bytes.len() as f64 {
            return self.dropped(from, DropReason::RateLimited);
        }
        let fragmented = dg.flags.more;
        let packets = if !fragmented
            && self.cfg.refragment
            && IP_UDP_HEADER + bytes.len() > self.cfg.max_datagram_length
        {
            // RFC 1001 §17.1.2: "fragment where needed"; header fields other than
            // FLAGS.F/M, DGM_LENGTH and PACKET_OFFSET, and both names, are kept.
            let names = source_name.encoded_len() + destination_name.encoded_len();
            match refragment(bytes, names, self.cfg.max_datagram_length) {
                Ok(p) => {
                    self.stats.refragmented += 1;
                    p
                }
                Err(_) => return self.dropped(from, DropReason::TooLarge),
            }
        } else {
            vec![bytes.to_vec()]
        };
        let frag_key = if fragmented {
            if self.fragments.contains_key(&key) {
                return self.dropped(from, DropReason::FragmentDuplicate);
            }
            if self.fragments.len() >= self.cfg.max_fragment_sets
                || self.sources.get(slot).fragment_sets >= self.cfg.max_fragment_sets_per_source
            {
                return self.dropped(from, DropReason::FragmentTableFull);
            }
            self.sources.get(slot).fragment_sets += 1;
            self.stats.fragment_sets_started += 1;
            self.fragments.insert(
                key,
                FragEntry {
                    msg_type: dg.msg_type,
                    from: ip,
                    slot,
                    state: FragState::Waiting,
                    expires: now + self.cfg.fragment_timeout,
                },
            );
            Some(key)
        } else {
            None
        };
        let verify = match self.cfg.policy {
            RelayPolicy::RegisteredSources => Some((source_name.clone(), dg.source_ip)),
            RelayPolicy::AllowList(_) => None,
        };
        let group = destination_name.clone();
        if self.members.get(&group).is_some_and(|e| e.expires > now) {
            self.stats.member_cache_hits += 1;
        } else {
            self.stats.member_cache_misses += 1;
        }
        let item = Item::Relay(Relay {
            from,
            origin: dg.source_ip,
            group,
            packets,
            verify,
            frag_key,
        });
        self.submit(now, item);
        if let Some(k) = frag_key {
            self.release_orphans(now, k);
        }
    }

    /// A fragment after the first (F = 0): goes where its first fragment went
    /// (RFC 1001 §17.1.2), keyed by (SOURCE_IP, DGM_ID).
    fn handle_continuation(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        key: FragKey,
        (msg_type, last): (MsgType, bool),
        bytes: &[u8],
        may_hold: bool,
    ) {
        let Some(e) = self.fragments.get(&key) else {
            if may_hold {
                return self.hold_orphan(now, from, key, (msg_type, last), bytes);
            }
            return self.dropped(from, DropReason::OrphanFragment);
        };
        if e.msg_type != msg_type || e.from != *from.ip() {
            return self.dropped(from, DropReason::FragmentInconsistent);
        }
        let item = Item::Continuation {
            key,
            from,
            bytes: bytes.to_vec(),
            last,
        };
        self.submit(now, item);
    }

    fn handle_query(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        id: u16,
        name: Name,
        request_len: usize,
    ) {
        self.stats.queries_received += 1;
        // Names we would refuse to relay to get NEGATIVE, as do sources we would not
        // relay for (RFC 1002 §5.3.4: "IF can send packet to DESTINATION_NAME").
        let refusable = !self.allowed(*from.ip())
            || name.scope() != self.cfg.scope
            || (name.is_wildcard() && !self.cfg.relay_broadcast);
        if refusable {
            return self.answer_query(now, from, id, name, false, request_len);
        }
        match self.cfg.query_answer {
            QueryAnswer::AlwaysPositive => {
                self.answer_query(now, from, id, name, true, request_len)
            }
            QueryAnswer::Members => self.submit(
                now,
                Item::Query {
                    from,
                    id,
                    name,
                    request_len,
                },
            ),
        }
    }

    // ---- the waiting machinery ---------------------------------------------------

    fn evaluate(&self, now: Instant, item: &Item) -> Eval {
        let members_ready = |name: &Name| self.members.get(name).is_some_and(|e| e.expires > now);
        match item {
            Item::Relay(r) => {
                let mut needs = Vec::new();
                if let Some(k) = &r.verify {
                    match self.verified.get(k) {
                        Some(e) if e.expires > now => {
                            if !e.registered {
                                return Eval::Refuse(DropReason::SourceNotRegistered);
                            }
                        }
                        _ => needs.push(Need::Verify(k.clone())),
                    }
                }
                if !members_ready(&r.group) {
                    needs.push(Need::Members(r.group.clone()));
                }
                if needs.is_empty() {
                    Eval::Ready
                } else {
                    Eval::Wait(needs)
                }
            }
            Item::Continuation { key, .. } => match self.fragments.get(key).map(|e| &e.state) {
                None => Eval::Refuse(DropReason::OrphanFragment),
                Some(FragState::Refused) => Eval::Refuse(DropReason::FragmentRefused),
                Some(FragState::Waiting) => Eval::Wait(Vec::new()),
                Some(FragState::Relaying(_)) => Eval::Ready,
            },
            Item::Query { name, .. } => {
                if members_ready(name) {
                    Eval::Ready
                } else {
                    Eval::Wait(vec![Need::Members(name.clone())])
                }
            }
        }
    }

    /// Process a new item now, or queue it and ask for what it needs.
    fn submit(&mut self, now: Instant, item: Item) {
        match self.evaluate(now, &item) {
            Eval::Ready => self.execute(now, item),
            Eval::Refuse(r) => self.refuse(now, item, r),
            Eval::Wait(needs) => {
                let size = item.bytes();
                let mine = self.pending_per_source.get(&item.source()).copied();
                if self.pending.len() >= self.cfg.max_pending
                    || self.pending_bytes + size > self.cfg.max_pending_bytes
                    || mine.unwrap_or(0) >= self.cfg.max_pending_per_source
                {
                    return self.refuse(now, item, DropReason::PendingFull);
                }
                for n in needs {
                    if !self.request(now, n) {
                        return self.refuse(now, item, DropReason::ResolverBusy);
                    }
                }
                self.pending_bytes += size;
                *self.pending_per_source.entry(item.source()).or_insert(0) += 1;
                self.pending.push_back(Pending {
                    item,
                    deadline: now + self.cfg.resolve_timeout,
                });
            }
        }
    }

    /// Ask the runtime for `need` unless already in flight. False when too many are.
    fn request(&mut self, now: Instant, need: Need) -> bool {
        let deadline = now + self.cfg.resolve_timeout;
        let limits = (self.cfg.max_pending, self.cfg.max_actions);
        let (asked, started) = match need {
            Need::Members(n) => (
                ask(
                    &mut self.resolving,
                    &mut self.actions,
                    limits,
                    n,
                    deadline,
                    NbddAction::ResolveMembers,
                ),
                &mut self.stats.resolve_requests,
            ),
            Need::Verify(k) => (
                ask(
                    &mut self.verifying,
                    &mut self.actions,
                    limits,
                    k,
                    deadline,
                    |k: SourceKey| NbddAction::VerifySource(k.0, k.1),
                ),
                &mut self.stats.verify_requests,
            ),
        };
        match asked {
            Asked::Started => *started += 1,
            Asked::InFlight => {}
            Asked::ActionsFull => {
                self.stats.actions_lost += 1;
                return false;
            }
            Asked::TooMany => return false,
        }
        true
    }

    /// Re-evaluate every waiting item in arrival order (so continuations follow their
    /// first fragment). `failed`: a need the runtime could not satisfy.
    fn drain_pending(&mut self, now: Instant, failed: Option<Need>) {
        let queue = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        self.pending_per_source.clear();
        for p in queue {
            match self.evaluate(now, &p.item) {
                Eval::Ready => self.execute(now, p.item),
                Eval::Refuse(r) => self.refuse(now, p.item, r),
                Eval::Wait(needs) => {
                    if failed.as_ref().is_some_and(|f| needs.contains(f)) {
                        self.refuse(now, p.item, DropReason::ResolveFailed);
                        continue;
                    }
                    if p.deadline <= now {
                        let r = if needs.iter().any(|n| matches!(n, Need::Verify(_))) {
                            DropReason::VerifyTimeout
                        } else {
                            DropReason::ResolveTimeout
                        };
                        self.refuse(now, p.item, r);
                        continue;
                    }
                    let mut ok = true;
                    for n in needs {
                        ok &= self.request(now, n);
                    }
                    if !ok {
                        self.refuse(now, p.item, DropReason::ResolverBusy);
                        continue;
                    }
                    self.pending_bytes += p.item.bytes();
                    *self.pending_per_source.entry(p.item.source()).or_insert(0) += 1;
                    self.pending.push_back(p);
                }
            }
        }
    }

    fn refuse(&mut self, now: Instant, item: Item, reason: DropReason) {
        match item {
            Item::Query {
                from,
                id,
                name,
                request_len,
            } => self.answer_query(now, from, id, name, false, request_len),
            Item::Relay(r) => {
                if let Some(k) = r.frag_key {
                    if let Some(e) = self.fragments.get_mut(&k) {
                        e.state = FragState::Refused;
                    }
                }
                self.dropped(r.from, reason);
            }
            Item::Continuation {
                key, from, last, ..
            } => {
                if last {
                    self.finish_fragment_set(key, true);
                }
                self.dropped(from, reason);
            }
        }
    }

    fn execute(&mut self, now: Instant, item: Item) {
        match item {
            Item::Relay(r) => {
                let targets = match self.targets(&r.group, [r.origin, *r.from.ip()]) {
                    Ok(t) => t,
                    Err(reason) => return self.refuse(now, Item::Relay(r), reason),
                };
                let (targets, truncated) = targets;
                let sent = self.send_copies(now, r.from, &r.packets, &targets);
                if let Some(k) = r.frag_key {
                    let timeout = self.cfg.fragment_timeout;
                    if let Some(e) = self.fragments.get_mut(&k) {
                        if sent == 0 {
                            e.state = FragState::Refused;
                        } else {
                            e.state = FragState::Relaying(targets.clone());
                            e.expires = e.expires.max(now + timeout);
                        }
                    }
                }
                self.relayed(r.from, r.group, sent, truncated);
            }
            Item::Continuation {
                key,
                from,
                bytes,
                last,
            } => {
                let targets = match self.fragments.get(&key).map(|e| &e.state) {
                    Some(FragState::Relaying(t)) => t.clone(),
                    _ => return self.dropped(from, DropReason::OrphanFragment),
                };
                let sent = self.send_copies(now, from, std::slice::from_ref(&bytes), &targets);
                if last {
                    self.finish_fragment_set(key, true);
                }
                if sent == 0 {
                    self.dropped(from, DropReason::RateLimited);
                } else {
                    self.stats.relayed_packets += 1;
                }
            }
            Item::Query {
                from,
                id,
                name,
                request_len,
            } => {
                let requester = *from.ip();
                let positive = self
                    .members
                    .get(&name)
                    .is_some_and(|e| e.found && e.members.iter().any(|&m| m != requester));
                self.answer_query(now, from, id, name, positive, request_len);
            }
        }
    }

    fn relayed(&mut self, from: SocketAddrV4, group: Name, copies: usize, truncated: bool) {
        if copies == 0 {
            return self.dropped(from, DropReason::RateLimited);
        }
        self.stats.relayed_packets += 1;
        self.event(NbddEvent::Relayed {
            from,
            group,
            copies,
            truncated,
        });
    }

    fn finish_fragment_set(&mut self, key: FragKey, completed: bool) {
        if let Some(e) = self.fragments.remove(&key) {
            let s = self.sources.get(e.slot);
            s.fragment_sets = s.fragment_sets.saturating_sub(1);
            if completed {
                self.stats.fragment_sets_completed += 1;
            } else {
                self.stats.fragment_sets_expired += 1;
            }
        }
    }

    // ---- members and relaying ----------------------------------------------------

    fn cache_members(&mut self, now: Instant, name: &Name, found: bool, list: Vec<Ipv4Addr>) {
        let keep = self.cfg.max_fanout.saturating_add(1);
        let mut seen = HashSet::new();
        let mut members = Vec::new();
        let mut truncated = false;
        for ip in list {
            if self.is_nbdd(ip) {
                self.stats.members_skipped_nbdd += 1;
                continue;
            }
            if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
                self.stats.members_skipped_invalid += 1;
                continue;
            }
            if !seen.insert(ip) {
                continue;
            }
            if members.len() >= keep {
                truncated = true;
                break;
            }
            members.push(ip);
        }
        if !self.members.contains_key(name) && self.members.len() >= self.cfg.max_cached_groups {
            self.members.retain(|_, e| e.expires > now);
            if self.members.len() >= self.cfg.max_cached_groups {
                if let Some(k) = oldest(&self.members, |e| e.expires) {
                    self.members.remove(&k);
                    self.stats.member_cache_evictions += 1;
                }
            }
        }
        self.members.insert(
            name.clone(),
            MemberEntry {
                found,
                members,
                truncated,
                expires: now + self.cfg.member_cache_ttl,
            },
        );
    }

    /// The addresses to relay to: cached members minus the originator (SOURCE_IP and
    /// UDP source), at most `max_fanout`. The bool is true when the list was cut.
    fn targets(
        &mut self,
        group: &Name,
        exclude: [Ipv4Addr; 2],
    ) -> Result<(Vec<SocketAddrV4>, bool), DropReason> {
        let Some(e) = self.members.get(group) else {
            return Err(DropReason::ResolveTimeout);
        };
        if !e.found {
            return Err(DropReason::GroupNotFound);
        }
        let mut truncated = e.truncated;
        let mut out = Vec::new();
        for &ip in &e.members {
            if exclude.contains(&ip) {
                continue;
            }
            if out.len() >= self.cfg.max_fanout {
                truncated = true;
                break;
            }
            out.push(SocketAddrV4::new(ip, self.cfg.port));
        }
        if out.is_empty() {
            return Err(DropReason::NoMembers);
        }
        if truncated {
            self.stats.fanout_truncated += 1;
        }
        Ok((out, truncated))
    }

    /// Send each packet to each target while the source's and the global buckets
    /// allow (a partial relay is allowed, RFC 1001 §11.2). Returns copies queued.
    fn send_copies(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        packets: &[Vec<u8>],
        targets: &[SocketAddrV4],
    ) -> usize {
        let slot = self.sources.existing(*from.ip());
        let rate = self.sources.relay_rate();
        let mut sent = 0;
        for p in packets {
            let n = p.len() as f64;
            for &to in targets {
                let src_ok = self.sources.get(slot).relay.available(now, rate) >= n;
                let global_ok = match &mut self.global {
                    Some((b, r)) => b.available(now, *r) >= n,
                    None => true,
                };
                if !(src_ok && global_ok) {
                    self.stats.copies_rate_limited += 1;
                    continue;
                }
                if !self.push_transmit(to, p.clone(), None) {
                    continue;
                }
                self.sources.get(slot).relay.take(now, rate, n);
                if let Some((b, r)) = &mut self.global {
                    b.take(now, *r, n);
                }
                sent += 1;
                self.stats.relayed_copies += 1;
                self.stats.relayed_bytes += p.len() as u64;
            }
        }
        sent
    }

    // ---- replies -----------------------------------------------------------------

    fn answer_query(
        &mut self,
        now: Instant,
        to: SocketAddrV4,
        id: u16,
        name: Name,
        positive: bool,
        request_len: usize,
    ) {
        let d: Datagram = Datagram {
            msg_type: if positive {
                MsgType::PositiveQueryResponse
            } else {
                MsgType::NegativeQueryResponse
            },
            // F = 1, SNT = 11 (NBDD in RFC 1002 §4.4.1), as in the DIGEST §10.2 vector.
            flags: Flags::single(NodeType::H),
            id,
            source_ip: self.own_ip,
            source_port: self.cfg.port,
            body: Body::Query {
                destination_name: name.clone(),
            },
        };
        let Ok(bytes) = d.to_bytes() else {
            return self.dropped(to, DropReason::Malformed);
        };
        if self.reply(now, to, bytes, request_len) {
            if positive {
                self.stats.queries_positive += 1;
            } else {
                self.stats.queries_negative += 1;
            }
            self.event(NbddEvent::QueryAnswered { to, name, positive });
        }
    }

    /// DATAGRAM ERROR (RFC 1002 §4.4.3): F = M = 0, our IP and port, DGM_ID echoed.
    fn send_error(
        &mut self,
        now: Instant,
        to: SocketAddrV4,
        id: u16,
        code: u8,
        request_len: usize,
    ) {
        let d: Datagram = Datagram {
            msg_type: MsgType::Error,
            flags: Flags {
                more: false,
                first: false,
                node_type: NodeType::H,
                reserved: 0,
            },
            id,
            source_ip: self.own_ip,
            source_port: self.cfg.port,
            body: Body::Error { code },
        };
        let Ok(bytes) = d.to_bytes() else {
            return;
        };
        if self.reply(now, to, bytes, request_len) {
            match code {
                ERR_DESTINATION_NAME_NOT_PRESENT => self.stats.errors_sent_0x82 += 1,
                ERR_INVALID_SOURCE_NAME_FORMAT => self.stats.errors_sent_0x83 += 1,
                _ => self.stats.errors_sent_0x84 += 1,
            }
            self.event(NbddEvent::ErrorSent { to, code });
        }
    }

    /// Queue a reply if it is no larger than its request and the source's reply
    /// bucket allows (no reflection amplification).
    fn reply(
        &mut self,
        now: Instant,
        to: SocketAddrV4,
        bytes: Vec<u8>,
        request_len: usize,
    ) -> bool {
        if bytes.len() > request_len {
            self.dropped(to, DropReason::ReplyTooLarge);
            return false;
        }
        let slot = self.slot(now, *to.ip());
        let rate = self.sources.reply_rate();
        if !self.sources.get(slot).reply.take(now, rate, 1.0) {
            self.dropped(to, DropReason::ReplyRateLimited);
            return false;
        }
        self.push_transmit(to, bytes, Some(request_len))
    }

    // ---- helpers -----------------------------------------------------------------

    fn push_transmit(&mut self, to: SocketAddrV4, bytes: Vec<u8>, reply_to: Option<usize>) -> bool {
        if self.transmits.len() >= self.cfg.max_transmit_queue {
            self.stats.drop(DropReason::TransmitQueueFull);
            return false;
        }
        self.stats.packets_out += 1;
        self.stats.bytes_out += bytes.len() as u64;
        self.transmits
            .push_back(Transmit::unicast(Service::Datagram, to, bytes, reply_to));
        true
    }

    fn slot(&mut self, now: Instant, ip: Ipv4Addr) -> Slot {
        let (slot, overflowed) = self.sources.slot(now, ip);
        if overflowed {
            self.stats.sources_overflowed += 1;
        }
        slot
    }

    fn is_nbdd(&self, ip: Ipv4Addr) -> bool {
        self.cfg.own_addresses.contains(&ip) || self.cfg.peer_nbdds.contains(&ip)
    }

    fn allowed(&self, ip: Ipv4Addr) -> bool {
        match &self.cfg.policy {
            RelayPolicy::AllowList(list) => list.contains(ip),
            RelayPolicy::RegisteredSources => true,
        }
    }

    fn dropped(&mut self, from: SocketAddrV4, reason: DropReason) {
        self.stats.drop(reason);
        self.event(NbddEvent::Dropped { from, reason });
    }

    fn event(&mut self, e: NbddEvent) {
        if self.events.len() >= self.cfg.max_events {
            self.stats.events_lost += 1;
        } else {
            self.events.push_back(e);
        }
    }
}

/// The key whose entry expires first.
fn oldest<K: Clone, V>(map: &HashMap<K, V>, at: impl Fn(&V) -> Instant) -> Option<K> {
    map.iter()
        .min_by_key(|(_, v)| at(v))
        .map(|(k, _)| k.clone())
}
