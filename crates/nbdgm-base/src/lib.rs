//! Building blocks shared by the sans-IO engines (`nbdgm-node`, `-nbns`, `-nbdd`), the
//! daemon and the tools; one implementation of each. No async, no I/O.
//!
//! * [`prefix`]: sets of IPv4 (or IPv6) addresses built from single addresses, CIDR
//!   prefixes and ranges (access lists, relay allow lists, probe targets).
//! * [`rate`]: token buckets and bounded per-key tables of them, evicting only idle keys.
//! * [`random`]: the one random source (OS-seeded ChaCha, seedable for simulations).
//! * [`transmit`]: the packet an engine wants sent ([`Transmit`]).

#![forbid(unsafe_code)]

pub mod prefix;
pub mod random;
pub mod rate;
pub mod transmit;

pub use prefix::{PrefixError, PrefixSet};
pub use random::Random;
pub use rate::{Rate, RateTable};
pub use transmit::{Service, Transmit};
