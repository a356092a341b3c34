//! Helpers of the `nbdgm serve` benchmarks (`daemon_bench`, run by `bench/daemon.sh`):
//! starting and stopping the daemon by PID, its configuration, the packets sent,
//! reading counters from `/proc` and from the daemon's API, and the common setup.
//!
//! Benchmarks, never tests: nothing here asserts a timing.

#![forbid(unsafe_code)]

pub mod browse;
pub mod daemon;
pub mod mmsg;
pub mod nbdd;
pub mod packets;
pub mod procfs;
pub mod report;
pub mod setup;
