//! Group and broadcast datagrams of P- and M-nodes through the NBDD (RFC 1002
//! §5.3.2; RFC 1001 §17.3; DIGEST §3.2, §3.4): optionally a DATAGRAM QUERY REQUEST
//! (0x14) for the destination name first, retried like a unicast name request; on a
//! POSITIVE QUERY RESPONSE (0x15, same DGM_ID and name, from the NBDD) the datagram
//! goes by unicast to the NBDD. On a NEGATIVE one (0x16) or silence, M- and H-nodes
//! send it to the local broadcast address as real nodes do (MS-NBTE, MS-MAIL <13>;
//! counted in `nbdd_fallbacks`), and P-nodes fail with
//! [`crate::SendError::NbddUnavailable`]. The RFC's alternative after a NEGATIVE
//! answer (RFC 1001 §17.2: "the sending node may then ... send the datagram to each
//! member of the group itself", with the members from its own NAME QUERY) is the
//! option `nbdd_refused_unicast`: DIRECT_GROUP only, at most
//! `nbdd_refused_unicast_max_members` copies, rate-gated; otherwise the fallback above.

use crate::config::Service;
use crate::error::{LookupError, SendError};
use crate::event::{DropReason, Event, NameAddress, RequestId, SendInfo};
use crate::node::{Incoming, Node, Transmit};
use crate::transaction::{PendingSend, Waiter};
use nbdgm_base::rate::{Bucket, Rate};
use nbdgm_wire::datagram::{Body, Datagram, Flags, MsgType, NodeType};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

/// State of the unicast-to-members alternative (`nbdd_refused_unicast`).
#[derive(Debug, Default)]
pub(crate) struct Fanout {
    /// Copies per second; made on first use.
    bucket: Option<Bucket>,
    /// Refused sends whose group is being resolved for a fan-out, oldest first (at
    /// most `max_transactions`; an evicted one just goes the normal way).
    resolving: Vec<RequestId>,
}

/// A datagram waiting for the NBDD's answer to our DATAGRAM QUERY REQUEST.
#[derive(Debug, Clone)]
pub(crate) struct NbddQuery {
    pub dgm_id: u16,
    pub to: SocketAddrV4,
    pub packet: Vec<u8>,
    pub sends_left: u32,
    pub deadline: Instant,
    pub msg_type: MsgType,
    pub send: PendingSend,
}

impl Node {
    /// Send a DIRECT_GROUP or BROADCAST datagram through the NBDD at `nbdd`.
    pub(crate) fn nbdd_send(&mut self, p: PendingSend, msg_type: MsgType, nbdd: SocketAddrV4) {
        if !self.config.nbdd_query {
            self.stats.nbdd_relayed += 1;
            self.send_now(p, msg_type, Some(nbdd));
            return;
        }
        if self.nbdd_queries.len() >= self.config.max_transactions {
            self.stats.transactions_refused += 1;
            self.nbdd_unavailable(p, msg_type);
            return;
        }
        let dgm_id = self.alloc_dgm_id();
        let d: Datagram = Datagram {
            msg_type: MsgType::QueryRequest,
            flags: Flags::single(self.config.node_type),
            id: dgm_id,
            source_ip: self.announced_addr(),
            source_port: self.config.datagram_port,
            body: Body::Query {
                destination_name: p.destination.clone(),
            },
        };
        let Ok(bytes) = d.to_bytes() else {
            self.stats.encode_errors += 1;
            self.nbdd_unavailable(p, msg_type);
            return;
        };
        self.nbdd_transmit(nbdd, bytes.clone());
        self.nbdd_queries.push(NbddQuery {
            dgm_id,
            to: nbdd,
            packet: bytes,
            sends_left: self.config.ucast_retry_count - 1,
            deadline: self.now + self.config.ucast_retry_interval,
            msg_type,
            send: p,
        });
    }

    fn nbdd_transmit(&mut self, to: SocketAddrV4, bytes: Vec<u8>) {
        self.stats.nbdd_queries_sent += 1;
        self.push_transmit(Transmit {
            to,
            service: Service::Datagram,
            bytes,
            broadcast: false,
            reply_to: None,
            app_reply: false,
        });
    }

    /// The NBDD refused or is silent: M/H broadcast locally, P fails.
    fn nbdd_unavailable(&mut self, p: PendingSend, msg_type: MsgType) {
        if self.config.node_type == NodeType::P {
            self.stats.sends_failed += 1;
            self.push_event(Event::SendDone {
                id: p.id,
                result: Err(SendError::NbddUnavailable),
            });
        } else {
            self.stats.nbdd_fallbacks += 1;
            self.send_now(p, msg_type, None);
        }
    }

    pub(crate) fn nbdd_deadline(&self) -> Option<Instant> {
        self.nbdd_queries.iter().map(|q| q.deadline).min()
    }

    pub(crate) fn nbdd_timeouts(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.nbdd_queries.len() {
            let q = &mut self.nbdd_queries[i];
            if q.deadline > now {
                i += 1;
                continue;
            }
            if q.sends_left > 0 {
                q.sends_left -= 1;
                q.deadline = now + self.config.ucast_retry_interval;
                let (to, bytes) = (q.to, q.packet.clone());
                self.nbdd_transmit(to, bytes);
                i += 1;
                continue;
            }
            let q = self.nbdd_queries.remove(i);
            self.stats.nbdd_timeouts += 1;
            self.nbdd_unavailable(q.send, q.msg_type);
        }
    }

    /// A DATAGRAM POSITIVE/NEGATIVE QUERY RESPONSE: match it to our query by DGM_ID,
    /// NBDD address and destination name; anything else is dropped (`nbdd_query`).
    pub(crate) fn nbdd_response(&mut self, inc: Incoming<'_>, dg: &Datagram<&[u8]>) {
        let Body::Query { destination_name } = &dg.body else {
            self.drop_packet(DropReason::MalformedDatagram, inc.from);
            return;
        };
        let pos = self.nbdd_queries.iter().position(|q| {
            q.dgm_id == dg.id
                && q.to.ip() == inc.from.ip()
                && &q.send.destination == destination_name
        });
        let Some(pos) = pos else {
            self.drop_packet(DropReason::NbddQuery, inc.from);
            return;
        };
        let q = self.nbdd_queries.remove(pos);
        if dg.msg_type == MsgType::PositiveQueryResponse {
            self.stats.nbdd_positive += 1;
            self.stats.nbdd_relayed += 1;
            self.send_now(q.send, q.msg_type, Some(q.to));
        } else {
            self.stats.nbdd_negative += 1;
            self.nbdd_refused(q.send, q.msg_type);
        }
    }

    /// A NEGATIVE QUERY RESPONSE: unicast to the members when so configured (group
    /// datagrams only), else as when the NBDD is silent.
    fn nbdd_refused(&mut self, p: PendingSend, msg_type: MsgType) {
        if !self.config.nbdd_refused_unicast || msg_type != MsgType::DirectGroup {
            return self.nbdd_unavailable(p, msg_type);
        }
        let now = self.now;
        match self.resolve_locally(now, &p.destination) {
            Some(Ok(addrs)) => self.nbdd_fanout(p, &addrs),
            Some(Err(_)) => self.nbdd_unavailable(p, msg_type),
            None => {
                let f = &mut self.nbdd_fanout.resolving;
                if f.len() >= self.config.max_transactions.max(1) {
                    f.remove(0);
                }
                f.push(p.id);
                let dest = p.destination.clone();
                if self.resolve(now, dest, Waiter::Send(p.clone())).is_err() {
                    self.nbdd_fanout.resolving.retain(|id| *id != p.id);
                    self.nbdd_unavailable(p, msg_type);
                }
            }
        }
    }

    /// Whether `p` was refused by the NBDD and waits for its group's members: then
    /// they are here (from [`Node::send_resolved`]).
    pub(crate) fn take_fanout(&mut self, p: &PendingSend) -> bool {
        let f = &mut self.nbdd_fanout.resolving;
        let before = f.len();
        f.retain(|id| *id != p.id);
        f.len() != before
    }

    /// One DIRECT_GROUP copy to each member in `addrs` (not us, unicast addresses
    /// only, at most `nbdd_refused_unicast_max_members`), when the rate allows all of
    /// them; otherwise the usual fallback.
    pub(crate) fn nbdd_fanout(&mut self, p: PendingSend, addrs: &[NameAddress]) {
        let own = |ip: &Ipv4Addr| *ip == self.addr() || self.config.multihomed.contains(ip);
        let mut members: Vec<Ipv4Addr> = addrs
            .iter()
            .map(|a| a.addr)
            .filter(|ip| !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast()))
            .filter(|ip| !own(ip))
            .collect();
        members.sort_unstable();
        members.dedup();
        if members.is_empty() {
            self.stats.nbdd_member_none += 1;
            return self.nbdd_unavailable(p, MsgType::DirectGroup);
        }
        if members.len() > self.config.nbdd_refused_unicast_max_members {
            members.truncate(self.config.nbdd_refused_unicast_max_members);
            self.stats.nbdd_member_truncated += 1;
        }
        let per_s = self.config.nbdd_refused_unicast_per_s;
        let rate = Rate::new(f64::from(per_s), per_s.saturating_mul(2));
        let now = self.now;
        let bucket = self
            .nbdd_fanout
            .bucket
            .get_or_insert_with(|| Bucket::full(now, rate));
        if !bucket.take(now, rate, members.len() as f64) {
            self.stats.nbdd_member_rate_limited += 1;
            return self.nbdd_unavailable(p, MsgType::DirectGroup);
        }
        self.stats.nbdd_member_fanouts += 1;
        let mut result: Result<SendInfo, SendError> = Err(SendError::NbddUnavailable);
        let mut fragments = 0;
        for ip in members {
            let to = SocketAddrV4::new(ip, self.config.datagram_port);
            match self.transmit_datagram(&p, MsgType::DirectGroup, Some(to)) {
                Ok(info) => {
                    self.stats.nbdd_member_copies += 1;
                    fragments += info.fragments;
                    if result.is_err() {
                        result = Ok(info);
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let Ok(info) = &mut result {
            info.fragments = fragments;
        } else {
            self.stats.sends_failed += 1;
        }
        self.push_event(Event::SendDone { id: p.id, result });
    }

    /// Shutdown: fail the datagrams still waiting for the NBDD.
    pub(crate) fn cancel_nbdd_queries(&mut self) {
        for q in std::mem::take(&mut self.nbdd_queries) {
            self.stats.sends_failed += 1;
            self.push_event(Event::SendDone {
                id: q.send.id,
                result: Err(SendError::Unresolved(LookupError::Cancelled)),
            });
        }
    }
}
