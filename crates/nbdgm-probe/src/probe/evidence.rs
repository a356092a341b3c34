//! What a probe saw ([`Evidence`]) and the state it means ([`decide`]); `docs/probe.md`
//! has the table.

use super::icmp::{errno_text, IcmpError, ICMP_DEST_UNREACH, SO_EE_ORIGIN_ICMP};
use super::{Port, PortResult, PortState};
use std::io;
use std::time::Duration;

/// Longest evidence text kept.
pub const MAX_EVIDENCE_LEN: usize = 400;

/// What a probe saw, before it is turned into a [`PortState`] by [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// A UDP answer, or a completed TCP handshake (with what followed).
    Answer(String),
    /// TCP connection refused by a reset.
    Reset,
    /// An ICMP error (or local error) from the socket's error queue.
    Icmp(IcmpError),
    /// A socket error without error-queue detail.
    Errno { errno: i32, during: String },
    /// Nothing came back.
    Silence {
        attempts: u32,
        waited_ms: u64,
        sent: String,
    },
    /// The probe could not be made (bad option, socket failure, ...).
    Failed(String),
}

/// The state and evidence text for what a probe saw. `ns_answered`: 137/udp of the same
/// host answered (a silent 138/udp stays `open|filtered`, with that said in its evidence;
/// `likely-open` is no longer produced, docs/probe.md "States").
pub fn decide(port: Port, ev: &Evidence, ns_answered: bool) -> (PortState, String) {
    use PortState::*;
    match ev {
        Evidence::Answer(s) => (Open, s.clone()),
        Evidence::Reset => (Closed, "TCP reset (connection refused)".into()),
        Evidence::Icmp(icmp) => {
            let text = icmp.to_string();
            if icmp.origin != SO_EE_ORIGIN_ICMP {
                let (state, _) = decide(
                    port,
                    &Evidence::Errno {
                        errno: icmp.errno,
                        during: String::new(),
                    },
                    ns_answered,
                );
                return (state, text);
            }
            let state = match (icmp.icmp_type, icmp.code) {
                (ICMP_DEST_UNREACH, 3) => Closed,
                (ICMP_DEST_UNREACH, 0 | 1 | 5 | 6 | 7 | 8 | 11 | 12) => HostDown,
                (ICMP_DEST_UNREACH, 2 | 9 | 10 | 13 | 14 | 15) => Filtered,
                _ => Error,
            };
            (state, text)
        }
        Evidence::Errno { errno, during } => {
            use nix::errno::Errno as E;
            let e = E::from_raw(*errno);
            let state = match e {
                E::ECONNREFUSED => Closed,
                E::EHOSTUNREACH | E::ENETUNREACH | E::EHOSTDOWN | E::ENONET => HostDown,
                E::EPERM => Filtered,
                E::ETIMEDOUT => Filtered,
                _ => Error,
            };
            let mut text = errno_text(*errno);
            if e == E::EPERM {
                text.push_str(": a local firewall refused the packet");
            }
            if !during.is_empty() {
                text = format!("{during}: {text}");
            }
            (state, text)
        }
        Evidence::Silence {
            attempts,
            waited_ms,
            sent,
        } => {
            let base = format!("no answer to {attempts} {sent} in {waited_ms} ms");
            match port {
                // Not `likely-open` (before issue 16): nmbd and NetBT bind 138 with 137, but a
                // filter on 138 alone is silent in the same way, so silence is all there is.
                Port::Dgm138Udp if ns_answered => (
                    OpenFiltered,
                    format!(
                        "{base} and no ICMP error; 137/udp answered (nmbd and NetBT listen on \
                         138 beside 137 and nmbd answers GetBackupList only as local master \
                         browser, but a filter on 138 alone is just as silent)"
                    ),
                ),
                Port::Ns137Udp | Port::Dgm138Udp => {
                    (OpenFiltered, format!("{base} and no ICMP error"))
                }
                _ => (Filtered, format!("{base} (no SYN-ACK, no reset, no ICMP)")),
            }
        }
        Evidence::Failed(s) => (Error, s.clone()),
    }
}

/// Whether a result with this state and evidence text (as [`decide`] writes them) rests on
/// silence alone: `open|filtered`, `likely-open`, and `filtered` by timeout (not by an ICMP
/// error or a local firewall).
pub fn by_silence(state: PortState, evidence: &str) -> bool {
    match state {
        PortState::OpenFiltered | PortState::LikelyOpen => true,
        PortState::Filtered => {
            evidence.starts_with("no answer to ") || evidence.contains("(ETIMEDOUT)")
        }
        _ => false,
    }
}

/// Adjust a result of a host that discovery proved up (`proof`, e.g. `ARP reply from MAC`):
/// every state that rests on silence gets `; host up: PROOF` appended, and a 137/udp that
/// stayed silent to every NODE STATUS request, without an ICMP error, becomes `filtered`:
/// the host is there, and a NetBIOS name service answers NODE STATUS for `*` (RFC 1002
/// §4.2.17–4.2.18; nmbd and Windows NetBT do), so the requests were dropped before any name
/// service saw them (docs/probe.md "States"). 138/udp stays `open|filtered`: a listening
/// datagram service is silent too.
///
/// `fresh`: the proof is of now (an ARP reply to our request, a `REACHABLE` or `PERMANENT`
/// neighbour entry). A `STALE`/`DELAY`/`PROBE` entry only says the host was there a while ago,
/// so it annotates but does not turn 137/udp into `filtered` (a host gone since is silent too).
pub fn on_live_host(r: &mut PortResult, proof: &str, fresh: bool) {
    if !by_silence(r.state, &r.evidence) {
        return;
    }
    let nbstat_silence = fresh
        && r.port == Port::Ns137Udp
        && r.state == PortState::OpenFiltered
        && r.evidence.starts_with("no answer to ")
        && r.evidence.contains("NODE STATUS");
    if nbstat_silence {
        r.state = PortState::Filtered;
        r.evidence = clean(&format!(
            "{}; host up: {proof}; a NetBIOS name service answers NODE STATUS, so a filter \
             drops it",
            r.evidence
        ));
    } else {
        r.evidence = clean(&format!("{}; host up: {proof}", r.evidence));
    }
}

/// Bounded evidence: at most [`MAX_EVIDENCE_LEN`] characters (then `…`). The text is kept
/// as received (JSON is exact); text output escapes it ([`nbdgm_wire::text::escape`]).
pub fn clean(s: &str) -> String {
    match s.char_indices().nth(MAX_EVIDENCE_LEN) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

pub(super) fn port_result(
    port: Port,
    ev: &Evidence,
    ns_answered: bool,
    rtt: Option<Duration>,
    attempts: u32,
) -> PortResult {
    let (state, evidence) = decide(port, ev, ns_answered);
    PortResult {
        port,
        state,
        evidence: clean(&evidence),
        rtt_ms: rtt.map(ms),
        attempts,
    }
}

pub(super) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

pub(super) fn io_evidence(e: &io::Error, during: &str) -> Evidence {
    match e.raw_os_error() {
        Some(errno) => Evidence::Errno {
            errno,
            during: during.to_string(),
        },
        None => Evidence::Failed(format!("{during}: {e}")),
    }
}
