//! Browser settings and caps (MS-BRWS §3.2.1, §3.3.1; Samba's `os level`, `preferred
//! master`, `local master`, `lm announce`, `remote announce`).

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::engine::ConfigError;
use nbdgm_wire::browser::{MAX_COMMENT_LEN, MAX_NAME_LEN};

/// `lm announce`: LAN Manager announcements on `\MAILSLOT\LANMAN` (DIGEST §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LmAnnounce {
    /// Never.
    No,
    /// Always, every `lm_interval`.
    Yes,
    /// Only after a LANMAN announcement from another host has been heard (Samba's `auto`).
    #[default]
    Auto,
}

/// One `remote_announce` target: HostAnnouncements by unicast to a workgroup on
/// another subnet (Samba's `remote announce = 192.0.2.255/WG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAnnounce {
    /// A host or a directed broadcast address (port 138 unless the runtime says
    /// otherwise).
    pub address: Ipv4Addr,
    /// The workgroup to announce into; our own when `None`.
    pub workgroup: Option<String>,
}

/// Everything a [`crate::Browser`] needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserConfig {
    /// Our computer name (plain, ≤ 15 bytes, upper case), e.g. `RUSTHOST`.
    pub name: String,
    /// Our workgroup or domain (plain, ≤ 15 bytes, upper case).
    pub workgroup: String,
    /// Announcement comment (≤ 42 bytes + NUL; longer is cut by [`BrowserConfig::validate`]).
    pub comment: String,
    /// Base SV_TYPE_* bits (e.g. WORKSTATION | SERVER | NT). The engine adds
    /// POTENTIAL_BROWSER / BACKUP_BROWSER / MASTER_BROWSER by role and always clears
    /// LOCAL_LIST_ONLY and DOMAIN_ENUM.
    pub server_type: u32,
    /// OSVersionMajor / OSVersionMinor in announcements.
    pub os_version: (u8, u8),
    /// Send HostAnnouncements at all (a hidden server sets false).
    pub announce: bool,
    /// Take part in elections and browsing (`local master` in Samba); false makes a
    /// non-browser server (MS-BRWS §3.2) that still keeps the passive list.
    pub potential_browser: bool,
    /// Election criteria OS byte (`os level`, 0–255).
    pub os_level: u8,
    /// Preferred master: criteria bit 0x08, and force an election at start-up.
    pub preferred_master: bool,
    pub lm_announce: LmAnnounce,
    /// Interval of LANMAN announcements (Samba `lm interval`, 60 s).
    pub lm_interval: Duration,
    pub remote_announce: Vec<RemoteAnnounce>,
    /// Longest HostAnnouncement interval (12 min).
    pub max_announce_interval: Duration,
    /// Servers kept in the browse list, all workgroups together.
    pub max_servers: usize,
    /// Workgroups kept in the browse list.
    pub max_workgroups: usize,
    /// RequestElection frames processed per minute; more are dropped and counted.
    pub elections_per_minute: u32,
    /// Elections we may start back to back, whatever triggers them (another master
    /// heard, a RequestElection we answer, the master check, preferred master); then
    /// one per `election_start_interval`. Over the limit: not started, counted in
    /// `elections_suppressed` (issue 12 item 8).
    pub election_start_burst: u32,
    pub election_start_interval: Duration,
    /// Obey ResetStateRequest (0x0E); refused and counted otherwise.
    pub allow_reset: bool,
    /// UDP port of `remote_announce` targets (138; tests on loopback use others).
    pub datagram_port: u16,
    /// Be the domain master browser of our workgroup (Samba's `domain master`):
    /// register `<WG><1B>`, accept MasterAnnouncements and collect the local master
    /// browsers' lists (MS-BRWS §3.4).
    pub domain_master: bool,
    /// As local master browser, find the domain master browser, announce to it and pull
    /// its list (MS-BRWS §3.3.6; Samba does it as a WINS client).
    pub dmb_sync: bool,
    /// How often a local master browser announces to and syncs with the domain master
    /// browser, and a domain master browser syncs with each local master browser (Samba:
    /// 15 minutes).
    pub dmb_sync_interval: Duration,
    /// Local master browsers a domain master browser keeps; more are refused and counted.
    pub max_local_masters: usize,
}

impl BrowserConfig {
    /// Defaults for `name` in `workgroup`: a workstation + server (0x00001003) with
    /// OS version 6.1, potential browser, os level 20 (Samba's default), no preferred
    /// master, LANMAN auto, 4096 servers, 256 workgroups, 30 elections a minute
    /// processed, at most 3 elections started back to back and then one a minute.
    pub fn new(name: &str, workgroup: &str) -> Self {
        BrowserConfig {
            name: name.to_ascii_uppercase(),
            workgroup: workgroup.to_ascii_uppercase(),
            comment: String::new(),
            server_type: 0x0000_1003,
            os_version: (6, 1),
            announce: true,
            potential_browser: true,
            os_level: 20,
            preferred_master: false,
            lm_announce: LmAnnounce::Auto,
            lm_interval: Duration::from_secs(60),
            remote_announce: Vec::new(),
            max_announce_interval: Duration::from_secs(12 * 60),
            max_servers: 4096,
            max_workgroups: 256,
            elections_per_minute: 30,
            election_start_burst: 3,
            election_start_interval: Duration::from_secs(60),
            allow_reset: false,
            datagram_port: 138,
            domain_master: false,
            dmb_sync: true,
            dmb_sync_interval: Duration::from_secs(15 * 60),
            max_local_masters: 256,
        }
    }

    /// Check the names (1–15 bytes of printable ASCII, no leading or trailing space, not
    /// starting with `*` or `.`; upper-cased here), the remote workgroups, the intervals
    /// and the comment (Latin-1 without NUL). Returns `Some(original length)` when the
    /// comment was cut to 42 bytes (the caller logs it).
    pub fn validate(&mut self) -> Result<Option<usize>, ConfigError> {
        self.name = check_name("name", &self.name)?;
        self.workgroup = check_name("workgroup", &self.workgroup)?;
        for (i, r) in self.remote_announce.iter_mut().enumerate() {
            if let Some(w) = &r.workgroup {
                r.workgroup = Some(check_name(&format!("remote_announce[{i}].workgroup"), w)?);
            }
        }
        if self
            .comment
            .chars()
            .any(|c| c == '\0' || u32::from(c) > 0xFF)
        {
            return Err(ConfigError::Invalid(
                "comment: NUL or a character outside Latin-1".into(),
            ));
        }
        if self.max_announce_interval < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "max_announce_interval: at least 1 s".into(),
            ));
        }
        if self.lm_interval < Duration::from_secs(1) {
            return Err(ConfigError::Invalid("lm_interval: at least 1 s".into()));
        }
        if self.election_start_burst == 0 {
            return Err(ConfigError::Invalid(
                "election_start_burst: at least 1".into(),
            ));
        }
        if self.election_start_interval < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "election_start_interval: at least 1 s".into(),
            ));
        }
        if self.dmb_sync_interval < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "dmb_sync_interval: at least 1 s".into(),
            ));
        }
        // Latin-1: one byte per character.
        let len = self.comment.chars().count();
        if len > MAX_COMMENT_LEN {
            self.comment = self.comment.chars().take(MAX_COMMENT_LEN).collect();
            return Ok(Some(len));
        }
        Ok(None)
    }
}

fn check_name(what: &str, n: &str) -> Result<String, ConfigError> {
    let ok = !n.is_empty()
        && n.len() <= MAX_NAME_LEN
        && n.bytes().all(|b| (0x20..0x7F).contains(&b))
        && !n.starts_with([' ', '*', '.'])
        && !n.ends_with(' ');
    if ok {
        Ok(n.to_ascii_uppercase())
    } else {
        Err(ConfigError::Invalid(format!(
            "{what}: {n:?} is not 1 to 15 printable ASCII characters"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_and_comment() {
        let mut c = BrowserConfig::new("host", "wg");
        assert_eq!(c.validate(), Ok(None));
        assert_eq!((c.name.as_str(), c.workgroup.as_str()), ("HOST", "WG"));
        c.comment = "x".repeat(50);
        assert_eq!(c.validate(), Ok(Some(50)));
        assert_eq!(c.comment.len(), 42);
        for bad in ["", "SIXTEENCHARSXXXX", "*X", " X", "A\u{1}B", "é"] {
            let mut c = BrowserConfig::new("H", "W");
            c.name = bad.into();
            assert!(c.validate().is_err(), "{bad:?}");
        }
        let mut c = BrowserConfig::new("H", "W");
        c.remote_announce.push(RemoteAnnounce {
            address: Ipv4Addr::LOCALHOST,
            workgroup: Some("other".into()),
        });
        c.validate().unwrap();
        assert_eq!(c.remote_announce[0].workgroup.as_deref(), Some("OTHER"));
        c.comment = "a\u{263a}".into();
        assert!(c.validate().is_err());
    }
}
