//! `nbdgm-browser`: the MS-BRWS browser service as a sans-IO engine (like `nbdgm-node`).
//!
//! One [`Browser`] serves one subnet (one daemon interface). It owns no sockets, no
//! clock and no names: it asks its runtime to send mailslot datagrams and to register
//! or release NetBIOS names through [`Action`]s, and is told the outcome
//! ([`Browser::name_registered`], [`Browser::name_failed`]).
//!
//! Driving it:
//! 1. [`Browser::new`], then [`Browser::start`].
//! 2. Feed every received datagram on `\MAILSLOT\BROWSE` or `\MAILSLOT\LANMAN`
//!    ([`Browser::handle`]), whoever it was addressed to: announcements are broadcast
//!    to names we do not hold and still fill the browse list.
//! 3. Call [`Browser::handle_timeout`] at [`Browser::poll_timeout`].
//! 4. Drain [`Browser::poll_action`] after each call.
//! 5. [`Browser::shutdown`] sends the server-type-0 announcement and gives up roles.
//! 6. Answer the requests that need the network beyond one datagram:
//!    [`Action::FetchMasterList`] ([`Browser::master_list`]), [`Action::FindDomainMaster`]
//!    ([`Browser::domain_master_found`] / [`Browser::domain_master_failed`]) and
//!    [`Action::SyncList`] ([`Browser::list_synced`] / [`Browser::list_sync_failed`]);
//!    answers nobody asked for are ignored and counted (domain master browser, MS-BRWS
//!    §3.3.6, §3.4: `engine/domain.rs`).
//!
//! Modules: [`config`] (settings and caps), [`list`] (the browse list: servers and
//! workgroups, expiry at 3 × periodicity, MS-BRWS §3.3.1), [`election`] (criteria and
//! the election state machine, MS-BRWS §3.3.5.8–§3.3.5.9, DIGEST §6.4), [`schedule`]
//! (announcement timers, MS-BRWS §3.2.6, §3.3.6, DIGEST §6.5), [`engine`] (roles and
//! frame handling, MS-BRWS §3.2–§3.3), [`stats`] (counters).
#![forbid(unsafe_code)]

pub mod config;
pub mod election;
pub mod engine;
pub mod list;
pub mod schedule;
pub mod stats;

pub use config::{BrowserConfig, LmAnnounce, RemoteAnnounce};
pub use engine::{
    Action, Browser, BrowserEvent, ConfigError, Inbound, Listed, LocalMaster, Refusal, ReplyTo,
    Role, SyncKind, Target,
};
pub use list::{BrowseList, ServerEntry, WorkgroupEntry};
pub use stats::BrowserStats;
