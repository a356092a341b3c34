//! Group and broadcast datagrams of P- and M-nodes through the NBDD (RFC 1002
//! §5.3.2; RFC 1001 §17.3; DIGEST §3.2, §3.4): optionally a DATAGRAM QUERY REQUEST
//! (0x14) for the destination name first, retried like a unicast name request; on a
//! POSITIVE QUERY RESPONSE (0x15, same DGM_ID and name, from the NBDD) the datagram
//! goes by unicast to the NBDD. On a NEGATIVE one (0x16) or silence, M- and H-nodes
//! send it to the local broadcast address as real nodes do (MS-NBTE, MS-MAIL <13>;
//! counted in `nbdd_fallbacks`), and P-nodes fail with
//! [`crate::SendError::NbddUnavailable`]. (The RFC's alternative after a negative
//! answer, one unicast copy per group member from the NBNS, is not implemented.)

use crate::config::Service;
use crate::error::{LookupError, SendError};
use crate::event::{DropReason, Event};
use crate::node::{Incoming, Node, Transmit};
use crate::transaction::PendingSend;
use nbdgm_wire::datagram::{Body, Datagram, Flags, MsgType, NodeType};
use std::net::SocketAddrV4;
use std::time::Instant;

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
            self.nbdd_unavailable(q.send, q.msg_type);
        }
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
