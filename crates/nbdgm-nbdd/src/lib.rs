//! `nbdgm-nbdd`: a sans-IO NetBIOS Datagram Distribution server (NBDD), the relay
//! that P- and M-nodes unicast group and broadcast datagrams to (RFC 1001 §11.2,
//! §11.3, §17.3; RFC 1002 §5.3.4; DIGEST §3.2–§3.4).
//!
//! An [`Nbdd`] owns no sockets, no clock and no name server. The runtime:
//! - feeds every UDP packet received on the NBDD's datagram port to [`Nbdd::handle`];
//! - answers [`NbddAction::ResolveMembers`] (from its NBNS: the group's member
//!   addresses, or for `*` every node known in the scope) with
//!   [`Nbdd::members_resolved`], and [`NbddAction::VerifySource`] (is SOURCE_NAME
//!   registered at SOURCE_IP?) with [`Nbdd::source_verified`];
//! - calls [`Nbdd::handle_timeout`] at [`Nbdd::poll_timeout`];
//! - sends what [`Nbdd::poll_transmit`] returns and logs [`Nbdd::poll_event`].
//!
//! Every queue, table and cache is capped, and every refusal is counted in
//! [`NbddStats`] (see [`DropReason`]). Relayed bytes are limited per source and in
//! total, replies are limited per source and never larger than their request, so
//! `bytes_out / bytes_in` ([`NbddStats::amplification`]) stays bounded by the fan-out
//! and the buckets.
//!
//! ```
//! use nbdgm_nbdd::{Name, Nbdd, NbddAction, NbddConfig, RelayPolicy, Resolution};
//! use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use std::time::Instant;
//!
//! let now = Instant::now();
//! let cfg = NbddConfig {
//!     policy: RelayPolicy::AllowList("10.0.0.0/8".parse().unwrap()),
//!     own_addresses: vec![Ipv4Addr::new(10, 0, 0, 1)],
//!     ..NbddConfig::default()
//! };
//! let mut nbdd = Nbdd::new(cfg, now).unwrap();
//! let p_node = Ipv4Addr::new(10, 0, 0, 5);
//! let group = Name::new("WORKGROUP", 0x1e).unwrap();
//! let dgm = Datagram::data(MsgType::DirectGroup, NodeType::P, 1, (p_node, 138),
//!     Name::new("FRED", 0).unwrap(), group.clone(), vec![0u8; 32]).to_bytes().unwrap();
//! nbdd.handle(now, SocketAddrV4::new(p_node, 138), &dgm);
//! while let Some(action) = nbdd.poll_action() {
//!     if let NbddAction::ResolveMembers(name) = action {
//!         // Ask the NBNS; here two members answer.
//!         let members = vec![Ipv4Addr::new(10, 0, 0, 6), Ipv4Addr::new(10, 0, 0, 7)];
//!         nbdd.members_resolved(now, &name, Resolution::Members(members));
//!     }
//! }
//! let mut sent = 0;
//! while let Some(t) = nbdd.poll_transmit() {
//!     assert_eq!(t.bytes, dgm); // relayed unchanged
//!     sent += 1;
//! }
//! assert_eq!(sent, 2);
//! ```
//!
//! Modules:
//! - [`config`] — [`NbddConfig`], relay policy, caps (RFC 1002 §6 constants)
//! - [`nbdd`] — the engine (RFC 1002 §5.3.4, RFC 1001 §17.1.2, §17.3)
//! - [`fragment`] — re-fragmenting oversize input (RFC 1001 §17.1.2)
//! - [`ratelimit`] — per-source token buckets with bounded memory
//! - [`event`] — transmits, actions for the runtime, events
//! - [`stats`] — counters
#![forbid(unsafe_code)]

pub mod config;
pub mod event;
pub mod fragment;
pub mod nbdd;
pub mod ratelimit;
pub mod stats;

pub use config::{ConfigError, NbddConfig, QueryAnswer, Rate, RelayPolicy, UniqueHandling};
pub use event::{NbddAction, NbddEvent, Resolution, Transmit};
pub use nbdd::Nbdd;
pub use nbdgm_base::PrefixSet;
pub use nbdgm_wire::Name;
pub use stats::{DropCounters, DropReason, NbddStats};
