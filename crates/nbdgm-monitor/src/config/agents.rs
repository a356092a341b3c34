//! The `[agents]` listener and the `[[agent]]` tables of the monitor's configuration
//! (vantage points, `docs/monitor.md`): names, locations, token digests (a token itself is
//! read once, hashed and dropped), and the check `agents = [...]` assignments.

use super::{issue, Check, Issue};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Most `[[agent]]` tables.
pub const MAX_AGENTS: usize = 64;
/// Shortest token accepted from a token file.
pub const MIN_TOKEN_LEN: usize = 16;

/// The agent API listener and the agents allowed to use it.
#[derive(Debug, Clone)]
pub struct AgentsConfig {
    pub listen: SocketAddr,
    /// PEM certificate chain and private key; `None` only with `allow_plaintext`.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub allow_plaintext: bool,
    pub agents: Vec<AgentSpec>,
}

/// One agent: its name, its location (results are stored as `CHECK@LOCATION`) and the
/// SHA-256 digest of its token.
#[derive(Clone)]
pub struct AgentSpec {
    pub name: String,
    pub location: String,
    pub token_sha256: [u8; 32],
}

impl std::fmt::Debug for AgentSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSpec")
            .field("name", &self.name)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgents {
    listen: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    #[serde(default)]
    allow_plaintext: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgent {
    name: String,
    location: Option<String>,
    token_file: Option<String>,
    token_sha256: Option<String>,
}

/// A check name, agent name or location: 1-64 of `A-Z a-z 0-9 - _ .` (never `@`).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// SHA-256 of a token.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex_digest(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Read a token file (first line, trimmed, at least [`MIN_TOKEN_LEN`] characters).
pub fn read_token(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut text = String::new();
    f.take(4096)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read: {e}"))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.len() < MIN_TOKEN_LEN || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "the token must be at least {MIN_TOKEN_LEN} printable characters without spaces"
        ));
    }
    Ok(token)
}

fn agent(i: usize, a: RawAgent, earlier: &[AgentSpec]) -> Result<AgentSpec, Issue> {
    let k = |f: &str| format!("agent[{i}].{f}");
    if !valid_name(&a.name) {
        return Err(issue(k("name"), "1-64 characters of A-Z a-z 0-9 - _ ."));
    }
    if earlier.iter().any(|o| o.name == a.name) {
        return Err(issue(
            k("name"),
            format!("duplicate agent name {:?}", a.name),
        ));
    }
    let location = a.location.unwrap_or_else(|| a.name.clone());
    if !valid_name(&location) {
        return Err(issue(k("location"), "1-64 characters of A-Z a-z 0-9 - _ ."));
    }
    if earlier.iter().any(|o| o.location == location) {
        return Err(issue(
            k("location"),
            format!("location {location:?} is already another agent's"),
        ));
    }
    let token_sha256 = match (a.token_file, a.token_sha256) {
        (Some(f), None) => {
            if !f.starts_with('/') {
                return Err(issue(k("token_file"), "must be an absolute path"));
            }
            let t = read_token(std::path::Path::new(&f)).map_err(|m| issue(k("token_file"), m))?;
            token_digest(&t)
        }
        (None, Some(h)) => hex_digest(&h)
            .ok_or_else(|| issue(k("token_sha256"), "64 hexadecimal digits (SHA-256)"))?,
        _ => {
            return Err(issue(
                k("token_file"),
                "exactly one of token_file and token_sha256",
            ))
        }
    };
    Ok(AgentSpec {
        name: a.name,
        location,
        token_sha256,
    })
}

/// `[agents]` and `[[agent]]` together.
pub(super) fn convert(
    raw: Option<RawAgents>,
    list: Vec<RawAgent>,
) -> Result<Option<AgentsConfig>, Issue> {
    let Some(raw) = raw else {
        if list.is_empty() {
            return Ok(None);
        }
        return Err(issue(
            "agent",
            "[[agent]] needs an [agents] table with `listen`",
        ));
    };
    let listen = raw
        .listen
        .as_deref()
        .ok_or_else(|| issue("agents.listen", "required (e.g. \"0.0.0.0:8443\")"))?;
    let listen = listen.parse().map_err(|_| {
        issue(
            "agents.listen",
            format!("{listen:?} is not IP:PORT (e.g. 0.0.0.0:8443)"),
        )
    })?;
    let tls = match (raw.tls_cert, raw.tls_key) {
        (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
        (None, None) if raw.allow_plaintext => None,
        (None, None) => {
            return Err(issue(
                "agents.tls_cert",
                "required with tls_key (PEM); plaintext only with allow_plaintext = true",
            ))
        }
        (Some(_), None) => return Err(issue("agents.tls_key", "required with tls_cert")),
        (None, Some(_)) => return Err(issue("agents.tls_cert", "required with tls_key")),
    };
    if list.len() > MAX_AGENTS {
        return Err(issue("agent", format!("at most {MAX_AGENTS} agents")));
    }
    let mut agents = Vec::new();
    for (i, a) in list.into_iter().enumerate() {
        let a = agent(i, a, &agents)?;
        agents.push(a);
    }
    Ok(Some(AgentsConfig {
        listen,
        tls,
        allow_plaintext: raw.allow_plaintext,
        agents,
    }))
}

/// Every name in a check's `agents` must be an `[[agent]]`.
pub(super) fn check_assignments(
    agents: Option<&AgentsConfig>,
    checks: &[Check],
) -> Result<(), Issue> {
    for (i, c) in checks.iter().enumerate() {
        for name in &c.agents {
            if !agents.is_some_and(|a| a.agents.iter().any(|x| &x.name == name)) {
                return Err(issue(
                    format!("check[{i}].agents"),
                    format!("no [[agent]] named {name:?}"),
                ));
            }
        }
    }
    Ok(())
}
