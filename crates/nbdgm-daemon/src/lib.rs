//! `nbdgm-daemon`: the tokio runtime of `nbdgm serve`: UDP sockets per
//! interface, one sans-IO [`nbdgm_node::Node`] per interface, TOML configuration,
//! access lists and rate limits at the door, the local API, privilege handling.
//!
//! The public surface is what the CLI needs:
//! - [`config`]: the TOML file (`docs/configuration.md`) and command-line overrides
//! - [`runtime`]: `nbdgm serve` itself: [`runtime::load`], [`runtime::serve`]
//! - [`privilege`]: dropping root, the root warning (from `nbdgm-runtime`)
//! - [`acl`], [`ratelimit`]: checks at the door (what `[access]` and `[limits]` build)
//! - [`standalone_gate`]: the reply gate the tools install when they run without a daemon
//!
//! Inside: `worker` (one interface at run time), `reply_gate` (every answer to a
//! received packet: rate, amplification), `api` and `dispatch` (the local API,
//! `docs/api.md`, and one handler per operation), `ownership` (which API client may
//! register and release which name), `roles` (NBNS/NBDD client settings and the NBNS
//! and NBDD server roles), `browse` (the `[browser]` section, the browse list for the
//! API and HTTP), `messenger` (received WinPopup messages: log and exec hook).

// Unsafe only in the allocation test (a counting global allocator), allowed there.
#![deny(unsafe_code)]

pub mod acl;
mod api;
mod browse;
pub mod config;
mod dispatch;
mod messenger;
mod nbns_state;
mod ownership;
mod rap_server;
pub mod ratelimit;
mod reply_gate;
mod roles;
pub mod runtime;
pub mod standalone_gate;
mod worker;

/// The list pulls of browsing across subnets (HTTP, then RAP), for tests and tools.
pub use browse::sync as browse_sync;
pub use nbdgm_runtime::privilege;
use nbdgm_runtime::sockets;
