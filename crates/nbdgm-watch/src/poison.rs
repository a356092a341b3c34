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

/// What the name table says about one answer, taken before any check of it.
struct Standing {
    /// The name's entry for the answer's protocol.
    entry: Option<NameEntry>,
    /// A group name (answered as one, or known as one).
    group: bool,
    /// The sender, or an address it answers with, owns the name.
    owned: bool,
    /// The sender, or an address it answers with, owns the host name on any protocol.
    own_host: bool,
    /// Some other host owns the name.
    others_own: bool,
}

impl Standing {
    fn of(e: &Engine, ip: IpAddr, a: &Answer) -> Standing {
        let entry = e.names.get(a.proto, &a.name).cloned();
        let group = a.group || entry.as_ref().is_some_and(|n| n.group);
        // A multi-homed host answering over IPv4 with its IPv6 address owns it too.
        let owned = entry
            .as_ref()
            .is_some_and(|n| n.owned_by(ip) || a.addrs.iter().any(|x| n.owned_by(*x)));
        let own_host =
            host_owns(e, ip, &a.host) || a.addrs.iter().any(|x| host_owns(e, *x, &a.host));
        let others_own = entry
            .as_ref()
            .is_some_and(|n| n.owners.iter().any(|o| o.addr != ip));
        Standing {
            entry,
            group,
            owned,
            own_host,
            others_own,
        }
    }
}

/// An alert about answer `a` with the evidence every poisoning alert carries.
fn base(sig: &'static signature::Signature, p: &Packet<'_>, a: &Answer) -> Alert {
    Alert::new(sig, p)
        .with("protocol", a.proto.as_str())
        .with("name", a.name.as_str())
        .with("txid", a.txid)
        .with("answered_addresses", ip_strings(&a.addrs))
        .with("frame", p.frame)
        .key(a.name.as_str())
}

/// The key of the query `a` answers in [`PoisonState::queries`].
fn query_key(a: &Answer) -> (Proto, u16, String) {
    (a.proto, a.txid, a.name.clone())
}

/// An undoubted answer makes an owner only if it answered an earlier query (not a rival
/// answer to this one, whose query is frame `qframe`) and its sender is no suspect.
fn firm(o: &Owner, qframe: Option<u64>, e: &Engine) -> bool {
    o.claim != Claim::Answered
        || (qframe.is_none_or(|f| o.frame < f) && !score::is_suspect(&e.poison, o.addr))
}

/// Every check of one positive answer.
fn check_answer(e: &mut Engine, p: &Packet<'_>, a: &Answer, out: &mut Vec<Alert>) {
    let ip = p.src.ip();
    e.poison.answers += 1;
    if crate::honey::on_answer(e, p, a.proto, &a.name, a.txid, &a.addrs, out) {
        score::step(e, p, ip, "honey", a, out);
        return;
    }
    if e.cfg.name_servers.contains(&ip) || e.cfg.trusted_responders.contains(&ip) {
        return;
    }
    let before = out.len();
    let st = Standing::of(e, ip, a);
    check_special(e, p, a, &st, out);
    let qframe = query_frame(e, p, a);
    check_owner(e, p, a, &st, qframe, out);
    check_query(e, p, a, &st, qframe, out);
    if !st.owned && !st.own_host {
        score::unowned(e, p, a, st.others_own, out);
    }
    if out.len() == before && !score::is_suspect(&e.poison, ip) {
        learn_answer(e, p, a, st.group);
    }
}

/// WPAD or ISATAP answered (1138109, 1138110): high from a non-owner, who also takes a
/// poisoner step.
fn check_special(e: &mut Engine, p: &Packet<'_>, a: &Answer, st: &Standing, out: &mut Vec<Alert>) {
    let Some((sig, kind)) = special(a) else {
        return;
    };
    let not_owner = !st.owned && !st.own_host;
    let sev = if not_owner {
        Severity::High
    } else {
        Severity::Medium
    };
    out.push(base(sig, p, a).with("owner", !not_owner).severity(sev));
    // Its owner answering is no evidence against it.
    if not_owner {
        score::step(e, p, p.src.ip(), kind, a, out);
    }
}

/// The frame of the query `a` answers, if seen within the window.
fn query_frame(e: &Engine, p: &Packet<'_>, a: &Answer) -> Option<u64> {
    let now = p.time.secs;
    e.poison
        .queries
        .get(&query_key(a))
        .filter(|q| now.saturating_sub(q.secs) <= e.poison.window)
        .map(|q| q.frame)
}

/// A unique name answered by a host other than its firm owner (1138101), and an NBNS
/// name never registered (1138102).
fn check_owner(
    e: &mut Engine,
    p: &Packet<'_>,
    a: &Answer,
    st: &Standing,
    qframe: Option<u64>,
    out: &mut Vec<Alert>,
) {
    let ip = p.src.ip();
    if !st.group && !st.owned {
        let earlier = st
            .entry
            .as_ref()
            .and_then(|n| n.owners.iter().find(|o| firm(o, qframe, e)));
        if let Some(o) = earlier {
            out.push(base(&signature::ANSWER_NOT_OWNER, p, a).with(
                "earlier_owner",
                json!({"address": o.addr.to_string(), "how": o.claim.as_str(), "frame": o.frame}),
            ));
            score::step(e, p, ip, "not-owner", a, out);
        }
    }
    if a.proto == Proto::Nbns && st.entry.is_none() && !st.group {
        out.push(base(&signature::ANSWER_UNREGISTERED, p, a).with(
            "note",
            "no registration seen on the wire; the capture may have started after it",
        ));
        score::step(e, p, ip, "unregistered", a, out);
    }
}

/// What answering query `q` adds: the addresses that differ from the sender of an answer to
/// a broadcast NBNS query, and the responders so far (this one added).
struct Answered {
    mismatch: Vec<String>,
    responders: Vec<(IpAddr, Vec<IpAddr>, u64)>,
    querier: IpAddr,
    query_frame: u64,
}

/// Notes the sender as a responder to the query `a` answers; `None` if no such query was
/// seen within the window.
fn note_responder(e: &mut Engine, p: &Packet<'_>, a: &Answer) -> Option<Answered> {
    let (ip, now, window) = (p.src.ip(), p.time.secs, e.poison.window);
    let q = e
        .poison
        .queries
        .get_mut(&query_key(a), now)
        .filter(|q| now.saturating_sub(q.secs) <= window)?;
    // A multi-homed host lists all its addresses, its sender's among them.
    let mismatch: Vec<String> = if q.broadcast && a.proto == Proto::Nbns && !a.addrs.contains(&ip) {
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
    Some(Answered {
        mismatch,
        responders: q.responders.clone(),
        querier: q.querier,
        query_frame: q.frame,
    })
}

/// Checks against the query answered: address mismatch (1138103), multiple responders
/// (1138104), or no query at all (1138105, not for mDNS).
fn check_query(
    e: &mut Engine,
    p: &Packet<'_>,
    a: &Answer,
    st: &Standing,
    qframe: Option<u64>,
    out: &mut Vec<Alert>,
) {
    let now = p.time.secs;
    let Some(q) = note_responder(e, p, a) else {
        let started = e.poison.start.unwrap_or(now);
        if a.proto != Proto::Mdns && now.saturating_sub(started) >= e.poison.window {
            out.push(base(&signature::UNSOLICITED_ANSWER, p, a));
        }
        return;
    };
    if !q.mismatch.is_empty() {
        out.push(
            base(&signature::ANSWER_ADDRESS_MISMATCH, p, a)
                .with("mismatched_addresses", q.mismatch.clone()),
        );
    }
    let differ = q.responders.iter().any(|r| {
        let mut x = r.1.clone();
        let mut y = q.responders[0].1.clone();
        x.sort();
        y.sort();
        x != y
    });
    if q.responders.len() >= 2 && differ {
        multiple_responders(e, p, a, st, qframe, &q, out);
    }
}

/// Different answers to one query (1138104): a poisoner step for each non-owner that
/// answered together with an owner; none of the rival answers makes an owner.
fn multiple_responders(
    e: &mut Engine,
    p: &Packet<'_>,
    a: &Answer,
    st: &Standing,
    qframe: Option<u64>,
    q: &Answered,
    out: &mut Vec<Alert>,
) {
    let list: Vec<Value> = q
        .responders
        .iter()
        .map(|r| json!({"address": r.0.to_string(), "answered_addresses": ip_strings(&r.1), "frame": r.2}))
        .collect();
    out.push(
        base(&signature::MULTIPLE_RESPONDERS, p, a)
            .with("responders", list)
            .with("querier", q.querier.to_string())
            .with("query_frame", q.query_frame)
            .key(format!("{}:{}:{}", a.proto.as_str(), a.txid, a.name)),
    );
    let owner_of = |x: IpAddr, e: &Engine| {
        st.entry
            .as_ref()
            .is_some_and(|n| n.owners.iter().any(|o| o.addr == x && firm(o, qframe, e)))
            || host_owns(e, x, &a.host)
    };
    let owners_answered = q.responders.iter().any(|r| owner_of(r.0, e));
    let suspects: Vec<IpAddr> = q
        .responders
        .iter()
        .map(|r| r.0)
        .filter(|x| !owner_of(*x, e))
        .collect();
    if owners_answered {
        for s in suspects {
            score::step(e, p, s, "with-owner", a, out);
        }
    }
    for r in &q.responders {
        let rival = st.entry.as_ref().is_some_and(|n| {
            n.owners
                .iter()
                .any(|o| o.addr == r.0 && o.claim == Claim::Answered && o.frame >= q.query_frame)
        });
        if rival {
            e.names.release(a.proto, &a.name, r.0);
        }
    }
}

/// An answer that raised nothing makes its sender (and the addresses it answered with)
/// owners by answer, learned after the packet.
fn learn_answer(e: &mut Engine, p: &Packet<'_>, a: &Answer, group: bool) {
    let ip = p.src.ip();
    let mut addrs = vec![ip];
    addrs.extend(a.addrs.iter().copied().filter(|x| *x != ip));
    for addr in addrs.into_iter().take(NameEntry::MAX_OWNERS / 2) {
        let owner = Owner {
            addr,
            claim: Claim::Answered,
            frame: p.frame,
            secs: p.time.secs,
        };
        e.poison.learn_later(a.proto, a.name.clone(), group, owner);
    }
}
