//! Honey queries. Skeleton: filled in next.

use crate::alert::Alert;
use crate::config::WatchConfig;
use crate::engine::Engine;
use crate::packet::Packet;
use crate::state::Proto;
use serde_json::{json, Value};
use std::net::IpAddr;

/// Honey queries sent, to recognise their answers.
#[derive(Debug)]
pub struct HoneyBook {}

impl HoneyBook {
    pub(crate) fn new(_cfg: &WatchConfig) -> Self {
        HoneyBook {}
    }
    pub(crate) fn stats(&self) -> Value {
        json!({})
    }
}

/// Called by the poisoning detectors for every positive answer (NBNS, LLMNR, mDNS) with
/// the canonical name (see [`crate::state::NameTable`]), the transaction id and the
/// addresses the answer carries. Returns true when `name` is a honey name (an alert was
/// pushed); the caller then skips its own ownership checks for this answer.
pub(crate) fn on_answer(
    _e: &mut Engine,
    _p: &Packet<'_>,
    _proto: Proto,
    _name: &str,
    _txid: u16,
    _addrs: &[IpAddr],
    _out: &mut Vec<Alert>,
) -> bool {
    false
}
