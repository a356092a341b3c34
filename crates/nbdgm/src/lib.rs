//! The `nbdgm` command-line tool as a library, so that tests and benchmarks call the
//! same code as the binary. Each subcommand is a module with a `run` function.

#![forbid(unsafe_code)]

pub mod decode;
pub mod exit;
pub mod generate;
pub mod nameq;
pub mod tools;
