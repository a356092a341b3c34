//! Datagram hygiene (RFC 1002 §4.4, NETLOGON MS-ADTS §6.3.1). Skeleton: filled in next.

use crate::alert::Alert;
use crate::config::WatchConfig;
use crate::engine::Engine;
use crate::packet::Packet;
use nbdgm_wire::datagram::Datagram;
use nbdgm_wire::nbns;
use serde_json::{json, Value};

/// Hygiene state.
#[derive(Debug)]
pub struct HygieneState {}

impl HygieneState {
    pub(crate) fn new(_cfg: &WatchConfig) -> Self {
        HygieneState {}
    }
    pub(crate) fn stats(&self) -> Value {
        json!({})
    }
}

pub(crate) fn on_nbns(_e: &mut Engine, _p: &Packet<'_>, _m: &nbns::Packet, _out: &mut Vec<Alert>) {}
pub(crate) fn on_datagram(_e: &mut Engine, _p: &Packet<'_>, _d: &Datagram, _out: &mut Vec<Alert>) {}
