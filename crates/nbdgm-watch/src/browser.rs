//! Browser protocol threats (MS-BRWS §2.2, §3.2). Skeleton: filled in next.

use crate::alert::Alert;
use crate::config::WatchConfig;
use crate::engine::Engine;
use crate::packet::Packet;
use nbdgm_wire::datagram::Datagram;
use serde_json::{json, Value};

/// Per-workgroup browser state.
#[derive(Debug)]
pub struct BrowserState {}

impl BrowserState {
    pub(crate) fn new(_cfg: &WatchConfig) -> Self {
        BrowserState {}
    }
    pub(crate) fn stats(&self) -> Value {
        json!({})
    }
}

pub(crate) fn on_datagram(_e: &mut Engine, _p: &Packet<'_>, _d: &Datagram, _out: &mut Vec<Alert>) {}
