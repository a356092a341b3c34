//! Per-responder evidence: names answered that the host does not own (many-names,
//! cross-protocol), and the poisoner confidence score raised step by step (the
//! Responder/Inveigh pattern of answering LLMNR, NBNS and mDNS queries for any name).

use super::Answer;
use crate::alert::{Alert, Severity};
use crate::engine::Engine;
use crate::packet::Packet;
use crate::signature;
use crate::state::Proto;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};

/// Names remembered per host (answered-not-owned, cross-protocol).
pub const MAX_HOST_NAMES: usize = 64;
/// Evidence steps listed per host.
pub const MAX_STEPS: usize = 32;
/// Distinct evidence keys remembered per host (points stop past this).
pub const MAX_STEP_KEYS: usize = 128;
/// Score of the Low, Medium and High poisoner levels.
/// Unregistered answers alone (1 point) are no step: captures start late.
pub const LEVELS: [(u32, Severity); 3] = [
    (9, Severity::High),
    (5, Severity::Medium),
    (2, Severity::Low),
];

/// One piece of evidence against a host.
#[derive(Debug, Clone)]
pub struct Step {
    /// `not-owner`, `unregistered`, `many-names`, `cross-protocol`, `wpad`, `isatap`,
    /// `with-owner`, `honey`.
    pub kind: &'static str,
    /// The name (canonical).
    pub name: String,
    /// The protocol of the answer.
    pub proto: Proto,
    /// Its frame.
    pub frame: u64,
}

/// What one responding host did.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// Host parts of names answered but not owned, with the last time.
    pub unowned: Vec<(String, i64)>,
    /// Host part -> protocols (bit per [`Proto`]) it was answered over, not owned.
    pub cross: Vec<(String, u8)>,
    /// The first name answered over two protocols that nobody else owns: taken as the
    /// host's own name (capture started after its registration) until a second one
    /// shows the host answers for others.
    pub own_guess: Option<String>,
    /// Size of the unowned set at the last many-names alert (the next one needs twice
    /// as many).
    pub many_alerted: usize,
    /// Evidence steps, oldest first (at most [`MAX_STEPS`]).
    pub steps: Vec<Step>,
    /// Steps past [`MAX_STEPS`], counted.
    pub steps_dropped: u64,
    keys: Vec<String>,
    /// Confidence score.
    pub score: u32,
    /// The highest level emitted.
    pub level: Option<Severity>,
}

fn points(kind: &str) -> u32 {
    match kind {
        "honey" => 5,
        "not-owner" | "with-owner" | "cross-protocol" | "many-names" => 3,
        "wpad" | "isatap" => 2,
        _ => 1,
    }
}

fn bit(p: Proto) -> u8 {
    match p {
        Proto::Nbns => 1,
        Proto::Llmnr => 2,
        Proto::Mdns => 4,
    }
}

fn port(p: Proto) -> u16 {
    match p {
        Proto::Nbns => 137,
        Proto::Llmnr => 5355,
        Proto::Mdns => 5353,
    }
}

/// Has `ip` any evidence against it?
pub(crate) fn is_suspect(s: &super::PoisonState, ip: IpAddr) -> bool {
    s.hosts.get(&ip).is_some_and(|h| h.score > 0)
}

/// Adds one piece of evidence against `ip` (once per kind, name and protocol; once per
/// name for cross-protocol; once for many-names and unregistered) and emits POISONER,
/// with every step so far, when the level rises (a jump of two levels emits the higher).
pub(crate) fn step(
    e: &mut Engine,
    p: &Packet<'_>,
    ip: IpAddr,
    kind: &'static str,
    a: &Answer,
    out: &mut Vec<Alert>,
) {
    let now = p.time.secs;
    let key = match kind {
        "cross-protocol" => format!("{kind}|{}", a.host),
        // Servers answer for several names registered before the capture started: the
        // unregistered answers of one host count once.
        "many-names" | "unregistered" => kind.to_owned(),
        _ => format!("{kind}|{}|{}", a.proto.as_str(), a.name),
    };
    let h = e.poison.hosts.entry(ip, now, Host::default);
    if h.keys.contains(&key) || h.keys.len() >= MAX_STEP_KEYS {
        return;
    }
    h.keys.push(key);
    h.score = h.score.saturating_add(points(kind));
    let s = Step {
        kind,
        name: a.name.clone(),
        proto: a.proto,
        frame: p.frame,
    };
    if h.steps.len() < MAX_STEPS {
        h.steps.push(s);
    } else {
        h.steps_dropped += 1;
    }
    let Some(&(_, level)) = LEVELS.iter().find(|(min, _)| h.score >= *min) else {
        return;
    };
    if h.level.is_some_and(|l| l.at_least(level)) {
        return;
    }
    h.level = Some(level);
    let steps: Vec<Value> = h
        .steps
        .iter()
        .map(|s| json!({"kind": s.kind, "name": s.name, "protocol": s.proto.as_str(), "frame": s.frame}))
        .collect();
    let mut alert = Alert::new(&signature::POISONER, p)
        .severity(level)
        .with("score", h.score)
        .with("steps", steps)
        .with("steps_dropped", h.steps_dropped)
        .key(level.as_str());
    if ip != p.src.ip() {
        alert.src = SocketAddr::new(ip, port(a.proto));
    }
    out.push(alert);
}

/// `p`'s source answered `a` for a name it does not own: counts it towards
/// many-names and cross-protocol.
pub(crate) fn unowned(
    e: &mut Engine,
    p: &Packet<'_>,
    a: &Answer,
    others_own: bool,
    out: &mut Vec<Alert>,
) {
    let ip = p.src.ip();
    let now = p.time.secs;
    let window = e.poison.responder_window;
    let many = e.poison.many_names;
    let h = e.poison.hosts.entry(ip, now, Host::default);
    h.unowned.retain(|(_, t)| now.saturating_sub(*t) <= window);
    match h.unowned.iter_mut().find(|(n, _)| *n == a.host) {
        Some(x) => x.1 = now,
        None => {
            if h.unowned.len() >= MAX_HOST_NAMES {
                h.unowned.remove(0);
            }
            h.unowned.push((a.host.clone(), now));
        }
    }
    let n_unowned = h.unowned.len();
    let many_hit = (n_unowned >= many && n_unowned >= h.many_alerted.saturating_mul(2))
        .then(|| h.unowned.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>());
    if many_hit.is_some() {
        h.many_alerted = n_unowned;
    } else if n_unowned < many {
        // The names aged out of the window: a new burst alerts again.
        h.many_alerted = 0;
    }
    let mut grew = true;
    let mask = match h.cross.iter_mut().find(|(n, _)| *n == a.host) {
        Some(x) => {
            grew = x.1 & bit(a.proto) == 0;
            x.1 |= bit(a.proto);
            x.1
        }
        None => {
            if h.cross.len() >= MAX_HOST_NAMES {
                h.cross.remove(0);
            }
            h.cross.push((a.host.clone(), bit(a.proto)));
            bit(a.proto)
        }
    };
    // The host's own name, guessed: the first cross-protocol name nobody else owns.
    let mut cross = grew && mask.count_ones() >= 2;
    let mut forgiven = None;
    if cross && !others_own {
        match &h.own_guess {
            None => {
                h.own_guess = Some(a.host.clone());
                cross = false;
            }
            Some(g) if *g == a.host => cross = false,
            Some(g) => forgiven = Some(g.clone()),
        }
    }
    if let Some(names) = many_hit {
        out.push(
            Alert::new(&signature::MANY_NAMES_RESPONDER, p)
                .with("names", names.clone())
                .with("count", names.len())
                .with("window_secs", window)
                .with("frame", p.frame)
                .key(format!("{}", names.len())),
        );
        step(e, p, ip, "many-names", a, out);
    }
    if cross {
        let protos: Vec<&str> = [Proto::Nbns, Proto::Llmnr, Proto::Mdns]
            .iter()
            .filter(|x| mask & bit(**x) != 0)
            .map(|x| x.as_str())
            .collect();
        out.push(
            Alert::new(&signature::CROSS_PROTOCOL_RESPONDER, p)
                .with("name", a.host.as_str())
                .with("protocols", protos)
                .with("last_protocol", a.proto.as_str())
                .with("last_name", a.name.as_str())
                .with("frame", p.frame)
                .key(a.host.as_str()),
        );
        step(e, p, ip, "cross-protocol", a, out);
        // A second such name: the first was no proof of the host's own name either.
        if let Some(g) = forgiven {
            let first = Answer {
                name: g.clone(),
                host: g,
                ..a.clone()
            };
            step(e, p, ip, "cross-protocol", &first, out);
        }
    }
}
