//! `nbdgm-probe`: is port 138 (and 137, 139, 445) reachable on a host, and with what evidence.
//!
//! - [`target`]: target lists (addresses, CIDR ranges, host names), expanded and bounded
//! - [`probe`]: per-port probes of 137/udp, 138/udp, 138/tcp, 139/tcp, 445/tcp with states and evidence
//!
//! The monitor (`nbdgm-monitor`) runs these probes on a schedule; the host audit and the
//! firewall rules are `nbdgm-audit`.
// One `#[allow(unsafe_code)]`: the `sockaddr_ll` of the ARP socket (probe::discover).
#![deny(unsafe_code)]

pub mod probe;
pub mod target;
