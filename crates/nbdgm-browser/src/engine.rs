//! The browser roles and frame handling (MS-BRWS §3.2 non-browser server, §3.3
//! potential / backup / local master browser; DIGEST §6, §8).
//!
//! * Every role keeps the passive list (announcements to any `<X><00|1D|1E>` on BROWSE
//!   or LANMAN, DomainAnnouncements to MSBROWSE).
//! * A non-browser only announces and answers AnnouncementRequest (random 0–30 s delay,
//!   several requests pending → one answer).
//! * Browsers take part in elections ([`crate::election`]); the winner registers
//!   `<WG><1D>` + MSBROWSE and, once `<1D>` is ours, announces as local master (LMA +
//!   DomainAnnouncement), answers GetBackupListRequest and promotes backups (BecomeBackup
//!   to `<WG><1E>`, one per 32 servers, at most 3, checked on winning and at each LMA).
//! * A backup fetches the master's list ([`Action::FetchMasterList`], RAP NetServerEnum2
//!   over SMB) at most once per [`MASTER_SYNC_MS`], whatever triggers it. Backups do not
//!   answer GetBackupListRequest and stay backups when an election is lost (MS-BRWS
//!   figure 2).
//! * BecomeBackup is obeyed only from the local master browser we know: the name and
//!   address of the last LocalMasterAnnouncement of our workgroup (issue 12 item 1);
//!   other senders are refused and counted (`refused_become_backup`).
//! * GetBackupListResponse lists only confirmed backups: promoted by us or heard with the
//!   backup bit twice a period apart ([`crate::list`], issue 12 item 2).
//! * A LocalMasterAnnouncement of our workgroup from another host while we are master
//!   forces an election (as Samba does); we stay master until a stronger RequestElection.
//! * Elections we start, whatever the trigger, are rate limited: a burst of
//!   `election_start_burst`, then one per `election_start_interval`; the rest are not
//!   started and are counted in `elections_suppressed` (issue 12 item 8).
//! * Unknown opcodes are ignored and counted (`unknown_opcodes`), not refused (MS-BRWS
//!   §3.3.5); every frame the codec rejects or over the sender limits is `Malformed`.
//! * Events beyond [`MAX_QUEUED`] pending actions are dropped and counted, so an
//!   undrained queue cannot grow with attacker traffic.

use crate::config::{BrowserConfig, LmAnnounce};
use crate::election::{self, Ballot, Election, Phase, Step};
use crate::list::{BrowseList, BrowseTable, Heard, ServerEntry, Upsert, WorkgroupEntry};
use crate::schedule::{self, millis, Periodic, Rng, CHANGE_DELAY};
use crate::stats::BrowserStats;
use nbdgm_wire::browser::{
    self as wire, Announcement, AnnouncementRequest, BecomeBackup, BrowserFrame,
    DomainAnnouncement, GetBackupListResponse, LanmanAnnouncement, LanmanFrame, RequestElection,
    ServerType, MAX_COMMENT_LEN, MAX_NAME_LEN,
};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE, LANMAN};
use nbdgm_wire::Name;
use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Pending actions beyond which new events are dropped (counted in `events_dropped`).
pub const MAX_QUEUED: usize = 1024;
/// A backup fetches the master's list this often (MS-BRWS §3.3.6: 12 minutes).
pub const MASTER_SYNC_MS: u32 = 12 * 60 * 1000;
/// Retry when no master is known yet.
pub const MASTER_SYNC_RETRY: Duration = Duration::from_secs(60);

/// One entry of the master's list (RAP NetServerEnum2 level 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub os_major: u8,
    pub os_minor: u8,
    pub server_type: u32,
    pub comment: String,
}

/// How long a BecomeBackup candidate is not asked again.
const PROMOTION_HOLD: Duration = Duration::from_secs(12 * 60);
/// Window of `elections_per_minute`.
const ELECTION_WINDOW: Duration = Duration::from_secs(60);
/// A potential or backup browser that has heard no local master browser this long after
/// its names are up forces an election (Samba's periodic master check; MS-BRWS §3.3.5.10:
/// a browser that cannot find the master forces one).
pub const MASTER_CHECK_FIRST: Duration = Duration::from_secs(30);
/// The check repeats at this interval.
pub const MASTER_CHECK_EVERY: Duration = Duration::from_secs(5 * 60);

/// A datagram received on `\MAILSLOT\BROWSE` or `\MAILSLOT\LANMAN`.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    /// UDP source (replies go here, as Samba does; DIGEST §8.5).
    pub from: SocketAddrV4,
    /// SOURCE_NAME of the datagram.
    pub source: &'a Name,
    /// DESTINATION_NAME (dispatch is by name, not MSG_TYPE; DIGEST §8.6).
    pub destination: &'a Name,
    /// The mailslot name as received (compare case-insensitively).
    pub mailslot: &'a str,
    /// The mailslot data (the browser frame), not the SMB header.
    pub data: &'a [u8],
    /// Arrived on the broadcast socket.
    pub broadcast: bool,
    /// Size in bytes of the datagram that carried the frame (for [`ReplyTo`]).
    pub request_len: usize,
}

/// Marks an [`Action::Send`] that answers a received frame (issue 12 item 2): the
/// runtime passes it through its reply gate (rate and amplification per destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    /// The request's UDP source.
    pub to: SocketAddrV4,
    /// The request's datagram size in bytes.
    pub request_len: usize,
}

/// How a datagram the browser wants sent is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// DIRECT_GROUP to the subnet broadcast address (how Samba sends every
    /// announcement and election frame, even to the unique `<1D>`).
    Broadcast,
    /// DIRECT_UNIQUE to this address, no name resolution (replies to the UDP source).
    Unique(SocketAddrV4),
    /// DIRECT_GROUP by unicast to this address (`remote_announce`).
    GroupAt(SocketAddrV4),
}

/// Something the runtime must do for the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a datagram. `data` is the complete user data: an SMB mailslot write
    /// (`nbdgm_wire::mailslot::MailslotWrite`) to `\MAILSLOT\BROWSE` or `\MAILSLOT\LANMAN`.
    /// `source` is always our `<name><00>`. Names carry no scope (the node adds it).
    Send {
        source: Name,
        destination: Name,
        target: Target,
        data: Vec<u8>,
        /// `Some` when this answers a received frame.
        reply_to: Option<ReplyTo>,
    },
    /// Register a name (answer with [`Browser::name_registered`] / [`Browser::name_failed`]).
    Register { name: Name, group: bool },
    /// Release a name.
    Release { name: Name },
    /// For the log and the API.
    Event(BrowserEvent),
    /// As backup browser: fetch the master's list (RAP NetServerEnum2 over SMB, MS-BRWS
    /// §3.3.6) and hand it back with [`Browser::master_list`] or
    /// [`Browser::master_list_failed`]. One at a time.
    FetchMasterList {
        master: String,
        address: Ipv4Addr,
        workgroup: String,
    },
}

/// Our browser role (MS-BRWS §3.3: potential, backup, local master).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Not a browser: a server (or a passive listener) only.
    None,
    Potential,
    Backup,
    Master,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Potential => "potential",
            Role::Backup => "backup",
            Role::Master => "master",
        }
    }
}

/// A frame refused on purpose (each has a counter in [`BrowserStats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// ResetStateRequest while `allow_reset` is off.
    ResetState,
    /// RequestElection beyond `elections_per_minute`.
    ElectionRate,
    /// A new server while the list is at `max_servers`.
    ServerListFull,
    /// A new workgroup while the list is at `max_workgroups`.
    WorkgroupListFull,
    /// A frame the codec rejected, or with a name/comment over the limits.
    Malformed,
    /// BecomeBackup naming us from a host that is not the local master we know.
    BecomeBackup,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ResetState => "reset_state",
            Refusal::ElectionRate => "election_rate",
            Refusal::ServerListFull => "server_list_full",
            Refusal::WorkgroupListFull => "workgroup_list_full",
            Refusal::Malformed => "malformed",
            Refusal::BecomeBackup => "become_backup",
        }
    }
}

/// What the browser reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserEvent {
    RoleChanged {
        from: Role,
        to: Role,
    },
    /// We started (or restarted) an election.
    ElectionStarted,
    /// We won and hold `<workgroup><1D>`.
    ElectionWon,
    /// We lost to `winner` (its server name).
    ElectionLost {
        winner: String,
    },
    /// Another local master browser announced itself (`name` at `from`).
    MasterSeen {
        name: String,
        from: SocketAddrV4,
    },
    /// We asked `candidate` to become a backup browser.
    BackupPromoted {
        candidate: String,
    },
    /// A frame refused on purpose (rate-limit the log line).
    Refused {
        what: Refusal,
        from: SocketAddrV4,
    },
    /// A ResetStateRequest we obeyed.
    ResetState {
        flags: u8,
        from: SocketAddrV4,
    },
}

/// The browser of one subnet.
#[derive(Debug)]
pub struct Browser {
    cfg: BrowserConfig,
    /// BrowserServerUpTime.
    created: Instant,
    rng: Rng,
    started: bool,
    shut_down: bool,
    /// `<name><00>` is registered: announcements may start.
    name_ok: bool,
    /// ResetStateRequest RESET_STATE_STOP: no browser role until `set_config`.
    stopped: bool,
    role: Role,
    /// We asked for `<WG><1E>` (and have not released it).
    holds_1e: bool,
    /// Our `<name><00>`, the source of everything we send.
    me: Name,
    table: BrowseTable,
    /// LMB of our workgroup as last announced (name, address, expiry).
    master: Option<(String, Ipv4Addr, Instant)>,
    heard_lanman: bool,
    host: Periodic,
    lma: Periodic,
    dom: Periodic,
    lm_next: Option<Instant>,
    /// Pending answer to AnnouncementRequest.
    reply_at: Option<Instant>,
    /// Next "is there a local master browser?" check.
    master_check: Option<Instant>,
    /// Backup: next fetch of the master's list, and whether one is running.
    sync_next: Option<Instant>,
    sync_pending: bool,
    /// When the last fetch of the master's list was asked for (one per MASTER_SYNC_MS).
    last_fetch: Option<Instant>,
    /// Election starts left in the burst, and when the last one was added back.
    election_tokens: (u32, Instant),
    election: Election,
    /// BecomeBackup sent (upper-case name → when).
    promoted: HashMap<String, Instant>,
    /// Start and count of the current `elections_per_minute` window.
    election_window: (Instant, u32),
    actions: VecDeque<Action>,
    stats: BrowserStats,
}

fn dest_is(n: &Name, plain: &str, suffix: u8) -> bool {
    n.suffix() == suffix && n.name().eq_ignore_ascii_case(plain)
}

/// Latin-1 length (one byte per char) within `max`, and not empty.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= MAX_NAME_LEN
}

impl Browser {
    /// Fails on an invalid configuration (names too long, ...). `seed` drives the
    /// random delays (AnnouncementRequest 0–30 s, election back-off).
    pub fn new(mut config: BrowserConfig, now: Instant, seed: u64) -> Result<Browser, String> {
        config.validate()?;
        let me = Name::new(&config.name, 0x00).map_err(|e| e.to_string())?;
        let burst = config.election_start_burst;
        Ok(Browser {
            cfg: config,
            created: now,
            rng: Rng::new(seed),
            started: false,
            shut_down: false,
            name_ok: false,
            stopped: false,
            role: Role::None,
            holds_1e: false,
            me,
            table: BrowseTable::default(),
            master: None,
            heard_lanman: false,
            host: Periodic::default(),
            lma: Periodic::default(),
            dom: Periodic::default(),
            lm_next: None,
            reply_at: None,
            master_check: None,
            sync_next: None,
            sync_pending: false,
            last_fetch: None,
            election_tokens: (burst, now),
            election: Election::default(),
            promoted: HashMap::new(),
            election_window: (now, 0),
            actions: VecDeque::new(),
            stats: BrowserStats::default(),
        })
    }

    /// Replace the configuration (SIGHUP); role changes follow (e.g. `potential_browser`
    /// off → give up roles and release names). A new name waits for its
    /// `name_registered`; a new workgroup drops roles and re-registers `<WG><1E>`.
    /// Clears a ResetState "stop". Announcements restart after [`CHANGE_DELAY`].
    pub fn set_config(&mut self, mut config: BrowserConfig, now: Instant) -> Result<(), String> {
        config.validate()?;
        let me = Name::new(&config.name, 0x00).map_err(|e| e.to_string())?;
        if self.shut_down {
            self.cfg = config;
            self.me = me;
            return Ok(());
        }
        let name_changed = !config.name.eq_ignore_ascii_case(&self.cfg.name);
        let wg_changed = !config.workgroup.eq_ignore_ascii_case(&self.cfg.workgroup);
        let browse_off = !config.potential_browser;
        if self.started && (wg_changed || browse_off || name_changed) {
            // Give up every role under the old names.
            self.drop_roles(now, Role::None);
            if self.holds_1e {
                let n = self.wg_name(0x1E);
                self.release(n);
                self.holds_1e = false;
            }
            self.master = None;
        }
        self.cfg = config;
        self.me = me;
        self.stopped = false;
        self.election_tokens.0 = self.election_tokens.0.min(self.cfg.election_start_burst);
        if name_changed {
            self.name_ok = false;
            self.host.stop();
        }
        self.table
            .trim(self.cfg.max_servers, self.cfg.max_workgroups);
        self.update_gauges();
        if self.started {
            self.become_browser_if_configured(now);
            if self.is_browser()
                && self.cfg.preferred_master
                && self.role != Role::Master
                && self.name_ok
            {
                self.start_election(now);
            }
        }
        self.changed(now);
        Ok(())
    }

    /// Begin: register `<workgroup><1E>` (group) when a potential browser, and start
    /// the announcement timers once our `<name><00>` is registered.
    pub fn start(&mut self, now: Instant) {
        if self.started || self.shut_down {
            return;
        }
        self.started = true;
        self.become_browser_if_configured(now);
        if self.name_ok {
            self.names_ready(now);
        }
    }

    /// The node registered `name` (any of our names; ignore the ones we did not ask for,
    /// except `<name><00>`, which starts the announcements).
    pub fn name_registered(&mut self, now: Instant, name: &Name) {
        if self.shut_down {
            return;
        }
        if name.raw() == self.me.raw() {
            if !self.name_ok {
                self.name_ok = true;
                if self.started {
                    self.names_ready(now);
                }
            }
        } else if name.raw() == self.wg_name(0x1D).raw() && self.election.phase == Phase::Claiming {
            self.become_master(now);
        }
    }

    /// Registering `name` failed (conflict): for `<1D>`, another LMB exists. A claim
    /// that fails restarts the election (MS-BRWS §3.3.6); a master losing `<1D>` steps
    /// down.
    pub fn name_failed(&mut self, now: Instant, name: &Name) {
        if self.shut_down || name.raw() != self.wg_name(0x1D).raw() {
            return;
        }
        if self.election.phase == Phase::Claiming {
            self.release(Name::msbrowse());
            let d = election::delay(self.role, &mut self.rng);
            self.election.restart(now, d);
            self.stats.elections_started += 1;
            self.event(BrowserEvent::ElectionStarted);
        } else if self.role == Role::Master {
            self.release(Name::msbrowse());
            self.set_role(now, self.demoted_role());
            self.lost(String::new());
        }
    }

    /// A received browser datagram.
    pub fn handle(&mut self, now: Instant, inbound: Inbound<'_>) {
        self.stats.frames_received += 1;
        if self.shut_down {
            return;
        }
        self.table.expire(now);
        if inbound.mailslot.eq_ignore_ascii_case(BROWSE) {
            self.handle_browse(now, &inbound);
        } else if inbound.mailslot.eq_ignore_ascii_case(LANMAN) {
            self.handle_lanman(now, &inbound);
        } else {
            self.stats.frames_ignored += 1;
        }
        self.update_gauges();
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.shut_down {
            return;
        }
        self.table.expire(now);
        if self.master.as_ref().is_some_and(|m| m.2 <= now) {
            self.master = None;
        }
        self.promoted
            .retain(|_, t| now.saturating_duration_since(*t) < PROMOTION_HOLD);
        if self.election.next().is_some_and(|t| t <= now) {
            self.election_timer(now);
        }
        if self.host.due(now) {
            self.host_timer(now);
        }
        if self.lma.due(now) {
            self.lma_timer(now);
            self.check_backups(now);
        }
        if self.dom.due(now) {
            self.domain_timer(now);
        }
        if self.lm_next.is_some_and(|t| t <= now) {
            self.send_lanman(self.our_type());
            self.lm_next = Some(now + self.cfg.lm_interval);
        }
        if self.sync_next.is_some_and(|t| t <= now) {
            self.sync_timer(now);
        }
        if self.master_check.is_some_and(|t| t <= now) {
            self.master_check = Some(now + MASTER_CHECK_EVERY);
            if self.is_browser()
                && self.role != Role::Master
                && self.master.is_none()
                && self.election.next().is_none()
            {
                self.stats.master_checks_failed += 1;
                self.start_election(now);
            }
        }
        if self.reply_at.is_some_and(|t| t <= now) {
            self.reply_at = None;
            if self.role == Role::Master {
                let p = if self.lma.last_ms == 0 {
                    120_000
                } else {
                    self.lma.last_ms
                };
                self.send_lma(p);
            } else if self.announcing() {
                let p = if self.host.last_ms == 0 {
                    60_000
                } else {
                    self.host.last_ms
                };
                self.send_host(p, self.our_type());
            }
        }
        self.update_gauges();
    }

    /// The earliest deadline (announcements, election, AnnouncementRequest answer,
    /// list expiry); `None` when nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.shut_down {
            return None;
        }
        [
            self.host.next,
            self.lma.next,
            self.dom.next,
            self.lm_next,
            self.reply_at,
            self.master_check,
            self.sync_next,
            self.election.next(),
            self.table.next_expiry(),
            self.master.as_ref().map(|m| m.2),
            self.promoted.values().min().map(|t| *t + PROMOTION_HOLD),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Server type 0 announcement (BROWSE, remote targets, and LANMAN when on); as LMB
    /// a RequestElection with version and criteria 0 (MS-BRWS §3.3.7) and release of
    /// `<1D>` and MSBROWSE; release `<1E>`. Afterwards the engine is inert.
    pub fn shutdown(&mut self, now: Instant) {
        if self.shut_down {
            return;
        }
        if self.announcing() {
            self.send_host(0, 0);
            if self.lm_enabled() {
                self.send_lanman(0);
            }
        }
        if self.role == Role::Master {
            let f = BrowserFrame::RequestElection(RequestElection {
                election_version: 0,
                criteria: 0,
                uptime_ms: 0,
                server_name: self.cfg.name.clone(),
                ..RequestElection::default()
            });
            self.send_browse(self.wg_name(0x1E), Target::Broadcast, &f);
            self.stats.elections_sent += 1;
        }
        self.drop_roles(now, Role::None);
        if self.holds_1e {
            let n = self.wg_name(0x1E);
            self.release(n);
            self.holds_1e = false;
        }
        self.shut_down = true;
        self.host.stop();
        self.lma.stop();
        self.dom.stop();
        self.lm_next = None;
        self.reply_at = None;
    }

    /// The master's list, fetched after [`Action::FetchMasterList`]: servers of our
    /// workgroup and (from a DOMAIN_ENUM request) workgroups with their masters. Entries
    /// we heard ourselves are kept as heard (they carry addresses; the master's list has
    /// none: these show 0.0.0.0). They expire like an announcement every 12 minutes.
    pub fn master_list(&mut self, now: Instant, servers: Vec<Listed>, workgroups: Vec<Listed>) {
        self.sync_pending = false;
        if self.shut_down {
            return;
        }
        self.stats.master_syncs += 1;
        let wg = self.cfg.workgroup.clone();
        for l in servers.into_iter().filter(|l| valid_name(&l.name)) {
            if l.name.eq_ignore_ascii_case(&self.cfg.name) || self.table.has_server(&wg, &l.name) {
                continue;
            }
            let h = Heard {
                name: l.name.to_ascii_uppercase(),
                group: wg.clone(),
                server_type: l.server_type & !ServerType::LOCAL_LIST_ONLY,
                os_major: l.os_major,
                os_minor: l.os_minor,
                periodicity_ms: MASTER_SYNC_MS,
                comment: l.comment.chars().take(wire::MAX_COMMENT_LEN).collect(),
                address: Ipv4Addr::UNSPECIFIED,
                lanman: false,
            };
            match self.table.upsert_server(now, h, self.cfg.max_servers) {
                Upsert::Full => {
                    self.stats.refused_server_list_full += 1;
                    break;
                }
                _ => self.stats.master_list_entries += 1,
            }
        }
        for l in workgroups.into_iter().filter(|l| valid_name(&l.name)) {
            if self.table.has_group(&l.name) {
                continue;
            }
            let h = Heard {
                name: l.name.to_ascii_uppercase(),
                // NetServerEnum2 level 1 of a workgroup: the comment is its master.
                group: l.comment.chars().take(MAX_NAME_LEN).collect(),
                server_type: l.server_type,
                os_major: l.os_major,
                os_minor: l.os_minor,
                periodicity_ms: MASTER_SYNC_MS,
                comment: String::new(),
                address: Ipv4Addr::UNSPECIFIED,
                lanman: false,
            };
            if let Upsert::Full = self.table.upsert_group(now, h, self.cfg.max_workgroups) {
                self.stats.refused_workgroup_list_full += 1;
                break;
            }
            self.stats.master_list_entries += 1;
        }
        self.update_gauges();
    }

    /// The fetch of the master's list failed (counted; retried at the next interval).
    pub fn master_list_failed(&mut self, _now: Instant) {
        self.sync_pending = false;
        self.stats.master_sync_failures += 1;
    }

    fn sync_timer(&mut self, now: Instant) {
        if self.role != Role::Backup || self.shut_down {
            self.sync_next = None;
            return;
        }
        let period = Duration::from_millis(u64::from(MASTER_SYNC_MS));
        if let Some(last) = self
            .last_fetch
            .filter(|t| now.saturating_duration_since(*t) < period)
        {
            // One fetch per period, whatever asked for this one (issue 12 item 1).
            self.stats.master_syncs_deferred += 1;
            self.sync_next = Some(last + period);
            return;
        }
        match (&self.master, self.sync_pending) {
            (Some((name, address, _)), false) => {
                self.actions.push_back(Action::FetchMasterList {
                    master: name.clone(),
                    address: *address,
                    workgroup: self.cfg.workgroup.clone(),
                });
                self.sync_pending = true;
                self.last_fetch = Some(now);
                self.sync_next = Some(now + period);
            }
            // No master known yet (or a fetch still running): look again soon.
            _ => self.sync_next = Some(now + MASTER_SYNC_RETRY),
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The browse list now (ages and expiry relative to `now`). Our own entry is there
    /// (`local: true`, address 0.0.0.0) while we announce; our workgroup while we are
    /// the local master.
    pub fn list(&self, now: Instant) -> BrowseList {
        let wg = self.cfg.workgroup.clone();
        let mut servers = self.table.server_entries(now);
        if self.announcing() {
            let p = if self.host.last_ms == 0 {
                60_000
            } else {
                self.host.last_ms
            };
            servers.push(ServerEntry {
                name: self.cfg.name.clone(),
                workgroup: wg.clone(),
                server_type: self.our_type(),
                os_major: self.cfg.os_version.0,
                os_minor: self.cfg.os_version.1,
                comment: self.cfg.comment.clone(),
                periodicity_ms: p,
                address: Ipv4Addr::UNSPECIFIED,
                age_s: 0,
                expires_in_s: crate::list::expiry_after(p).as_secs(),
                lanman: false,
                local: true,
            });
        }
        servers.sort_by(|a, b| (&a.workgroup, &a.name).cmp(&(&b.workgroup, &b.name)));
        let mut workgroups = self.table.group_entries(now);
        if self.role == Role::Master {
            workgroups.retain(|w| !w.name.eq_ignore_ascii_case(&wg));
            let p = if self.dom.last_ms == 0 {
                60_000
            } else {
                self.dom.last_ms
            };
            workgroups.push(WorkgroupEntry {
                name: wg.clone(),
                master: self.cfg.name.clone(),
                server_type: ServerType::DOMAIN_ENUM | ServerType::NT,
                os_major: self.cfg.os_version.0,
                os_minor: self.cfg.os_version.1,
                periodicity_ms: p,
                address: Ipv4Addr::UNSPECIFIED,
                age_s: 0,
                expires_in_s: crate::list::expiry_after(p).as_secs(),
                local: true,
            });
        }
        workgroups.sort_by(|a, b| a.name.cmp(&b.name));
        let (master, master_address) = if self.role == Role::Master {
            (Some(self.cfg.name.clone()), None)
        } else {
            match &self.master {
                Some((n, a, t)) if *t > now => (Some(n.clone()), Some(*a)),
                _ => (None, None),
            }
        };
        let mut backups = self.known_backups(now);
        if self.role == Role::Backup {
            backups.push(self.cfg.name.clone());
            backups.sort();
        }
        BrowseList {
            workgroup: wg,
            role: self.role,
            master,
            master_address,
            backups,
            servers,
            workgroups,
        }
    }

    pub fn stats(&self) -> &BrowserStats {
        &self.stats
    }

    pub fn config(&self) -> &BrowserConfig {
        &self.cfg
    }

    // ---------------------------------------------------------------------------------
    // State helpers

    fn wg_name(&self, suffix: u8) -> Name {
        // The workgroup was validated; the fallback is never used.
        Name::new(&self.cfg.workgroup, suffix).unwrap_or_else(|_| Name::wildcard())
    }

    fn announcing(&self) -> bool {
        self.started && self.name_ok && self.cfg.announce && !self.shut_down
    }

    fn is_browser(&self) -> bool {
        self.started && !self.stopped && self.cfg.potential_browser && self.role != Role::None
    }

    fn lm_enabled(&self) -> bool {
        self.announcing()
            && match self.cfg.lm_announce {
                LmAnnounce::Yes => true,
                LmAnnounce::Auto => self.heard_lanman,
                LmAnnounce::No => false,
            }
    }

    /// ServerType we announce: configured bits without LOCAL_LIST_ONLY, DOMAIN_ENUM and
    /// the role bits, plus the bits of our role.
    fn our_type(&self) -> u32 {
        let mut t = self.cfg.server_type
            & !(ServerType::LOCAL_LIST_ONLY
                | ServerType::DOMAIN_ENUM
                | ServerType::POTENTIAL_BROWSER
                | ServerType::BACKUP_BROWSER
                | ServerType::MASTER_BROWSER);
        if self.is_browser() {
            t |= ServerType::POTENTIAL_BROWSER;
        }
        match self.role {
            Role::Backup => t |= ServerType::BACKUP_BROWSER,
            Role::Master => t |= ServerType::MASTER_BROWSER,
            Role::None | Role::Potential => {}
        }
        t
    }

    fn our_criteria(&self) -> u32 {
        election::criteria(
            self.cfg.os_level,
            self.cfg.preferred_master,
            self.cfg.server_type,
            self.role,
        )
    }

    fn uptime_ms(&self, now: Instant) -> u32 {
        millis(now.saturating_duration_since(self.created))
    }

    /// Role after losing the master role: backup for a DC (MS-BRWS §3.3.5.8).
    fn demoted_role(&self) -> Role {
        if self.cfg.server_type & ServerType::DOMAIN_CTRL != 0 {
            Role::Backup
        } else {
            Role::Potential
        }
    }

    fn event(&mut self, e: BrowserEvent) {
        if self.actions.len() >= MAX_QUEUED {
            self.stats.events_dropped += 1;
        } else {
            self.actions.push_back(Action::Event(e));
        }
    }

    fn refuse(&mut self, what: Refusal, from: SocketAddrV4) {
        match what {
            Refusal::ResetState => self.stats.refused_reset_state += 1,
            Refusal::ElectionRate => self.stats.refused_election_rate += 1,
            Refusal::ServerListFull => self.stats.refused_server_list_full += 1,
            Refusal::WorkgroupListFull => self.stats.refused_workgroup_list_full += 1,
            Refusal::Malformed => self.stats.refused_malformed += 1,
            Refusal::BecomeBackup => self.stats.refused_become_backup += 1,
        }
        self.event(BrowserEvent::Refused { what, from });
    }

    fn release(&mut self, name: Name) {
        self.actions.push_back(Action::Release { name });
    }

    fn update_gauges(&mut self) {
        self.stats.servers = self.table.server_count() as u64;
        self.stats.workgroups = self.table.group_count() as u64;
    }

    fn set_role(&mut self, now: Instant, to: Role) {
        let from = self.role;
        if from == to {
            return;
        }
        self.role = to;
        if from == Role::Master {
            self.lma.stop();
            self.dom.stop();
            self.promoted.clear();
        }
        // A backup keeps a copy of the master's list (MS-BRWS §3.3.6).
        self.sync_next = (to == Role::Backup).then_some(now);
        self.sync_pending = false;
        self.event(BrowserEvent::RoleChanged { from, to });
        self.changed(now);
    }

    /// Something we announce changed: announce again soon.
    fn changed(&mut self, now: Instant) {
        if self.announcing() {
            self.host.restart(now + CHANGE_DELAY);
        } else {
            self.host.stop();
        }
        if self.role == Role::Master && self.lma.next.is_some() {
            self.lma.restart(now + CHANGE_DELAY);
        }
        self.refresh_lm(now);
    }

    fn refresh_lm(&mut self, now: Instant) {
        if !self.lm_enabled() {
            self.lm_next = None;
        } else if self.lm_next.is_none() {
            self.lm_next = Some(now);
        }
    }

    /// Take the configured browser role (Potential, `<1E>` registered) if not one.
    fn become_browser_if_configured(&mut self, now: Instant) {
        if !self.cfg.potential_browser || self.stopped {
            return;
        }
        if !self.holds_1e {
            let name = self.wg_name(0x1E);
            self.actions
                .push_back(Action::Register { name, group: true });
            self.holds_1e = true;
        }
        if self.role == Role::None {
            self.set_role(now, Role::Potential);
        }
    }

    fn names_ready(&mut self, now: Instant) {
        if self.announcing() {
            self.host.restart(now);
        }
        self.refresh_lm(now);
        if self.is_browser() && self.cfg.preferred_master {
            self.start_election(now);
        }
        if self.is_browser() {
            self.master_check = Some(now + MASTER_CHECK_FIRST);
        }
    }

    /// Stop any election and give up the master (and, for `Role::None`, every) role,
    /// releasing what we hold or asked for.
    fn drop_roles(&mut self, now: Instant, to: Role) {
        if self.election.phase == Phase::Claiming || self.role == Role::Master {
            let n = self.wg_name(0x1D);
            self.release(n);
            self.release(Name::msbrowse());
        }
        self.election.stop();
        match to {
            Role::None => self.set_role(now, Role::None),
            _ => {
                if self.role == Role::Master || self.role == Role::Backup {
                    self.set_role(now, to);
                }
            }
        }
    }

    fn lost(&mut self, winner: String) {
        self.stats.elections_lost += 1;
        self.event(BrowserEvent::ElectionLost { winner });
    }

    // ---------------------------------------------------------------------------------
    // Elections

    /// Start an election unless one runs or the start rate limit says no (issue 12
    /// item 8: a burst of `election_start_burst`, then one per `election_start_interval`).
    fn start_election(&mut self, now: Instant) {
        if self.election.active() {
            return;
        }
        let burst = self.cfg.election_start_burst;
        let every = self.cfg.election_start_interval;
        let (tokens, since) = &mut self.election_tokens;
        if *tokens >= burst {
            *since = now;
        } else {
            let n = now.saturating_duration_since(*since).as_nanos() / every.as_nanos().max(1);
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            if n > 0 {
                *tokens = tokens.saturating_add(n).min(burst);
                *since = if *tokens >= burst {
                    now
                } else {
                    *since + every * n
                };
            }
        }
        if *tokens == 0 {
            self.stats.elections_suppressed += 1;
            return;
        }
        let d = election::delay(self.role, &mut self.rng);
        if self.election.start(now, d) {
            self.election_tokens.0 -= 1;
            self.stats.elections_started += 1;
            self.event(BrowserEvent::ElectionStarted);
        }
    }

    fn election_timer(&mut self, now: Instant) {
        let d = election::delay(self.role, &mut self.rng);
        let Some(step) = self.election.fire(now, d) else {
            return;
        };
        if step == Step::GiveUp {
            if self.role == Role::Master {
                self.drop_roles(now, self.demoted_role());
            }
            self.lost(String::new());
            return;
        }
        let f = BrowserFrame::RequestElection(RequestElection {
            election_version: election::ELECTION_VERSION,
            criteria: self.our_criteria(),
            uptime_ms: self.uptime_ms(now),
            server_name: self.cfg.name.clone(),
            ..RequestElection::default()
        });
        self.send_browse(self.wg_name(0x1E), Target::Broadcast, &f);
        self.stats.elections_sent += 1;
        if step == Step::SendAndWin {
            if self.role == Role::Master {
                // Re-won while master: announce afresh.
                self.election.stop();
                self.stats.elections_won += 1;
                self.event(BrowserEvent::ElectionWon);
                self.start_master_timers(now);
            } else {
                let n = self.wg_name(0x1D);
                self.actions.push_back(Action::Register {
                    name: n,
                    group: false,
                });
                self.actions.push_back(Action::Register {
                    name: Name::msbrowse(),
                    group: true,
                });
            }
        }
    }

    fn become_master(&mut self, now: Instant) {
        self.election.stop();
        self.master = None;
        self.set_role(now, Role::Master);
        self.stats.elections_won += 1;
        self.event(BrowserEvent::ElectionWon);
        let f = BrowserFrame::AnnouncementRequest(AnnouncementRequest {
            reserved: 0,
            response_name: self.cfg.name.clone(),
            trailing: Vec::new(),
        });
        self.send_browse(self.wg_name(0x1E), Target::Broadcast, &f);
        self.start_master_timers(now);
    }

    /// LMA and DomainAnnouncement now, then on their schedules; backups checked.
    fn start_master_timers(&mut self, now: Instant) {
        self.lma.restart(now);
        self.dom.restart(now);
        self.lma_timer(now);
        self.domain_timer(now);
        self.check_backups(now);
    }

    fn on_request_election(&mut self, now: Instant, ib: &Inbound<'_>, e: &RequestElection) {
        if !dest_is(ib.destination, &self.cfg.workgroup, 0x1E)
            || e.server_name.eq_ignore_ascii_case(&self.cfg.name)
            || ib.source.raw() == self.me.raw()
        {
            self.stats.frames_ignored += 1;
            return;
        }
        if now.saturating_duration_since(self.election_window.0) >= ELECTION_WINDOW {
            self.election_window = (now, 0);
        }
        if self.election_window.1 >= self.cfg.elections_per_minute {
            self.refuse(Refusal::ElectionRate, ib.from);
            return;
        }
        self.election_window.1 += 1;
        self.stats.elections_received += 1;
        if !self.is_browser() {
            return;
        }
        let criteria = self.our_criteria();
        let ours = Ballot {
            version: election::ELECTION_VERSION,
            criteria,
            uptime_ms: self.uptime_ms(now),
            name: &self.cfg.name,
        };
        let theirs = Ballot {
            version: e.election_version,
            criteria: e.criteria,
            uptime_ms: e.uptime_ms,
            name: &e.server_name,
        };
        match election::compare(&ours, &theirs) {
            Ordering::Greater => self.start_election(now),
            Ordering::Less => {
                let was = self.election.active() || self.role == Role::Master;
                if self.role == Role::Master {
                    self.drop_roles(now, self.demoted_role());
                } else {
                    self.drop_roles(now, self.role);
                }
                if was {
                    self.lost(e.server_name.clone());
                }
            }
            Ordering::Equal => {}
        }
    }

    // ---------------------------------------------------------------------------------
    // Sending

    fn send(&mut self, slot: &str, destination: Name, target: Target, payload: Vec<u8>) {
        self.send_marked(slot, destination, target, payload, None)
    }

    fn send_marked(
        &mut self,
        slot: &str,
        destination: Name,
        target: Target,
        payload: Vec<u8>,
        reply_to: Option<ReplyTo>,
    ) {
        if let Ok(data) = MailslotWrite::new(slot, payload).to_bytes() {
            self.actions.push_back(Action::Send {
                source: self.me.clone(),
                destination,
                target,
                data,
                reply_to,
            });
        }
    }

    /// Answer the frame `ib` by unicast to its UDP source, marked as a reply.
    fn reply_browse(&mut self, ib: &Inbound<'_>, destination: Name, f: &BrowserFrame) {
        if let Ok(b) = f.to_bytes() {
            let reply_to = Some(ReplyTo {
                to: ib.from,
                request_len: ib.request_len,
            });
            self.send_marked(BROWSE, destination, Target::Unique(ib.from), b, reply_to);
        }
    }

    fn send_browse(&mut self, destination: Name, target: Target, f: &BrowserFrame) {
        if let Ok(b) = f.to_bytes() {
            self.send(BROWSE, destination, target, b);
        }
    }

    fn announcement(&self, periodicity_ms: u32, server_type: u32) -> Announcement {
        Announcement {
            periodicity_ms,
            server_name: self.cfg.name.clone(),
            os_major: self.cfg.os_version.0,
            os_minor: self.cfg.os_version.1,
            server_type,
            comment: self.cfg.comment.clone(),
            ..Announcement::default()
        }
    }

    /// HostAnnouncement to `<WG><1D>` (broadcast) and to every remote target.
    fn send_host(&mut self, periodicity_ms: u32, server_type: u32) {
        let f = BrowserFrame::HostAnnouncement(self.announcement(periodicity_ms, server_type));
        if self.role != Role::Master || server_type == 0 {
            self.send_browse(self.wg_name(0x1D), Target::Broadcast, &f);
            self.stats.host_announcements_sent += 1;
        }
        self.send_remote(&f);
    }

    fn send_remote(&mut self, f: &BrowserFrame) {
        for i in 0..self.cfg.remote_announce.len() {
            let r = &self.cfg.remote_announce[i];
            let wg = r
                .workgroup
                .clone()
                .unwrap_or_else(|| self.cfg.workgroup.clone());
            let to = SocketAddrV4::new(r.address, self.cfg.datagram_port);
            if let Ok(n) = Name::new(&wg, 0x1D) {
                self.send_browse(n, Target::GroupAt(to), f);
                self.stats.remote_announcements_sent += 1;
            }
        }
    }

    fn host_timer(&mut self, now: Instant) {
        let i = schedule::host_interval(self.host.count, self.cfg.max_announce_interval);
        self.send_host(millis(i), self.our_type());
        self.host.fired(now, i);
    }

    fn send_lma(&mut self, periodicity_ms: u32) {
        let f = BrowserFrame::LocalMasterAnnouncement(
            self.announcement(periodicity_ms, self.our_type()),
        );
        self.send_browse(self.wg_name(0x1E), Target::Broadcast, &f);
        self.stats.local_master_announcements_sent += 1;
    }

    fn send_domain(&mut self, periodicity_ms: u32) {
        let f = BrowserFrame::DomainAnnouncement(DomainAnnouncement {
            periodicity_ms,
            machine_group: self.cfg.workgroup.clone(),
            server_type: ServerType::DOMAIN_ENUM | ServerType::NT,
            local_master_name: self.cfg.name.clone(),
            ..DomainAnnouncement::default()
        });
        self.send_browse(Name::msbrowse(), Target::Broadcast, &f);
        self.stats.domain_announcements_sent += 1;
    }

    fn lma_timer(&mut self, now: Instant) {
        let i = schedule::lma_interval(self.lma.count);
        self.send_lma(millis(i));
        self.lma.fired(now, i);
    }

    fn domain_timer(&mut self, now: Instant) {
        let i = schedule::domain_interval(self.dom.count);
        self.send_domain(millis(i));
        self.dom.fired(now, i);
    }

    /// LAN Manager announcement to `<WG><00>` on `\MAILSLOT\LANMAN`.
    fn send_lanman(&mut self, server_type: u32) {
        let secs = u16::try_from(self.cfg.lm_interval.as_secs()).unwrap_or(u16::MAX);
        let f = LanmanFrame::Announcement(LanmanAnnouncement {
            server_type,
            os_major: self.cfg.os_version.0,
            os_minor: self.cfg.os_version.1,
            periodicity_s: secs,
            server_name: self.cfg.name.clone(),
            comment: self.cfg.comment.clone(),
            ..LanmanAnnouncement::default()
        });
        if let Ok(b) = f.to_bytes() {
            self.send(LANMAN, self.wg_name(0x00), Target::Broadcast, b);
            self.stats.lanman_announcements_sent += 1;
        }
    }

    // ---------------------------------------------------------------------------------
    // Receiving

    fn handle_browse(&mut self, now: Instant, ib: &Inbound<'_>) {
        let f = match BrowserFrame::parse(ib.data) {
            Ok(f) => f,
            Err(_) => return self.refuse(Refusal::Malformed, ib.from),
        };
        if f.check_sender_limits().is_err() {
            return self.refuse(Refusal::Malformed, ib.from);
        }
        match &f {
            BrowserFrame::HostAnnouncement(a) => {
                self.on_announcement(now, ib, heard(a, ib, false), false)
            }
            BrowserFrame::LocalMasterAnnouncement(a) => {
                self.on_announcement(now, ib, heard(a, ib, false), true)
            }
            BrowserFrame::AnnouncementRequest(_) => self.on_announcement_request(now, ib),
            BrowserFrame::RequestElection(e) => self.on_request_election(now, ib, e),
            BrowserFrame::GetBackupListRequest(r) => {
                self.on_backup_list_request(now, ib, r.count, r.token)
            }
            BrowserFrame::BecomeBackup(b) => self.on_become_backup(now, ib, b),
            BrowserFrame::DomainAnnouncement(d) => {
                if ib.destination.raw() != Name::msbrowse().raw() {
                    self.stats.frames_ignored += 1;
                    return;
                }
                let h = Heard {
                    name: d.machine_group.clone(),
                    group: d.local_master_name.clone(),
                    server_type: d.server_type,
                    os_major: d.browser_config_version_major,
                    os_minor: d.browser_config_version_minor,
                    periodicity_ms: d.periodicity_ms,
                    comment: String::new(),
                    address: *ib.from.ip(),
                    lanman: false,
                };
                self.on_domain(now, ib, h);
            }
            BrowserFrame::MasterAnnouncement(_) => self.stats.master_announcements_received += 1,
            BrowserFrame::ResetStateRequest(r) => self.on_reset(now, ib, r.reset_type),
            BrowserFrame::GetBackupListResponse(_) => self.stats.frames_ignored += 1,
            BrowserFrame::Unknown(_) => self.stats.unknown_opcodes += 1,
        }
    }

    fn handle_lanman(&mut self, now: Instant, ib: &Inbound<'_>) {
        let f = match LanmanFrame::parse(ib.data) {
            Ok(f) => f,
            Err(_) => return self.refuse(Refusal::Malformed, ib.from),
        };
        let from_self = ib.source.raw() == self.me.raw();
        match f {
            LanmanFrame::Announcement(a) => {
                if !valid_name(&a.server_name) || a.comment.chars().count() > MAX_COMMENT_LEN {
                    return self.refuse(Refusal::Malformed, ib.from);
                }
                self.stats.lanman_announcements_received += 1;
                if !from_self && !a.server_name.eq_ignore_ascii_case(&self.cfg.name) {
                    self.heard_lanman_now(now);
                }
                let mut h = Heard {
                    name: a.server_name,
                    group: String::new(),
                    server_type: a.server_type,
                    os_major: a.os_major,
                    os_minor: a.os_minor,
                    periodicity_ms: u32::from(a.periodicity_s).saturating_mul(1000),
                    comment: a.comment,
                    address: *ib.from.ip(),
                    lanman: true,
                };
                if a.opcode == wire::opcode::DOMAIN_ANNOUNCEMENT {
                    // LM layout 0x0C: workgroup name, then its master's name.
                    h.group = std::mem::take(&mut h.comment);
                    self.on_domain(now, ib, h);
                } else {
                    let lma = a.opcode == wire::opcode::LOCAL_MASTER_ANNOUNCEMENT;
                    self.on_announcement(now, ib, h, lma);
                }
            }
            LanmanFrame::Browser(f) => {
                if f.check_sender_limits().is_err() {
                    return self.refuse(Refusal::Malformed, ib.from);
                }
                self.stats.lanman_announcements_received += 1;
                match &f {
                    BrowserFrame::HostAnnouncement(a)
                    | BrowserFrame::LocalMasterAnnouncement(a) => {
                        if !from_self && !a.server_name.eq_ignore_ascii_case(&self.cfg.name) {
                            self.heard_lanman_now(now);
                        }
                        let lma = matches!(f, BrowserFrame::LocalMasterAnnouncement(_));
                        self.on_announcement(now, ib, heard(a, ib, true), lma);
                    }
                    BrowserFrame::DomainAnnouncement(d) => {
                        let h = Heard {
                            name: d.machine_group.clone(),
                            group: d.local_master_name.clone(),
                            server_type: d.server_type,
                            os_major: d.browser_config_version_major,
                            os_minor: d.browser_config_version_minor,
                            periodicity_ms: d.periodicity_ms,
                            comment: String::new(),
                            address: *ib.from.ip(),
                            lanman: true,
                        };
                        self.on_domain(now, ib, h);
                    }
                    _ => self.stats.unknown_opcodes += 1,
                }
            }
            LanmanFrame::Unknown(_) => self.stats.unknown_opcodes += 1,
        }
    }

    fn heard_lanman_now(&mut self, now: Instant) {
        if !self.heard_lanman {
            self.heard_lanman = true;
            self.refresh_lm(now);
        }
    }

    /// A server announcement (HostAnnouncement, LMA, LANMAN); `h.group` is filled in
    /// from the destination here.
    fn on_announcement(&mut self, now: Instant, ib: &Inbound<'_>, mut h: Heard, lma: bool) {
        if !matches!(ib.destination.suffix(), 0x00 | 0x1D | 0x1E) {
            self.stats.frames_ignored += 1;
            return;
        }
        if !valid_name(&h.name) {
            return self.refuse(Refusal::Malformed, ib.from);
        }
        if ib.source.raw() == self.me.raw() || h.name.eq_ignore_ascii_case(&self.cfg.name) {
            return;
        }
        h.group = ib.destination.name().to_ascii_uppercase();
        let ours = h.group.eq_ignore_ascii_case(&self.cfg.workgroup);
        if h.server_type == 0 {
            self.table.remove_server(&h.group, &h.name);
            if ours
                && self
                    .master
                    .as_ref()
                    .is_some_and(|m| m.0.eq_ignore_ascii_case(&h.name))
            {
                self.master = None;
            }
            return;
        }
        let name = h.name.clone();
        let periodicity = h.periodicity_ms;
        let is_backup = h.server_type & ServerType::BACKUP_BROWSER != 0;
        if self.table.upsert_server(now, h, self.cfg.max_servers) == Upsert::Full {
            self.refuse(Refusal::ServerListFull, ib.from);
        }
        if ours && is_backup && self.promoted.remove(&name.to_ascii_uppercase()).is_some() {
            let wg = self.cfg.workgroup.clone();
            self.table.confirm_backup(&wg, &name);
        }
        if ours && lma {
            self.on_master_seen(now, ib, name, periodicity);
        }
    }

    fn on_master_seen(&mut self, now: Instant, ib: &Inbound<'_>, name: String, periodicity: u32) {
        let addr = *ib.from.ip();
        let changed = !self
            .master
            .as_ref()
            .is_some_and(|m| m.0.eq_ignore_ascii_case(&name) && m.1 == addr);
        if changed {
            self.event(BrowserEvent::MasterSeen {
                name: name.clone(),
                from: ib.from,
            });
        }
        if self.role == Role::Master {
            // Two masters: force an election (Samba; MS-BRWS §3.3.5.8).
            self.start_election(now);
        } else {
            self.master = Some((name, addr, now + crate::list::expiry_after(periodicity)));
        }
    }

    fn on_domain(&mut self, now: Instant, ib: &Inbound<'_>, h: Heard) {
        if !valid_name(&h.name) {
            return self.refuse(Refusal::Malformed, ib.from);
        }
        if ib.source.raw() == self.me.raw()
            || (h.name.eq_ignore_ascii_case(&self.cfg.workgroup)
                && h.group.eq_ignore_ascii_case(&self.cfg.name))
        {
            return;
        }
        if h.server_type == 0 {
            self.table.remove_group(&h.name);
            return;
        }
        if self.table.upsert_group(now, h, self.cfg.max_workgroups) == Upsert::Full {
            self.refuse(Refusal::WorkgroupListFull, ib.from);
        }
    }

    fn on_announcement_request(&mut self, now: Instant, ib: &Inbound<'_>) {
        let d = ib.destination;
        let for_us =
            d.name().eq_ignore_ascii_case(&self.cfg.workgroup) || dest_is(d, &self.cfg.name, 0x00);
        if !for_us || ib.source.raw() == self.me.raw() {
            self.stats.frames_ignored += 1;
            return;
        }
        self.stats.announcement_requests_received += 1;
        if !self.announcing() && self.role != Role::Master {
            return;
        }
        if self.reply_at.is_none() {
            let d = self
                .rng
                .millis_between(0, millis(schedule::ANNOUNCE_REPLY_MAX).into());
            self.reply_at = Some(now + d);
        }
    }

    /// Confirmed backups only (promoted by us or heard repeatedly; issue 12 item 2).
    fn known_backups(&self, now: Instant) -> Vec<String> {
        self.table.confirmed_backups(&self.cfg.workgroup, now)
    }

    fn on_backup_list_request(&mut self, now: Instant, ib: &Inbound<'_>, count: u8, token: u32) {
        if !dest_is(ib.destination, &self.cfg.workgroup, 0x1D)
            || self.role != Role::Master
            || ib.source.raw() == self.me.raw()
        {
            self.stats.frames_ignored += 1;
            return;
        }
        let mut servers = vec![self.cfg.name.clone()];
        servers.extend(self.known_backups(now));
        servers.truncate(usize::from(count.max(1)));
        let f = BrowserFrame::GetBackupListResponse(GetBackupListResponse {
            count: servers.len() as u8,
            token,
            servers,
            trailing: Vec::new(),
        });
        let mut raw = *ib.source.raw();
        raw[15] = 0x00;
        self.reply_browse(ib, Name::from_raw(raw), &f);
        self.stats.backup_list_requests_answered += 1;
    }

    /// Promote potential browsers until there is one backup per 32 servers (at least
    /// one from 2 servers, at most 3; DIGEST §6.5).
    fn check_backups(&mut self, now: Instant) {
        if self.role != Role::Master {
            return;
        }
        let mut n = 1usize; // us
        let mut have = 0usize;
        let mut candidates = Vec::new();
        for h in self.table.servers_in(&self.cfg.workgroup, now) {
            n += 1;
            let t = h.server_type;
            let key = h.name.to_ascii_uppercase();
            if t & ServerType::BACKUP_BROWSER != 0 || self.promoted.contains_key(&key) {
                have += 1;
            } else if t & ServerType::POTENTIAL_BROWSER != 0 && t & ServerType::MASTER_BROWSER == 0
            {
                candidates.push(h.name.clone());
            }
        }
        let wanted = if n < 2 { 0 } else { (n / 32 + 1).min(3) };
        candidates.sort();
        for c in candidates.into_iter().take(wanted.saturating_sub(have)) {
            let f = BrowserFrame::BecomeBackup(BecomeBackup {
                browser_to_promote: c.clone(),
                trailing: Vec::new(),
            });
            self.send_browse(self.wg_name(0x1E), Target::Broadcast, &f);
            self.promoted.insert(c.to_ascii_uppercase(), now);
            self.stats.backups_promoted += 1;
            self.event(BrowserEvent::BackupPromoted { candidate: c });
        }
    }

    fn on_become_backup(&mut self, now: Instant, ib: &Inbound<'_>, b: &BecomeBackup) {
        if !b.browser_to_promote.eq_ignore_ascii_case(&self.cfg.name)
            || ib.source.raw() == self.me.raw()
        {
            return;
        }
        if !self.is_browser() || self.role != Role::Potential {
            return;
        }
        // Only the master we know (name and address of its LocalMasterAnnouncement) may
        // make us a backup, which connects to it (issue 12 item 1).
        let from_master = self.master.as_ref().is_some_and(|(name, addr, expires)| {
            *expires > now && *addr == *ib.from.ip() && ib.source.name().eq_ignore_ascii_case(name)
        });
        if !from_master {
            return self.refuse(Refusal::BecomeBackup, ib.from);
        }
        self.set_role(now, Role::Backup);
    }

    fn on_reset(&mut self, now: Instant, ib: &Inbound<'_>, flags: u8) {
        let d = ib.destination.name();
        if !(d.eq_ignore_ascii_case(&self.cfg.name) || d.eq_ignore_ascii_case(&self.cfg.workgroup))
        {
            self.stats.frames_ignored += 1;
            return;
        }
        if !self.cfg.allow_reset {
            return self.refuse(Refusal::ResetState, ib.from);
        }
        if flags & wire::RESET_STATE_STOP_MASTER != 0 && self.role == Role::Master {
            self.drop_roles(now, Role::Potential);
        }
        if flags & wire::RESET_STATE_CLEAR_ALL != 0 {
            self.table.clear();
            self.master = None;
            self.promoted.clear();
            if self.role != Role::None {
                self.drop_roles(now, Role::Potential);
            }
        }
        if flags & wire::RESET_STATE_STOP != 0 {
            self.drop_roles(now, Role::None);
            if self.holds_1e {
                let n = self.wg_name(0x1E);
                self.release(n);
                self.holds_1e = false;
            }
            self.stopped = true;
            self.changed(now);
        }
        self.stats.reset_state_obeyed += 1;
        self.event(BrowserEvent::ResetState {
            flags,
            from: ib.from,
        });
    }
}

fn heard(a: &Announcement, ib: &Inbound<'_>, lanman: bool) -> Heard {
    Heard {
        name: a.server_name.clone(),
        group: String::new(),
        server_type: a.server_type,
        os_major: a.os_major,
        os_minor: a.os_minor,
        periodicity_ms: a.periodicity_ms,
        comment: a.comment.clone(),
        address: *ib.from.ip(),
        lanman,
    }
}
