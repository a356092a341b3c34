//! The NETLOGON mailslot ping, sans-IO (MS-ADTS §6.3.5 "DC location by mailslot ping",
//! requests §6.3.1.4 and §6.3.1.6, responses §6.3.1.5, §6.3.1.7–§6.3.1.9; DIGEST §7).
//!
//! - [`plan`]: which requests go to which names and how: LOGON_PRIMARY_QUERY and/or
//!   LOGON_SAM_LOGON_REQUEST to `<DOMAIN><1C>` (all DCs, DIRECT_GROUP broadcast),
//!   `<DOMAIN><1B>` (the PDC, resolved, DIRECT_UNIQUE) or straight to one host.
//! - Every request names its own temporary reply mailslot `\MAILSLOT\NET\GETDCxxxxxxxx`
//!   ([`reply_mailslot`]), so [`match_reply`] ties each response to exactly one request
//!   and times it from that request.
//!
//! Sending and receiving (through a daemon or a node of one's own) are the caller's.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::{nt_version, opcode, NetlogonMessage, PrimaryQuery, SamLogonRequest};
use crate::error::Error;
use crate::mailslot::MailslotWrite;
use crate::name::Name;

/// NtVersion of LOGON_SAM_LOGON_REQUEST by default: V1 | V5 | V5EX | V5EX_WITH_IP.
pub const DEFAULT_SAM_NT_VERSION: u32 =
    nt_version::V1 | nt_version::V5 | nt_version::V5EX | nt_version::V5EX_WITH_IP;

/// The destination names of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    /// `<DOMAIN><1C>`: all DCs.
    Dc,
    /// `<DOMAIN><1B>`: the PDC.
    Pdc,
    /// `<1C>` then `<1B>`.
    Both,
}

/// The requests of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queries {
    /// LOGON_PRIMARY_QUERY (answered by the PDC).
    Primary,
    /// LOGON_SAM_LOGON_REQUEST.
    Sam,
    /// LOGON_PRIMARY_QUERY then LOGON_SAM_LOGON_REQUEST.
    Both,
}

/// Which request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum QueryKind {
    Primary,
    Sam,
}

impl QueryKind {
    /// The request's command name, e.g. `LOGON_PRIMARY_QUERY`.
    pub fn command(self) -> &'static str {
        match self {
            QueryKind::Primary => "LOGON_PRIMARY_QUERY",
            QueryKind::Sam => "LOGON_SAM_LOGON_REQUEST",
        }
    }

    /// Whether a message with opcode `op` answers this request.
    pub fn answered_by(self, op: u16) -> bool {
        match self {
            QueryKind::Primary => op == opcode::LOGON_PRIMARY_RESPONSE,
            QueryKind::Sam => matches!(
                op,
                opcode::LOGON_SAM_LOGON_RESPONSE
                    | opcode::LOGON_SAM_PAUSE_RESPONSE
                    | opcode::LOGON_SAM_USER_UNKNOWN
                    | opcode::LOGON_SAM_LOGON_RESPONSE_EX
                    | opcode::LOGON_SAM_PAUSE_RESPONSE_EX
                    | opcode::LOGON_SAM_USER_UNKNOWN_EX
            ),
        }
    }
}

/// How a request travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// DIRECT_GROUP to the subnet broadcast address.
    Broadcast,
    /// Resolve the name, DIRECT_UNIQUE to its owner.
    Resolve,
    /// DIRECT_UNIQUE to this host; the port `None` means the default datagram port.
    At(Ipv4Addr, Option<u16>),
}

/// One request of one round.
#[derive(Debug, Clone)]
pub struct Probe {
    pub round: u32,
    pub kind: QueryKind,
    pub destination: Name,
    pub how: How,
    /// The reply mailslot named in the request.
    pub mailslot: String,
    /// The NETLOGON message (the mailslot data to write to `\MAILSLOT\NET\NETLOGON`).
    pub message: Vec<u8>,
    /// When it left; set by the caller. Responses are timed from it.
    pub sent_at: Option<Instant>,
}

/// Why a round cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PingError {
    /// The domain is not a NetBIOS name.
    #[error("bad domain {domain:?}: {source}")]
    BadDomain { domain: String, source: Error },
    /// A request cannot be encoded (a name too long for its field, ...).
    #[error("cannot build {command}: {source}")]
    Build {
        command: &'static str,
        source: Error,
    },
}

/// The temporary reply mailslot of request `tag` (Windows: `\MAILSLOT\NET\GETDCxxx`).
pub fn reply_mailslot(tag: u32) -> String {
    format!("\\MAILSLOT\\NET\\GETDC{tag:08X}")
}

/// The NETLOGON request bytes. `nt` replaces the NtVersion (default: V1 for the primary
/// query, [`DEFAULT_SAM_NT_VERSION`] for the SAM logon request).
pub fn build_request(
    kind: QueryKind,
    computer: &str,
    user: &str,
    mailslot: &str,
    nt: Option<u32>,
) -> Result<Vec<u8>, PingError> {
    let msg = match kind {
        QueryKind::Primary => {
            let mut q = PrimaryQuery::new(computer, mailslot);
            if let Some(v) = nt {
                q.nt_version = Some(v);
            }
            NetlogonMessage::PrimaryQuery(q)
        }
        QueryKind::Sam => NetlogonMessage::SamLogonRequest(SamLogonRequest::new(
            computer,
            user,
            mailslot,
            nt.unwrap_or(DEFAULT_SAM_NT_VERSION),
        )),
    };
    msg.to_bytes().map_err(|source| PingError::Build {
        command: kind.command(),
        source,
    })
}

/// What to send in one round.
#[derive(Debug, Clone)]
pub struct PlanSpec<'a> {
    pub domain: &'a str,
    /// Send straight to this host (DIRECT_UNIQUE, no name lookup).
    pub server: Option<Ipv4Addr>,
    /// The host's datagram port (with `server`).
    pub port: Option<u16>,
    /// Default: [`Targets::Dc`] with a server, else [`Targets::Both`].
    pub target: Option<Targets>,
    pub query: Queries,
    /// ComputerName of the requests.
    pub computer: &'a str,
    /// UserName of the SAM logon request.
    pub user: &'a str,
    pub nt_version: Option<u32>,
}

/// The requests of round `round`, each target name with each query; their mailslot tags
/// are `tag`, `tag + 1`, ... (wrapping).
pub fn plan(spec: &PlanSpec<'_>, round: u32, tag: u32) -> Result<Vec<Probe>, PingError> {
    let target = spec.target.unwrap_or(if spec.server.is_some() {
        Targets::Dc
    } else {
        Targets::Both
    });
    let suffixes: &[u8] = match target {
        Targets::Dc => &[0x1C],
        Targets::Pdc => &[0x1B],
        Targets::Both => &[0x1C, 0x1B],
    };
    let kinds: &[QueryKind] = match spec.query {
        Queries::Primary => &[QueryKind::Primary],
        Queries::Sam => &[QueryKind::Sam],
        Queries::Both => &[QueryKind::Primary, QueryKind::Sam],
    };
    let mut out = Vec::new();
    for &suffix in suffixes {
        let destination =
            Name::new(spec.domain, suffix).map_err(|source| PingError::BadDomain {
                domain: spec.domain.to_owned(),
                source,
            })?;
        let how = match (spec.server, suffix) {
            (Some(ip), _) => How::At(ip, spec.port),
            (None, 0x1C) => How::Broadcast,
            (None, _) => How::Resolve,
        };
        for &kind in kinds {
            let mailslot = reply_mailslot(tag.wrapping_add(out.len() as u32));
            let message =
                build_request(kind, spec.computer, spec.user, &mailslot, spec.nt_version)?;
            out.push(Probe {
                round,
                kind,
                destination: destination.clone(),
                how,
                mailslot,
                message,
                sent_at: None,
            });
        }
    }
    Ok(out)
}

/// Why a received datagram is not an answer to one of our requests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("not a mailslot write: {0}")]
    NotMailslot(Error),
    /// The mailslot it was written to.
    #[error("mailslot {0} is not one of ours")]
    NotOurs(String),
    #[error("malformed NETLOGON message: {0}")]
    Malformed(Error),
    /// A well-formed message of the wrong kind for the request of its mailslot.
    #[error("{command} (0x{opcode:04x}) does not answer {request}")]
    NotAnAnswer {
        command: &'static str,
        opcode: u16,
        request: &'static str,
    },
}

/// A received datagram's user data, matched to a request.
#[derive(Debug, Clone)]
pub struct Reply<'p> {
    /// The mailslot it was written to, when it is a mailslot write.
    pub mailslot: Option<String>,
    /// The decoded NETLOGON message, when it decodes (whether or not it answers).
    pub message: Option<NetlogonMessage>,
    /// The request whose reply mailslot it was written to.
    pub probe: Option<&'p Probe>,
    /// Time since that request was sent (`None` when not sent yet).
    pub elapsed: Option<Duration>,
    /// Set unless it is a well-formed answer to `probe`.
    pub problem: Option<Problem>,
}

impl Reply<'_> {
    /// A well-formed answer to one of our requests.
    pub fn is_answer(&self) -> bool {
        self.problem.is_none() && self.probe.is_some()
    }
}

/// Decode a datagram's user data (an SMB mailslot write) and match it to one of `probes`
/// by its mailslot (case-insensitively). Never fails: problems are in [`Reply::problem`].
pub fn match_reply<'p>(probes: &'p [Probe], user_data: &[u8], now: Instant) -> Reply<'p> {
    let mut r = Reply {
        mailslot: None,
        message: None,
        probe: None,
        elapsed: None,
        problem: None,
    };
    let write = match MailslotWrite::parse(user_data) {
        Ok(w) => w,
        Err(e) => {
            r.problem = Some(Problem::NotMailslot(e));
            return r;
        }
    };
    let msg = NetlogonMessage::parse(&write.data);
    r.message = msg.as_ref().ok().cloned();
    let probe = probes
        .iter()
        .find(|p| p.mailslot.eq_ignore_ascii_case(&write.name));
    let Some(p) = probe else {
        r.problem = Some(Problem::NotOurs(write.name.clone()));
        r.mailslot = Some(write.name);
        return r;
    };
    r.mailslot = Some(write.name);
    r.probe = Some(p);
    r.elapsed = p.sent_at.map(|t| now.saturating_duration_since(t));
    r.problem = match msg {
        Err(e) => Some(Problem::Malformed(e)),
        Ok(m) if !p.kind.answered_by(m.opcode()) => Some(Problem::NotAnAnswer {
            command: m.command(),
            opcode: m.opcode(),
            request: p.kind.command(),
        }),
        Ok(_) => None,
    };
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlogon::{ds_flag, PrimaryResponse, SamLogonResponseEx};

    fn spec<'a>(server: Option<Ipv4Addr>, target: Option<Targets>, q: Queries) -> PlanSpec<'a> {
        PlanSpec {
            domain: "TESTGROUP",
            server,
            port: None,
            target,
            query: q,
            computer: "WKS01",
            user: "alice",
            nt_version: None,
        }
    }

    fn reply(mailslot: &str, msg: NetlogonMessage) -> Vec<u8> {
        MailslotWrite::new(mailslot, msg.to_bytes().unwrap())
            .to_bytes()
            .unwrap()
    }

    #[test]
    fn ds_flag_names_in_bit_order() {
        assert_eq!(
            ds_flag::names(ds_flag::DNS_FOREST | ds_flag::PDC | ds_flag::LDAP | 0x0000_0002),
            vec!["PDC", "LDAP", "DNS_FOREST"]
        );
        assert!(ds_flag::names(0).is_empty());
    }

    #[test]
    fn mailslot_names_are_getdc_with_8_hex_digits() {
        assert_eq!(reply_mailslot(0xAB), "\\MAILSLOT\\NET\\GETDC000000AB");
        assert_eq!(reply_mailslot(u32::MAX), "\\MAILSLOT\\NET\\GETDCFFFFFFFF");
    }

    #[test]
    fn default_plan_is_both_targets_and_both_queries() {
        let p = plan(&spec(None, None, Queries::Both), 0, 0xFFFF_FFFF).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].destination.name(), "TESTGROUP");
        assert_eq!(p[0].destination.suffix(), 0x1C);
        assert_eq!(p[0].how, How::Broadcast);
        assert_eq!(p[2].destination.suffix(), 0x1B);
        assert_eq!(p[2].how, How::Resolve);
        assert_eq!(p[0].kind, QueryKind::Primary);
        assert_eq!(p[1].kind, QueryKind::Sam);
        // Tags wrap and stay distinct.
        let slots: std::collections::HashSet<_> = p.iter().map(|x| x.mailslot.clone()).collect();
        assert_eq!(slots.len(), 4);
        assert!(slots.contains("\\MAILSLOT\\NET\\GETDC00000000"));
    }

    #[test]
    fn server_plan_is_unique_to_that_host_at_1c() {
        let ip = Ipv4Addr::new(198, 51, 100, 10);
        let p = plan(&spec(Some(ip), None, Queries::Primary), 2, 7).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].how, How::At(ip, None));
        assert_eq!(p[0].destination.suffix(), 0x1C);
        assert_eq!(p[0].round, 2);
        let mut s = spec(Some(ip), Some(Targets::Pdc), Queries::Sam);
        s.port = Some(1138);
        let p = plan(&s, 0, 7).unwrap();
        assert_eq!(p[0].destination.suffix(), 0x1B);
        assert_eq!(p[0].how, How::At(ip, Some(1138)));
    }

    #[test]
    fn requests_decode_with_our_mailslot() {
        let p = plan(&spec(None, Some(Targets::Dc), Queries::Both), 0, 1).unwrap();
        match NetlogonMessage::parse(&p[0].message).unwrap() {
            NetlogonMessage::PrimaryQuery(q) => {
                assert_eq!(q.computer_name, "WKS01");
                assert_eq!(q.mailslot_name, p[0].mailslot);
                assert_eq!(q.nt_version, Some(nt_version::V1));
            }
            m => panic!("{m:?}"),
        }
        match NetlogonMessage::parse(&p[1].message).unwrap() {
            NetlogonMessage::SamLogonRequest(q) => {
                assert_eq!(q.unicode_computer_name, "WKS01");
                assert_eq!(q.user_name, "alice");
                assert_eq!(q.mailslot_name, p[1].mailslot);
                assert_eq!(q.nt_version, Some(DEFAULT_SAM_NT_VERSION));
            }
            m => panic!("{m:?}"),
        }
        let mut s = spec(None, Some(Targets::Dc), Queries::Primary);
        s.nt_version = Some(0xB);
        let p = plan(&s, 0, 1).unwrap();
        match NetlogonMessage::parse(&p[0].message).unwrap() {
            NetlogonMessage::PrimaryQuery(q) => assert_eq!(q.nt_version, Some(0xB)),
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn bad_domain_is_a_typed_error() {
        let mut s = spec(None, None, Queries::Both);
        s.domain = "MUCH-TOO-LONG-DOMAIN-NAME";
        let e = plan(&s, 0, 0).unwrap_err();
        assert!(matches!(e, PingError::BadDomain { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("bad domain \"MUCH-TOO-LONG-DOMAIN-NAME\": "),
            "{e}"
        );
    }

    #[test]
    fn answers_are_matched_by_mailslot_kind_and_timed() {
        let mut p = plan(&spec(None, Some(Targets::Dc), Queries::Both), 0, 100).unwrap();
        let t0 = Instant::now();
        p[0].sent_at = Some(t0);
        let resp = PrimaryResponse {
            primary_dc_name: "SAMBAA".into(),
            ..PrimaryResponse::default()
        };
        // Mailslot names match whatever their case.
        let slot = p[0].mailslot.to_ascii_lowercase();
        let data = reply(&slot, NetlogonMessage::PrimaryResponse(resp));
        let r = match_reply(&p, &data, t0 + Duration::from_millis(5));
        assert!(r.is_answer(), "{r:?}");
        assert_eq!(r.probe.unwrap().kind, QueryKind::Primary);
        assert_eq!(r.mailslot.as_deref(), Some(slot.as_str()));
        assert_eq!(r.elapsed, Some(Duration::from_millis(5)));
        assert!(matches!(
            r.message,
            Some(NetlogonMessage::PrimaryResponse(_))
        ));
        // The same response on the SAM request's mailslot does not answer it.
        let data = reply(
            &p[1].mailslot,
            NetlogonMessage::PrimaryResponse(PrimaryResponse::default()),
        );
        let r = match_reply(&p, &data, Instant::now());
        assert!(!r.is_answer());
        assert_eq!(r.elapsed, None, "not sent yet");
        assert_eq!(
            r.problem.unwrap().to_string(),
            "LOGON_PRIMARY_RESPONSE (0x000c) does not answer LOGON_SAM_LOGON_REQUEST"
        );
        // Every SAM response form answers the SAM request.
        let ex = SamLogonResponseEx {
            flags: ds_flag::PDC,
            ..SamLogonResponseEx::default()
        };
        for m in [
            NetlogonMessage::SamLogonResponseEx(ex.clone()),
            NetlogonMessage::SamPauseResponseEx(ex.clone()),
            NetlogonMessage::SamUserUnknownEx(ex),
        ] {
            let r = match_reply(&p, &reply(&p[1].mailslot, m), Instant::now());
            assert!(r.is_answer(), "{r:?}");
        }
    }

    #[test]
    fn malformed_and_foreign_replies_are_problems_not_panics() {
        let p = plan(&spec(None, None, Queries::Both), 0, 9).unwrap();
        let r = match_reply(&p, b"garbage", Instant::now());
        assert!(matches!(r.problem, Some(Problem::NotMailslot(_))));
        assert!(r.mailslot.is_none() && r.probe.is_none());
        let data = MailslotWrite::new(&p[0].mailslot, vec![0x0C, 0x00, b'S'])
            .to_bytes()
            .unwrap();
        let r = match_reply(&p, &data, Instant::now());
        assert!(matches!(r.problem, Some(Problem::Malformed(_))));
        assert!(r.probe.is_some() && r.message.is_none());
        let data = MailslotWrite::new("\\MAILSLOT\\NET\\GETDC1", vec![0x0C, 0x00])
            .to_bytes()
            .unwrap();
        let r = match_reply(&p, &data, Instant::now());
        assert_eq!(
            r.problem.unwrap().to_string(),
            "mailslot \\MAILSLOT\\NET\\GETDC1 is not one of ours"
        );
        let ok = reply(
            &p[0].mailslot,
            NetlogonMessage::PrimaryResponse(PrimaryResponse::default()),
        );
        for n in 0..ok.len() {
            let _ = match_reply(&p, &ok[..n], Instant::now());
        }
    }
}
