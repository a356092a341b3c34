//! `nbdgm-node`: a sans-IO NetBIOS node (B, and P/M/H with an NBNS; RFC 1001/1002, MS-NBTE) in the manner of quinn-proto.
//!
//! A [`Node`] owns no sockets and no clock. Feed it received UDP packets with
//! [`Node::handle`] and the time with [`Node::handle_timeout`]; drain the packets it
//! wants sent with [`Node::poll_transmit`], the next deadline with
//! [`Node::poll_timeout`] and what happened with [`Node::poll_event`].
//!
//! Modules, each named after the protocol part it implements:
//! - [`config`]: interface, ports, RFC 1002 §6 constants and caps
//! - [`name_table`]: our names and their states (RFC 1001 §15.2)
//! - [`name_service`]: registration, defence, queries, node status, release (RFC 1002 §5.1.1)
//! - [`nbns_client`]: P/M/H registration, refresh, release and resolution with an NBNS (RFC 1002 §5.1.2–5.1.3)
//! - [`nbdd_client`]: P/M group datagrams through the NBDD (RFC 1002 §5.3.2)
//! - [`transaction`]: NAME_TRN_ID matching and retries (RFC 1001 §13)
//! - [`ids`]: unpredictable NAME_TRN_IDs and DGM_IDs (RFC 1002 §4.2.1.1, §4.4.1)
//! - [`cache`]: remote-name cache (RFC 1001 §15.1.8)
//! - [`datagram_send`], [`fragment`]: sending and fragmentation (RFC 1002 §5.3.1, RFC 1001 §17.1.2)
//! - [`datagram_receive`], [`reassembly`]: receiving and reassembly (RFC 1002 §5.3.3)
//! - [`event`], [`stats`]: what the node reports
//! - `sim` (feature `sim`, off by default): a deterministic simulated subnet for tests
#![forbid(unsafe_code)]

pub mod cache;
pub mod config;
pub mod datagram_receive;
pub mod datagram_send;
pub mod error;
pub mod event;
pub mod fragment;
pub mod ids;
pub mod name_service;
pub mod name_table;
pub mod nbdd_client;
pub mod nbns_client;
pub mod node;
pub mod reassembly;
#[cfg(feature = "sim")]
// Test support (never in the production node): a malformed name or interface literal
// handed in by a test fails that test.
#[allow(clippy::expect_used)]
pub mod sim;
pub mod stats;
pub mod transaction;

pub use cache::CacheEntry;
pub use config::{CacheLimits, Interface, NodeConfig, ReassemblyLimits, Service, SourceIpPolicy};
pub use error::{LookupError, NodeError, SendError};
pub use event::{
    ConflictReason, Delivery, DropReason, Event, FragmentLayout, NameAddress, NodeStatusReply,
    RequestId, SendInfo, StatusName,
};
pub use name_table::{NameEntry, NameState};
pub use nbdgm_wire::datagram::{MsgType, NodeType};
pub use nbdgm_wire::Name;
pub use node::{Incoming, LookupTarget, Node, SendMode, SendRequest, Transmit};
pub use stats::{DropCounters, Stats};
