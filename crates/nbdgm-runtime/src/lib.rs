//! `nbdgm-runtime`: the I/O side of a NetBIOS datagram node, as quinn-udp is to quinn.
//! The engines (`nbdgm-node`, `nbdgm-browser`) are sans-IO; this crate gives them
//! sockets and a clock. `nbdgm serve` (crate `nbdgm-daemon`) and the CLI tools that run
//! without a daemon share it.
//!
//! - [`sockets`]: the UDP sockets of an interface (RFC 1002 §5.1, §5.3)
//! - [`driver`]: the one driver of an interface: receive, engines, transmit, timers
//! - [`recv_batch`]: batched receive (`recvmmsg`) into buffers allocated once
//! - [`send_batch`]: batched send (`sendmmsg`) from one buffer kept between batches
//! - [`engines`]: the node and the browser of one interface, paired (MS-BRWS over
//!   RFC 1002 §5.3.3)
//! - [`standalone`]: the driver on sockets of its own, for the tools without a daemon
//! - [`interfaces`]: IPv4 interface discovery
//! - [`privilege`]: dropping root, capabilities, bind-error advice
//! - [`logging`]: tracing set-up, text or JSON lines
//! - [`browse_list`]: a browser's list as the API shows it (MS-BRWS §3.3.1)

// Unsafe only in `privilege` (pre_exec and raw capability syscalls), `recv_batch` (the
// recvmmsg call) and `send_batch` (the sendmmsg call), allowed there per item.
#![deny(unsafe_code)]

pub mod browse_list;
pub mod driver;
pub mod engines;
pub mod interfaces;
pub mod logging;
pub mod privilege;
pub mod recv_batch;
pub mod send_batch;
pub mod sockets;
pub mod standalone;

pub use driver::{Driver, Wake};
pub use engines::{Aside, DmbFailure, Engines};
pub use interfaces::system_interfaces;
pub use logging::{init_logging, LogFormat};
pub use standalone::Standalone;
