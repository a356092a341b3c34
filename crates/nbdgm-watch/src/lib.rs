//! `nbdgm-watch`: detection of name poisoning, rogue browsers and port-138 abuse on the wire.
//!
//! The [`Engine`] takes UDP datagrams of ports 137 (NBNS, RFC 1002 §4.2), 138 (datagram
//! service, RFC 1002 §4.4, with MS-BRWS browser frames and NETLOGON pings), 5355 (LLMNR,
//! RFC 4795) and 5353 (mDNS, RFC 6762), one [`Packet`] at a time, in capture order. It
//! keeps capped state per name, per host and per workgroup ([`state`]) and returns
//! [`Alert`]s, each with a stable [`Signature`] (the table is [`signature::ALL`] and
//! `docs/watch.md`) and its evidence.
//!
//! Time is the packets' own capture time, never the wall clock, so reading the same
//! capture twice gives the same alerts.
#![forbid(unsafe_code)]

pub mod alert;
pub mod browser;
pub mod config;
pub mod dns;
pub mod engine;
pub mod honey;
pub mod hygiene;
pub mod inventory;
pub mod output;
pub mod packet;
pub mod poison;
pub mod signature;
pub mod state;
pub mod syslog;

pub use alert::{Alert, Severity};
pub use config::WatchConfig;
pub use engine::Engine;
pub use packet::Packet;
pub use signature::Signature;
