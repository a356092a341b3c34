//! The sans-IO NBNS engine (RFC 1001 §15.1; RFC 1002 §5.1.4 incoming packet and
//! timer processing, as a "secure" server that challenges the current owner itself;
//! MS-NBTE §3.2.5 for group appends and multi-homed registrations).
//!
//! It owns no socket and no clock: feed it packets ([`NbnsServer::handle`]) and
//! time ([`NbnsServer::handle_timeout`]); drain [`NbnsServer::poll_transmit`] and
//! [`NbnsServer::poll_event`]; sleep until [`NbnsServer::poll_timeout`].

use crate::config::{ConfigError, GroupAnswers, NbnsConfig};
use crate::event::{ChallengeOutcome, NbnsEvent, RefuseReason};
use crate::packets::{self, RCODE_ACT_ERR, RCODE_FMT_ERR, RCODE_IMP_ERR, RCODE_NAM_ERR};
use crate::packets::{RCODE_RFS_ERR, RCODE_SRV_ERR};
use crate::rate::{RateLimiter, Verdict};
use crate::stats::NbnsStats;
use crate::table::{Fixed, Member, Record, Table};
use nbdgm_base::Random;
use nbdgm_wire::nbns::{
    NbAddress, Opcode, Packet, RData, FLAG_RD, NB_GROUP, NB_ONT_MASK, TYPE_NB, TYPE_NBSTAT,
};
use nbdgm_wire::Name;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// A UDP packet to send from the NBNS socket (port 137; `service` is always
/// [`Service::Name`]). `reply_to` is `None` for packets the NBNS starts itself
/// (challenge queries).
pub use nbdgm_base::{Service, Transmit};

/// What the NBNS knows about a name (for an NBDD resolving group members).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: Name,
    pub group: bool,
    /// Live addresses, oldest registration first.
    pub addresses: Vec<Ipv4Addr>,
    /// When the last of them expires unless refreshed.
    pub expires: Instant,
}

/// One address of an [`EntrySnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberSnapshot {
    pub ip: Ipv4Addr,
    pub nb_flags: u16,
    /// B, P, M or H.
    pub ont: &'static str,
    pub ttl: u32,
    pub expires_in_s: u64,
}

/// A serializable view of one name, for the local API and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntrySnapshot {
    /// `NAME<xx>` (with `.scope` when there is one).
    pub name: String,
    pub suffix: u8,
    pub group: bool,
    /// A static name (configuration or API `static`): never expires, never changed by
    /// registrations; its members show `ttl` 0 and `expires_in_s` 0.
    #[serde(rename = "static")]
    pub is_static: bool,
    /// `dynamic`, `config` (from `[[nbns_server.static]]`) or `admin` (API `static`).
    pub origin: &'static str,
    pub members: Vec<MemberSnapshot>,
}

/// Which registration opcode a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegKind {
    Registration,
    MultiHomed,
    Refresh,
}

/// A NAME REGISTRATION REQUEST's useful content.
#[derive(Debug, Clone)]
pub(crate) struct NbRequest {
    pub(crate) name: Name,
    pub(crate) addr: NbAddress,
    pub(crate) ttl: u32,
}

/// An end-node challenge in progress (RFC 1002 §5.1.4.1, secure server).
#[derive(Debug, Clone)]
struct Challenge {
    name: Name,
    requester: SocketAddrV4,
    request_id: u16,
    request_len: usize,
    member: NbAddress,
    ttl: u32,
    multihomed: bool,
    /// Owner addresses queried, and whether each answered negatively.
    targets: Vec<(Ipv4Addr, bool)>,
    owners: Vec<Ipv4Addr>,
    attempts_left: u32,
    deadline: Instant,
}

/// The NetBIOS Name Server.
#[derive(Debug)]
pub struct NbnsServer {
    pub(crate) cfg: NbnsConfig,
    pub(crate) table: Table,
    rate: RateLimiter,
    pending: HashMap<u16, Challenge>,
    pending_by_name: HashMap<Name, u16>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<NbnsEvent>,
    pub(crate) stats: NbnsStats,
    /// Challenge ids (ChaCha, seeded from the OS unless the configuration fixes a seed).
    rng: Random,
}

impl NbnsServer {
    /// An empty server. Fails on an invalid configuration.
    pub fn new(cfg: NbnsConfig, now: Instant) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let _ = now;
        let rng = Random::new(cfg.rng_seed);
        let (rate, burst) = cfg.registrations_per_source_per_s;
        Ok(NbnsServer {
            rate: RateLimiter::new(rate, burst, cfg.max_sources),
            cfg,
            table: Table::default(),
            pending: HashMap::new(),
            pending_by_name: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: NbnsStats::default(),
            rng,
        })
    }

    pub fn config(&self) -> &NbnsConfig {
        &self.cfg
    }

    /// A packet received unicast on the NBNS port. Packets with the B flag are
    /// dropped (counted): the NBNS is unicast-only (RFC 1002 §5.1.4).
    pub fn handle(&mut self, now: Instant, from: SocketAddrV4, bytes: &[u8]) {
        self.handle_received(now, from, bytes, false);
    }

    /// Like [`NbnsServer::handle`], telling whether the packet arrived on a
    /// broadcast socket (then it is dropped and counted).
    pub fn handle_received(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        bytes: &[u8],
        broadcast: bool,
    ) {
        self.stats.packets_received += 1;
        self.run_timers(now);
        self.dispatch(now, from, bytes, broadcast);
        self.update_gauges();
    }

    fn dispatch(&mut self, now: Instant, from: SocketAddrV4, bytes: &[u8], broadcast: bool) {
        if broadcast {
            self.stats.broadcast_ignored += 1;
            return;
        }
        let ip = *from.ip();
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || from.port() == 0 {
            self.stats.bad_source += 1;
            return;
        }
        let Ok(pkt) = Packet::parse(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        if pkt.is_broadcast() {
            self.stats.broadcast_ignored += 1;
            return;
        }
        if pkt.is_response() {
            self.on_response(now, from, &pkt);
            return;
        }
        match pkt.opcode() {
            Opcode::Query => self.on_query(now, from, &pkt, bytes.len()),
            Opcode::Registration => {
                self.stats.registrations += 1;
                self.on_registration(now, from, &pkt, bytes.len(), RegKind::Registration)
            }
            Opcode::MultiHomedRegistration => {
                self.stats.multihomed_registrations += 1;
                self.on_registration(now, from, &pkt, bytes.len(), RegKind::MultiHomed)
            }
            Opcode::Refresh(_) => {
                self.stats.refreshes += 1;
                self.on_registration(now, from, &pkt, bytes.len(), RegKind::Refresh)
            }
            Opcode::Release => self.on_release(now, from, &pkt, bytes.len()),
            Opcode::Wack | Opcode::Other(_) => self.stats.unsupported_opcode += 1,
        }
    }

    /// Expire names and run challenge timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.run_timers(now);
        self.update_gauges();
    }

    /// The next instant [`NbnsServer::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let challenges = self.pending.values().map(|c| c.deadline).min();
        [self.table.next_deadline(), challenges]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<NbnsEvent> {
        self.events.pop_front()
    }

    pub fn stats(&self) -> &NbnsStats {
        &self.stats
    }

    /// The live addresses of `name` (exact name, scope included), or `None`.
    pub fn lookup(&self, name: &Name, now: Instant) -> Option<Entry> {
        let rec = self.table.get(name)?;
        let live = rec.live_oldest_first(now)?;
        Some(Entry {
            name: name.clone(),
            group: rec.group,
            addresses: live.iter().map(|m| m.ip).collect(),
            expires: live.iter().map(|m| m.expires).max().unwrap_or(now),
        })
    }

    /// Every live address of every name, sorted and deduplicated: the members of
    /// "all nodes in the scope" for an NBDD relaying a datagram to `*`
    /// (RFC 1001 §17.3).
    pub fn all_addresses(&self, now: Instant) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = self
            .table
            .iter()
            .flat_map(|(_, rec)| rec.live(now).map(|m| m.ip))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every name with its live addresses, sorted by name.
    pub fn entries(&self, now: Instant) -> Vec<EntrySnapshot> {
        let mut names: Vec<(&Name, &Record)> = self.table.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        names
            .into_iter()
            .filter_map(|(name, rec)| {
                let members = rec.live_oldest_first(now)?;
                Some(EntrySnapshot {
                    name: name.to_string(),
                    suffix: name.suffix(),
                    group: rec.group,
                    is_static: rec.fixed.is_some(),
                    origin: match rec.fixed {
                        None => "dynamic",
                        Some(Fixed::Config) => "config",
                        Some(Fixed::Admin) => "admin",
                    },
                    members: members
                        .into_iter()
                        .map(|m| MemberSnapshot {
                            ip: m.ip,
                            nb_flags: m.nb_flags,
                            ont: nbdgm_wire::nbns::ont_name(m.nb_flags),
                            ttl: if rec.fixed.is_some() { 0 } else { m.ttl },
                            expires_in_s: match rec.fixed {
                                Some(_) => 0,
                                None => m.expires.saturating_duration_since(now).as_secs(),
                            },
                        })
                        .collect(),
                })
            })
            .collect()
    }

    // ----------------------------------------------------------------- output

    fn send(&mut self, to: SocketAddrV4, pkt: &Packet, reply_to: Option<usize>) {
        let bytes = match pkt.to_bytes() {
            Ok(b) => b,
            Err(_) => {
                self.stats.emit_errors += 1;
                return;
            }
        };
        if self.transmits.len() >= self.cfg.max_queued_transmits {
            self.stats.transmits_dropped += 1;
            return;
        }
        self.stats.transmits += 1;
        self.transmits
            .push_back(Transmit::unicast(Service::Name, to, bytes, reply_to));
    }

    pub(crate) fn emit(&mut self, ev: NbnsEvent) {
        if self.events.len() >= self.cfg.max_queued_events {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(ev);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn refuse(
        &mut self,
        to: SocketAddrV4,
        id: u16,
        len: usize,
        rcode: u8,
        req: &NbRequest,
        addr: NbAddress,
        reason: RefuseReason,
    ) {
        let pkt = packets::registration_response(id, rcode, &req.name, 0, addr);
        self.send(to, &pkt, Some(len));
        self.emit(NbnsEvent::Refused {
            name: req.name.clone(),
            ip: *to.ip(),
            reason,
        });
    }

    pub(crate) fn update_gauges(&mut self) {
        self.stats.names = self.table.len() as u64;
        self.stats.addresses = self.table.members() as u64;
        self.stats.pending_challenges = self.pending.len() as u64;
        self.stats.sources_tracked = self.rate.len() as u64;
        self.stats.sources_holding = self.table.sources() as u64;
    }

    fn next_id(&mut self) -> u16 {
        // Unpredictable and never one of a pending challenge (`pending` is capped far
        // below 65536, so this ends).
        loop {
            let id = (self.rng.next_u32() >> 16) as u16;
            if id != 0 && !self.pending.contains_key(&id) {
                return id;
            }
        }
    }

    pub(crate) fn deadline(&self, now: Instant, d: Duration) -> Instant {
        now.checked_add(d).unwrap_or(now)
    }

    pub(crate) fn member(&self, now: Instant, addr: NbAddress, ttl: u32) -> Member {
        let life = Duration::from_secs(u64::from(ttl)).saturating_add(self.cfg.expiry_grace);
        Member {
            ip: addr.ip,
            nb_flags: addr.flags & (NB_GROUP | NB_ONT_MASK),
            ttl,
            since: now,
            expires: self.deadline(now, life),
            established: false,
        }
    }

    fn in_scope(&mut self, name: &Name) -> bool {
        if name.scope().eq_ignore_ascii_case(&self.cfg.scope) {
            true
        } else {
            self.stats.scope_mismatch += 1;
            false
        }
    }

    fn rate_ok(&mut self, ip: Ipv4Addr, now: Instant) -> bool {
        match self.rate.check(ip, now) {
            Verdict::Allowed => true,
            Verdict::Limited => {
                self.stats.rate_limited += 1;
                false
            }
            Verdict::TableFull => {
                self.stats.rate_table_full += 1;
                false
            }
        }
    }

    // ------------------------------------------------------------------ timers

    fn run_timers(&mut self, now: Instant) {
        let mut expired = Vec::new();
        self.table.expire(now, &mut expired);
        for (name, ip, name_gone) in expired {
            self.stats.expired_addresses += 1;
            if name_gone {
                self.stats.expired_names += 1;
            }
            self.emit(NbnsEvent::Expired { name, ip });
        }
        let due: Vec<u16> = self
            .pending
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(ch) = self.pending.get_mut(&id) else {
                continue;
            };
            if ch.attempts_left > 0 {
                ch.attempts_left -= 1;
                ch.deadline = now.checked_add(self.cfg.challenge_timeout).unwrap_or(now);
                let name = ch.name.clone();
                let targets: Vec<Ipv4Addr> = ch
                    .targets
                    .iter()
                    .filter(|(_, neg)| !neg)
                    .map(|(ip, _)| *ip)
                    .collect();
                self.send_challenge_queries(id, &name, &targets);
            } else if let Some(ch) = self.take_challenge(id) {
                self.stats.challenges_owner_silent += 1;
                self.finish_transfer(now, ch, ChallengeOutcome::OwnerSilent);
            }
        }
    }

    // ------------------------------------------------------------------- query

    fn on_query(&mut self, now: Instant, from: SocketAddrV4, pkt: &Packet, len: usize) {
        let Some(q) = pkt.questions.first() else {
            self.stats.malformed_request += 1;
            return;
        };
        if q.qtype == TYPE_NBSTAT {
            // The NBNS has no node name table of its own to show; scanners get nothing.
            self.stats.node_status_ignored += 1;
            return;
        }
        if q.qtype != TYPE_NB {
            self.stats.unsupported_opcode += 1;
            return;
        }
        let name = q.name.clone();
        if !self.in_scope(&name) {
            return;
        }
        self.stats.queries += 1;
        let rd = pkt.flags & FLAG_RD != 0;
        let answer = self.answer_for(&name, now);
        let Some((mut addrs, ttl)) = answer else {
            self.stats.queries_negative += 1;
            let resp = packets::negative_query(pkt.id, rd, RCODE_NAM_ERR, &name);
            self.send(from, &resp, Some(len));
            return;
        };
        // Room: max_reply_factor × the request (the daemon's reply gate refuses more),
        // one datagram (RFC 1002 §4.2.1.1) and max_answer_addresses; at least one
        // address (with a factor too small even for that the gate refuses it).
        let base = packets::positive_query_len(&name, 0);
        let by_factor = len
            .saturating_mul(self.cfg.max_reply_factor)
            .saturating_sub(base)
            / 6;
        let by_datagram = packets::MAX_NBNS_PAYLOAD.saturating_sub(base) / 6;
        let cap = by_factor
            .min(by_datagram)
            .min(self.cfg.max_answer_addresses)
            .max(1);
        // TC only for the RFC's reason: the whole answer exceeds one datagram.
        let tc = addrs.len() > by_datagram;
        if addrs.len() > cap {
            // Round robin (RFC 1001 §15.3.2: no order is imposed): each cut answer
            // starts where the previous one for this name stopped.
            let start = self.table.rotate(&name, addrs.len(), cap);
            addrs.rotate_left(start);
            addrs.truncate(cap);
            self.stats.answers_truncated += 1;
            if tc {
                self.stats.answers_tc += 1;
            }
        }
        self.stats.queries_positive += 1;
        let resp = packets::positive_query(pkt.id, rd, tc, &name, ttl, addrs);
        self.send(from, &resp, Some(len));
    }

    /// The addresses a query for `name` gets, with the TTL to announce.
    fn answer_for(&self, name: &Name, now: Instant) -> Option<(Vec<NbAddress>, u32)> {
        let rec = self.table.get(name)?;
        let live = rec.live_oldest_first(now)?;
        // Remaining TTL of the soonest-expiring address, never 0 (0 means infinite).
        let ttl = live
            .iter()
            .map(|m| {
                m.expires
                    .saturating_duration_since(now)
                    .saturating_sub(self.cfg.expiry_grace)
                    .as_secs()
            })
            .min()
            .unwrap_or(1)
            .clamp(1, u64::from(u32::MAX)) as u32;
        let wins = self.cfg.group_answers == GroupAnswers::Broadcast;
        if wins && name.suffix() == 0x1D {
            // WINS: <1D> queries are answered negatively (DIGEST §8 item 19).
            return None;
        }
        if rec.group && wins {
            match name.suffix() {
                0x1C => {}
                _ => {
                    let ont = live.first().map_or(0, |m| m.nb_flags & NB_ONT_MASK);
                    return Some((
                        vec![NbAddress {
                            flags: NB_GROUP | ont,
                            ip: Ipv4Addr::BROADCAST,
                        }],
                        ttl,
                    ));
                }
            }
        }
        let group_bit = if rec.group { NB_GROUP } else { 0 };
        Some((
            live.iter()
                .map(|m| NbAddress {
                    flags: (m.nb_flags & NB_ONT_MASK) | group_bit,
                    ip: m.ip,
                })
                .collect(),
            ttl,
        ))
    }

    // ------------------------------------------------------------ registration

    /// The question and the first address of the additional NB record, or a
    /// FMT_ERR answer when there is a question to answer.
    fn parse_nb_request(
        &mut self,
        from: SocketAddrV4,
        pkt: &Packet,
        len: usize,
        release: bool,
    ) -> Option<NbRequest> {
        let Some(q) = pkt.questions.first() else {
            self.stats.malformed_request += 1;
            return None;
        };
        let rec = pkt.additional.first().filter(|r| {
            r.rr_type == TYPE_NB
                && r.name == q.name
                && pkt.questions.len() == 1
                && q.qtype == TYPE_NB
        });
        let addr = rec.and_then(|r| match &r.rdata {
            RData::Nb(v) => v.first().copied().map(|a| (a, v.len(), r.ttl)),
            _ => None,
        });
        match addr {
            Some((addr, n, ttl)) => {
                if n > 1 {
                    self.stats.extra_addresses_ignored += (n - 1) as u64;
                }
                Some(NbRequest {
                    name: q.name.clone(),
                    addr,
                    ttl,
                })
            }
            None => {
                self.stats.malformed_request += 1;
                let name = q.name.clone();
                if self.in_scope(&name) {
                    let zero = NbAddress {
                        flags: 0,
                        ip: Ipv4Addr::UNSPECIFIED,
                    };
                    let resp = if release {
                        packets::release_response(pkt.id, RCODE_FMT_ERR, &name, zero)
                    } else {
                        packets::registration_response(pkt.id, RCODE_FMT_ERR, &name, 0, zero)
                    };
                    self.send(from, &resp, Some(len));
                    self.emit(NbnsEvent::Refused {
                        name,
                        ip: *from.ip(),
                        reason: RefuseReason::Malformed,
                    });
                }
                None
            }
        }
    }

    /// A registration, refresh or release request that is well formed, in scope and within
    /// the sender's rate: `None` (counted, and answered where the request deserves it) else.
    fn admit_nb_request(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        pkt: &Packet,
        len: usize,
        release: bool,
    ) -> Option<NbRequest> {
        let req = self.parse_nb_request(from, pkt, len, release)?;
        if !self.in_scope(&req.name) || !self.rate_ok(*from.ip(), now) {
            return None;
        }
        Some(req)
    }

    fn on_registration(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        pkt: &Packet,
        len: usize,
        kind: RegKind,
    ) {
        let Some(req) = self.admit_nb_request(now, from, pkt, len, false) else {
            return;
        };
        let id = pkt.id;
        let own = req.addr;
        if req.name.is_wildcard() || req.name.raw()[0] == b'*' {
            self.stats.refused_bad_name += 1;
            return self.refuse(
                from,
                id,
                len,
                RCODE_RFS_ERR,
                &req,
                own,
                RefuseReason::BadName,
            );
        }
        if kind == RegKind::Registration && pkt.flags & FLAG_RD == 0 {
            // NAME OVERWRITE / "NAME UPDATE REQUEST": a secure server says IMP_ERR.
            self.stats.refused_update += 1;
            let r = RefuseReason::UpdateNotSupported;
            return self.refuse(from, id, len, RCODE_IMP_ERR, &req, own, r);
        }
        let ip = own.ip;
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
            self.stats.refused_bad_address += 1;
            let r = RefuseReason::BadAddress;
            return self.refuse(from, id, len, RCODE_RFS_ERR, &req, own, r);
        }
        if self.cfg.require_source_match && ip != *from.ip() {
            self.stats.refused_source_mismatch += 1;
            let r = RefuseReason::SourceMismatch;
            return self.refuse(from, id, len, RCODE_RFS_ERR, &req, own, r);
        }
        let ttl = self.cfg.grant_ttl(req.ttl);
        let group = own.is_group();
        if self.cfg.group_answers == GroupAnswers::Broadcast && req.name.suffix() == 0x1D {
            // WINS grants <1D> (one master browser per subnet) without storing it, so
            // the master browsers of different subnets never conflict (MS-NBTE §6).
            self.stats.unstored_1d += 1;
            return self.grant(from, id, len, &req, ttl);
        }
        let Some(rec) = self.table.get(&req.name) else {
            if kind == RegKind::Refresh {
                // After a restart the clients only refresh: take it as a registration.
                self.stats.refresh_unknown += 1;
            }
            return self.register_new(now, from, id, len, &req, ttl);
        };
        if rec.fixed.is_some() {
            let same = rec.group == group && rec.has(ip);
            return self.defend_static(now, from, id, len, &req, ttl, same);
        }
        if rec.group != group {
            self.stats.refused_kind_mismatch += 1;
            let holder = self.holder_addr(&req.name, now).unwrap_or(own);
            let r = RefuseReason::KindMismatch;
            return self.refuse(from, id, len, RCODE_ACT_ERR, &req, holder, r);
        }
        if rec.has(ip) {
            return self.refresh_member(now, from, id, len, &req, ttl);
        }
        if group {
            return self.add_member(now, from, id, len, &req, ttl);
        }
        // A unique name held by other addresses.
        if kind == RegKind::Refresh {
            self.stats.refused_active += 1;
            let holder = self.holder_addr(&req.name, now).unwrap_or(own);
            let r = RefuseReason::Active;
            return self.refuse(from, id, len, RCODE_ACT_ERR, &req, holder, r);
        }
        let mut owners: Vec<&Member> = rec.members.iter().collect();
        owners.sort_by_key(|m| m.since);
        let owners: Vec<Ipv4Addr> = owners.iter().map(|m| m.ip).collect();
        if !self.quota_ok(from, id, len, &req) {
            return;
        }
        self.start_challenge(now, from, pkt, len, req, ttl, kind, owners);
    }

    /// The first (oldest) address of a name, with its flags, for ACT_ERR answers.
    pub(crate) fn holder_addr(&self, name: &Name, now: Instant) -> Option<NbAddress> {
        let rec = self.table.get(name)?;
        let m = rec.live(now).min_by_key(|m| m.since)?;
        let g = if rec.group { NB_GROUP } else { 0 };
        Some(NbAddress {
            flags: (m.nb_flags & NB_ONT_MASK) | g,
            ip: m.ip,
        })
    }

    /// Per-source quotas (issue 12 item 11): `false`, after an RFS_ERR answer, when
    /// the requester's address already holds `max_groups_per_source` group
    /// memberships or `max_names_per_source` unique names.
    fn quota_ok(&mut self, to: SocketAddrV4, id: u16, len: usize, req: &NbRequest) -> bool {
        let held = self.table.held_by(req.addr.ip);
        let over = if req.addr.is_group() {
            let over = held.groups >= self.cfg.max_groups_per_source;
            self.stats.refused_groups_per_source += u64::from(over);
            over
        } else {
            let over = held.unique >= self.cfg.max_names_per_source;
            self.stats.refused_names_per_source += u64::from(over);
            over
        };
        if over {
            let r = RefuseReason::SourceQuota;
            self.refuse(to, id, len, RCODE_RFS_ERR, req, req.addr, r);
        }
        !over
    }

    pub(crate) fn grant(
        &mut self,
        to: SocketAddrV4,
        id: u16,
        len: usize,
        req: &NbRequest,
        ttl: u32,
    ) {
        let resp = packets::registration_response(id, 0, &req.name, ttl, req.addr);
        self.send(to, &resp, Some(len));
    }

    /// A new member stored: counted, reported and answered with a positive response.
    fn granted(&mut self, to: SocketAddrV4, id: u16, len: usize, req: &NbRequest, ttl: u32) {
        self.stats.granted += 1;
        self.emit(NbnsEvent::Registered {
            name: req.name.clone(),
            ip: req.addr.ip,
            group: req.addr.is_group(),
            ttl,
        });
        self.grant(to, id, len, req, ttl);
    }

    fn register_new(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        id: u16,
        len: usize,
        req: &NbRequest,
        ttl: u32,
    ) {
        if !self.quota_ok(from, id, len, req) {
            return;
        }
        if self.table.len() >= self.cfg.max_names {
            self.stats.refused_table_full += 1;
            let r = RefuseReason::TableFull;
            return self.refuse(from, id, len, RCODE_SRV_ERR, req, req.addr, r);
        }
        let group = req.addr.is_group();
        let m = self.member(now, req.addr, ttl);
        self.table.insert(req.name.clone(), group, m);
        self.granted(from, id, len, req, ttl);
    }

    fn refresh_member(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        id: u16,
        len: usize,
        req: &NbRequest,
        ttl: u32,
    ) {
        let fresh = self.member(now, req.addr, ttl);
        self.table.update(&req.name, |members| {
            if let Some(m) = members.iter_mut().find(|m| m.ip == fresh.ip) {
                m.ttl = fresh.ttl;
                m.nb_flags = fresh.nb_flags;
                m.expires = fresh.expires;
                m.established = true;
            }
        });
        self.stats.refreshed += 1;
        self.grant(from, id, len, req, ttl);
    }

    /// Append an address to a group, or to a unique name of the same (multi-homed)
    /// owner. A full list (MS-NBTE §3.2.5.1, §3.2.5.3) makes room only by evicting an
    /// address whose TTL ran out, else the oldest one that never refreshed: an
    /// established member leaves only by expiry or by its own release (issue 12 item
    /// 11). With nothing evictable, or eviction off, the newcomer gets RFS_ERR.
    fn add_member(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        id: u16,
        len: usize,
        req: &NbRequest,
        ttl: u32,
    ) {
        if !self.quota_ok(from, id, len, req) {
            return;
        }
        let cap = self.cfg.max_group_members;
        let grace = self.cfg.expiry_grace;
        let victim = match self.table.get(&req.name) {
            Some(r) if r.members.len() >= cap => {
                let lapsed = |m: &Member| m.expires.checked_sub(grace).is_some_and(|t| t <= now);
                let victim = r
                    .members
                    .iter()
                    .filter(|m| lapsed(m))
                    .min_by_key(|m| m.expires)
                    .or_else(|| {
                        r.members
                            .iter()
                            .filter(|m| !m.established)
                            .min_by_key(|m| m.since)
                    })
                    .map(|m| m.ip);
                Some(victim)
            }
            _ => None,
        };
        match victim {
            Some(_) if !self.cfg.evict_oldest_member => {
                self.stats.refused_group_full += 1;
                let r = RefuseReason::GroupFull;
                return self.refuse(from, id, len, RCODE_RFS_ERR, req, req.addr, r);
            }
            Some(None) => {
                self.stats.refused_group_established += 1;
                let r = RefuseReason::GroupEstablished;
                return self.refuse(from, id, len, RCODE_RFS_ERR, req, req.addr, r);
            }
            _ => {}
        }
        let m = self.member(now, req.addr, ttl);
        let evicted: Vec<Ipv4Addr> = self
            .table
            .update(&req.name, |members| {
                let out: Vec<Ipv4Addr> = match victim {
                    Some(Some(ip)) => {
                        members.retain(|m| m.ip != ip);
                        vec![ip]
                    }
                    _ => Vec::new(),
                };
                members.push(m);
                out
            })
            .unwrap_or_default();
        for ip in evicted {
            self.stats.members_evicted += 1;
            self.emit(NbnsEvent::Evicted {
                name: req.name.clone(),
                ip,
            });
        }
        self.granted(from, id, len, req, ttl);
    }

    // --------------------------------------------------------------- challenge

    #[allow(clippy::too_many_arguments)]
    fn start_challenge(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        pkt: &Packet,
        len: usize,
        req: NbRequest,
        ttl: u32,
        kind: RegKind,
        owners: Vec<Ipv4Addr>,
    ) {
        let id = pkt.id;
        if let Some(&trn) = self.pending_by_name.get(&req.name) {
            let same = self
                .pending
                .get(&trn)
                .is_some_and(|c| c.requester == from && c.member.ip == req.addr.ip);
            if same {
                // The requester retransmitted: tell it again to wait.
                self.stats.challenge_duplicates += 1;
                let w = packets::wack(id, &req.name, self.cfg.wack_ttl(), pkt.flags);
                self.send(from, &w, Some(len));
                return;
            }
            self.stats.challenge_busy += 1;
            let holder = self.holder_addr(&req.name, now).unwrap_or(req.addr);
            let r = RefuseReason::ChallengeBusy;
            return self.refuse(from, id, len, RCODE_ACT_ERR, &req, holder, r);
        }
        if self.pending.len() >= self.cfg.max_pending_challenges {
            self.stats.challenges_full += 1;
            let r = RefuseReason::ChallengesFull;
            return self.refuse(from, id, len, RCODE_SRV_ERR, &req, req.addr, r);
        }
        let trn = self.next_id();
        let targets: Vec<Ipv4Addr> = owners
            .iter()
            .copied()
            .take(self.cfg.max_challenge_targets)
            .collect();
        let w = packets::wack(id, &req.name, self.cfg.wack_ttl(), pkt.flags);
        self.send(from, &w, Some(len));
        self.send_challenge_queries(trn, &req.name, &targets);
        self.stats.challenges_started += 1;
        self.emit(NbnsEvent::ChallengeStarted {
            name: req.name.clone(),
            owners: owners.clone(),
            requester: req.addr.ip,
        });
        self.pending_by_name.insert(req.name.clone(), trn);
        self.pending.insert(
            trn,
            Challenge {
                name: req.name,
                requester: from,
                request_id: id,
                request_len: len,
                member: req.addr,
                ttl,
                multihomed: kind == RegKind::MultiHomed,
                targets: targets.into_iter().map(|ip| (ip, false)).collect(),
                owners,
                attempts_left: self.cfg.challenge_attempts.saturating_sub(1),
                deadline: now.checked_add(self.cfg.challenge_timeout).unwrap_or(now),
            },
        );
    }

    fn send_challenge_queries(&mut self, trn: u16, name: &Name, targets: &[Ipv4Addr]) {
        let q = packets::challenge_query(trn, name);
        for ip in targets {
            self.stats.challenge_queries_sent += 1;
            self.send(SocketAddrV4::new(*ip, self.cfg.node_port), &q, None);
        }
    }

    fn take_challenge(&mut self, trn: u16) -> Option<Challenge> {
        let ch = self.pending.remove(&trn)?;
        if self.pending_by_name.get(&ch.name) == Some(&trn) {
            self.pending_by_name.remove(&ch.name);
        }
        Some(ch)
    }

    /// The targets of challenge `trn` that `answered(index, ip)` picks no longer hold the
    /// name; once none does, the challenge ends with the owner gone (OwnerReleased).
    fn owners_negative(
        &mut self,
        now: Instant,
        trn: u16,
        answered: impl Fn(usize, Ipv4Addr) -> bool,
    ) {
        let all_negative = match self.pending.get_mut(&trn) {
            Some(ch) => {
                for (i, t) in ch.targets.iter_mut().enumerate() {
                    if answered(i, t.0) {
                        t.1 = true;
                    }
                }
                ch.targets.iter().all(|(_, neg)| *neg)
            }
            None => false,
        };
        if all_negative {
            if let Some(ch) = self.take_challenge(trn) {
                self.stats.challenges_owner_released += 1;
                self.finish_transfer(now, ch, ChallengeOutcome::OwnerReleased);
            }
        }
    }

    fn on_response(&mut self, now: Instant, from: SocketAddrV4, pkt: &Packet) {
        // Matched on id, source and name (an answer about another name is not ours).
        let matched = self.pending.get(&pkt.id).and_then(|ch| {
            let idx = ch.targets.iter().position(|(ip, _)| ip == from.ip())?;
            let same_name = pkt.answers.first().is_none_or(|r| r.name == ch.name);
            (pkt.opcode() == Opcode::Query && same_name).then_some(idx)
        });
        let Some(idx) = matched else {
            self.stats.unsolicited_response += 1;
            return;
        };
        let trn = pkt.id;
        if pkt.rcode() != 0 {
            return self.owners_negative(now, trn, |i, _| i == idx);
        }
        // Positive: the answer must be NB data for the challenged name.
        let addrs: Option<Vec<Ipv4Addr>> = self.pending.get(&trn).and_then(|ch| {
            let rec = pkt.answers.first().filter(|r| r.name == ch.name)?;
            match &rec.rdata {
                RData::Nb(v) => Some(v.iter().map(|a| a.ip).collect()),
                _ => None,
            }
        });
        let Some(addrs) = addrs else {
            self.stats.unsolicited_response += 1;
            return;
        };
        let Some(ch) = self.take_challenge(trn) else {
            return;
        };
        if ch.multihomed && addrs.contains(&ch.member.ip) {
            self.stats.challenges_joined += 1;
            self.finish_transfer(now, ch, ChallengeOutcome::Joined);
        } else {
            self.stats.challenges_defended += 1;
            self.stats.refused_active += 1;
            let holder = self.holder_addr(&ch.name, now).unwrap_or(NbAddress {
                flags: 0,
                ip: *from.ip(),
            });
            let req = NbRequest {
                name: ch.name.clone(),
                addr: ch.member,
                ttl: ch.ttl,
            };
            self.emit(NbnsEvent::Conflict {
                name: ch.name.clone(),
                owners: ch.owners.clone(),
                requester: ch.member.ip,
                outcome: ChallengeOutcome::OwnerDefended,
            });
            let r = RefuseReason::Active;
            self.refuse(
                ch.requester,
                ch.request_id,
                ch.request_len,
                RCODE_ACT_ERR,
                &req,
                holder,
                r,
            );
        }
    }

    fn challenge_request(ch: &Challenge) -> NbRequest {
        NbRequest {
            name: ch.name.clone(),
            addr: ch.member,
            ttl: ch.ttl,
        }
    }

    /// The challenge is over without a defence, re-checking the table (which may have
    /// changed while the challenge ran). `Joined`: a multi-homed owner confirmed the new
    /// address, append it; else the owner is gone and the name moves to the requester.
    fn finish_transfer(&mut self, now: Instant, ch: Challenge, outcome: ChallengeOutcome) {
        self.emit(NbnsEvent::Conflict {
            name: ch.name.clone(),
            owners: ch.owners.clone(),
            requester: ch.member.ip,
            outcome,
        });
        let req = Self::challenge_request(&ch);
        let (to, id, len, ttl) = (ch.requester, ch.request_id, ch.request_len, ch.ttl);
        let current = self
            .table
            .get(&ch.name)
            .map(|r| (r.group || r.fixed.is_some(), r.has(ch.member.ip)));
        match current {
            Some((true, _)) => {
                self.stats.refused_kind_mismatch += 1;
                let holder = self.holder_addr(&ch.name, now).unwrap_or(ch.member);
                let r = RefuseReason::KindMismatch;
                self.refuse(to, id, len, RCODE_ACT_ERR, &req, holder, r);
            }
            Some((false, true)) => self.refresh_member(now, to, id, len, &req, ttl),
            Some((false, false)) if outcome == ChallengeOutcome::Joined => {
                self.add_member(now, to, id, len, &req, ttl)
            }
            Some((false, false)) => {
                if !self.quota_ok(to, id, len, &req) {
                    return;
                }
                if let Some(old) = self.table.remove(&ch.name) {
                    for m in old.members {
                        self.emit(NbnsEvent::Evicted {
                            name: ch.name.clone(),
                            ip: m.ip,
                        });
                    }
                }
                self.register_new(now, to, id, len, &req, ttl);
            }
            None => self.register_new(now, to, id, len, &req, ttl),
        }
    }

    // ----------------------------------------------------------------- release

    fn on_release(&mut self, now: Instant, from: SocketAddrV4, pkt: &Packet, len: usize) {
        self.stats.releases += 1;
        let Some(req) = self.admit_nb_request(now, from, pkt, len, true) else {
            return;
        };
        let id = pkt.id;
        let addr = req.addr;
        let reply = |s: &mut Self, rcode: u8, reason: Option<RefuseReason>| {
            let resp = packets::release_response(id, rcode, &req.name, addr);
            s.send(from, &resp, Some(len));
            if let Some(reason) = reason {
                s.emit(NbnsEvent::Refused {
                    name: req.name.clone(),
                    ip: *from.ip(),
                    reason,
                });
            }
        };
        // Only the registering host may release its address (RFC 1002 §4.2.11 ACT_ERR
        // note; the UDP source is the best evidence of who that is).
        if addr.ip != *from.ip() {
            self.stats.release_source_mismatch += 1;
            return reply(self, RCODE_RFS_ERR, Some(RefuseReason::SourceMismatch));
        }
        let Some(rec) = self.table.get(&req.name) else {
            self.stats.release_unknown += 1;
            return reply(self, RCODE_NAM_ERR, Some(RefuseReason::UnknownName));
        };
        if rec.fixed.is_some() {
            self.stats.refused_static += 1;
            return reply(self, RCODE_ACT_ERR, Some(RefuseReason::Static));
        }
        if !rec.has(addr.ip) {
            self.stats.release_not_owner += 1;
            return reply(self, RCODE_ACT_ERR, Some(RefuseReason::NotOwner));
        }
        self.table
            .update(&req.name, |members| members.retain(|m| m.ip != addr.ip));
        self.stats.released += 1;
        self.emit(NbnsEvent::Released {
            name: req.name.clone(),
            ip: addr.ip,
        });
        reply(self, 0, None);
        // A challenge waiting on this owner need not wait any longer.
        if let Some(&trn) = self.pending_by_name.get(&req.name) {
            self.owners_negative(now, trn, |_, ip| ip == addr.ip);
        }
    }
}
