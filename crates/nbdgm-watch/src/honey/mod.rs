//! Honey queries (issue 14 §3): active NBNS (RFC 1002 §4.2.12), LLMNR (RFC 4795) and
//! mDNS (RFC 6762) queries for names that exist nowhere. Nobody may answer them, so any
//! positive answer comes from a poisoner (Responder, Inveigh, ...): `honey-answered`,
//! severity high, naming the responder's IP and MAC.
//!
//! [`HoneySender`] sends the queries in a background thread and reports each one
//! ([`SentQuery`]) before it goes out; the caller registers them in the engine's
//! [`HoneyBook`] (`engine.honey_mut().register(&q)`), and the poisoning detectors hand
//! every positive answer to [`on_answer`]. [`verify`] optionally probes a responder.

pub mod names;
pub mod query;
pub mod sender;
pub mod verify;

pub use names::{generate, HoneyName};
pub use sender::{HoneyConfig, HoneySender, SenderStats};
pub use verify::{verify, verify_ports, PortState, Verification};

use crate::alert::Alert;
use crate::config::WatchConfig;
use crate::engine::Engine;
use crate::packet::{mac_string, Packet};
use crate::signature;
use crate::state::{CappedMap, Proto};
use nbdgm_capture::Timestamp;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Honey names tracked at once.
pub const MAX_LIVE: usize = 4096;
/// Transaction ids kept per honey name.
pub const MAX_TXIDS: usize = 8;
/// Default time a honey name stays recognisable after its last query.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(600);

/// One honey query packet, reported by [`HoneySender`] just before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentQuery {
    /// Protocol.
    pub proto: Proto,
    /// Canonical name (see [`crate::state::NameTable`]): NBNS `NAME<20>`, LLMNR
    /// `name`, mDNS `name.local`.
    pub name: String,
    /// Transaction id (0 for mDNS, RFC 6762 §18.1).
    pub txid: u16,
    /// Query type (NB 0x20, A 1).
    pub qtype: u16,
    /// Try number, from 1 (NBNS retries with the same id).
    pub attempt: u8,
    /// Wall-clock time it was sent.
    pub time: Timestamp,
    /// Our socket.
    pub src: SocketAddr,
    /// Where it went.
    pub dst: SocketAddr,
}

/// The canonical form of a name for lookups: NBNS upper case, DNS lower case without a
/// trailing dot.
fn canonical(proto: Proto, name: &str) -> String {
    match proto {
        Proto::Nbns => name.to_ascii_uppercase(),
        _ => name.trim_end_matches('.').to_ascii_lowercase(),
    }
}

#[derive(Debug, Clone)]
struct Live {
    txids: Vec<u16>,
    first: Timestamp,
    last: Timestamp,
    queries: u32,
    src: SocketAddr,
    dst: SocketAddr,
}

/// The honey names currently live, per protocol, with the ids used and the times sent.
/// Capped at [`MAX_LIVE`] (oldest dropped, counted).
#[derive(Debug)]
pub struct HoneyBook {
    live: CappedMap<(Proto, String), Live>,
    linger_secs: i64,
    /// Queries registered.
    pub registered: u64,
    /// Answers to live honey names (alerts raised before suppression).
    pub answered: u64,
    /// Answers to honey names past their linger time (no alert).
    pub late: u64,
}

impl HoneyBook {
    pub(crate) fn new(_cfg: &WatchConfig) -> Self {
        HoneyBook {
            live: CappedMap::new(MAX_LIVE),
            linger_secs: DEFAULT_LINGER.as_secs() as i64,
            registered: 0,
            answered: 0,
            late: 0,
        }
    }

    /// How long a name stays recognisable after its last query (default 10 min).
    pub fn set_linger(&mut self, linger: Duration) {
        self.linger_secs = i64::try_from(linger.as_secs()).unwrap_or(i64::MAX);
    }

    /// Records a query sent (a try of an existing name refreshes it).
    pub fn register(&mut self, q: &SentQuery) {
        self.registered += 1;
        self.live
            .expire(q.time.secs.saturating_sub(self.linger_secs));
        let e = self
            .live
            .entry((q.proto, canonical(q.proto, &q.name)), q.time.secs, || {
                Live {
                    txids: Vec::new(),
                    first: q.time,
                    last: q.time,
                    queries: 0,
                    src: q.src,
                    dst: q.dst,
                }
            });
        e.queries = e.queries.saturating_add(1);
        e.last = e.last.max(q.time);
        e.first = e.first.min(q.time);
        if !e.txids.contains(&q.txid) {
            if e.txids.len() >= MAX_TXIDS {
                e.txids.remove(0);
            }
            e.txids.push(q.txid);
        }
    }

    /// Is `name` a honey name on `proto`, live at capture second `now`?
    pub fn is_live(&self, proto: Proto, name: &str, now: i64) -> bool {
        self.live
            .get(&(proto, canonical(proto, name)))
            .is_some_and(|e| now <= e.last.secs.saturating_add(self.linger_secs))
    }

    /// Honey names held.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// None held?
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub(crate) fn stats(&self) -> Value {
        json!({
            "len": self.live.len(),
            "max": self.live.max(),
            "evicted": self.live.evicted,
            "registered": self.registered,
            "answered": self.answered,
            "late": self.late,
            "linger_secs": self.linger_secs,
        })
    }

    /// The alert for an answer to a honey name, if `name` is one and still live.
    fn answer(
        &mut self,
        p: &Packet<'_>,
        proto: Proto,
        name: &str,
        txid: u16,
        addrs: &[IpAddr],
    ) -> Option<Alert> {
        let key = (proto, canonical(proto, name));
        let e = self.live.get(&key)?.clone();
        if p.time.secs > e.last.secs.saturating_add(self.linger_secs) {
            self.late += 1;
            return None;
        }
        self.answered += 1;
        let addrs: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        let mac = p.src_mac.as_ref().map(mac_string);
        Some(
            Alert::new(&signature::HONEY_ANSWERED, p)
                .with("protocol", proto.as_str())
                .with("name", name)
                .with("txid", txid)
                .with("txid_matches", e.txids.contains(&txid))
                .with("sent_txids", e.txids.clone())
                .with("addresses", addrs)
                .with("responder", p.src.ip().to_string())
                .with("responder_mac", mac.map_or(Value::Null, Value::from))
                .with("query_first_sent", e.first.as_f64())
                .with("query_last_sent", e.last.as_f64())
                .with("queries_sent", e.queries)
                .with("query_src", e.src.to_string())
                .with("query_dst", e.dst.to_string())
                .with(
                    "answer_delay_secs",
                    (p.time.as_f64() - e.last.as_f64()).max(0.0),
                )
                .key(key.1),
        )
    }
}

/// Called by the poisoning detectors for every positive answer (NBNS, LLMNR, mDNS) with
/// the canonical name (see [`crate::state::NameTable`]), the transaction id and the
/// addresses the answer carries. Returns true when `name` is a honey name (an alert was
/// pushed); the caller then skips its own ownership checks for this answer.
pub(crate) fn on_answer(
    e: &mut Engine,
    p: &Packet<'_>,
    proto: Proto,
    name: &str,
    txid: u16,
    addrs: &[IpAddr],
    out: &mut Vec<Alert>,
) -> bool {
    match e.honey.answer(p, proto, name, txid, addrs) {
        Some(a) => {
            out.push(a);
            true
        }
        None => false,
    }
}

/// Adds the result of [`verify`] to a `honey-answered` alert (evidence `verification`).
pub fn attach_verification(alert: &mut Alert, v: &Verification) {
    alert.evidence.insert("verification".into(), v.to_json());
}

#[cfg(test)]
mod tests;
