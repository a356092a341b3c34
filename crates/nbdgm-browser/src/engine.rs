//! The browser roles and frame handling (MS-BRWS §3.2 non-browser server, §3.3
//! potential / backup / local master browser; DIGEST §6, §8). CONTRACT: the public
//! items below are used by the daemon; their bodies are to be written.

use crate::config::BrowserConfig;
use crate::list::BrowseList;
use crate::stats::BrowserStats;
use nbdgm_wire::Name;
use std::net::SocketAddrV4;
use std::time::Instant;

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
    },
    /// Register a name (answer with [`Browser::name_registered`] / [`Browser::name_failed`]).
    Register { name: Name, group: bool },
    /// Release a name.
    Release { name: Name },
    /// For the log and the API.
    Event(BrowserEvent),
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
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ResetState => "reset_state",
            Refusal::ElectionRate => "election_rate",
            Refusal::ServerListFull => "server_list_full",
            Refusal::WorkgroupListFull => "workgroup_list_full",
            Refusal::Malformed => "malformed",
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
    _private: (),
}

impl Browser {
    /// Fails on an invalid configuration (names too long, ...). `seed` drives the
    /// random delays (AnnouncementRequest 0–30 s, election back-off).
    pub fn new(config: BrowserConfig, now: Instant, seed: u64) -> Result<Browser, String> {
        let _ = (config, now, seed);
        unimplemented!()
    }

    /// Replace the configuration (SIGHUP); role changes follow (e.g. `potential_browser`
    /// off → give up roles and release names).
    pub fn set_config(&mut self, config: BrowserConfig, now: Instant) -> Result<(), String> {
        let _ = (config, now);
        unimplemented!()
    }

    /// Begin: register `<workgroup><1E>` (group) when a potential browser, and start
    /// the announcement timers once our `<name><00>` is registered.
    pub fn start(&mut self, now: Instant) {
        let _ = now;
        unimplemented!()
    }

    /// The node registered `name` (any of our names; ignore the ones we did not ask for,
    /// except `<name><00>`, which starts the announcements).
    pub fn name_registered(&mut self, now: Instant, name: &Name) {
        let _ = (now, name);
        unimplemented!()
    }

    /// Registering `name` failed (conflict): for `<1D>`, another LMB exists.
    pub fn name_failed(&mut self, now: Instant, name: &Name) {
        let _ = (now, name);
        unimplemented!()
    }

    /// A received browser datagram.
    pub fn handle(&mut self, now: Instant, inbound: Inbound<'_>) {
        let _ = (now, inbound);
        unimplemented!()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        unimplemented!()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        unimplemented!()
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        unimplemented!()
    }

    /// Server type 0 announcement (BROWSE, and LANMAN when on); as LMB release `<1D>`
    /// and MSBROWSE; release `<1E>`.
    pub fn shutdown(&mut self, now: Instant) {
        let _ = now;
        unimplemented!()
    }

    pub fn role(&self) -> Role {
        unimplemented!()
    }

    /// The browse list now (ages and expiry relative to `now`).
    pub fn list(&self, now: Instant) -> BrowseList {
        let _ = now;
        unimplemented!()
    }

    pub fn stats(&self) -> &BrowserStats {
        unimplemented!()
    }

    pub fn config(&self) -> &BrowserConfig {
        unimplemented!()
    }
}
