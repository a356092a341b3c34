//! `nbdgm-nbns`: a sans-IO NetBIOS Name Server (NBNS, "WINS") engine
//! (RFC 1001 §15.1, RFC 1002 §4.2 and §5.1.4, MS-NBTE §3.2).
//!
//! # How a daemon drives it
//!
//! An [`NbnsServer`] owns no socket and no clock, like `nbdgm-node`'s `Node`:
//!
//! 1. Build it with [`NbnsServer::new`] from an [`NbnsConfig`] (defaults are sane).
//! 2. Bind a **unicast** UDP socket on port 137 (`config.port`). For every datagram
//!    received call [`NbnsServer::handle`]`(now, source, bytes)`. An NBNS ignores
//!    broadcasts (RFC 1002 §5.1.4): if the runtime shares a socket that also gets
//!    broadcasts, call [`NbnsServer::handle_received`] with `broadcast = true` for
//!    those (they are counted and dropped); packets with the B flag are dropped too.
//! 3. After each call drain [`NbnsServer::poll_transmit`] and send each
//!    [`Transmit`] from the port-137 socket to `to` (replies go to the request's UDP
//!    source IP and port, challenge queries to the owner's `node_port`).
//! 4. Drain [`NbnsServer::poll_event`] for logs and hooks ([`NbnsEvent`]).
//! 5. Sleep until [`NbnsServer::poll_timeout`] (or the next packet) and then call
//!    [`NbnsServer::handle_timeout`]: it expires names at TTL + grace and runs the
//!    end-node challenge retries.
//! 6. An NBDD in the same process asks [`NbnsServer::lookup`] for the members of a
//!    group (or the owner of a unique name) before relaying a datagram, and
//!    [`NbnsServer::all_addresses`] for datagrams to `*`; the local API
//!    shows [`NbnsServer::entries`] and [`NbnsServer::stats`].
//!
//! # Behaviour in short
//!
//! * **Registration** (opcode 5): a free name is granted with its TTL clamped to
//!   `min_ttl..=max_ttl` (0 → `default_ttl`). The same address again is a refresh. A
//!   unique name held by another address is **challenged** (secure server, RFC 1002
//!   §5.1.4.1): WACK to the requester, unicast NAME QUERY (RD clear) to the owner(s),
//!   retried `challenge_attempts` times every `challenge_timeout`; a positive answer
//!   gives the requester ACT_ERR, a negative answer or silence moves the name to it.
//!   A group registration adds a member (up to `max_group_members`; when full, a
//!   member whose TTL ran out, else the oldest never-refreshed member, is evicted,
//!   MS-NBTE §3.2.5.1; an *established* member, one that has refreshed, is never
//!   evicted: the newcomer gets RFS_ERR). A unique request
//!   for a group name (and the reverse) gets ACT_ERR. RD = 0 ("NAME UPDATE") gets
//!   IMP_ERR. `*`-names, 0.0.0.0/broadcast/multicast addresses and (by default) an
//!   NB_ADDRESS other than the UDP source IP get RFS_ERR.
//! * **Multi-homed registration** (opcode 15, MS-NBTE §3.2.5.3): for a group it is a
//!   group registration; for a unique name held by other addresses the owner is
//!   challenged and, if its positive answer lists the requester's address (same host),
//!   the address is added; otherwise as opcode 5.
//! * **Refresh** (opcodes 8 and 9): extends the address's TTL; for an unknown name it
//!   registers (clients only refresh after an NBNS restart); for a name held by
//!   someone else ACT_ERR. Responses to refreshes use opcode 5.
//! * **Release** (opcode 6): only from the address being released (NB_ADDRESS = UDP
//!   source IP, else RFS_ERR); unknown name NAM_ERR; address not held ACT_ERR.
//! * **Query** (opcode 0): unique → its address(es); group → members
//!   ([`GroupAnswers::Members`], default) or `255.255.255.255`
//!   ([`GroupAnswers::Broadcast`], WINS-like, except `<1C>` which lists members and
//!   `<1D>` which is granted but not stored, so it is answered negatively, as WINS
//!   does); unknown → NAM_ERR. An answer lists as many addresses as fit
//!   `max_answer_addresses`, `max_reply_factor` × the request size (the daemon's
//!   reply amplification factor) and one 576-byte datagram; a cut answer is a
//!   round-robin window, so successive queries list every member in turn. TC is set
//!   only when the whole list exceeds one datagram (RFC 1002 §4.2.1.1: TC means "use
//!   TCP for the rest"), not for the amplification cut.
//! * **Node status** requests are ignored (counted): the NBNS has no name table of its
//!   own to show, and scanners get nothing to amplify.
//! * Only names in `config.scope` are served; others are dropped (counted).
//! * **Quotas**: one address holds at most
//!   `max_names_per_source` unique names and `max_groups_per_source` group
//!   memberships (RFS_ERR beyond); a full table (`max_names`) refuses new names
//!   (SRV_ERR) and never evicts a holder.
//! * State-changing requests are rate-limited per source IP (token bucket, at most
//!   `max_sources` tracked); rate-limited requests are dropped silently (counted).
//! * Every cap and every refusal or drop has a counter in [`NbnsStats`].
//!
//! * **Static names** ([`admin`]): from the configuration or the local API; never
//!   expire; a registration by another address or of the other kind gets ACT_ERR (the
//!   NBNS defends them like an owner), one by a listed address a positive answer.
//! * **Persistence** ([`persist`]): [`NbnsServer::export_state`] /
//!   [`NbnsServer::import_state`] (JSON lines with a version), written atomically by
//!   [`persist::save_file`]; the daemon saves periodically and at shutdown.
//!
//! Modules: [`config`] (configuration), [`server`] (RFC 1002 §5.1.4 processing),
//! [`event`] (reports), [`stats`] (counters); internal: `table` (the name database,
//! §5.1.4.2 timers), `rate` (per-source limits), `packets` (RFC 1002 §4.2 builders).
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod event;
mod packets;
pub mod persist;
mod rate;
pub mod server;
pub mod stats;
mod table;

pub use admin::{AdminError, StaticEntry};
pub use config::{ConfigError, GroupAnswers, NbnsConfig};
pub use event::{ChallengeOutcome, NbnsEvent, RefuseReason};
pub use nbdgm_wire::Name;
pub use persist::{LoadReport, StateError};
pub use server::{Entry, EntrySnapshot, MemberSnapshot, NbnsServer, Transmit};
pub use stats::NbnsStats;
pub use table::Fixed;
