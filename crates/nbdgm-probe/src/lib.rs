//! `nbdgm-probe`: keep port 138 closed where it should be (issue 5).
//!
//! - [`target`]: target lists (addresses, CIDR ranges, host names), expanded and bounded
//! - [`probe`]: per-port probes of 137/udp, 138/udp, 138/tcp, 139/tcp, 445/tcp with states and evidence
//! - [`monitor`]: checks on a schedule, a store (SQLite or PostgreSQL), edge-triggered alerts, metrics, a web page
//! - [`audit`]: the sockets bound to the NetBIOS ports on this host and the firewall's view of them
//! - [`firewall`]: rules that close 137–139 (445 optional), for nftables, iptables and ufw
#![forbid(unsafe_code)]

pub mod audit;
pub mod firewall;
pub mod monitor;
pub mod probe;
pub mod target;
