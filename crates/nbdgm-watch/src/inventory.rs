//! Host inventory as a by-product. Skeleton: filled in next.

use crate::config::WatchConfig;
use crate::engine::Engine;
use crate::packet::Packet;
use crate::state::{NameTable, Proto};
use nbdgm_wire::datagram::Datagram;
use nbdgm_wire::nbns;
use serde_json::{json, Value};

/// Hosts seen.
#[derive(Debug)]
pub struct Inventory {}

impl Inventory {
    pub(crate) fn new(_cfg: &WatchConfig) -> Self {
        Inventory {}
    }
    pub(crate) fn stats(&self) -> Value {
        json!({})
    }
    pub(crate) fn to_json(&self, _names: &NameTable) -> Value {
        json!({})
    }
}

pub(crate) fn on_nbns(_e: &mut Engine, _p: &Packet<'_>, _m: &nbns::Packet) {}
pub(crate) fn on_datagram(_e: &mut Engine, _p: &Packet<'_>, _d: &Datagram) {}
pub(crate) fn on_dns(_e: &mut Engine, _p: &Packet<'_>, _proto: Proto, _m: &crate::dns::Message) {}
