//! `nbdgm-daemon`: the tokio runtime of `nbdgm serve`: UDP sockets per
//! interface, one sans-IO [`nbdgm_node::Node`] per interface, TOML configuration,
//! access lists and rate limits at the door, the local API, privilege handling.
//!
//! - [`config`]: the TOML file and command-line overrides
//! - [`acl`], [`ratelimit`]: checks at the door
//! - [`reply_gate`]: every answer to a received packet (rate, amplification)
//! - `privilege`, `sockets`: re-exported from `nbdgm-runtime`
//! - [`worker`]: one interface at run time
//! - [`api`], [`dispatch`]: the local API and the routing of its requests
//! - [`ownership`]: which API client may register and release which name
//! - [`roles`]: NBNS/NBDD client settings and the NBNS and NBDD server roles
//! - [`runtime`]: start-up, signals, reload, shutdown
//! - [`browse`]: the `[browser]` section, the browse list for the API and HTTP
//! - [`messenger`]: received WinPopup messages: log and exec hook

pub mod acl;
pub mod api;
pub mod browse;
pub mod config;
pub mod dispatch;
pub mod messenger;
pub mod ownership;
pub mod ratelimit;
pub mod reply_gate;
pub mod roles;
pub mod runtime;
pub mod worker;

/// Moved to `nbdgm-runtime`; the old paths stay for the daemon's modules.
pub use nbdgm_runtime::{privilege, sockets};
