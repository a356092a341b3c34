//! Name poisoning detectors: positive answers of NBNS (RFC 1002 §4.2.13 name query,
//! §4.2.2 registration, §4.2.5 release), LLMNR (RFC 4795 §2) and mDNS (RFC 6762 §6, §8
//! probing and announcing) checked against who owns the name on the wire, the queries
//! seen, and what else the responder did ([`score`] rates the responder as a poisoner).

pub mod score;

use crate::alert::{Alert, Severity};
use crate::config::WatchConfig;
use crate::engine::Engine;
use crate::packet::Packet;
use crate::signature;
use crate::state::{CappedMap, Claim, NameEntry, Owner, Proto};
use nbdgm_wire::nbns::{self, Opcode, RData, TYPE_NB};
use serde_json::{json, Value};
use std::net::IpAddr;

/// Responders remembered per query.
const MAX_RESPONDERS: usize = 8;
/// Claims held between a packet's detection and its learning.
const MAX_PENDING: usize = 256;

/// A query seen on the wire, waiting for its answers.
#[derive(Debug, Clone)]
pub struct Query {
    /// Who asked.
    pub querier: IpAddr,
    /// NBNS B bit (a broadcast query).
    pub broadcast: bool,
    /// Frame of the query.
    pub frame: u64,
    /// Capture seconds of the query.
    pub secs: i64,
    /// Hosts that answered it: address, addresses answered, frame (at most 8).
    pub responders: Vec<(IpAddr, Vec<IpAddr>, u64)>,
}

/// Poisoning state: outstanding queries, responders, and claims to learn.
#[derive(Debug)]
pub struct PoisonState {
    /// Queries by (protocol, transaction id, canonical name).
    pub queries: CappedMap<(Proto, u16, String), Query>,
    /// Per responding host (see [`score`]).
    pub hosts: CappedMap<IpAddr, score::Host>,
    window: i64,
    responder_window: i64,
    many_names: usize,
    start: Option<i64>,
    last_expire: i64,
    pending: Vec<(Proto, String, bool, Owner)>,
    /// Positive answers checked.
    pub answers: u64,
    /// Queries recorded.
    pub queries_seen: u64,
    /// mDNS announcements and probes learned.
    pub announcements: u64,
    /// Claims dropped because the pending list was full.
    pub pending_dropped: u64,
}

impl PoisonState {
    pub(crate) fn new(cfg: &WatchConfig) -> Self {
        PoisonState {
            queries: CappedMap::new(cfg.max_queries),
            hosts: CappedMap::new(cfg.max_hosts),
            window: i64::from(cfg.query_window_secs),
            responder_window: i64::from(cfg.responder_window_secs),
            many_names: cfg.many_names.max(1) as usize,
            start: None,
            last_expire: i64::MIN,
            pending: Vec::new(),
            answers: 0,
            queries_seen: 0,
            announcements: 0,
            pending_dropped: 0,
        }
    }

    pub(crate) fn stats(&self) -> Value {
        json!({
            "queries": {"len": self.queries.len(), "max": self.queries.max(), "evicted": self.queries.evicted},
            "hosts": {"len": self.hosts.len(), "max": self.hosts.max(), "evicted": self.hosts.evicted},
            "answers": self.answers,
            "queries_seen": self.queries_seen,
            "announcements": self.announcements,
            "pending_dropped": self.pending_dropped,
        })
    }

    /// Notes the capture time; expires old queries once per window.
    fn tick(&mut self, now: i64) {
        if self.start.is_none() {
            self.start = Some(now);
        }
        if now.saturating_sub(self.last_expire) >= self.window.max(1) {
            self.queries.expire(now.saturating_sub(self.window));
            self.last_expire = now;
        }
    }

    fn learn_later(&mut self, proto: Proto, name: String, group: bool, owner: Owner) {
        if self.pending.len() >= MAX_PENDING {
            self.pending_dropped += 1;
            return;
        }
        self.pending.push((proto, name, group, owner));
    }

    fn record_query(&mut self, key: (Proto, u16, String), q: Query) {
        self.queries_seen += 1;
        let now = q.secs;
        let window = self.window;
        let slot = self.queries.entry(key, now, || q.clone());
        if slot.frame != q.frame {
            // A retransmission (same querier and txid within the window) keeps the
            // responders seen so far.
            let again = slot.querier == q.querier && now.saturating_sub(slot.secs) <= window;
            let responders = std::mem::take(&mut slot.responders);
            *slot = q;
            if again {
                slot.responders = responders;
            }
        }
    }
}

/// One positive answer for one name.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub proto: Proto,
    /// Canonical name (see [`crate::state::NameTable`]).
    pub name: String,
    /// Host part, lower case, NBNS suffix and DNS domain stripped.
    pub host: String,
    /// NBNS suffix.
    pub suffix: Option<u8>,
    /// NBNS group bit.
    pub group: bool,
    pub txid: u16,
    pub addrs: Vec<IpAddr>,
}

/// `NAME<xx>` (plus `.scope`), the NBNS canonical name.
pub fn nbns_name(n: &nbdgm_wire::Name) -> String {
    let mut s = format!("{}<{:02X}>", n.name(), n.suffix());
    if !n.scope().is_empty() {
        s.push('.');
        s.push_str(n.scope());
    }
    s
}

fn ip_strings(a: &[IpAddr]) -> Vec<String> {
    a.iter().map(|x| x.to_string()).collect()
}

pub(crate) fn on_nbns(e: &mut Engine, p: &Packet<'_>, m: &nbns::Packet, out: &mut Vec<Alert>) {
    let now = p.time.secs;
    e.poison.tick(now);
    if m.opcode() != Opcode::Query {
        return;
    }
    if !m.is_response() {
        for q in m.questions.iter().filter(|q| q.qtype == TYPE_NB) {
            let q2 = Query {
                querier: p.src.ip(),
                broadcast: m.is_broadcast(),
                frame: p.frame,
                secs: now,
                responders: Vec::new(),
            };
            e.poison
                .record_query((Proto::Nbns, m.id, nbns_name(&q.name)), q2);
        }
        return;
    }
    if m.rcode() != 0 {
        return;
    }
    for rr in m.answers.iter().filter(|r| r.rr_type == TYPE_NB) {
        let RData::Nb(entries) = &rr.rdata else {
            continue;
        };
        if entries.is_empty() {
            continue;
        }
        let a = Answer {
            proto: Proto::Nbns,
            name: nbns_name(&rr.name),
            host: rr.name.name().to_ascii_lowercase(),
            suffix: Some(rr.name.suffix()),
            group: entries.iter().any(|x| x.is_group()),
            txid: m.id,
            addrs: entries.iter().map(|x| IpAddr::V4(x.ip)).collect(),
        };
        check_answer(e, p, &a, out);
    }
}

pub(crate) fn learn_nbns(e: &mut Engine, p: &Packet<'_>, m: &nbns::Packet) {
    let src = p.src.ip();
    let now = p.time.secs;
    let server = e.cfg.name_servers.contains(&src);
    let records = m.answers.iter().chain(m.additional.iter());
    match (m.opcode(), m.is_response()) {
        (Opcode::Registration | Opcode::Refresh(_) | Opcode::MultiHomedRegistration, false) => {
            for rr in records {
                if let RData::Nb(entries) = &rr.rdata {
                    let name = nbns_name(&rr.name);
                    for x in entries {
                        let owner = Owner {
                            addr: IpAddr::V4(x.ip),
                            claim: Claim::Registered,
                            frame: p.frame,
                            secs: now,
                        };
                        e.names.claim(Proto::Nbns, &name, x.is_group(), owner);
                    }
                }
            }
        }
        (Opcode::Registration | Opcode::MultiHomedRegistration, true)
            if matches!(m.rcode(), 6 | 7) && !server =>
        {
            for rr in m.answers.iter() {
                let group = matches!(&rr.rdata, RData::Nb(v) if v.iter().any(|x| x.is_group()));
                let owner = Owner {
                    addr: src,
                    claim: Claim::Defended,
                    frame: p.frame,
                    secs: now,
                };
                e.names
                    .claim(Proto::Nbns, &nbns_name(&rr.name), group, owner);
            }
        }
        (Opcode::Release, false) => {
            for rr in records {
                let name = nbns_name(&rr.name);
                if let RData::Nb(entries) = &rr.rdata {
                    for x in entries {
                        e.names.release(Proto::Nbns, &name, IpAddr::V4(x.ip));
                    }
                }
                e.names.release(Proto::Nbns, &name, src);
            }
        }
        _ => {}
    }
    apply_pending(e);
}

pub(crate) fn on_dns(
    e: &mut Engine,
    p: &Packet<'_>,
    proto: Proto,
    m: &crate::dns::Message,
    out: &mut Vec<Alert>,
) {
    let now = p.time.secs;
    e.poison.tick(now);
    if m.flags.opcode != 0 {
        return;
    }
    let src = p.src.ip();
    if !m.flags.qr {
        for q in &m.questions {
            let q2 = Query {
                querier: src,
                broadcast: false,
                frame: p.frame,
                secs: now,
                responders: Vec::new(),
            };
            e.poison.record_query((proto, m.id, q.name.clone()), q2);
        }
        // mDNS probes (RFC 6762 §8.1) propose their records in the authority section.
        if proto == Proto::Mdns {
            for r in m.authority.iter().filter(|r| r.addr.is_some()) {
                announce(e, p, &r.name);
            }
        }
        return;
    }
    if m.flags.rcode != 0 {
        return;
    }
    // One answer per name, with all its addresses.
    let mut by_name: Vec<(String, Vec<IpAddr>)> = Vec::new();
    for r in &m.answers {
        let Some(addr) = r.addr else { continue };
        match by_name.iter_mut().find(|(n, _)| *n == r.name) {
            Some((_, v)) => v.push(addr),
            None => by_name.push((r.name.clone(), vec![addr])),
        }
    }
    for (name, addrs) in by_name {
        let queried = e
            .poison
            .queries
            .get(&(proto, m.id, name.clone()))
            .is_some_and(|q| now.saturating_sub(q.secs) <= e.poison.window);
        let host = name.split('.').next().unwrap_or("").to_owned();
        let a = Answer {
            proto,
            name,
            host,
            suffix: None,
            group: false,
            txid: m.id,
            addrs,
        };
        if proto == Proto::Mdns && !queried {
            // An unsolicited mDNS response is an announcement (RFC 6762 §8.3), unless it
            // answers a honey query the capture did not see.
            if crate::honey::on_answer(e, p, proto, &a.name, a.txid, &a.addrs, out) {
                score::step(e, p, p.src.ip(), "honey", &a, out);
            } else {
                announce(e, p, &a.name);
            }
            continue;
        }
        check_answer(e, p, &a, out);
    }
}

/// An mDNS announcement or probe: the sender registers the name unless another host
/// already did.
fn announce(e: &mut Engine, p: &Packet<'_>, name: &str) {
    let src = p.src.ip();
    let taken = e.names.get(Proto::Mdns, name).is_some_and(|n| {
        n.owners
            .iter()
            .any(|o| o.addr != src && o.claim != Claim::Answered)
    });
    if taken {
        return;
    }
    e.poison.announcements += 1;
    let owner = Owner {
        addr: src,
        claim: Claim::Registered,
        frame: p.frame,
        secs: p.time.secs,
    };
    e.poison
        .learn_later(Proto::Mdns, name.to_owned(), false, owner);
}

pub(crate) fn learn_dns(e: &mut Engine, p: &Packet<'_>, proto: Proto, m: &crate::dns::Message) {
    apply_pending(e);
    // mDNS goodbye: a record with TTL 0 withdraws the name (RFC 6762 §10.1).
    if proto == Proto::Mdns && m.flags.qr {
        for r in m.answers.iter().filter(|r| r.ttl == 0 && r.addr.is_some()) {
            e.names.release(Proto::Mdns, &r.name, p.src.ip());
        }
    }
}

fn apply_pending(e: &mut Engine) {
    for (proto, name, group, owner) in std::mem::take(&mut e.poison.pending) {
        e.names.claim(proto, &name, group, owner);
    }
}

/// WPAD or ISATAP?
fn special(a: &Answer) -> Option<(&'static signature::Signature, &'static str)> {
    let suffix_ok = a.suffix.is_none_or(|s| s == 0x00 || s == 0x20);
    match a.host.as_str() {
        "wpad" if suffix_ok => Some((&signature::WPAD_ANSWERED, "wpad")),
        "isatap" if suffix_ok => Some((&signature::ISATAP_ANSWERED, "isatap")),
        _ => None,
    }
}

/// Does `ip` own `host` as its own name: registered or announced on any protocol
/// (an undoubted answer is not enough), or as its NBNS name?
fn host_owns(e: &Engine, ip: IpAddr, host: &str) -> bool {
    let firm = |n: Option<&NameEntry>| {
        n.is_some_and(|n| {
            n.owners
                .iter()
                .any(|o| o.addr == ip && o.claim != Claim::Answered)
        })
    };
    let up = host.to_ascii_uppercase();
    [0x00u8, 0x20]
        .iter()
        .any(|s| firm(e.names.get(Proto::Nbns, &format!("{up}<{s:02X}>"))))
        || firm(e.names.get(Proto::Llmnr, host))
        || firm(e.names.get(Proto::Mdns, &format!("{host}.local")))
}

/// Every check of one positive answer.
fn check_answer(e: &mut Engine, p: &Packet<'_>, a: &Answer, out: &mut Vec<Alert>) {
    let ip = p.src.ip();
    let now = p.time.secs;
    e.poison.answers += 1;
    if crate::honey::on_answer(e, p, a.proto, &a.name, a.txid, &a.addrs, out) {
        score::step(e, p, ip, "honey", a, out);
        return;
    }
    if e.cfg.name_servers.contains(&ip) || e.cfg.trusted_responders.contains(&ip) {
        return;
    }
    let before = out.len();
    let entry = e.names.get(a.proto, &a.name).cloned();
    let group = a.group || entry.as_ref().is_some_and(|n| n.group);
    // The sender, or the address it answers with (a multi-homed host answering over
    // IPv4 with its IPv6 address), owns the name.
    let owned = entry
        .as_ref()
        .is_some_and(|n| n.owned_by(ip) || a.addrs.iter().any(|x| n.owned_by(*x)));
    let own_host = host_owns(e, ip, &a.host) || a.addrs.iter().any(|x| host_owns(e, *x, &a.host));
    let others_own = entry
        .as_ref()
        .is_some_and(|n| n.owners.iter().any(|o| o.addr != ip));
    let addrs = ip_strings(&a.addrs);
    let base = |sig: &'static signature::Signature| {
        Alert::new(sig, p)
            .with("protocol", a.proto.as_str())
            .with("name", a.name.as_str())
            .with("txid", a.txid)
            .with("answered_addresses", addrs.clone())
            .with("frame", p.frame)
            .key(a.name.as_str())
    };

    if let Some((sig, kind)) = special(a) {
        let not_owner = !owned && !own_host;
        let sev = if not_owner {
            Severity::High
        } else {
            Severity::Medium
        };
        out.push(base(sig).with("owner", !not_owner).severity(sev));
        // Its owner answering is no evidence against it.
        if not_owner {
            score::step(e, p, ip, kind, a, out);
        }
    }

    // The frame of the query this answers, if seen within the window.
    let key = (a.proto, a.txid, a.name.clone());
    let window = e.poison.window;
    let qframe = e
        .poison
        .queries
        .get(&key)
        .filter(|q| now.saturating_sub(q.secs) <= window)
        .map(|q| q.frame);
    // An undoubted answer makes an owner only if it answered an earlier query (not a
    // rival answer to this one) and its sender is no suspect.
    let firm = |o: &Owner, e: &Engine| {
        o.claim != Claim::Answered
            || (qframe.is_none_or(|f| o.frame < f) && !score::is_suspect(&e.poison, o.addr))
    };

    if !group && !owned {
        let earlier = entry
            .as_ref()
            .and_then(|n| n.owners.iter().find(|o| firm(o, e)));
        if let Some(o) = earlier {
            out.push(base(&signature::ANSWER_NOT_OWNER).with(
                "earlier_owner",
                json!({"address": o.addr.to_string(), "how": o.claim.as_str(), "frame": o.frame}),
            ));
            score::step(e, p, ip, "not-owner", a, out);
        }
    }

    if a.proto == Proto::Nbns && entry.is_none() && !group {
        out.push(base(&signature::ANSWER_UNREGISTERED).with(
            "note",
            "no registration seen on the wire; the capture may have started after it",
        ));
        score::step(e, p, ip, "unregistered", a, out);
    }

    let query = e
        .poison
        .queries
        .get_mut(&key, now)
        .filter(|q| now.saturating_sub(q.secs) <= window);
    match query {
        Some(q) => {
            // A multi-homed host lists all its addresses, its sender's among them.
            let mismatch: Vec<String> =
                if q.broadcast && a.proto == Proto::Nbns && !a.addrs.contains(&ip) {
                    a.addrs
                        .iter()
                        .filter(|x| **x != ip)
                        .map(|x| x.to_string())
                        .collect()
                } else {
                    Vec::new()
                };
            if !q.responders.iter().any(|r| r.0 == ip) && q.responders.len() < MAX_RESPONDERS {
                q.responders.push((ip, a.addrs.clone(), p.frame));
            }
            let responders = q.responders.clone();
            let querier = q.querier;
            let qframe0 = q.frame;
            if !mismatch.is_empty() {
                out.push(
                    base(&signature::ANSWER_ADDRESS_MISMATCH)
                        .with("mismatched_addresses", mismatch),
                );
            }
            let differ = responders.iter().any(|r| {
                let mut x = r.1.clone();
                let mut y = responders[0].1.clone();
                x.sort();
                y.sort();
                x != y
            });
            if responders.len() >= 2 && differ {
                let list: Vec<Value> = responders
                    .iter()
                    .map(|r| json!({"address": r.0.to_string(), "answered_addresses": ip_strings(&r.1), "frame": r.2}))
                    .collect();
                out.push(
                    base(&signature::MULTIPLE_RESPONDERS)
                        .with("responders", list)
                        .with("querier", querier.to_string())
                        .with("query_frame", qframe0)
                        .key(format!("{}:{}:{}", a.proto.as_str(), a.txid, a.name)),
                );
                // A non-owner answering together with the real owner.
                let owner_of = |x: IpAddr| {
                    entry
                        .as_ref()
                        .is_some_and(|n| n.owners.iter().any(|o| o.addr == x && firm(o, e)))
                        || host_owns(e, x, &a.host)
                };
                let owners_answered = responders.iter().any(|r| owner_of(r.0));
                let suspects: Vec<IpAddr> = responders
                    .iter()
                    .map(|r| r.0)
                    .filter(|x| !owner_of(*x))
                    .collect();
                if owners_answered {
                    for s in suspects {
                        score::step(e, p, s, "with-owner", a, out);
                    }
                }
                // Rival answers to one query: none of them proves ownership.
                for r in &responders {
                    let rival = entry.as_ref().is_some_and(|n| {
                        n.owners.iter().any(|o| {
                            o.addr == r.0 && o.claim == Claim::Answered && o.frame >= qframe0
                        })
                    });
                    if rival {
                        e.names.release(a.proto, &a.name, r.0);
                    }
                }
            }
        }
        None => {
            let started = e.poison.start.unwrap_or(now);
            if a.proto != Proto::Mdns && now.saturating_sub(started) >= window {
                out.push(base(&signature::UNSOLICITED_ANSWER));
            }
        }
    }

    if !owned && !own_host {
        score::unowned(e, p, a, others_own, out);
    }

    let flagged = out.len() > before || score::is_suspect(&e.poison, ip);
    if !flagged {
        let mut addrs = vec![ip];
        addrs.extend(a.addrs.iter().copied().filter(|x| *x != ip));
        for addr in addrs.into_iter().take(NameEntry::MAX_OWNERS / 2) {
            let owner = Owner {
                addr,
                claim: Claim::Answered,
                frame: p.frame,
                secs: now,
            };
            e.poison.learn_later(a.proto, a.name.clone(), group, owner);
        }
    }
}
