//! The NBNS role's static names and state file at run time (RFC 1001 §15.1.1: the name
//! database; like nmbd's lmhosts `#PRE` lines and `wins.dat`). The format and the atomic
//! write are `nbdgm_nbns::persist`'s; this module decides where the file is, loads it
//! at start (a corrupt file is set aside, the role starts empty), and saves it every
//! `state_save_interval_s` and at shutdown.

use crate::worker::CmdError;
use nbdgm_api::{WinsEntry, WinsMember};
use nbdgm_nbns::persist::{load_file, save_file, set_aside};
use nbdgm_nbns::{AdminError, Fixed, NbnsServer, StateError, StaticEntry};
use nbdgm_wire::Name;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use tracing::{info, warn};

/// `[[nbns_server.static]]`: a name the NBNS always answers and defends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticName {
    /// Up to 15 characters (upper-cased like every NetBIOS name).
    pub name: String,
    /// The 16th byte, e.g. `0x20` (file server), `0x1c` (domain controllers).
    #[serde(default)]
    pub suffix: u8,
    #[serde(default)]
    pub group: bool,
    pub addresses: Vec<Ipv4Addr>,
}

impl StaticName {
    /// The engine's entry in `scope`.
    pub fn entry(&self, scope: &str) -> Result<StaticEntry, String> {
        let name = Name::new(&self.name, self.suffix)
            .and_then(|n| n.with_scope(scope))
            .map_err(|e| format!("{:?}: {e}", self.name))?;
        if self.addresses.is_empty() {
            return Err(format!("{:?}: no addresses", self.name));
        }
        Ok(StaticEntry {
            name,
            group: self.group,
            addresses: self.addresses.clone(),
        })
    }
}

/// Where and how often the state file of one interface is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSettings {
    pub path: PathBuf,
    pub interval: Duration,
    pub max_bytes: u64,
}

/// The state file of the interface `iface`: `configured` with `{interface}` replaced;
/// with none configured, `$STATE_DIRECTORY/nbns-{interface}.jsonl` (systemd's
/// `StateDirectory=`), else none. An empty `configured` turns the file off.
pub fn state_path(configured: Option<&Path>, iface: Ipv4Addr) -> Option<PathBuf> {
    let template = match configured {
        Some(p) if p.as_os_str().is_empty() => return None,
        Some(p) => p.to_string_lossy().into_owned(),
        None => {
            let dir = std::env::var_os("STATE_DIRECTORY")?;
            // systemd may list several directories separated by ':'; the first is ours.
            let dir = dir.to_string_lossy().split(':').next()?.to_owned();
            format!("{dir}/nbns-{{interface}}.jsonl")
        }
    };
    Some(PathBuf::from(
        template.replace("{interface}", &iface.to_string()),
    ))
}

/// Put the static names in, then load the state file (see the module doc).
pub fn start(
    nbns: &mut NbnsServer,
    now: Instant,
    statics: &[StaticEntry],
    state: Option<&StateSettings>,
) {
    for e in statics {
        if let Err(err) = nbns.add_static(now, e, Fixed::Config) {
            warn!(name = %e.name, error = %err, "nbns: static name not added");
        }
    }
    let Some(s) = state else { return };
    let wall = SystemTime::now();
    let loaded = load_file(&s.path, s.max_bytes)
        .and_then(|b| b.map(|b| nbns.import_state(now, wall, &b)).transpose());
    match loaded {
        Ok(None) => info!(path = %s.path.display(), "nbns: no state file yet"),
        Ok(Some(r)) => info!(
            path = %s.path.display(), loaded = r.loaded, dropped = r.dropped,
            "nbns: state file loaded"
        ),
        Err(e @ (StateError::Corrupt { .. } | StateError::TooLarge(_))) => {
            match set_aside(&s.path, wall) {
                Ok(to) => warn!(
                    path = %s.path.display(), error = %e, kept = %to.display(),
                    "nbns: state file refused; starting empty, the file is kept aside"
                ),
                Err(io) => warn!(
                    path = %s.path.display(), error = %e, rename_error = %io,
                    "nbns: state file refused; starting empty"
                ),
            }
        }
        Err(e) => warn!(path = %s.path.display(), error = %e, "nbns: state file not read"),
    }
}

/// Write the state file now. `false` (logged) when it could not be written.
pub fn save(nbns: &NbnsServer, now: Instant, s: &StateSettings) -> bool {
    let bytes = nbns.export_state(now, SystemTime::now());
    if bytes.len() as u64 > s.max_bytes {
        warn!(
            path = %s.path.display(), bytes = bytes.len(), max = s.max_bytes,
            "nbns: state larger than state_max_bytes; not saved"
        );
        return false;
    }
    match save_file(&s.path, &bytes) {
        Ok(()) => true,
        Err(e) => {
            warn!(path = %s.path.display(), error = %e, "nbns: state file not written");
            false
        }
    }
}

/// An operator's request to the NBNS role of one interface (local API `wins_*`).
#[derive(Debug, Clone)]
pub enum NbnsAdmin {
    List {
        offset: usize,
        limit: usize,
        /// Bytes of JSON the entries may take.
        budget: usize,
    },
    Add {
        name: Name,
        group: bool,
        addresses: Vec<Ipv4Addr>,
        is_static: bool,
        ttl: Option<u32>,
    },
    Delete {
        name: Name,
        address: Option<Ipv4Addr>,
    },
}

/// What the worker answers.
#[derive(Debug, Clone)]
pub enum NbnsAdminReply {
    List {
        total: usize,
        entries: Vec<WinsEntry>,
        next_offset: Option<usize>,
    },
    Changed {
        removed: usize,
    },
}

fn to_wire(e: nbdgm_nbns::EntrySnapshot) -> WinsEntry {
    WinsEntry {
        name: e.name,
        suffix: e.suffix,
        group: e.group,
        is_static: e.is_static,
        origin: e.origin.to_owned(),
        members: e
            .members
            .into_iter()
            .map(|m| WinsMember {
                ip: m.ip,
                nb_flags: m.nb_flags,
                ont: m.ont.to_owned(),
                ttl: m.ttl,
                expires_in_s: m.expires_in_s,
            })
            .collect(),
    }
}

/// Run an operator's request against the engine.
pub fn admin(
    nbns: &mut NbnsServer,
    now: Instant,
    op: NbnsAdmin,
) -> Result<NbnsAdminReply, CmdError> {
    let refused = |e: AdminError| match e {
        AdminError::NotFound => CmdError::new("not_found", e.to_string()),
        AdminError::Configured => CmdError::new("denied", e.to_string()),
        AdminError::Full(_) => CmdError::new("busy", e.to_string()),
        AdminError::Invalid(_) => CmdError::new("bad_request", e.to_string()),
    };
    match op {
        NbnsAdmin::List {
            offset,
            limit,
            budget,
        } => {
            let all = nbns.entries(now);
            let total = all.len();
            let mut entries = Vec::new();
            let mut used = 0;
            for e in all.into_iter().skip(offset).take(limit) {
                let e = to_wire(e);
                let size = serde_json::to_vec(&e).map_or(0, |v| v.len());
                if used + size > budget && !entries.is_empty() {
                    break;
                }
                used += size;
                entries.push(e);
            }
            let end = offset.saturating_add(entries.len());
            Ok(NbnsAdminReply::List {
                total,
                entries,
                next_offset: (end < total).then_some(end),
            })
        }
        NbnsAdmin::Add {
            name,
            group,
            addresses,
            is_static,
            ttl,
        } => {
            if is_static {
                let e = StaticEntry {
                    name,
                    group,
                    addresses,
                };
                nbns.add_static(now, &e, Fixed::Admin).map_err(refused)?;
            } else {
                let [ip] = addresses[..] else {
                    return Err(CmdError::new(
                        "bad_request",
                        "a dynamic entry has exactly one address (add it again for more, or use static)",
                    ));
                };
                let ttl = ttl.unwrap_or(nbns.config().default_ttl);
                nbns.add_dynamic(now, &name, group, ip, ttl)
                    .map_err(refused)?;
            }
            Ok(NbnsAdminReply::Changed { removed: 0 })
        }
        NbnsAdmin::Delete { name, address } => {
            let removed = nbns.delete(&name, address).map_err(refused)?;
            Ok(NbnsAdminReply::Changed { removed })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let ip = Ipv4Addr::new(198, 51, 100, 1);
        assert_eq!(
            state_path(Some(Path::new("/x/wins-{interface}.jsonl")), ip),
            Some(PathBuf::from("/x/wins-198.51.100.1.jsonl"))
        );
        assert_eq!(state_path(Some(Path::new("")), ip), None);
        assert_eq!(
            state_path(Some(Path::new("/x/wins.jsonl")), ip),
            Some(PathBuf::from("/x/wins.jsonl"))
        );
    }

    #[test]
    fn static_name_checks() {
        let s = StaticName {
            name: "DC1".into(),
            suffix: 0x20,
            group: false,
            addresses: vec![],
        };
        assert!(s.entry("").is_err());
        let s = StaticName {
            addresses: vec![Ipv4Addr::new(198, 51, 100, 9)],
            ..s
        };
        assert_eq!(s.entry("").unwrap().name.suffix(), 0x20);
        let long = StaticName {
            name: "A_NAME_LONGER_THAN_15".into(),
            ..s
        };
        assert!(long.entry("").is_err());
    }
}
