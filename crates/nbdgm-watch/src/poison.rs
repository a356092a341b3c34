//! Name poisoning detectors (NBNS RFC 1002 §4.2, LLMNR RFC 4795, mDNS RFC 6762). Skeleton: filled in next.

use crate::alert::Alert;
use crate::config::WatchConfig;
use crate::engine::Engine;
use crate::packet::Packet;
use crate::state::Proto;
use nbdgm_wire::nbns;
use serde_json::{json, Value};

/// Poisoning state (queries outstanding, responders).
#[derive(Debug)]
pub struct PoisonState {}

impl PoisonState {
    pub(crate) fn new(_cfg: &WatchConfig) -> Self {
        PoisonState {}
    }
    pub(crate) fn stats(&self) -> Value {
        json!({})
    }
}

pub(crate) fn on_nbns(_e: &mut Engine, _p: &Packet<'_>, _m: &nbns::Packet, _out: &mut Vec<Alert>) {}
pub(crate) fn learn_nbns(_e: &mut Engine, _p: &Packet<'_>, _m: &nbns::Packet) {}
pub(crate) fn on_dns(
    _e: &mut Engine,
    _p: &Packet<'_>,
    _proto: Proto,
    _m: &crate::dns::Message,
    _out: &mut Vec<Alert>,
) {
}
pub(crate) fn learn_dns(_e: &mut Engine, _p: &Packet<'_>, _proto: Proto, _m: &crate::dns::Message) {
}
