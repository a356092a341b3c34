//! Building blocks shared by the sans-IO engines (`nbdgm-node`, `-nbns`, `-nbdd`), the
//! daemon and the tools; one implementation of each. No async, no I/O.
//!
//! * [`prefix`]: sets of IPv4 (or IPv6) addresses built from single addresses, CIDR
//!   prefixes and ranges (access lists, relay allow lists, probe targets).

pub mod prefix;

pub use prefix::{PrefixError, PrefixSet};
