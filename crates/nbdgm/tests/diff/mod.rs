//! Helpers of the tshark differential test (`tests/tshark_diff.rs`).

pub mod compare;
pub mod ours;
pub mod rules;
pub mod tshark;
