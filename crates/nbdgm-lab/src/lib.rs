//! Network-namespace test lab for nbdgm.
//!
//! A [`Lab`] builds a small LAN out of Linux network namespaces: a bridge namespace with `br0`
//! (subnet 1, 198.51.100.0/24) and optionally `br1` (subnet 2, 203.0.113.0/24) joined by a
//! router namespace that forwards unicast only. Hosts are namespaces with one veth into a
//! bridge. Samba's `nmbd`, `nmblookup`, `smbclient` and `tshark` can be run inside the hosts.
//!
//! Project rules this crate enforces:
//! * only the documentation nets 198.51.100.0/24 and 203.0.113.0/24 (and loopback) are used,
//!   inside namespaces the lab creates itself; there is no default route anywhere; IPv6 is off;
//! * every namespace carries a per-instance prefix (process id + counter), so parallel tests and
//!   parallel runs cannot collide, and interface names stay within 15 characters;
//! * every process the lab starts is tracked and stopped **by PID** (SIGTERM, then SIGKILL) when
//!   its handle or the lab is dropped, also when a test panics; namespaces are deleted after
//!   that, the bridge namespace last. Namespaces the lab did not create are never touched.
//!
//! Everything needs root and the tools; tests call [`require_or_skip`] first. The exception is
//! [`daemon`], the harness that starts and stops `nbdgm serve` for tests and benchmarks, and
//! [`test_certs`], a throw-away CA and server certificate.
//!
//! ```no_run
//! use nbdgm_lab::{Lab, LabSpec, Nmbd, NmbdOptions};
//! use std::time::Duration;
//!
//! if !nbdgm_lab::require_or_skip("example") {
//!     return;
//! }
//! let lab = Lab::new(LabSpec::one_subnet()).unwrap();
//! let a = lab.add_host("a", "198.51.100.10/24").unwrap();
//! let b = lab.add_host("b", "198.51.100.20/24").unwrap();
//! let nmbd = Nmbd::start(&a, NmbdOptions::default()).unwrap();
//! nmbd.wait_registered(Duration::from_secs(15)).unwrap();
//! let r = nbdgm_lab::nmblookup(&b, &["-U", "198.51.100.10", "SAMBAA"]).unwrap();
//! assert_eq!(r.addresses("SAMBAA"), vec![a.addr()]);
//! ```

#![forbid(unsafe_code)]

pub mod daemon;
mod error;
mod lab;
mod prereq;
mod process;
mod samba;
mod tls;
mod tshark;
mod util;

pub use error::{LabError, Result};
pub use lab::{Host, Lab, LabSpec, SUBNET1, SUBNET2};
pub use nix::sys::signal::Signal;
pub use prereq::{
    find_nbdgm_binary, prerequisites, python3, require_or_skip, require_tools_or_skip, tool_path,
    Unavailable,
};
pub use process::Proc;
pub use samba::{
    nmblookup, smbclient_list, smbclient_list_loopback, NmbLookup, Nmbd, NmbdOptions, Smbd,
    ToolOutput,
};
pub use tls::{test_certs, TlsFiles};
pub use tshark::Tshark;
pub use util::wait_until;
