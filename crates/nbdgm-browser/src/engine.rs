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
//!   address of the last LocalMasterAnnouncement of our workgroup;
//!   other senders are refused and counted (`refused_become_backup`).
//! * GetBackupListResponse lists only confirmed backups: promoted by us or heard with the
//!   backup bit twice a period apart ([`crate::list`]).
//! * A LocalMasterAnnouncement of our workgroup from another host while we are master
//!   is a master conflict, handled as Samba's `process_local_master_announce` does: a
//!   ResetStateRequest (type 0x02) DIRECT_UNIQUE to `__SAMBA__<20>` at the sender (marked
//!   as a reply, so the runtime's reply gate limits it), then we give up the master role
//!   (release `<1D>` and MSBROWSE) and start an election (`master_conflicts`,
//!   `reset_states_sent`).
//! * Browsing across subnets (domain master browser, MS-BRWS §3.3.6, §3.4): see
//!   `engine/domain.rs` and `engine/sync.rs`.
//! * Elections we start, whatever the trigger, are rate limited: a burst of
//!   `election_start_burst`, then one per `election_start_interval`; the rest are not
//!   started and are counted in `elections_suppressed`; one election is then held
//!   when the limit next allows (so a master that gave up on a conflict is not left
//!   without one).
//! * Unknown opcodes are ignored and counted (`unknown_opcodes`), not refused (MS-BRWS
//!   §3.3.5); every frame the codec rejects or over the sender limits is `Malformed`.
//! * Events beyond [`MAX_QUEUED`] pending actions are dropped and counted, so an
//!   undrained queue cannot grow with attacker traffic.

mod announce;
mod backup;
mod domain;
mod elections;
mod receive;
mod sync;

pub use domain::{
    LocalMaster, SyncKind, DMB_SYNC_FIRST, LMB_CHECK_EVERY, LMB_LIFETIME, LMB_SYNC_FIRST,
    MAX_SYNCS_RUNNING, SYNC_LOST_AFTER,
};

use crate::config::{BrowserConfig, LmAnnounce};
use crate::election::{self, Election, Phase};
use crate::list::{BrowseList, BrowseTable, ServerEntry, WorkgroupEntry};
use crate::schedule::{millis, Periodic, Rng, CHANGE_DELAY};
use crate::stats::BrowserStats;
use nbdgm_wire::browser::{BrowserFrame, RequestElection, ServerType, MAX_NAME_LEN};
use nbdgm_wire::mailslot::{BROWSE, LANMAN};
use nbdgm_wire::Name;
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

/// Marks an [`Action::Send`] that answers a received frame: the
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
    /// As local master browser: find the domain master browser of `workgroup` as Samba
    /// does (`nmbd_browsesync.c`): resolve `<workgroup><1B>` (through the NBNS, or by
    /// broadcast for a B-node), ask the address that answers for its node status (the
    /// question name `<workgroup><1B>`, which Windows answers where `*` is refused) and
    /// take the first unique `<20>` name. Answer with [`Browser::domain_master_found`] or
    /// [`Browser::domain_master_failed`]. One at a time.
    FindDomainMaster { workgroup: String },
    /// Pull a browse list from another browser (RAP NetServerEnum2 over SMB, or the
    /// peer's HTTP endpoint when it is nbdgm) and hand it back with
    /// [`Browser::list_synced`] or [`Browser::list_sync_failed`]. At most
    /// [`MAX_SYNCS_RUNNING`] at a time.
    SyncList {
        kind: SyncKind,
        /// The peer's computer name (the NBSS called name `<peer><20>`).
        peer: String,
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
    /// A MasterAnnouncement from a new local master browser while the table is at
    /// `max_local_masters`.
    LocalMasterListFull,
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
            Refusal::LocalMasterListFull => "local_master_list_full",
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
    /// An election was suppressed by the start limit: start one at this time.
    election_retry: Option<Instant>,
    election: Election,
    /// BecomeBackup sent (upper-case name → when).
    promoted: HashMap<String, Instant>,
    /// Start and count of the current `elections_per_minute` window.
    election_window: (Instant, u32),
    /// Domain master browser: finding it as LMB, being it (engine/domain.rs).
    dmb: domain::DmbState,
    actions: VecDeque<Action>,
    stats: BrowserStats,
}

/// Why [`Browser::new`] or [`Browser::set_config`] refused a configuration. Shows the
/// reason alone (e.g. `comment: NUL or a character outside Latin-1`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A setting [`BrowserConfig::validate`] does not accept.
    #[error("{0}")]
    Invalid(String),
    /// The computer name cannot be a NetBIOS name.
    #[error("{0}")]
    Name(#[from] nbdgm_wire::Error),
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
    pub fn new(mut config: BrowserConfig, now: Instant, seed: u64) -> Result<Browser, ConfigError> {
        config.validate()?;
        let me = Name::new(&config.name, 0x00)?;
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
            election_retry: None,
            election: Election::default(),
            promoted: HashMap::new(),
            election_window: (now, 0),
            dmb: domain::DmbState::default(),
            actions: VecDeque::new(),
            stats: BrowserStats::default(),
        })
    }

    /// Replace the configuration (SIGHUP); role changes follow (e.g. `potential_browser`
    /// off → give up roles and release names). A new name waits for its
    /// `name_registered`; a new workgroup drops roles and re-registers `<WG><1E>`.
    /// Clears a ResetState "stop". Announcements restart after [`CHANGE_DELAY`].
    pub fn set_config(
        &mut self,
        mut config: BrowserConfig,
        now: Instant,
    ) -> Result<(), ConfigError> {
        config.validate()?;
        let me = Name::new(&config.name, 0x00)?;
        if self.shut_down {
            self.cfg = config;
            self.me = me;
            return Ok(());
        }
        let name_changed = !config.name.eq_ignore_ascii_case(&self.cfg.name);
        let wg_changed = !config.workgroup.eq_ignore_ascii_case(&self.cfg.workgroup);
        let browse_off = !config.potential_browser;
        if self.started && (wg_changed || !config.domain_master) {
            self.release_1b(now);
        }
        if wg_changed {
            self.dmb.found = None;
        }
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
            self.register_1b();
            if self.role == Role::Master && self.cfg.dmb_sync && self.dmb.find_next.is_none() {
                self.dmb.find_next = Some(now + domain::DMB_SYNC_FIRST);
            }
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
        } else if name.raw() == self.wg_name(0x1B).raw() {
            self.dmb_registered(now);
        }
    }

    /// Registering `name` failed (conflict): for `<1D>`, another LMB exists. A claim
    /// that fails restarts the election (MS-BRWS §3.3.6); a master losing `<1D>` steps
    /// down.
    pub fn name_failed(&mut self, now: Instant, name: &Name) {
        if !self.shut_down && name.raw() == self.wg_name(0x1B).raw() {
            return self.dmb_refused(now);
        }
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
        if self.election_retry.is_some_and(|t| t <= now) {
            self.election_retry = None;
            if self.is_browser() {
                self.start_election(now);
            }
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
        self.domain_timers(now);
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
            self.election_retry,
            self.table.next_expiry(),
            self.master.as_ref().map(|m| m.2),
            self.promoted.values().min().map(|t| *t + PROMOTION_HOLD),
            self.dmb.next_deadline(),
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
        self.release_1b(now);
        self.dmb = domain::DmbState::default();
        self.shut_down = true;
        self.host.stop();
        self.lma.stop();
        self.dom.stop();
        self.lm_next = None;
        self.reply_at = None;
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
                synced_from: None,
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
                synced_from: None,
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
            domain_master: self.domain_master().map(|d| d.0),
            domain_master_address: self.domain_master().map(|d| d.1),
            local_masters: self.local_masters(now),
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
                | ServerType::MASTER_BROWSER
                | ServerType::DOMAIN_MASTER);
        if self.dmb.is_dmb {
            t |= ServerType::DOMAIN_MASTER;
        }
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
            Refusal::LocalMasterListFull => self.stats.refused_local_master_list_full += 1,
        }
        self.event(BrowserEvent::Refused { what, from });
    }

    fn release(&mut self, name: Name) {
        self.actions.push_back(Action::Release { name });
    }

    fn update_gauges(&mut self) {
        self.stats.servers = self.table.server_count() as u64;
        self.stats.workgroups = self.table.group_count() as u64;
        self.stats.local_masters = self.dmb.lmbs.len() as u64;
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
        if from == Role::Master || to == Role::Master {
            self.dmb_master_changed(now, to == Role::Master);
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
        self.register_1b();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_configuration_is_a_typed_error_showing_the_reason() {
        let now = Instant::now();
        let mut c = BrowserConfig::new("RUSTHOST", "WORKGROUP");
        c.comment = "a\0b".into();
        let e = Browser::new(c, now, 1).err().unwrap();
        assert_eq!(
            e,
            ConfigError::Invalid("comment: NUL or a character outside Latin-1".into())
        );
        assert_eq!(e.to_string(), "comment: NUL or a character outside Latin-1");

        let mut b = Browser::new(BrowserConfig::new("RUSTHOST", "WORKGROUP"), now, 1).unwrap();
        let mut c = BrowserConfig::new("RUSTHOST", "WORKGROUP");
        c.workgroup = "WAY_TOO_LONG_WORKGROUP".into();
        let e = b.set_config(c, now).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid(r) if r.starts_with("workgroup")),
            "{e}"
        );
        assert_eq!(b.config().workgroup, "WORKGROUP", "the old settings stay");
    }
}
