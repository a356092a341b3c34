//! The NBNS (WINS) client of P-, M- and H-nodes (RFC 1001 §15.1, §15.4; RFC 1002
//! §5.1.2, §5.1.3; MS-NBTE §3.1.4, §3.1.7; DIGEST §3.2a, §4.5):
//!
//! * registration: unicast NAME REGISTRATION REQUEST (RD set) to the NBNS, retried
//!   UCAST_REQ_RETRY_COUNT times every UCAST_REQ_RETRY_TIMEOUT, then the next NBNS.
//!   A WACK extends the wait by its TTL (bounded by `wack_limit`). Positive: active,
//!   refreshed after max(TTL / 2, `refresh_min`). Negative: conflict. END-NODE
//!   CHALLENGE (positive without RA naming another owner): the owner is queried; if it
//!   is silent or denies, a NAME OVERWRITE REQUEST claims the name.
//!   When no NBNS answers: P fails (RFC 1002 §5.1.2.1 "NBNS is down. Cannot claim
//!   name"), M keeps the name its broadcast registration already won, H falls back to
//!   the B-node broadcast registration.
//! * M-nodes register by broadcast first, then with the NBNS (RFC 1002 §5.1.3.1).
//! * refresh: NAME REFRESH REQUEST (opcode 8); negative = conflict (§5.1.2.6);
//!   silence keeps the name and retries after `refresh_min`.
//! * release: unicast NAME RELEASE REQUEST to the NBNS; M then always broadcasts the
//!   release (§5.1.3.4); H only when the NBNS refused or was silent (MS-NBTE §3.1.7).
//! * a NAME RELEASE REQUEST from our NBNS for one of our names removes it
//!   (§5.1.2.5, §5.1.3.5).
//! * resolution order: P = NBNS list; M = broadcast, then the NBNS list; H = the
//!   NBNS list, then broadcast (also after a negative NBNS answer, DIGEST §8.19).
//! * multihomed hosts (MS-NBTE §2.2.2, §3.1.4.1; [`crate::NodeConfig::multihomed`]):
//!   one node per interface; a unique name is registered with the NBNS by
//!   MULTIHOMED NAME REGISTRATION REQUEST (opcode 0xF, flags 0x7900) carrying this
//!   node's address, and its responses are handled like registration responses.
//!   Group names keep opcode 5. Refreshes keep opcode 8: MS-NBTE changes only the
//!   registration (§3.1.4.1) and keeps the refresh of RFC 1002 §5.1.2.6 (§3.1.6 only
//!   makes the refresh timer global). A unicast query for one of our unique names
//!   (the NBNS's challenge) is answered with all the host's addresses
//!   (`name_service`), so the NBNS keeps them all (MS-NBTE §3.2.5.3).
//!
//! * queries to an NBNS: a WACK (RFC 1002 §4.2.16, as for requests in §5.1.2)
//!   extends the query's timer by its TTL, never past `wack_limit` after the first
//!   WACK; a REDIRECT NAME QUERY RESPONSE (§4.2.15) re-asks the query of the NBNS at
//!   its NSD_IP_ADDR (the A record in ADDITIONAL), at most [`MAX_REDIRECTS`] times per
//!   query and never to an NBNS that already redirected it (loop-safe); a refused
//!   redirect counts as silence (next step of the resolution order). The NS and A
//!   RR_NAMEs must be NetBIOS-encoded names (the codec's rule); NSD_NAME is not
//!   compared with the A record's RR_NAME.

use crate::config::Service;
use crate::config::MAX_DURATION;
use crate::error::{LookupError, NodeError};
use crate::event::{ConflictReason, DropReason, Event, NameAddress};
use crate::name_service::{request_with_record, FLAGS_REGISTRATION, OP_REGISTRATION, OP_RELEASE};
use crate::name_table::{Job, NameState, NsJob, NsOp};
use crate::node::{Incoming, Node, Transmit};
use crate::transaction::{Kind, Transaction, Waiter};
use nbdgm_wire::datagram::NodeType;
use nbdgm_wire::nbns::{NbnsHeader, Opcode, Packet, RData, FLAG_RA, FLAG_RD, TYPE_A, TYPE_NS};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

const OP_REFRESH: u16 = Opcode::Refresh(8).to_flags();
/// Most REDIRECT NAME QUERY RESPONSEs one query follows (RFC 1002 sets no limit).
pub const MAX_REDIRECTS: usize = 3;
/// NAME REGISTRATION REQUEST, unicast to the NBNS (RFC 1002 §4.2.2; DIGEST §10.3 Windows capture).
pub const FLAGS_REGISTRATION_UCAST: u16 = OP_REGISTRATION | FLAG_RD; // 0x2900
/// MULTIHOMED NAME REGISTRATION REQUEST, unicast to the NBNS (MS-NBTE §2.2.2: the
/// format of RFC 1002 §4.2.2 with OPCODE 0xF).
pub const FLAGS_MULTIHOMED_REGISTRATION: u16 = OP_MULTIHOMED | FLAG_RD; // 0x7900
const OP_MULTIHOMED: u16 = Opcode::MultiHomedRegistration.to_flags();
/// NAME OVERWRITE REQUEST & DEMAND, here the "NAME UPDATE REQUEST" of §5.1.2.1 (RFC 1002 §4.2.3).
pub const FLAGS_OVERWRITE: u16 = OP_REGISTRATION; // 0x2800
/// NAME REFRESH REQUEST (RFC 1002 §4.2.4, opcode 8).
pub const FLAGS_REFRESH: u16 = OP_REFRESH; // 0x4000
/// NAME RELEASE REQUEST, unicast to the NBNS (RFC 1002 §4.2.9).
pub const FLAGS_RELEASE_UCAST: u16 = OP_RELEASE; // 0x3000

impl Node {
    /// `ip` is one of our NBNS servers (and we use them).
    pub(crate) fn is_nbns(&self, ip: Ipv4Addr) -> bool {
        self.config.uses_nbns() && self.config.nbns.contains(&ip)
    }

    /// The name-service port to query at `ip`.
    pub(crate) fn ns_port_for(&self, ip: Ipv4Addr) -> u16 {
        if self.is_nbns(ip) {
            self.config.nbns_port
        } else {
            self.config.name_port
        }
    }

    /// The host's other addresses (`NodeConfig::multihomed` without our own and
    /// without duplicates), in configuration order.
    pub(crate) fn multihomed_addrs(&self) -> Vec<Ipv4Addr> {
        let mut out: Vec<Ipv4Addr> = Vec::new();
        for &ip in &self.config.multihomed {
            if ip != self.announced_addr() && ip != self.addr() && !out.contains(&ip) {
                out.push(ip);
            }
        }
        out
    }

    /// True when this node registers its unique names by multihomed registration.
    pub(crate) fn is_multihomed(&self) -> bool {
        self.config.uses_nbns() && !self.multihomed_addrs().is_empty()
    }

    /// Refresh interval for a granted TTL (DIGEST §4.5): TTL 0 = infinite, never.
    fn refresh_delay(&self, ttl: u32) -> Option<Duration> {
        if ttl == 0 {
            return None;
        }
        Some(
            Duration::from_secs(u64::from(ttl / 2))
                .max(self.config.refresh_min)
                .min(MAX_DURATION),
        )
    }

    // ---------------------------------------------------------------- requests

    /// Start a unicast exchange `op` for our `name` with the primary NBNS.
    pub(crate) fn start_ns(
        &mut self,
        now: Instant,
        name: &Name,
        op: NsOp,
    ) -> Result<(), NodeError> {
        let Some(rec) = self.names.get(name) else {
            return Ok(());
        };
        let Some(&server_ip) = self.config.nbns.first() else {
            return Err(NodeError::InvalidConfig("no NBNS configured".into()));
        };
        let group = rec.group;
        let (flags, ttl) = match op {
            NsOp::Register if !group && self.is_multihomed() => {
                // MS-NBTE §3.1.4.1: multihomed, unique, with an NBNS.
                (FLAGS_MULTIHOMED_REGISTRATION, self.config.registration_ttl)
            }
            NsOp::Register => (FLAGS_REGISTRATION_UCAST, self.config.registration_ttl),
            NsOp::Overwrite => (FLAGS_OVERWRITE, self.config.registration_ttl),
            NsOp::Refresh => (FLAGS_REFRESH, self.config.registration_ttl),
            NsOp::Release => (FLAGS_RELEASE_UCAST, 0),
        };
        let trn = self.alloc_trn();
        let p = request_with_record(
            trn,
            flags,
            name,
            ttl,
            self.nb_flags(group),
            self.announced_addr(),
        );
        let bytes = self
            .encode(&p)
            .ok_or(NodeError::Encode("NBNS request".into()))?;
        self.ns_transmit(server_ip, op, bytes.clone());
        let job = NsJob {
            op,
            trn,
            server: 0,
            packet: bytes,
            sends_left: self.config.ucast_retry_count - 1,
            deadline: now + self.config.ucast_retry_interval,
            limit: now + self.config.wack_limit,
        };
        if let Some(rec) = self.names.get_mut(name) {
            rec.ns = Some(job);
        }
        Ok(())
    }

    fn ns_transmit(&mut self, server: Ipv4Addr, op: NsOp, bytes: Vec<u8>) {
        match op {
            NsOp::Register | NsOp::Overwrite => {
                self.stats.nbns_registration_requests_sent += 1;
                let opcode = NbnsHeader::new_checked(&bytes[..]).map(|h| h.opcode());
                if opcode == Ok(Opcode::MultiHomedRegistration) {
                    self.stats.multihomed_registrations_sent += 1;
                }
            }
            NsOp::Refresh => self.stats.refreshes_sent += 1,
            NsOp::Release => self.stats.nbns_releases_sent += 1,
        }
        self.push_transmit(Transmit {
            to: SocketAddrV4::new(server, self.config.nbns_port),
            service: Service::Name,
            bytes,
            broadcast: false,
            reply_to: None,
            app_reply: false,
        });
    }

    /// A B-node style broadcast registration of a name already in the table (H-node
    /// fallback when no NBNS answers).
    fn start_broadcast_registration(&mut self, now: Instant, name: &Name) {
        let Some(rec) = self.names.get(name) else {
            return;
        };
        let group = rec.group;
        let trn = self.alloc_trn();
        let p = request_with_record(
            trn,
            FLAGS_REGISTRATION,
            name,
            self.config.registration_ttl,
            self.nb_flags(group),
            self.announced_addr(),
        );
        let Some(bytes) = self.encode(&p) else {
            self.mark_conflict_by(name, None, ConflictReason::NbnsUnavailable);
            return;
        };
        self.broadcast_name_packet(bytes.clone());
        self.stats.registration_requests_sent += 1;
        let job = Job {
            trn,
            packet: bytes,
            sends_left: self.config.bcast_retry_count - 1,
            deadline: now + self.config.bcast_retry_interval,
        };
        if let Some(rec) = self.names.get_mut(name) {
            rec.state = NameState::Registering;
            rec.ns = None;
            rec.job = Some(job);
        }
    }

    /// The name is ours: active, refresh scheduled, [`Event::NameRegistered`] when it
    /// was still registering.
    fn activate(&mut self, now: Instant, name: &Name, ttl: Option<u32>) {
        let delay = match ttl {
            Some(t) => self.refresh_delay(t),
            None => Some(self.config.refresh_min),
        };
        let Some(rec) = self.names.get_mut(name) else {
            return;
        };
        rec.ns = None;
        rec.job = None;
        rec.refresh_at = delay.map(|d| now + d);
        if rec.state == NameState::Registering {
            rec.state = NameState::Active;
            let group = rec.group;
            self.stats.names_registered += 1;
            self.push_event(Event::NameRegistered {
                name: name.clone(),
                group,
            });
        }
    }

    fn remove_name(&mut self, name: &Name) {
        if self.names.remove(name).is_some() {
            self.push_event(Event::NameReleased { name: name.clone() });
        }
    }

    // ---------------------------------------------------------------- timers

    /// Retransmissions, NBNS failover and refreshes that are due.
    pub(crate) fn ns_timeouts(&mut self, now: Instant) {
        if !self.config.uses_nbns() {
            return;
        }
        let due: Vec<Name> = self
            .names
            .iter()
            .filter(|r| match &r.ns {
                Some(j) => j.deadline <= now,
                None => r.refresh_at.is_some_and(|t| t <= now),
            })
            .map(|r| r.name.clone())
            .collect();
        let interval = self.config.ucast_retry_interval;
        let count = self.config.ucast_retry_count;
        for name in due {
            let Some(rec) = self.names.get_mut(&name) else {
                continue;
            };
            let Some(job) = rec.ns.as_mut() else {
                // A refresh is due (RFC 1002 §5.1.2.6).
                rec.refresh_at = None;
                if rec.state == NameState::Active
                    && self.start_ns(now, &name, NsOp::Refresh).is_err()
                {
                    if let Some(rec) = self.names.get_mut(&name) {
                        rec.refresh_at = Some(now + self.config.refresh_min);
                    }
                }
                continue;
            };
            let op = job.op;
            if job.sends_left > 0 {
                job.sends_left -= 1;
                job.deadline = now + interval;
                let bytes = job.packet.clone();
                if let Some(&ip) = self.config.nbns.get(job.server) {
                    self.ns_transmit(ip, op, bytes);
                }
                continue;
            }
            if job.server + 1 < self.config.nbns.len() {
                // This NBNS is silent: the next one (MS-NBTE §3.1.4.2).
                job.server += 1;
                job.sends_left = count - 1;
                job.deadline = now + interval;
                job.limit = now + self.config.wack_limit;
                let bytes = job.packet.clone();
                let ip = self.config.nbns[job.server];
                self.stats.nbns_failovers += 1;
                self.ns_transmit(ip, op, bytes);
                continue;
            }
            rec.ns = None;
            self.stats.nbns_unreachable += 1;
            self.ns_silent(now, &name, op);
        }
    }

    /// No NBNS answered `op` for `name`.
    fn ns_silent(&mut self, now: Instant, name: &Name, op: NsOp) {
        match op {
            NsOp::Register | NsOp::Overwrite => match self.config.node_type {
                NodeType::M => {
                    // The broadcast registration already succeeded (RFC 1002 §5.1.3.1
                    // would fail here; real M/H-nodes keep the name).
                    self.stats.broadcast_fallbacks += 1;
                    self.activate(now, name, None);
                }
                NodeType::H | NodeType::B => {
                    self.stats.broadcast_fallbacks += 1;
                    self.start_broadcast_registration(now, name);
                }
                NodeType::P => self.mark_conflict_by(name, None, ConflictReason::NbnsUnavailable),
            },
            NsOp::Refresh => {
                self.stats.refreshes_unanswered += 1;
                if let Some(rec) = self.names.get_mut(name) {
                    rec.refresh_at = Some(now + self.config.refresh_min);
                }
            }
            NsOp::Release => {
                if self.config.node_type == NodeType::P {
                    self.remove_name(name);
                } else {
                    self.release_by_broadcast(now, name);
                }
            }
        }
    }

    fn release_by_broadcast(&mut self, now: Instant, name: &Name) {
        if self.broadcast_release(now, name).is_err() {
            self.remove_name(name);
        }
    }

    // ---------------------------------------------------------------- input

    /// A response that may answer one of our NBNS exchanges. True when handled
    /// (including dropped); false to let the B-node code look at it.
    pub(crate) fn ns_response(&mut self, now: Instant, inc: Incoming<'_>, p: &Packet) -> bool {
        let job = self.names.by_ns_trn(p.id).and_then(|r| {
            r.ns.as_ref()
                .map(|j| (r.name.clone(), r.group, j.op, j.server))
        });
        let Some((name, group, op, server)) = job else {
            if p.opcode() == Opcode::Wack {
                if !self.query_wack(now, inc, p) {
                    self.drop_packet(DropReason::UnsolicitedResponse, inc.from);
                }
                return true;
            }
            return false;
        };
        if self.config.nbns.get(server) != Some(inc.from.ip()) {
            if matches!(
                p.opcode(),
                Opcode::Wack | Opcode::Refresh(_) | Opcode::Release
            ) {
                self.drop_packet(DropReason::AnswerWrongSource, inc.from);
                return true;
            }
            return false;
        }
        let answer = p.answers.first();
        if answer.is_some_and(|a| a.name != name) {
            self.drop_packet(DropReason::AnswerWrongName, inc.from);
            return true;
        }
        let rcode = p.rcode();
        match (p.opcode(), op) {
            (Opcode::Wack, _) => {
                let Some(a) = answer else {
                    self.drop_packet(DropReason::MalformedNamePacket, inc.from);
                    return true;
                };
                self.stats.wacks_received += 1;
                let wait = Duration::from_secs(u64::from(a.ttl).max(1)).min(MAX_DURATION);
                if let Some(j) = self.names.get_mut(&name).and_then(|r| r.ns.as_mut()) {
                    j.deadline = (now + wait).min(j.limit).max(j.deadline);
                }
            }
            (
                Opcode::Registration | Opcode::MultiHomedRegistration | Opcode::Refresh(_),
                NsOp::Register | NsOp::Overwrite,
            ) => {
                if rcode != 0 {
                    self.stats.nbns_registrations_refused += 1;
                    self.stats.registrations_refused += 1;
                    self.mark_conflict(&name, inc.from, ConflictReason::RegistrationRefused);
                    return true;
                }
                let owner = match answer.map(|a| &a.rdata) {
                    Some(RData::Nb(list)) => list.first().map(|a| a.ip),
                    _ => None,
                };
                let challenge = op == NsOp::Register
                    && !group
                    && p.flags & FLAG_RA == 0
                    && owner.is_some_and(|ip| {
                        ip != self.announced_addr()
                            && ip != self.addr()
                            && !ip.is_unspecified()
                            && !self.config.multihomed.contains(&ip)
                    });
                if let (true, Some(owner)) = (challenge, owner) {
                    self.start_challenge(now, &name, owner);
                    return true;
                }
                self.stats.nbns_registrations_accepted += 1;
                let ttl = answer.map_or(self.config.registration_ttl, |a| a.ttl);
                self.activate(now, &name, Some(ttl));
            }
            (Opcode::Registration | Opcode::Refresh(_), NsOp::Refresh) => {
                if rcode != 0 {
                    self.stats.refreshes_refused += 1;
                    self.mark_conflict(&name, inc.from, ConflictReason::RefreshRefused);
                    return true;
                }
                self.stats.refreshes_succeeded += 1;
                let ttl = answer.map_or(self.config.registration_ttl, |a| a.ttl);
                let delay = self.refresh_delay(ttl);
                if let Some(rec) = self.names.get_mut(&name) {
                    rec.ns = None;
                    rec.refresh_at = delay.map(|d| now + d);
                }
            }
            (Opcode::Release, NsOp::Release) => {
                if let Some(rec) = self.names.get_mut(&name) {
                    rec.ns = None;
                }
                let broadcast = match self.config.node_type {
                    NodeType::M => true,
                    NodeType::H => rcode != 0,
                    NodeType::P | NodeType::B => false,
                };
                if broadcast {
                    self.release_by_broadcast(now, &name);
                } else {
                    self.remove_name(&name);
                }
            }
            _ => {
                self.drop_packet(DropReason::UnsolicitedResponse, inc.from);
            }
        }
        true
    }

    /// END-NODE CHALLENGE REGISTRATION RESPONSE: ask the presumed owner (RFC 1002
    /// §5.1.2.1).
    fn start_challenge(&mut self, now: Instant, name: &Name, owner: Ipv4Addr) {
        self.stats.challenges_received += 1;
        if let Some(rec) = self.names.get_mut(name) {
            rec.ns = None;
        }
        let port = self.config.name_port;
        let waiter = Waiter::Challenge(name.clone());
        if self
            .query_plan(now, name.clone(), Some(owner), port, Vec::new(), waiter)
            .is_err()
        {
            let by = SocketAddrV4::new(owner, port);
            self.mark_conflict(name, by, ConflictReason::ChallengeLost);
        }
    }

    /// The challenged owner answered (it keeps the name) or not (we claim it with a
    /// NAME OVERWRITE REQUEST to the NBNS).
    pub(crate) fn challenge_done(
        &mut self,
        name: &Name,
        result: &Result<Vec<NameAddress>, LookupError>,
    ) {
        if self.names.get(name).map(|r| r.state) != Some(NameState::Registering) {
            return;
        }
        match result {
            Ok(addrs) => {
                let by = addrs
                    .first()
                    .map(|a| SocketAddrV4::new(a.addr, self.config.name_port));
                self.mark_conflict_by(name, by, ConflictReason::ChallengeLost);
            }
            Err(LookupError::Cancelled) => {}
            Err(_) => {
                self.stats.challenges_won += 1;
                let now = self.now;
                if self.start_ns(now, name, NsOp::Overwrite).is_err() {
                    self.mark_conflict_by(name, None, ConflictReason::NbnsUnavailable);
                }
            }
        }
    }

    /// A NAME RELEASE REQUEST unicast by our NBNS for one of our names: the NBNS
    /// wants it gone (RFC 1002 §5.1.2.5). True when it removed a name.
    pub(crate) fn release_from_nbns(&mut self, inc: Incoming<'_>, name: &Name) -> bool {
        if inc.broadcast || !self.is_nbns(*inc.from.ip()) || self.names.get(name).is_none() {
            return false;
        }
        self.stats.names_released_by_nbns += 1;
        self.remove_name(name);
        true
    }

    // ---------------------------------------------------------------- resolution

    /// Where to ask, in order (`None` = broadcast).
    fn resolution_plan(&self) -> Vec<Option<Ipv4Addr>> {
        if !self.config.uses_nbns() {
            return vec![None];
        }
        let servers = self.config.nbns.iter().map(|ip| Some(*ip));
        match self.config.node_type {
            NodeType::P => servers.collect(),
            NodeType::M => std::iter::once(None).chain(servers).collect(),
            NodeType::H => servers.chain(std::iter::once(None)).collect(),
            NodeType::B => vec![None],
        }
    }

    /// Resolve `name` in the node type's order (the cache was already consulted).
    pub(crate) fn resolve(
        &mut self,
        now: Instant,
        name: Name,
        waiter: Waiter,
    ) -> Result<(), NodeError> {
        let mut plan = self.resolution_plan();
        let first = if plan.is_empty() {
            None
        } else {
            plan.remove(0)
        };
        let port = first.map_or(self.config.name_port, |_| self.config.nbns_port);
        self.query_plan(now, name, first, port, plan, waiter)
    }

    /// A query step ended without an answer (`negative`: the NBNS said "not found"):
    /// start the next step of its plan (`None`), or give it back to be failed.
    pub(crate) fn next_step(
        &mut self,
        now: Instant,
        t: Transaction,
        negative: bool,
    ) -> Option<Transaction> {
        let mut rest = match &t.kind {
            Kind::Query { rest, .. } => rest.clone(),
            Kind::Status { .. } => return Some(t),
        };
        let from_nbns = t.to.is_some_and(|ip| self.is_nbns(ip));
        if negative {
            // The NBNS answered: no other NBNS is consulted (MS-NBTE §3.1.4.2).
            rest.retain(Option::is_none);
        }
        if rest.is_empty() {
            if from_nbns && !negative {
                self.stats.nbns_unreachable += 1;
            }
            return Some(t);
        }
        let next = rest.remove(0);
        match (from_nbns, next) {
            (true, Some(_)) => self.stats.nbns_failovers += 1,
            (true, None) => {
                if !negative {
                    self.stats.nbns_unreachable += 1;
                }
                self.stats.broadcast_fallbacks += 1;
            }
            _ => {}
        }
        let Kind::Query { name, waiters, .. } = t.kind else {
            return None;
        };
        let port = next.map_or(self.config.name_port, |_| self.config.nbns_port);
        let first = waiters.first().cloned()?;
        match self.query_plan(now, name.clone(), next, port, rest, first) {
            Ok(()) => {
                // Attach the other waiters to the query just started (or joined).
                let others: Vec<Waiter> = waiters.into_iter().skip(1).collect();
                let trn = self.transactions.find_query(&name, next);
                match trn.and_then(|trn| self.transactions.get_mut(trn)) {
                    Some(Transaction {
                        kind: Kind::Query { waiters, .. },
                        ..
                    }) => waiters.extend(others),
                    _ => self.complete_waiters(&name, others, Err(LookupError::NoResponse)),
                }
            }
            Err(_) => self.complete_waiters(&name, waiters, Err(LookupError::NoResponse)),
        }
        None
    }

    /// A WACK for one of our unicast queries (id, source and name match): wait its TTL
    /// longer, never past `wack_limit` after the first WACK. False when it matches none.
    pub(crate) fn query_wack(&mut self, now: Instant, inc: Incoming<'_>, p: &Packet) -> bool {
        let limit = self.config.wack_limit;
        let Some(t) = self.transactions.get_mut(p.id) else {
            return false;
        };
        if t.to != Some(*inc.from.ip()) {
            return false;
        }
        let Kind::Query {
            name,
            answered: None,
            wack_cap,
            ..
        } = &mut t.kind
        else {
            return false;
        };
        let Some(a) = p.answers.first().filter(|a| a.name == *name) else {
            return false;
        };
        let cap = *wack_cap.get_or_insert_with(|| now.checked_add(limit).unwrap_or(now));
        let wait = Duration::from_secs(u64::from(a.ttl).max(1)).min(MAX_DURATION);
        let until = now.checked_add(wait).unwrap_or(now).min(cap);
        t.deadline = t.deadline.max(until);
        self.stats.wacks_received += 1;
        true
    }

    /// A REDIRECT NAME QUERY RESPONSE (RFC 1002 §4.2.15) to one of our unicast queries:
    /// ask the NBNS it names instead, or (hop limit, loop, bad address) go on as if the
    /// NBNS had been silent. False when `p` is not a redirect for a query of ours.
    pub(crate) fn query_redirect(&mut self, now: Instant, inc: Incoming<'_>, p: &Packet) -> bool {
        let Some(target) = redirect_target(p) else {
            return false;
        };
        let responder = *inc.from.ip();
        let Some(t) = self.transactions.get_mut(p.id) else {
            return false;
        };
        let Kind::Query {
            answered: None,
            redirected_by,
            ..
        } = &t.kind
        else {
            return false;
        };
        if t.to != Some(responder) {
            return false;
        }
        let ok = redirected_by.len() < MAX_REDIRECTS
            && target != responder
            && !redirected_by.contains(&target)
            && !(target.is_unspecified() || target.is_broadcast() || target.is_multicast())
            && target != self.addr()
            && target != self.announced_addr();
        let Some(t) = self.transactions.remove(p.id) else {
            return true;
        };
        if !ok {
            self.stats.nbns_redirects_refused += 1;
            if let Some(t) = self.next_step(now, t, false) {
                self.fail_transaction(t, LookupError::NoResponse);
            }
            return true;
        }
        self.stats.nbns_redirects_followed += 1;
        let Kind::Query {
            name,
            waiters,
            rest,
            mut redirected_by,
            ..
        } = t.kind
        else {
            return true;
        };
        redirected_by.push(responder);
        let Some(first) = waiters.first().cloned() else {
            return true;
        };
        let port = self.config.nbns_port;
        if self
            .query_plan(now, name.clone(), Some(target), port, rest, first)
            .is_err()
        {
            self.complete_waiters(&name, waiters, Err(LookupError::NoResponse));
            return true;
        }
        let trn = self.transactions.find_query(&name, Some(target));
        match trn.and_then(|trn| self.transactions.get_mut(trn)) {
            Some(Transaction {
                kind:
                    Kind::Query {
                        waiters: w,
                        redirected_by: r,
                        ..
                    },
                ..
            }) => {
                w.extend(waiters.into_iter().skip(1));
                *r = redirected_by;
            }
            _ => self.complete_waiters(&name, waiters, Err(LookupError::NoResponse)),
        }
        true
    }
}

/// The NBNS a REDIRECT NAME QUERY RESPONSE names: a positive (RCODE 0) query response
/// without answers, an NS record in AUTHORITY and an A record (NSD_IP_ADDR, 4 bytes)
/// in ADDITIONAL.
fn redirect_target(p: &Packet) -> Option<Ipv4Addr> {
    if p.opcode() != Opcode::Query || p.rcode() != 0 || !p.answers.is_empty() {
        return None;
    }
    p.authority.iter().find(|r| r.rr_type == TYPE_NS)?;
    p.additional
        .iter()
        .filter(|r| r.rr_type == TYPE_A)
        .find_map(|r| match &r.rdata {
            RData::Raw(b) if b.len() == 4 => Some(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
            _ => None,
        })
}
