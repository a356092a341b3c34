//! The NBNS state file: the name table across restarts, like nmbd's `wins.dat`
//! (RFC 1001 §15.1.1 the name database; RFC 1002 §5.1.4.2 its timers go on counting
//! while the server is down: expiry times are stored as wall-clock seconds).
//!
//! # Format (JSON lines, version 1)
//!
//! The first line is a header, every other line one name:
//!
//! ```text
//! {"format":"nbdgm-nbns-state","version":1,"saved_unix":1765110000,"names":2}
//! {"name":"FILESRV<20>","raw":"46494c45535256202020202020202020","scope":"","group":false,"static":false,"members":[{"ip":"198.51.100.5","nb_flags":24576,"ttl":3600,"expires_unix":1765113600,"established":true}]}
//! ```
//!
//! `raw` is the 16 bytes of the name (15 + suffix) in hex, so every byte survives;
//! `name` is for people reading the file (escaped) and ignored when loading. Names
//! from the configuration (`[[nbns_server.static]]`) are not saved: the configuration
//! applies them at every start. Static names added through the API are saved with
//! `"static":true`.
//!
//! Loading drops expired addresses and names out of the served scope (counted in
//! [`crate::NbnsStats::state_dropped`]) and stops at `max_names`. A file that does not
//! parse (bad header, unknown version, a bad line, larger than the cap) is refused as a
//! whole with a [`StateError`]: the caller starts empty and keeps the file aside
//! ([`set_aside`]). Writing is atomic ([`save_file`]: temporary file, fsync, rename,
//! fsync of the directory).

use crate::server::NbnsServer;
use crate::table::{Fixed, Member};
use nbdgm_wire::Name;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// The `format` of the header line.
pub const FORMAT: &str = "nbdgm-nbns-state";
/// The version written; loading accepts this one only.
pub const VERSION: u32 = 1;
/// Longest line read (a name with 1,000 addresses is about 100 KiB).
const MAX_LINE: usize = 256 * 1024;

/// Why a state file was refused.
#[derive(Debug, Error)]
pub enum StateError {
    #[error("reading the NBNS state file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the NBNS state file is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the NBNS state file is corrupt at line {line}: {reason}")]
    Corrupt { line: usize, reason: String },
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    saved_unix: u64,
    names: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct LineMember {
    ip: Ipv4Addr,
    nb_flags: u16,
    ttl: u32,
    expires_unix: u64,
    #[serde(default)]
    established: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct LineName {
    /// For people; ignored when loading.
    #[serde(default)]
    name: String,
    raw: String,
    #[serde(default)]
    scope: String,
    group: bool,
    #[serde(default, rename = "static")]
    is_static: bool,
    members: Vec<LineMember>,
}

/// What a load did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub loaded: usize,
    pub dropped: usize,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(raw: &[u8; 16]) -> String {
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let h = std::str::from_utf8(&b[2 * i..2 * i + 2]).ok()?;
        *o = u8::from_str_radix(h, 16).ok()?;
    }
    Some(out)
}

impl NbnsServer {
    /// The table as a state file (see the module doc). `wall`: the wall clock at `now`.
    /// Names from the configuration and addresses already expired are left out.
    pub fn export_state(&self, now: Instant, wall: SystemTime) -> Vec<u8> {
        let wall_s = unix(wall);
        let mut lines: Vec<LineName> = Vec::new();
        let mut names: Vec<(&Name, _)> = self.table.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (name, rec) in names {
            if rec.fixed == Some(Fixed::Config) {
                continue;
            }
            let members: Vec<LineMember> = rec
                .live(now)
                .map(|m| LineMember {
                    ip: m.ip,
                    nb_flags: m.nb_flags,
                    ttl: m.ttl,
                    expires_unix: if rec.fixed.is_some() {
                        0
                    } else {
                        wall_s.saturating_add(m.expires.saturating_duration_since(now).as_secs())
                    },
                    established: m.established,
                })
                .collect();
            if members.is_empty() {
                continue;
            }
            lines.push(LineName {
                name: nbdgm_wire::text::escape(&name.to_string()).into_owned(),
                raw: hex(name.raw()),
                scope: name.scope().to_owned(),
                group: rec.group,
                is_static: rec.fixed.is_some(),
                members,
            });
        }
        let header = Header {
            format: FORMAT.to_owned(),
            version: VERSION,
            saved_unix: wall_s,
            names: lines.len(),
        };
        let mut out = Vec::new();
        // Serializing plain structs to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &header);
        out.push(b'\n');
        for l in &lines {
            let _ = serde_json::to_writer(&mut out, l);
            out.push(b'\n');
        }
        out
    }

    /// Load a state file into the table (normally empty, right after [`NbnsServer::new`]
    /// and the static names). The whole file is checked before anything is added: a
    /// corrupt file changes nothing. Static names already in the table win.
    pub fn import_state(
        &mut self,
        now: Instant,
        wall: SystemTime,
        bytes: &[u8],
    ) -> Result<LoadReport, StateError> {
        let parsed = parse(bytes)?;
        let wall_s = unix(wall);
        let mut report = LoadReport::default();
        for l in parsed {
            let Some(raw) = unhex(&l.raw) else {
                report.dropped += 1;
                continue;
            };
            let Ok(name) = Name::from_raw(raw).with_scope(&l.scope) else {
                report.dropped += 1;
                continue;
            };
            let taken = self.table.get(&name).is_some();
            let in_scope = l.scope.eq_ignore_ascii_case(&self.cfg.scope);
            if taken || !in_scope || self.table.len() >= self.cfg.max_names {
                report.dropped += 1;
                continue;
            }
            let grace = self.cfg.expiry_grace;
            let members: Vec<Member> = l
                .members
                .iter()
                .take(self.cfg.max_group_members)
                .filter(|m| l.is_static || m.expires_unix > wall_s)
                .map(|m| {
                    let left = if l.is_static {
                        Duration::from_secs(100 * 365 * 86_400)
                    } else {
                        // Never beyond what the configuration grants now.
                        let cap = u64::from(self.cfg.max_ttl) + grace.as_secs();
                        Duration::from_secs((m.expires_unix - wall_s).min(cap))
                    };
                    Member {
                        ip: m.ip,
                        nb_flags: m.nb_flags,
                        ttl: m.ttl,
                        since: now,
                        expires: now.checked_add(left).unwrap_or(now),
                        established: m.established,
                    }
                })
                .collect();
            if members.is_empty() {
                report.dropped += 1;
                continue;
            }
            let fixed = l.is_static.then_some(Fixed::Admin);
            self.table.insert_all(name, l.group, members, fixed);
            report.loaded += 1;
        }
        self.stats.state_loaded += report.loaded as u64;
        self.stats.state_dropped += report.dropped as u64;
        self.update_gauges();
        Ok(report)
    }
}

/// Every line of a state file, or why it is refused.
fn parse(bytes: &[u8]) -> Result<Vec<LineName>, StateError> {
    let corrupt = |line: usize, reason: String| StateError::Corrupt { line, reason };
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace));
    let (_, first) = lines
        .next()
        .ok_or_else(|| corrupt(1, "empty file".into()))?;
    let h: Header =
        serde_json::from_slice(first).map_err(|e| corrupt(1, format!("header: {e}")))?;
    if h.format != FORMAT {
        return Err(corrupt(1, "not an nbdgm NBNS state file".into()));
    }
    if h.version != VERSION {
        return Err(corrupt(
            1,
            format!("version {} (this build reads {VERSION})", h.version),
        ));
    }
    let mut out = Vec::new();
    for (i, l) in lines {
        if l.len() > MAX_LINE {
            return Err(corrupt(i + 1, "line too long".into()));
        }
        let n: LineName = serde_json::from_slice(l).map_err(|e| corrupt(i + 1, e.to_string()))?;
        if unhex(&n.raw).is_none() {
            return Err(corrupt(i + 1, "raw is not 32 hex digits".into()));
        }
        out.push(n);
    }
    Ok(out)
}

/// Read a state file of at most `max_bytes`. `Ok(None)`: there is none yet.
pub fn load_file(path: &Path, max_bytes: u64) -> Result<Option<Vec<u8>>, StateError> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if f.metadata()?.len() > max_bytes {
        return Err(StateError::TooLarge(max_bytes));
    }
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, max_bytes + 1), &mut buf)?;
    if buf.len() as u64 > max_bytes {
        return Err(StateError::TooLarge(max_bytes));
    }
    Ok(Some(buf))
}

/// Write `bytes` to `path` atomically: a temporary file next to it (mode 0600), fsync,
/// rename over `path`, fsync of the directory. A crash leaves the old file or the new
/// one, never a mix.
pub fn save_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{file_name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Move a refused state file out of the way (`<path>.corrupt-<unix seconds>`), so that
/// the next save does not overwrite the evidence. Returns the new path.
pub fn set_aside(path: &Path, wall: SystemTime) -> std::io::Result<PathBuf> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{}", unix(wall)));
    let to = PathBuf::from(name);
    std::fs::rename(path, &to)?;
    Ok(to)
}
