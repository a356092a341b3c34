//! The name-service subset of a B-node (RFC 1002 §4.2, §5.1.1; RFC 1001 §15; DIGEST §4):
//! broadcast registration, defence, query answers, node status, conflict demands,
//! release, and resolution of other names by broadcast or unicast query.

use crate::cache::{CacheDelta, Cached};
use crate::config::Service;
use crate::error::{check_scope, LookupError, NodeError, SendError};
use crate::event::{
    ConflictReason, DropReason, Event, NameAddress, NodeStatusReply, RequestId, StatusName,
};
use crate::name_table::NsOp;
use crate::name_table::{Job, NameRecord, NameState};
use crate::node::{Incoming, LookupTarget, Node, Transmit};
use crate::transaction::{Answered, Kind, Transaction, Waiter};
use nbdgm_wire::datagram::NodeType;
use nbdgm_wire::nbns::{
    NbAddress, NodeName, NodeStatus, Opcode, Packet, Question, RData, Rcode, Record, Statistics,
    CLASS_IN, FLAG_AA, FLAG_B, FLAG_RA, FLAG_RD, FLAG_RESPONSE, FLAG_TC, NAME_ACT, NB_GROUP,
    TYPE_NB, TYPE_NBSTAT, TYPE_NULL,
};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

pub(crate) const OP_REGISTRATION: u16 = Opcode::Registration.to_flags();
pub(crate) const OP_RELEASE: u16 = Opcode::Release.to_flags();
/// NAME REGISTRATION REQUEST, broadcast (RFC 1002 §4.2.2).
pub const FLAGS_REGISTRATION: u16 = OP_REGISTRATION | FLAG_RD | FLAG_B; // 0x2910
/// NAME RELEASE REQUEST, broadcast (RFC 1002 §4.2.9).
pub const FLAGS_RELEASE: u16 = OP_RELEASE | FLAG_B; // 0x3010
/// NAME QUERY REQUEST, broadcast / unicast (RFC 1002 §4.2.12).
pub const FLAGS_QUERY_BCAST: u16 = FLAG_RD | FLAG_B; // 0x0110
pub const FLAGS_QUERY_UCAST: u16 = FLAG_RD; // 0x0100
/// POSITIVE NAME QUERY RESPONSE (RFC 1002 §4.2.13; Samba's word).
pub const FLAGS_POSITIVE_QUERY: u16 = FLAG_RESPONSE | FLAG_AA | FLAG_RD | FLAG_RA; // 0x8580
/// NEGATIVE NAME QUERY RESPONSE, NAM_ERR (RFC 1002 §4.2.14).
pub const FLAGS_NEGATIVE_QUERY: u16 = FLAGS_POSITIVE_QUERY | Rcode::NamErr.to_flags(); // 0x8583
/// NEGATIVE NAME REGISTRATION RESPONSE, ACT_ERR (RFC 1002 §4.2.6).
pub const FLAGS_DEFEND: u16 =
    FLAG_RESPONSE | OP_REGISTRATION | FLAG_AA | FLAG_RD | FLAG_RA | Rcode::ActErr.to_flags(); // 0xAD86
/// NAME CONFLICT DEMAND, CFT_ERR (RFC 1002 §4.2.8).
pub const FLAGS_CONFLICT_DEMAND: u16 =
    FLAG_RESPONSE | OP_REGISTRATION | FLAG_AA | FLAG_RD | FLAG_RA | Rcode::CftErr.to_flags(); // 0xAD87
/// NODE STATUS RESPONSE (RFC 1002 §4.2.18).
pub const FLAGS_NODE_STATUS: u16 = FLAG_RESPONSE | FLAG_AA; // 0x8400

pub(crate) fn question(name: &Name, qtype: u16) -> Question {
    Question {
        name: name.clone(),
        qtype,
        qclass: CLASS_IN,
    }
}

pub(crate) fn nb_record(name: &Name, ttl: u32, flags: u16, ip: Ipv4Addr) -> Record {
    Record {
        name: name.clone(),
        rr_type: TYPE_NB,
        rr_class: CLASS_IN,
        ttl,
        rdata: RData::Nb(vec![NbAddress { flags, ip }]),
    }
}

pub(crate) fn packet(id: u16, flags: u16) -> Packet {
    Packet {
        id,
        flags,
        questions: Vec::new(),
        answers: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
        trailing: Vec::new(),
    }
}

/// A registration (or release) request: question + additional NB record (RR_NAME as
/// the pointer C0 0C, which the codec emits for a record named like the question).
pub(crate) fn request_with_record(
    id: u16,
    flags: u16,
    name: &Name,
    ttl: u32,
    nb: u16,
    ip: Ipv4Addr,
) -> Packet {
    let mut p = packet(id, flags);
    p.questions.push(question(name, TYPE_NB));
    p.additional.push(nb_record(name, ttl, nb, ip));
    p
}

impl Node {
    pub(crate) fn encode(&mut self, p: &Packet) -> Option<Vec<u8>> {
        match p.to_bytes() {
            Ok(b) => Some(b),
            Err(_) => {
                self.stats.encode_errors += 1;
                None
            }
        }
    }

    pub(crate) fn broadcast_name_packet(&mut self, bytes: Vec<u8>) {
        let to = self.broadcast_to(Service::Name);
        self.push_transmit(Transmit {
            to,
            service: Service::Name,
            bytes,
            broadcast: true,
            reply_to: None,
            app_reply: false,
        });
    }

    pub(crate) fn send_name_packet(&mut self, to: Option<Ipv4Addr>, bytes: Vec<u8>) {
        let port = self.config.name_port;
        self.send_name_packet_port(to, port, bytes)
    }

    pub(crate) fn send_name_packet_port(
        &mut self,
        to: Option<Ipv4Addr>,
        port: u16,
        bytes: Vec<u8>,
    ) {
        match to {
            None => self.broadcast_name_packet(bytes),
            Some(ip) => {
                let to = SocketAddrV4::new(ip, port);
                self.push_transmit(Transmit {
                    to,
                    service: Service::Name,
                    bytes,
                    broadcast: false,
                    reply_to: None,
                    app_reply: false,
                });
            }
        }
    }

    pub(crate) fn scoped(&self, name: &Name) -> Result<Name, NodeError> {
        check_scope(name, &self.config.scope)
    }

    // ---------------------------------------------------------------- commands

    /// Register `name` by broadcast (RFC 1002 §5.1.1.1). The result comes as
    /// [`Event::NameRegistered`] or [`Event::NameConflict`].
    pub fn register(&mut self, now: Instant, name: Name, group: bool) -> Result<(), NodeError> {
        self.touch(now);
        let name = self.scoped(&name)?;
        if name.raw()[0] == b'*' {
            return Err(NodeError::InvalidName {
                name: name.to_string(),
                reason: "names starting with '*' cannot be registered",
            });
        }
        let replacing = match self.names.get(&name) {
            Some(r) if r.state == NameState::Conflict => true,
            Some(_) => return Err(NodeError::NameExists(name.to_string())),
            None => false,
        };
        if !replacing && self.names.len() >= self.config.max_names {
            self.stats.names_refused += 1;
            return Err(NodeError::TooManyNames(self.config.max_names));
        }
        if self.config.uses_nbns() && self.config.node_type != NodeType::M {
            // P and H: the NBNS first (RFC 1002 §5.1.2.1; MS-NBTE §3.1.4.1).
            self.stats.registrations_started += 1;
            self.names.insert(NameRecord {
                name: name.clone(),
                group,
                state: NameState::Registering,
                job: None,
                ns: None,
                refresh_at: None,
            });
            if let Err(e) = self.start_ns(now, &name, NsOp::Register) {
                self.names.remove(&name);
                return Err(e);
            }
            return Ok(());
        }
        let trn = self.alloc_trn();
        let p = request_with_record(
            trn,
            FLAGS_REGISTRATION,
            &name,
            self.config.registration_ttl,
            self.nb_flags(group),
            self.announced_addr(),
        );
        let bytes = self
            .encode(&p)
            .ok_or(NodeError::Encode("registration".into()))?;
        self.broadcast_name_packet(bytes.clone());
        self.stats.registrations_started += 1;
        self.stats.registration_requests_sent += 1;
        self.names.insert(NameRecord {
            name,
            group,
            state: NameState::Registering,
            job: Some(Job {
                trn,
                packet: bytes,
                sends_left: self.config.bcast_retry_count - 1,
                deadline: now + self.config.bcast_retry_interval,
            }),
            ns: None,
            refresh_at: None,
        });
        Ok(())
    }

    /// Release `name`: broadcast NAME RELEASE REQUEST `bcast_retry_count` times
    /// (RFC 1002 §5.1.1.4), then [`Event::NameReleased`]. A name in conflict is removed
    /// at once without a release (it is not ours to release).
    pub fn release(&mut self, now: Instant, name: &Name) -> Result<(), NodeError> {
        self.touch(now);
        let name = self.scoped(name)?;
        let Some(rec) = self.names.get(&name) else {
            return Err(NodeError::NameNotFound(name.to_string()));
        };
        match rec.state {
            NameState::Releasing => Ok(()),
            NameState::Conflict => {
                self.names.remove(&name);
                self.push_event(Event::NameReleased { name });
                Ok(())
            }
            NameState::Registering | NameState::Active if self.config.uses_nbns() => {
                // P/M/H: the NBNS first (RFC 1002 §5.1.2.4, §5.1.3.4; MS-NBTE §3.1.7).
                if let Some(rec) = self.names.get_mut(&name) {
                    rec.state = NameState::Releasing;
                    rec.job = None;
                    rec.refresh_at = None;
                }
                self.start_ns(now, &name, NsOp::Release)
            }
            NameState::Registering | NameState::Active => self.broadcast_release(now, &name),
        }
    }

    /// The B-node release (RFC 1002 §5.1.1.4): broadcast `bcast_retry_count` times.
    pub(crate) fn broadcast_release(&mut self, now: Instant, name: &Name) -> Result<(), NodeError> {
        let name = name.clone();
        let Some(rec) = self.names.get(&name) else {
            return Ok(());
        };
        let group = rec.group;
        let trn = self.alloc_trn();
        let p = request_with_record(
            trn,
            FLAGS_RELEASE,
            &name,
            0,
            self.nb_flags(group),
            self.announced_addr(),
        );
        let bytes = self.encode(&p).ok_or(NodeError::Encode("release".into()))?;
        self.broadcast_name_packet(bytes.clone());
        self.stats.releases_sent += 1;
        let left = self.config.bcast_retry_count - 1;
        if left == 0 {
            self.names.remove(&name);
            self.push_event(Event::NameReleased { name });
            return Ok(());
        }
        let deadline = now + self.config.bcast_retry_interval;
        if let Some(rec) = self.names.get_mut(&name) {
            rec.state = NameState::Releasing;
            rec.job = Some(Job {
                trn,
                packet: bytes,
                sends_left: left,
                deadline,
            });
        }
        Ok(())
    }

    /// Release every name and cancel pending lookups, sends and status requests.
    /// Keep driving the node until [`Node::is_shutdown_complete`].
    pub fn shutdown(&mut self, now: Instant) {
        self.touch(now);
        let names: Vec<Name> = self.names.iter().map(|r| r.name.clone()).collect();
        for n in names {
            let _ = self.release(now, &n);
        }
        for t in self.transactions.drain() {
            self.fail_transaction(t, LookupError::Cancelled);
        }
        self.cancel_nbdd_queries();
    }

    /// Resolve `name` (RFC 1002 §5.1.1.2 broadcast query, or a unicast query).
    /// The answer comes as [`Event::LookupDone`].
    pub fn lookup(
        &mut self,
        now: Instant,
        name: Name,
        target: LookupTarget,
    ) -> Result<RequestId, NodeError> {
        self.touch(now);
        let name = self.scoped(&name)?;
        let id = self.next_request_id();
        self.stats.lookups_started += 1;
        match target {
            LookupTarget::Broadcast => {
                if let Some(result) = self.resolve_locally(now, &name) {
                    self.finish_lookup(id, name, result);
                    return Ok(id);
                }
                self.resolve(now, name, Waiter::Lookup(id))?;
            }
            LookupTarget::Unicast(ip) => {
                let port = self.ns_port_for(ip);
                self.query_plan(now, name, Some(ip), port, Vec::new(), Waiter::Lookup(id))?;
            }
        }
        Ok(id)
    }

    /// Our own active unique name, or the cache. `None`: ask the network.
    pub(crate) fn resolve_locally(
        &mut self,
        now: Instant,
        name: &Name,
    ) -> Option<Result<Vec<NameAddress>, LookupError>> {
        if let Some(r) = self.names.active(name) {
            if !r.group {
                return Some(Ok(vec![NameAddress {
                    addr: self.addr(),
                    group: false,
                    ont: self.config.node_type,
                }]));
            }
        }
        let mut delta = CacheDelta::default();
        let hit = self.cache.get(name, now, &mut delta);
        self.account_cache(delta);
        match hit {
            Cached::Hit(a) => {
                self.stats.cache_hits += 1;
                Some(Ok(a))
            }
            Cached::Negative => {
                self.stats.cache_hits += 1;
                Some(Err(LookupError::NotFound))
            }
            Cached::Miss => {
                self.stats.cache_misses += 1;
                None
            }
        }
    }

    /// Start (or join) a query for `name` at `to`, continuing with `rest` when it
    /// gets no answer.
    pub(crate) fn query_plan(
        &mut self,
        now: Instant,
        name: Name,
        to: Option<Ipv4Addr>,
        port: u16,
        rest: Vec<Option<Ipv4Addr>>,
        waiter: Waiter,
    ) -> Result<(), NodeError> {
        if to.is_none() {
            if let Some(t) = self.transactions.open_broadcast_query(&name) {
                if let Kind::Query { waiters, .. } = &mut t.kind {
                    waiters.push(waiter);
                    return Ok(());
                }
            }
        }
        if self.transactions.len() >= self.config.max_transactions {
            self.stats.transactions_refused += 1;
            return Err(NodeError::TooManyTransactions(self.config.max_transactions));
        }
        let trn = self.alloc_trn();
        let flags = if to.is_none() {
            FLAGS_QUERY_BCAST
        } else {
            FLAGS_QUERY_UCAST
        };
        let mut p = packet(trn, flags);
        p.questions.push(question(&name, TYPE_NB));
        let bytes = self.encode(&p).ok_or(NodeError::Encode("query".into()))?;
        let (count, interval) = self.retry(to);
        self.send_name_packet_port(to, port, bytes.clone());
        self.stats.queries_sent += 1;
        if to.is_some_and(|ip| self.is_nbns(ip)) {
            self.stats.nbns_queries_sent += 1;
        }
        self.transactions.push(Transaction {
            trn,
            to,
            port,
            packet: bytes,
            sends_left: count - 1,
            interval,
            deadline: now + interval,
            kind: Kind::Query {
                name,
                waiters: vec![waiter],
                answered: None,
                rest,
                redirected_by: Vec::new(),
                wack_cap: None,
            },
        });
        Ok(())
    }

    fn retry(&self, to: Option<Ipv4Addr>) -> (u32, std::time::Duration) {
        match to {
            None => (
                self.config.bcast_retry_count,
                self.config.bcast_retry_interval,
            ),
            Some(_) => (
                self.config.ucast_retry_count,
                self.config.ucast_retry_interval,
            ),
        }
    }

    /// Ask `addr` for its name table (RFC 1002 §4.2.17). The answer comes as
    /// [`Event::StatusDone`].
    pub fn node_status(
        &mut self,
        now: Instant,
        addr: Ipv4Addr,
        name: Option<Name>,
    ) -> Result<RequestId, NodeError> {
        self.touch(now);
        let name = match name {
            Some(n) => self.scoped(&n)?,
            None => self.scoped(&Name::wildcard())?,
        };
        if self.transactions.len() >= self.config.max_transactions {
            self.stats.transactions_refused += 1;
            return Err(NodeError::TooManyTransactions(self.config.max_transactions));
        }
        let req = self.next_request_id();
        let trn = self.alloc_trn();
        let mut p = packet(trn, 0);
        p.questions.push(question(&name, TYPE_NBSTAT));
        let bytes = self
            .encode(&p)
            .ok_or(NodeError::Encode("node status".into()))?;
        let (count, interval) = self.retry(Some(addr));
        self.send_name_packet(Some(addr), bytes.clone());
        self.stats.status_requests_sent += 1;
        self.transactions.push(Transaction {
            trn,
            to: Some(addr),
            port: self.config.name_port,
            packet: bytes,
            sends_left: count - 1,
            interval,
            deadline: now + interval,
            kind: Kind::Status { req },
        });
        Ok(req)
    }

    // ---------------------------------------------------------------- timers

    pub(crate) fn name_timeouts(&mut self, now: Instant) {
        let due: Vec<Name> = self
            .names
            .iter()
            .filter(|r| r.job.as_ref().is_some_and(|j| j.deadline <= now))
            .map(|r| r.name.clone())
            .collect();
        let interval = self.config.bcast_retry_interval;
        for name in due {
            let Some(rec) = self.names.get_mut(&name) else {
                continue;
            };
            let Some(job) = rec.job.as_mut() else {
                continue;
            };
            match rec.state {
                NameState::Registering => {
                    if job.sends_left > 0 {
                        job.sends_left -= 1;
                        job.deadline = now + interval;
                        let bytes = job.packet.clone();
                        self.broadcast_name_packet(bytes);
                        self.stats.registration_requests_sent += 1;
                    } else if self.config.node_type == NodeType::M && self.config.uses_nbns() {
                        // M-node: nobody objected on the subnet; now the NBNS
                        // (RFC 1002 §5.1.3.1).
                        rec.job = None;
                        if self.start_ns(now, &name, NsOp::Register).is_err() {
                            self.mark_conflict_by(&name, None, ConflictReason::NbnsUnavailable);
                        }
                    } else {
                        rec.job = None;
                        rec.state = NameState::Active;
                        let group = rec.group;
                        if self.config.uses_nbns() {
                            // H-node after the broadcast fallback: try the NBNS again later.
                            rec.refresh_at = Some(now + self.config.refresh_min);
                        }
                        self.stats.names_registered += 1;
                        self.push_event(Event::NameRegistered { name, group });
                    }
                }
                NameState::Releasing => {
                    job.sends_left = job.sends_left.saturating_sub(1);
                    job.deadline = now + interval;
                    let last = job.sends_left == 0;
                    let bytes = job.packet.clone();
                    self.broadcast_name_packet(bytes);
                    self.stats.releases_sent += 1;
                    if last {
                        self.names.remove(&name);
                        self.push_event(Event::NameReleased { name });
                    }
                }
                NameState::Active | NameState::Conflict => rec.job = None,
            }
        }
    }

    pub(crate) fn transaction_timeouts(&mut self, now: Instant) {
        for trn in self.transactions.due(now) {
            let Some(t) = self.transactions.get_mut(trn) else {
                continue;
            };
            let answered = matches!(
                &t.kind,
                Kind::Query {
                    answered: Some(_),
                    ..
                }
            );
            if answered {
                // CONFLICT_TIMER over.
                self.transactions.remove(trn);
                continue;
            }
            if t.sends_left > 0 {
                t.sends_left -= 1;
                t.deadline = now + t.interval;
                let (to, port, bytes) = (t.to, t.port, t.packet.clone());
                let status = matches!(t.kind, Kind::Status { .. });
                self.send_name_packet_port(to, port, bytes);
                if status {
                    self.stats.status_requests_sent += 1;
                } else {
                    self.stats.queries_sent += 1;
                    if to.is_some_and(|ip| self.is_nbns(ip)) {
                        self.stats.nbns_queries_sent += 1;
                    }
                }
                continue;
            }
            if let Some(t) = self.transactions.remove(trn) {
                if let Some(t) = self.next_step(now, t, false) {
                    self.fail_transaction(t, LookupError::NoResponse);
                }
            }
        }
    }

    pub(crate) fn fail_transaction(&mut self, t: Transaction, err: LookupError) {
        match t.kind {
            Kind::Query { name, waiters, .. } => {
                // A silent broadcast means "not found" to a B-node: cache it if asked to.
                if t.to.is_none() && err == LookupError::NoResponse {
                    self.cache_negative(&name);
                }
                self.complete_waiters(&name, waiters, Err(err));
            }
            Kind::Status { req } => {
                self.stats.status_failed += 1;
                let addr = t.to.unwrap_or(Ipv4Addr::UNSPECIFIED);
                self.push_event(Event::StatusDone {
                    id: req,
                    addr,
                    result: Err(err),
                });
            }
        }
    }

    pub(crate) fn cache_negative(&mut self, name: &Name) {
        let mut delta = CacheDelta::default();
        let ttl = self.config.cache.negative_ttl;
        if !ttl.is_zero() {
            self.cache.insert(
                name.clone(),
                Vec::new(),
                ttl,
                self.now,
                self.config.cache.max_entries,
                &mut delta,
            );
            self.stats.cache_inserts += 1;
        }
        self.account_cache(delta);
    }

    pub(crate) fn finish_lookup(
        &mut self,
        id: RequestId,
        name: Name,
        result: Result<Vec<NameAddress>, LookupError>,
    ) {
        if result.is_ok() {
            self.stats.lookups_succeeded += 1;
        } else {
            self.stats.lookups_failed += 1;
        }
        self.push_event(Event::LookupDone { id, name, result });
    }

    pub(crate) fn complete_waiters(
        &mut self,
        name: &Name,
        waiters: Vec<Waiter>,
        result: Result<Vec<NameAddress>, LookupError>,
    ) {
        for w in waiters {
            match w {
                Waiter::Lookup(id) => self.finish_lookup(id, name.clone(), result.clone()),
                Waiter::Send(p) => match &result {
                    Ok(addrs) => self.send_resolved(p, addrs),
                    Err(e) => {
                        self.stats.sends_failed += 1;
                        self.push_event(Event::SendDone {
                            id: p.id,
                            result: Err(SendError::Unresolved(*e)),
                        });
                    }
                },
                Waiter::Challenge(n) => self.challenge_done(&n, &result),
            }
        }
    }

    // ---------------------------------------------------------------- input

    pub(crate) fn handle_name(&mut self, now: Instant, inc: Incoming<'_>) {
        self.stats.name_packets_received += 1;
        let Ok(p) = Packet::parse(inc.bytes) else {
            self.drop_packet(DropReason::MalformedNamePacket, inc.from);
            return;
        };
        if p.is_response() {
            self.handle_response(now, inc, &p);
            return;
        }
        match p.opcode() {
            Opcode::Query => {
                let Some(q) = p.questions.first() else {
                    self.drop_packet(DropReason::MalformedNamePacket, inc.from);
                    return;
                };
                match q.qtype {
                    TYPE_NB => self.answer_query(inc, &p, q),
                    TYPE_NBSTAT => self.answer_status(inc, &p, q),
                    _ => self.drop_packet(DropReason::UnsupportedOpcode, inc.from),
                }
            }
            Opcode::Registration | Opcode::MultiHomedRegistration => self.defend(inc, &p),
            Opcode::Release => {
                // Someone else released a name: forget what we cached about it.
                let Some(q) = p.questions.first() else {
                    self.drop_packet(DropReason::MalformedNamePacket, inc.from);
                    return;
                };
                self.stats.releases_heard += 1;
                if self.release_from_nbns(inc, &q.name) {
                    return;
                }
                if self.cache.remove(&q.name) {
                    self.stats.cache_flushes += 1;
                    self.stats.cache_entries = self.cache.len() as u64;
                }
            }
            Opcode::Refresh(_) => {
                // Refreshes go to an NBNS; a B-node has nothing to do.
                self.stats.queries_ignored += 1;
            }
            Opcode::Wack | Opcode::Other(_) => {
                self.drop_packet(DropReason::UnsupportedOpcode, inc.from)
            }
        }
    }

    fn is_broadcast(inc: &Incoming<'_>, p: &Packet) -> bool {
        inc.broadcast || p.is_broadcast()
    }

    /// NAME QUERY REQUEST (RFC 1002 §5.1.1.5 and DIGEST §8.15).
    fn answer_query(&mut self, inc: Incoming<'_>, p: &Packet, q: &Question) {
        let broadcast = Self::is_broadcast(&inc, p);
        let state = self.names.get(&q.name).map(|r| (r.state, r.group));
        match state {
            Some((NameState::Active, group)) => {
                let (ttl, flags) = (self.config.registration_ttl, self.nb_flags(group));
                let mut multihomed = false;
                let bytes = if !broadcast && !group && self.is_multihomed() {
                    let mut r = packet(p.id, FLAGS_POSITIVE_QUERY);
                    r.answers
                        .push(nb_record(&q.name, ttl, flags, self.announced_addr()));
                    multihomed = self.add_multihomed_addrs(&mut r, inc.bytes.len());
                    self.encode(&r)
                } else {
                    // One address: written directly (the bytes `encode` gives for it).
                    Some(crate::node::positive_query_bytes(
                        p.id,
                        &q.name,
                        ttl,
                        flags,
                        self.announced_addr(),
                    ))
                };
                if let Some(bytes) = bytes {
                    self.stats.queries_answered += 1;
                    if multihomed {
                        self.stats.multihomed_query_answers += 1;
                    }
                    self.reply(inc.from, Service::Name, bytes, inc.bytes.len());
                }
            }
            // MS-NBTE §4.1: a unicast query for a name in conflict is answered negatively.
            Some((NameState::Conflict, _)) if !broadcast => self.negative_query(inc, p, q),
            // Samba: NAM_ERR for an unknown name only to a unicast query with RD clear.
            None if !broadcast && p.flags & FLAG_RD == 0 => self.negative_query(inc, p, q),
            _ => self.stats.queries_ignored += 1,
        }
    }

    /// Append our other addresses to the single-address answer `r` (a unicast query
    /// for one of our unique names on a multihomed node: MS-NBTE §3.2.5.3, the NBNS
    /// keeps every address the owner lists), as many as fit both the reply cap
    /// (`reply_limit_factor` × request) and one IP datagram (MAX_DATAGRAM_LENGTH).
    /// True when at least one was added.
    fn add_multihomed_addrs(&self, r: &mut Packet, request_len: usize) -> bool {
        let Ok(base) = r.to_bytes().map(|b| b.len()) else {
            return false;
        };
        let limit = (self.config.max_datagram_length - crate::fragment::IP_UDP_HEADER)
            .min(self.config.reply_limit_factor.saturating_mul(request_len));
        // RDLENGTH is 16 bits: 6 bytes per address.
        let fit = (limit.saturating_sub(base) / 6).min(usize::from(u16::MAX) / 6 - 1);
        let flags = self.nb_flags(false);
        let extra: Vec<NbAddress> = self
            .multihomed_addrs()
            .into_iter()
            .take(fit)
            .map(|ip| NbAddress { flags, ip })
            .collect();
        if extra.is_empty() {
            return false;
        }
        match r.answers.first_mut().map(|a| &mut a.rdata) {
            Some(RData::Nb(list)) => {
                list.extend(extra);
                true
            }
            _ => false,
        }
    }

    fn negative_query(&mut self, inc: Incoming<'_>, p: &Packet, q: &Question) {
        let mut r = packet(p.id, FLAGS_NEGATIVE_QUERY);
        r.answers.push(Record {
            name: q.name.clone(),
            rr_type: TYPE_NULL,
            rr_class: CLASS_IN,
            ttl: 0,
            rdata: RData::Raw(Vec::new()),
        });
        if let Some(bytes) = self.encode(&r) {
            self.stats.negative_query_responses_sent += 1;
            self.reply(inc.from, Service::Name, bytes, inc.bytes.len());
        }
    }

    /// NODE STATUS REQUEST (RFC 1001 §15.1.4; RFC 1002 §4.2.18).
    fn answer_status(&mut self, inc: Incoming<'_>, p: &Packet, q: &Question) {
        let ours = q.name.scope() == self.config.scope
            && (q.name.is_wildcard() || self.names.active(&q.name).is_some());
        if !ours {
            self.stats.queries_ignored += 1;
            return;
        }
        if !self.config.node_status {
            self.drop_packet(DropReason::NodeStatusDisabled, inc.from);
            return;
        }
        let all: Vec<NodeName> = self
            .names
            .iter()
            .filter(|r| r.state == NameState::Active)
            .map(|r| NodeName {
                name: Name::from_raw(*r.name.raw()),
                flags: self.nb_flags(r.group) | NAME_ACT,
            })
            .collect();
        // Room: the UDP payload within MAX_DATAGRAM_LENGTH, and the amplification cap.
        let limit = (self.config.max_datagram_length - crate::fragment::IP_UDP_HEADER).min(
            self.config
                .reply_limit_factor
                .saturating_mul(inc.bytes.len()),
        );
        let fixed = 12 + q.name.encoded_len() + 10 + 1 + nbdgm_wire::nbns::STATISTICS_LEN;
        let fit = limit.saturating_sub(fixed) / 18;
        let n = all.len().min(fit).min(255);
        if n == 0 && !all.is_empty() || fixed > limit {
            self.drop_packet(DropReason::ReplyTooLarge, inc.from);
            return;
        }
        let truncated = n < all.len();
        let mut names = all;
        names.truncate(n);
        let mut r = packet(
            p.id,
            FLAGS_NODE_STATUS | if truncated { FLAG_TC } else { 0 },
        );
        r.answers.push(Record {
            name: q.name.clone(),
            rr_type: TYPE_NBSTAT,
            rr_class: CLASS_IN,
            ttl: 0,
            rdata: RData::NodeStatus(NodeStatus {
                names,
                statistics: Some(Statistics::default()),
                extra: Vec::new(),
            }),
        });
        if let Some(bytes) = self.encode(&r) {
            self.stats.node_status_answered += 1;
            if truncated {
                self.stats.node_status_truncated += 1;
            }
            self.reply(inc.from, Service::Name, bytes, inc.bytes.len());
        }
    }

    /// NAME REGISTRATION REQUEST from someone else (RFC 1002 §5.1.1.5; DIGEST §4.4
    /// "Defend"): refuse it if we hold the name as unique (also while registering,
    /// so that two simultaneous registrations cannot both win).
    fn defend(&mut self, inc: Incoming<'_>, p: &Packet) {
        let Some(q) = p.questions.first() else {
            self.drop_packet(DropReason::MalformedNamePacket, inc.from);
            return;
        };
        let Some(rec) = self.names.get(&q.name) else {
            return;
        };
        let defend = !rec.group && matches!(rec.state, NameState::Active | NameState::Registering);
        if !defend {
            return;
        }
        let mut r = packet(p.id, FLAGS_DEFEND);
        r.answers.push(nb_record(
            &q.name,
            0,
            self.nb_flags(false),
            self.announced_addr(),
        ));
        if let Some(bytes) = self.encode(&r) {
            self.stats.defences_sent += 1;
            self.reply(inc.from, Service::Name, bytes, inc.bytes.len());
        }
    }

    fn handle_response(&mut self, now: Instant, inc: Incoming<'_>, p: &Packet) {
        if self.config.uses_nbns() && self.ns_response(now, inc, p) {
            return;
        }
        match p.opcode() {
            Opcode::Registration | Opcode::MultiHomedRegistration => {
                self.registration_response(inc, p)
            }
            Opcode::Query => {
                let nbstat = p.answers.first().is_some_and(|a| a.rr_type == TYPE_NBSTAT);
                if nbstat {
                    self.status_response(inc, p);
                } else {
                    self.query_response(now, inc, p);
                }
            }
            Opcode::Wack | Opcode::Other(_) => {
                self.drop_packet(DropReason::UnsupportedOpcode, inc.from)
            }
            // Release and refresh responses: we never ask for them.
            Opcode::Release | Opcode::Refresh(_) => {
                self.drop_packet(DropReason::UnsolicitedResponse, inc.from)
            }
        }
    }

    pub(crate) fn mark_conflict(&mut self, name: &Name, by: SocketAddrV4, reason: ConflictReason) {
        self.mark_conflict_by(name, Some(by), reason)
    }

    pub(crate) fn mark_conflict_by(
        &mut self,
        name: &Name,
        by: Option<SocketAddrV4>,
        reason: ConflictReason,
    ) {
        let Some(rec) = self.names.get_mut(name) else {
            return;
        };
        if !matches!(rec.state, NameState::Active | NameState::Registering) {
            return;
        }
        rec.state = NameState::Conflict;
        rec.job = None;
        rec.ns = None;
        rec.refresh_at = None;
        self.push_event(Event::NameConflict {
            name: name.clone(),
            by,
            reason,
        });
    }

    fn registration_response(&mut self, inc: Incoming<'_>, p: &Packet) {
        let rcode = p.rcode();
        let name = self.names.by_registration_trn(p.id).map(|r| r.name.clone());
        if let Some(name) = name {
            let matches_name = p.answers.first().is_none_or(|a| a.name == name);
            if rcode != 0 && matches_name {
                self.stats.registrations_refused += 1;
                self.mark_conflict(&name, inc.from, ConflictReason::RegistrationRefused);
            } else {
                // Positive responses are ignored by a B-node.
                self.stats.responses_ignored += 1;
            }
            return;
        }
        if rcode == 7 {
            // NAME CONFLICT DEMAND (RFC 1002 §5.1.1.5).
            let Some(a) = p.answers.first() else {
                self.drop_packet(DropReason::MalformedNamePacket, inc.from);
                return;
            };
            self.stats.conflict_demands_received += 1;
            let name = a.name.clone();
            self.mark_conflict(&name, inc.from, ConflictReason::ConflictDemand);
            return;
        }
        self.drop_packet(DropReason::UnsolicitedResponse, inc.from);
    }

    fn query_response(&mut self, now: Instant, inc: Incoming<'_>, p: &Packet) {
        if p.answers.is_empty() && self.query_redirect(now, inc, p) {
            return;
        }
        let Some(t) = self.transactions.get_mut(p.id) else {
            self.drop_packet(DropReason::UnsolicitedResponse, inc.from);
            return;
        };
        let Kind::Query { name, answered, .. } = &mut t.kind else {
            self.drop_packet(DropReason::UnsolicitedResponse, inc.from);
            return;
        };
        let responder = *inc.from.ip();
        let answer = p.answers.first();
        // Match on id AND source AND name (issue 12 item 9): a right id is not enough.
        if t.to.is_some_and(|ip| ip != responder) {
            self.drop_packet(DropReason::AnswerWrongSource, inc.from);
            return;
        }
        if answer.is_none_or(|a| &a.name != name) {
            self.drop_packet(DropReason::AnswerWrongName, inc.from);
            return;
        }
        let trn = t.trn;
        let unicast = t.to.is_some();
        let name = name.clone();
        let addrs: Vec<NameAddress> = match answer.map(|a| &a.rdata) {
            Some(RData::Nb(list)) if p.rcode() == 0 => {
                list.iter().map(NameAddress::from_nb).collect()
            }
            _ => Vec::new(),
        };
        if addrs.is_empty() {
            // Negative (or empty) answer: final for a unicast query, noise for a broadcast one.
            if unicast && answered.is_none() {
                if let Some(t) = self.transactions.remove(trn) {
                    // H-node: an NBNS "not found" still leaves the broadcast step.
                    let Some(t) = self.next_step(now, t, true) else {
                        return;
                    };
                    if let Kind::Query { waiters, .. } = t.kind {
                        self.cache_negative(&name);
                        self.complete_waiters(&name, waiters, Err(LookupError::NotFound));
                    }
                }
            } else {
                self.stats.responses_ignored += 1;
            }
            return;
        }
        let group = addrs.iter().all(|a| a.group);
        if let Some(ans) = answered {
            // Within CONFLICT_TIMER after the first answer (RFC 1001 §15.1.3.5).
            if ans.responders.iter().any(|(ip, _)| *ip == responder) {
                self.stats.duplicate_responses += 1;
                return;
            }
            let all_group = group && ans.responders.iter().all(|(_, g)| *g);
            ans.responders.push((responder, group));
            if all_group {
                for a in addrs {
                    self.cache.add_address(&name, a);
                }
                return;
            }
            self.conflict_demand(&name, responder);
            self.stats.conflicts_detected += 1;
            self.stats.cache_flushes += self.cache.flush_ip(responder);
            self.stats.cache_entries = self.cache.len() as u64;
            self.push_event(Event::NameConflict {
                name,
                by: Some(inc.from),
                reason: ConflictReason::DuplicateQueryAnswers,
            });
            return;
        }
        // First positive answer: it is authoritative.
        *answered = Some(Answered {
            responders: vec![(responder, group)],
        });
        let waiters = match &mut t.kind {
            Kind::Query { waiters, .. } => std::mem::take(waiters),
            Kind::Status { .. } => Vec::new(),
        };
        if unicast {
            self.transactions.remove(trn);
        } else {
            t.deadline = now + self.config.conflict_timer;
            t.sends_left = 0;
        }
        let mut delta = CacheDelta::default();
        self.cache.insert(
            name.clone(),
            addrs.clone(),
            self.config.cache.ttl,
            now,
            self.config.cache.max_entries,
            &mut delta,
        );
        self.stats.cache_inserts += 1;
        self.account_cache(delta);
        self.complete_waiters(&name, waiters, Ok(addrs));
    }

    /// NAME CONFLICT DEMAND to `ip` (RFC 1002 §4.2.8): TTL 0, NB_FLAGS = ONT, IP 0.0.0.0.
    fn conflict_demand(&mut self, name: &Name, ip: Ipv4Addr) {
        let trn = self.alloc_trn();
        let mut p = packet(trn, FLAGS_CONFLICT_DEMAND);
        p.answers.push(nb_record(
            name,
            0,
            self.nb_flags(false),
            Ipv4Addr::UNSPECIFIED,
        ));
        if let Some(bytes) = self.encode(&p) {
            self.stats.conflict_demands_sent += 1;
            self.send_name_packet(Some(ip), bytes);
        }
    }

    fn status_response(&mut self, inc: Incoming<'_>, p: &Packet) {
        let asked = self
            .transactions
            .get_mut(p.id)
            .filter(|t| matches!(t.kind, Kind::Status { .. }))
            .map(|t| t.to);
        match asked {
            None => {
                self.drop_packet(DropReason::UnsolicitedResponse, inc.from);
                return;
            }
            Some(to) if to != Some(*inc.from.ip()) => {
                self.drop_packet(DropReason::AnswerWrongSource, inc.from);
                return;
            }
            Some(_) => {}
        }
        let Some(RData::NodeStatus(ns)) = p.answers.first().map(|a| &a.rdata) else {
            self.drop_packet(DropReason::MalformedNamePacket, inc.from);
            return;
        };
        let reply = NodeStatusReply {
            names: ns
                .names
                .iter()
                .map(|n| StatusName {
                    name: n.name.clone(),
                    group: n.flags & NB_GROUP != 0,
                    flags: n.flags,
                })
                .collect(),
            unit_id: ns.statistics.as_ref().map(|s| s.unit_id),
            truncated: p.flags & FLAG_TC != 0,
        };
        if let Some(Transaction {
            kind: Kind::Status { req },
            to,
            ..
        }) = self.transactions.remove(p.id)
        {
            self.stats.status_succeeded += 1;
            self.push_event(Event::StatusDone {
                id: req,
                addr: to.unwrap_or(Ipv4Addr::UNSPECIFIED),
                result: Ok(reply),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_words_match_the_digest() {
        assert_eq!(FLAGS_REGISTRATION, 0x2910);
        assert_eq!(FLAGS_RELEASE, 0x3010);
        assert_eq!(FLAGS_QUERY_BCAST, 0x0110);
        assert_eq!(FLAGS_QUERY_UCAST, 0x0100);
        assert_eq!(FLAGS_POSITIVE_QUERY, 0x8580);
        assert_eq!(FLAGS_NEGATIVE_QUERY, 0x8583);
        assert_eq!(FLAGS_DEFEND, 0xAD86);
        assert_eq!(FLAGS_CONFLICT_DEMAND, 0xAD87);
        assert_eq!(FLAGS_NODE_STATUS, 0x8400);
    }

    #[test]
    fn registration_request_matches_digest_vector() {
        // DIGEST §10.3: NAME REGISTRATION REQUEST, broadcast, FRED<00>, TRN 0x8003.
        let want = "80032910000100000000000120454746434546454543414341434143414341434143414341434143414341414100002000\
01c00c00200001000493e000060000c0a8010a";
        let p = request_with_record(
            0x8003,
            FLAGS_REGISTRATION,
            &Name::new("FRED", 0).unwrap(),
            300_000,
            0,
            Ipv4Addr::new(192, 168, 1, 10),
        );
        let hex: String = p
            .to_bytes()
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, want);
        // Release: flags 0x3010, TTL 0.
        let p = request_with_record(
            0x8005,
            FLAGS_RELEASE,
            &Name::new("FRED", 0).unwrap(),
            0,
            0,
            Ipv4Addr::new(192, 168, 1, 10),
        );
        let hex: String = p
            .to_bytes()
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(hex.starts_with("80053010000100000000000120"));
        assert!(hex.ends_with("c00c002000010000000000060000c0a8010a"));
    }
}
