//! Name-service transactions we started (RFC 1001 §13; RFC 1002 §4.2.1.1): broadcast or
//! unicast NAME QUERY and NODE STATUS requests, with 16-bit NAME_TRN_IDs, retries, and
//! the CONFLICT_TIMER window after the first answer of a broadcast query
//! (RFC 1001 §15.1.3.5). Responses are matched on (NAME_TRN_ID, responder).

use crate::event::RequestId;
use nbdgm_wire::Name;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// A datagram waiting for its destination name to be resolved.
#[derive(Debug, Clone)]
pub(crate) struct PendingSend {
    pub id: RequestId,
    pub source: Name,
    pub destination: Name,
    pub data: Vec<u8>,
}

/// Who is waiting for a query's answer.
#[derive(Debug, Clone)]
pub(crate) enum Waiter {
    Lookup(RequestId),
    Send(PendingSend),
    /// End-node challenge of the presumed owner of our name (RFC 1002 §5.1.2.1).
    Challenge(Name),
}

/// After the first positive answer to a broadcast query: who answered, and whether
/// each said "group".
#[derive(Debug, Clone)]
pub(crate) struct Answered {
    pub responders: Vec<(Ipv4Addr, bool)>,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Query {
        name: Name,
        waiters: Vec<Waiter>,
        answered: Option<Answered>,
        /// Where to ask next when this step gets no answer (P/M/H resolution order):
        /// `None` = broadcast, `Some(ip)` = an NBNS.
        rest: Vec<Option<Ipv4Addr>>,
        /// NBNSs that redirected this query (RFC 1002 §4.2.15), at most
        /// `MAX_REDIRECTS`: a loop or a longer chain is refused.
        redirected_by: Vec<Ipv4Addr>,
        /// Set by the first WACK: later WACKs cannot push the deadline past it.
        wack_cap: Option<Instant>,
    },
    Status {
        req: RequestId,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Transaction {
    pub trn: u16,
    /// `None`: broadcast.
    pub to: Option<Ipv4Addr>,
    /// UDP port of a unicast request (the name port, or the NBNS port).
    pub port: u16,
    pub packet: Vec<u8>,
    pub sends_left: u32,
    pub interval: Duration,
    pub deadline: Instant,
    pub kind: Kind,
}

#[derive(Debug, Default)]
pub(crate) struct Transactions {
    list: Vec<Transaction>,
}

/// Cap on waiters attached to one query (sends and lookups of the same name).
pub const MAX_WAITERS: usize = 64;

impl Transactions {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn in_use(&self, trn: u16) -> bool {
        self.list.iter().any(|t| t.trn == trn)
    }

    pub fn push(&mut self, t: Transaction) {
        self.list.push(t);
    }

    pub fn get_mut(&mut self, trn: u16) -> Option<&mut Transaction> {
        self.list.iter_mut().find(|t| t.trn == trn)
    }

    pub fn remove(&mut self, trn: u16) -> Option<Transaction> {
        let i = self.list.iter().position(|t| t.trn == trn)?;
        Some(self.list.remove(i))
    }

    /// A broadcast query for `name` still waiting for its first answer.
    pub fn open_broadcast_query(&mut self, name: &Name) -> Option<&mut Transaction> {
        self.list.iter_mut().find(|t| {
            t.to.is_none()
                && matches!(&t.kind, Kind::Query { name: n, answered: None, waiters, .. } if n == name && waiters.len() < MAX_WAITERS)
        })
    }

    /// The newest unanswered query for `name` at `to`.
    pub fn find_query(&self, name: &Name, to: Option<Ipv4Addr>) -> Option<u16> {
        self.list
            .iter()
            .rev()
            .find(|t| {
                t.to == to
                    && matches!(&t.kind, Kind::Query { name: n, answered: None, .. } if n == name)
            })
            .map(|t| t.trn)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.list.iter().map(|t| t.deadline).min()
    }

    /// TRN ids of the transactions due at `now`, oldest first.
    pub fn due(&self, now: Instant) -> Vec<u16> {
        self.list
            .iter()
            .filter(|t| t.deadline <= now)
            .map(|t| t.trn)
            .collect()
    }

    pub fn drain(&mut self) -> Vec<Transaction> {
        std::mem::take(&mut self.list)
    }
}
